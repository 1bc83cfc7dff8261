//! How far a durable consumer is behind its stream, as Prometheus gauges: what
//! operators scale rules and senders on, and what shows an overloaded stage.
//!
//! A background task asks JetStream every `interval` (one consumer-info request,
//! and one direct read of the oldest unacknowledged message when there is one),
//! independent of how often or by how many scrapers the metrics are read.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use async_nats::jetstream;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub stream: String,
    pub consumer: String,
}

/// The gauges, labelled by stream and consumer.
#[derive(Clone, Default)]
pub struct ConsumerLag {
    /// Stored, not yet delivered to any replica.
    pending: Family<ConsumerLabels, Gauge>,
    /// Delivered, not yet acknowledged (in flight or awaiting redelivery).
    ack_pending: Family<ConsumerLabels, Gauge>,
    /// Delivered more than once.
    redelivered: Family<ConsumerLabels, Gauge>,
    /// Age of the oldest message not yet acknowledged; 0 when there is none.
    oldest_unacked_age: Family<ConsumerLabels, Gauge<f64, AtomicU64>>,
}

impl ConsumerLag {
    /// Registers the gauges under `consumer_*` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let lag = Self::default();
        registry.register(
            "consumer_pending_messages",
            "Messages stored on the stream and not yet delivered to this consumer",
            lag.pending.clone(),
        );
        registry.register(
            "consumer_ack_pending_messages",
            "Messages delivered to this consumer and not yet acknowledged",
            lag.ack_pending.clone(),
        );
        registry.register(
            "consumer_redelivered_messages",
            "Unacknowledged messages that were delivered more than once",
            lag.redelivered.clone(),
        );
        registry.register(
            "consumer_oldest_unacked_age_seconds",
            "Age of the oldest message this consumer has not acknowledged (0 when none)",
            lag.oldest_unacked_age.clone(),
        );
        lag
    }

    /// Reads the consumer's state every `interval` until `shutdown`.
    pub fn watch(
        &self,
        stream: jetstream::stream::Stream,
        consumer: jetstream::consumer::PullConsumer,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let lag = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = lag.observe(&stream, &consumer).await {
                    tracing::debug!(error = %error, "could not read consumer lag");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
            }
        })
    }

    /// One reading.
    pub async fn observe(
        &self,
        stream: &jetstream::stream::Stream,
        consumer: &jetstream::consumer::PullConsumer,
    ) -> Result<(), jetstream::context::ConsumerInfoError> {
        let info = consumer.get_info().await?;
        let labels = ConsumerLabels {
            stream: info.stream_name.clone(),
            consumer: info.name.clone(),
        };
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.pending
            .get_or_create(&labels)
            .set(gauge(info.num_pending));
        self.ack_pending
            .get_or_create(&labels)
            .set(gauge(info.num_ack_pending as u64));
        self.redelivered
            .get_or_create(&labels)
            .set(gauge(info.num_redelivered as u64));
        let age = oldest_unacked_age(stream, &info).await;
        self.oldest_unacked_age.get_or_create(&labels).set(age);
        Ok(())
    }
}

/// Seconds since the oldest message the consumer has not acknowledged was
/// stored; 0 when there is none (or it could not be read: the next reading
/// tries again).
async fn oldest_unacked_age(
    stream: &jetstream::stream::Stream,
    info: &jetstream::consumer::Info,
) -> f64 {
    let Ok(Some(message)) = oldest_unacked(stream, info).await else {
        return 0.0;
    };
    let stored = message.time.unix_timestamp_nanos() as f64 / 1e9;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(stored);
    (now - stored).max(0.0)
}

/// The oldest message of the consumer's subjects that it has not acknowledged,
/// as of `info`; `None` when there is none (any more).
///
/// That is the first message of its filter subject at or after the ack floor
/// plus one, not the message at that sequence: on a work-queue stream a
/// message acknowledged between the consumer-info request and this read is
/// removed at once, and the sequences after the floor may hold other subjects.
pub async fn oldest_unacked(
    stream: &jetstream::stream::Stream,
    info: &jetstream::consumer::Info,
) -> Result<Option<jetstream::message::StreamMessage>, jetstream::stream::RawMessageError> {
    if info.num_pending == 0 && info.num_ack_pending == 0 {
        return Ok(None);
    }
    let filter = match info.config.filter_subject.as_str() {
        "" => ">",
        filter => filter,
    };
    match stream
        .get_first_raw_message_by_subject(filter, info.ack_floor.stream_sequence + 1)
        .await
    {
        Ok(message) => Ok(Some(message)),
        Err(error) if error.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}
