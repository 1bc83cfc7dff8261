//! Webhooks that are accepted: what the sender is told and what reaches the stream.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use foco_proto::v1::verification::Scheme;
use foco_proto::v1::{
    HmacSha256, NoVerification, SignatureEncoding, StandardWebhooks, UpsertSourceRequest,
    Verification,
};
use foco_testkit::wait_for;
use serde_json::{Value, json};

use crate::harness::{Harness, answer, fixture};

fn shopify_verification() -> Option<Verification> {
    Some(Verification {
        scheme: Some(Scheme::HmacSha256(HmacSha256 {
            header: "X-Shopify-Hmac-Sha256".to_owned(),
            encoding: SignatureEncoding::Base64 as i32,
            prefix: String::new(),
        })),
    })
}

pub fn standard_webhooks() -> Option<Verification> {
    Some(Verification {
        scheme: Some(Scheme::StandardWebhooks(StandardWebhooks {
            tolerance_seconds: 0,
        })),
    })
}

pub fn no_verification() -> Option<Verification> {
    Some(Verification {
        scheme: Some(Scheme::None(NoVerification {})),
    })
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

pub const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn signed_json_is_stored_as_an_envelope_before_the_202() {
    let mut harness = Harness::start().await;
    let source = harness
        .upsert_source(UpsertSourceRequest {
            name: "shop".to_owned(),
            verification: shopify_verification(),
            secret: "test_secret".to_owned(),
            event_type_from: "header:X-Shopify-Topic".to_owned(),
            event_id_from: "header:X-Shopify-Event-Id".to_owned(),
            ..Default::default()
        })
        .await;
    let body = fixture("shopify__orders_create.json");

    let response = harness
        .http
        .post(harness.hook_url(&source.token))
        .header("content-type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5")
        .header(
            "X-Shopify-Hmac-Sha256",
            "SqTdZZfPEI+MBk5AUEqo1wpYGF0UEIHWECKWwfJAcsQ=",
        )
        .header("Authorization", "Basic c2VjcmV0")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    // HMAC-SHA256 signs the body alone, not the id header: the body names the
    // event (see the `replays` tests); the sender's id is kept as its external id.
    let expected_id = foco_bus::event_id_from_body(&source.id, &body);
    assert_eq!(answer, json!({"event_id": expected_id, "duplicate": false}));

    // The 202 came after the ack, so the event is already stored.
    assert_eq!(harness.stored_events().await, 1);
    let stored = harness.stored_event(1).await;
    assert_eq!(
        stored.subject,
        harness.names.events_subject(&source.account_id, &source.id)
    );
    assert_eq!(stored.msg_id.as_deref(), Some(expected_id.as_str()));
    let envelope = stored.envelope;
    assert_eq!(envelope.event_id, expected_id);
    assert_eq!(envelope.account_id, source.account_id);
    assert_eq!(envelope.source_id, source.id);
    assert_eq!(envelope.event_type, "orders/create");
    assert_eq!(envelope.external_id, "98880550-7158-44d4-b7cd-2c97c8a091b5");
    assert_eq!(envelope.content_type, "application/json");
    assert_eq!(envelope.payload, body, "JSON is published byte for byte");
    let now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let age_ms = now_ms - envelope.received_at_ms;
    assert!(
        (0..60_000).contains(&age_ms),
        "received_at_ms is recent: {age_ms}"
    );
    assert_eq!(
        envelope.headers.get("x-shopify-topic").map(String::as_str),
        Some("orders/create")
    );
    assert_eq!(
        envelope.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert!(
        !envelope.headers.contains_key("x-shopify-hmac-sha256"),
        "signature header dropped"
    );
    assert!(
        !envelope.headers.contains_key("authorization"),
        "credentials dropped"
    );
}

#[tokio::test]
async fn form_bodies_are_published_as_flat_json() {
    let mut harness = Harness::start().await;
    let source = harness
        .upsert_source(UpsertSourceRequest {
            name: "signup-form".to_owned(),
            verification: no_verification(),
            event_type_from: "body:type".to_owned(),
            ..Default::default()
        })
        .await;
    let raw = "type=signup&phone=%2B52+55+1234+5678&name=Ale+Ruiz&tag=a&tag=b";

    let response = harness
        .http
        .post(harness.hook_url(&source.token))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    // No sender id: the event id is a hash of the raw body.
    assert_eq!(
        answer["event_id"],
        foco_bus::event_id_from_body(&source.id, raw.as_bytes())
    );

    let envelope = harness.stored_event(1).await.envelope;
    assert_eq!(envelope.event_type, "signup");
    assert_eq!(envelope.external_id, "");
    assert_eq!(envelope.content_type, "application/json");
    let payload: Value = serde_json::from_slice(&envelope.payload).unwrap();
    assert_eq!(
        payload,
        json!({"type": "signup", "phone": "+52 55 1234 5678", "name": "Ale Ruiz", "tag": ["a", "b"]})
    );
}

#[tokio::test]
async fn the_same_event_twice_is_stored_once_and_reported_as_duplicate() {
    let mut harness = Harness::start().await;
    let source = harness.source("app", standard_webhooks(), SW_SECRET).await;
    let body = br#"{"type":"order.paid","data":{"total":"500.00"}}"#;

    let mut answers = Vec::new();
    for attempt in 0..2 {
        // A retry is signed again with a fresh timestamp, as real senders do.
        let timestamp = now() + attempt;
        let signature =
            foco_ingress::signature::sign_standard_webhooks(SW_SECRET, "msg_2f9", timestamp, body);
        let response = harness
            .http
            .post(harness.hook_url(&source.token))
            .header("content-type", "application/json")
            .header("webhook-id", "msg_2f9")
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        answers.push(response.json::<Value>().await.unwrap());
    }
    let expected_id = foco_bus::event_id_from_external(&source.id, "msg_2f9");
    assert_eq!(
        answers[0],
        json!({"event_id": expected_id, "duplicate": false})
    );
    assert_eq!(
        answers[1],
        json!({"event_id": expected_id, "duplicate": true})
    );
    assert_eq!(harness.stored_events().await, 1);
    let envelope = harness.stored_event(1).await.envelope;
    assert_eq!(envelope.external_id, "msg_2f9");
    assert!(!envelope.headers.contains_key("webhook-signature"));
    assert_eq!(
        envelope.headers.get("webhook-id").map(String::as_str),
        Some("msg_2f9")
    );
}

#[tokio::test]
async fn a_rotated_secret_and_the_previous_one_are_both_accepted() {
    let mut harness = Harness::start().await;
    let source = harness
        .source("rotating", standard_webhooks(), SW_SECRET)
        .await;
    let body = br#"{"type":"ping"}"#;
    let http = harness.http.clone();
    let url = harness.hook_url(&source.token);
    let (http, url) = (&http, &url);
    let post = |secret: &'static str, id: &'static str| async move {
        post_standard_webhook(http, url, secret, id, body).await.0
    };
    assert_eq!(post(SW_SECRET, "msg_a").await, 202);

    let new_secret = "whsec_bmV3IHNlY3JldCBmb3Igcm90YXRpb24=";
    harness
        .source("rotating", standard_webhooks(), new_secret)
        .await;
    // Control announces the change; the cached source is dropped within moments.
    wait_for(
        "the new secret to be accepted",
        Duration::from_secs(5),
        || async { (post(new_secret, "msg_b").await == 202).then_some(()) },
    )
    .await;
    assert_eq!(
        post(SW_SECRET, "msg_c").await,
        202,
        "the previous secret stays valid"
    );
}

/// Posts `body` as Standard Webhooks message `id`, signed now: the status and
/// the JSON answer.
pub async fn post_standard_webhook(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    id: &str,
    body: &[u8],
) -> (u16, Value) {
    let timestamp = now();
    let request = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            foco_ingress::signature::sign_standard_webhooks(secret, id, timestamp, body),
        )
        .body(body.to_vec());
    answer(request).await
}

#[tokio::test]
async fn the_woocommerce_creation_ping_is_answered_and_not_published() {
    let mut harness = Harness::start().await;
    let verification = Some(Verification {
        scheme: Some(Scheme::HmacSha256(HmacSha256 {
            header: "X-WC-Webhook-Signature".to_owned(),
            encoding: SignatureEncoding::Base64 as i32,
            prefix: String::new(),
        })),
    });
    let source = harness.source("woo", verification, "test_secret").await;

    let response = harness
        .http
        .post(harness.hook_url(&source.token))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("webhook_id=3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ping": true})
    );

    // A real WooCommerce order goes through verification as usual.
    let response = harness
        .http
        .post(harness.hook_url(&source.token))
        .header("content-type", "application/json")
        .header(
            "X-WC-Webhook-Signature",
            "dbd8cN7BISGillqMsi0zMR+0Y9kuiw/6Hcjf+nwkYE0=",
        )
        .body(fixture("woocommerce__order_created.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        harness.stored_events().await,
        1,
        "the ping published nothing"
    );
}
