//! The `EventEnvelope` on FOCO_EVENTS, encoded by its one owner: ingress
//! publishes webhooks with it, control publishes events triggered through its
//! API with it, the sender SMS an account received (to its inbound source), and
//! all are the same bytes for the same facts.

use std::borrow::Cow;

use bytes::Bytes;
use prost::encoding::{self, WireType};

/// Everything the envelope carries, gathered (and mostly borrowed) by the publisher.
pub struct EventParts<'a> {
    pub event_id: &'a str,
    pub account_id: &'a str,
    pub source_id: &'a str,
    pub event_type: &'a str,
    pub external_id: &'a str,
    pub received_at_ms: i64,
    pub headers: &'a [(&'a str, Cow<'a, str>)],
    pub payload: &'a [u8],
}

/// The event type of an SMS an account received, published by the sender to
/// the account's inbound source (rules: `event_type == "sms.inbound"`).
pub const INBOUND_SMS_EVENT_TYPE: &str = "sms.inbound";

/// The payload is always JSON once normalised; the original content type stays
/// in `headers`.
const ENVELOPE_CONTENT_TYPE: &str = "application/json";

/// The `EventEnvelope` message, encoded straight from the borrowed parts: the
/// same bytes prost writes for an `EventEnvelope` (fields in tag order, defaults
/// left out), but the body is copied once, into a buffer of the exact size,
/// instead of into the message and then again into its encoding, and no header
/// becomes an owned `String` in a `HashMap` first.
pub fn encode_envelope(parts: &EventParts<'_>) -> Bytes {
    let header_entries: usize = parts
        .headers
        .iter()
        .map(|(name, value)| length_delimited_len(8, map_entry_len(name, value)))
        .sum();
    let capacity = string_field_len(1, parts.event_id)
        + string_field_len(2, parts.account_id)
        + string_field_len(3, parts.source_id)
        + string_field_len(4, parts.event_type)
        + string_field_len(5, parts.external_id)
        + int64_field_len(6, parts.received_at_ms)
        + string_field_len(7, ENVELOPE_CONTENT_TYPE)
        + header_entries
        + bytes_field_len(9, parts.payload);
    let mut buffer = Vec::with_capacity(capacity);
    put_bytes_field(1, parts.event_id.as_bytes(), &mut buffer);
    put_bytes_field(2, parts.account_id.as_bytes(), &mut buffer);
    put_bytes_field(3, parts.source_id.as_bytes(), &mut buffer);
    put_bytes_field(4, parts.event_type.as_bytes(), &mut buffer);
    put_bytes_field(5, parts.external_id.as_bytes(), &mut buffer);
    if parts.received_at_ms != 0 {
        encoding::encode_key(6, WireType::Varint, &mut buffer);
        encoding::encode_varint(parts.received_at_ms as u64, &mut buffer);
    }
    put_bytes_field(7, ENVELOPE_CONTENT_TYPE.as_bytes(), &mut buffer);
    for (name, value) in parts.headers {
        // A map entry is a nested message {1: key, 2: value}, defaults left out.
        encoding::encode_key(8, WireType::LengthDelimited, &mut buffer);
        encoding::encode_varint(map_entry_len(name, value) as u64, &mut buffer);
        put_bytes_field(1, name.as_bytes(), &mut buffer);
        put_bytes_field(2, value.as_bytes(), &mut buffer);
    }
    put_bytes_field(9, parts.payload, &mut buffer);
    debug_assert_eq!(buffer.len(), capacity);
    Bytes::from(buffer)
}

fn map_entry_len(name: &str, value: &str) -> usize {
    string_field_len(1, name) + string_field_len(2, value)
}

fn length_delimited_len(tag: u32, len: usize) -> usize {
    encoding::key_len(tag) + encoding::encoded_len_varint(len as u64) + len
}

/// Length of a proto3 string or bytes field: nothing when empty (the default).
fn bytes_field_len(tag: u32, value: &[u8]) -> usize {
    if value.is_empty() {
        0
    } else {
        length_delimited_len(tag, value.len())
    }
}

fn string_field_len(tag: u32, value: &str) -> usize {
    bytes_field_len(tag, value.as_bytes())
}

fn int64_field_len(tag: u32, value: i64) -> usize {
    if value == 0 {
        0
    } else {
        encoding::key_len(tag) + encoding::encoded_len_varint(value as u64)
    }
}

fn put_bytes_field(tag: u32, value: &[u8], buffer: &mut Vec<u8>) {
    if value.is_empty() {
        return;
    }
    encoding::encode_key(tag, WireType::LengthDelimited, buffer);
    encoding::encode_varint(value.len() as u64, buffer);
    buffer.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use foco_proto::v1::EventEnvelope;
    use prost::Message as _;

    use super::*;

    fn as_map(selected: &[(&str, Cow<'_, str>)]) -> HashMap<String, String> {
        selected
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.to_string()))
            .collect()
    }

    fn parts<'a>(
        headers: &'a [(&'a str, Cow<'a, str>)],
        payload: &'a [u8],
        external_id: &'a str,
        received_at_ms: i64,
    ) -> EventParts<'a> {
        EventParts {
            event_id: "evt_0123",
            account_id: "acc_1",
            source_id: "src_1",
            event_type: "orders/create",
            external_id,
            received_at_ms,
            headers,
            payload,
        }
    }

    fn expected(parts: &EventParts<'_>) -> EventEnvelope {
        EventEnvelope {
            event_id: parts.event_id.to_owned(),
            account_id: parts.account_id.to_owned(),
            source_id: parts.source_id.to_owned(),
            event_type: parts.event_type.to_owned(),
            external_id: parts.external_id.to_owned(),
            received_at_ms: parts.received_at_ms,
            content_type: "application/json".to_owned(),
            headers: as_map(parts.headers),
            payload: parts.payload.to_vec(),
        }
    }

    #[test]
    fn the_envelope_is_encoded_as_prost_encodes_it() {
        let body = vec![b'x'; 300];
        let one_header = [("x-shopify-topic", Cow::Borrowed("orders/create"))];
        // With at most one header (a map has no order) the bytes are prost's own.
        for (headers, payload, external_id, received_at_ms) in [
            (&one_header[..], &body[..], "ext-1", 1_700_000_000_123),
            (&[][..], &b""[..], "", 0),
            (&[("x-empty", Cow::Borrowed(""))][..], &b"{}"[..], "", -1),
        ] {
            let parts = parts(headers, payload, external_id, received_at_ms);
            let encoded = encode_envelope(&parts);
            assert_eq!(encoded, expected(&parts).encode_to_vec());
            assert_eq!(EventEnvelope::decode(encoded).unwrap(), expected(&parts));
        }
        let many = [
            ("content-type", Cow::Borrowed("application/json")),
            ("x-shopify-topic", Cow::Borrowed("orders/create")),
            ("x-multi", Cow::Owned("1, 2".to_owned())),
            ("x-long", Cow::Owned("v".repeat(200))),
        ];
        let parts = parts(&many, &body, "ext-1", 42);
        let encoded = encode_envelope(&parts);
        assert_eq!(encoded.len(), expected(&parts).encoded_len());
        assert_eq!(EventEnvelope::decode(encoded).unwrap(), expected(&parts));
    }
}
