//! Control's durable publishes on the bus: requeued jobs (FOCO_SMS), jobs sent
//! through the messaging API (FOCO_SMS), triggered events (FOCO_EVENTS) and
//! the status changes control decides (FOCO_STATUS: messages scheduled or
//! cancelled through the API). Each
//! answers only once JetStream stored the message, through the bus crate's one
//! publish path (`Nats-Msg-Id`, trace context, refused at once while
//! disconnected).

use std::time::Duration;

use bytes::Bytes;
use foco_bus::{BusNames, PublishError, Published};

/// How long a publish waits for JetStream's ack before the call is answered
/// `UNAVAILABLE`.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Publisher {
    nats: async_nats::Client,
    jetstream: async_nats::jetstream::Context,
    names: BusNames,
    status_feed: foco_bus::StatusFeed,
}

impl Publisher {
    pub fn new(nats: async_nats::Client, names: BusNames) -> Self {
        Self {
            status_feed: foco_bus::StatusFeed::new(nats.clone(), names.clone(), PUBLISH_TIMEOUT),
            jetstream: async_nats::jetstream::new(nats.clone()),
            nats,
            names,
        }
    }

    pub fn names(&self) -> &BusNames {
        &self.names
    }

    /// Publishes committed status changes concurrently; one JetStream does not
    /// take is logged (the change is in Postgres; the feed misses it).
    pub async fn publish_status_changes(&self, changes: &[foco_proto::v1::StatusChange]) {
        if changes.is_empty() {
            return;
        }
        let results = futures::future::join_all(
            changes
                .iter()
                .map(|change| self.status_feed.publish(change.clone())),
        )
        .await;
        for (change, result) in changes.iter().zip(results) {
            if let Err(error) = result {
                tracing::warn!(job_id = %change.message_id, kind = %change.kind, error = %error, "status change not published");
            }
        }
    }

    pub fn jetstream(&self) -> &async_nats::jetstream::Context {
        &self.jetstream
    }

    /// Publishes `payload` on `subject` with `msg_id` as its `Nats-Msg-Id` and
    /// waits for the ack.
    pub async fn publish(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
    ) -> Result<Published, PublishError> {
        foco_bus::publish_durable(
            &self.jetstream,
            &self.nats,
            subject,
            msg_id,
            payload,
            PUBLISH_TIMEOUT,
        )
        .await
    }
}
