//! SMS provider adapters. Each one turns an `OutboundSms` into one call to its
//! provider and maps the answer into the four outcomes the sender understands:
//! sent (with the provider's id, segments and price where given), transient
//! failure (retry later, never before `Retry-After`), permanent failure (with a
//! `FailureKind`), or unknown (the request may have been accepted; never resent
//! blindly).
//!
//! Providers are an enum rather than trait objects: the set is closed (the kinds
//! of the `foco_providers` catalog, which also holds their keys, defaults and
//! idempotency), known at compile time, and an `async fn` per variant keeps the
//! calls cheap and plain.
//! Credentials live only inside the adapters; no `Debug`, error or reason text
//! ever contains them.

mod console;
mod http;
mod infobip;
mod response;
mod smsmasivos;
mod telnyx;
mod twilio;
mod vonage;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use foco_proto::v1::ResolvedRoute;
use foco_providers::keys::BASE_URL;
use foco_providers::{Idempotency, ProviderKind};

pub use console::ConsoleProvider;
pub use foco_outbound::guard;
pub use foco_outbound::{ClientBuildError, build_http_client};
pub use http::HttpProvider;
pub use infobip::InfobipProvider;
pub use smsmasivos::SmsMasivosProvider;
pub use telnyx::TelnyxProvider;
pub use twilio::TwilioProvider;
pub use vonage::VonageProvider;

/// One SMS ready for a provider: the number is already E.164.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSms {
    pub job_id: String,
    pub account_id: String,
    pub event_id: String,
    pub to: String,
    /// Sender id or from number; empty means the route's default.
    pub from: String,
    pub body: String,
}

/// What a provider reported when it accepted a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    pub provider_message_id: String,
    /// Ids of the parts when the provider reports each segment under its own id
    /// (Vonage); empty otherwise. Receipts arrive per part.
    pub part_ids: Vec<String>,
    /// Billed segments, when the provider says (0 otherwise).
    pub segments: u32,
    pub price: Option<Price>,
}

impl Accepted {
    pub fn with_id(provider_message_id: impl Into<String>) -> Self {
        Self {
            provider_message_id: provider_message_id.into(),
            ..Self::default()
        }
    }
}

/// A price as the provider wrote it (decimal text), never parsed into a float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub amount: String,
    pub currency: String,
}

/// Why a provider refused a message for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The number cannot receive SMS (invalid, landline, unroutable).
    InvalidNumber,
    /// The recipient opted out at the provider or carrier (Twilio 21610). The
    /// number is opted out of the account too.
    OptedOut,
    /// The carrier or provider blocks this destination or content.
    Blocked,
    /// The account at the provider is out of credit.
    NoCredit,
    /// The provider refused the account or the request as configured
    /// (credentials, sender id): another provider may well take the message.
    Provider,
    /// The message itself was refused (too long, malformed).
    Rejected,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidNumber => "invalid_number",
            Self::OptedOut => "opted_out",
            Self::Blocked => "blocked",
            Self::NoCredit => "no_credit",
            Self::Provider => "provider",
            Self::Rejected => "rejected",
        }
    }

    /// Failures of the provider rather than of the message: the next provider of
    /// the route may succeed, and the circuit breaker counts them.
    pub fn is_provider_side(self) -> bool {
        matches!(self, Self::NoCredit | Self::Provider)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderOutcome {
    /// The provider accepted the message.
    Sent(Accepted),
    /// The provider did not take the message; try again later. `throttled` is a
    /// 429 (or the provider's equivalent): the whole route slows down.
    Transient {
        retry_after: Option<Duration>,
        reason: String,
        throttled: bool,
    },
    /// The provider refused the message; trying it again there would not help.
    Permanent { kind: FailureKind, reason: String },
    /// The request may have reached the provider, but no answer came back.
    Unknown { reason: String },
}

/// What a provider does with a second call carrying the same job id (sent
/// as its idempotency key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// It deduplicates: the second call never sends a second SMS.
    Deduplicated,
    /// It may send the SMS again.
    MaySendTwice,
}

impl ProviderOutcome {
    pub fn sent(provider_message_id: impl Into<String>) -> Self {
        Self::Sent(Accepted::with_id(provider_message_id))
    }

    pub fn transient(reason: impl Into<String>) -> Self {
        Self::Transient {
            retry_after: None,
            reason: reason.into(),
            throttled: false,
        }
    }

    pub fn throttled(retry_after: Option<Duration>, reason: impl Into<String>) -> Self {
        Self::Transient {
            retry_after,
            reason: reason.into(),
            throttled: true,
        }
    }

    pub fn permanent(kind: FailureKind, reason: impl Into<String>) -> Self {
        Self::Permanent {
            kind,
            reason: reason.into(),
        }
    }

    /// Metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Sent(_) => "sent",
            Self::Transient {
                throttled: true, ..
            } => "throttled",
            Self::Transient { .. } => "transient",
            Self::Permanent { .. } => "permanent",
            Self::Unknown { .. } => "unknown",
        }
    }
}

impl From<Accepted> for ProviderOutcome {
    fn from(accepted: Accepted) -> Self {
        Self::Sent(accepted)
    }
}

/// Why a route cannot be used as configured. The text is recorded on the message,
/// so it never includes credential values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteConfigError {
    #[error("provider kind {0:?} is not supported")]
    UnknownKind(String),
    #[error("provider route has no {0:?} setting")]
    MissingSetting(&'static str),
    #[error("provider route has no {0:?} credential")]
    MissingCredential(&'static str),
    #[error("provider route credential {0:?} is malformed")]
    InvalidCredential(&'static str),
    #[error("provider route setting {0:?} is malformed")]
    InvalidSetting(&'static str),
    #[error("provider route setting {setting:?} is not a valid URL")]
    InvalidUrl { setting: &'static str },
    #[error("provider route setting {setting:?} is refused: {reason}")]
    RefusedUrl {
        setting: &'static str,
        reason: guard::UrlRefused,
    },
    #[error("provider route credential {0:?} cannot be sent as an HTTP header")]
    InvalidHeader(String),
    #[error("the console provider is not enabled on this deployment (FOCO_CONSOLE_PROVIDER)")]
    ConsoleDisabled,
}

/// A provider ready to send for one route.
#[derive(Debug, Clone)]
pub enum Provider {
    Console(ConsoleProvider),
    Http(HttpProvider),
    Twilio(TwilioProvider),
    Vonage(VonageProvider),
    Infobip(InfobipProvider),
    SmsMasivos(SmsMasivosProvider),
    Telnyx(TelnyxProvider),
}

impl Provider {
    /// The catalog's kind of this adapter.
    pub fn provider_kind(&self) -> ProviderKind {
        match self {
            Self::Console(_) => ProviderKind::Console,
            Self::Http(_) => ProviderKind::Http,
            Self::Twilio(_) => ProviderKind::Twilio,
            Self::Vonage(_) => ProviderKind::Vonage,
            Self::Infobip(_) => ProviderKind::Infobip,
            Self::SmsMasivos(_) => ProviderKind::SmsMasivos,
            Self::Telnyx(_) => ProviderKind::Telnyx,
        }
    }

    /// The provider kind's id, a bounded set (used as a metrics label).
    pub fn kind(&self) -> &'static str {
        self.provider_kind().id()
    }

    /// What calling again with the same job id does: whether a call whose
    /// outcome is unknown may be made again safely.
    pub fn repeat(&self) -> Repeat {
        match self.provider_kind().spec().idempotency {
            Idempotency::Always => Repeat::Deduplicated,
            Idempotency::Never => Repeat::MaySendTwice,
            // Only the generic gateway lets the route say (its adapter reads it).
            Idempotency::WhenSetting(_) => match self {
                Self::Http(provider) => provider.repeat(),
                _ => Repeat::MaySendTwice,
            },
        }
    }

    pub async fn send(&self, message: &OutboundSms) -> ProviderOutcome {
        match self {
            Self::Console(provider) => provider.send(message).await,
            Self::Http(provider) => provider.send(message).await,
            Self::Twilio(provider) => provider.send(message).await,
            Self::Vonage(provider) => provider.send(message).await,
            Self::Infobip(provider) => provider.send(message).await,
            Self::SmsMasivos(provider) => provider.send(message).await,
            Self::Telnyx(provider) => provider.send(message).await,
        }
    }
}

const USER_AGENT: &str = concat!("foco-sender/", env!("CARGO_PKG_VERSION"));

/// What providers share: the HTTP client (TLS, timeouts, SSRF guard) and the
/// console outbox, when the operator enabled the console provider.
#[derive(Clone)]
pub struct Providers {
    client: reqwest::Client,
    allow_private_hosts: bool,
    console_outbox: Option<PathBuf>,
    /// Serialises appends to outbox files so JSON lines never interleave.
    console_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Providers {
    pub fn new(
        provider_timeout: Duration,
        allow_private_hosts: bool,
        console_outbox: Option<PathBuf>,
    ) -> Result<Self, ClientBuildError> {
        Ok(Self {
            client: build_http_client(provider_timeout, allow_private_hosts, USER_AGENT)?,
            allow_private_hosts,
            console_outbox,
            console_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The provider a route describes. Cheap: adapters share the HTTP client.
    pub fn for_route(&self, route: &ResolvedRoute) -> Result<Provider, RouteConfigError> {
        let empty = HashMap::new();
        let (kind, settings) = match &route.route {
            Some(route) => (route.kind.as_str(), &route.settings),
            None => ("", &empty),
        };
        let credentials = &route.credentials;
        let client = || self.client.clone();
        let private = self.allow_private_hosts;
        let Some(kind) = ProviderKind::from_id(kind) else {
            return Err(RouteConfigError::UnknownKind(kind.to_owned()));
        };
        Ok(match kind {
            ProviderKind::Console => match &self.console_outbox {
                Some(outbox) => {
                    Provider::Console(ConsoleProvider::new(outbox, self.console_lock.clone()))
                }
                None => return Err(RouteConfigError::ConsoleDisabled),
            },
            ProviderKind::Http => {
                Provider::Http(HttpProvider::new(client(), settings, credentials, private)?)
            }
            ProviderKind::Twilio => Provider::Twilio(TwilioProvider::new(
                client(),
                settings,
                credentials,
                private,
            )?),
            ProviderKind::Vonage => Provider::Vonage(VonageProvider::new(
                client(),
                settings,
                credentials,
                private,
            )?),
            ProviderKind::Infobip => Provider::Infobip(InfobipProvider::new(
                client(),
                settings,
                credentials,
                private,
            )?),
            ProviderKind::SmsMasivos => Provider::SmsMasivos(SmsMasivosProvider::new(
                client(),
                settings,
                credentials,
                private,
            )?),
            ProviderKind::Telnyx => Provider::Telnyx(TelnyxProvider::new(
                client(),
                settings,
                credentials,
                private,
            )?),
        })
    }
}

/// A setting, treating an empty value as absent.
fn setting<'a>(settings: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    settings
        .get(name)
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
}

/// A setting, or the catalog's default for the kind (empty when it has none).
fn setting_or_default<'a>(
    kind: ProviderKind,
    settings: &'a HashMap<String, String>,
    name: &str,
) -> &'a str {
    setting(settings, name)
        .or_else(|| kind.spec().default_of(name))
        .unwrap_or_default()
}

/// A credential, which may also be given as a setting when it is not secret
/// (account ids); the credential wins.
fn credential<'a>(
    credentials: &'a HashMap<String, String>,
    settings: &'a HashMap<String, String>,
    name: &'static str,
) -> Result<&'a str, RouteConfigError> {
    setting(credentials, name)
        .or_else(|| setting(settings, name))
        .ok_or(RouteConfigError::MissingCredential(name))
}

/// Parses and checks a URL setting against the SSRF rules.
fn url_setting(
    value: &str,
    setting_name: &'static str,
    allow_private_hosts: bool,
) -> Result<url::Url, RouteConfigError> {
    let url = url::Url::parse(value).map_err(|_| RouteConfigError::InvalidUrl {
        setting: setting_name,
    })?;
    guard::check_url(&url, allow_private_hosts).map_err(|reason| RouteConfigError::RefusedUrl {
        setting: setting_name,
        reason,
    })?;
    Ok(url)
}

/// `base_url` (or the kind's default) with `segments` appended as path segments.
fn endpoint(
    kind: ProviderKind,
    settings: &HashMap<String, String>,
    segments: &[&str],
    allow_private_hosts: bool,
) -> Result<url::Url, RouteConfigError> {
    let base = setting_or_default(kind, settings, BASE_URL);
    let mut url = url_setting(base, BASE_URL, allow_private_hosts)?;
    url.path_segments_mut()
        .map_err(|_| RouteConfigError::InvalidUrl { setting: BASE_URL })?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// The job's from override, else the route's `from` setting.
fn from_or<'a>(message: &'a OutboundSms, default_from: &'a str) -> &'a str {
    if message.from.is_empty() {
        default_from
    } else {
        message.from.as_str()
    }
}
