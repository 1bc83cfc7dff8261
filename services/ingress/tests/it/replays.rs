//! Copies of verified requests sent again under a new event id. Where the
//! signature covers only the body, the body names the event, so a copy is the
//! same event; where it covers the id or a timestamp, the id names it as before.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use foco_ingress::signature::hmac_sha256;
use serde_json::{Value, json};

use crate::accept::{SW_SECRET, post_standard_webhook, standard_webhooks};
use crate::harness::{Harness, answer, fixture};
use crate::presets::preset_source;

const SECRET: &str = "body-only-secret";

/// A platform that signs the body alone, and where it puts its event id.
struct BodyOnly {
    preset: &'static str,
    topic: (&'static str, &'static str),
    id_header: &'static str,
    body: Vec<u8>,
    signature: fn(&[u8]) -> (&'static str, String),
}

fn base64_mac(body: &[u8]) -> String {
    BASE64.encode(hmac_sha256(SECRET.as_bytes(), &[body]))
}

fn platforms() -> [BodyOnly; 3] {
    [
        BodyOnly {
            preset: "shopify",
            topic: ("X-Shopify-Topic", "orders/create"),
            id_header: "X-Shopify-Webhook-Id",
            body: fixture("shopify__orders_create.json"),
            signature: |body| ("X-Shopify-Hmac-Sha256", base64_mac(body)),
        },
        BodyOnly {
            preset: "woocommerce",
            topic: ("X-WC-Webhook-Topic", "order.created"),
            id_header: "X-WC-Webhook-Delivery-ID",
            body: fixture("woocommerce__order_created.json"),
            signature: |body| ("X-WC-Webhook-Signature", base64_mac(body)),
        },
        BodyOnly {
            preset: "github",
            topic: ("X-GitHub-Event", "pull_request"),
            id_header: "X-GitHub-Delivery",
            body: br#"{"action":"opened","number":1,"repository":{"id":1296269}}"#.to_vec(),
            signature: |body| {
                let mac = hmac_sha256(SECRET.as_bytes(), &[body]);
                (
                    "X-Hub-Signature-256",
                    format!("sha256={}", hex::encode(mac)),
                )
            },
        },
    ]
}

/// Posts `platform`'s signed body with `id` in its id header: status and answer.
async fn post(harness: &Harness, token: &str, platform: &BodyOnly, id: &str) -> (u16, Value) {
    let (signature_header, signature) = (platform.signature)(&platform.body);
    let request = harness
        .http
        .post(harness.hook_url(token))
        .header("content-type", "application/json")
        .header(platform.topic.0, platform.topic.1)
        .header(platform.id_header, id)
        .header(signature_header, signature)
        .body(platform.body.clone());
    answer(request).await
}

#[tokio::test]
async fn a_body_only_signed_request_replayed_under_a_new_id_is_the_same_event() {
    let mut harness = Harness::start().await;
    for platform in platforms() {
        let before = harness.stored_events().await;
        let name = format!("src-{}", platform.preset);
        let source = preset_source(&mut harness, &name, platform.preset, &[SECRET], None).await;

        let (status, original) = post(&harness, &source.token, &platform, "delivery-1").await;
        assert_eq!(status, 202, "{}: {original}", platform.preset);
        // The same captured request, its unsigned id header replaced.
        let (status, replay) = post(&harness, &source.token, &platform, "delivery-2").await;
        assert_eq!(status, 202, "{}: {replay}", platform.preset);

        assert_eq!(
            harness.stored_events().await,
            before + 1,
            "{}: one event only",
            platform.preset
        );
        assert_eq!(
            replay,
            json!({"event_id": original["event_id"], "duplicate": true}),
            "{}",
            platform.preset
        );
        let expected_id = foco_bus::event_id_from_body(&source.id, &platform.body);
        assert_eq!(
            original,
            json!({"event_id": expected_id, "duplicate": false}),
            "{}",
            platform.preset
        );
        let stored = harness.stored_event(before + 1).await;
        assert_eq!(stored.msg_id.as_deref(), Some(expected_id.as_str()));
        // The platform's own id is kept for reading, and for rules' long-window
        // deduplication.
        assert_eq!(
            stored.envelope.external_id, "delivery-1",
            "{}",
            platform.preset
        );
    }
}

#[tokio::test]
async fn a_signed_id_still_names_the_event() {
    let mut harness = Harness::start().await;
    let source = harness.source("app", standard_webhooks(), SW_SECRET).await;
    let body = br#"{"type":"order.paid","data":{"total":"500.00"}}"#;
    let url = harness.hook_url(&source.token);

    // Two messages with the same body and their own signed ids are two events.
    for id in ["msg_first", "msg_second"] {
        let answer = post_standard_webhook(&harness.http, &url, SW_SECRET, id, body).await;
        let expected_id = foco_bus::event_id_from_external(&source.id, id);
        assert_eq!(
            answer,
            (202, json!({"event_id": expected_id, "duplicate": false}))
        );
    }
    assert_eq!(harness.stored_events().await, 2);
}
