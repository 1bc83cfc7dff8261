//! Per-source rate limits, the source's content type for bodies that do not say
//! theirs, and the OpenAPI document served as committed.

use foco_proto::v1::UpsertSourceRequest;

use crate::harness::{Harness, IngressOptions, assert_problem, problem};

/// Posts `{"n": n}` to the source with `token`.
async fn post_numbered(harness: &Harness, token: &str, n: u32) -> reqwest::Response {
    harness
        .http
        .post(harness.hook_url(token))
        .header("content-type", "application/json")
        .body(format!("{{\"n\":{n}}}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_source_over_its_rate_limit_gets_429_with_retry_after() {
    let mut harness = Harness::start().await;
    let limited = harness
        .upsert_source(UpsertSourceRequest {
            name: "chatty".to_owned(),
            preset: "none".to_owned(),
            rate_limit_per_second: 1,
            rate_limit_burst: 2,
            ..Default::default()
        })
        .await;
    let unlimited = harness
        .upsert_source(UpsertSourceRequest {
            name: "calm".to_owned(),
            preset: "none".to_owned(),
            ..Default::default()
        })
        .await;
    // The burst passes; the next request within the second does not.
    let mut statuses = Vec::new();
    for n in 0..3 {
        statuses.push(
            post_numbered(&harness, &limited.token, n)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..2], [202, 202]);
    if statuses[2] == 202 {
        // A slow machine let a token refill in between; one more is still refused.
        statuses.push(
            post_numbered(&harness, &limited.token, 3)
                .await
                .status()
                .as_u16(),
        );
    }
    let refused = post_numbered(&harness, &limited.token, 4).await;
    let answer = problem(refused).await;
    assert_problem(&answer, 429, "rate-limited");
    let retry_after: u64 = answer.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Other sources are not affected.
    for n in 0..5 {
        assert_eq!(
            post_numbered(&harness, &unlimited.token, n).await.status(),
            202
        );
    }
}

/// When the events waiting for rules fill the stream's size bound, webhooks are
/// refused with 503 and Retry-After, saying why, and every event accepted
/// before stays stored.
#[tokio::test]
async fn a_full_backlog_is_refused_with_503_and_retry_after() {
    let mut harness = Harness::start_with(
        foco_testkit::nats_url(),
        IngressOptions {
            bus: foco_bus::StreamSettings {
                replicas: 1,
                max_bytes: 1 << 20,
                ..Default::default()
            },
            ..IngressOptions::default()
        },
    )
    .await;
    let source = harness
        .upsert_source(UpsertSourceRequest {
            name: "flood".to_owned(),
            preset: "none".to_owned(),
            ..Default::default()
        })
        .await;
    let padding = "x".repeat(64 * 1024);
    let mut accepted = 0_u64;
    let refused = loop {
        let response = harness
            .http
            .post(harness.hook_url(&source.token))
            .header("content-type", "application/json")
            .body(format!("{{\"n\":{accepted},\"note\":\"{padding}\"}}"))
            .send()
            .await
            .unwrap();
        if response.status() != 202 {
            break response;
        }
        accepted += 1;
        assert!(
            accepted < 100,
            "a 1 MiB backlog took {accepted} events of 64 KiB"
        );
    };
    let answer = problem(refused).await;
    assert_problem(&answer, 503, "unavailable");
    assert_eq!(answer.body["title"], "Backlog full", "{}", answer.body);
    assert!(answer.retry_after.is_some(), "says when to retry");
    assert!(accepted >= 5, "{accepted} events accepted before the bound");
    assert_eq!(harness.stored_events().await, accepted);
}

/// A source that sets no limit of its own gets the operator's default; one
/// that sets a higher one gets that.
#[tokio::test]
async fn a_source_without_a_limit_gets_the_default() {
    let mut harness = Harness::start_with(
        foco_testkit::nats_url(),
        IngressOptions {
            default_source_rate: 1,
            ..IngressOptions::default()
        },
    )
    .await;
    let plain = harness
        .upsert_source(UpsertSourceRequest {
            name: "plain".to_owned(),
            preset: "none".to_owned(),
            ..Default::default()
        })
        .await;
    let busy = harness
        .upsert_source(UpsertSourceRequest {
            name: "busy".to_owned(),
            preset: "none".to_owned(),
            rate_limit_per_second: 1_000,
            ..Default::default()
        })
        .await;
    // The default burst is two seconds' worth: two pass, then one is refused
    // within a few requests (a slow machine may refill a token in between).
    let mut refused = None;
    for n in 0..6 {
        let response = post_numbered(&harness, &plain.token, n).await;
        if response.status() != 202 {
            refused = Some(response);
            break;
        }
    }
    let answer = problem(refused.expect("the default limit refused a request")).await;
    assert_problem(&answer, 429, "rate-limited");
    for n in 0..10 {
        assert_eq!(post_numbered(&harness, &busy.token, n).await.status(), 202);
    }
}

#[tokio::test]
async fn a_json_source_reads_bodies_sent_as_text() {
    let mut harness = Harness::start().await;
    let source = harness
        .upsert_source(UpsertSourceRequest {
            name: "plain".to_owned(),
            preset: "none".to_owned(),
            content_type: "json".to_owned(),
            ..Default::default()
        })
        .await;
    let response = harness
        .http
        .post(harness.hook_url(&source.token))
        .header("content-type", "text/plain; charset=utf-8")
        .body(r#"{"type":"lead"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let envelope = harness.stored_event(1).await.envelope;
    assert_eq!(envelope.payload, br#"{"type":"lead"}"#);
}

#[tokio::test]
async fn the_openapi_document_is_served_as_committed() {
    let harness = Harness::start().await;
    let response = harness
        .http
        .get(format!(
            "http://{}{}",
            harness.ingress_addr,
            foco_ingress::OPENAPI_ROUTE
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served = response.text().await.unwrap();
    assert_eq!(served, foco_ingress::openapi_document());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
        .expect("openapi.json is committed");
    assert_eq!(served, committed, "regenerate with FOCO_UPDATE_OPENAPI=1");
}
