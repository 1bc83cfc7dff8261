//! Durable publishing: a publish succeeds only once JetStream has stored the message
//! (or recognised it as a duplicate of one it stored).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;

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
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, msg_id);
    crate::trace::inject_current(&mut headers);
    publish_with_headers(jetstream, client, subject, headers, payload, ack_timeout).await
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
    if client.connection_state() != async_nats::connection::State::Connected {
        return Err(PublishError::Disconnected);
    }
    let publish = PublishMessage::build().payload(payload).headers(headers);
    let attempt = async {
        let ack_future =
            jetstream
                .send_publish(subject, publish)
                .await
                .map_err(|error| match error.kind() {
                    PublishErrorKind::MaxPayloadExceeded => PublishError::TooLarge {
                        max_payload: client.max_payload(),
                    },
                    _ => refused(error),
                })?;
        ack_future.await.map_err(refused)
    };
    let ack = tokio::time::timeout(ack_timeout, attempt)
        .await
        .map_err(|_| PublishError::AckTimeout(ack_timeout))??;
    Ok(Published {
        stream_sequence: ack.sequence,
        duplicate: ack.duplicate,
    })
}
