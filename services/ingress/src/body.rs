//! Request bodies: the accepted content types, reading with a size limit (never
//! buffering more than the limit), and normalisation to JSON. The raw bytes are kept
//! as received because signatures are computed over them.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::{Map, Value};

use crate::error::IngressError;

/// The body formats ingress accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Form,
}

impl BodyFormat {
    /// A source's `content_type` setting: how bodies are read when their
    /// Content-Type does not say (`""` means they are refused).
    pub fn from_source_setting(setting: &str) -> Option<Self> {
        match setting.trim() {
            "json" => Some(Self::Json),
            "form" => Some(Self::Form),
            _ => None,
        }
    }
}

/// The format named by `Content-Type`. When it is missing or names another type
/// (some senders post JSON as `text/plain`), the source's own format applies if it
/// has one; otherwise the request is 415. Parameters such as `charset=utf-8` are
/// ignored, and structured `+json` types (`application/cloudevents+json`) count as
/// JSON.
pub fn body_format(
    headers: &HeaderMap,
    source_format: Option<BodyFormat>,
) -> Result<BodyFormat, IngressError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(declared_format);
    declared
        .or(source_format)
        .ok_or(IngressError::UnsupportedMediaType)
}

fn declared_format(value: &str) -> Option<BodyFormat> {
    let essence = value.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Some(BodyFormat::Json);
    }
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Some(BodyFormat::Form);
    }
    let lower = essence.to_ascii_lowercase();
    (lower.starts_with("application/") && lower.ends_with("+json")).then_some(BodyFormat::Json)
}

/// Refuses a declared `Content-Length` over `limit` before reading anything.
pub fn check_declared_length(headers: &HeaderMap, limit: usize) -> Result<(), IngressError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(IngressError::BodyTooLarge { limit }),
        _ => Ok(()),
    }
}

/// Reads the whole body, failing as soon as it grows past `limit` (a chunked body
/// has no declared length to check up front).
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, IngressError> {
    use axum::body::HttpBody as _;
    // The declared length, when there is one: a body in several chunks is then
    // gathered into one buffer of the right size, not into one that grows.
    let expected = usize::try_from(body.size_hint().lower())
        .unwrap_or(limit)
        .min(limit);
    let mut stream = body.into_data_stream();
    // Most webhooks arrive in one chunk, which is then kept without a copy.
    let Some(first) = stream.next().await else {
        return Ok(Bytes::new());
    };
    let first = first.map_err(IngressError::UnreadableBody)?;
    if first.len() > limit {
        return Err(IngressError::BodyTooLarge { limit });
    }
    let Some(second) = stream.next().await else {
        return Ok(first);
    };
    let mut buffer = BytesMut::with_capacity(expected.max(first.len()));
    buffer.extend_from_slice(&first);
    let mut next = Some(second);
    while let Some(chunk) = next {
        let chunk = chunk.map_err(IngressError::UnreadableBody)?;
        if buffer.len() + chunk.len() > limit {
            return Err(IngressError::BodyTooLarge { limit });
        }
        buffer.extend_from_slice(&chunk);
        next = stream.next().await;
    }
    Ok(buffer.freeze())
}

/// A body as JSON: the bytes published (`payload`), and for a form body the value
/// it became, from which fields are read. A JSON body is published as received
/// and its fields are read from `payload` (`value` is then `null`).
#[derive(Debug, Clone)]
pub struct NormalisedBody {
    pub payload: Bytes,
    pub value: Value,
}

#[cfg(test)]
pub fn normalise(format: BodyFormat, raw: &Bytes) -> Result<NormalisedBody, IngressError> {
    normalise_for(format, raw, JsonReading::Check)
}

/// How much of a JSON body ingress reads before storing it. Form bodies are always
/// parsed: they are stored converted to JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonReading {
    /// The event type or id comes from the body: read, in one pass that also
    /// checks it is JSON, by [`crate::event_fields::read_event_fields`].
    ReadFields,
    /// Only checked to be JSON, so that a mistake in a hand-written sender is
    /// answered 400 at once.
    Check,
    /// Stored as it came, unread: the body is a platform's own, covered by its
    /// signature. Should it not be JSON, rules reports that on the event.
    Store,
}

/// Checks a JSON body if `reading` says so, and converts a form body to JSON.
pub fn normalise_for(
    format: BodyFormat,
    raw: &Bytes,
    reading: JsonReading,
) -> Result<NormalisedBody, IngressError> {
    match format {
        BodyFormat::Json => {
            if reading == JsonReading::Check {
                serde_json::from_slice::<serde::de::IgnoredAny>(raw)
                    .map_err(IngressError::InvalidJson)?;
            }
            // Published byte for byte, as the sender wrote it.
            Ok(NormalisedBody {
                payload: raw.clone(),
                value: Value::Null,
            })
        }
        BodyFormat::Form => {
            let value = form_to_json(raw)?;
            let payload = serde_json::to_vec(&value).map_err(IngressError::InvalidJson)?;
            Ok(NormalisedBody {
                payload: Bytes::from(payload),
                value,
            })
        }
    }
}

/// `a=1&b=2&b=3` → `{"a":"1","b":["2","3"]}`. Keys stay literal (`items[0]` is a
/// key, not a path): nesting conventions differ between senders, and a flat object
/// loses nothing.
pub fn form_to_json(raw: &[u8]) -> Result<Value, IngressError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(raw).map_err(IngressError::InvalidForm)?;
    let mut object = Map::new();
    for (key, value) in pairs {
        match object.get_mut(&key) {
            None => {
                object.insert(key, Value::String(value));
            }
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
        }
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn with_content_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn content_types() {
        assert_eq!(
            body_format(&with_content_type("application/json"), None).unwrap(),
            BodyFormat::Json
        );
        assert_eq!(
            body_format(&with_content_type("Application/JSON; charset=utf-8"), None).unwrap(),
            BodyFormat::Json
        );
        assert_eq!(
            body_format(&with_content_type("application/cloudevents+json"), None).unwrap(),
            BodyFormat::Json
        );
        assert_eq!(
            body_format(
                &with_content_type("application/x-www-form-urlencoded; charset=UTF-8"),
                None
            )
            .unwrap(),
            BodyFormat::Form
        );
        for refused in [
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/xml",
            "",
        ] {
            assert!(
                body_format(&with_content_type(refused), None).is_err(),
                "{refused}"
            );
        }
        assert!(body_format(&HeaderMap::new(), None).is_err());
    }

    #[test]
    fn the_source_format_reads_bodies_whose_type_does_not_say() {
        let json = BodyFormat::from_source_setting("json");
        assert_eq!(
            body_format(&with_content_type("text/plain"), json).unwrap(),
            BodyFormat::Json
        );
        assert_eq!(
            body_format(&HeaderMap::new(), json).unwrap(),
            BodyFormat::Json
        );
        // A declared type still wins: WooCommerce's ping is form-encoded.
        assert_eq!(
            body_format(
                &with_content_type("application/x-www-form-urlencoded"),
                json
            )
            .unwrap(),
            BodyFormat::Form
        );
        assert_eq!(BodyFormat::from_source_setting(""), None);
    }

    #[test]
    fn form_bodies_become_flat_objects_with_arrays_for_repeats() {
        let value =
            form_to_json(b"From=%2B5215512345678&Body=STOP+please&tag=a&tag=b&tag=c").unwrap();
        assert_eq!(
            value,
            json!({"From": "+5215512345678", "Body": "STOP please", "tag": ["a", "b", "c"]})
        );
        assert_eq!(form_to_json(b"").unwrap(), json!({}));
        assert_eq!(
            form_to_json(b"items[0]=x").unwrap(),
            json!({"items[0]": "x"})
        );
    }

    #[test]
    fn json_is_kept_byte_for_byte_and_garbage_is_refused() {
        let raw = Bytes::from_static(b"{ \"a\" : 1 }");
        let checked = normalise(BodyFormat::Json, &raw).unwrap();
        assert_eq!(checked.payload, raw);
        assert_eq!(checked.value, Value::Null);
        assert!(matches!(
            normalise(BodyFormat::Json, &Bytes::from_static(b"{nope")),
            Err(IngressError::InvalidJson(_))
        ));
        for garbage in [&b"{nope"[..], b"{} {}", b""] {
            let garbage = Bytes::copy_from_slice(garbage);
            assert!(normalise_for(BodyFormat::Json, &garbage, JsonReading::Check).is_err());
            // Stored unread, byte for byte: rules reports it on the event. (Read
            // for fields, it is refused by the pass that reads them.)
            for reading in [JsonReading::Store, JsonReading::ReadFields] {
                let stored = normalise_for(BodyFormat::Json, &garbage, reading).unwrap();
                assert_eq!(stored.payload, garbage);
                assert_eq!(stored.value, Value::Null);
            }
        }
    }

    #[test]
    fn declared_length_over_the_limit_is_refused_early() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("11"));
        assert!(matches!(
            check_declared_length(&headers, 10),
            Err(IngressError::BodyTooLarge { limit: 10 })
        ));
        assert!(check_declared_length(&headers, 11).is_ok());
        assert!(check_declared_length(&HeaderMap::new(), 0).is_ok());
    }

    #[tokio::test]
    async fn chunked_bodies_are_joined_within_the_limit() {
        let chunks = || {
            let parts: [Result<Bytes, std::io::Error>; 2] = [
                Ok(Bytes::from_static(b"{\"a\":")),
                Ok(Bytes::from_static(b"1}")),
            ];
            Body::from_stream(futures::stream::iter(parts))
        };
        assert_eq!(
            read_limited(chunks(), 100).await.unwrap(),
            &b"{\"a\":1}"[..]
        );
        let body = chunks();
        assert!(matches!(
            read_limited(body, 6).await,
            Err(IngressError::BodyTooLarge { limit: 6 })
        ));
        assert!(read_limited(Body::empty(), 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn reading_stops_at_the_limit() {
        let body = Body::from(vec![b'x'; 100]);
        assert!(matches!(
            read_limited(body, 99).await,
            Err(IngressError::BodyTooLarge { limit: 99 })
        ));
        let body = Body::from(vec![b'x'; 100]);
        assert_eq!(read_limited(body, 100).await.unwrap().len(), 100);
    }
}
