//! Consumer lag as operators read it: messages waiting, messages in flight, and
//! the age of the oldest one not yet acknowledged.

use async_nats::jetstream::consumer;
use futures::StreamExt;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

use crate::support::Rig;

fn gauge(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(name) && line.contains("consumer=\"lag-probe\""))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} for lag-probe in\n{text}"))
}

#[tokio::test]
async fn pending_in_flight_and_oldest_age_follow_the_consumer() {
    let rig = Rig::start().await;
    let stream = rig
        .jetstream
        .get_stream(rig.names.events_stream())
        .await
        .unwrap();
    // A second durable consumer on the events stream that nothing consumes.
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
        rig.publish_external_event(
            &format!("evt_lag_{index}"),
            &format!("evt_lag_{index}"),
            "orders/create",
            "{}",
            0,
        )
        .await;
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
