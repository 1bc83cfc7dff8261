//! The streams on a real JetStream: a work queue bounded by size, refusing new
//! messages when full rather than dropping old ones, and emptied by acks.

use std::time::Duration;

use async_nats::jetstream;
use foco_bus::{BusNames, PublishError, StreamSettings};
use foco_testkit::TestBus;
use futures::StreamExt as _;

async fn connect(bus: &TestBus) -> (async_nats::Client, jetstream::Context, BusNames) {
    let client = async_nats::connect(&bus.nats_url).await.expect("NATS");
    let context = jetstream::new(client.clone());
    (client, context, BusNames::new(&bus.prefix).unwrap())
}

#[tokio::test]
async fn a_full_stream_refuses_new_messages_and_keeps_the_old() {
    let bus = TestBus::new();
    let (client, context, names) = connect(&bus).await;
    let settings = StreamSettings {
        replicas: 1,
        max_bytes: 1 << 20,
        ..Default::default()
    };
    foco_bus::ensure_streams(&context, &names, settings)
        .await
        .unwrap();
    let payload = bytes::Bytes::from(vec![b'x'; 16 * 1024]);
    let mut stored = 0_u64;
    let refusal = loop {
        let published = foco_bus::publish_durable(
            &context,
            &client,
            names.sms_subject("acme"),
            &format!("job-{stored}"),
            payload.clone(),
            Duration::from_secs(5),
        )
        .await;
        match published {
            Ok(_) => stored += 1,
            Err(error) => break error,
        }
        assert!(
            stored < 1_000,
            "a 1 MiB stream took {stored} messages of 16 KiB"
        );
    };
    assert!(
        matches!(refusal, PublishError::StreamFull),
        "refused as full: {refusal:?}"
    );
    assert!(stored >= 50, "{stored} messages stored before the bound");
    let mut stream = context.get_stream(names.sms_stream()).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages, stored, "nothing old was dropped");
    assert_eq!(info.state.first_sequence, 1);
}

#[tokio::test]
async fn acknowledged_messages_leave_the_stream() {
    let bus = TestBus::new();
    let (client, context, names) = connect(&bus).await;
    foco_bus::ensure_streams(&context, &names, StreamSettings::default())
        .await
        .unwrap();
    for number in 0..10 {
        foco_bus::publish_durable(
            &context,
            &client,
            names.sms_subject("acme"),
            &format!("job-{number}"),
            bytes::Bytes::from_static(b"job"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
    let consumer = foco_bus::ensure_consumer(
        &context,
        &foco_bus::ConsumerSettings {
            stream: names.sms_stream(),
            durable_name: names.sender_consumer().to_owned(),
            filter_subject: names.sms_filter(),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 100,
            max_deliver: -1,
        },
    )
    .await
    .unwrap();
    let mut messages = consumer.fetch().max_messages(10).messages().await.unwrap();
    let mut acked = 0;
    while let Some(message) = messages.next().await {
        message.unwrap().double_ack().await.unwrap();
        acked += 1;
    }
    assert_eq!(acked, 10);
    let mut stream = context.get_stream(names.sms_stream()).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 0);
}
