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

    /// The field's value as text; objects, arrays and nulls count as absent.
    pub fn read(&self, headers: &HeaderMap, payload: &Value) -> Option<String> {
        let text = match self {
            Self::Header(name) => headers.get(name)?.to_str().ok()?.trim().to_owned(),
            Self::Body(path) => {
                let mut current = payload;
                for segment in path {
                    current = match current {
                        Value::Object(object) => object.get(segment)?,
                        Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                        _ => return None,
                    };
                }
                match current {
                    Value::String(text) => text.trim().to_owned(),
                    Value::Number(number) => number.to_string(),
                    Value::Bool(flag) => flag.to_string(),
                    Value::Null | Value::Array(_) | Value::Object(_) => return None,
                }
            }
        };
        (!text.is_empty()).then_some(text)
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

/// Reads the field named by `spec` (may be empty): the first alternative present.
pub fn read_field(spec: &str, headers: &HeaderMap, payload: &Value) -> Option<String> {
    spec.split('|').find_map(|alternative| {
        if alternative.trim().is_empty() {
            return None;
        }
        let Some(location) = FieldLocation::parse(alternative) else {
            tracing::debug!(spec, "unreadable field location, ignoring");
            return None;
        };
        location.read(headers, payload)
    })
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
        let twilio = "body:MessageSid|body:SmsSid";
        assert_eq!(
            read_field(twilio, &HeaderMap::new(), &json!({"SmsSid": "SM1"})).as_deref(),
            Some("SM1")
        );
        assert_eq!(read_field("|bogus|", &headers, &json!({})), None);
    }
}
