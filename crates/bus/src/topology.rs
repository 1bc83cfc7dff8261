//! Creates the streams and durable consumers the services need. Every service calls
//! `ensure_streams` at start, so the order in which services start does not matter.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::BusNames;

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("could not create or read stream {stream}")]
    Stream {
        stream: String,
        #[source]
        source: async_nats::jetstream::context::CreateStreamError,
    },
    #[error("could not read stream {stream}")]
    GetStream {
        stream: String,
        #[source]
        source: async_nats::jetstream::context::GetStreamError,
    },
    #[error("could not create or read consumer {consumer} on {stream}")]
    Consumer {
        stream: String,
        consumer: String,
        #[source]
        source: async_nats::jetstream::stream::ConsumerError,
    },
}

/// Creates FOCO_EVENTS, FOCO_SMS and FOCO_RECEIPTS if they do not exist. File
/// storage; `replicas` is 1 on a single server and 3 in production.
pub async fn ensure_streams(
    jetstream: &jetstream::Context,
    names: &BusNames,
    replicas: usize,
    duplicate_window: Duration,
) -> Result<(), TopologyError> {
    let streams = [
        (
            names.events_stream(),
            names.events_filter(),
            "webhook events accepted by ingress",
        ),
        (
            names.sms_stream(),
            names.sms_filter(),
            "SMS jobs produced by rules",
        ),
        (
            names.receipts_stream(),
            names.receipts_filter(),
            "delivery receipts and inbound SMS from providers",
        ),
    ];
    for (name, subject, description) in streams {
        let config = stream::Config {
            name: name.clone(),
            description: Some(description.to_owned()),
            subjects: vec![subject],
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window,
            retention: stream::RetentionPolicy::Limits,
            max_age: Duration::from_secs(7 * 24 * 3600),
            ..Default::default()
        };
        jetstream
            .get_or_create_stream(config)
            .await
            .map_err(|source| TopologyError::Stream {
                stream: name,
                source,
            })?;
    }
    Ok(())
}

/// Settings of a durable pull consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub stream: String,
    pub durable_name: String,
    pub filter_subject: String,
    /// Longer than the slowest handling of one message, or it is redelivered while
    /// still in flight.
    pub ack_wait: Duration,
    /// Bounds in-flight work across all replicas of the consuming service.
    pub max_ack_pending: i64,
    /// Deliveries before JetStream gives up on a message; handlers record and
    /// terminate poison messages well before this.
    pub max_deliver: i64,
}

pub async fn ensure_consumer(
    jetstream: &jetstream::Context,
    settings: &ConsumerSettings,
) -> Result<consumer::PullConsumer, TopologyError> {
    let stream = jetstream
        .get_stream(&settings.stream)
        .await
        .map_err(|source| TopologyError::GetStream {
            stream: settings.stream.clone(),
            source,
        })?;
    let config = consumer::pull::Config {
        durable_name: Some(settings.durable_name.clone()),
        filter_subject: settings.filter_subject.clone(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        max_ack_pending: settings.max_ack_pending,
        max_deliver: settings.max_deliver,
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    stream
        .get_or_create_consumer(&settings.durable_name, config)
        .await
        .map_err(|source| TopologyError::Consumer {
            stream: settings.stream.clone(),
            consumer: settings.durable_name.clone(),
            source,
        })
}
