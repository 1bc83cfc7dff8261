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
    assert_eq!(events_with_messages(&system).await, 2);
    system.stop().await;
}

/// A captured Shopify request sent again under fresh id headers (Shopify signs
/// the body alone) is the same event: answered as a duplicate while the bus
/// remembers its id, stored again after that and dropped by rules. One SMS.
#[tokio::test]
async fn a_shopify_order_replayed_under_new_ids_sends_one_sms() {
    // The bus remembers message ids for one second here (two minutes in
    // production), so the test sees copies on both sides of that window.
    let system = TestSystem::start_with(SystemOptions {
        bus: foco_bus::StreamSettings {
            duplicate_window: Duration::from_secs(1),
            ..Default::default()
        },
        ..SystemOptions::default()
    })
    .await;
    let source = configure_shop(&system).await;
    let order = shopify_order(|order| order["token"] = "captured".into());
    let post = |delivery_id: &'static str| {
        post_shopify(
            &system,
            &source,
            "orders/create",
            delivery_id,
            order.clone(),
        )
    };

    let first = post("delivery-1").await;
    assert_eq!(first.json["duplicate"], false, "{}", first.json);
    let within = post("delivery-2").await;
    assert_eq!(within.status, 202);
    assert_eq!(within.json["event_id"], first.json["event_id"]);
    assert_eq!(within.json["duplicate"], true);
    let late = wait_for("a copy stored past the duplicate window", WAIT, || async {
        let late = post("delivery-3").await;
        (late.json["duplicate"] == false).then_some(late)
    })
    .await;
    assert_eq!(late.status, 202);
    assert_eq!(late.json["event_id"], first.json["event_id"]);

    // Another order afterwards: once its SMS is out, a second one for the
    // replays would have been too (the pipeline is ordered per consumer).
    let other = post_shopify_order(&system, &source, "another-order").await;
    assert_eq!(other.status, 202);
    system.provider.wait_for_requests(2, WAIT).await;
    assert_eq!(events_with_messages(&system).await, 2);
    assert_eq!(system.provider.request_count(), 2);
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

/// How many distinct events the messages come from.
async fn events_with_messages(system: &TestSystem) -> usize {
    let events: std::collections::HashSet<String> = system
        .messages()
        .await
        .into_iter()
        .map(|message| message.event_id)
        .collect();
    events.len()
}
