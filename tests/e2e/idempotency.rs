//! One SMS per job, whatever is delivered twice or dies half-way.

use std::time::Duration;

use foco_harness::{SystemOptions, TestSystem};
use foco_proto::v1::MessageStatus;
use foco_testkit::{FakeResponse, wait_for};

use crate::support::*;

#[tokio::test]
async fn the_same_webhook_delivered_twice_sends_one_sms() {
    let system = TestSystem::start().await;
    let source = configure_shop(&system).await;

    let first = post_shopify_order(&system, &source, "evt-twice").await;
    let second = post_shopify_order(&system, &source, "evt-twice").await;
    assert_eq!(first.status, 202);
    assert_eq!(second.status, 202);
    assert_eq!(first.json["event_id"], second.json["event_id"]);
    assert_eq!(first.json["duplicate"], false);
    assert_eq!(second.json["duplicate"], true);

    // A different event afterwards: once its SMS is out, the first one's would have
    // been too (the pipeline is ordered per consumer), so counting is meaningful.
    let third = post_shopify_order(&system, &source, "evt-after").await;
    assert_eq!(third.status, 202);
    wait_for("two messages sent", WAIT, || async {
        let messages = system.messages().await;
        (messages
            .iter()
            .filter(|message| message.status == MessageStatus::Sent as i32)
            .count()
            == 2)
            .then_some(())
    })
    .await;
    assert_eq!(system.provider.request_count(), 2);
    let events: std::collections::HashSet<String> = system
        .messages()
        .await
        .into_iter()
        .map(|message| message.event_id)
        .collect();
    assert_eq!(events.len(), 2);
    system.stop().await;
}

#[tokio::test]
async fn a_sender_killed_during_the_provider_call_does_not_send_twice() {
    let mut system = TestSystem::start_with(SystemOptions {
        sender_ack_wait: Duration::from_secs(2),
        ..SystemOptions::default()
    })
    .await;
    let source = configure_shop(&system).await;
    // The provider takes its time: the sender is killed while waiting for it.
    system.provider.push_responses([
        FakeResponse::status(200, r#"{"id":"slow-1"}"#).with_delay(Duration::from_secs(3))
    ]);

    let posted = post_shopify_order(&system, &source, "evt-killed").await;
    assert_eq!(posted.status, 202);
    system.provider.wait_for_requests(1, WAIT).await;
    system.kill_sender().await;

    // JetStream redelivers the unacked job to a fresh sender after the ack wait.
    system.start_sender().await;
    let message = wait_for("the job to be marked unknown", WAIT, || async {
        system
            .messages()
            .await
            .into_iter()
            .find(|message| message.status == MessageStatus::Unknown as i32)
    })
    .await;
    assert!(!message.error.is_empty());

    // The restarted sender is live: a new order is sent normally...
    let next = post_shopify_order(&system, &source, "evt-next").await;
    assert_eq!(next.status, 202);
    system.provider.wait_for_requests(2, WAIT).await;
    // ...and the killed job was never sent a second time.
    let requests = system.provider.requests();
    assert_eq!(requests.len(), 2);
    assert_ne!(requests[0].json()["job_id"], requests[1].json()["job_id"]);
    system.stop().await;
}
