use std::path::Path;

use crate::manifest::{Manifest, ManifestError, Plan};

/// Scenarios 2 and 3 of the architecture brief, as a user writes them.
const SCENARIOS: &str = r#"
account: tienda-ale
default_country: MX
timezone: America/Mexico_City
daily_sms_cap: 500
sources:
  - name: shop
    event_type: header:X-Shopify-Topic
    rules:
      - name: reminder
        when: 'event_type == "customers/create"'
        to: ['{{ event.phone }}']
        body: 'Hola {{ event.first_name }}, tu código BIENVENIDA sigue vigente'
        delay: 5d
        key: '{{ event.email }}'
        cancel_when: 'event_type == "orders/create"'
        cancel_key: '{{ event.customer.email }}'
        on_repeat: keep_first
        encoding: gsm7
        max_segments: 1
        cap: { count: 1, window: 24h }
      - name: abandoned-cart
        when: 'event_type == "checkouts/create"'
        to: ['{{ event.phone }}']
        body: 'Tu carrito te espera: {{ event.abandoned_checkout_url }}'
        send_at: '{{ event.created_at }}'
        key: '{{ event.token }}'
        cancel_when: 'event_type == "orders/create"'
        cancel_key: '{{ event.checkout_token }}'
      - name: owner-alert
        to: ["+52 55 1234 5678"]
        body: 'Venta nueva'
"#;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(Path::new("tienda.yaml"), text)
}

fn resolve(text: &str) -> Result<Plan, ManifestError> {
    parse(text)?.resolve(&|_| None)
}

fn error(result: Result<impl std::fmt::Debug, ManifestError>) -> String {
    result.expect_err("expected an error").to_string()
}

#[test]
fn scheduling_keys_become_rule_fields() {
    let plan = resolve(SCENARIOS).unwrap();
    assert_eq!(plan.account.daily_sms_cap, 500);
    let rules = &plan.sources[0].rules;

    let reminder = &rules[0].request;
    assert_eq!(reminder.delay, "5d");
    assert_eq!(reminder.send_at, "");
    assert_eq!(reminder.key, "{{ event.email }}");
    assert_eq!(reminder.cancel_when, r#"event_type == "orders/create""#);
    assert_eq!(reminder.cancel_key, "{{ event.customer.email }}");
    assert_eq!(reminder.on_repeat, "keep_first");
    assert_eq!(reminder.encoding, "gsm7");
    assert_eq!(reminder.max_segments, 1);
    assert_eq!(reminder.cap_count, 1);
    assert_eq!(reminder.cap_window, "24h");

    let cart = &rules[1].request;
    assert_eq!(cart.delay, "");
    assert_eq!(cart.send_at, "{{ event.created_at }}");
    assert_eq!(cart.key, "{{ event.token }}");
    assert_eq!(cart.cancel_key, "{{ event.checkout_token }}");
    assert_eq!(cart.on_repeat, "", "absent: control's default (replace)");
    assert_eq!(cart.encoding, "", "absent: control's default (unicode)");
    assert_eq!(cart.max_segments, 0);
    assert_eq!((cart.cap_count, cart.cap_window.as_str()), (0, ""));

    let alert = &rules[2].request;
    assert_eq!(
        (
            alert.delay.as_str(),
            alert.key.as_str(),
            alert.cancel_when.as_str()
        ),
        ("", "", "")
    );
}

#[test]
fn absent_daily_cap_means_none() {
    let text = SCENARIOS.replace("daily_sms_cap: 500\n", "");
    assert_eq!(resolve(&text).unwrap().account.daily_sms_cap, 0);
    let text = SCENARIOS.replace("daily_sms_cap: 500", "daily_sms_cap: 0");
    assert_eq!(
        error(resolve(&text)),
        "tienda.yaml: daily_sms_cap: must be at least 1; leave the key out for no cap"
    );
    let text = SCENARIOS.replace("daily_sms_cap: 500", "daily_sms_cap: -3");
    let message = error(parse(&text));
    assert!(
        message.starts_with("tienda.yaml: daily_sms_cap: "),
        "{message}"
    );
    assert!(message.contains("line 5"), "{message}");
}

#[test]
fn enumerated_values_are_checked_with_their_location() {
    let message = error(parse(
        &SCENARIOS.replace("on_repeat: keep_first", "on_repeat: keep_last"),
    ));
    assert!(
        message.starts_with("tienda.yaml: sources[0].rules[0].on_repeat: unknown variant `keep_last`, expected `replace` or `keep_first`"),
        "{message}"
    );
    assert!(message.contains("line 18"), "{message}");

    let message = error(parse(
        &SCENARIOS.replace("encoding: gsm7", "encoding: latin1"),
    ));
    assert!(
        message.starts_with("tienda.yaml: sources[0].rules[0].encoding: unknown variant `latin1`, expected `unicode` or `gsm7`"),
        "{message}"
    );

    let message = error(parse(
        &SCENARIOS.replace("max_segments: 1", "max_segments: two"),
    ));
    assert!(
        message.starts_with("tienda.yaml: sources[0].rules[0].max_segments: invalid type"),
        "{message}"
    );
}

#[test]
fn unknown_keys_inside_cap_are_errors() {
    let message = error(parse(&SCENARIOS.replace(
        "cap: { count: 1, window: 24h }",
        "cap: { count: 1, window: 24h, per: recipient }",
    )));
    assert!(
        message.starts_with("tienda.yaml: sources[0].rules[0].cap: unknown field `per`"),
        "{message}"
    );
    assert!(message.contains("line 21"), "{message}");

    let message = error(parse(
        &SCENARIOS.replace("cap: { count: 1, window: 24h }", "cap: { count: 1 }"),
    ));
    assert!(
        message.contains("sources[0].rules[0].cap: missing field `window`"),
        "{message}"
    );

    let message = error(parse(&SCENARIOS.replace(
        "        delay: 5d\n",
        "        delay: 5d\n        cancel: x\n",
    )));
    assert!(
        message.starts_with("tienda.yaml: sources[0].rules[0]: unknown field `cancel`"),
        "{message}"
    );
}

#[test]
fn keys_that_need_or_exclude_each_other() {
    let both = SCENARIOS.replace(
        "        delay: 5d\n",
        "        delay: 5d\n        send_at: '{{ event.at }}'\n",
    );
    assert_eq!(
        error(resolve(&both)),
        "tienda.yaml: sources[0].rules[0].send_at: `delay` and `send_at` exclude each other: give one of them"
    );

    let without_cancel_key =
        SCENARIOS.replace("        cancel_key: '{{ event.customer.email }}'\n", "");
    assert!(
        error(resolve(&without_cancel_key))
            .starts_with("tienda.yaml: sources[0].rules[0].cancel_when: needs `cancel_key`")
    );

    let without_cancel_when = SCENARIOS.replacen(
        "        cancel_when: 'event_type == \"orders/create\"'\n",
        "",
        1,
    );
    assert!(
        error(resolve(&without_cancel_when))
            .starts_with("tienda.yaml: sources[0].rules[0].cancel_key: needs `cancel_when`")
    );

    let without_key = SCENARIOS.replace("        key: '{{ event.email }}'\n", "");
    assert_eq!(
        error(resolve(&without_key)),
        "tienda.yaml: sources[0].rules[0].cancel_when: needs `key`: pending jobs are cancelled by their correlation key"
    );

    let repeat_without_key = SCENARIOS.replace(
        "        body: 'Venta nueva'\n",
        "        body: 'Venta nueva'\n        on_repeat: replace\n",
    );
    assert!(
        error(resolve(&repeat_without_key))
            .starts_with("tienda.yaml: sources[0].rules[2].on_repeat: needs `key`")
    );
}

#[test]
fn zero_and_empty_values_are_refused() {
    assert_eq!(
        error(resolve(
            &SCENARIOS.replace("max_segments: 1", "max_segments: 0")
        )),
        "tienda.yaml: sources[0].rules[0].max_segments: must be at least 1; leave the key out for no limit"
    );
    assert_eq!(
        error(resolve(&SCENARIOS.replace("count: 1,", "count: 0,"))),
        "tienda.yaml: sources[0].rules[0].cap.count: must be at least 1; leave `cap` out for no cap"
    );
    assert_eq!(
        error(resolve(&SCENARIOS.replace("window: 24h", "window: ''"))),
        "tienda.yaml: sources[0].rules[0].cap.window: needs a duration, e.g. 24h"
    );
    assert_eq!(
        error(resolve(&SCENARIOS.replace("delay: 5d", "delay: ' '"))),
        "tienda.yaml: sources[0].rules[0].delay: is empty; leave the key out instead"
    );
}

#[test]
fn validity_keys_become_rule_and_account_fields() {
    let text = SCENARIOS
        .replace(
            "daily_sms_cap: 500\n",
            "daily_sms_cap: 500\ndefault_valid_for: 4h\n",
        )
        .replace(
            "        send_at: '{{ event.created_at }}'\n",
            "        send_at: '{{ event.created_at }}'\n        valid_for: 2h\n",
        );
    let plan = resolve(&text).unwrap();
    assert_eq!(plan.account.default_valid_for, "4h");
    let rules = &plan.sources[0].rules;
    assert_eq!(rules[1].request.valid_for, "2h");
    assert_eq!(
        rules[0].request.valid_for, "",
        "absent: the account's default"
    );

    let absent = resolve(SCENARIOS).unwrap();
    assert_eq!(
        absent.account.default_valid_for, "",
        "absent: the built-in default"
    );

    let blank = text.replace("valid_for: 2h", "valid_for: ''");
    assert_eq!(
        error(resolve(&blank)),
        "tienda.yaml: sources[0].rules[1].valid_for: is empty; leave the key out instead"
    );
    let blank_default = text.replace("default_valid_for: 4h", "default_valid_for: ' '");
    assert!(
        error(resolve(&blank_default)).contains("default_valid_for: is empty"),
        "{}",
        error(resolve(&blank_default))
    );
}
