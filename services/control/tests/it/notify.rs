//! Every successful write is announced on the config-changed subject.

use std::time::Duration;

use foco_bus::BusNames;
use futures::StreamExt as _;

use crate::harness::{TestControl, create_source};

/// A subscription to `control`'s change notices, taken before it returns.
async fn follow(control: &TestControl) -> (async_nats::Client, async_nats::Subscriber) {
    let nats = async_nats::connect(control.bus.nats_url.as_str())
        .await
        .unwrap();
    let subject = BusNames::new(&control.bus.prefix)
        .unwrap()
        .config_changed_subject();
    let changes = nats.subscribe(subject).await.unwrap();
    nats.flush().await.unwrap();
    (nats, changes)
}

/// The next notice, as JSON.
async fn next_notice(changes: &mut async_nats::Subscriber) -> serde_json::Value {
    let message = tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .expect("a change notice within 5s")
        .expect("subscription open");
    serde_json::from_slice(&message.payload).unwrap()
}

#[tokio::test]
async fn writes_are_announced_on_nats() {
    let control = TestControl::start().await;
    let (_nats, mut changes) = follow(&control).await;

    let account = control.create_account("acme").await;
    create_source(&control, "acme", "shop", "s1").await;

    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let notice = next_notice(&mut changes).await;
        assert_eq!(notice["account_id"], account.id.as_str());
        kinds.push(notice["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds, ["account", "source"]);
}

/// The status worker of every replica remembers which accounts have an
/// endpoint; the writes that change that tell them.
#[tokio::test]
async fn endpoint_writes_are_announced() {
    let control = TestControl::start().await;
    let (_nats, mut changes) = follow(&control).await;
    let account = control.create_account("acme").await;
    // The account's own notice may go out after the call returns: wait for it,
    // so that what follows is the endpoints' alone.
    assert_eq!(next_notice(&mut changes).await["kind"], "account");

    let created = control
        .messaging(foco_harness::ADMIN_KEY)
        .create_endpoint(foco_proto::v1::CreateEndpointRequest {
            account: "acme".to_owned(),
            url: "https://example.com/hooks".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create endpoint")
        .into_inner();
    control
        .messaging(foco_harness::ADMIN_KEY)
        .delete_endpoint(foco_proto::v1::DeleteEndpointRequest {
            account: "acme".to_owned(),
            id: created.endpoint.expect("endpoint").id,
        })
        .await
        .expect("delete endpoint");

    for _ in 0..2 {
        let notice = next_notice(&mut changes).await;
        assert_eq!(notice["account_id"], account.id.as_str());
        assert_eq!(notice["kind"], "endpoint");
    }
}
