//! Parsing an event's payload into what the account's rules read of it.
//!
//! Most rules read a few top-level fields of a payload that can be tens of
//! kilobytes (a Shopify order carries its line items, addresses, tax lines
//! and shipping lines): building and then freeing a `serde_json::Value` for
//! all of it was most of what evaluating such an event cost. When every
//! condition and template of the rules reads only named top-level fields of
//! `event`, the others are checked as JSON and skipped, never built. Rules
//! that use `event` otherwise (index it, iterate it, print it whole) see all
//! of it. Either way, a payload that is not JSON is refused as before.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::condition::Reads;

/// `payload` as a JSON value, holding only the top-level fields `reads` names
/// when it names some and the payload is an object; an empty payload is an
/// empty object.
pub(crate) fn parse(payload: &[u8], reads: &Reads) -> Result<Value, serde_json::Error> {
    if payload.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let fields = match reads {
        Reads::Everything => return serde_json::from_slice(payload),
        Reads::Nothing => None,
        Reads::Fields(fields) => Some(fields),
    };
    // Checked once here, so the parser reads `str` (whose skipped strings it
    // need not check again); a payload that is not UTF-8 gets the error the
    // whole parse gives.
    let Ok(text) = std::str::from_utf8(payload) else {
        return serde_json::from_slice(payload);
    };
    if !text.trim_start().starts_with('{') {
        return serde_json::from_str(text);
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let object = (Fields { wanted: fields }).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(Value::Object(object))
}

/// Keeps the top-level fields in `wanted` (none when `None`), parsing each
/// other value only as far as checking it is JSON.
struct Fields<'a> {
    wanted: Option<&'a std::collections::BTreeSet<String>>,
}

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Map::new();
        // Each key is a `String`: borrowing the unescaped ones from the payload
        // measured no faster under `make bench-rules`.
        while let Some(key) = map.next_key::<String>()? {
            if self.wanted.is_some_and(|wanted| wanted.contains(&key)) {
                // A repeated key keeps its last value, as the whole parse does.
                object.insert(key, map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(object)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    fn fields(names: &[&str]) -> Reads {
        Reads::Fields(
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<BTreeSet<_>>(),
        )
    }

    const ORDER: &str = r#"{"id": 7, "customer": {"name": "Ana"}, "items": [1, {"a": [true, null]}], "note": "caf\u00e9 \"x\"", "total": 1.50}"#;

    #[test]
    fn keeps_the_named_fields_as_the_whole_parse_has_them() {
        let whole: Value = serde_json::from_str(ORDER).unwrap();
        let partial = parse(ORDER.as_bytes(), &fields(&["customer", "total", "absent"])).unwrap();
        assert_eq!(
            partial,
            json!({ "customer": whole["customer"], "total": whole["total"] })
        );
        assert_eq!(parse(ORDER.as_bytes(), &Reads::Everything).unwrap(), whole);
        assert_eq!(parse(ORDER.as_bytes(), &Reads::Nothing).unwrap(), json!({}));
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_the_whole_parse_does() {
        let payload = r#"{"a": 1, "b": 2, "a": 3}"#;
        let whole: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(
            parse(payload.as_bytes(), &fields(&["a"])).unwrap()["a"],
            whole["a"]
        );
    }

    #[test]
    fn keys_with_escapes_are_matched_by_what_they_spell() {
        let payload = r#"{"t\u0065nant": "t1", "other": 1}"#;
        assert_eq!(
            parse(payload.as_bytes(), &fields(&["tenant"])).unwrap(),
            json!({ "tenant": "t1" })
        );
    }

    #[test]
    fn a_payload_that_is_not_an_object_is_parsed_whole() {
        for payload in ["[1, 2]", " \"text\"", "3", "null"] {
            let whole: Value = serde_json::from_str(payload).unwrap();
            assert_eq!(
                parse(payload.as_bytes(), &fields(&["a"])).unwrap(),
                whole,
                "{payload}"
            );
        }
        assert_eq!(parse(b"", &fields(&["a"])).unwrap(), json!({}));
    }

    /// What is skipped is still checked: a payload is JSON or it is refused,
    /// whichever fields the rules read, with the error the whole parse gives.
    #[test]
    fn a_payload_that_is_not_json_is_refused_wherever_the_fault_is() {
        let broken: &[&[u8]] = &[
            br#"{"a": 1, "skipped": [1, 2}"#,
            br#"{"a": 1, "skipped": tru}"#,
            br#"{"a": 1, "skipped": "\q"}"#,
            br#"{"a": 1, "skipped": 01}"#,
            br#"{"a": 1} trailing"#,
            br#"{"a": 1, "skipped": "unterminated}"#,
            b"{\"a\": 1, \"skipped\": \"\xff\xfe\"}",
            b"{\"a\": 1, \"skipped\": \"\x01\"}",
        ];
        for payload in broken {
            let whole = serde_json::from_slice::<Value>(payload).unwrap_err();
            let partial = parse(payload, &fields(&["a"])).unwrap_err();
            assert_eq!(
                partial.classify(),
                whole.classify(),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    /// Skipping does not recurse, so nesting deeper than the whole parse allows
    /// (it refuses past 128 levels, to bound its stack) is accepted where it is
    /// skipped: it is JSON, and nothing reads it.
    #[test]
    fn nesting_in_skipped_fields_is_not_bounded_by_the_parsers_stack() {
        let deep = format!(
            r#"{{"a": 1, "skipped": {}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(serde_json::from_str::<Value>(&deep).is_err());
        assert_eq!(
            parse(deep.as_bytes(), &fields(&["a"])).unwrap(),
            json!({ "a": 1 })
        );
        let unbalanced = format!(r#"{{"a": 1, "skipped": {}}}"#, "[".repeat(200));
        assert!(parse(unbalanced.as_bytes(), &fields(&["a"])).is_err());
    }
}
