//! The status feed: what a `foco.v1.StatusChange` is called on the bus, and how
//! one is published (durably, with its id as `Nats-Msg-Id`, so a change
//! published again after a crash is stored once).
//!
//! Publishers call [`StatusFeed::publish`] only once the change is committed in
//! Postgres, and before they acknowledge the work that caused it: a crash in
//! between redelivers that work, which publishes the change again.

use std::time::Duration;

use async_nats::jetstream;
use foco_proto::v1::StatusChange;
use prost::Message as _;

use crate::{BusNames, PublishError, Published, publish_durable};

/// The kinds of change, as the last subject token and `StatusChange.kind`.
pub mod kind {
    pub const SCHEDULED: &str = "scheduled";
    pub const SENT: &str = "sent";
    pub const DELIVERED: &str = "delivered";
    pub const FAILED: &str = "failed";
    pub const UNDELIVERED: &str = "undelivered";
    pub const EXPIRED: &str = "expired";
    pub const CANCELLED: &str = "cancelled";
    pub const OPTED_OUT: &str = "opted_out";
    pub const UNKNOWN: &str = "unknown";
    /// An SMS a customer sent to the account.
    pub const INBOUND: &str = "inbound";

    /// Every kind, in the order a message usually goes through them.
    pub const ALL: [&str; 10] = [
        SCHEDULED,
        SENT,
        DELIVERED,
        FAILED,
        UNDELIVERED,
        EXPIRED,
        CANCELLED,
        OPTED_OUT,
        UNKNOWN,
        INBOUND,
    ];

    /// The feed's kind for a `messages.status` value, for the statuses the
    /// feed carries (not queued or sending).
    pub fn of_message_status(status: &str) -> Option<&'static str> {
        Some(match status {
            "sent" => SENT,
            "delivered" => DELIVERED,
            "failed" => FAILED,
            "undelivered" => UNDELIVERED,
            "expired" => EXPIRED,
            "cancelled" => CANCELLED,
            "opted-out" => OPTED_OUT,
            "unknown" => UNKNOWN,
            _ => return None,
        })
    }
}

/// A `StatusChange` with its id and time filled in.
pub fn status_change(account_id: &str, message_id: &str, kind: &str) -> StatusChange {
    StatusChange {
        id: crate::status_change_id(account_id, message_id, kind),
        account_id: account_id.to_owned(),
        message_id: message_id.to_owned(),
        kind: kind.to_owned(),
        at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            }),
        ..Default::default()
    }
}

/// Publishes status changes on FOCO_STATUS.
#[derive(Clone)]
pub struct StatusFeed {
    jetstream: jetstream::Context,
    client: async_nats::Client,
    names: BusNames,
    ack_timeout: Duration,
}

impl StatusFeed {
    pub fn new(client: async_nats::Client, names: BusNames, ack_timeout: Duration) -> Self {
        Self {
            jetstream: jetstream::new(client.clone()),
            client,
            names,
            ack_timeout,
        }
    }

    /// Stores one change; answers once JetStream acknowledged it. Concurrent
    /// callers share the connection, so their publishes and acks overlap.
    pub async fn publish(&self, change: &StatusChange) -> Result<Published, PublishError> {
        let subject = self.names.status_subject(&change.account_id, &change.kind);
        publish_durable(
            &self.jetstream,
            &self.client,
            subject,
            &change.id,
            change.encode_to_vec().into(),
            self.ack_timeout,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_statuses_map_to_feed_kinds() {
        assert_eq!(kind::of_message_status("opted-out"), Some(kind::OPTED_OUT));
        assert_eq!(kind::of_message_status("sent"), Some(kind::SENT));
        assert_eq!(kind::of_message_status("sending"), None);
        assert_eq!(kind::of_message_status("queued"), None);
    }

    #[test]
    fn a_change_is_named_by_account_message_and_kind() {
        let first = status_change("a1", "job_1", kind::SENT);
        let again = status_change("a1", "job_1", kind::SENT);
        assert_eq!(first.id, again.id);
        assert_ne!(first.id, status_change("a1", "job_1", kind::DELIVERED).id);
    }
}
