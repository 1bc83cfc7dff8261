//! Durable publishing: a publish succeeds only once JetStream has stored the message
//! (or recognised it as a duplicate of one it stored).

use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::MSG_ID_HEADER;

/// What JetStream answered for a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub stream_sequence: u64,
    /// JetStream already held a message with this id inside its duplicate window.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("not connected to NATS")]
    Disconnected,
    #[error("JetStream did not acknowledge the publish within {0:?}")]
    AckTimeout(Duration),
    /// The stream holds its `max_bytes` of unprocessed messages: new ones are
    /// refused until the backlog shrinks.
    #[error("the stream is full")]
    StreamFull,
    /// The message with its headers is larger than the server's `max_payload`:
    /// sending it again cannot succeed.
    #[error("the message is larger than the server's max_payload of {max_payload} bytes")]
    TooLarge { max_payload: usize },
    /// The [`Publisher`]'s task is gone (it panicked): nothing is published.
    #[error("the publisher has stopped")]
    PublisherStopped,
    #[error("JetStream refused the publish")]
    Refused(#[source] async_nats::jetstream::context::PublishError),
}

/// JetStream's error codes for a store that refuses new messages: 10077, the
/// stream could not store it ("maximum bytes exceeded" with discard-new), and
/// 10047, the server's JetStream resources are exhausted.
const STREAM_FULL_CODES: [u64; 2] = [10_047, 10_077];

fn refused(error: async_nats::jetstream::context::PublishError) -> PublishError {
    let full = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>())
        .is_some_and(|jetstream| STREAM_FULL_CODES.contains(&jetstream.error_code().0));
    if full {
        PublishError::StreamFull
    } else {
        PublishError::Refused(error)
    }
}

/// Publishes `payload` on `subject` with `Nats-Msg-Id: msg_id` and the current trace
/// context, and waits for JetStream's acknowledgement.
///
/// Refuses at once when the client is not connected: a publish buffered in the
/// client while disconnected would be answered with an error now and stored later,
/// which callers could not tell apart from loss.
pub async fn publish_durable(
    jetstream: &jetstream::Context,
    client: &async_nats::Client,
    subject: String,
    msg_id: &str,
    payload: Bytes,
    ack_timeout: Duration,
) -> Result<Published, PublishError> {
    let headers = durable_headers(msg_id);
    publish_with_headers(jetstream, client, subject, headers, payload, ack_timeout).await
}

/// `Nats-Msg-Id: msg_id` and the current trace context.
fn durable_headers(msg_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, msg_id);
    crate::trace::inject_current(&mut headers);
    headers
}

/// [`publish_durable`] with the caller's headers, which name the message's
/// `Nats-Msg-Id`.
pub async fn publish_with_headers(
    jetstream: &jetstream::Context,
    client: &async_nats::Client,
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
    ack_timeout: Duration,
) -> Result<Published, PublishError> {
    let publish = PublishMessage::build().payload(payload).headers(headers);
    durably(
        client,
        ack_timeout,
        send(jetstream, client, subject, publish),
    )
    .await
}

/// What both ways of publishing share: refused at once while the client is
/// disconnected (a publish buffered meanwhile would be answered with an error
/// now and stored later), and `handed_over` (the message given to the client)
/// and JetStream's ack together bounded by `ack_timeout`.
async fn durably(
    client: &async_nats::Client,
    ack_timeout: Duration,
    handed_over: impl Future<Output = Result<PublishAckFuture, PublishError>>,
) -> Result<Published, PublishError> {
    if client.connection_state() != async_nats::connection::State::Connected {
        return Err(PublishError::Disconnected);
    }
    let attempt = async { handed_over.await?.await.map_err(refused) };
    let ack = tokio::time::timeout(ack_timeout, attempt)
        .await
        .map_err(|_| PublishError::AckTimeout(ack_timeout))??;
    Ok(Published {
        stream_sequence: ack.sequence,
        duplicate: ack.duplicate,
    })
}

/// Hands `publish` to the client, which queues it for its connection.
async fn send(
    jetstream: &jetstream::Context,
    client: &async_nats::Client,
    subject: String,
    publish: PublishMessage,
) -> Result<PublishAckFuture, PublishError> {
    jetstream
        .send_publish(subject, publish)
        .await
        .map_err(|error| match error.kind() {
            PublishErrorKind::MaxPayloadExceeded => PublishError::TooLarge {
                max_payload: client.max_payload(),
            },
            _ => refused(error),
        })
}

/// A publish waiting for the [`Publisher`]'s task, and where its ack future goes.
struct Queued {
    subject: String,
    publish: PublishMessage,
    answer: oneshot::Sender<Result<PublishAckFuture, PublishError>>,
}

/// Durable publishing for a hot path where many tasks publish at once
/// (ingress's events, one per webhook, from requests handled at the same
/// moment; rules' jobs, one per event, after a batch of events committed
/// together): the
/// tasks hand their messages to one task, which lets the tasks woken with it
/// run first and then gives the client what they handed over back to back, so
/// that the client's connection writes them in one go rather than one write
/// per task. Each caller still waits for its own message's acknowledgement,
/// with the same answers as [`publish_durable`].
#[derive(Clone)]
pub struct Publisher {
    client: async_nats::Client,
    queue: mpsc::UnboundedSender<Queued>,
}

impl Publisher {
    /// Starts the publisher's task on the current runtime; it ends when the
    /// last clone of the publisher is dropped.
    pub fn start(jetstream: jetstream::Context, client: async_nats::Client) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        tokio::spawn(hand_over(queued, jetstream, client.clone()));
        Self { client, queue }
    }

    /// [`publish_durable`], sent together with the publishes of other tasks.
    pub async fn publish_durable(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
        ack_timeout: Duration,
    ) -> Result<Published, PublishError> {
        let publish = PublishMessage::build()
            .payload(payload)
            .headers(durable_headers(msg_id));
        let handed_over = async {
            let (answer, answered) = oneshot::channel();
            self.queue
                .send(Queued {
                    subject,
                    publish,
                    answer,
                })
                .map_err(|_| PublishError::PublisherStopped)?;
            answered.await.map_err(|_| PublishError::PublisherStopped)?
        };
        durably(&self.client, ack_timeout, handed_over).await
    }
}

/// The publisher's task: what the callers woken together handed over, given to
/// the client back to back.
async fn hand_over(
    mut queued: mpsc::UnboundedReceiver<Queued>,
    jetstream: jetstream::Context,
    client: async_nats::Client,
) {
    let mut batch = Vec::with_capacity(crate::together::AT_ONCE);
    while crate::together::take(&mut queued, &mut batch).await {
        for Queued {
            subject,
            publish,
            answer,
        } in batch.drain(..)
        {
            // A caller that gave up (its timeout) no longer listens; its
            // message may still be stored, as with a direct publish.
            if answer.is_closed() {
                continue;
            }
            let _ = answer.send(send(&jetstream, &client, subject, publish).await);
        }
    }
}
