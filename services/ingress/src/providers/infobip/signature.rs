//! Infobip does not sign its webhooks. What its notification profiles can do is
//! authenticate: HTTP basic credentials (a security setting of type `BASIC`) or
//! a fixed custom header. The route's `webhook_secret` is checked against
//! either, in constant time (both sides hashed first, so the comparison's time
//! says nothing about the secret):
//!
//! - `Authorization: Basic base64(<any user>:<secret>)`: the password is the
//!   secret; the user name is not checked (it carries no secret);
//! - `X-Foco-Webhook-Secret: <secret>`.
//!
//! A request with neither is refused, as is one whose credentials do not match.

use axum::http::{HeaderName, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::signature::is_one_of;
use crate::signature::{
    SignatureError, SignatureScheme, SignedRequest, header_text, strip_prefix_ignore_case,
};

pub const WEBHOOK_SECRET_HEADER: HeaderName = HeaderName::from_static("x-foco-webhook-secret");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfobipSecret;

impl InfobipSecret {
    fn basic_password(request: &SignedRequest<'_>) -> Result<Vec<u8>, SignatureError> {
        let text = header_text(request.headers, &header::AUTHORIZATION)?;
        let malformed = || SignatureError::Malformed(header::AUTHORIZATION);
        let encoded = strip_prefix_ignore_case(text, "Basic ").ok_or_else(malformed)?;
        let credentials = BASE64.decode(encoded.trim()).map_err(|_| malformed())?;
        let colon = credentials
            .iter()
            .position(|byte| *byte == b':')
            .ok_or_else(malformed)?;
        Ok(credentials[colon + 1..].to_vec())
    }
}

impl SignatureScheme for InfobipSecret {
    fn signature_headers(&self) -> Vec<HeaderName> {
        vec![header::AUTHORIZATION, WEBHOOK_SECRET_HEADER]
    }

    fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        if secrets.iter().all(|secret| secret.trim().is_empty()) {
            return Err(SignatureError::NoSecret);
        }
        let presented = if request.headers.contains_key(&WEBHOOK_SECRET_HEADER) {
            header_text(request.headers, &WEBHOOK_SECRET_HEADER)?
                .as_bytes()
                .to_vec()
        } else if request.headers.contains_key(header::AUTHORIZATION) {
            Self::basic_password(request)?
        } else {
            return Err(SignatureError::MissingHeader(header::AUTHORIZATION));
        };
        let usable: Vec<String> = secrets
            .iter()
            .filter(|secret| !secret.trim().is_empty())
            .cloned()
            .collect();
        if is_one_of(&presented, &usable) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::{secrets, with};
    use axum::http::HeaderMap;

    fn basic(user_and_password: &str) -> String {
        format!("Basic {}", BASE64.encode(user_and_password))
    }

    fn verify(headers: &HeaderMap, configured: &[&str]) -> Result<(), SignatureError> {
        let request = SignedRequest::new(headers, b"{}", 0);
        InfobipSecret.verify(&request, &secrets(configured))
    }

    #[test]
    fn basic_credentials_carry_the_secret_as_password() {
        let headers = with(&header::AUTHORIZATION, &basic("infobip:s3cret-value"));
        assert_eq!(verify(&headers, &["s3cret-value"]), Ok(()));
        // Two secrets while one is rotated.
        assert_eq!(verify(&headers, &["new-value", "s3cret-value"]), Ok(()));
        // Any user name: it is not what authenticates.
        let headers = with(&header::AUTHORIZATION, &basic("foco:s3cret-value"));
        assert_eq!(verify(&headers, &["s3cret-value"]), Ok(()));
        // A password containing ':' is kept whole.
        let headers = with(&header::AUTHORIZATION, &basic("u:a:b"));
        assert_eq!(verify(&headers, &["a:b"]), Ok(()));
    }

    #[test]
    fn the_custom_header_carries_the_secret() {
        let headers = with(&WEBHOOK_SECRET_HEADER, "s3cret-value");
        assert_eq!(verify(&headers, &["s3cret-value"]), Ok(()));
    }

    #[test]
    fn wrong_missing_or_garbled_credentials_fail() {
        let wrong = with(&header::AUTHORIZATION, &basic("infobip:guess"));
        assert_eq!(
            verify(&wrong, &["s3cret-value"]),
            Err(SignatureError::Mismatch)
        );
        let wrong_header = with(&WEBHOOK_SECRET_HEADER, "s3cret-valuE");
        assert_eq!(
            verify(&wrong_header, &["s3cret-value"]),
            Err(SignatureError::Mismatch)
        );
        // The secret as user name, with an empty password, is not the secret.
        let swapped = with(&header::AUTHORIZATION, &basic("s3cret-value:"));
        assert_eq!(
            verify(&swapped, &["s3cret-value"]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&HeaderMap::new(), &["s3cret-value"]),
            Err(SignatureError::MissingHeader(header::AUTHORIZATION))
        );
        let bearer = with(&header::AUTHORIZATION, "Bearer s3cret-value");
        assert_eq!(
            verify(&bearer, &["s3cret-value"]),
            Err(SignatureError::Malformed(header::AUTHORIZATION))
        );
        let no_colon = with(
            &header::AUTHORIZATION,
            &format!("Basic {}", BASE64.encode("x")),
        );
        assert_eq!(
            verify(&no_colon, &["x"]),
            Err(SignatureError::Malformed(header::AUTHORIZATION))
        );
    }

    #[test]
    fn a_route_without_a_secret_accepts_nothing() {
        let headers = with(&header::AUTHORIZATION, &basic("infobip:"));
        assert_eq!(verify(&headers, &[]), Err(SignatureError::NoSecret));
        assert_eq!(verify(&headers, &[""]), Err(SignatureError::NoSecret));
    }
}
