//! Infobip delivery reports and inbound messages: several to a request,
//! authenticated with the route's `webhook_secret` (basic-auth password or
//! `X-Foco-Webhook-Secret`), each result stored once.

use base64::Engine as _;
use foco_bus::ReceiptKind;
use foco_proto::v1::ReceiptStatus;

use super::{JSON, accepted, assert_refused, post_callback, provider_route, stored_receipts};
use crate::harness::{Harness, fixture};
use crate::presets::start;

const WEBHOOK_SECRET: &str = "infobip-webhook-secret-0123456789";

async fn infobip_route(harness: &mut Harness, name: &str, secret: Option<&str>) -> String {
    let mut credentials = vec![("api_key", "App-key-0123")];
    if let Some(secret) = secret {
        credentials.push(("webhook_secret", secret));
    }
    provider_route(
        harness,
        name,
        "infobip",
        &[("base_url", "https://example.api.infobip.com")],
        &credentials,
        true,
    )
    .await
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

async fn post(
    harness: &Harness,
    path: &str,
    body: &[u8],
    header: Option<(&str, String)>,
) -> reqwest::Response {
    post_callback(harness, path, JSON, body.to_vec(), header.as_slice()).await
}

fn with_basic_auth(password: &str) -> Option<(&'static str, String)> {
    Some(("authorization", basic("infobip", password)))
}

#[tokio::test]
async fn infobip_reports_are_stored_each_once() {
    let mut harness = start().await;
    let account_id = infobip_route(&mut harness, "eu", Some(WEBHOOK_SECRET)).await;
    let path = format!("/v1/providers/infobip/{account_id}/eu/status");
    let reports = fixture("infobip__delivery_reports.json");
    let post_authenticated = async |body: &[u8]| {
        accepted(post(&harness, &path, body, with_basic_auth(WEBHOOK_SECRET)).await).await
    };

    let answer = post_authenticated(&reports).await;
    assert_eq!(
        answer,
        serde_json::json!({"stored": 2, "duplicates": 0, "ignored": 0})
    );
    // Infobip retries the whole request: nothing is stored twice.
    let retry = post_authenticated(&reports).await;
    assert_eq!(
        retry,
        serde_json::json!({"stored": 0, "duplicates": 2, "ignored": 0})
    );
    let pending = String::from_utf8(reports.clone())
        .unwrap()
        .replace("\"DELIVERED\"", "\"PENDING\"");
    let answer = post_authenticated(pending.as_bytes()).await;
    assert_eq!(
        answer,
        serde_json::json!({"stored": 0, "duplicates": 1, "ignored": 1})
    );

    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 2);
    let msg_id =
        &foco_bus::receipt_msg_id(&account_id, "infobip", "MESSAGE-ID-123-xyz", 0, "delivered");
    stored[0].assert_stored_as(&harness, &account_id, ReceiptKind::Status, msg_id);
    let msg_id = &foco_bus::receipt_msg_id(
        &account_id,
        "infobip",
        "12db39c3-7822-4e72-a3ec-c87442c0ffc5",
        0,
        "undeliverable",
    );
    stored[1].assert_stored_as(&harness, &account_id, ReceiptKind::Status, msg_id);
    let delivered = stored[0].receipt();
    assert_eq!(delivered.provider, "infobip");
    assert_eq!(delivered.provider_message_id, "MESSAGE-ID-123-xyz");
    assert_eq!(delivered.job_id, "MESSAGE-ID-123-xyz");
    assert_eq!(delivered.status, ReceiptStatus::Delivered as i32);
    let undelivered = stored[1].receipt();
    assert_eq!(undelivered.status, ReceiptStatus::Undelivered as i32);
    assert_eq!(undelivered.error_code, "EC_ABSENT_SUBSCRIBER");
}

#[tokio::test]
async fn an_infobip_inbound_stop_through_the_default_route_with_the_secret_header() {
    let mut harness = start().await;
    let account_id = infobip_route(&mut harness, "primary", Some(WEBHOOK_SECRET)).await;
    let path = format!("/v1/providers/infobip/{account_id}/inbound");
    let stop = String::from_utf8(fixture("infobip__inbound_sms.json"))
        .unwrap()
        .replace("QKZKYBFD Some message text", "BAJA");
    let header = Some(("x-foco-webhook-secret", WEBHOOK_SECRET.to_owned()));
    let answer = accepted(post(&harness, &path, stop.as_bytes(), header).await).await;
    assert_eq!(answer["stored"], 1);

    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 1);
    let msg_id = &foco_bus::inbound_msg_id(&account_id, "infobip", "817790313235066447");
    stored[0].assert_stored_as(&harness, &account_id, ReceiptKind::Inbound, msg_id);
    let inbound = stored[0].inbound();
    assert_eq!(inbound.body, "BAJA");
    assert_eq!(inbound.from, "+385916242493");
    assert_eq!(inbound.route, "primary");
    assert_eq!(inbound.provider, "infobip");
}

#[tokio::test]
async fn unauthenticated_or_unreadable_infobip_callbacks_store_nothing() {
    let mut harness = start().await;
    let account_id = infobip_route(&mut harness, "eu", Some(WEBHOOK_SECRET)).await;
    let path = format!("/v1/providers/infobip/{account_id}/eu/status");
    let reports = fixture("infobip__delivery_reports.json");

    let wrong = post(&harness, &path, &reports, with_basic_auth("a-guess")).await;
    assert_refused(wrong, 401, "unauthenticated").await;
    let wrong_header = Some(("x-foco-webhook-secret", "a-guess".to_owned()));
    let response = post(&harness, &path, &reports, wrong_header).await;
    assert_refused(response, 401, "unauthenticated").await;
    let response = post(&harness, &path, &reports, None).await;
    assert_refused(response, 401, "unauthenticated").await;

    // One report without its id: the whole request is refused.
    let broken = String::from_utf8(reports.clone())
        .unwrap()
        .replace("\"messageId\": \"MESSAGE-ID-123-xyz\",", "");
    let auth = || with_basic_auth(WEBHOOK_SECRET);
    let response = post(&harness, &path, broken.as_bytes(), auth()).await;
    assert_refused(response, 400, "invalid-argument").await;
    let response = post(&harness, &path, b"{\"results\": [", auth()).await;
    assert_refused(response, 400, "invalid-argument").await;
    let unknown_route = format!("/v1/providers/infobip/{account_id}/us/status");
    let response = post(&harness, &unknown_route, &reports, auth()).await;
    assert_refused(response, 404, "not-found").await;

    // An Infobip route without a webhook secret accepts nothing, even with
    // empty credentials.
    infobip_route(&mut harness, "open", None).await;
    let open = format!("/v1/providers/infobip/{account_id}/open/status");
    let response = post(&harness, &open, &reports, with_basic_auth("")).await;
    assert_refused(response, 401, "unauthenticated").await;

    assert!(stored_receipts(&harness).await.is_empty());
}
