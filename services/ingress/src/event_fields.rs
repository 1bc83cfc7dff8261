//! Where a source's event type and event id live: `header:<Name>` or
//! `body:<dotted.path>` (numeric segments index arrays, e.g. `body:data.items.0.id`),
//! or several of them separated by `|`, tried in order (Shopify's
//! `header:X-Shopify-Event-Id|header:X-Shopify-Webhook-Id`).

use axum::http::{HeaderMap, HeaderName};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldLocation {
    Header(HeaderName),
    Body(Vec<String>),
}

impl FieldLocation {
    /// `None` for an empty or unreadable spec: the field is then simply absent.
    pub fn parse(spec: &str) -> Option<Self> {
        let (kind, rest) = spec.trim().split_once(':')?;
        let rest = rest.trim();
        if rest.is_empty() {
            return None;
        }
        if kind.eq_ignore_ascii_case("header") {
            // `from_bytes` lower-cases, so the configured spelling does not matter.
            return HeaderName::from_bytes(rest.as_bytes())
                .ok()
                .map(Self::Header);
        }
        if kind.eq_ignore_ascii_case("body") {
            return Some(Self::Body(rest.split('.').map(str::to_owned).collect()));
        }
        None
    }
}

/// Whether any alternative of `spec` reads the body.
pub fn reads_body(spec: &str) -> bool {
    spec.split('|').any(|alternative| {
        alternative
            .trim_start()
            .get(..5)
            .is_some_and(|kind| kind.eq_ignore_ascii_case("body:"))
    })
}

/// What a body's fields are read from: JSON as received (read in one pass, which
/// also checks it is JSON) or the value a form body became.
#[derive(Debug, Clone, Copy)]
pub enum BodyFields<'a> {
    Json(&'a [u8]),
    Value(&'a Value),
}

/// The event type and the sender's event id, each the first alternative of its
/// spec that is present.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EventFields {
    pub event_type: Option<String>,
    pub external_id: Option<String>,
    /// The header `external_id` was read from; `None` when it came from the body
    /// or is absent. Whether the signature covers it decides what names the event.
    pub external_id_header: Option<HeaderName>,
}

/// Reads both fields; the body is read only if a spec names it, and then once for
/// both. An error means the body is JSON to be read and is not JSON.
pub fn read_event_fields(
    event_type_from: &str,
    event_id_from: &str,
    headers: &HeaderMap,
    body: BodyFields<'_>,
) -> Result<EventFields, serde_json::Error> {
    let type_locations = locations(event_type_from);
    let id_locations = locations(event_id_from);
    let body_paths: Vec<&[String]> = type_locations
        .iter()
        .chain(&id_locations)
        .filter_map(|location| match location {
            FieldLocation::Body(path) => Some(path.as_slice()),
            FieldLocation::Header(_) => None,
        })
        .collect();
    let body_values = match body {
        _ if body_paths.is_empty() => Vec::new(),
        BodyFields::Json(raw) => crate::json_paths::read_paths(raw, &body_paths)?,
        BodyFields::Value(value) => body_paths
            .iter()
            .map(|path| value_text(value, path))
            .collect(),
    };
    // Body values come in the order of the body locations above.
    let mut body_values = body_values.into_iter();
    // The first present value, and the position of its location.
    let mut first_present = |locations: &[FieldLocation]| {
        let mut present = None;
        for (position, location) in locations.iter().enumerate() {
            let text = match location {
                FieldLocation::Header(name) => header_text(headers, name),
                FieldLocation::Body(_) => body_values.next().flatten(),
            };
            let text = text
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty());
            if present.is_none() {
                present = text.map(|text| (text, position));
            }
        }
        present
    };
    let event_type = first_present(&type_locations).map(|(text, _)| text);
    let (external_id, external_id_header) = match first_present(&id_locations) {
        Some((text, position)) => match &id_locations[position] {
            FieldLocation::Header(name) => (Some(text), Some(name.clone())),
            FieldLocation::Body(_) => (Some(text), None),
        },
        None => (None, None),
    };
    Ok(EventFields {
        event_type,
        external_id,
        external_id_header,
    })
}

/// The readable alternatives of `spec`, in order.
fn locations(spec: &str) -> Vec<FieldLocation> {
    spec.split('|')
        .filter(|alternative| !alternative.trim().is_empty())
        .filter_map(|alternative| {
            let location = FieldLocation::parse(alternative);
            if location.is_none() {
                tracing::debug!(spec, "unreadable field location, ignoring");
            }
            location
        })
        .collect()
}

fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    Some(headers.get(name)?.to_str().ok()?.to_owned())
}

/// The scalar at `path` in `value` as text; objects, arrays and nulls are absent.
fn value_text(value: &Value, path: &[String]) -> Option<String> {
    let mut current = value;
    for segment in path {
        current = match current {
            Value::Object(object) => object.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match current {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Reads the field named by `spec` (may be empty) from headers and a value.
#[cfg(test)]
pub fn read_field(spec: &str, headers: &HeaderMap, payload: &Value) -> Option<String> {
    read_event_fields(spec, "", headers, BodyFields::Value(payload))
        .expect("a value is always readable")
        .event_type
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_header_and_body_specs() {
        assert_eq!(
            FieldLocation::parse("header:X-Shopify-Topic"),
            Some(FieldLocation::Header(HeaderName::from_static(
                "x-shopify-topic"
            )))
        );
        assert_eq!(
            FieldLocation::parse("body:data.object.id"),
            Some(FieldLocation::Body(vec![
                "data".into(),
                "object".into(),
                "id".into()
            ]))
        );
        for bad in ["", "type", "header:", "query:x", "header:bad name"] {
            assert_eq!(FieldLocation::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_headers_and_nested_body_fields() {
        let mut headers = HeaderMap::new();
        headers.insert("x-shopify-topic", "orders/create".parse().unwrap());
        let payload = json!({"type": "checkout.session.completed", "data": {"items": [{"id": 7}], "ok": true}, "n": null});
        assert_eq!(
            read_field("header:X-Shopify-Topic", &headers, &payload).as_deref(),
            Some("orders/create")
        );
        assert_eq!(
            read_field("body:type", &headers, &payload).as_deref(),
            Some("checkout.session.completed")
        );
        assert_eq!(
            read_field("body:data.items.0.id", &headers, &payload).as_deref(),
            Some("7")
        );
        assert_eq!(
            read_field("body:data.ok", &headers, &payload).as_deref(),
            Some("true")
        );
        assert_eq!(read_field("body:data", &headers, &payload), None);
        assert_eq!(read_field("body:n", &headers, &payload), None);
        assert_eq!(read_field("body:missing.path", &headers, &payload), None);
        assert_eq!(read_field("header:x-missing", &headers, &payload), None);
        assert_eq!(read_field("", &headers, &payload), None);
    }

    #[test]
    fn which_specs_read_the_body() {
        assert!(reads_body("body:id"));
        assert!(reads_body("header:X-A| Body:id"));
        assert!(!reads_body(
            "header:X-Shopify-Event-Id|header:X-Shopify-Webhook-Id"
        ));
        assert!(!reads_body(""));
    }

    #[test]
    fn alternatives_are_tried_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert("x-shopify-webhook-id", "wh-1".parse().unwrap());
        let spec = "header:X-Shopify-Event-Id|header:X-Shopify-Webhook-Id";
        assert_eq!(
            read_field(spec, &headers, &json!({})).as_deref(),
            Some("wh-1")
        );
        headers.insert("x-shopify-event-id", "ev-1".parse().unwrap());
        assert_eq!(
            read_field(spec, &headers, &json!({})).as_deref(),
            Some("ev-1")
        );
        let fields = read_event_fields("", spec, &headers, BodyFields::Value(&json!({}))).unwrap();
        assert_eq!(fields.external_id.as_deref(), Some("ev-1"));
        assert_eq!(
            fields.external_id_header,
            Some(HeaderName::from_static("x-shopify-event-id"))
        );
        let from_body = read_event_fields(
            "",
            "header:X-Missing|body:id",
            &headers,
            BodyFields::Value(&json!({"id": 7})),
        )
        .unwrap();
        assert_eq!(from_body.external_id.as_deref(), Some("7"));
        assert_eq!(from_body.external_id_header, None);
        let twilio = "body:MessageSid|body:SmsSid";
        assert_eq!(
            read_field(twilio, &HeaderMap::new(), &json!({"SmsSid": "SM1"})).as_deref(),
            Some("SM1")
        );
        assert_eq!(read_field("|bogus|", &headers, &json!({})), None);
    }
}
