//! `foco preview`, `foco jobs` and `foco events` against control's
//! SchedulingService. Jobs and reports are written straight into their tables
//! (the schema is the contract between control and the rules service), so these
//! tests need neither NATS consumers nor a scheduler.

use std::io::Write as _;
use std::process::Stdio;

use chrono::{DateTime, Utc};
use foco_cli::apply::{ApplyOptions, apply_file};
use foco_cli::output::OutputFormat;
use foco_cli::{events, jobs, preview};
use foco_proto::v1::{
    CancelScheduledJobsRequest, ListRulesRequest, ListScheduledJobsRequest, PreviewRulesRequest,
    UpsertRuleRequest,
};
use serde_json::{Value, json};

use crate::harness::{ADMIN_KEY, Control, ControlClients, INGRESS_URL, write_config};
use crate::scheduled_apply::SCHEDULED_CONFIG;

const ACCOUNT: &str = "tienda-ale";

async fn applied_control() -> Control {
    crate::harness::applied_control(SCHEDULED_CONFIG, &|_| None).await
}

fn preview_request(rule: &str, topic: &str, payload: Value) -> PreviewRulesRequest {
    PreviewRulesRequest {
        account: ACCOUNT.to_owned(),
        source: "shop".to_owned(),
        rule: rule.to_owned(),
        payload: payload.to_string(),
        headers: [("X-Shopify-Topic".to_owned(), topic.to_owned())].into(),
        ..PreviewRulesRequest::default()
    }
}

async fn preview_json(control: &Control, request: PreviewRulesRequest) -> Value {
    let mut out = Vec::new();
    preview::preview(
        &mut control.api(),
        &mut control.scheduling(),
        request,
        OutputFormat::Json,
        &mut out,
    )
    .await
    .unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn millis(rfc3339: &Value) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339.as_str().expect("a send time"))
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn preview_shows_recipients_encoding_send_time_and_key() {
    let control = applied_control().await;
    let before = Utc::now().timestamp_millis();
    let signup = json!({
        "name": "ale ruiz",
        "first_name": "Ale",
        "email": "ale@example.com",
        "phone": "55 1234 5678",
    });
    let previewed = preview_json(
        &control,
        preview_request("code-reminder", "customers/create", signup),
    )
    .await;
    assert_eq!(previewed["event_type"], "customers/create");
    assert_eq!(previewed["timezone"], "America/Mexico_City");
    let reminder = &previewed["rules"][0];
    assert_eq!(reminder["rule"], "code-reminder");
    assert_eq!(reminder["error"], "");
    assert_eq!(reminder["matched"], true);
    assert_eq!(
        reminder["recipients"],
        json!([{"raw": "55 1234 5678", "e164": "+525512345678", "error": ""}])
    );
    // encoding: gsm7 transliterated "código": one GSM-7 segment.
    assert_eq!(
        reminder["body"],
        "Hola Ale, tu codigo BIENVENIDA10 sigue vigente"
    );
    assert_eq!(reminder["encoding"], "GSM-7");
    assert_eq!(reminder["segments"], 1);
    assert_eq!(reminder["characters"], 46);
    assert_eq!(reminder["key"], "ale@example.com");
    let five_days = 5 * 24 * 3600 * 1000;
    let send_at = millis(&reminder["send_at"]);
    assert!(
        // Shown to the second, so up to 999 ms earlier than the exact instant.
        (before + five_days - 1000..=Utc::now().timestamp_millis() + five_days).contains(&send_at),
        "{send_at}"
    );
    assert!(
        reminder["send_at"].as_str().unwrap().ends_with("-06:00"),
        "shown in the account's time zone: {}",
        reminder["send_at"]
    );

    // Every rule of the source for an order: only the owner alert matches, and
    // its accent keeps it UCS-2.
    let order = json!({
        "customer": {"first_name": "Ale", "email": "ale@example.com"},
        "checkout_token": "tok-1",
    });
    let previewed = preview_json(&control, preview_request("", "orders/create", order)).await;
    let rules = previewed["rules"].as_array().unwrap();
    let by_name = |name: &str| {
        rules
            .iter()
            .find(|rule| rule["rule"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {previewed}"))
    };
    assert_eq!(by_name("abandoned-cart")["matched"], false);
    assert_eq!(by_name("code-reminder")["matched"], false);
    let alert = by_name("owner-alert");
    assert_eq!(alert["matched"], true);
    assert_eq!(alert["body"], "Nueva compra de Ale: acción requerida");
    assert_eq!(alert["encoding"], "UCS-2");
    assert_eq!(alert["segments"], 1);
    assert_eq!(alert["ucs2_characters"], json!(["ó"]));
    assert_eq!(alert["send_at"], Value::Null, "sent at once");
    assert_eq!(alert["recipients"][0]["e164"], "+525512345678");
}

#[tokio::test]
async fn preview_reports_render_errors_and_unknown_rules() {
    let control = applied_control().await;
    // No abandoned_checkout_url: the body cannot render (strict undefined).
    let checkout =
        json!({"token": "tok-1", "phone": "+52 55 1234 5678", "customer": {"first_name": "Ale"}});
    let previewed = preview_json(
        &control,
        preview_request("abandoned-cart", "checkouts/create", checkout),
    )
    .await;
    let cart = &previewed["rules"][0];
    assert_ne!(cart["error"], "", "{previewed}");

    let mut out = Vec::new();
    let error = preview::preview(
        &mut control.api(),
        &mut control.scheduling(),
        preview_request("nope", "orders/create", json!({})),
        OutputFormat::Table,
        &mut out,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with(r#"preview rule "nope" of source "shop": not found"#),
        "{error}"
    );
}

#[tokio::test]
async fn a_draft_rule_is_previewed_checked_like_a_save_and_never_stored() {
    let control = applied_control().await;
    let stored_before = control
        .api()
        .list_rules(ListRulesRequest {
            account: ACCOUNT.to_owned(),
            source: "shop".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .rules;
    let draft = UpsertRuleRequest {
        name: "owner-alert".to_owned(),
        when: r#"event_type == "orders/create""#.to_owned(),
        to: vec!["55 1234 5678".to_owned()],
        body: "{{ event.customer.first_name }} compró".to_owned(),
        encoding: "gsm7".to_owned(),
        ..UpsertRuleRequest::default()
    };
    let previewed = control
        .scheduling()
        .preview_rules(PreviewRulesRequest {
            draft: Some(draft.clone()),
            ..preview_request(
                "",
                "orders/create",
                json!({"customer": {"first_name": "Ale"}}),
            )
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(previewed.rules.len(), 1, "only the draft is previewed");
    let rule = &previewed.rules[0];
    assert!(rule.matched && rule.error.is_empty(), "{rule:?}");
    assert_eq!(rule.body, "Ale compro");
    assert_eq!(rule.encoding, "GSM-7");
    assert_eq!(rule.recipients[0].e164, "+525512345678");

    let refused = control
        .scheduling()
        .preview_rules(PreviewRulesRequest {
            draft: Some(UpsertRuleRequest {
                body: "{{ event.customer.first_name".to_owned(),
                ..draft
            }),
            ..preview_request("", "orders/create", json!({}))
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");

    let stored_after = control
        .api()
        .list_rules(ListRulesRequest {
            account: ACCOUNT.to_owned(),
            source: "shop".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(stored_before, stored_after, "a preview stored something");
}

#[tokio::test]
async fn the_binary_previews_a_payload_from_stdin() {
    let control = applied_control().await;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_foco"));
    command
        .args([
            "preview",
            "--source",
            "shop",
            "--rule",
            "abandoned-cart",
            "--payload",
            "-",
            "-H",
            "X-Shopify-Topic: checkouts/create",
        ])
        .env("FOCO_API_URL", &control.grpc_url)
        .env("FOCO_API_KEY", ADMIN_KEY)
        .env("FOCO_ACCOUNT", ACCOUNT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        let checkout = json!({
            "token": "tok-1",
            "phone": "+52 55 1234 5678",
            "customer": {"first_name": "Ale"},
            "abandoned_checkout_url": "https://tienda.example/c/tok-1",
        });
        child
            .stdin
            .take()
            .unwrap()
            .write_all(checkout.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        printed.starts_with("event type: checkouts/create\n\nrule abandoned-cart: matched\n"),
        "{printed}"
    );
    assert!(
        printed.contains("  to        +52 55 1234 5678 → +525512345678\n"),
        "{printed}"
    );
    assert!(
        printed.contains(
            "  text      Hola Ale, tu carrito te espera: https://tienda.example/c/tok-1\n"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("  encoding  GSM-7, 1 segment, "),
        "{printed}"
    );
    assert!(printed.contains("(America/Mexico_City)\n"), "{printed}");
    assert!(printed.ends_with("  key       tok-1\n"), "{printed}");
}

/// Three pending jobs (two carts, one reminder) and one cancelled cart.
async fn insert_jobs(control: &Control) {
    for (job_id, rule, key, due_at, state) in [
        (
            "job-a",
            "abandoned-cart",
            "tok-1",
            "2030-01-01T10:00:00Z",
            "pending",
        ),
        (
            "job-b",
            "abandoned-cart",
            "tok-2",
            "2030-01-01T11:00:00Z",
            "pending",
        ),
        (
            "job-c",
            "code-reminder",
            "ale@example.com",
            "2030-01-05T10:00:00Z",
            "pending",
        ),
        (
            "job-d",
            "abandoned-cart",
            "tok-0",
            "2030-01-01T09:00:00Z",
            "cancelled",
        ),
    ] {
        sqlx::query(
            "INSERT INTO scheduled_jobs (job_id, account_id, rule_id, event_id, correlation_key,
                                         recipient, body, due_at, trigger_received_at, state, job)
             SELECT $1, account_id, id, 'evt-' || $1, $3, '+525512345678', 'Hola', $4::timestamptz,
                    $4::timestamptz - interval '1 hour', $5, '\\x'::bytea
             FROM rules WHERE name = $2",
        )
        .bind(job_id)
        .bind(rule)
        .bind(key)
        .bind(due_at)
        .bind(state)
        .execute(&control.db.pool)
        .await
        .unwrap();
    }
}

fn list_request(rule: &str, key: &str, state: &str) -> ListScheduledJobsRequest {
    ListScheduledJobsRequest {
        account: ACCOUNT.to_owned(),
        rule: rule.to_owned(),
        key: key.to_owned(),
        to: String::new(),
        state: state.to_owned(),
        limit: 100,
    }
}

async fn listed_ids(control: &Control, request: ListScheduledJobsRequest) -> Vec<String> {
    let mut out = Vec::new();
    jobs::list_jobs(
        &mut control.scheduling(),
        request,
        OutputFormat::Json,
        &mut out,
    )
    .await
    .unwrap();
    let listed: Value = serde_json::from_slice(&out).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn jobs_are_listed_by_rule_key_and_state_and_cancelled_by_key_or_id() {
    let control = applied_control().await;
    insert_jobs(&control).await;

    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(
        sorted(listed_ids(&control, list_request("", "", "pending")).await),
        ["job-a", "job-b", "job-c"]
    );
    assert_eq!(
        sorted(listed_ids(&control, list_request("abandoned-cart", "", "pending")).await),
        ["job-a", "job-b"]
    );
    assert_eq!(
        listed_ids(&control, list_request("", "tok-2", "pending")).await,
        ["job-b"]
    );
    assert_eq!(
        listed_ids(&control, list_request("", "", "cancelled")).await,
        ["job-d"]
    );

    let mut table = Vec::new();
    jobs::list_jobs(
        &mut control.scheduling(),
        list_request("code-reminder", "", "pending"),
        OutputFormat::Table,
        &mut table,
    )
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8(table).unwrap(),
        "\
DUE                       STATE    RULE           KEY              TO             JOB ID
2030-01-05T10:00:00.000Z  pending  code-reminder  ale@example.com  +525512345678  job-c
"
    );

    let cancel = |job_ids: &[&str], rule: &str, key: &str| CancelScheduledJobsRequest {
        account: ACCOUNT.to_owned(),
        job_ids: job_ids.iter().map(|id| (*id).to_owned()).collect(),
        rule: rule.to_owned(),
        key: key.to_owned(),
    };
    let mut out = Vec::new();
    let cancelled = jobs::cancel_jobs(
        &mut control.scheduling(),
        cancel(&[], "abandoned-cart", "tok-1"),
        OutputFormat::Table,
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(cancelled, 1);
    assert_eq!(String::from_utf8(out).unwrap(), "cancelled 1 job\n");

    let mut out = Vec::new();
    jobs::cancel_jobs(
        &mut control.scheduling(),
        cancel(&["job-b", "job-c", "job-d"], "", ""),
        OutputFormat::Json,
        &mut out,
    )
    .await
    .unwrap();
    let printed: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        printed,
        json!({"cancelled": 2}),
        "job-d was already cancelled"
    );
    assert!(
        listed_ids(&control, list_request("", "", "pending"))
            .await
            .is_empty()
    );
}

#[tokio::test]
#[allow(clippy::too_many_lines, reason = "one scenario, step by step")]
async fn events_show_reports_and_messages_and_list_the_latest_reports() {
    let control = applied_control().await;
    for (event_id, rule, kind, detail, at) in [
        (
            "evt-1",
            "code-reminder",
            "scheduled",
            "due 2030-01-05T10:00:00Z",
            "2029-12-31T10:00:00Z",
        ),
        (
            "evt-1",
            "owner-alert",
            "invalid_recipient",
            "\"12\" is not a phone number",
            "2029-12-31T10:00:01Z",
        ),
        (
            "evt-2",
            "code-reminder",
            "cancelled",
            "by event evt-2",
            "2029-12-31T11:00:00Z",
        ),
    ] {
        sqlx::query(
            "INSERT INTO event_reports (account_id, event_id, rule_id, rule_name, kind, detail, created_at)
             SELECT account_id, $1, id::text, name, $3, $4, $5::timestamptz FROM rules WHERE name = $2",
        )
        .bind(event_id)
        .bind(rule)
        .bind(kind)
        .bind(detail)
        .bind(at)
        .execute(&control.db.pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO messages (job_id, account_id, event_id, recipient, body, status, provider,
                               provider_message_id, attempts, created_at, updated_at, sent_at)
         SELECT 'job-1', id, 'evt-1', '+5215512345678', 'Nueva compra', 'sent', 'primary',
                'console-1', 1, '2029-12-31T10:00:02Z', '2029-12-31T10:00:03Z', '2029-12-31T10:00:03Z'
         FROM accounts WHERE name = 'tienda-ale'",
    )
    .execute(&control.db.pool)
    .await
    .unwrap();

    let mut out = Vec::new();
    events::show_event(
        &mut control.api(),
        &mut control.scheduling(),
        ACCOUNT,
        "evt-1",
        OutputFormat::Json,
        &mut out,
    )
    .await
    .unwrap();
    let shown: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(shown["event_id"], "evt-1");
    let mut kinds: Vec<&str> = shown["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|report| report["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["invalid_recipient", "scheduled"]);
    assert_eq!(shown["messages"][0]["id"], "job-1");
    assert_eq!(shown["messages"][0]["status"], "sent");

    let mut out = Vec::new();
    events::show_event(
        &mut control.api(),
        &mut control.scheduling(),
        ACCOUNT,
        "evt-1",
        OutputFormat::Table,
        &mut out,
    )
    .await
    .unwrap();
    let table = String::from_utf8(out).unwrap();
    assert!(table.starts_with("event evt-1\n\nREPORTED"), "{table}");
    assert!(
        table.contains("owner-alert    invalid_recipient  \"12\" is not a phone number"),
        "{table}"
    );
    assert!(
        table.contains("2029-12-31T10:00:02.000Z  sent    +5215512345678  job-1   Nueva compra"),
        "{table}"
    );

    let mut out = Vec::new();
    events::show_event(
        &mut control.api(),
        &mut control.scheduling(),
        ACCOUNT,
        "evt-unknown",
        OutputFormat::Table,
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "event evt-unknown\nno rule reports and no messages for this event\n"
    );

    let mut out = Vec::new();
    events::list_event_reports(
        &mut control.scheduling(),
        ACCOUNT,
        10,
        OutputFormat::Json,
        &mut out,
    )
    .await
    .unwrap();
    let listed: Value = serde_json::from_slice(&out).unwrap();
    let events: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|report| report["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["evt-2", "evt-1", "evt-1"], "newest first");
    assert_eq!(listed[0]["kind"], "cancelled");
    assert_eq!(listed[0]["rule"], "code-reminder");
}

/// The same Spanish text under both encodings: the accents cost a segment.
const BOTH_ENCODINGS: &str = r#"
account: tienda-ale
default_country: MX
timezone: America/Mexico_City
providers:
  - name: primary
    kind: console
    default: true
sources:
  - name: signup
    rules:
      - name: as-unicode
        to: ['{{ event.phone }}']
        body: '{{ event.name | first_name }}, tu código BIENVENIDA10 sigue vigente hasta el 31 de diciembre. Úsalo en tienda-ale.mx'
      - name: as-gsm7
        to: ['{{ event.phone }}']
        body: '{{ event.name | first_name }}, tu código BIENVENIDA10 sigue vigente hasta el 31 de diciembre. Úsalo en tienda-ale.mx'
        encoding: gsm7
"#;

#[tokio::test]
async fn a_spanish_message_previewed_in_both_encodings() {
    let control = Control::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, BOTH_ENCODINGS);
    let options = ApplyOptions {
        ingress_url: INGRESS_URL.to_owned(),
        prune: false,
    };
    let mut applied = Vec::new();
    apply_file(&mut control.api(), &path, &|_| None, &options, &mut applied)
        .await
        .unwrap();
    let applied = String::from_utf8(applied).unwrap();
    assert!(
        applied.starts_with("warning: signup/as-unicode: body contains 'ó', 'Ú' which force UCS-2"),
        "{applied}"
    );

    let mut out = Vec::new();
    preview::preview(
        &mut control.api(),
        &mut control.scheduling(),
        PreviewRulesRequest {
            account: ACCOUNT.to_owned(),
            source: "signup".to_owned(),
            payload: json!({"name": "ALE ruiz", "phone": "55 1234 5678"}).to_string(),
            ..PreviewRulesRequest::default()
        },
        OutputFormat::Table,
        &mut out,
    )
    .await
    .unwrap();
    let printed = String::from_utf8(out).unwrap();
    println!("{printed}");
    assert_eq!(
        printed,
        "\
event type: (none)

rule as-gsm7: matched
  to        55 1234 5678 → +525512345678
  text      Ale, tu codigo BIENVENIDA10 sigue vigente hasta el 31 de diciembre. Usalo en tienda-ale.mx
  encoding  GSM-7, 1 segment, 90 characters
            transliterated: ó Ú
  send at   at once

rule as-unicode: matched
  to        55 1234 5678 → +525512345678
  text      Ale, tu código BIENVENIDA10 sigue vigente hasta el 31 de diciembre. Úsalo en tienda-ale.mx
  encoding  UCS-2, 2 segments, 90 characters
            UCS-2 because of: ó Ú (encoding: gsm7 transliterates them)
  send at   at once
"
    );
}
