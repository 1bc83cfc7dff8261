//! SMS provider adapters. Each one turns an `OutboundSms` into one call to its
//! provider and maps the answer into the four outcomes the sender understands:
//! sent, transient failure (retry later, maybe after `Retry-After`), permanent
//! failure (with a reason), or unknown (the request may have been accepted; never
//! resent blindly).
//!
//! Providers are an enum rather than trait objects: the set is closed, known at
//! compile time, and an `async fn` per variant keeps the calls cheap and plain.

mod client;
mod console;
pub mod guard;
mod http;
mod response;
mod twilio;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use foco_proto::v1::ResolvedRoute;

pub use client::{ClientBuildError, build_http_client};
pub use console::ConsoleProvider;
pub use http::HttpProvider;
pub use twilio::TwilioProvider;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderOutcome {
    /// The provider accepted the message.
    Sent { provider_message_id: String },
    /// The provider did not take the message; try again later.
    Transient {
        retry_after: Option<Duration>,
        reason: String,
    },
    /// The provider refused the message; trying again would not help.
    Permanent { reason: String },
    /// The request may have reached the provider, but no answer came back.
    Unknown { reason: String },
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
    #[error("provider route setting {setting:?} is not a valid URL")]
    InvalidUrl { setting: &'static str },
    #[error("provider route setting {setting:?} is refused: {reason}")]
    RefusedUrl {
        setting: &'static str,
        reason: guard::UrlRefused,
    },
    #[error("provider route credential {0:?} cannot be sent as an HTTP header")]
    InvalidHeader(String),
}

/// A provider ready to send for one route.
#[derive(Debug, Clone)]
pub enum Provider {
    Console(ConsoleProvider),
    Http(HttpProvider),
    Twilio(TwilioProvider),
}

impl Provider {
    /// The provider kind, a bounded set (used as a metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Console(_) => "console",
            Self::Http(_) => "http",
            Self::Twilio(_) => "twilio",
        }
    }

    pub async fn send(&self, message: &OutboundSms) -> ProviderOutcome {
        match self {
            Self::Console(provider) => provider.send(message).await,
            Self::Http(provider) => provider.send(message).await,
            Self::Twilio(provider) => provider.send(message).await,
        }
    }
}

/// What providers share: the HTTP client (TLS, timeouts, SSRF guard) and the
/// console outbox.
#[derive(Clone)]
pub struct Providers {
    client: reqwest::Client,
    allow_private_hosts: bool,
    console_outbox: PathBuf,
    /// Serialises appends to outbox files so JSON lines never interleave.
    console_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Providers {
    pub fn new(
        provider_timeout: Duration,
        allow_private_hosts: bool,
        console_outbox: PathBuf,
    ) -> Result<Self, ClientBuildError> {
        Ok(Self {
            client: build_http_client(provider_timeout, allow_private_hosts)?,
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
        match kind {
            "console" => Ok(Provider::Console(ConsoleProvider::new(
                settings,
                &self.console_outbox,
                self.console_lock.clone(),
            ))),
            "http" => Ok(Provider::Http(HttpProvider::new(
                self.client.clone(),
                settings,
                credentials,
                self.allow_private_hosts,
            )?)),
            "twilio" => Ok(Provider::Twilio(TwilioProvider::new(
                self.client.clone(),
                settings,
                credentials,
                self.allow_private_hosts,
            )?)),
            other => Err(RouteConfigError::UnknownKind(other.to_owned())),
        }
    }
}

/// A setting, treating an empty value as absent.
fn setting<'a>(settings: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    settings
        .get(name)
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
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
