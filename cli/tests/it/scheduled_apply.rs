//! `foco apply` with delays, cancel clauses, encodings and caps: stored as
//! written, idempotent, and control's warnings printed.

use foco_cli::apply::{ApplyOptions, apply_file};
use foco_cli::commands;
use foco_cli::output::OutputFormat;
use foco_proto::v1::{GetAccountRequest, ListRulesRequest, Rule};

use crate::harness::{Control, ControlClients, INGRESS_URL, write_config};

/// Scenarios 2 and 3, and an owner alert whose accent forces UCS-2.
pub const SCHEDULED_CONFIG: &str = r#"
account: tienda-ale
default_country: MX
timezone: America/Mexico_City
daily_sms_cap: 500
providers:
  - name: primary
    kind: console
    default: true
sources:
  - name: shop
    event_type: header:X-Shopify-Topic
    rules:
      - name: abandoned-cart
        when: 'event_type == "checkouts/create"'
        to: ['{{ event.phone }}']
        body: 'Hola {{ event.customer.first_name }}, tu carrito te espera: {{ event.abandoned_checkout_url }}'
        delay: 1h
        key: '{{ event.token }}'
        cancel_when: 'event_type == "orders/create"'
        cancel_key: '{{ event.checkout_token }}'
        encoding: gsm7
        max_segments: 2
        cap: { count: 1, window: 24h }
      - name: code-reminder
        when: 'event_type == "customers/create"'
        to: ['{{ event.phone }}']
        body: 'Hola {{ event.first_name }}, tu código BIENVENIDA10 sigue vigente'
        delay: 5d
        key: '{{ event.email }}'
        cancel_when: 'event_type == "orders/create"'
        cancel_key: '{{ event.customer.email }}'
        on_repeat: keep_first
        encoding: gsm7
      - name: owner-alert
        when: 'event_type == "orders/create"'
        to: ["+52 55 1234 5678"]
        body: 'Nueva compra de {{ event.customer.first_name }}: acción requerida'
"#;

fn options() -> ApplyOptions {
    ApplyOptions {
        ingress_url: INGRESS_URL.to_owned(),
        prune: false,
    }
}

#[tokio::test]
#[allow(clippy::too_many_lines, reason = "one scenario, step by step")]
async fn scheduling_keys_apply_idempotently_and_warnings_are_printed() {
    let control = Control::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, SCHEDULED_CONFIG);
    let lookup = |_: &str| None;
    let mut api = control.api();

    let mut first_output = Vec::new();
    let first = apply_file(&mut api, &path, &lookup, &options(), &mut first_output)
        .await
        .unwrap();
    let rules_after_first = list_rules(&control).await;
    let mut second_output = Vec::new();
    let second = apply_file(&mut api, &path, &lookup, &options(), &mut second_output)
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(
        String::from_utf8_lossy(&first_output),
        String::from_utf8_lossy(&second_output)
    );
    // Every upsert touches updated_at; everything else stays as it was.
    let without_update_time = |rules: Vec<Rule>| {
        rules
            .into_iter()
            .map(|rule| Rule {
                updated_at_ms: 0,
                ..rule
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_update_time(rules_after_first.clone()),
        without_update_time(list_rules(&control).await),
        "nothing changed"
    );

    let expected_warning = "body contains 'ó' which forces UCS-2 (70 characters per segment instead of 160); use encoding: gsm7 to transliterate";
    let expected_warning = format!("shop/owner-alert: {expected_warning}");
    assert_eq!(first.warnings, [expected_warning.as_str()]);
    let printed = String::from_utf8(first_output).unwrap();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines[0], format!("warning: {expected_warning}"));
    assert!(lines[1].starts_with("source shop: https://hooks.example.test/v1/hooks/src_"));
    assert!(lines[2].ends_with("account tienda-ale, 1 provider, 1 source, 3 rules"));
    assert_eq!(lines.len(), 3, "{printed}");

    let cart = &rules_after_first[0];
    assert_eq!(cart.name, "abandoned-cart");
    assert_eq!(cart.delay, "1h");
    assert_eq!(cart.key, "{{ event.token }}");
    assert_eq!(cart.cancel_when, r#"event_type == "orders/create""#);
    assert_eq!(cart.cancel_key, "{{ event.checkout_token }}");
    assert_eq!(cart.on_repeat, "replace", "control's default");
    assert_eq!(cart.encoding, "gsm7");
    assert_eq!(cart.max_segments, 2);
    assert_eq!((cart.cap_count, cart.cap_window.as_str()), (1, "24h"));
    assert!(cart.warnings.is_empty());
    let reminder = &rules_after_first[1];
    assert_eq!(
        (reminder.delay.as_str(), reminder.on_repeat.as_str()),
        ("5d", "keep_first")
    );
    assert!(
        reminder.warnings.is_empty(),
        "gsm7 transliterates the 'ó' of código"
    );

    let account = api
        .get_account(GetAccountRequest {
            account: "tienda-ale".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(account.daily_sms_cap, 500);

    // `rules list -o json` shows the new settings and the warnings.
    let mut listing = Vec::new();
    commands::list_rules(
        &mut api,
        "tienda-ale",
        "shop",
        OutputFormat::Json,
        &mut listing,
    )
    .await
    .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listing).unwrap();
    assert_eq!(listed[0]["cap_window"], "24h");
    assert_eq!(listed[1]["delay"], "5d");
    assert_eq!(
        format!(
            "shop/owner-alert: {}",
            listed[2]["warnings"][0].as_str().unwrap()
        ),
        expected_warning
    );

    // Removing a key from the file removes the setting: the file is the truth.
    let without_delay = SCHEDULED_CONFIG
        .replace("        delay: 5d\n", "")
        .replace("daily_sms_cap: 500\n", "");
    let path = write_config(&dir, &without_delay);
    apply_file(&mut api, &path, &lookup, &options(), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(list_rules(&control).await[1].delay, "");
    let account = api
        .get_account(GetAccountRequest {
            account: "tienda-ale".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(account.daily_sms_cap, 0);
}

#[tokio::test]
async fn control_refusals_of_scheduling_keys_name_the_rule_location() {
    let control = Control::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, &SCHEDULED_CONFIG.replace("delay: 5d", "delay: soon"));
    let error = apply_file(
        &mut control.api(),
        &path,
        &|_| None,
        &options(),
        &mut Vec::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    let expected_start = format!(
        "{}: sources[0].rules[1]: save rule \"code-reminder\" of source \"shop\": invalid: ",
        path.display()
    );
    assert!(error.starts_with(&expected_start), "{error}");
    assert!(error.contains("delay"), "{error}");
    assert!(error.contains("soon"), "{error}");
}

async fn list_rules(control: &Control) -> Vec<Rule> {
    control
        .api()
        .list_rules(ListRulesRequest {
            account: "tienda-ale".to_owned(),
            source: "shop".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .rules
}

#[tokio::test]
async fn validity_keys_apply_and_a_bad_one_is_refused_with_its_location() {
    let control = Control::start().await;
    let dir = tempfile::tempdir().unwrap();
    let with_validity = SCHEDULED_CONFIG
        .replace(
            "daily_sms_cap: 500\n",
            "daily_sms_cap: 500\ndefault_valid_for: 4h\n",
        )
        .replace(
            "        delay: 1h\n",
            "        delay: 1h\n        valid_for: 30m\n",
        );
    let path = write_config(&dir, &with_validity);
    let mut api = control.api();
    apply_file(&mut api, &path, &|_| None, &options(), &mut Vec::new())
        .await
        .unwrap();
    let rules = list_rules(&control).await;
    assert_eq!(
        (rules[0].name.as_str(), rules[0].valid_for.as_str()),
        ("abandoned-cart", "30m")
    );
    assert_eq!(rules[1].valid_for, "", "absent: the account's default");
    let account = api
        .get_account(GetAccountRequest {
            account: "tienda-ale".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(account.default_valid_for, "4h");

    let path = write_config(
        &dir,
        &with_validity.replace("valid_for: 30m", "valid_for: 5s"),
    );
    let error = apply_file(&mut api, &path, &|_| None, &options(), &mut Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("sources[0].rules[0]"), "{error}");
    assert!(error.contains("valid_for"), "{error}");
    assert!(error.contains("shorter than a minute"), "{error}");
}
