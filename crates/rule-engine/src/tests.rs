use super::*;
use foco_proto::v1::{Account, Source};

const SHOPIFY_ORDER: &[u8] = include_bytes!("../tests/fixtures/shopify__orders_create.json");
const TYPEFORM_RESPONSE: &[u8] = include_bytes!("../tests/fixtures/typeform__form_response.json");

fn rule(name: &str, when: &str, to: &[&str], body: &str) -> Rule {
    Rule {
        id: format!("rule-{name}"),
        source_id: "src-1".into(),
        name: name.into(),
        when: when.into(),
        to: to.iter().map(|to| (*to).to_owned()).collect(),
        body: body.into(),
        enabled: true,
        updated_at_ms: 1,
        ..Default::default()
    }
}

fn source(rules: Vec<Rule>) -> ResolvedSource {
    ResolvedSource {
        source: Some(Source {
            id: "src-1".into(),
            name: "shop".into(),
            ..Default::default()
        }),
        account: Some(Account {
            id: "acc-1".into(),
            name: "tienda-ale".into(),
            default_country: "MX".into(),
            timezone: "America/Mexico_City".into(),
            created_at_ms: 0,
        }),
        secrets: vec![],
        rules,
    }
}

fn event(event_type: &str, payload: &[u8]) -> EventEnvelope {
    EventEnvelope {
        event_id: "evt-1".into(),
        account_id: "acc-1".into(),
        source_id: "src-1".into(),
        event_type: event_type.into(),
        payload: payload.to_vec(),
        ..Default::default()
    }
}

#[test]
fn owner_alert_renders_details_from_a_shopify_order() {
    let owner_alert = rule(
        "owner-alert",
        r#"event_type == "orders/create" && double(event.total_price) >= 400.0"#,
        &["+52 55 1234 5678"],
        "{{ event.customer.first_name }} {{ event.customer.last_name }} acaba de comprar ${{ event.total_price }} {{ event.currency }}",
    );
    let plan = Engine::new()
        .plan(
            &event("orders/create", SHOPIFY_ORDER),
            &source(vec![owner_alert]),
            7,
        )
        .unwrap();
    assert!(plan.failures.is_empty(), "{:?}", plan.failures);
    assert_eq!(plan.jobs.len(), 1);
    let job = &plan.jobs[0];
    assert_eq!(job.body, "John Smith acaba de comprar $404.95 USD");
    assert_eq!(job.to, "+52 55 1234 5678");
    assert_eq!(
        job.job_id,
        foco_bus::job_id("evt-1", "rule-owner-alert", "+52 55 1234 5678")
    );
    assert_eq!(job.priority, Priority::Transactional as i32);
    assert_eq!(job.created_at_ms, 7);
}

#[test]
fn condition_false_produces_nothing() {
    let big_sales = rule(
        "big",
        "double(event.total_price) >= 1000.0",
        &["+525512345678"],
        "x",
    );
    let plan = Engine::new()
        .plan(
            &event("orders/create", SHOPIFY_ORDER),
            &source(vec![big_sales]),
            0,
        )
        .unwrap();
    assert!(plan.jobs.is_empty());
    assert!(plan.failures.is_empty());
    assert_eq!(plan.skipped, 1);
}

#[test]
fn signup_sends_code_to_the_phone_in_the_typeform_answers() {
    let welcome = rule(
        "welcome",
        r#"event_type == "form_response""#,
        &[
            r#"{{ (event.form_response.answers | selectattr("type", "eq", "phone_number") | first).phone_number }}"#,
        ],
        r#"Hola {{ (event.form_response.answers | selectattr("type", "eq", "text") | first).text }}, tu código de descuento es BIENVENIDA10"#,
    );
    let plan = Engine::new()
        .plan(
            &event("form_response", TYPEFORM_RESPONSE),
            &source(vec![welcome]),
            0,
        )
        .unwrap();
    assert!(plan.failures.is_empty(), "{:?}", plan.failures);
    assert_eq!(plan.jobs.len(), 1);
    assert_eq!(plan.jobs[0].to, "+525512345678");
    assert_eq!(
        plan.jobs[0].body,
        "Hola Laura, tu código de descuento es BIENVENIDA10"
    );
}

#[test]
fn a_failing_rule_is_reported_and_the_others_still_run() {
    let typo = rule(
        "typo",
        "",
        &["+525512345678"],
        "{{ event.custumer.first_name }}",
    );
    let bad_condition = rule(
        "bad-condition",
        "event.nope.deeper == 1",
        &["+525512345678"],
        "x",
    );
    let not_bool = rule("not-bool", "event.total_price", &["+525512345678"], "x");
    let good = rule("good", "", &["+525512345678"], "ok");
    let plan = Engine::new()
        .plan(
            &event("orders/create", SHOPIFY_ORDER),
            &source(vec![typo, bad_condition, not_bool, good]),
            0,
        )
        .unwrap();
    assert_eq!(plan.jobs.len(), 1);
    assert_eq!(plan.jobs[0].rule_id, "rule-good");
    let failed: Vec<&str> = plan
        .failures
        .iter()
        .map(|failure| failure.rule_name.as_str())
        .collect();
    assert_eq!(failed, ["typo", "bad-condition", "not-bool"]);
    assert!(matches!(plan.failures[0].error, RuleError::Template { .. }));
    assert!(
        plan.failures[0].error.to_string().contains("custumer"),
        "{}",
        plan.failures[0].error
    );
}

#[test]
fn rules_that_do_not_compile_are_reported() {
    let broken = rule("broken", "event_type ==", &["+525512345678"], "x");
    let broken_template = rule("broken-template", "", &["+525512345678"], "{{ event.x ");
    let plan = Engine::new()
        .plan(&event("", b"{}"), &source(vec![broken, broken_template]), 0)
        .unwrap();
    assert!(plan.jobs.is_empty());
    assert_eq!(plan.failures.len(), 2);
}

#[test]
fn duplicate_recipients_get_one_job_and_empty_ones_fail() {
    let duplicated = rule("dup", "", &["+525512345678", "{{ event.phone }}"], "hi");
    let plan = Engine::new()
        .plan(
            &event("", br#"{"phone": "+525512345678"}"#),
            &source(vec![duplicated]),
            0,
        )
        .unwrap();
    assert_eq!(plan.jobs.len(), 1);

    let empty = rule("empty", "", &["{{ event.phone }}"], "hi");
    let plan = Engine::new()
        .plan(&event("", br#"{"phone": ""}"#), &source(vec![empty]), 0)
        .unwrap();
    assert!(matches!(
        plan.failures[0].error,
        RuleError::EmptyRecipient { index: 0 }
    ));
}

#[test]
fn disabled_rules_are_ignored_and_templates_cannot_loop_for_ever() {
    let mut disabled = rule("disabled", "", &["+525512345678"], "hi");
    disabled.enabled = false;
    let looping = rule(
        "looping",
        "",
        &["+525512345678"],
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    );
    let plan = Engine::new()
        .plan(&event("", b"{}"), &source(vec![disabled, looping]), 0)
        .unwrap();
    assert!(plan.jobs.is_empty());
    assert_eq!(plan.failures.len(), 1);
    assert_eq!(plan.failures[0].rule_name, "looping");
}

#[test]
fn headers_are_visible_to_conditions() {
    let by_header = rule(
        "hdr",
        r#"headers["x-shopify-shop-domain"] == "ale.myshopify.com""#,
        &["+525512345678"],
        "hi",
    );
    let mut shopify = event("orders/create", SHOPIFY_ORDER);
    shopify
        .headers
        .insert("x-shopify-shop-domain".into(), "ale.myshopify.com".into());
    let plan = Engine::new()
        .plan(&shopify, &source(vec![by_header]), 0)
        .unwrap();
    assert_eq!(plan.jobs.len(), 1);
}

#[test]
fn an_event_that_is_not_json_is_refused_whole() {
    let any = rule("any", "", &["+525512345678"], "hi");
    assert!(
        Engine::new()
            .plan(&event("", b"not json"), &source(vec![any]), 0)
            .is_err()
    );
}
