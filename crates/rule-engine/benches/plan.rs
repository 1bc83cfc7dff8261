//! `make bench-rules`: the CPU time of `Engine::plan` per event (conditions,
//! templates, recipients, encoding: the part of rules' work that is Foco's own
//! rather than the bus's or the database's), on one thread with the allocator
//! the services use. A change there is a microsecond or two per event, below
//! what a run of `make bench-pipeline` tells apart; this tells it apart.
//! `FOCO_BENCH_EVENTS` [100000] events a round, five rounds a case; prints the
//! median round and the spread, asserts nothing.

use std::time::Instant;

use foco_proto::v1::{Account, EventEnvelope, ResolvedSource, Rule};
use foco_rule_engine::Engine;

// The allocator the foco-rules binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 5;
const SHOPIFY_ORDER: &[u8] = include_bytes!("../../../tests/fixtures/shopify__orders_create.json");
const TYPEFORM_RESPONSE: &[u8] =
    include_bytes!("../../../tests/fixtures/typeform__form_response.json");

struct Case {
    name: &'static str,
    rule: Rule,
    event: EventEnvelope,
}

fn rule(when: &str, to: &str, body: &str) -> Rule {
    Rule {
        id: "rule-1".into(),
        source_id: "src-1".into(),
        name: "bench".into(),
        when: when.into(),
        to: vec![to.to_owned()],
        body: body.into(),
        enabled: true,
        updated_at_ms: 1,
        ..Default::default()
    }
}

fn event(event_type: &str, payload: Vec<u8>, headers: &[(&str, &str)]) -> EventEnvelope {
    EventEnvelope {
        event_id: "evt-1".into(),
        account_id: "acc-1".into(),
        source_id: "src-1".into(),
        event_type: event_type.into(),
        payload,
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        ..Default::default()
    }
}

fn cases() -> Vec<Case> {
    let shopify_headers = [
        ("content-type", "application/json"),
        ("x-shopify-topic", "orders/create"),
        ("x-shopify-shop-domain", "ale.myshopify.com"),
        (
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        ),
        (
            "x-shopify-hmac-sha256",
            "XWmrwMey6OsLMeiZKwP4FppHH3cmAiiJJAweH5Jo4bM=",
        ),
        ("user-agent", "Shopify-Captain-Hook"),
    ];
    let small = format!(
        r#"{{"tenant":"t1","order":1001,"total":"404.95","note":"{}"}}"#,
        "x".repeat(960)
    );
    vec![
        Case {
            name: "one field of a 1 KiB payload",
            rule: rule(
                r#"event_type == "orders/create" && event.tenant == "t1""#,
                "+525512345678",
                "Pedido {{ event.order }} por {{ event.total }}",
            ),
            event: event("orders/create", small.into_bytes(), &shopify_headers),
        },
        Case {
            name: "shopify owner alert, 9.9 KiB",
            rule: rule(
                r#"event_type == "orders/create" && double(event.total_price) >= 400.0"#,
                "+52 55 1234 5678",
                "{{ event.customer.first_name }} {{ event.customer.last_name }} acaba de comprar ${{ event.total_price }} {{ event.currency }}",
            ),
            event: event("orders/create", SHOPIFY_ORDER.to_vec(), &shopify_headers),
        },
        Case {
            name: "typeform welcome, 3.6 KiB",
            rule: rule(
                r#"event_type == "form_response""#,
                r#"{{ (event.form_response.answers | selectattr("type", "eq", "phone_number") | first).phone_number }}"#,
                r#"Hola {{ (event.form_response.answers | selectattr("type", "eq", "text") | first).text }}, tu código de descuento es BIENVENIDA10"#,
            ),
            event: event(
                "form_response",
                TYPEFORM_RESPONSE.to_vec(),
                &[("content-type", "application/json")],
            ),
        },
    ]
}

/// The rule's source as rules resolves it: what the engine reads of the account
/// is its country (numbers without one) and time zone.
fn source(rule: Rule) -> ResolvedSource {
    let account = Account {
        id: "acc-1".into(),
        default_country: "MX".into(),
        timezone: "America/Mexico_City".into(),
        ..Default::default()
    };
    ResolvedSource {
        account: Some(account),
        rules: vec![rule],
        ..Default::default()
    }
}

fn main() {
    let events: usize = std::env::var("FOCO_BENCH_EVENTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000);
    println!(
        "rule engine: Engine::plan on one thread, mimalloc, {events} events a round, median of {ROUNDS} rounds"
    );
    for case in cases() {
        let engine = Engine::new();
        let source = source(case.rule);
        let plan = engine
            .plan(&case.event, &source, 1)
            .expect("the case's event is JSON");
        assert!(
            plan.failures.is_empty() && plan.jobs.len() == 1,
            "{}: one job expected, got {:?}",
            case.name,
            plan.failures
        );
        for _ in 0..events / 10 {
            std::hint::black_box(engine.plan(&case.event, &source, 1).ok());
        }
        let mut rounds: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..events {
                    std::hint::black_box(engine.plan(&case.event, &source, 1).ok());
                }
                start.elapsed().as_secs_f64() * 1e6 / events as f64
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        println!(
            "{:<34} {:>7.2} us/event  (rounds {:.2} to {:.2})",
            case.name,
            rounds[ROUNDS / 2],
            rounds[0],
            rounds[ROUNDS - 1]
        );
    }
}
