//! Requests ingress refuses: each answers its status as problem+json, and none of
//! them publishes anything.

use foco_proto::v1::UpsertSourceRequest;
use foco_testkit::PrivateNats;

use crate::accept::{SW_SECRET, no_verification, now, standard_webhooks};
use crate::harness::{Harness, IngressOptions, ProblemAnswer, assert_problem, problem};

#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one table of refusals, checked in turn"
)]
async fn every_refusal_is_a_problem_and_nothing_is_published() {
    let mut harness = Harness::start().await;
    let signed = harness
        .source("signed", standard_webhooks(), SW_SECRET)
        .await;
    let small = harness
        .upsert_source(UpsertSourceRequest {
            name: "small".to_owned(),
            max_body_bytes: 64,
            ..Default::default()
        })
        .await;
    let disabled = harness
        .upsert_source(UpsertSourceRequest {
            name: "retired".to_owned(),
            enabled: Some(false),
            ..Default::default()
        })
        .await;
    let http = harness.http.clone();
    let json_post = |token: &str, body: &'static str| {
        http.post(harness.hook_url(token))
            .header("content-type", "application/json")
            .body(body)
    };

    // 404: no source has this token.
    let answer = problem(json_post("no-such-token", "{}").send().await.unwrap()).await;
    assert_problem(&answer, 404, "not-found");

    // 410: the source exists but is disabled, so the sender should stop.
    let answer = problem(json_post(&disabled.token, "{}").send().await.unwrap()).await;
    assert_problem(&answer, 410, "gone");

    // 413: over the source's own limit, refused from Content-Length.
    let large = Box::leak(format!("{{\"pad\":\"{}\"}}", "x".repeat(100)).into_boxed_str());
    let answer = problem(json_post(&small.token, large).send().await.unwrap()).await;
    assert_problem(&answer, 413, "payload-too-large");
    assert!(answer.body["detail"].as_str().unwrap().contains("64 bytes"));

    // 400: declared as JSON, but is not.
    let answer = problem(json_post(&small.token, "{\"open\": ").send().await.unwrap()).await;
    assert_problem(&answer, 400, "invalid-argument");

    // 415: a content type ingress does not read, or none at all.
    let answer = problem(
        http.post(harness.hook_url(&small.token))
            .header("content-type", "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&answer, 415, "unsupported-media-type");
    let answer = problem(
        http.post(harness.hook_url(&small.token))
            .body("hello")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&answer, 415, "unsupported-media-type");

    // 401: no signature, a wrong one, and a stale (replayed) one.
    let body = br#"{"type":"order.paid"}"#;
    let answer = problem(
        json_post(&signed.token, r#"{"type":"order.paid"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&answer, 401, "unauthenticated");

    let timestamp = now();
    let wrong = foco_ingress::signature::sign_standard_webhooks(
        "whsec_d3Jvbmcgc2VjcmV0IGZvciB0ZXN0cw==",
        "msg_1",
        timestamp,
        body,
    );
    let answer = problem(
        json_post(&signed.token, r#"{"type":"order.paid"}"#)
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", wrong)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&answer, 401, "unauthenticated");

    let tampered_signature =
        foco_ingress::signature::sign_standard_webhooks(SW_SECRET, "msg_1", timestamp, body);
    let answer = problem(
        json_post(&signed.token, r#"{"type":"order.refunded"}"#)
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", tampered_signature)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&answer, 401, "unauthenticated");

    let stale = now() - 3600;
    let stale_signature =
        foco_ingress::signature::sign_standard_webhooks(SW_SECRET, "msg_1", stale, body);
    let answer = problem(
        json_post(&signed.token, r#"{"type":"order.paid"}"#)
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", stale.to_string())
            .header("webhook-signature", stale_signature)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&answer, 401, "unauthenticated");
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("tolerance")
    );

    // 405: webhooks are POSTed; a browser visiting the URL learns that.
    let response = http
        .get(harness.hook_url(&signed.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    let answer = problem(response).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.content_type, foco_ingress::PROBLEM_CONTENT_TYPE);
    assert_eq!(answer.body["type"], "about:blank");

    // Unknown paths are problems too.
    let answer = problem(
        http.post(format!("http://{}/v2/elsewhere", harness.ingress_addr))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&answer, 404, "not-found");

    assert_eq!(
        harness.stored_events().await,
        0,
        "no refused request was published"
    );

    let metrics = harness.metrics().await;
    assert!(
        metrics.contains(
            r#"foco_ingress_webhooks_received_total{outcome="rejected",reason="bad_signature"} 3"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"foco_ingress_webhooks_received_total{outcome="rejected",reason="stale_timestamp"} 1"#
    ));
}

#[tokio::test]
async fn the_global_cap_wins_over_a_larger_source_limit() {
    let mut harness = Harness::start_with(
        foco_testkit::nats_url(),
        IngressOptions {
            max_body_bytes: 32,
            ..Default::default()
        },
    )
    .await;
    let source = harness
        .upsert_source(UpsertSourceRequest {
            name: "roomy".to_owned(),
            max_body_bytes: 1024 * 1024,
            ..Default::default()
        })
        .await;
    let answer = problem(
        harness
            .http
            .post(harness.hook_url(&source.token))
            .header("content-type", "application/json")
            .body(format!("{{\"pad\":\"{}\"}}", "x".repeat(64)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&answer, 413, "payload-too-large");
    assert_eq!(harness.stored_events().await, 0);
}

/// A body the source allows but the NATS server's `max_payload` does not can never
/// be stored: it is 413, not a 503 its sender would retry for ever.
#[tokio::test]
async fn bodies_over_the_bus_max_payload_are_413_not_503() {
    const MAX_PAYLOAD: usize = 8 * 1024;
    let nats = PrivateNats::start_with_max_payload(MAX_PAYLOAD).await;
    let mut harness = Harness::start_with(nats.url(), IngressOptions::default()).await;
    let source = harness.source("large", no_verification(), "").await;
    let post = |body_len: usize| {
        let padding = "x".repeat(body_len - r#"{"pad":""}"#.len());
        harness
            .http
            .post(harness.hook_url(&source.token))
            .header("content-type", "application/json")
            .body(format!(r#"{{"pad":"{padding}"}}"#))
            .send()
    };

    // Over max_payload itself: refused before it is read.
    let answer = problem(post(MAX_PAYLOAD + 1000).await.unwrap()).await;
    assert_problem(&answer, 413, "payload-too-large");
    let detail = answer.body["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(&format!("{MAX_PAYLOAD} bytes")), "{detail}");

    // Under it, but not once the envelope's ids and headers are added.
    let answer = problem(post(MAX_PAYLOAD - 50).await.unwrap()).await;
    assert_problem(&answer, 413, "payload-too-large");
    let detail = answer.body["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("body and headers"), "{detail}");
    assert_eq!(answer.retry_after, None);
    assert_eq!(harness.stored_events().await, 0);

    // With room to spare, the bus takes it.
    assert_eq!(post(MAX_PAYLOAD / 2).await.unwrap().status(), 202);
    assert_eq!(harness.stored_events().await, 1);
}

/// Ingress with a control address nothing listens on: every lookup fails, and
/// the request is answered 503.
async fn start_without_control() -> Harness {
    let unreachable = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", unreachable.local_addr().unwrap());
    drop(unreachable);
    Harness::start_with(
        foco_testkit::nats_url(),
        IngressOptions {
            control_url: Some(dead_url),
            ..Default::default()
        },
    )
    .await
}

async fn post_empty_json(harness: &Harness, token: &str) -> ProblemAnswer {
    let response = harness
        .http
        .post(harness.hook_url(token))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(response).await
}

/// A token of the form control issues, that no source has.
const UNKNOWN_TOKEN: &str = "src_UGKRx5EgnQx9JbcuzB5w9Zq-7Jp6gMG1DneNyIUypmA";

#[tokio::test]
async fn control_unreachable_is_503_with_retry_after() {
    let harness = start_without_control().await;
    let answer = post_empty_json(&harness, UNKNOWN_TOKEN).await;
    assert_problem(&answer, 503, "unavailable");
    assert_eq!(answer.retry_after.as_deref(), Some("5"));
    assert_eq!(harness.stored_events().await, 0);
}

/// A token that control could not have issued is refused before any lookup:
/// with control unreachable, a lookup would have answered 503, not 404.
#[tokio::test]
async fn malformed_tokens_are_404_without_a_lookup() {
    let harness = start_without_control().await;
    let too_long = format!("{UNKNOWN_TOKEN}A");
    let malformed = [
        "any-token",
        "src_",
        &UNKNOWN_TOKEN[..UNKNOWN_TOKEN.len() - 1],
        &too_long,
        "src_UGKRx5EgnQx9JbcuzB5w9Zq.7Jp6gMG1DneNyIUypmA",
        "src_UGKRx5EgnQx9JbcuzB5w9Zq%2B7Jp6gMG1DneNyIUypm",
        "key_UGKRx5EgnQx9JbcuzB5w9Zq-7Jp6gMG1DneNyIUypmA",
    ];
    for token in malformed {
        let answer = post_empty_json(&harness, token).await;
        assert_problem(&answer, 404, "not-found");
        assert_eq!(answer.body["detail"], "no webhook source has this URL");
    }
    let metrics = harness.metrics().await;
    let refused = format!(
        r#"foco_ingress_webhooks_received_total{{outcome="rejected",reason="unknown_source"}} {}"#,
        malformed.len()
    );
    assert!(metrics.contains(&refused), "{metrics}");
    assert!(
        !metrics.contains(r#"reason="control_unavailable""#),
        "{metrics}"
    );
}
