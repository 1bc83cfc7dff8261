//! W3C trace context: a webhook's `traceparent` becomes the parent of the request
//! span, and the publish carries the same trace into the NATS headers.

use crate::accept::no_verification;
use crate::harness::Harness;

#[tokio::test]
async fn the_callers_trace_continues_into_the_nats_headers() {
    // The harness installs an OpenTelemetry tracing layer, as `main` does.
    let mut harness = Harness::start().await;
    let source = harness.source("traced", no_verification(), "").await;
    let response = harness
        .http
        .post(harness.hook_url(&source.token))
        .header("content-type", "application/json")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(r#"{"type":"order.paid"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    let stored = harness.stored_event(1).await;
    let traceparent = stored
        .traceparent
        .expect("a traceparent header on the message");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_ne!(parts[2], "00f067aa0ba902b7", "a child span of the caller's");
}
