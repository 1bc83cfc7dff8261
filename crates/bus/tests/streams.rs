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

async fn sender_consumer(
    context: &jetstream::Context,
    names: &BusNames,
) -> jetstream::consumer::PullConsumer {
    foco_bus::ensure_consumer(
        context,
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
    .unwrap()
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
    let consumer = sender_consumer(&context, &names).await;
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

/// The oldest unacknowledged message as of a consumer-info reading, when the
/// message right after the ack floor is acknowledged (and so removed from the
/// work queue) between that reading and the read of the message.
#[tokio::test]
async fn the_oldest_unacked_message_is_found_after_the_one_at_the_floor_was_acked() {
    let bus = TestBus::new();
    let (client, context, names) = connect(&bus).await;
    foco_bus::ensure_streams(&context, &names, StreamSettings::default())
        .await
        .unwrap();
    for number in 0..3 {
        foco_bus::publish_durable(
            &context,
            &client,
            names.sms_subject("acme"),
            &format!("job-{number}"),
            bytes::Bytes::from(format!("job-{number}")),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
    let mut consumer = sender_consumer(&context, &names).await;
    let stream = context.get_stream(names.sms_stream()).await.unwrap();
    let mut messages = consumer.fetch().max_messages(3).messages().await.unwrap();
    let mut delivered = Vec::new();
    while let Some(message) = messages.next().await {
        delivered.push(message.unwrap());
    }
    assert_eq!(delivered.len(), 3);

    let before = consumer.info().await.unwrap().clone();
    assert_eq!(before.ack_floor.stream_sequence, 0);
    let oldest = foco_bus::lag::oldest_unacked(&stream, &before)
        .await
        .unwrap()
        .expect("three unacknowledged messages");
    assert_eq!(oldest.sequence, 1);

    // The first is acknowledged (and leaves the stream) after the reading.
    delivered[0].double_ack().await.unwrap();
    let oldest = foco_bus::lag::oldest_unacked(&stream, &before)
        .await
        .unwrap()
        .expect("two unacknowledged messages");
    assert_eq!(oldest.sequence, 2);
    assert_eq!(&oldest.payload[..], b"job-1");

    for message in &delivered[1..] {
        message.double_ack().await.unwrap();
    }
    assert!(
        foco_bus::lag::oldest_unacked(&stream, &before)
            .await
            .unwrap()
            .is_none(),
        "every message acknowledged since the reading"
    );
    let after = consumer.info().await.unwrap().clone();
    assert!(
        foco_bus::lag::oldest_unacked(&stream, &after)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn changed_stream_settings_are_applied_to_existing_streams() {
    let bus = TestBus::new();
    let (_client, context, names) = connect(&bus).await;
    let first = StreamSettings {
        max_bytes: 8 << 20,
        ..Default::default()
    };
    foco_bus::ensure_streams(&context, &names, first)
        .await
        .unwrap();
    let second = StreamSettings {
        max_bytes: 16 << 20,
        duplicate_window: Duration::from_secs(60),
        ..first
    };
    foco_bus::ensure_streams(&context, &names, second)
        .await
        .unwrap();
    for stream in [
        names.events_stream(),
        names.sms_stream(),
        names.receipts_stream(),
    ] {
        let mut stream = context.get_stream(&stream).await.unwrap();
        let config = stream.info().await.unwrap().config.clone();
        assert_eq!(config.max_bytes, 16 << 20, "{}", config.name);
        assert_eq!(config.duplicate_window, Duration::from_secs(60));
    }
}

#[tokio::test]
async fn changed_consumer_settings_are_applied_to_an_existing_consumer() {
    let bus = TestBus::new();
    let (_client, context, names) = connect(&bus).await;
    foco_bus::ensure_streams(&context, &names, StreamSettings::default())
        .await
        .unwrap();
    sender_consumer(&context, &names).await;
    let changed = foco_bus::ConsumerSettings {
        stream: names.sms_stream(),
        durable_name: names.sender_consumer().to_owned(),
        filter_subject: names.sms_filter(),
        ack_wait: Duration::from_secs(7),
        max_ack_pending: 42,
        max_deliver: 9,
    };
    let mut consumer = foco_bus::ensure_consumer(&context, &changed).await.unwrap();
    assert_eq!(
        consumer.cached_info().config.ack_wait,
        Duration::from_secs(7)
    );
    let info = consumer.info().await.unwrap().config.clone();
    assert_eq!(info.ack_wait, Duration::from_secs(7));
    assert_eq!(info.max_ack_pending, 42);
    assert_eq!(info.max_deliver, 9);
}

#[tokio::test]
async fn the_topology_shows_each_stream_with_its_backlog_and_consumers() {
    let bus = TestBus::new();
    let (client, context, names) = connect(&bus).await;
    foco_bus::ensure_streams(&context, &names, StreamSettings::default())
        .await
        .unwrap();
    sender_consumer(&context, &names).await;
    for index in 0..2 {
        foco_bus::publish_durable(
            &context,
            &client,
            names.sms_subject("acme"),
            &format!("job-{index}"),
            bytes::Bytes::from_static(b"job"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
    let topology = foco_bus::describe::describe(&context, &names)
        .await
        .unwrap();
    let names_shown: Vec<&str> = topology
        .streams
        .iter()
        .map(|stream| stream.name.as_str())
        .collect();
    assert_eq!(
        names_shown,
        [
            names.events_stream(),
            names.sms_stream(),
            names.receipts_stream()
        ]
    );
    assert!(topology.missing.is_empty());
    let sms = &topology.streams[1];
    assert_eq!(sms.messages, 2);
    assert_eq!(sms.retention, "work queue");
    assert_eq!(sms.consumers.len(), 1);
    assert_eq!(sms.consumers[0].name, names.sender_consumer());
    assert_eq!(sms.consumers[0].pending, 2);
    let printed = topology.to_string();
    assert!(
        printed.contains(&format!("{}  subjects", names.sms_stream())),
        "{printed}"
    );
    assert!(printed.contains("pending 2"), "{printed}");
    assert!(
        printed.contains("no consumers"),
        "events has none here: {printed}"
    );
}

#[tokio::test]
async fn a_service_starting_before_nats_sets_up_its_streams_once_nats_is_up() {
    let mut nats = foco_testkit::PrivateNats::start().await;
    nats.stop();
    let names = BusNames::new("start").unwrap();
    // Connected in the background, as the services connect.
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(nats.url())
        .await
        .expect("a client that connects once NATS is up");
    // Requests time out long before NATS comes back, so the setup sees timeouts
    // first and has to try again.
    let context = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(200))
        .build(client.clone());
    let settings = StreamSettings {
        replicas: 1,
        ..Default::default()
    };
    let setup = tokio::spawn({
        let names = names.clone();
        async move { foco_bus::ensure_streams(&context, &names, settings).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!setup.is_finished(), "the setup waits for NATS");
    nats.restart().await;
    setup
        .await
        .unwrap()
        .expect("the streams are set up once NATS answers");
    let context = jetstream::new(client);
    for stream in [
        names.events_stream(),
        names.sms_stream(),
        names.receipts_stream(),
        names.status_stream(),
    ] {
        context
            .get_stream(&stream)
            .await
            .expect("the stream exists");
    }
}

#[tokio::test]
async fn a_setup_the_server_refuses_ends_at_once() {
    let bus = TestBus::new();
    let (_client, context, names) = connect(&bus).await;
    // Three replicas on a single server: a misconfiguration, not a server
    // that is not ready yet.
    let settings = StreamSettings {
        replicas: 3,
        ..Default::default()
    };
    let error = foco_bus::ensure_streams(&context, &names, settings)
        .await
        .expect_err("a single server refuses replicated streams");
    assert!(!error.is_transient(), "{error:?}");
}

/// Many tasks publishing at once through one [`foco_bus::Publisher`]: each is
/// answered with its own message's sequence, a repeated id is a duplicate of
/// the first, and a message larger than the server takes is refused as such.
#[tokio::test]
async fn the_publisher_answers_each_task_for_its_own_message() {
    let bus = TestBus::new();
    let (client, context, names) = connect(&bus).await;
    foco_bus::ensure_streams(&context, &names, StreamSettings::default())
        .await
        .unwrap();
    let publisher = foco_bus::Publisher::start(context.clone(), client.clone());
    let wave = |names: BusNames| {
        let tasks: Vec<_> = (0..150)
            .map(|number| {
                let publisher = publisher.clone();
                let subject = names.sms_subject("acme");
                tokio::spawn(async move {
                    publisher
                        .publish_durable(
                            subject,
                            &format!("job-{number}"),
                            bytes::Bytes::from(format!("job-{number}")),
                            Duration::from_secs(5),
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        futures::future::join_all(tasks)
    };
    let first: Vec<_> = wave(names.clone())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(first.iter().all(|published| !published.duplicate));
    let mut sequences: Vec<u64> = first
        .iter()
        .map(|published| published.stream_sequence)
        .collect();
    sequences.sort_unstable();
    sequences.dedup();
    assert_eq!(sequences.len(), 150, "one sequence per message");

    let mut stream = context.get_stream(names.sms_stream()).await.unwrap();
    for (number, published) in first.iter().enumerate().step_by(37) {
        let stored = stream
            .get_raw_message(published.stream_sequence)
            .await
            .unwrap();
        assert_eq!(stored.payload, format!("job-{number}").as_bytes());
    }

    let again: Vec<_> = wave(names.clone())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for (before, after) in first.iter().zip(&again) {
        assert!(after.duplicate);
        assert_eq!(after.stream_sequence, before.stream_sequence);
    }
    assert_eq!(stream.info().await.unwrap().state.messages, 150);

    let too_large = bytes::Bytes::from(vec![b'x'; client.server_info().max_payload + 1]);
    let refused = publisher
        .publish_durable(
            names.sms_subject("acme"),
            "job-too-large",
            too_large,
            Duration::from_secs(5),
        )
        .await;
    assert!(
        matches!(refused, Err(PublishError::TooLarge { .. })),
        "{refused:?}"
    );
}
