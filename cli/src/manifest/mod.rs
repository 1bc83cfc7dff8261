//! The configuration file `foco apply` reads (the shape is documented in the crate
//! root), and its translation into control API requests.
//!
//! Loading is in two steps: [`Manifest::load`] parses and checks the structure
//! (unknown keys are errors, with the YAML path and line); [`Manifest::resolve`]
//! reads `env:NAME` values and checks what spans several entries (duplicate names,
//! one default provider), producing a [`Plan`] of requests.

mod provider;
mod resolve;
mod schedule;
mod source;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use provider::{ProviderSpec, kinds_help};
pub use resolve::{Located, Plan, PlannedSource};
pub use schedule::{BodyEncodingSpec, CapSpec, OnRepeatSpec};
pub use source::{
    AlgorithmSpec, ContentTypeSpec, GenericSignatureSpec, PresetSpec, RateLimitDetail,
    RateLimitSpec,
};

/// A problem in the file, named by the file's path and the YAML location.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Structure errors; serde's message carries the YAML path, line and column.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: {location}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        location: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The account name; created if it does not exist.
    pub account: String,
    /// ISO 3166-1 alpha-2 country for reading local phone numbers, e.g. `MX`.
    pub default_country: String,
    /// IANA time zone, e.g. `America/Mexico_City`.
    pub timezone: String,
    /// At most this many SMS a day for the whole account; absent: no cap.
    #[serde(default)]
    pub daily_sms_cap: Option<u32>,
    /// How long after its due time a job without its own `valid_for` may still
    /// go out, e.g. `4h`; absent: the built-in default (1h).
    #[serde(default)]
    pub default_valid_for: Option<String>,
    /// The source (one of `sources`, by name) that SMS the account receives
    /// become `sms.inbound` events of; absent: none.
    #[serde(default)]
    pub inbound_source: Option<String>,
    #[serde(default)]
    pub providers: Vec<ProviderSpec>,
    #[serde(default)]
    pub sources: Vec<SourceSpec>,
    /// Message templates `SendMessage` renders by name.
    #[serde(default)]
    pub templates: Vec<TemplateSpec>,
    /// Status webhook endpoints, by name. Absent: the account's endpoints are
    /// left alone (even by `--prune`); present, `--prune` deletes the ones
    /// not listed.
    #[serde(default)]
    pub endpoints: Option<Vec<EndpointSpec>>,
    #[serde(skip)]
    pub path: PathBuf,
}

/// A status webhook endpoint: where the account's status changes are POSTed,
/// signed as the Standard Webhooks specification says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    pub name: String,
    pub url: String,
    /// Only these event types; absent or empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `env:NAME` of a `whsec_` secret to sign with; absent: control makes
    /// one when it creates the endpoint (printed once) and keeps it.
    #[serde(default)]
    pub secret: Option<String>,
}

/// A message template: a body over the variables a send gives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub name: String,
    pub body: String,
    #[serde(default)]
    pub encoding: Option<BodyEncodingSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: String,
    /// A sender preset (`shopify`, `stripe`, ...): its signature scheme, where its
    /// event type and id live, and its content type. Excludes `verify`.
    #[serde(default)]
    pub preset: Option<PresetSpec>,
    /// The `generic` preset's signature settings.
    #[serde(default)]
    pub signature: Option<GenericSignatureSpec>,
    /// How webhooks are verified; absent means not at all (or the preset's).
    #[serde(default)]
    pub verify: Option<VerifySpec>,
    /// Signing secret (usually `env:NAME`). Absent keeps the stored one.
    #[serde(default)]
    pub secret: Option<String>,
    /// Every valid secret, current first (at most 2): replaces the stored ones.
    /// Excludes `secret`.
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    /// Timestamp tolerance of a timestamped preset, e.g. `10m` (default 5m, at
    /// most 24h: control refuses more).
    #[serde(default)]
    pub tolerance: Option<String>,
    /// How bodies without a usable Content-Type are read: `json` or `form`.
    #[serde(default)]
    pub content_type: Option<ContentTypeSpec>,
    /// Webhooks a second per ingress replica: `100/s`, `6000/m`, or
    /// `{ per_second: 100, burst: 500 }`.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// `header:<Name>` or `body:<path>`.
    #[serde(default)]
    pub event_type: Option<String>,
    /// `header:<Name>` or `body:<path>`; absent: a hash of the body.
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub max_body_bytes: Option<u32>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case", deny_unknown_fields)]
pub enum VerifySpec {
    None,
    StandardWebhooks {
        #[serde(default)]
        tolerance_seconds: u32,
    },
    #[serde(rename = "hmac-sha256")]
    HmacSha256 {
        header: String,
        encoding: EncodingSpec,
        #[serde(default)]
        prefix: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingSpec {
    Hex,
    Base64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    /// CEL condition; absent means every event.
    #[serde(default)]
    pub when: Option<String>,
    /// Phone numbers or templates (`env:NAME` allowed).
    pub to: Vec<String>,
    /// minijinja template.
    pub body: String,
    /// Provider name; absent means the account's default.
    #[serde(default)]
    pub provider: Option<String>,
    /// Sender id or from number (`env:NAME` allowed).
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub priority: Option<PrioritySpec>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Wait after the event, e.g. `30m`, `5d`.
    #[serde(default)]
    pub delay: Option<String>,
    /// Template rendering the send time (RFC 3339, or local `YYYY-MM-DD HH:MM`).
    #[serde(default)]
    pub send_at: Option<String>,
    /// How long after its due time a job may still go out, e.g. `2h`; later it
    /// is recorded `expired`, never sent. Absent: the account's default.
    #[serde(default)]
    pub valid_for: Option<String>,
    /// Correlation key template identifying the pending job.
    #[serde(default)]
    pub key: Option<String>,
    /// CEL condition over later events of the account that cancels pending jobs.
    #[serde(default)]
    pub cancel_when: Option<String>,
    /// Template rendered on the cancelling event; equal to `key` → cancelled.
    #[serde(default)]
    pub cancel_key: Option<String>,
    #[serde(default)]
    pub on_repeat: Option<OnRepeatSpec>,
    #[serde(default)]
    pub encoding: Option<BodyEncodingSpec>,
    #[serde(default)]
    pub max_segments: Option<u32>,
    /// Frequency cap per recipient.
    #[serde(default)]
    pub cap: Option<CapSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrioritySpec {
    Transactional,
    Marketing,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as if read from `path` (the path only names the file in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let mut manifest: Self =
            serde_norway::from_str(text).map_err(|error| ManifestError::Parse {
                path: path.to_owned(),
                message: error.to_string(),
            })?;
        manifest.path = path.to_owned();
        Ok(manifest)
    }

    pub(crate) fn invalid(
        &self,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> ManifestError {
        ManifestError::Invalid {
            path: self.path.clone(),
            location: location.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod source_tests;
