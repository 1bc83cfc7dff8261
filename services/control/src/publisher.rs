//! Control's durable publishes on the bus: requeued jobs (FOCO_SMS), jobs sent
//! through the messaging API (FOCO_SMS) and triggered events (FOCO_EVENTS). Each
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
}

impl Publisher {
    pub fn new(nats: async_nats::Client, names: BusNames) -> Self {
        Self {
            jetstream: async_nats::jetstream::new(nats.clone()),
            nats,
            names,
        }
    }

    pub fn names(&self) -> &BusNames {
        &self.names
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
