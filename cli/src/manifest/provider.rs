//! Provider entries. Their keys depend on `kind`, so they are read by hand: a key
//! no kind knows is refused where it stands (with its line), a key of another kind
//! is refused at the entry (with the entry's line).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Console,
    Http,
    Twilio,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Http => "http",
            Self::Twilio => "twilio",
        }
    }

    /// The kind's own keys and whether each is a secret (stored encrypted as a
    /// credential) or a plain setting.
    pub fn keys(self) -> &'static [(&'static str, Storage)] {
        match self {
            Self::Console => &[],
            Self::Http => &[("url", Storage::Setting), ("from", Storage::Setting)],
            Self::Twilio => &[
                ("account_sid", Storage::Credential),
                ("auth_token", Storage::Credential),
                ("from", Storage::Setting),
                ("messaging_service_sid", Storage::Setting),
                ("base_url", Storage::Setting),
            ],
        }
    }

    fn takes_headers(self) -> bool {
        matches!(self, Self::Http)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Setting,
    Credential,
}

const COMMON_KEYS: [&str; 3] = ["name", "kind", "default"];

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ProviderKey {
    Name,
    Kind,
    Default,
    Headers,
    Url,
    From,
    AccountSid,
    AuthToken,
    MessagingServiceSid,
    BaseUrl,
}

impl ProviderKey {
    fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Kind => "kind",
            Self::Default => "default",
            Self::Headers => "headers",
            Self::Url => "url",
            Self::From => "from",
            Self::AccountSid => "account_sid",
            Self::AuthToken => "auth_token",
            Self::MessagingServiceSid => "messaging_service_sid",
            Self::BaseUrl => "base_url",
        }
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
        formatter.write_str("a provider: name, kind (console | http | twilio) and its settings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProviderSpec, A::Error> {
        let mut name: Option<String> = None;
        let mut kind: Option<ProviderKind> = None;
        let mut default = false;
        let mut options = BTreeMap::new();
        let mut headers: Option<BTreeMap<String, String>> = None;
        // Keys are read as an identifier enum so that an unknown key is reported
        // at its own line, as derived structs do.
        while let Some(key) = map.next_key::<ProviderKey>()? {
            match key {
                ProviderKey::Name => name = Some(map.next_value()?),
                ProviderKey::Kind => kind = Some(map.next_value()?),
                ProviderKey::Default => default = map.next_value()?,
                ProviderKey::Headers => headers = Some(map.next_value()?),
                option => {
                    let key = option.as_str();
                    if options
                        .insert(key.to_owned(), map.next_value::<String>()?)
                        .is_some()
                    {
                        return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                    }
                }
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        let own_keys = kind.keys();
        if let Some(foreign) = options
            .keys()
            .find(|key| !own_keys.iter().any(|(own, _)| own == key))
        {
            return Err(de::Error::custom(format_args!(
                "provider {name:?}: key `{foreign}` does not apply to kind {}; it takes: {}",
                kind.as_str(),
                describe_keys(kind)
            )));
        }
        if headers.is_some() && !kind.takes_headers() {
            return Err(de::Error::custom(format_args!(
                "provider {name:?}: key `headers` does not apply to kind {}; it takes: {}",
                kind.as_str(),
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

fn describe_keys(kind: ProviderKind) -> String {
    let mut keys: Vec<&str> = COMMON_KEYS.to_vec();
    keys.extend(kind.keys().iter().map(|(key, _)| *key));
    if kind.takes_headers() {
        keys.push("headers");
    }
    keys.join(", ")
}
