//! Reading a few fields out of a JSON body in one pass, without building the body
//! into a value. The pass still reads the whole document, so a body that is not
//! JSON is refused as before; only the values on the requested paths are kept.
//!
//! Building a `serde_json::Value` of a 10 KiB order allocates for every key and
//! string in it, several times the cost of reading it; a preset needs one or two
//! fields of it (Stripe's `type` and `id`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// For each path (object keys, or array indexes in decimal), the text of the
/// scalar found there, as [`crate::event_fields`] reads it from a value: strings as
/// they are, numbers and booleans printed. Objects, arrays, nulls and paths that
/// lead nowhere give `None`. When a key repeats, its last value counts, as in a
/// `serde_json::Value`. An error means the body is not JSON.
pub fn read_paths(
    raw: &[u8],
    paths: &[&[String]],
) -> Result<Vec<Option<String>>, serde_json::Error> {
    let mut found = vec![None; paths.len()];
    let reaching: Vec<Reaching<'_>> = paths
        .iter()
        .enumerate()
        .map(|(index, rest)| Reaching { index, rest })
        .collect();
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    Lookup {
        paths: &reaching,
        found: &mut found,
    }
    .deserialize(&mut deserializer)?;
    // Trailing characters after the document are an error too.
    deserializer.end()?;
    Ok(found)
}

/// A path that reached the value being read, with what is left of it.
#[derive(Clone, Copy)]
struct Reaching<'p> {
    index: usize,
    rest: &'p [String],
}

/// Reads one value, for the paths that reached it.
struct Lookup<'a, 'p> {
    paths: &'a [Reaching<'p>],
    found: &'a mut [Option<String>],
}

impl Lookup<'_, '_> {
    /// Paths that end at this value take `text` (last one wins, as in a `Value`).
    fn settle(&mut self, text: Option<String>) {
        for path in self.paths.iter().filter(|path| path.rest.is_empty()) {
            self.found[path.index].clone_from(&text);
        }
    }

    /// The paths that continue into the child named `segment`.
    fn into_child<'p>(paths: &[Reaching<'p>], matches: impl Fn(&str) -> bool) -> Vec<Reaching<'p>> {
        paths
            .iter()
            .filter_map(|path| {
                let (first, rest) = path.rest.split_first()?;
                matches(first).then_some(Reaching {
                    index: path.index,
                    rest,
                })
            })
            .collect()
    }
}

impl<'de> DeserializeSeed<'de> for Lookup<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Lookup<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(mut self, value: bool) -> Result<(), E> {
        self.settle(Some(value.to_string()));
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, value: i64) -> Result<(), E> {
        self.settle(Some(serde_json::Number::from(value).to_string()));
        Ok(())
    }

    fn visit_u64<E: de::Error>(mut self, value: u64) -> Result<(), E> {
        self.settle(Some(serde_json::Number::from(value).to_string()));
        Ok(())
    }

    fn visit_f64<E: de::Error>(mut self, value: f64) -> Result<(), E> {
        // JSON has no NaN or infinity, so there is always a number to print.
        self.settle(serde_json::Number::from_f64(value).map(|number| number.to_string()));
        Ok(())
    }

    fn visit_str<E: de::Error>(mut self, value: &str) -> Result<(), E> {
        self.settle(Some(value.to_owned()));
        Ok(())
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.settle(None);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.settle(None);
        while let Some(Key(key)) = map.next_key()? {
            let children = Self::into_child(self.paths, |segment| segment == key);
            if children.is_empty() {
                map.next_value::<IgnoredAny>()?;
            } else {
                map.next_value_seed(Lookup {
                    paths: &children,
                    found: &mut *self.found,
                })?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.settle(None);
        let mut position = 0usize;
        loop {
            let children = Self::into_child(self.paths, |segment| {
                segment
                    .parse::<usize>()
                    .is_ok_and(|index| index == position)
            });
            let more = if children.is_empty() {
                seq.next_element::<IgnoredAny>()?.is_some()
            } else {
                seq.next_element_seed(Lookup {
                    paths: &children,
                    found: &mut *self.found,
                })?
                .is_some()
            };
            if !more {
                return Ok(());
            }
            position += 1;
        }
    }
}

/// An object key, borrowed from the body unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object key")
            }

            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str, paths: &[&str]) -> Vec<Option<String>> {
        let paths: Vec<Vec<String>> = paths
            .iter()
            .map(|path| path.split('.').map(str::to_owned).collect())
            .collect();
        let borrowed: Vec<&[String]> = paths.iter().map(Vec::as_slice).collect();
        read_paths(raw.as_bytes(), &borrowed).unwrap()
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn reads_nested_fields_in_one_pass() {
        let raw = r#"{"id": "evt_1", "type": "checkout.session.completed",
            "data": {"object": {"amount": 1250, "paid": true, "rate": 1.5, "note": null,
            "items": [{"sku": "a"}, {"sku": "b\"q"}]}}}"#;
        assert_eq!(
            read(
                raw,
                &[
                    "type",
                    "id",
                    "data.object.amount",
                    "data.object.paid",
                    "data.object.rate",
                    "data.object.note",
                    "data.object.items.1.sku",
                    "data.object.items.7.sku",
                    "data.object",
                    "missing",
                    "id.deeper",
                ]
            ),
            [
                some("checkout.session.completed"),
                some("evt_1"),
                some("1250"),
                some("true"),
                some("1.5"),
                None,
                some("b\"q"),
                None,
                None,
                None,
                None,
            ]
        );
    }

    #[test]
    fn arrays_at_the_top_and_escaped_keys() {
        // HubSpot sends an array of events.
        let raw = r#"[{"eventId": 100, "subscriptionType": "contact.creation"}, {"eventId": 101}]"#;
        assert_eq!(
            read(raw, &["0.subscriptionType", "0.eventId", "1.eventId", "x"]),
            [some("contact.creation"), some("100"), some("101"), None]
        );
        assert_eq!(
            read(r#"{"ty\u0070e": "escaped"}"#, &["type"]),
            [some("escaped")]
        );
    }

    #[test]
    fn the_last_of_repeated_keys_counts_as_in_a_value() {
        let raw = r#"{"type": "first", "type": {"nested": 1}, "id": 1, "id": "second"}"#;
        let value: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert_eq!(value["type"], serde_json::json!({"nested": 1}));
        assert_eq!(read(raw, &["type", "id"]), [None, some("second")]);
    }

    #[test]
    fn what_is_not_json_is_an_error() {
        let paths = [vec!["type".to_owned()]];
        let borrowed: Vec<&[String]> = paths.iter().map(Vec::as_slice).collect();
        for garbage in [
            "{\"type\": ",
            "{} {}",
            "",
            "{\"type\": \"x\"} trailing",
            "[1,]",
        ] {
            assert!(
                read_paths(garbage.as_bytes(), &borrowed).is_err(),
                "{garbage:?}"
            );
        }
    }
}
