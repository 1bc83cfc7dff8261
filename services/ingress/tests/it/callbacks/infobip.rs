//! Infobip delivery reports and inbound messages: several to a request,
//! authenticated with the route's `webhook_secret` (basic-auth password or
//! `X-Foco-Webhook-Secret`), each result stored once.

use base64::Engine as _;
use foco_bus::ReceiptKind;
use foco_proto::v1::ReceiptStatus;
use serde_json::Value;

use super::{callback_url, provider_route, stored_receipts};
use crate::harness::{Harness, assert_problem, fixture, problem};
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
    let mut request = harness
        .http
        .post(callback_url(harness, path))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn infobip_reports_are_stored_each_once() {
    let mut harness = start().await;
    let account_id = infobip_route(&mut harness, "eu", Some(WEBHOOK_SECRET)).await;
    let path = format!("/v1/providers/infobip/{account_id}/eu/status");
    let reports = fixture("infobip__delivery_reports.json");
    let auth = || Some(("authorization", basic("infobip", WEBHOOK_SECRET)));

    let response = post(&harness, &path, &reports, auth()).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"stored": 2, "duplicates": 0, "ignored": 0})
    );
    // Infobip retries the whole request: nothing is stored twice.
    let retry: Value = post(&harness, &path, &reports, auth())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        retry,
        serde_json::json!({"stored": 0, "duplicates": 2, "ignored": 0})
    );
    let pending = String::from_utf8(reports.clone())
        .unwrap()
        .replace("\"DELIVERED\"", "\"PENDING\"");
    let answer: Value = post(&harness, &path, pending.as_bytes(), auth())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"stored": 0, "duplicates": 1, "ignored": 1})
    );

    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 2);
    for message in &stored {
        assert_eq!(
            message.subject,
            harness
                .names
                .receipts_subject(&account_id, ReceiptKind::Status)
        );
    }
    assert_eq!(stored[0].msg_id, "infobip:MESSAGE-ID-123-xyz:0:delivered");
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
    let response = post(&harness, &path, stop.as_bytes(), header).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["stored"], 1);

    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].subject,
        harness
            .names
            .receipts_subject(&account_id, ReceiptKind::Inbound)
    );
    assert_eq!(stored[0].msg_id, "infobip:817790313235066447");
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

    let wrong = Some(("authorization", basic("infobip", "a-guess")));
    assert_problem(
        &problem(post(&harness, &path, &reports, wrong).await).await,
        401,
        "unauthenticated",
    );
    let wrong_header = Some(("x-foco-webhook-secret", "a-guess".to_owned()));
    assert_problem(
        &problem(post(&harness, &path, &reports, wrong_header).await).await,
        401,
        "unauthenticated",
    );
    assert_problem(
        &problem(post(&harness, &path, &reports, None).await).await,
        401,
        "unauthenticated",
    );

    // One report without its id: the whole request is refused.
    let broken = String::from_utf8(reports.clone())
        .unwrap()
        .replace("\"messageId\": \"MESSAGE-ID-123-xyz\",", "");
    let auth = || Some(("authorization", basic("infobip", WEBHOOK_SECRET)));
    assert_problem(
        &problem(post(&harness, &path, broken.as_bytes(), auth()).await).await,
        400,
        "invalid-argument",
    );
    assert_problem(
        &problem(post(&harness, &path, b"{\"results\": [", auth()).await).await,
        400,
        "invalid-argument",
    );
    let unknown_route = format!("/v1/providers/infobip/{account_id}/us/status");
    assert_problem(
        &problem(post(&harness, &unknown_route, &reports, auth()).await).await,
        404,
        "not-found",
    );

    // An Infobip route without a webhook secret accepts nothing, even with
    // empty credentials.
    infobip_route(&mut harness, "open", None).await;
    let open = format!("/v1/providers/infobip/{account_id}/open/status");
    assert_problem(
        &problem(
            post(
                &harness,
                &open,
                &reports,
                Some(("authorization", basic("infobip", ""))),
            )
            .await,
        )
        .await,
        401,
        "unauthenticated",
    );

    assert!(stored_receipts(&harness).await.is_empty());
}
