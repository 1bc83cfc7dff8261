//! Telnyx webhooks (API v2): `telnyx-signature-ed25519` is the base64 Ed25519
//! signature of `"<telnyx-timestamp>|<raw body>"`, verifiable with the account's
//! public key (base64 of 32 bytes, from Telnyx's portal). Nothing secret is
//! stored on our side, but a forged request still needs Telnyx's private key.
//! A timestamp further than the tolerance from now is refused (replays).
//!
//! Verification is strict (RFC 8032 §5.1.7 plus the small-order checks), so a
//! signature cannot be altered into another one that also verifies.

use axum::http::HeaderName;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::signature::{
    DEFAULT_TOLERANCE_SECONDS, SignatureError, SignatureScheme, SignedRequest, check_freshness,
    header_text,
};

pub const TELNYX_SIGNATURE: HeaderName = HeaderName::from_static("telnyx-signature-ed25519");
pub const TELNYX_TIMESTAMP: HeaderName = HeaderName::from_static("telnyx-timestamp");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelnyxSignature {
    tolerance_seconds: u64,
}

impl Default for TelnyxSignature {
    fn default() -> Self {
        Self {
            tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
        }
    }
}

/// A public key as Telnyx shows it: base64 of the 32 key bytes.
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = BASE64.decode(text.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

impl SignatureScheme for TelnyxSignature {
    fn signature_headers(&self) -> Vec<HeaderName> {
        vec![TELNYX_SIGNATURE, TELNYX_TIMESTAMP]
    }

    /// `secrets` are the account's public keys (two while Telnyx rotates one).
    fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let configured: Vec<&str> = secrets
            .iter()
            .map(|key| key.trim())
            .filter(|key| !key.is_empty())
            .collect();
        if configured.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        let keys: Vec<VerifyingKey> = configured
            .iter()
            .filter_map(|key| parse_public_key(key))
            .collect();
        if keys.len() != configured.len() {
            return Err(SignatureError::Misconfigured(
                "the Telnyx public key is not base64 of an Ed25519 key",
            ));
        }
        let timestamp_text = header_text(request.headers, &TELNYX_TIMESTAMP)?;
        let timestamp: i64 = timestamp_text
            .parse()
            .map_err(|_| SignatureError::Malformed(TELNYX_TIMESTAMP))?;
        let signature_bytes: [u8; 64] = BASE64
            .decode(header_text(request.headers, &TELNYX_SIGNATURE)?)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(SignatureError::Malformed(TELNYX_SIGNATURE))?;
        let signature = Signature::from_bytes(&signature_bytes);
        check_freshness(timestamp, request.now_unix_seconds, self.tolerance_seconds)?;
        let mut message = Vec::with_capacity(timestamp_text.len() + 1 + request.raw_body.len());
        message.extend_from_slice(timestamp_text.as_bytes());
        message.push(b'|');
        message.extend_from_slice(request.raw_body);
        if keys
            .iter()
            .any(|key| key.verify_strict(&message, &signature).is_ok())
        {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// Signs like Telnyx with a 32-byte Ed25519 secret key: (public key as Telnyx
/// shows it, `telnyx-signature-ed25519` value). For tests and fixtures.
pub fn sign(secret_key: &[u8; 32], timestamp: i64, body: &[u8]) -> (String, String) {
    use ed25519_dalek::Signer as _;
    let signing_key = ed25519_dalek::SigningKey::from_bytes(secret_key);
    let mut message = format!("{timestamp}|").into_bytes();
    message.extend_from_slice(body);
    let signature = signing_key.sign(&message);
    (
        BASE64.encode(signing_key.verifying_key().as_bytes()),
        BASE64.encode(signature.to_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::{fixture, secrets};
    use axum::http::HeaderMap;

    const NOW: i64 = 1_700_000_000;
    const KEY: [u8; 32] = [7; 32];

    fn headers(timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(TELNYX_TIMESTAMP, timestamp.parse().unwrap());
        headers.insert(TELNYX_SIGNATURE, signature.parse().unwrap());
        headers
    }

    /// RFC 8032 §7.1 test 2: a one-byte message, to pin the primitive (and the
    /// strict check) to the standard rather than to our own signer.
    #[test]
    fn rfc_8032_vector() {
        let public =
            hex::decode("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
                .unwrap();
        let signature = hex::decode(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        )
        .unwrap();
        let key = parse_public_key(&BASE64.encode(public)).unwrap();
        let signature = Signature::from_bytes(&signature.try_into().unwrap());
        assert!(key.verify_strict(&[0x72], &signature).is_ok());
        assert!(key.verify_strict(&[0x73], &signature).is_err());
    }

    #[test]
    fn a_signed_webhook_verifies_and_tampering_fails() {
        let body = fixture("telnyx__message_finalized_delivered.json");
        let (public_key, signature) = sign(&KEY, NOW, &body);
        let headers = headers(&NOW.to_string(), &signature);
        let request = SignedRequest::new(&headers, &body, NOW + 5);
        assert_eq!(
            TelnyxSignature::default().verify(&request, &secrets(&[&public_key])),
            Ok(())
        );
        // A rotated key next to the current one still verifies.
        let (other_key, _) = sign(&[9; 32], NOW, &body);
        assert_eq!(
            TelnyxSignature::default().verify(&request, &secrets(&[&other_key, &public_key])),
            Ok(())
        );
        let tampered = String::from_utf8(body.clone())
            .unwrap()
            .replace("delivered", "delivery_failed");
        let request = SignedRequest::new(&headers, tampered.as_bytes(), NOW);
        assert_eq!(
            TelnyxSignature::default().verify(&request, &secrets(&[&public_key])),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed too: moving it (to look fresh) breaks it.
        let moved = headers_with_timestamp(&signature, NOW + 60);
        let request = SignedRequest::new(&moved, &body, NOW + 60);
        assert_eq!(
            TelnyxSignature::default().verify(&request, &secrets(&[&public_key])),
            Err(SignatureError::Mismatch)
        );
    }

    fn headers_with_timestamp(signature: &str, timestamp: i64) -> HeaderMap {
        headers(&timestamp.to_string(), signature)
    }

    #[test]
    fn a_wrong_key_fails_and_an_unusable_key_is_a_misconfiguration() {
        let body = fixture("telnyx__message_received.json");
        let (_, signature) = sign(&KEY, NOW, &body);
        let (wrong_key, _) = sign(&[8; 32], NOW, &body);
        let headers = headers(&NOW.to_string(), &signature);
        let request = SignedRequest::new(&headers, &body, NOW);
        assert_eq!(
            TelnyxSignature::default().verify(&request, &secrets(&[&wrong_key])),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            TelnyxSignature::default().verify(&request, &secrets(&["bm90IGEga2V5"])),
            Err(SignatureError::Misconfigured(
                "the Telnyx public key is not base64 of an Ed25519 key"
            ))
        );
        assert_eq!(
            TelnyxSignature::default().verify(&request, &[]),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn stale_timestamps_fail_even_when_signed() {
        let body = br#"{"data":{}}"#;
        let signed_at = NOW - 301;
        let (public_key, signature) = sign(&KEY, signed_at, body);
        let headers = headers(&signed_at.to_string(), &signature);
        let request = SignedRequest::new(&headers, body, NOW);
        assert_eq!(
            TelnyxSignature::default().verify(&request, &secrets(&[&public_key])),
            Err(SignatureError::Stale {
                tolerance_seconds: 300
            })
        );
    }

    #[test]
    fn missing_or_garbled_headers() {
        let body = b"{}";
        let (public_key, signature) = sign(&KEY, NOW, body);
        let mut headers = HeaderMap::new();
        headers.insert(TELNYX_SIGNATURE, signature.parse().unwrap());
        let request = SignedRequest::new(&headers, body, NOW);
        assert_eq!(
            TelnyxSignature::default().verify(&request, &secrets(&[&public_key])),
            Err(SignatureError::MissingHeader(TELNYX_TIMESTAMP))
        );
        let garbled = self::headers(&NOW.to_string(), "c2hvcnQ=");
        let request = SignedRequest::new(&garbled, body, NOW);
        assert_eq!(
            TelnyxSignature::default().verify(&request, &secrets(&[&public_key])),
            Err(SignatureError::Malformed(TELNYX_SIGNATURE))
        );
        let untimed = self::headers("soon", &signature);
        let request = SignedRequest::new(&untimed, body, NOW);
        assert_eq!(
            TelnyxSignature::default().verify(&request, &secrets(&[&public_key])),
            Err(SignatureError::Malformed(TELNYX_TIMESTAMP))
        );
    }
}
