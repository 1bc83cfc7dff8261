//! NATS going away and coming back, readiness, and graceful shutdown.

use std::time::Duration;

use foco_testkit::{PrivateNats, wait_for};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::accept::no_verification;
use crate::harness::{Harness, IngressOptions, assert_problem, problem};

#[tokio::test]
async fn nats_down_is_503_and_ingress_accepts_again_when_it_returns() {
    let mut nats = PrivateNats::start().await;
    let mut harness = Harness::start_with(nats.url(), IngressOptions::default()).await;
    let source = harness.source("alarm", no_verification(), "").await;
    let url = harness.hook_url(&source.token);
    let http = harness.http.clone();
    let post = |n: u32| {
        http.post(&url)
            .header("content-type", "application/json")
            .body(format!("{{\"alarm\":{n}}}"))
            .send()
    };
    assert_eq!(post(0).await.unwrap().status(), 202);

    nats.stop();
    // Wait until ingress has noticed, as a load balancer would via /readyz.
    let readyz = harness.admin_url("/readyz");
    wait_for(
        "ingress to report NATS down",
        Duration::from_secs(10),
        || async {
            let status = http.get(&readyz).send().await.ok()?.status();
            (status == 503).then_some(())
        },
    )
    .await;
    let answer = problem(post(1).await.unwrap()).await;
    assert_problem(&answer, 503, "unavailable");
    assert_eq!(answer.retry_after.as_deref(), Some("5"));

    nats.restart().await;
    // The same ingress, never restarted, takes events again once reconnected.
    let accepted: Value = wait_for(
        "a 202 after NATS restarted",
        Duration::from_secs(30),
        || async {
            let response = post(2).await.ok()?;
            if response.status() == 202 {
                response.json().await.ok()
            } else {
                None
            }
        },
    )
    .await;
    assert_eq!(accepted["duplicate"], false);
    // Reconnection re-uses the client held by the test harness as well.
    let stored = wait_for(
        "the stream to be readable again",
        Duration::from_secs(10),
        || async {
            let stream = harness
                .jetstream
                .get_stream(harness.names.events_stream())
                .await
                .ok()?;
            Some(stream.get_info().await.ok()?.state.messages)
        },
    )
    .await;
    assert_eq!(
        stored, 2,
        "the event refused while NATS was down was never stored"
    );
    harness.stop_ingress().await.expect("clean shutdown");
}

#[tokio::test]
async fn ready_when_connected_and_stops_cleanly_on_shutdown() {
    let mut harness = Harness::start().await;
    let response = harness
        .http
        .get(harness.admin_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let health = harness
        .http
        .get(harness.admin_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    harness
        .stop_ingress()
        .await
        .expect("run returns Ok after draining");
    assert!(
        harness
            .http
            .post(harness.hook_url("after-shutdown"))
            .send()
            .await
            .is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_but_finishes_the_webhook_in_flight() {
    let mut harness = Harness::start().await;
    let source = harness.source("slow-sender", no_verification(), "").await;
    let body = br#"{"type":"order.paid","total":"500.00"}"#;

    // A sender that has sent its headers and half its body when SIGTERM arrives.
    let mut connection = TcpStream::connect(harness.ingress_addr).await.unwrap();
    let head = format!(
        "POST /v1/hooks/{} HTTP/1.1\r\nhost: ingress\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        source.token,
        body.len()
    );
    connection.write_all(head.as_bytes()).await.unwrap();
    connection.write_all(&body[..10]).await.unwrap();
    let metrics_url = harness.admin_url("/metrics");
    let http = harness.http.clone();
    wait_for(
        "the webhook to be in flight",
        Duration::from_secs(10),
        || async {
            let metrics = http
                .get(&metrics_url)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            metrics
                .contains("foco_ingress_webhooks_in_flight 1")
                .then_some(())
        },
    )
    .await;

    harness.begin_shutdown();
    let ingress_addr = harness.ingress_addr;
    wait_for(
        "new connections to be refused",
        Duration::from_secs(10),
        || async {
            TcpStream::connect(ingress_addr)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;

    connection.write_all(&body[10..]).await.unwrap();
    let mut response = String::new();
    connection.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    harness
        .stop_ingress()
        .await
        .expect("run returns Ok once drained");
    assert_eq!(harness.stored_events().await, 1);
}

#[test]
fn the_binary_answers_version() {
    assert_eq!(
        foco_testkit::version_flag_output(env!("CARGO_BIN_EXE_foco-ingress")),
        format!("foco-ingress {}\n", foco_runtime::build_info::VERSION_LINE)
    );
}

#[test]
fn a_bad_worker_count_stops_the_binary_at_start_with_its_name() {
    // Refused before anything else is read or connected: no NATS, no control.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_foco-ingress"))
        .env(foco_runtime::workers::WORKER_THREADS_ENV, "0")
        .output()
        .expect("run foco-ingress");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("foco-ingress: invalid FOCO_WORKER_THREADS=\"0\": must be at least 1"),
        "{stderr}"
    );
}
