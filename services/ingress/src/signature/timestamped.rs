//! The `t=<unix>,v1=<hex>` family: Stripe (`Stripe-Signature`) and Calendly
//! (`Calendly-Webhook-Signature`) both sign `"<t>.<raw body>"` with HMAC-SHA256,
//! send it hex-encoded, and may list several `v1` entries (Stripe does while a
//! secret is rolled). The secret is used verbatim, `whsec_` prefix included.

use axum::http::HeaderName;

use super::{
    SignatureError, SignatureScheme, SignedRequest, check_freshness, header_text, hmac_sha256,
    matches_any, tolerance_or_default,
};

pub const STRIPE_SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");
pub const CALENDLY_SIGNATURE: HeaderName = HeaderName::from_static("calendly-webhook-signature");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampedV1 {
    header: HeaderName,
    tolerance_seconds: u64,
}

impl TimestampedV1 {
    /// `tolerance_seconds == 0` means the default of 300.
    pub fn stripe(tolerance_seconds: u32) -> Self {
        Self {
            header: STRIPE_SIGNATURE,
            tolerance_seconds: tolerance_or_default(tolerance_seconds),
        }
    }

    pub fn calendly(tolerance_seconds: u32) -> Self {
        Self {
            header: CALENDLY_SIGNATURE,
            tolerance_seconds: tolerance_or_default(tolerance_seconds),
        }
    }
}

/// The timestamp text and the decoded `v1` signatures of a header value.
fn parse(value: &str) -> Option<(&str, Vec<Vec<u8>>)> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',') {
        let Some((key, text)) = item.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            // Two timestamps would make it ambiguous which one was signed.
            "t" if timestamp.is_some() => return None,
            "t" => timestamp = Some(text.trim()),
            // Other schemes (Stripe's test-mode `v0`) are ignored, not refused.
            "v1" => {
                if let Ok(signature) = hex::decode(text.trim()) {
                    signatures.push(signature);
                }
            }
            _ => {}
        }
    }
    Some((timestamp?, signatures))
}

impl SignatureScheme for TimestampedV1 {
    fn signature_headers(&self) -> Vec<HeaderName> {
        vec![self.header.clone()]
    }

    fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let value = header_text(request.headers, &self.header)?;
        let malformed = || SignatureError::Malformed(self.header.clone());
        let (timestamp_text, candidates) = parse(value).ok_or_else(malformed)?;
        let timestamp: i64 = timestamp_text.parse().map_err(|_| malformed())?;
        if candidates.is_empty() {
            return Err(malformed());
        }
        check_freshness(timestamp, request.now_unix_seconds, self.tolerance_seconds)?;
        let mut matched = false;
        for secret in secrets {
            let expected = hmac_sha256(
                secret.trim().as_bytes(),
                &[timestamp_text.as_bytes(), b".", request.raw_body],
            );
            matched |= matches_any(&expected, &candidates);
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// Signs like Stripe or Calendly; used by tests and the benchmark.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]);
    format!("t={timestamp},v1={}", hex::encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::{fixture, secrets};
    use axum::http::HeaderMap;

    const T: i64 = 1_700_000_000;

    fn check(
        scheme: &TimestampedV1,
        value: &str,
        body: &[u8],
        now: i64,
        keys: &[&str],
    ) -> Result<(), SignatureError> {
        let mut headers = HeaderMap::new();
        headers.insert(scheme.header.clone(), value.parse().unwrap());
        scheme.verify(&SignedRequest::new(&headers, body, now), &secrets(keys))
    }

    #[test]
    fn stripe_fixture_vector() {
        let body = fixture("stripe__checkout_session_completed.json");
        let header =
            "t=1700000000,v1=e4d224ff5b2982276b88012deba9c603a8007466f0e21455f5f099bed5ef0c1a";
        let stripe = TimestampedV1::stripe(0);
        assert_eq!(sign("whsec_test_secret", T, &body), header);
        assert_eq!(
            check(&stripe, header, &body, T + 10, &["whsec_test_secret"]),
            Ok(())
        );
        let mut tampered = body.clone();
        tampered[20] ^= 1;
        assert_eq!(
            check(&stripe, header, &tampered, T, &["whsec_test_secret"]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&stripe, header, &body, T + 301, &["whsec_test_secret"]),
            Err(SignatureError::Stale {
                tolerance_seconds: 300
            })
        );
        assert_eq!(
            check(&stripe, header, &body, T, &["whsec_other"]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn several_v1_entries_and_rotated_secrets() {
        let body = br#"{"id":"evt_1"}"#;
        let old = sign("whsec_old", T, body);
        let new = sign("whsec_new", T, body);
        let both = format!("{},v1={},v0=abc", new, old.rsplit("v1=").next().unwrap());
        let stripe = TimestampedV1::stripe(0);
        assert_eq!(check(&stripe, &both, body, T, &["whsec_old"]), Ok(()));
        assert_eq!(check(&stripe, &both, body, T, &["whsec_new"]), Ok(()));
        assert_eq!(
            check(&stripe, &old, body, T, &["whsec_new", "whsec_old"]),
            Ok(())
        );
    }

    #[test]
    fn calendly_uses_its_own_header_and_tolerance() {
        let body = br#"{"event":"invitee.created","payload":{}}"#;
        let calendly = TimestampedV1::calendly(180);
        let value = sign("signing-key", T, body);
        assert_eq!(
            check(&calendly, &value, body, T + 180, &["signing-key"]),
            Ok(())
        );
        assert_eq!(
            check(&calendly, &value, body, T + 181, &["signing-key"]),
            Err(SignatureError::Stale {
                tolerance_seconds: 180
            })
        );
        assert_eq!(calendly.signature_headers(), vec![CALENDLY_SIGNATURE]);
    }

    #[test]
    fn malformed_headers() {
        let stripe = TimestampedV1::stripe(0);
        for value in [
            "v1=abcd",
            "t=soon,v1=abcd",
            "t=1700000000",
            "t=1,t=2,v1=ab",
            "garbage",
        ] {
            assert_eq!(
                check(&stripe, value, b"{}", T, &["k"]),
                Err(SignatureError::Malformed(STRIPE_SIGNATURE)),
                "{value}"
            );
        }
    }
}
