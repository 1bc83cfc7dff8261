//! `foco send`, `foco trigger` and `foco templates` against control's
//! MessagingService, with the bus's streams in place (a full system has them
//! from ingress, rules and sender).

use serde_json::Value;

use crate::harness::{ADMIN_KEY, Control, applied_control_with_streams, run_foco};

async fn json(control: &Control, args: &[&str]) -> Value {
    let printed = run_foco(control, ADMIN_KEY, args).await.expect("foco runs");
    serde_json::from_str(&printed).expect("JSON output")
}

#[tokio::test]
async fn send_prints_the_message_id_and_a_retry_gets_the_same() {
    let control = applied_control_with_streams().await;
    let send = [
        "send",
        "--to",
        "55 1234 5678",
        "--body",
        "Tu código es 1234",
        "--idempotency-key",
        "otp-1",
        "--metadata",
        "order=A-17",
        "-o",
        "json",
    ];
    let first = json(&control, &send).await;
    let message_id = first["message_id"].as_str().expect("message id");
    assert!(message_id.starts_with("job_"), "{first}");
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["send_at"], Value::Null);
    assert_eq!(first["encoding"], "UCS-2");
    let again = json(&control, &send).await;
    assert_eq!(again["message_id"], message_id);
    assert_eq!(again["duplicate"], true);

    let delayed = json(
        &control,
        &[
            "send",
            "--to",
            "+525512345678",
            "--body",
            "luego",
            "--delay",
            "2h",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(delayed["send_at"].is_string(), "{delayed}");

    let table = run_foco(
        &control,
        ADMIN_KEY,
        &["send", "--to", "+525512345678", "--body", "hola"],
    )
    .await
    .unwrap();
    assert!(table.starts_with("message job_"), "{table}");
    assert!(table.contains("queued"), "{table}");

    let refused = run_foco(
        &control,
        ADMIN_KEY,
        &["send", "--to", "12", "--body", "hola"],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, foco_cli::CliError::Api { status, .. } if status.code() == tonic::Code::InvalidArgument),
        "{refused}"
    );
}

#[tokio::test]
async fn trigger_prints_the_event_id_and_a_repeat_is_a_duplicate() {
    let control = applied_control_with_streams().await;
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("order.json");
    std::fs::write(
        &payload,
        r#"{"total_price":"600.00","customer":{"first_name":"Ale"}}"#,
    )
    .unwrap();
    let payload = payload.to_str().unwrap();
    let trigger = [
        "trigger",
        "--source",
        "shop",
        "--type",
        "orders/create",
        "--payload",
        payload,
        "--event-id",
        "order-1",
        "-H",
        "X-Shopify-Topic: orders/create",
        "-o",
        "json",
    ];
    let first = json(&control, &trigger).await;
    assert!(
        first["event_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("evt_")),
        "{first}"
    );
    assert_eq!(first["duplicate"], false);
    let again = json(&control, &trigger).await;
    assert_eq!(again["event_id"], first["event_id"]);
    assert_eq!(again["duplicate"], true);

    let unknown = run_foco(
        &control,
        ADMIN_KEY,
        &[
            "trigger",
            "--source",
            "nope",
            "--type",
            "x",
            "--payload",
            payload,
        ],
    )
    .await
    .unwrap_err();
    assert!(unknown.to_string().contains("not found"), "{unknown}");
}

#[tokio::test]
async fn a_template_is_saved_previewed_and_sent_by_name() {
    let control = applied_control_with_streams().await;
    let saved = json(
        &control,
        &[
            "templates",
            "apply",
            "otp",
            "--body",
            "Hola {{ name }}, tu código es {{ code }}",
            "--encoding",
            "gsm7",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(saved["variables"], serde_json::json!(["code", "name"]));
    let listed = json(&control, &["templates", "list", "-o", "json"]).await;
    assert_eq!(listed[0]["name"], "otp");

    let variables = ["--var", "name=Ale", "--var", "code=4821", "-o", "json"];
    let preview = json(
        &control,
        &[&["templates", "preview", "otp"][..], &variables].concat(),
    )
    .await;
    assert_eq!(preview["text"], "Hola Ale, tu codigo es 4821");
    assert_eq!(preview["encoding"], "GSM-7");
    assert_eq!(preview["segments"], 1);

    let send = ["send", "--to", "+525512345678", "--template", "otp"];
    let sent = json(&control, &[&send[..], &variables].concat()).await;
    assert_eq!(sent["encoding"], "GSM-7", "{sent}");
    let missing = run_foco(
        &control,
        ADMIN_KEY,
        &[&send[..], &["--var", "name=Ale"]].concat(),
    )
    .await
    .unwrap_err();
    assert!(missing.to_string().contains("code"), "{missing}");

    let invalid = run_foco(
        &control,
        ADMIN_KEY,
        &["templates", "upsert", "bad", "--body", "Hola {{ name "],
    )
    .await
    .unwrap_err();
    assert!(invalid.to_string().contains("line 1, column"), "{invalid}");
    let deleted = json(&control, &["templates", "delete", "otp", "-o", "json"]).await;
    assert_eq!(deleted["deleted"], true);
}
