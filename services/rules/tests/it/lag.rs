//! Consumer lag as operators read it: messages waiting, messages in flight, and
//! the age of the oldest one not yet acknowledged.

use async_nats::jetstream::consumer;
use futures::StreamExt;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

use std::time::Duration;

use foco_bus::BusNames;
use foco_testkit::TestBus;

fn gauge(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(name) && line.contains("consumer=\"lag-probe\""))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} for lag-probe in\n{text}"))
}

#[tokio::test]
async fn pending_in_flight_and_oldest_age_follow_the_consumer() {
    // Streams of their own: each stream is one service's work queue, so the
    // probe must be the only consumer of its events stream.
    let bus = TestBus::new();
    let names = BusNames::new(&bus.prefix).unwrap();
    let nats = async_nats::connect(&bus.nats_url).await.unwrap();
    let jetstream = async_nats::jetstream::new(nats.clone());
    foco_bus::ensure_streams(&jetstream, &names, Default::default())
        .await
        .unwrap();
    let stream = jetstream.get_stream(names.events_stream()).await.unwrap();
    // A durable consumer that nothing consumes but this test.
    let probe: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("lag-probe".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut registry = Registry::default();
    let lag = foco_bus::ConsumerLag::register(registry.sub_registry_with_prefix("foco"));
    let read = |registry: &Registry| {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        text
    };

    lag.observe(&stream, &probe).await.unwrap();
    let text = read(&registry);
    assert_eq!(gauge(&text, "foco_consumer_pending_messages"), 0.0);
    assert_eq!(
        gauge(&text, "foco_consumer_oldest_unacked_age_seconds"),
        0.0
    );

    for index in 0..3 {
        foco_bus::publish_durable(
            &jetstream,
            &nats,
            names.events_subject("account", "source"),
            &format!("evt_lag_{index}"),
            bytes::Bytes::from_static(b"event"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
    lag.observe(&stream, &probe).await.unwrap();
    let text = read(&registry);
    assert_eq!(gauge(&text, "foco_consumer_pending_messages"), 3.0);
    assert_eq!(gauge(&text, "foco_consumer_ack_pending_messages"), 0.0);
    assert!(gauge(&text, "foco_consumer_oldest_unacked_age_seconds") > 0.0);

    // Delivered, not acknowledged: in flight, and still the oldest.
    let mut batch = probe.fetch().max_messages(3).messages().await.unwrap();
    let mut delivered = Vec::new();
    while let Some(message) = batch.next().await {
        delivered.push(message.unwrap());
    }
    assert_eq!(delivered.len(), 3);
    lag.observe(&stream, &probe).await.unwrap();
    let text = read(&registry);
    assert_eq!(gauge(&text, "foco_consumer_pending_messages"), 0.0);
    assert_eq!(gauge(&text, "foco_consumer_ack_pending_messages"), 3.0);
    assert!(gauge(&text, "foco_consumer_oldest_unacked_age_seconds") > 0.0);

    for message in &delivered {
        message.double_ack().await.unwrap();
    }
    lag.observe(&stream, &probe).await.unwrap();
    let text = read(&registry);
    assert_eq!(gauge(&text, "foco_consumer_ack_pending_messages"), 0.0);
    assert_eq!(
        gauge(&text, "foco_consumer_oldest_unacked_age_seconds"),
        0.0
    );
}
