//! Every successful write is announced on the config-changed subject.

use std::time::Duration;

use foco_bus::BusNames;
use futures::StreamExt as _;

use crate::harness::{TestControl, create_source};

#[tokio::test]
async fn writes_are_announced_on_nats() {
    let control = TestControl::start().await;
    let nats = async_nats::connect(control.bus.nats_url.as_str())
        .await
        .unwrap();
    let subject = BusNames::new(&control.bus.prefix)
        .unwrap()
        .config_changed_subject();
    let mut changes = nats.subscribe(subject).await.unwrap();
    nats.flush().await.unwrap();

    let account = control.create_account("acme").await;
    create_source(&control, "acme", "shop", "s1").await;

    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("a change notice within 5s")
            .expect("subscription open");
        let notice: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(notice["account_id"], account.id.as_str());
        kinds.push(notice["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds, ["account", "source"]);
}
