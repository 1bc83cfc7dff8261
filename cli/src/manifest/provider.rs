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
    Vonage,
    Infobip,
    Smsmasivos,
    Telnyx,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Http => "http",
            Self::Twilio => "twilio",
            Self::Vonage => "vonage",
            Self::Infobip => "infobip",
            Self::Smsmasivos => "smsmasivos",
            Self::Telnyx => "telnyx",
        }
    }

    /// The kind's own keys and whether each is a secret (stored encrypted as a
    /// credential) or a plain setting.
    pub fn keys(self) -> &'static [(&'static str, Storage)] {
        match self {
            Self::Console => &[],
            Self::Http => &[
                ("url", Storage::Setting),
                ("from", Storage::Setting),
                ("body_template", Storage::Setting),
                ("content_type", Storage::Setting),
                ("id_pointer", Storage::Setting),
                ("idempotent", Storage::Setting),
            ],
            Self::Twilio => &[
                ("account_sid", Storage::Credential),
                ("auth_token", Storage::Credential),
                ("from", Storage::Setting),
                ("messaging_service_sid", Storage::Setting),
                ("base_url", Storage::Setting),
            ],
            Self::Vonage => &[
                ("api_key", Storage::Credential),
                ("api_secret", Storage::Credential),
                // Verifies signed delivery receipts and inbound SMS (ingress).
                ("signature_secret", Storage::Credential),
                ("signature_method", Storage::Setting),
                ("from", Storage::Setting),
                ("currency", Storage::Setting),
                ("base_url", Storage::Setting),
            ],
            Self::Infobip => &[
                ("api_key", Storage::Credential),
                // What Infobip's webhook subscription sends back (ingress).
                ("webhook_secret", Storage::Credential),
                ("base_url", Storage::Setting),
                ("from", Storage::Setting),
            ],
            Self::Smsmasivos => &[
                ("api_key", Storage::Credential),
                ("from", Storage::Setting),
                ("sandbox", Storage::Setting),
                ("base_url", Storage::Setting),
            ],
            Self::Telnyx => &[
                ("api_key", Storage::Credential),
                // The account's Ed25519 public key, for signed webhooks (ingress).
                ("public_key", Storage::Credential),
                ("from", Storage::Setting),
                ("messaging_profile_id", Storage::Setting),
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

/// Route settings the sender reads for every kind (docs/providers.md): failover
/// order, destinations, shared rate limit, circuit breaker, quiet hours, HELP text.
const ROUTE_SETTINGS: [&str; 7] = [
    "failover",
    "country_prefixes",
    "rate_limit",
    "breaker_threshold",
    "breaker_cooldown",
    "quiet_hours",
    "help_text",
];

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
    Path,
    BodyTemplate,
    ContentType,
    IdPointer,
    Idempotent,
    ApiKey,
    ApiSecret,
    Currency,
    Sandbox,
    MessagingProfileId,
    SignatureSecret,
    SignatureMethod,
    WebhookSecret,
    PublicKey,
    Failover,
    CountryPrefixes,
    RateLimit,
    BreakerThreshold,
    BreakerCooldown,
    QuietHours,
    HelpText,
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
            Self::Path => "path",
            Self::BodyTemplate => "body_template",
            Self::ContentType => "content_type",
            Self::IdPointer => "id_pointer",
            Self::Idempotent => "idempotent",
            Self::ApiKey => "api_key",
            Self::ApiSecret => "api_secret",
            Self::Currency => "currency",
            Self::Sandbox => "sandbox",
            Self::MessagingProfileId => "messaging_profile_id",
            Self::SignatureSecret => "signature_secret",
            Self::SignatureMethod => "signature_method",
            Self::WebhookSecret => "webhook_secret",
            Self::PublicKey => "public_key",
            Self::Failover => "failover",
            Self::CountryPrefixes => "country_prefixes",
            Self::RateLimit => "rate_limit",
            Self::BreakerThreshold => "breaker_threshold",
            Self::BreakerCooldown => "breaker_cooldown",
            Self::QuietHours => "quiet_hours",
            Self::HelpText => "help_text",
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
        formatter.write_str(
            "a provider: name, kind (console | http | twilio | vonage | infobip | smsmasivos | telnyx) and its settings",
        )
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
        let own_keys = kind.keys();
        if let Some(foreign) = options.keys().find(|key| {
            !own_keys.iter().any(|(own, _)| own == key) && !ROUTE_SETTINGS.contains(&key.as_str())
        }) {
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
    let mut keys: Vec<&str> = COMMON_KEYS.to_vec();
    keys.extend(kind.keys().iter().map(|(key, _)| *key));
    keys.extend(ROUTE_SETTINGS);
    if kind.takes_headers() {
        keys.push("headers");
    }
    keys.join(", ")
}
