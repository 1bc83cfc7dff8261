//! Webhook signature verification. Every scheme checks the raw request bytes exactly
//! as received (never the normalised JSON), tries every configured secret (two are
//! valid while a secret is rotated) and compares in constant time.
//!
//! A scheme is a small type implementing [`SignatureScheme`]; [`Verifier`] is the
//! closed set of schemes a source can name (control's presets choose one). The
//! handler does not change when a scheme is added.

mod digest;
mod generic;
mod hmac_sha256;
mod hubspot;
mod mercadopago;
mod standard_webhooks;
mod timestamped;
mod token;

use axum::http::{HeaderMap, HeaderName};
use foco_proto::v1::{Verification, verification};

pub use digest::{Algorithm, hmac, hmac_sha256, matches_any};
pub(crate) use digest::{md5, sha256};
pub use generic::GenericHmac;
pub use hmac_sha256::{HmacSha256Header, SignatureEncoding};
pub use hubspot::HubspotV3;
#[cfg(test)]
pub(crate) use hubspot::decode_uri as hubspot_decode_uri;
pub use mercadopago::MercadoPago;
pub use standard_webhooks::{
    StandardWebhooks, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
    sign as sign_standard_webhooks,
};
pub use timestamped::TimestampedV1;

/// Sign like the senders do: for tests, fixtures and the benchmark.
pub mod signing {
    pub use super::hubspot::sign as hubspot_v3;
    pub use super::mercadopago::sign as mercadopago;
    pub use super::standard_webhooks::sign as standard_webhooks;
    pub use super::timestamped::sign as stripe;
    pub use super::timestamped::sign as calendly;
    pub use crate::providers::telnyx::signature::sign as telnyx;
    pub use crate::providers::twilio::signature::signature as twilio;
    pub use crate::providers::vonage::signature::sign as vonage;
}
// Schemes of SMS providers live with the rest of each provider's callback
// (`crate::providers::<kind>`); Twilio's also verifies sources with its preset.
pub use crate::providers::infobip::signature::InfobipSecret;
pub use crate::providers::telnyx::signature::TelnyxSignature;
pub use crate::providers::twilio::signature::TwilioSignature;
pub use crate::providers::vonage::signature::{VonageMethod, VonageSignature};
pub(crate) use token::is_one_of;
pub use token::{BasicAuth, StaticToken};

/// Tolerance of timestamped schemes when the source sets none.
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;

/// What a scheme sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub headers: &'a HeaderMap,
    /// The body bytes exactly as received.
    pub raw_body: &'a [u8],
    /// Wall-clock time used for timestamp tolerance checks (a parameter so tests
    /// are deterministic).
    pub now_unix_seconds: i64,
    /// The request method, e.g. "POST" (HubSpot signs it).
    pub method: &'a str,
    /// Path and query as received.
    pub path_and_query: &'a str,
    /// The externally visible base URL (`FOCO_PUBLIC_URL`), without a trailing `/`.
    pub public_base: Option<&'a str>,
}

impl<'a> SignedRequest<'a> {
    /// A `POST /` with no configured public URL; callers set the other fields.
    pub fn new(headers: &'a HeaderMap, raw_body: &'a [u8], now_unix_seconds: i64) -> Self {
        Self {
            headers,
            raw_body,
            now_unix_seconds,
            method: "POST",
            path_and_query: "/",
            public_base: None,
        }
    }

    /// The URL the sender called, as it signs it: the public base (configured, or
    /// rebuilt from the forwarding headers a proxy adds, else `Host`) followed by
    /// the path and query as received.
    pub fn public_url(&self) -> String {
        if let Some(base) = self.public_base {
            return format!("{base}{}", self.path_and_query);
        }
        let first_value = |name: &str| {
            self.headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        let scheme = first_value("x-forwarded-proto").unwrap_or("http");
        let host = first_value("x-forwarded-host")
            .or_else(|| first_value("host"))
            .unwrap_or("localhost");
        format!("{scheme}://{host}{}", self.path_and_query)
    }

    /// The query string, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.path_and_query
            .split_once('?')
            .map(|(_, query)| query)
            .filter(|query| !query.is_empty())
    }
}

/// Why a request's signature was refused. Every variant answers 401; the variants
/// exist for metrics, logs and a helpful (but safe) problem detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header {0} is missing")]
    MissingHeader(HeaderName),
    #[error("the signature header {0} is malformed")]
    Malformed(HeaderName),
    /// Schemes that sign with request parameters (Vonage's `sig`, `timestamp`).
    #[error("the signature parameter {0} is missing")]
    MissingParameter(&'static str),
    #[error("the signature parameter {0} is malformed")]
    MalformedParameter(&'static str),
    #[error("no signature matches the request")]
    Mismatch,
    #[error("the webhook timestamp is outside the tolerance of {tolerance_seconds} seconds")]
    Stale { tolerance_seconds: u64 },
    /// The source names a scheme but has no secret: an operator's mistake, refused
    /// rather than silently accepted.
    #[error("the source has a signature scheme but no usable signing secret")]
    NoSecret,
    /// The source's verification settings cannot be used (for example an empty
    /// header name).
    #[error("the source's verification settings are invalid: {0}")]
    Misconfigured(&'static str),
}

impl SignatureError {
    /// Errors that point at the source's configuration rather than at the sender.
    pub fn is_misconfiguration(&self) -> bool {
        matches!(self, Self::NoSecret | Self::Misconfigured(_))
    }
}

/// One signature scheme.
pub trait SignatureScheme {
    /// Headers that carry the signature; they are not copied into the envelope.
    fn signature_headers(&self) -> Vec<HeaderName>;

    /// Accepts the request when any of `secrets` produced one of its signatures.
    fn verify(&self, request: &SignedRequest<'_>, secrets: &[String])
    -> Result<(), SignatureError>;

    /// The sender's own event id when the scheme defines where it lives (Standard
    /// Webhooks' `webhook-id`); used when the source does not name one.
    fn default_event_id(&self, _headers: &HeaderMap) -> Option<String> {
        None
    }

    /// Whether a verified request could be sent again under a new event id read
    /// from `id_header`, and verify: the signature covers the body but neither
    /// that header nor a timestamp (Shopify, WooCommerce and GitHub sign the body
    /// alone). The body is then what names the event (see `routes::hooks`).
    /// False for schemes that sign a timestamp (a copy goes stale) or the id,
    /// and for those that sign nothing (whoever holds a captured request holds
    /// the credential, and can send any body).
    fn replayable_under_new_id(&self, _id_header: &HeaderName) -> bool {
        false
    }
}

/// The verification a source asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verifier {
    None,
    StandardWebhooks(StandardWebhooks),
    HmacSha256(HmacSha256Header),
    Stripe(TimestampedV1),
    Calendly(TimestampedV1),
    HubspotV3(HubspotV3),
    MercadoPago(MercadoPago),
    Twilio(TwilioSignature),
    StaticToken(StaticToken),
    BasicAuth(BasicAuth),
    Generic(GenericHmac),
}

impl Verifier {
    /// An unset verification means none: the source accepts unsigned requests.
    pub fn from_proto(verification: Option<&Verification>) -> Self {
        use verification::Scheme;
        match verification.and_then(|verification| verification.scheme.as_ref()) {
            None | Some(Scheme::None(_)) => Self::None,
            Some(Scheme::StandardWebhooks(settings)) => {
                Self::StandardWebhooks(StandardWebhooks::from_proto(settings))
            }
            Some(Scheme::HmacSha256(settings)) => {
                Self::HmacSha256(HmacSha256Header::from_proto(settings))
            }
            Some(Scheme::Stripe(settings)) => {
                Self::Stripe(TimestampedV1::stripe(settings.tolerance_seconds))
            }
            Some(Scheme::Calendly(settings)) => {
                Self::Calendly(TimestampedV1::calendly(settings.tolerance_seconds))
            }
            Some(Scheme::HubspotV3(settings)) => {
                Self::HubspotV3(HubspotV3::new(settings.tolerance_seconds))
            }
            Some(Scheme::Mercadopago(settings)) => {
                Self::MercadoPago(MercadoPago::new(settings.tolerance_seconds))
            }
            Some(Scheme::Twilio(_)) => Self::Twilio(TwilioSignature),
            Some(Scheme::StaticToken(settings)) => {
                Self::StaticToken(StaticToken::from_proto(settings))
            }
            Some(Scheme::BasicAuth(_)) => Self::BasicAuth(BasicAuth),
            Some(Scheme::GenericHmac(settings)) => Self::Generic(GenericHmac::from_proto(settings)),
        }
    }

    fn scheme(&self) -> Option<&dyn SignatureScheme> {
        match self {
            Self::None => None,
            Self::StandardWebhooks(scheme) => Some(scheme),
            Self::HmacSha256(scheme) => Some(scheme),
            Self::Stripe(scheme) | Self::Calendly(scheme) => Some(scheme),
            Self::HubspotV3(scheme) => Some(scheme),
            Self::MercadoPago(scheme) => Some(scheme),
            Self::Twilio(scheme) => Some(scheme),
            Self::StaticToken(scheme) => Some(scheme),
            Self::BasicAuth(scheme) => Some(scheme),
            Self::Generic(scheme) => Some(scheme),
        }
    }

    /// A short, stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StandardWebhooks(_) => "standard-webhooks",
            Self::HmacSha256(_) => "hmac-sha256",
            Self::Stripe(_) => "stripe",
            Self::Calendly(_) => "calendly",
            Self::HubspotV3(_) => "hubspot-v3",
            Self::MercadoPago(_) => "mercadopago",
            Self::Twilio(_) => "twilio",
            Self::StaticToken(_) => "static-token",
            Self::BasicAuth(_) => "basic-auth",
            Self::Generic(_) => "generic-hmac",
        }
    }

    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let Some(scheme) = self.scheme() else {
            return Ok(());
        };
        // An empty secret would make every HMAC forgeable by anyone who knows it is
        // empty, so it counts as no secret at all.
        if secrets.iter().all(|secret| secret.trim().is_empty()) {
            return Err(SignatureError::NoSecret);
        }
        if secrets.iter().any(|secret| secret.trim().is_empty()) {
            let usable: Vec<String> = secrets
                .iter()
                .filter(|secret| !secret.trim().is_empty())
                .cloned()
                .collect();
            return scheme.verify(request, &usable);
        }
        scheme.verify(request, secrets)
    }

    pub fn signature_headers(&self) -> Vec<HeaderName> {
        self.scheme()
            .map(SignatureScheme::signature_headers)
            .unwrap_or_default()
    }

    pub fn default_event_id(&self, headers: &HeaderMap) -> Option<String> {
        self.scheme()
            .and_then(|scheme| scheme.default_event_id(headers))
    }

    pub fn replayable_under_new_id(&self, id_header: &HeaderName) -> bool {
        self.scheme()
            .is_some_and(|scheme| scheme.replayable_under_new_id(id_header))
    }
}

/// The value of a header as text, or `Malformed` when it is not visible ASCII.
pub(crate) fn header_text<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<&'a str, SignatureError> {
    let value = headers
        .get(name)
        .ok_or_else(|| SignatureError::MissingHeader(name.clone()))?;
    let text = value
        .to_str()
        .map_err(|_| SignatureError::Malformed(name.clone()))?
        .trim();
    if text.is_empty() {
        return Err(SignatureError::MissingHeader(name.clone()));
    }
    Ok(text)
}

/// Refuses a timestamp (unix seconds) further than `tolerance_seconds` from now, in
/// either direction: too old is a replay, too far ahead is a forged clock.
pub(crate) fn check_freshness(
    timestamp_seconds: i64,
    now_unix_seconds: i64,
    tolerance_seconds: u64,
) -> Result<(), SignatureError> {
    if now_unix_seconds.abs_diff(timestamp_seconds) > tolerance_seconds {
        return Err(SignatureError::Stale { tolerance_seconds });
    }
    Ok(())
}

/// Seconds from a unix timestamp in seconds or, when it is too large to be
/// seconds (after the year 33658), milliseconds.
pub(crate) fn timestamp_seconds(text: &str) -> Option<i64> {
    let value: i64 = text.trim().parse().ok()?;
    Some(if value > 1_000_000_000_000 {
        value / 1000
    } else {
        value
    })
}

/// `0` means the default tolerance.
pub(crate) fn tolerance_or_default(tolerance_seconds: u32) -> u64 {
    if tolerance_seconds == 0 {
        DEFAULT_TOLERANCE_SECONDS
    } else {
        u64::from(tolerance_seconds)
    }
}

/// `text` without `prefix`, compared without regard to ASCII case.
pub(crate) fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(text);
    }
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
pub(crate) mod test_support {

    pub use foco_testkit::fixture;

    pub fn secrets(secrets: &[&str]) -> Vec<String> {
        secrets.iter().map(|secret| (*secret).to_owned()).collect()
    }

    /// Owned (name, value) parameters, as a form or query is parsed.
    pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    /// A header map with one header.
    pub fn with(name: &axum::http::HeaderName, value: &str) -> axum::http::HeaderMap {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(name.clone(), value.parse().unwrap());
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_verification_is_none_and_needs_no_secret() {
        let verifier = Verifier::from_proto(None);
        assert_eq!(verifier, Verifier::None);
        let headers = HeaderMap::new();
        let request = SignedRequest::new(&headers, b"{}", 0);
        assert_eq!(verifier.verify(&request, &[]), Ok(()));
        assert!(verifier.signature_headers().is_empty());
    }

    #[test]
    fn a_scheme_without_secret_is_refused() {
        let verifier = Verifier::HmacSha256(HmacSha256Header::new(
            HeaderName::from_static("x-signature"),
            SignatureEncoding::Hex,
            "",
        ));
        let headers = HeaderMap::new();
        let request = SignedRequest::new(&headers, b"{}", 0);
        assert_eq!(
            verifier.verify(&request, &[]),
            Err(SignatureError::NoSecret)
        );
        assert_eq!(
            verifier.verify(&request, &["  ".to_owned()]),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn public_url_prefers_the_configured_base_then_forwarding_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "10.0.0.5:8080".parse().unwrap());
        let mut request = SignedRequest::new(&headers, b"", 0);
        request.path_and_query = "/v1/hooks/t?x=1";
        assert_eq!(request.public_url(), "http://10.0.0.5:8080/v1/hooks/t?x=1");
        assert_eq!(request.query(), Some("x=1"));

        headers.insert("x-forwarded-proto", "https, http".parse().unwrap());
        headers.insert("x-forwarded-host", "hooks.example.com".parse().unwrap());
        let mut request = SignedRequest::new(&headers, b"", 0);
        request.path_and_query = "/v1/hooks/t";
        assert_eq!(request.public_url(), "https://hooks.example.com/v1/hooks/t");
        assert_eq!(request.query(), None);

        request.public_base = Some("https://api.example.com/foco");
        assert_eq!(
            request.public_url(),
            "https://api.example.com/foco/v1/hooks/t"
        );
    }

    #[test]
    fn timestamps_in_seconds_or_milliseconds() {
        assert_eq!(timestamp_seconds("1700000000"), Some(1_700_000_000));
        assert_eq!(timestamp_seconds("1700000000123"), Some(1_700_000_000));
        assert_eq!(timestamp_seconds("soon"), None);
        assert!(check_freshness(1000, 1300, 300).is_ok());
        assert!(check_freshness(1000, 1301, 300).is_err());
        assert!(check_freshness(1301, 1000, 300).is_err());
    }
}
