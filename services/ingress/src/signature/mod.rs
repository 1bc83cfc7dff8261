//! Webhook signature verification. Every scheme checks the raw request bytes exactly
//! as received (never the normalised JSON), tries every configured secret (two are
//! valid while a secret is rotated) and compares in constant time.
//!
//! A scheme is a small type implementing [`SignatureScheme`]; [`Verifier`] is the
//! closed set of schemes a source can name. Sender presets (Stripe, Shopify, GitHub,
//! Twilio, ...) are new variants and modules here; the handler does not change.

mod hmac_sha256;
mod standard_webhooks;

use axum::http::{HeaderMap, HeaderName};
use foco_proto::v1::{Verification, verification};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

pub use hmac_sha256::{HmacSha256Header, SignatureEncoding};
pub use standard_webhooks::{
    StandardWebhooks, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
    sign as sign_standard_webhooks,
};

/// What a scheme sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub headers: &'a HeaderMap,
    /// The body bytes exactly as received.
    pub raw_body: &'a [u8],
    /// Wall-clock time used for timestamp tolerance checks (a parameter so tests
    /// are deterministic).
    pub now_unix_seconds: i64,
}

/// Why a request's signature was refused. Every variant answers 401; the variants
/// exist for metrics, logs and a helpful (but safe) problem detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header {0} is missing")]
    MissingHeader(HeaderName),
    #[error("the signature header {0} is malformed")]
    Malformed(HeaderName),
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
}

/// The verification a source asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verifier {
    None,
    StandardWebhooks(StandardWebhooks),
    HmacSha256(HmacSha256Header),
}

impl Verifier {
    /// An unset verification means none: the source accepts unsigned requests.
    pub fn from_proto(verification: Option<&Verification>) -> Self {
        match verification.and_then(|verification| verification.scheme.as_ref()) {
            None | Some(verification::Scheme::None(_)) => Self::None,
            Some(verification::Scheme::StandardWebhooks(settings)) => {
                Self::StandardWebhooks(StandardWebhooks::from_proto(settings))
            }
            Some(verification::Scheme::HmacSha256(settings)) => {
                Self::HmacSha256(HmacSha256Header::from_proto(settings))
            }
        }
    }

    fn scheme(&self) -> Option<&dyn SignatureScheme> {
        match self {
            Self::None => None,
            Self::StandardWebhooks(scheme) => Some(scheme),
            Self::HmacSha256(scheme) => Some(scheme),
        }
    }

    /// A short, stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StandardWebhooks(_) => "standard-webhooks",
            Self::HmacSha256(_) => "hmac-sha256",
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
        let usable: Vec<String> = secrets
            .iter()
            .filter(|secret| !secret.trim().is_empty())
            .cloned()
            .collect();
        if usable.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        scheme.verify(request, &usable)
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
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether any candidate equals `expected`, in time that does not depend on where
/// (or whether) they differ.
pub(crate) fn matches_any(expected: &[u8], candidates: &[Vec<u8>]) -> bool {
    let mut found = Choice::from(0);
    for candidate in candidates {
        found |= expected.ct_eq(candidate.as_slice());
    }
    found.into()
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

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    /// The bytes of a shared webhook fixture: the crate's own copy first, so tests
    /// never depend on the sibling `shared/` folder, then that folder, then
    /// `FOCO_FIXTURES_DIR`.
    pub fn fixture(name: &str) -> Vec<u8> {
        let candidates = [
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")),
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures/webhooks"
            )),
        ]
        .into_iter()
        .chain(std::env::var_os("FOCO_FIXTURES_DIR").map(PathBuf::from));
        for dir in candidates {
            if let Ok(bytes) = std::fs::read(dir.join(name)) {
                return bytes;
            }
        }
        panic!(
            "fixture {name} not found in tests/fixtures, shared/fixtures/webhooks or FOCO_FIXTURES_DIR"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_match_handles_lengths_and_several_candidates() {
        assert!(matches_any(b"abc", &[b"xyz".to_vec(), b"abc".to_vec()]));
        assert!(!matches_any(b"abc", &[b"ab".to_vec(), b"abcd".to_vec()]));
        assert!(!matches_any(b"abc", &[]));
    }

    #[test]
    fn unset_verification_is_none_and_needs_no_secret() {
        let verifier = Verifier::from_proto(None);
        assert_eq!(verifier, Verifier::None);
        let headers = HeaderMap::new();
        let request = SignedRequest {
            headers: &headers,
            raw_body: b"{}",
            now_unix_seconds: 0,
        };
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
        let request = SignedRequest {
            headers: &headers,
            raw_body: b"{}",
            now_unix_seconds: 0,
        };
        assert_eq!(
            verifier.verify(&request, &[]),
            Err(SignatureError::NoSecret)
        );
        assert_eq!(
            verifier.verify(&request, &["  ".to_owned()]),
            Err(SignatureError::NoSecret)
        );
    }
}
