//! Provider entries. Their keys depend on `kind`, so they are read by hand: a key
//! no kind knows is refused where it stands (with its line), a key of another kind
//! is refused at the entry (with the entry's line).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use foco_providers::keys::ROUTE_SETTINGS;
use foco_providers::{ProviderKind, Storage};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

const COMMON_KEYS: [&str; 3] = ["name", "kind", "default"];
const HEADERS: &str = "headers";

/// Every key some entry may hold: the common ones, then the catalog's. Static,
/// because serde's unknown-field error lists them.
static KNOWN_KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut keys: Vec<&'static str> = COMMON_KEYS.to_vec();
    keys.push(HEADERS);
    keys.extend(foco_providers::all_key_names());
    keys
});

/// A key of a `providers:` entry. Read as an identifier so that an unknown key
/// is reported at its own line, as derived structs do.
struct ProviderKey(&'static str);

impl<'de> Deserialize<'de> for ProviderKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = ProviderKey;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a provider key")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<ProviderKey, E> {
                KNOWN_KEYS
                    .iter()
                    .copied()
                    .find(|known| *known == key)
                    .map(ProviderKey)
                    .ok_or_else(|| E::unknown_field(key, KNOWN_KEYS.as_slice()))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// A `kind:` value: one of the catalog's ids.
struct KindName(ProviderKind);

impl<'de> Deserialize<'de> for KindName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        ProviderKind::from_id(&id)
            .map(KindName)
            .ok_or_else(|| de::Error::unknown_variant(&id, ProviderKind::IDS))
    }
}

/// One entry of `providers:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    pub name: String,
    pub kind: ProviderKind,
    pub default: bool,
    /// Kind-specific keys (values may be `env:NAME`).
    pub options: BTreeMap<String, String>,
    /// HTTP headers of an `http` provider (values may be `env:NAME`); stored as
    /// credentials, one per header name.
    pub headers: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for ProviderSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ProviderVisitor)
    }
}

struct ProviderVisitor;

impl<'de> Visitor<'de> for ProviderVisitor {
    type Value = ProviderSpec;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "a provider: name, kind ({}) and its settings",
            ProviderKind::IDS.join(" | ")
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProviderSpec, A::Error> {
        let mut name: Option<String> = None;
        let mut kind: Option<ProviderKind> = None;
        let mut default = false;
        let mut options = BTreeMap::new();
        let mut headers: Option<BTreeMap<String, String>> = None;
        while let Some(ProviderKey(key)) = map.next_key()? {
            match key {
                "name" => name = Some(map.next_value()?),
                "kind" => kind = Some(map.next_value::<KindName>()?.0),
                "default" => default = map.next_value()?,
                HEADERS => headers = Some(map.next_value()?),
                _ => {
                    if options
                        .insert(key.to_owned(), map.next_value::<SettingText>()?.0)
                        .is_some()
                    {
                        return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                    }
                }
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        let spec = kind.spec();
        let foreign = options
            .keys()
            .map(String::as_str)
            .find(|key| spec.key(key).is_none() && !ROUTE_SETTINGS.contains(key))
            .or_else(|| (headers.is_some() && !spec.header_credentials).then_some(HEADERS));
        if let Some(foreign) = foreign {
            return Err(de::Error::custom(format_args!(
                "provider {name:?}: key `{foreign}` does not apply to kind {kind}; it takes: {}",
                describe_keys(kind)
            )));
        }
        Ok(ProviderSpec {
            name,
            kind,
            default,
            options,
            headers: headers.unwrap_or_default(),
        })
    }
}

/// A setting's value: a string, a number or a boolean as written (`rate_limit:
/// 50`), or a list joined with commas (`failover: [mx, backup]`).
struct SettingText(String);

impl<'de> Deserialize<'de> for SettingText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Text(String),
            Integer(i64),
            Float(f64),
            Flag(bool),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Value {
            One(Scalar),
            Many(Vec<Scalar>),
        }
        let text = |scalar: Scalar| match scalar {
            Scalar::Text(text) => text,
            Scalar::Integer(number) => number.to_string(),
            Scalar::Float(number) => number.to_string(),
            Scalar::Flag(flag) => flag.to_string(),
        };
        Ok(Self(match Value::deserialize(deserializer)? {
            Value::One(scalar) => text(scalar),
            Value::Many(list) => list.into_iter().map(text).collect::<Vec<_>>().join(","),
        }))
    }
}

fn describe_keys(kind: ProviderKind) -> String {
    let spec = kind.spec();
    let mut keys: Vec<&str> = COMMON_KEYS.to_vec();
    keys.extend(spec.keys.iter().map(|key| key.name));
    keys.extend(ROUTE_SETTINGS);
    if spec.header_credentials {
        keys.push(HEADERS);
    }
    keys.join(", ")
}

/// What `foco apply --help` says about `providers:` entries, from the catalog:
/// each kind with its keys, which are required, which are secret, defaults.
pub fn kinds_help() -> String {
    let mut help = String::from(
        "Provider kinds (keys of a `providers:` entry; * required, [secret] stored encrypted):\n",
    );
    for kind in ProviderKind::ALL {
        let spec = kind.spec();
        help.push_str(&format!(
            "\n  {kind}: {} ({})\n",
            spec.display_name, spec.summary
        ));
        for key in spec.keys {
            let required = if key.required { "*" } else { "" };
            let secret = match key.storage {
                Storage::Credential => " [secret]",
                Storage::Setting => "",
            };
            let default = key
                .default
                .map(|default| format!(" [default: {default}]"))
                .unwrap_or_default();
            help.push_str(&format!(
                "    {}{required}{secret}: {}{default}\n",
                key.name, key.about
            ));
        }
        if spec.header_credentials {
            help.push_str(&format!(
                "    {HEADERS} [secret]: request headers, one per name\n"
            ));
        }
    }
    help.push_str(&format!(
        "\nEvery kind also takes: {}.\n",
        ROUTE_SETTINGS.join(", ")
    ));
    help
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_kind_and_its_keys() {
        let help = kinds_help();
        for kind in ProviderKind::ALL {
            assert!(help.contains(&format!("\n  {kind}: ")), "{kind}");
            for key in kind.spec().keys {
                assert!(help.contains(&format!("    {}", key.name)), "{}", key.name);
            }
        }
        assert!(help.contains("    auth_token* [secret]: "), "{help}");
        assert!(help.contains("[default: https://api.twilio.com]"), "{help}");
    }
}
