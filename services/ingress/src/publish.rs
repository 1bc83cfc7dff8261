//! The event envelope's headers and its durable publish: the envelope (encoded by
//! `foco_bus`, its owner) is built from what the handler learnt, and the answer to
//! the sender waits for JetStream's ack.

use std::time::Instant;

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderName, header};
use bytes::Bytes;
use foco_bus::{EventParts, PublishError, Published, encode_envelope};

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
/// Borrowed whenever a header has one value that is valid UTF-8 (nearly always).
pub fn envelope_headers<'a>(
    headers: &'a HeaderMap,
    signature_headers: &[HeaderName],
) -> Vec<(&'a str, Cow<'a, str>)> {
    let mut selected = Vec::with_capacity(headers.keys_len());
    for name in headers.keys() {
        if ALWAYS_DROPPED.contains(name) || signature_headers.contains(name) {
            continue;
        }
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else {
            continue;
        };
        let mut joined = String::from_utf8_lossy(first.as_bytes());
        for value in values {
            let joined = joined.to_mut();
            joined.push_str(", ");
            joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
        selected.push((name.as_str(), joined));
    }
    selected
}

/// Publishes the encoded envelope to `foco.events.<account>.<source>` with
/// `Nats-Msg-Id` = event id and waits for the ack (bounded by the configured
/// publish timeout).
pub async fn publish_event(
    state: &AppState,
    parts: &EventParts<'_>,
) -> Result<Published, IngressError> {
    let subject = state
        .names
        .events_subject(parts.account_id, parts.source_id);
    publish(state, subject, parts.event_id, encode_envelope(parts)).await
}

/// Publishes `payload` on `subject` with `Nats-Msg-Id` = `message_id` and waits
/// for JetStream's ack; refused at once while disconnected, and as too large
/// (413, not 503) when it exceeds the server's `max_payload`.
pub async fn publish(
    state: &AppState,
    subject: String,
    message_id: &str,
    payload: Bytes,
) -> Result<Published, IngressError> {
    let started = Instant::now();
    let result = state
        .publisher
        .publish_durable(subject, message_id, payload, state.config.publish_timeout)
        .await;
    match result {
        Ok(published) => {
            state.metrics.observe_publish(started.elapsed(), true);
            Ok(published)
        }
        // Refused by the client before anything was sent: the sender's request is
        // too large, and retrying it would be refused the same way.
        Err(PublishError::TooLarge { max_payload }) => {
            Err(IngressError::EventTooLarge { max_payload })
        }
        Err(error) => {
            state.metrics.observe_publish(started.elapsed(), false);
            Err(IngressError::PublishFailed(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn as_map(selected: &[(&str, Cow<'_, str>)]) -> HashMap<String, String> {
        selected
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.to_string()))
            .collect()
    }

    #[test]
    fn envelope_headers_drop_credentials_and_signatures() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Shopify-Topic", "orders/create".parse().unwrap());
        headers.insert("x-shopify-hmac-sha256", "c2ln".parse().unwrap());
        headers.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        headers.insert(header::COOKIE, "a=b".parse().unwrap());
        headers.append("x-multi", "1".parse().unwrap());
        headers.append("x-multi", "2".parse().unwrap());
        headers.insert(
            "x-latin1",
            axum::http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        let selected = as_map(&envelope_headers(
            &headers,
            &[HeaderName::from_static("x-shopify-hmac-sha256")],
        ));
        assert_eq!(
            selected.get("x-shopify-topic").map(String::as_str),
            Some("orders/create")
        );
        assert_eq!(selected.get("x-multi").map(String::as_str), Some("1, 2"));
        assert_eq!(
            selected.get("x-latin1").map(String::as_str),
            Some("caf\u{fffd}")
        );
        assert!(!selected.contains_key("x-shopify-hmac-sha256"));
        assert!(!selected.contains_key("authorization"));
        assert!(!selected.contains_key("cookie"));
    }
}
