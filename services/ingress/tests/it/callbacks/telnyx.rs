//! Telnyx messaging webhooks: one URL for a messaging profile's sends and
//! received messages, signed with Ed25519 and verified with the route's
//! `public_key`.

use foco_bus::ReceiptKind;
use foco_ingress::signature::signing;
use foco_proto::v1::ReceiptStatus;

use super::{
    FORM, JSON, accepted, assert_refused, post_callback, provider_route, stored_receipts, unix_now,
};
use crate::harness::{Harness, fixture};
use crate::presets::start;

/// Telnyx's signing key in these tests (the public half goes to the route).
const TELNYX_KEY: [u8; 32] = [42; 32];

fn public_key() -> String {
    signing::telnyx(&TELNYX_KEY, 0, b"").0
}

async fn telnyx_route(harness: &mut Harness, name: &str, public_key: Option<&str>) -> String {
    let mut credentials = vec![("api_key", "KEY0123")];
    if let Some(public_key) = public_key {
        credentials.push(("public_key", public_key));
    }
    provider_route(
        harness,
        name,
        "telnyx",
        &[("from", "+18445550001")],
        &credentials,
        true,
    )
    .await
}

/// Posts `body` signed with `key` at `timestamp`.
async fn post_signed(
    harness: &Harness,
    path: &str,
    body: &[u8],
    key: &[u8; 32],
    timestamp: i64,
) -> reqwest::Response {
    let (_, signature) = signing::telnyx(key, timestamp, body);
    post_with(harness, path, body, timestamp, signature).await
}

async fn post_with(
    harness: &Harness,
    path: &str,
    body: &[u8],
    timestamp: i64,
    signature: String,
) -> reqwest::Response {
    let headers = [
        ("telnyx-timestamp", timestamp.to_string()),
        ("telnyx-signature-ed25519", signature),
    ];
    post_callback(harness, path, JSON, body.to_vec(), &headers).await
}

fn with_status(status: &str) -> Vec<u8> {
    String::from_utf8(fixture("telnyx__message_finalized_delivered.json"))
        .unwrap()
        .replace(
            "\"status\": \"delivered\"",
            &format!("\"status\": \"{status}\""),
        )
        .into_bytes()
}

#[tokio::test]
async fn telnyx_deliveries_and_inbound_messages_are_stored_once() {
    let mut harness = start().await;
    let account_id = telnyx_route(&mut harness, "us", Some(&public_key())).await;
    let path = format!("/v1/providers/telnyx/{account_id}/us/events");
    let post_now = async |body: Vec<u8>| {
        accepted(post_signed(&harness, &path, &body, &TELNYX_KEY, unix_now()).await).await
    };

    let delivered = fixture("telnyx__message_finalized_delivered.json");
    let answer = post_now(delivered.clone()).await;
    assert_eq!(
        answer,
        serde_json::json!({"published": true, "duplicate": false})
    );
    // Telnyx retries (signed anew): stored once.
    assert_eq!(post_now(delivered).await["duplicate"], true);
    // A queued update changes nothing.
    assert_eq!(post_now(with_status("queued")).await["published"], false);
    let received = fixture("telnyx__message_received.json");
    assert_eq!(post_now(received).await["published"], true);

    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 2);
    let msg_id = &foco_bus::receipt_msg_id(
        &account_id,
        "telnyx",
        "40385f64-5717-4562-b3fc-2c963f66afa6",
        0,
        "delivered",
    );
    stored[0].assert_stored_as(&harness, &account_id, ReceiptKind::Status, msg_id);
    let receipt = stored[0].receipt();
    assert_eq!(receipt.provider, "telnyx");
    assert_eq!(receipt.account_id, account_id);
    assert_eq!(
        receipt.provider_message_id,
        "40385f64-5717-4562-b3fc-2c963f66afa6"
    );
    assert_eq!(receipt.status, ReceiptStatus::Delivered as i32);

    let msg_id = &foco_bus::inbound_msg_id(
        &account_id,
        "telnyx",
        "7ee4241c-f127-47e5-9c34-3aac291f8058",
    );
    stored[1].assert_stored_as(&harness, &account_id, ReceiptKind::Inbound, msg_id);
    let inbound = stored[1].inbound();
    assert_eq!(inbound.from, "+18665550001");
    assert_eq!(inbound.to, "+18445550001");
    assert_eq!(inbound.body, "Hello, World!");
    assert_eq!(inbound.route, "us");
}

#[tokio::test]
async fn a_telnyx_failure_through_the_default_route_carries_its_error() {
    let mut harness = start().await;
    let account_id = telnyx_route(&mut harness, "primary", Some(&public_key())).await;
    let path = format!("/v1/providers/telnyx/{account_id}/events");
    let failed = String::from_utf8(with_status("delivery_failed"))
        .unwrap()
        .replace(
            "\"errors\": []",
            r#""errors": [{"code": "40300", "title": "Blocked as spam", "detail": "Recipient replied STOP"}]"#,
        );
    let response = post_signed(&harness, &path, failed.as_bytes(), &TELNYX_KEY, unix_now()).await;
    assert_eq!(response.status(), 200);
    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 1);
    let receipt = stored[0].receipt();
    assert_eq!(receipt.status, ReceiptStatus::Undelivered as i32);
    assert_eq!(receipt.error_code, "40300");
    assert_eq!(receipt.error_message, "Recipient replied STOP");
}

#[tokio::test]
async fn unverifiable_telnyx_webhooks_are_refused_and_store_nothing() {
    let mut harness = start().await;
    let account_id = telnyx_route(&mut harness, "us", Some(&public_key())).await;
    let path = format!("/v1/providers/telnyx/{account_id}/us/events");
    let body = fixture("telnyx__message_finalized_delivered.json");
    let now = unix_now();

    // Signed by someone else's key.
    let response = post_signed(&harness, &path, &body, &[1; 32], now).await;
    assert_refused(response, 401, "unauthenticated").await;
    // Signed, then altered.
    let signature = signing::telnyx(&TELNYX_KEY, now, &body).1;
    let altered = with_status("delivery_failed");
    let response = post_with(&harness, &path, &altered, now, signature).await;
    assert_refused(response, 401, "unauthenticated").await;
    // Signed long ago (a replay).
    let response = post_signed(&harness, &path, &body, &TELNYX_KEY, now - 3600).await;
    assert_refused(response, 401, "unauthenticated").await;
    // Unsigned.
    let response = post_callback(&harness, &path, JSON, body.clone(), &[]).await;
    assert_refused(response, 401, "unauthenticated").await;

    // Signed, but not a messaging event.
    let other = br#"{"data": {"event_type": "call.initiated", "payload": {"id": "x"}}}"#;
    let response = post_signed(&harness, &path, other, &TELNYX_KEY, now).await;
    assert_refused(response, 400, "invalid-argument").await;
    let response = post_callback(&harness, &path, FORM, "a=b", &[]).await;
    assert_refused(response, 415, "unsupported-media-type").await;
    let elsewhere = "/v1/providers/telnyx/0190f3c2-7d1e-7c3a-9d5e-1f2a3b4c5d6e/us/events";
    let response = post_signed(&harness, elsewhere, &body, &TELNYX_KEY, now).await;
    assert_refused(response, 404, "not-found").await;

    // A Telnyx route without a public key accepts nothing.
    telnyx_route(&mut harness, "keyless", None).await;
    let keyless = format!("/v1/providers/telnyx/{account_id}/keyless/events");
    let response = post_signed(&harness, &keyless, &body, &TELNYX_KEY, now).await;
    assert_refused(response, 401, "unauthenticated").await;

    assert!(stored_receipts(&harness).await.is_empty());
}
