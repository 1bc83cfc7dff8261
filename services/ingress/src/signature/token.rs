//! Shared-token schemes, where the request carries the secret itself: a token in a
//! header (Hotmart's `X-HOTMART-HOTTOK`, `Authorization: Bearer <token>`) or HTTP
//! basic credentials. Both sides are hashed before the comparison, so its time
//! tells nothing about the secret's length or content.

use axum::http::{HeaderName, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::digest::sha256;
use super::{
    SignatureError, SignatureScheme, SignedRequest, header_text, matches_any,
    strip_prefix_ignore_case,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticToken {
    /// `None` when the configured name is not a header name: refused as a
    /// misconfiguration.
    header: Option<HeaderName>,
    prefix: String,
}

impl StaticToken {
    pub fn new(header: HeaderName, prefix: &str) -> Self {
        Self {
            header: Some(header),
            prefix: prefix.to_owned(),
        }
    }

    pub fn from_proto(settings: &foco_proto::v1::StaticToken) -> Self {
        Self {
            header: HeaderName::from_bytes(settings.header.trim().as_bytes()).ok(),
            prefix: settings.prefix.clone(),
        }
    }
}

/// Whether `presented` is one of `secrets`.
pub(crate) fn is_one_of(presented: &[u8], secrets: &[String]) -> bool {
    let candidates = [sha256(presented).to_vec()];
    let mut matched = false;
    for secret in secrets {
        matched |= matches_any(&sha256(secret.trim().as_bytes()), &candidates);
    }
    matched
}

impl SignatureScheme for StaticToken {
    fn signature_headers(&self) -> Vec<HeaderName> {
        self.header.iter().cloned().collect()
    }

    fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let Some(header) = &self.header else {
            return Err(SignatureError::Misconfigured(
                "the token header name is empty or invalid",
            ));
        };
        let text = header_text(request.headers, header)?;
        let token = strip_prefix_ignore_case(text, &self.prefix)
            .ok_or_else(|| SignatureError::Malformed(header.clone()))?
            .trim();
        if is_one_of(token.as_bytes(), secrets) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// `Authorization: Basic base64(user:password)`; each secret is "user:password".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicAuth;

impl SignatureScheme for BasicAuth {
    fn signature_headers(&self) -> Vec<HeaderName> {
        vec![header::AUTHORIZATION]
    }

    fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let text = header_text(request.headers, &header::AUTHORIZATION)?;
        let malformed = || SignatureError::Malformed(header::AUTHORIZATION);
        let encoded = strip_prefix_ignore_case(text, "Basic ").ok_or_else(malformed)?;
        let credentials = BASE64.decode(encoded.trim()).map_err(|_| malformed())?;
        if is_one_of(&credentials, secrets) {
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

    #[test]
    fn hotmart_hottok() {
        let hottok = HeaderName::from_static("x-hotmart-hottok");
        let scheme = StaticToken::from_proto(&foco_proto::v1::StaticToken {
            header: "X-HOTMART-HOTTOK".to_owned(),
            prefix: String::new(),
        });
        let headers = with(&hottok, "hot-token-1");
        let request = SignedRequest::new(&headers, b"{}", 0);
        assert_eq!(scheme.verify(&request, &secrets(&["hot-token-1"])), Ok(()));
        assert_eq!(
            scheme.verify(&request, &secrets(&["hot-token-2", "hot-token-1"])),
            Ok(())
        );
        assert_eq!(
            scheme.verify(&request, &secrets(&["hot-token-2"])),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            scheme.verify(&request, &secrets(&["hot-token-10"])),
            Err(SignatureError::Mismatch)
        );
        let empty = HeaderMap::new();
        assert_eq!(
            scheme.verify(&SignedRequest::new(&empty, b"{}", 0), &secrets(&["x"])),
            Err(SignatureError::MissingHeader(hottok))
        );
    }

    #[test]
    fn bearer_token_needs_its_prefix() {
        let scheme = StaticToken::new(header::AUTHORIZATION, "Bearer ");
        let headers = with(&header::AUTHORIZATION, "bearer s3cret");
        let request = SignedRequest::new(&headers, b"{}", 0);
        assert_eq!(scheme.verify(&request, &secrets(&["s3cret"])), Ok(()));
        let headers = with(&header::AUTHORIZATION, "s3cret");
        let request = SignedRequest::new(&headers, b"{}", 0);
        assert_eq!(
            scheme.verify(&request, &secrets(&["s3cret"])),
            Err(SignatureError::Malformed(header::AUTHORIZATION))
        );
    }

    #[test]
    fn basic_credentials() {
        let headers = with(
            &header::AUTHORIZATION,
            &format!("Basic {}", BASE64.encode("shop:pa55")),
        );
        let request = SignedRequest::new(&headers, b"{}", 0);
        assert_eq!(BasicAuth.verify(&request, &secrets(&["shop:pa55"])), Ok(()));
        assert_eq!(
            BasicAuth.verify(&request, &secrets(&["shop:other"])),
            Err(SignatureError::Mismatch)
        );
        let headers = with(&header::AUTHORIZATION, "Basic ***");
        assert_eq!(
            BasicAuth.verify(&SignedRequest::new(&headers, b"{}", 0), &secrets(&["a:b"])),
            Err(SignatureError::Malformed(header::AUTHORIZATION))
        );
    }

    #[test]
    fn invalid_header_name_is_a_misconfiguration() {
        let scheme = StaticToken::from_proto(&foco_proto::v1::StaticToken {
            header: "bad header".to_owned(),
            prefix: String::new(),
        });
        let headers = HeaderMap::new();
        let error = scheme
            .verify(&SignedRequest::new(&headers, b"{}", 0), &secrets(&["x"]))
            .unwrap_err();
        assert!(error.is_misconfiguration());
    }
}
