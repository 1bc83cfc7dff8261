//! Standard Webhooks (<https://www.standardwebhooks.com>): `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64> [v1,<base64> ...]`, where
//! each signature is base64(HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")) and the
//! key is the base64 part of a `whsec_…` secret.

use axum::http::{HeaderMap, HeaderName};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{
    DEFAULT_TOLERANCE_SECONDS, SignatureError, SignatureScheme, SignedRequest, check_freshness,
    header_text, hmac_sha256, matches_any,
};

pub const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
pub const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
pub const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardWebhooks {
    tolerance_seconds: u64,
}

impl StandardWebhooks {
    /// `tolerance_seconds == 0` means the specification's default of 300.
    pub fn new(tolerance_seconds: u64) -> Self {
        Self {
            tolerance_seconds: if tolerance_seconds == 0 {
                DEFAULT_TOLERANCE_SECONDS
            } else {
                tolerance_seconds
            },
        }
    }

    pub fn from_proto(settings: &foco_proto::v1::StandardWebhooks) -> Self {
        Self::new(u64::from(settings.tolerance_seconds))
    }
}

/// The HMAC key of a secret: base64-decoded after `whsec_`, else the raw bytes (some
/// senders hand out secrets without the prefix).
fn signing_key(secret: &str) -> Option<Vec<u8>> {
    match secret.trim().strip_prefix(SECRET_PREFIX) {
        Some(encoded) => BASE64.decode(encoded).ok(),
        None => Some(secret.as_bytes().to_vec()),
    }
}

impl SignatureScheme for StandardWebhooks {
    fn signature_headers(&self) -> Vec<HeaderName> {
        vec![WEBHOOK_SIGNATURE]
    }

    fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let id = header_text(request.headers, &WEBHOOK_ID)?;
        let timestamp_text = header_text(request.headers, &WEBHOOK_TIMESTAMP)?;
        let signatures = header_text(request.headers, &WEBHOOK_SIGNATURE)?;
        let timestamp: i64 = timestamp_text
            .parse()
            .map_err(|_| SignatureError::Malformed(WEBHOOK_TIMESTAMP))?;
        check_freshness(timestamp, request.now_unix_seconds, self.tolerance_seconds)?;
        // Other versions (such as the asymmetric `v1a`) are skipped, not refused:
        // a sender may list several.
        let candidates: Vec<Vec<u8>> = signatures
            .split(' ')
            .filter_map(|entry| entry.trim().strip_prefix("v1,"))
            .filter_map(|encoded| BASE64.decode(encoded).ok())
            .collect();
        if candidates.is_empty() {
            return Err(SignatureError::Malformed(WEBHOOK_SIGNATURE));
        }
        let keys: Vec<Vec<u8>> = secrets
            .iter()
            .filter_map(|secret| signing_key(secret))
            .collect();
        if keys.is_empty() {
            return Err(SignatureError::Misconfigured(
                "the signing secret is not valid whsec_ base64",
            ));
        }
        let mut matched = false;
        for key in &keys {
            let expected = hmac_sha256(
                key,
                &[
                    id.as_bytes(),
                    b".",
                    timestamp_text.as_bytes(),
                    b".",
                    request.raw_body,
                ],
            );
            matched |= matches_any(&expected, &candidates);
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    fn default_event_id(&self, headers: &HeaderMap) -> Option<String> {
        let id = headers.get(WEBHOOK_ID)?.to_str().ok()?.trim();
        (!id.is_empty()).then(|| id.to_owned())
    }
}

/// Signs like a Standard Webhooks sender; used by tests of this crate and its
/// integration tests.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = signing_key(secret).unwrap_or_default();
    let timestamp = timestamp.to_string();
    let mac = hmac_sha256(
        &key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    format!("v1,{}", BASE64.encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: i64 = 1_700_000_000;

    fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(WEBHOOK_ID, id.parse().unwrap());
        headers.insert(WEBHOOK_TIMESTAMP, timestamp.to_string().parse().unwrap());
        headers.insert(WEBHOOK_SIGNATURE, signature.parse().unwrap());
        headers
    }

    fn check(headers: &HeaderMap, body: &[u8], secrets: &[&str]) -> Result<(), SignatureError> {
        let request = SignedRequest::new(headers, body, NOW);
        let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
        StandardWebhooks::new(0).verify(&request, &secrets)
    }

    #[test]
    fn published_specification_vector() {
        // The example of the Standard Webhooks / Svix libraries' test suites.
        let body = br#"{"test": 2432232314}"#;
        let timestamp = 1_614_265_330;
        let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(
            sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp, body),
            signature
        );
        let request_headers = headers("msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp, signature);
        let request = SignedRequest::new(&request_headers, body, timestamp + 10);
        assert_eq!(
            StandardWebhooks::new(0).verify(&request, &[SECRET.to_owned()]),
            Ok(())
        );
    }

    #[test]
    fn round_trip_accepts_and_tampering_is_refused() {
        let body = br#"{"type":"user.created","data":{"id":1}}"#;
        let signature = sign(SECRET, "msg_1", NOW, body);
        assert_eq!(
            check(&headers("msg_1", NOW, &signature), body, &[SECRET]),
            Ok(())
        );

        let tampered = br#"{"type":"user.created","data":{"id":2}}"#;
        assert_eq!(
            check(&headers("msg_1", NOW, &signature), tampered, &[SECRET]),
            Err(SignatureError::Mismatch)
        );
        // The id and timestamp are signed too.
        assert_eq!(
            check(&headers("msg_2", NOW, &signature), body, &[SECRET]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let body = b"{}";
        let old = NOW - 301;
        let signature = sign(SECRET, "msg_1", old, body);
        assert_eq!(
            check(&headers("msg_1", old, &signature), body, &[SECRET]),
            Err(SignatureError::Stale {
                tolerance_seconds: 300
            })
        );
        let future = NOW + 301;
        let signature = sign(SECRET, "msg_1", future, body);
        assert!(matches!(
            check(&headers("msg_1", future, &signature), body, &[SECRET]),
            Err(SignatureError::Stale { .. })
        ));
        let edge = NOW - 300;
        let signature = sign(SECRET, "msg_1", edge, body);
        assert_eq!(
            check(&headers("msg_1", edge, &signature), body, &[SECRET]),
            Ok(())
        );
    }

    #[test]
    fn several_signatures_and_rotated_secrets() {
        let body = b"{}";
        let old_secret = "whsec_b2xkIHNlY3JldCBvbGQgc2VjcmV0";
        let signature = sign(old_secret, "msg_1", NOW, body);
        let listed = format!("v1a,c29tZXRoaW5n v1,AAAA {signature}");
        assert_eq!(
            check(&headers("msg_1", NOW, &listed), body, &[SECRET, old_secret]),
            Ok(())
        );
        assert_eq!(
            check(&headers("msg_1", NOW, &listed), body, &[SECRET]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn secret_without_prefix_is_used_as_raw_bytes() {
        let body = b"{}";
        let signature = sign("plain-secret", "msg_1", NOW, body);
        assert_eq!(
            check(&headers("msg_1", NOW, &signature), body, &["plain-secret"]),
            Ok(())
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let body = b"{}";
        assert_eq!(
            check(&headers("msg_1", NOW, "v2,abc"), body, &[SECRET]),
            Err(SignatureError::Malformed(WEBHOOK_SIGNATURE))
        );
        let mut missing = headers("msg_1", NOW, "v1,abc");
        missing.remove(WEBHOOK_TIMESTAMP);
        assert_eq!(
            check(&missing, body, &[SECRET]),
            Err(SignatureError::MissingHeader(WEBHOOK_TIMESTAMP))
        );
        let mut bad_timestamp = headers("msg_1", NOW, "v1,abc");
        bad_timestamp.insert(WEBHOOK_TIMESTAMP, "soon".parse().unwrap());
        assert_eq!(
            check(&bad_timestamp, body, &[SECRET]),
            Err(SignatureError::Malformed(WEBHOOK_TIMESTAMP))
        );
    }

    #[test]
    fn webhook_id_is_the_default_event_id() {
        let scheme = StandardWebhooks::new(0);
        assert_eq!(
            scheme
                .default_event_id(&headers("msg_42", NOW, "v1,x"))
                .as_deref(),
            Some("msg_42")
        );
        assert_eq!(scheme.default_event_id(&HeaderMap::new()), None);
    }
}
