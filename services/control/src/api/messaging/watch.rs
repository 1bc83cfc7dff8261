//! `WatchMessages`: an account's status feed (FOCO_STATUS) as a gRPC stream.
//!
//! Each call reads the feed through its own ordered consumer (ephemeral, no
//! acks) that starts after the caller's cursor, with the account and the
//! requested kinds as the consumer's subject filters, so JetStream skips what
//! the caller did not ask for. Message ids and the metadata key are checked
//! here. Updates go through a bounded channel: a slow reader fills it, the
//! reading task waits on it and stops pulling from JetStream, so memory stays
//! bounded and nothing is skipped.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use foco_bus::status::kind;
use foco_proto::v1::{MessageStatusUpdate, WatchMessagesRequest};
use futures::{Stream, StreamExt};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tonic::Status;

use super::super::accounts::AccountRow;
use crate::error::ApiError;
use crate::publisher::Publisher;

/// What the server streams back.
pub type UpdateStream = Pin<Box<dyn Stream<Item = Result<MessageStatusUpdate, Status>> + Send>>;

/// Updates waiting for a slow reader before the feed is no longer read.
const BUFFERED_UPDATES: usize = 64;
/// Most message ids one watch may name.
const MAX_MESSAGE_IDS: usize = 1_000;
/// Metadata remembered per watch, so a message's changes cost one lookup.
const METADATA_CACHE: usize = 4_096;

pub async fn watch(
    pool: PgPool,
    publisher: &Publisher,
    account: &AccountRow,
    request: WatchMessagesRequest,
) -> Result<UpdateStream, ApiError> {
    if request.message_ids.len() > MAX_MESSAGE_IDS {
        return Err(ApiError::invalid_field(
            "message_ids",
            format!("names more than {MAX_MESSAGE_IDS} messages"),
        ));
    }
    if let Some(unknown) = request
        .statuses
        .iter()
        .find(|status| !kind::ALL.contains(&status.as_str()))
    {
        return Err(ApiError::invalid_field(
            "statuses",
            format!("{unknown:?} is not one of {}", kind::ALL.join(", ")),
        ));
    }
    let account_id = account.id.to_string();
    let names = publisher.names();
    let mut filter_subjects: Vec<String> = request
        .statuses
        .iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|status| names.status_subject(&account_id, status))
        .collect();
    if filter_subjects.is_empty() {
        filter_subjects.push(names.status_account_filter(&account_id));
    }
    filter_subjects.sort();
    let resume = Cursor::decode(request.after_cursor);
    if resume.is_some_and(|after| after.sequence == 0) {
        return Err(ApiError::invalid_field(
            "after_cursor",
            "is not a cursor of this feed (pass an update's `cursor`)",
        ));
    }
    let deliver_policy = if let Some(after) = resume {
        DeliverPolicy::ByStartSequence {
            start_sequence: after.sequence,
        }
    } else if request.from_oldest {
        DeliverPolicy::All
    } else {
        DeliverPolicy::New
    };
    let stream = publisher
        .jetstream()
        .get_stream(names.status_stream())
        .await
        .map_err(|error| feed_unavailable("status stream not readable", &error))?;
    let ordered = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subjects,
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|error| feed_unavailable("status consumer not created", &error))?;
    let messages = ordered
        .messages()
        .await
        .map_err(|error| feed_unavailable("status consumer not read", &error))?;
    let filter = Filter {
        message_ids: request.message_ids.into_iter().collect(),
        metadata_key: request.metadata_key,
    };
    let (sender, receiver) = mpsc::channel(BUFFERED_UPDATES);
    tokio::spawn(forward(messages, filter, resume, pool, sender));
    Ok(Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|update| (update, receiver)) },
    )))
}

/// NATS could not give the feed now: logged here, answered UNAVAILABLE.
fn feed_unavailable(what: &str, error: &dyn std::fmt::Display) -> ApiError {
    tracing::warn!(error = %error, "{what}");
    ApiError::Unavailable("the status feed cannot be read now".to_owned())
}

/// Where a change is in the feed: the stream sequence of the message that
/// carries it and its place in that message's batch. Callers see it as one
/// opaque number, `sequence << INDEX_BITS | index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    sequence: u64,
    index: u64,
}

/// Bits of a cursor that number a change inside its message: room for far
/// more changes than a feed message carries.
const INDEX_BITS: u32 = 12;

impl Cursor {
    fn encode(self) -> u64 {
        (self.sequence << INDEX_BITS) | self.index
    }

    /// `None` for 0, "no cursor".
    fn decode(cursor: u64) -> Option<Self> {
        (cursor > 0).then_some(Self {
            sequence: cursor >> INDEX_BITS,
            index: cursor & ((1 << INDEX_BITS) - 1),
        })
    }
}

struct Filter {
    message_ids: HashSet<String>,
    metadata_key: String,
}

/// Reads the feed into `sender` until the caller goes away (the channel
/// closes) or the feed cannot be read.
async fn forward(
    mut messages: consumer::pull::Ordered,
    filter: Filter,
    resume: Option<Cursor>,
    pool: PgPool,
    sender: mpsc::Sender<Result<MessageStatusUpdate, Status>>,
) {
    let mut metadata_of: HashMap<String, HashMap<String, String>> = HashMap::new();
    loop {
        let next = tokio::select! {
            () = sender.closed() => return,
            next = messages.next() => next,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                tracing::warn!(error = %error, "reading the status feed failed; ending the watch");
                end_unavailable(&sender, "the status feed could not be read").await;
                return;
            }
            None => return,
        };
        let Ok(info) = message.info() else {
            continue;
        };
        let sequence = info.stream_sequence;
        let Ok(changes) = foco_bus::status::decode(message.headers.as_ref(), &message.payload)
        else {
            tracing::warn!(sequence, "undecodable status change skipped");
            continue;
        };
        for (index, change) in (0u64..).zip(changes) {
            let cursor = Cursor { sequence, index };
            // The message the caller resumes in: what it handled is not repeated.
            if resume.is_some_and(|after| after.sequence == sequence && index <= after.index) {
                continue;
            }
            if !filter.message_ids.is_empty() && !filter.message_ids.contains(&change.message_id) {
                continue;
            }
            // Receipts do not carry the metadata: read it for their changes.
            let metadata = if change.kind == kind::INBOUND || !change.metadata.is_empty() {
                change.metadata.clone()
            } else {
                match cached_metadata(&pool, &mut metadata_of, &change.message_id).await {
                    Ok(metadata) => metadata,
                    Err(error) => {
                        tracing::warn!(error = %error, "reading message metadata failed; ending the watch");
                        end_unavailable(&sender, "message metadata could not be read").await;
                        return;
                    }
                }
            };
            if !filter.metadata_key.is_empty() && !metadata.contains_key(&filter.metadata_key) {
                continue;
            }
            let update = MessageStatusUpdate {
                cursor: cursor.encode(),
                change: Some(change),
                metadata,
            };
            if sender.send(Ok(update)).await.is_err() {
                return;
            }
        }
    }
}

/// The last item of a watch that cannot go on: the caller resumes from the
/// last cursor it handled.
async fn end_unavailable(sender: &mpsc::Sender<Result<MessageStatusUpdate, Status>>, what: &str) {
    let _ = sender
        .send(Err(Status::unavailable(format!(
            "{what}; resume from the last cursor"
        ))))
        .await;
}

async fn cached_metadata(
    pool: &PgPool,
    cache: &mut HashMap<String, HashMap<String, String>>,
    message_id: &str,
) -> Result<HashMap<String, String>, sqlx::Error> {
    if let Some(metadata) = cache.get(message_id) {
        return Ok(metadata.clone());
    }
    let metadata = message_metadata(pool, message_id).await?;
    if cache.len() >= METADATA_CACHE {
        cache.clear();
    }
    cache.insert(message_id.to_owned(), metadata.clone());
    Ok(metadata)
}

/// The SendMessage metadata of a message; empty for a rule's.
pub async fn message_metadata(
    pool: &PgPool,
    message_id: &str,
) -> Result<HashMap<String, String>, sqlx::Error> {
    let stored: Option<sqlx::types::Json<HashMap<String, String>>> =
        sqlx::query_scalar("SELECT metadata FROM api_sends WHERE job_id = $1")
            .bind(message_id)
            .fetch_optional(pool)
            .await?;
    Ok(stored.map(|json| json.0).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_a_change_inside_its_message() {
        let cursor = Cursor {
            sequence: 41,
            index: 3,
        };
        assert_eq!(Cursor::decode(cursor.encode()), Some(cursor));
        let next = Cursor {
            sequence: 42,
            index: 0,
        };
        assert!(next.encode() > cursor.encode());
        assert_eq!(Cursor::decode(0), None);
    }
}
