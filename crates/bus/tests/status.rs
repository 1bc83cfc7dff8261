//! The status feed on a real JetStream: changes published at once travel
//! together, every change arrives once, and a reader decodes batches and bare
//! changes alike.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream;
use foco_bus::status::kind;
use foco_bus::{BusNames, StatusFeed, StreamSettings, status_change};
use foco_testkit::TestBus;
use futures::StreamExt as _;

#[tokio::test]
async fn concurrent_changes_share_messages_and_each_arrives_once() {
    let bus = TestBus::new();
    let client = async_nats::connect(&bus.nats_url).await.expect("NATS");
    let context = jetstream::new(client.clone());
    let names = BusNames::new(&bus.prefix).unwrap();
    foco_bus::ensure_status_stream(&context, &names, StreamSettings::default())
        .await
        .unwrap();
    let feed = StatusFeed::new(client.clone(), names.clone(), Duration::from_secs(5));

    // Alone, a change goes out at once as a bare change.
    feed.publish(status_change("a1", "job_first", kind::SENT))
        .await
        .unwrap();
    // Many at once: two accounts, two kinds.
    let changes: Vec<_> = (0..400)
        .map(|n| {
            let account = if n % 4 == 0 { "a2" } else { "a1" };
            let change_kind = if n % 2 == 0 { kind::SENT } else { kind::FAILED };
            status_change(account, &format!("job_{n}"), change_kind)
        })
        .collect();
    let results =
        futures::future::join_all(changes.iter().map(|change| feed.publish(change.clone()))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let stream = context.get_stream(names.status_stream()).await.unwrap();
    let stored = stream.get_info().await.unwrap().state.messages;
    assert!(
        stored < 401,
        "401 changes published at once took {stored} messages"
    );
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subjects: vec![names.status_filter()],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut seen = HashSet::new();
    for _ in 0..stored {
        let message = messages.next().await.unwrap().unwrap();
        for change in foco_bus::status::decode(message.headers.as_ref(), &message.payload).unwrap()
        {
            // Each message is one account's and one kind's.
            assert_eq!(
                message.subject.as_str(),
                names.status_subject(&change.account_id, &change.kind)
            );
            assert!(seen.insert(change.id.clone()), "{} twice", change.id);
        }
    }
    let mut expected: HashSet<String> = changes.iter().map(|change| change.id.clone()).collect();
    expected.insert(status_change("a1", "job_first", kind::SENT).id);
    assert_eq!(seen, expected);
}
