use super::*;
use foco_proto::v1::{Account, Source};

const SHOPIFY_ORDER: &[u8] = include_bytes!("../../../tests/fixtures/shopify__orders_create.json");
const TYPEFORM_RESPONSE: &[u8] =
    include_bytes!("../../../tests/fixtures/typeform__form_response.json");

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
            ..Default::default()
        }),
        rules,
        ..Default::default()
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
    let job = &plan.jobs[0].job;
    assert_eq!(job.body, "John Smith acaba de comprar $404.95 USD");
    assert_eq!(job.to, "+525512345678");
    assert_eq!(
        job.job_id,
        foco_bus::job_id("evt-1", "rule-owner-alert", "+525512345678")
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
    assert_eq!(plan.jobs[0].job.to, "+525512345678");
    assert_eq!(
        plan.jobs[0].job.body,
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
    assert_eq!(plan.jobs[0].job.rule_id, "rule-good");
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

/// What a condition fails with is logged and stored on the event: it names the
/// condition's keys, operators and functions and the values' types, never a
/// value from the payload.
#[test]
fn condition_errors_never_quote_the_payload() {
    const SECRET: &str = "sk_live_51HqRecognisableSecretValue";
    let payload = serde_json::json!({
        "api_key": SECRET,
        "lookup": {"other": 1},
        "items": [1, 2],
        "amount": 10,
    });
    let payload = serde_json::to_vec(&payload).unwrap();
    let conditions = [
        ("not-bool", "event.api_key"),
        ("add", "event.api_key + 1"),
        ("compare", "event.api_key < 1"),
        ("computed-key", "event.lookup[event.api_key] == 1"),
        ("index", "event.items[event.api_key] == 1"),
        ("method", "event.api_key.size(1) == 1"),
        ("convert", "int(event.api_key) > 0"),
        (
            "timestamp",
            "timestamp(event.api_key) > timestamp('2020-01-01T00:00:00Z')",
        ),
        ("divide", "int(event.amount) / 0 == 1"),
        ("missing", "event.lookup.nope == 1"),
    ];
    let rules = conditions
        .iter()
        .map(|(name, when)| rule(name, when, &["+525512345678"], "x"))
        .collect();
    let plan = Engine::new()
        .plan(&event("orders/create", &payload), &source(rules), 0)
        .unwrap();
    assert_eq!(plan.failures.len(), conditions.len(), "{:?}", plan.failures);
    for failure in &plan.failures {
        let text = failure.error.to_string();
        assert!(!text.contains(SECRET), "{}: {text}", failure.rule_name);
        assert!(!text.contains("sk_live"), "{}: {text}", failure.rule_name);
    }
    let text_of = |name: &str| {
        let failure = plan
            .failures
            .iter()
            .find(|failure| failure.rule_name == name);
        failure.unwrap().error.to_string()
    };
    assert!(
        text_of("not-bool").contains("string"),
        "{}",
        text_of("not-bool")
    );
    assert!(
        text_of("missing").contains("nope"),
        "{}",
        text_of("missing")
    );
}

/// Templates fail without quoting what they could not read either: an amount, a
/// time or an offset taken from the payload.
#[test]
fn template_errors_never_quote_the_payload() {
    const SECRET: &str = "sk_live_51HqRecognisableSecretValue";
    let payload = serde_json::json!({"token": SECRET, "huge": 99_999_999_999_999_999_i64});
    let payload = serde_json::to_vec(&payload).unwrap();
    let to = ["+525512345678"];
    let mut send_at = rule("send-at", "", &to, "x");
    send_at.send_at = "{{ event.token }}".into();
    let rules = vec![
        rule("money", "", &to, "{{ event.token | money('MXN') }}"),
        rule("date", "", &to, "{{ event.token | date }}"),
        rule("date-number", "", &to, "{{ event.huge | date }}"),
        rule(
            "shift",
            "",
            &to,
            "{{ '2026-01-01T00:00:00Z' | shift(event.token) }}",
        ),
        send_at,
    ];
    let count = rules.len();
    let plan = Engine::new()
        .plan(&event("orders/create", &payload), &source(rules), 0)
        .unwrap();
    assert_eq!(plan.failures.len(), count, "{:?}", plan.failures);
    for failure in &plan.failures {
        let text = failure.error.to_string();
        assert!(!text.contains("sk_live"), "{}: {text}", failure.rule_name);
        assert!(!text.contains("99999"), "{}: {text}", failure.rule_name);
    }
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
fn templates_see_the_event_its_headers_its_source_and_the_account() {
    let everything = rule(
        "all",
        "",
        &["+525512345678"],
        r#"{{ event.order_number }} {{ event_type }} {{ event_id }} {{ headers["x-topic"] }} {{ source.name }} {{ account.name }} {{ account.timezone }} {{ account.default_country }}"#,
    );
    let mut shopify = event("orders/create", SHOPIFY_ORDER);
    shopify
        .headers
        .insert("x-topic".into(), "orders/create".into());
    let plan = Engine::new()
        .plan(&shopify, &source(vec![everything.clone()]), 0)
        .unwrap();
    assert!(plan.failures.is_empty(), "{:?}", plan.failures);
    assert_eq!(
        plan.jobs[0].job.body,
        "1234 orders/create evt-1 orders/create shop tienda-ale America/Mexico_City MX"
    );

    // A source resolved without its account still renders, with empty fields
    // (and the trailing spaces trimmed).
    let mut accountless = source(vec![everything]);
    accountless.account = None;
    let plan = Engine::new().plan(&shopify, &accountless, 0).unwrap();
    assert!(plan.failures.is_empty(), "{:?}", plan.failures);
    assert_eq!(
        plan.jobs[0].job.body,
        "1234 orders/create evt-1 orders/create shop"
    );
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

/// Only the payload's fields that rules read are parsed: each template and
/// condition still sees every field it names, and a template that uses `event`
/// otherwise than by naming a field sees all of it.
#[test]
fn every_template_sees_what_it_reads_of_the_payload() {
    let payload = br#"{"tenant": "t1", "phone": "+525512345678", "customer": {"name": "Ana"}, "total": "10.50", "items": [1, 2, 3], "token": "c-9"}"#;
    let renders = |to: &str, body: &str| {
        let plan = Engine::new()
            .plan(
                &event("orders/create", payload),
                &source(vec![rule("r", r#"event.tenant == "t1""#, &[to], body)]),
                0,
            )
            .unwrap();
        assert!(plan.failures.is_empty(), "{body}: {:?}", plan.failures);
        (plan.jobs[0].job.to.clone(), plan.jobs[0].job.body.clone())
    };
    let owner = "+525512345678";
    assert_eq!(renders("{{ event.phone }}", "hola").0, "+525512345678");
    assert_eq!(
        renders(owner, "{{ event.customer.name }} {{ event.total }}").1,
        "Ana 10.50"
    );
    // Not a plain field: indexed, looped over, bound to a name, printed whole.
    assert_eq!(renders(owner, r#"{{ event["total"] }}"#).1, "10.50");
    assert_eq!(renders(owner, "{{ event | length }}").1, "6");
    assert_eq!(
        renders(owner, "{% for key in event | sort %}{{ key }} {% endfor %}").1,
        "customer items phone tenant token total"
    );
    assert_eq!(
        renders(owner, "{% set order = event %}{{ order.token }}").1,
        "c-9"
    );
    assert_eq!(
        renders(
            owner,
            "{% macro who() %}{{ event.customer.name }}{% endmacro %}{{ who() }}"
        )
        .1,
        "Ana"
    );
    assert_eq!(
        renders(owner, "{{ event.items | length }} {{ event.items[0] }}").1,
        "3 1"
    );
}

/// Keys and cancel keys read the payload too; a later event's cancel key finds
/// the job an earlier one scheduled under the same key.
#[test]
fn keys_and_cancel_keys_see_the_fields_they_name() {
    let cart = timed(
        rule(
            "cart",
            r#"event_type == "checkouts/create""#,
            &["+525512345678"],
            "vuelve",
        ),
        "1h",
        "{{ event.token }}",
        r#"event_type == "orders/create""#,
        "{{ event.checkout_token }}",
    );
    let engine = Engine::new();
    let plan = engine
        .plan(
            &event("checkouts/create", br#"{"token": "c-9", "other": [1]}"#),
            &source(vec![cart.clone()]),
            0,
        )
        .unwrap();
    assert_eq!(plan.jobs[0].key, "c-9");
    let mut shop = source(Vec::new());
    shop.cancel_rules = vec![cart];
    let plan = engine
        .plan(
            &event(
                "orders/create",
                br#"{"checkout_token": "c-9", "other": {}}"#,
            ),
            &shop,
            0,
        )
        .unwrap();
    assert_eq!(plan.cancellations.len(), 1);
    assert_eq!(plan.cancellations[0].key, "c-9");
}

/// A payload is JSON or it is refused, whether or not rules read the part
/// that is broken.
#[test]
fn a_payload_broken_where_no_rule_reads_is_still_refused() {
    let plain = rule(
        "r",
        r#"event.tenant == "t1""#,
        &["+525512345678"],
        "{{ event.total }}",
    );
    for payload in [
        &br#"{"tenant": "t1", "total": 1, "unread": [1, }"#[..],
        br#"{"tenant": "t1", "total": 1} {"#,
        b"{\"tenant\": \"t1\", \"unread\": \"\xff\"}",
    ] {
        assert!(
            Engine::new()
                .plan(
                    &event("orders/create", payload),
                    &source(vec![plain.clone()]),
                    0
                )
                .is_err(),
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
}

fn timed(mut rule: Rule, delay: &str, key: &str, cancel_when: &str, cancel_key: &str) -> Rule {
    rule.delay = delay.into();
    rule.key = key.into();
    rule.cancel_when = cancel_when.into();
    rule.cancel_key = cancel_key.into();
    rule
}

#[test]
fn a_delayed_rule_is_due_after_the_event_and_carries_its_key() {
    let reminder = timed(
        rule(
            "reminder",
            r#"event_type == "signup""#,
            &["{{ event.phone }}"],
            "Tu código sigue vigente",
        ),
        "5d",
        "{{ event.email }}",
        r#"event_type == "purchase""#,
        "{{ event.email }}",
    );
    let mut signup = event(
        "signup",
        br#"{"phone": "55 1234 5678", "email": "ana@example.com"}"#,
    );
    signup.received_at_ms = 1_000;
    let plan = Engine::new()
        .plan(&signup, &source(vec![reminder]), 2_000)
        .unwrap();
    assert!(plan.failures.is_empty(), "{:?}", plan.failures);
    let job = &plan.jobs[0];
    assert_eq!(job.due_at_ms, Some(1_000 + 5 * 86_400_000));
    assert_eq!(job.job.due_at_ms, 1_000 + 5 * 86_400_000);
    assert_eq!(job.key, "ana@example.com");
    assert_eq!(job.on_repeat, OnRepeat::Replace);
}

#[test]
fn an_event_of_any_source_in_the_account_cancels_by_key() {
    let reminder = timed(
        rule(
            "reminder",
            r#"event_type == "signup""#,
            &["{{ event.phone }}"],
            "x",
        ),
        "5d",
        "{{ event.email }}",
        r#"event_type == "orders/create""#,
        "{{ event.customer.email }}",
    );
    let mut shop = source(vec![]);
    shop.cancel_rules = vec![reminder];
    let plan = Engine::new()
        .plan(&event("orders/create", SHOPIFY_ORDER), &shop, 0)
        .unwrap();
    assert!(plan.jobs.is_empty());
    assert_eq!(
        plan.cancellations,
        vec![Cancellation {
            rule_id: "rule-reminder".into(),
            rule_name: "reminder".into(),
            key: "john@example.com".into()
        }]
    );
}

#[test]
fn send_at_is_read_in_the_account_time_zone() {
    let mut before_appointment = rule(
        "before",
        "",
        &["+525512345678"],
        "Tu cita es a las {{ event.start | date('time') }}",
    );
    before_appointment.send_at = r#"{{ event.start | shift("-1h") }}"#.into();
    let plan = Engine::new()
        .plan(
            &event("", br#"{"start": "2026-12-01 10:00"}"#),
            &source(vec![before_appointment]),
            0,
        )
        .unwrap();
    assert!(plan.failures.is_empty(), "{:?}", plan.failures);
    // 09:00 in Mexico City is 15:00 UTC.
    assert_eq!(plan.jobs[0].due_at_ms, Some(1_796_137_200_000));
    assert_eq!(plan.jobs[0].job.body, "Tu cita es a las 10:00");
}

#[test]
fn gsm7_rules_transliterate_and_segments_are_counted() {
    let mut cheap = rule(
        "cheap",
        "",
        &["+525512345678"],
        "Tu código es {{ event.code }}",
    );
    cheap.encoding = "gsm7".into();
    let unicode = rule(
        "unicode",
        "",
        &["+525512345679"],
        "Tu código es {{ event.code }}",
    );
    let plan = Engine::new()
        .plan(
            &event("", br#"{"code": "ABC"}"#),
            &source(vec![cheap, unicode]),
            0,
        )
        .unwrap();
    assert_eq!(plan.jobs[0].job.body, "Tu codigo es ABC");
    assert_eq!(
        (
            plan.jobs[0].job.encoding.as_str(),
            plan.jobs[0].job.segments
        ),
        ("GSM-7", 1)
    );
    assert_eq!(plan.jobs[1].job.body, "Tu código es ABC");
    assert_eq!(
        (
            plan.jobs[1].job.encoding.as_str(),
            plan.jobs[1].job.segments
        ),
        ("UCS-2", 1)
    );
}

#[test]
fn over_max_segments_is_an_error_not_a_truncation() {
    let mut short = rule("short", "", &["+525512345678"], "{{ event.text }}");
    short.max_segments = 1;
    let long_text = format!(r#"{{"text": "{}"}}"#, "á".repeat(71));
    let plan = Engine::new()
        .plan(&event("", long_text.as_bytes()), &source(vec![short]), 0)
        .unwrap();
    assert!(plan.jobs.is_empty());
    assert_eq!(
        plan.failures[0].error.to_string(),
        "body is 2 UCS-2 segments, more than max_segments 1"
    );
}

#[test]
fn recipients_are_normalised_deduplicated_and_invalid_ones_reported() {
    let many = rule(
        "many",
        "",
        &[
            "+52 55 1234 5678",
            "5512345678",
            "{{ event.phones | join(',') }}",
            "not a phone",
        ],
        "hola",
    );
    let plan = Engine::new()
        .plan(
            &event("", br#"{"phones": ["55 8765 4321"]}"#),
            &source(vec![many]),
            0,
        )
        .unwrap();
    let to: Vec<&str> = plan.jobs.iter().map(|job| job.job.to.as_str()).collect();
    assert_eq!(to, ["+525512345678", "+525587654321"]);
    assert_eq!(plan.invalid_recipients.len(), 1);
    assert_eq!(plan.invalid_recipients[0].raw, "not a phone");
}

#[test]
fn inconsistent_timing_settings_are_refused() {
    let mut both = rule("both", "", &["+525512345678"], "x");
    both.delay = "1h".into();
    both.send_at = "{{ event.at }}".into();
    assert!(validate_rule(&both).is_err());
    let cancel_without_key = timed(
        rule("c", "", &["+525512345678"], "x"),
        "1h",
        "",
        "true",
        "{{ event.k }}",
    );
    assert!(
        validate_rule(&cancel_without_key)
            .unwrap_err()
            .to_string()
            .contains("needs key")
    );
    let mut bad_encoding = rule("e", "", &["+525512345678"], "x");
    bad_encoding.encoding = "ascii".into();
    assert!(validate_rule(&bad_encoding).is_err());
    let mut bad_cap = rule("cap", "", &["+525512345678"], "x");
    bad_cap.cap_count = 1;
    assert!(
        validate_rule(&bad_cap)
            .unwrap_err()
            .to_string()
            .contains("cap_window")
    );
}

#[test]
fn warnings_point_at_literal_characters_that_force_ucs2() {
    let spanish = rule(
        "es",
        "",
        &["+525512345678"],
        "Tu código: {{ event.código }}",
    );
    assert_eq!(rule_warnings(&spanish).len(), 1);
    assert!(rule_warnings(&spanish)[0].contains("'ó'"));
    let mut transliterated = spanish.clone();
    transliterated.encoding = "gsm7".into();
    assert!(rule_warnings(&transliterated).is_empty());
    assert!(
        rule_warnings(&rule(
            "plain",
            "",
            &["+525512345678"],
            "Hola ¿qué tal? {{ x }}"
        ))
        .is_empty()
    );
}

#[test]
fn preview_keeps_every_detail() {
    let owner_alert = rule(
        "owner-alert",
        r#"event_type == "orders/create""#,
        &["+52 55 1234 5678", "12"],
        "Venta: {{ event.total_price | money(event.currency) }}",
    );
    let previews = Engine::new()
        .preview(
            &event("orders/create", SHOPIFY_ORDER),
            &source(vec![owner_alert]),
            None,
            0,
        )
        .unwrap();
    let evaluation = previews[0].result.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(evaluation.body, "Venta: $404.95");
    assert_eq!(
        evaluation.recipients[0].e164.as_deref(),
        Ok("+525512345678")
    );
    assert!(evaluation.recipients[1].e164.is_err());
}

#[test]
fn a_payload_with_thousands_of_numbers_is_cut_to_the_limits_and_reported() {
    let numbers: Vec<String> = (0..10_000)
        .map(|index| format!("+52 55 {:04} {:04}", 1000 + index / 10_000, index % 10_000))
        .collect();
    let payload = serde_json::json!({ "phones": numbers.join(", ") });
    let fan_out = rule("fan-out", "", &["{{ event.phones }}"], "hola");
    let owner = rule("owner", "", &["+525512345678", "55 1234 5678"], "venta");
    let engine = Engine::with_limits(Limits {
        recipients_per_rule: 10,
        jobs_per_event: 12,
    });
    let plan = engine
        .plan(
            &event("orders/create", payload.to_string().as_bytes()),
            &source(vec![fan_out, owner]),
            7,
        )
        .unwrap();
    let fan_out_jobs = plan
        .jobs
        .iter()
        .filter(|job| job.rule_name == "fan-out")
        .count();
    let owner_jobs = plan
        .jobs
        .iter()
        .filter(|job| job.rule_name == "owner")
        .count();
    assert_eq!(
        (fan_out_jobs, owner_jobs),
        (10, 1),
        "owner's two spellings are one recipient"
    );
    assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    assert_eq!(plan.notes[0].rule_name, "fan-out");
    assert_eq!(plan.notes[0].kind, RECIPIENTS_LIMITED);
    assert!(
        plan.notes[0].detail.starts_with("9990 more recipient(s)"),
        "{}",
        plan.notes[0].detail
    );

    // The per-event limit binds across rules.
    let engine = Engine::with_limits(Limits {
        recipients_per_rule: 10,
        jobs_per_event: 10,
    });
    let payload = serde_json::json!({ "phones": numbers[..10].join(", ") });
    let plan = engine
        .plan(
            &event("orders/create", payload.to_string().as_bytes()),
            &source(vec![
                rule("fan-out", "", &["{{ event.phones }}"], "hola"),
                rule("owner", "", &["+525512345678"], "venta"),
            ]),
            7,
        )
        .unwrap();
    assert_eq!(plan.jobs.len(), 10);
    assert_eq!(plan.notes.len(), 1);
    assert_eq!(plan.notes[0].rule_name, "owner");
}

#[test]
fn control_characters_from_a_payload_never_reach_a_job_and_keys_are_bounded() {
    let payload = serde_json::json!({
        "name": "Ana\u{0}\u{1b}[31m\tRuiz\r\n",
        "token": "abc\u{0}def",
        "long": "k".repeat(MAX_KEY_CHARS + 1),
    });
    let mut delayed = rule(
        "cart",
        "",
        &["+525512345678"],
        "Hola {{ event.name }} adiós",
    );
    delayed.delay = "1h".into();
    delayed.key = "{{ event.token }}".into();
    let mut too_long = rule("too-long", "", &["+525512345678"], "hola");
    too_long.delay = "1h".into();
    too_long.key = "{{ event.long }}".into();
    let plan = Engine::new()
        .plan(
            &event("checkouts/create", payload.to_string().as_bytes()),
            &source(vec![delayed, too_long]),
            7,
        )
        .unwrap();
    assert_eq!(plan.jobs.len(), 1);
    assert_eq!(plan.jobs[0].job.body, "Hola Ana[31m Ruiz\n adiós");
    assert_eq!(plan.jobs[0].key, "abcdef");
    assert_eq!(plan.failures.len(), 1);
    assert_eq!(plan.failures[0].rule_name, "too-long");
    assert!(
        plan.failures[0].error.to_string().contains("more than 256"),
        "{}",
        plan.failures[0].error
    );
}

#[test]
fn an_iterating_condition_refuses_a_payload_list_past_the_bound_and_others_still_run() {
    let items: Vec<u32> = (0..10_000).collect();
    let payload = serde_json::json!({ "items": items, "tenant": "t1" });
    let iterating = rule(
        "any-big",
        "event.items.exists(i, event.items.exists(j, i + j == 19997))",
        &["+525512345678"],
        "hola",
    );
    let plain = rule(
        "owner",
        r#"event.tenant == "t1""#,
        &["+525512345678"],
        "venta",
    );
    let plan = Engine::new()
        .plan(
            &event("orders/create", payload.to_string().as_bytes()),
            &source(vec![iterating, plain]),
            7,
        )
        .unwrap();
    assert_eq!(plan.jobs.len(), 1);
    assert_eq!(plan.jobs[0].rule_name, "owner");
    assert_eq!(plan.failures.len(), 1);
    assert!(
        plan.failures[0]
            .error
            .to_string()
            .contains("a list of 10000 elements"),
        "{}",
        plan.failures[0].error
    );
}

/// The list bound follows how deep comprehensions nest, so that any condition
/// costs at most `MAX_ITERATION_STEPS` steps on any payload.
#[test]
fn nested_comprehensions_see_shorter_lists() {
    let plan_with = |length: u32, condition: &str| {
        let items: Vec<u32> = (0..length).collect();
        let payload = serde_json::json!({ "items": items });
        Engine::new()
            .plan(
                &event("orders/create", payload.to_string().as_bytes()),
                &source(vec![rule("r", condition, &["+525512345678"], "hola")]),
                7,
            )
            .unwrap()
    };
    let nested = "event.items.all(i, event.items.all(j, i + j >= 0))";
    let single = "event.items.all(i, i >= 0)";
    let nested_cap = max_iterated_list(2) as u32;
    let single_cap = max_iterated_list(1) as u32;
    assert_eq!(nested_cap, 64);
    assert_eq!(single_cap, 4096);
    assert_eq!(plan_with(nested_cap, nested).jobs.len(), 1);
    let refused = plan_with(nested_cap + 1, nested);
    assert!(refused.jobs.is_empty());
    assert!(
        refused.failures[0]
            .error
            .to_string()
            .contains("nest 2 deep sees at most 64"),
        "{}",
        refused.failures[0].error
    );
    assert_eq!(plan_with(single_cap, single).jobs.len(), 1);
    assert!(plan_with(single_cap + 1, single).jobs.is_empty());
    // A condition that does not iterate reads any list.
    assert_eq!(plan_with(10_000, "size(event.items) > 0").jobs.len(), 1);
}

#[test]
fn a_job_carries_its_deadline_from_the_rule_the_account_or_the_default() {
    const HOUR_MS: i64 = 3_600_000;
    let received_at_ms = 1_796_137_200_000;
    let arrived = |payload: &[u8]| EventEnvelope {
        received_at_ms,
        ..event("", payload)
    };
    let immediate = rule("now", "", &["+525512345678"], "hola");
    let mut own = rule("own", "", &["+525512345679"], "hola");
    own.valid_for = "10m".into();
    let plan = Engine::new()
        .plan(&arrived(b"{}"), &source(vec![immediate.clone(), own]), 0)
        .unwrap();
    // Immediate: from the event's arrival; the built-in default without an
    // account default.
    assert_eq!(plan.jobs[0].job.expires_at_ms, received_at_ms + HOUR_MS);
    assert_eq!(plan.jobs[1].job.expires_at_ms, received_at_ms + 600_000);

    let mut with_default = source(vec![immediate]);
    if let Some(account) = with_default.account.as_mut() {
        account.default_valid_for = "4h".into();
    }
    let plan = Engine::new()
        .plan(&arrived(b"{}"), &with_default, 0)
        .unwrap();
    assert_eq!(plan.jobs[0].job.expires_at_ms, received_at_ms + 4 * HOUR_MS);
}

#[test]
fn a_send_at_long_past_is_due_at_once_but_already_past_its_deadline() {
    let mut reminder = rule(
        "reminder",
        "",
        &["+525512345678"],
        "Tu cita es a las {{ event.start | date('%H:%M') }}",
    );
    reminder.send_at = r#"{{ event.start | shift("-1h") }}"#.into();
    let plan = Engine::new()
        .plan(
            &event("", br#"{"start": "2023-03-01 10:20"}"#),
            &source(vec![reminder]),
            1_796_137_200_000,
        )
        .unwrap();
    let job = &plan.jobs[0].job;
    // 09:20 in Mexico City on 2023-03-01 is 15:20 UTC; the default is an hour.
    assert_eq!(job.due_at_ms, 1_677_684_000_000);
    assert_eq!(job.expires_at_ms, 1_677_684_000_000 + 3_600_000);
    assert!(foco_bus::validity::is_past_deadline(job, 1_796_137_200_000));
}

#[test]
fn a_bad_valid_for_is_refused_with_the_field() {
    for (text, why) in [
        ("soon", "not a duration"),
        ("10s", "shorter than a minute"),
        ("401d", "longer than 400 days"),
    ] {
        let mut bad = rule("bad", "", &["+525512345678"], "x");
        bad.valid_for = text.into();
        let error = validate_rule(&bad).unwrap_err().to_string();
        assert!(
            error.contains("valid_for") && error.contains(why),
            "{error}"
        );
    }
}
