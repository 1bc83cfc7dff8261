//! The status feed: what a `foco.v1.StatusChange` is called on the bus, how
//! changes are published and how a reader decodes them.
//!
//! Publishers call [`StatusFeed::publish`] only once the change is committed in
//! Postgres, and before they acknowledge the work that caused it: a crash in
//! between redelivers that work, which publishes the change again. Changes
//! published at about the same time go out together, one JetStream message per
//! account and kind (group commit, as the sender's claims): a change costs the
//! bus a fraction of a message under load, and goes out alone at once when it
//! is quiet. A change published again after a crash may land in another batch
//! than its first copy, so readers dedupe by the change's id where it matters
//! (status webhooks are stored by it).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use foco_proto::v1::{StatusChange, StatusChanges};
use foco_runtime::batch::{BatchSettings, Batcher, WriterGone};
use prost::Message as _;

use crate::{BusNames, MSG_ID_HEADER, PublishError, publish_with_headers};

/// Header of a feed message holding a `StatusChanges` batch; its value is the
/// number of changes. A message without it is one bare `StatusChange`.
pub const BATCH_HEADER: &str = "Foco-Status-Batch";

/// Most changes in one feed message, and most bytes of them: far below
/// NATS's 1 MiB default `max_payload`, even with large metadata.
const MAX_CHANGES_PER_MESSAGE: usize = 256;
const MAX_BYTES_PER_MESSAGE: usize = 256 * 1024;
/// Changes one publisher holds for its flushes; its callers wait beyond that.
const MAX_PENDING_CHANGES: usize = 1024;
/// Feed messages in flight per publisher.
const FLUSHES_IN_FLIGHT: usize = 4;
/// How long a lingering publisher's feed message waits for more changes
/// ([`StatusFeed::lingering`]): at 1,000 changes a second, a message per five
/// changes instead of one each.
pub const LINGER: Duration = Duration::from_millis(5);

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

/// Why a change did not reach the feed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StatusFeedError {
    #[error("publishing to the status feed failed")]
    Publish(#[source] Arc<PublishError>),
    #[error("the status feed's publisher stopped")]
    Stopped,
}

impl From<WriterGone> for StatusFeedError {
    fn from(_: WriterGone) -> Self {
        Self::Stopped
    }
}

/// Publishes status changes on FOCO_STATUS. Clones share one publisher.
#[derive(Clone)]
pub struct StatusFeed {
    inner: Arc<FeedInner>,
}

struct FeedInner {
    jetstream: jetstream::Context,
    client: async_nats::Client,
    names: BusNames,
    ack_timeout: Duration,
    /// How long a feed message waits for more changes (see [`StatusFeed::lingering`]).
    linger: Duration,
    /// Started on the first publish, inside the caller's runtime.
    batcher: OnceLock<Batcher<StatusChange, (), StatusFeedError>>,
}

impl StatusFeed {
    /// A publisher whose changes go out as soon as no feed message is in
    /// flight: for callers a person waits on (an API call).
    pub fn new(client: async_nats::Client, names: BusNames, ack_timeout: Duration) -> Self {
        Self::lingering(client, names, ack_timeout, Duration::ZERO)
    }

    /// A publisher whose feed messages wait up to `linger` after their first
    /// change for more: for changes published after the work they report is
    /// done (an SMS sent, a job scheduled), where a few milliseconds more
    /// before the feed has them spare the bus and every reader a message per
    /// change at moderate rates.
    pub fn lingering(
        client: async_nats::Client,
        names: BusNames,
        ack_timeout: Duration,
        linger: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(FeedInner {
                jetstream: jetstream::new(client.clone()),
                client,
                names,
                ack_timeout,
                linger,
                batcher: OnceLock::new(),
            }),
        }
    }

    /// Stores one change; answers once JetStream acknowledged the message
    /// that carries it.
    pub async fn publish(&self, change: StatusChange) -> Result<(), StatusFeedError> {
        let batcher = self.inner.batcher.get_or_init(|| {
            let inner = self.inner.clone();
            Batcher::spawn(
                BatchSettings {
                    max_batch: MAX_PENDING_CHANGES,
                    flushes_in_flight: FLUSHES_IN_FLIGHT,
                    linger: inner.linger,
                },
                |_| {},
                move |changes| {
                    let inner = inner.clone();
                    async move { inner.flush(changes).await }
                },
            )
        });
        batcher.submit(change).await
    }
}

impl FeedInner {
    /// Publishes waiting changes, one message per account, kind and size
    /// limit, all at once; answers each change with its message's result.
    async fn flush(&self, changes: Vec<StatusChange>) -> Vec<Result<(), StatusFeedError>> {
        let count = changes.len();
        let mut results: Vec<Option<Result<(), StatusFeedError>>> = vec![None; count];
        let publishes =
            futures::future::join_all(group(changes).into_iter().map(
                |(indexes, changes)| async move { (indexes, self.publish_group(changes).await) },
            ))
            .await;
        for (indexes, result) in publishes {
            for index in indexes {
                results[index] = Some(result.clone());
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or(Err(StatusFeedError::Stopped)))
            .collect()
    }

    async fn publish_group(&self, mut changes: Vec<StatusChange>) -> Result<(), StatusFeedError> {
        let Some(first) = changes.first() else {
            return Ok(());
        };
        let subject = self.names.status_subject(&first.account_id, &first.kind);
        let mut headers = HeaderMap::new();
        let payload = if changes.len() == 1 {
            let change = changes.remove(0);
            headers.insert(MSG_ID_HEADER, change.id.as_str());
            change.encode_to_vec()
        } else {
            let ids: Vec<&str> = changes.iter().map(|change| change.id.as_str()).collect();
            headers.insert(MSG_ID_HEADER, crate::ids::status_batch_id(&ids).as_str());
            headers.insert(BATCH_HEADER, changes.len().to_string().as_str());
            StatusChanges { changes }.encode_to_vec()
        };
        publish_with_headers(
            &self.jetstream,
            &self.client,
            subject,
            headers,
            payload.into(),
            self.ack_timeout,
        )
        .await
        .map(|_| ())
        .map_err(|error| StatusFeedError::Publish(Arc::new(error)))
    }
}

/// Changes grouped by account and kind (in the order each group first
/// appears, each group in its changes' order), split where a message would
/// grow past its limits; with each change's index in the input.
fn group(changes: Vec<StatusChange>) -> Vec<(Vec<usize>, Vec<StatusChange>)> {
    // First where each change goes, keyed by borrowed account and kind; then
    // the changes move there.
    let mut places = Vec::with_capacity(changes.len());
    // Per group: its changes and bytes so far.
    let mut sizes: Vec<(usize, usize)> = Vec::new();
    let mut open: HashMap<(&str, &str), usize> = HashMap::new();
    for change in &changes {
        let size = change.encoded_len();
        let key = (change.account_id.as_str(), change.kind.as_str());
        let at = match open.get(&key) {
            Some(&at)
                if sizes[at].0 < MAX_CHANGES_PER_MESSAGE
                    && sizes[at].1 + size <= MAX_BYTES_PER_MESSAGE =>
            {
                at
            }
            _ => {
                sizes.push((0, 0));
                open.insert(key, sizes.len() - 1);
                sizes.len() - 1
            }
        };
        sizes[at].0 += 1;
        sizes[at].1 += size;
        places.push(at);
    }
    let mut groups: Vec<(Vec<usize>, Vec<StatusChange>)> = sizes
        .iter()
        .map(|&(count, _)| (Vec::with_capacity(count), Vec::with_capacity(count)))
        .collect();
    for (index, (change, at)) in changes.into_iter().zip(places).enumerate() {
        groups[at].0.push(index);
        groups[at].1.push(change);
    }
    groups
}

/// The changes one feed message carries: a batch (with [`BATCH_HEADER`]) or
/// one bare change.
pub fn decode(
    headers: Option<&HeaderMap>,
    payload: &bytes::Bytes,
) -> Result<Vec<StatusChange>, prost::DecodeError> {
    if headers.is_some_and(|headers| headers.get(BATCH_HEADER).is_some()) {
        Ok(StatusChanges::decode(payload.clone())?.changes)
    } else {
        Ok(vec![StatusChange::decode(payload.clone())?])
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
    fn changes_are_grouped_by_account_and_kind_in_order() {
        let changes = vec![
            status_change("a1", "job_1", kind::SENT),
            status_change("a2", "job_2", kind::SENT),
            status_change("a1", "job_3", kind::SENT),
            status_change("a1", "job_1", kind::DELIVERED),
        ];
        let groups = group(changes);
        let shape: Vec<(Vec<usize>, Vec<&str>)> = groups
            .iter()
            .map(|(indexes, members)| {
                (
                    indexes.clone(),
                    members
                        .iter()
                        .map(|change| change.message_id.as_str())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (vec![0, 2], vec!["job_1", "job_3"]),
                (vec![1], vec!["job_2"]),
                (vec![3], vec!["job_1"]),
            ]
        );
    }

    #[test]
    fn a_group_is_split_at_its_limits() {
        let many = (0..MAX_CHANGES_PER_MESSAGE + 1)
            .map(|n| status_change("a1", &format!("job_{n}"), kind::SENT))
            .collect();
        let sizes: Vec<usize> = group(many)
            .iter()
            .map(|(indexes, _)| indexes.len())
            .collect();
        assert_eq!(sizes, vec![MAX_CHANGES_PER_MESSAGE, 1]);

        let mut large = status_change("a1", "job_big", kind::SENT);
        large.reason = "x".repeat(MAX_BYTES_PER_MESSAGE / 2);
        let sizes: Vec<usize> = group(vec![large.clone(), large.clone(), large])
            .iter()
            .map(|(indexes, _)| indexes.len())
            .collect();
        assert_eq!(sizes, vec![1, 1, 1]);
    }

    #[test]
    fn a_batch_and_a_bare_change_decode_alike() {
        let one = status_change("a1", "job_1", kind::SENT);
        let two = status_change("a1", "job_2", kind::SENT);
        let bare = bytes::Bytes::from(one.encode_to_vec());
        assert_eq!(decode(None, &bare).unwrap(), vec![one.clone()]);
        let batch = bytes::Bytes::from(
            StatusChanges {
                changes: vec![one.clone(), two.clone()],
            }
            .encode_to_vec(),
        );
        let mut headers = HeaderMap::new();
        headers.insert(BATCH_HEADER, "2");
        assert_eq!(decode(Some(&headers), &batch).unwrap(), vec![one, two]);
    }

    #[test]
    fn a_change_is_named_by_account_message_and_kind() {
        let first = status_change("a1", "job_1", kind::SENT);
        let again = status_change("a1", "job_1", kind::SENT);
        assert_eq!(first.id, again.id);
        assert_ne!(first.id, status_change("a1", "job_1", kind::DELIVERED).id);
    }
}
