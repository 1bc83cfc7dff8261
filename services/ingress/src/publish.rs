//! The event envelope and its durable publish: the envelope is built from what the
//! handler learnt, and the answer to the sender waits for JetStream's ack.

use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, header};
use bytes::Bytes;
use foco_bus::Published;
use foco_proto::v1::EventEnvelope;
use prost::Message as _;

use crate::error::IngressError;
use crate::state::AppState;

/// Headers never copied into an envelope: credentials, whatever the source's scheme
/// signs with, and hop-by-hop noise.
const ALWAYS_DROPPED: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::CONNECTION,
];

/// Request headers for the envelope: lower-cased names (as `HeaderMap` keeps them),
/// repeated headers joined with ", ", values that are not text decoded lossily.
pub fn envelope_headers(
    headers: &HeaderMap,
    signature_headers: &[HeaderName],
) -> std::collections::HashMap<String, String> {
    let mut selected = std::collections::HashMap::new();
    for name in headers.keys() {
        if ALWAYS_DROPPED.contains(name) || signature_headers.contains(name) {
            continue;
        }
        let joined = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        selected.insert(name.as_str().to_owned(), joined);
    }
    selected
}

/// Everything the envelope carries, gathered by the handler.
pub struct EventParts {
    pub event_id: String,
    pub account_id: String,
    pub source_id: String,
    pub event_type: String,
    pub external_id: String,
    pub received_at_ms: i64,
    pub headers: std::collections::HashMap<String, String>,
    pub payload: Bytes,
}

pub fn build_envelope(parts: EventParts) -> EventEnvelope {
    EventEnvelope {
        event_id: parts.event_id,
        account_id: parts.account_id,
        source_id: parts.source_id,
        event_type: parts.event_type,
        external_id: parts.external_id,
        received_at_ms: parts.received_at_ms,
        // The payload is always JSON once normalised; the original content type
        // stays in `headers`.
        content_type: "application/json".to_owned(),
        headers: parts.headers,
        payload: parts.payload.to_vec(),
    }
}

/// Publishes to `foco.events.<account>.<source>` with `Nats-Msg-Id` = event id and
/// waits for the ack (bounded by the configured publish timeout).
pub async fn publish_event(
    state: &AppState,
    envelope: &EventEnvelope,
) -> Result<Published, IngressError> {
    let subject = state
        .names
        .events_subject(&envelope.account_id, &envelope.source_id);
    publish(
        state,
        subject,
        &envelope.event_id,
        Bytes::from(envelope.encode_to_vec()),
    )
    .await
}

/// Publishes `payload` on `subject` with `Nats-Msg-Id` = `message_id` and waits
/// for JetStream's ack; refused at once while disconnected.
pub async fn publish(
    state: &AppState,
    subject: String,
    message_id: &str,
    payload: Bytes,
) -> Result<Published, IngressError> {
    let started = Instant::now();
    let result = foco_bus::publish_durable(
        &state.jetstream,
        &state.nats,
        subject,
        message_id,
        payload,
        state.config.publish_timeout,
    )
    .await;
    state
        .metrics
        .observe_publish(started.elapsed(), result.is_ok());
    result.map_err(IngressError::PublishFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_headers_drop_credentials_and_signatures() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Shopify-Topic", "orders/create".parse().unwrap());
        headers.insert("x-shopify-hmac-sha256", "c2ln".parse().unwrap());
        headers.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        headers.insert(header::COOKIE, "a=b".parse().unwrap());
        headers.append("x-multi", "1".parse().unwrap());
        headers.append("x-multi", "2".parse().unwrap());
        let selected = envelope_headers(
            &headers,
            &[HeaderName::from_static("x-shopify-hmac-sha256")],
        );
        assert_eq!(
            selected.get("x-shopify-topic").map(String::as_str),
            Some("orders/create")
        );
        assert_eq!(selected.get("x-multi").map(String::as_str), Some("1, 2"));
        assert!(!selected.contains_key("x-shopify-hmac-sha256"));
        assert!(!selected.contains_key("authorization"));
        assert!(!selected.contains_key("cookie"));
    }
}
