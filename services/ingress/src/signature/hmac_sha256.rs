//! HMAC-SHA256 of the raw body in a header of the sender's choice, hex or base64,
//! with an optional prefix such as `sha256=`. Shopify, WooCommerce, Typeform and
//! GitHub all sign this way and differ only in header, encoding and prefix.

use axum::http::HeaderName;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{
    SignatureError, SignatureScheme, SignedRequest, header_text, hmac_sha256, matches_any,
    strip_prefix_ignore_case,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    Hex,
    Base64,
    /// Not configured: told apart by length (64 hex digits or 44 base64 characters
    /// for a SHA-256 MAC), which is unambiguous.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacSha256Header {
    /// `None` when the configured name is empty or not a valid header name: every
    /// request is then refused as a misconfiguration.
    header: Option<HeaderName>,
    encoding: SignatureEncoding,
    prefix: String,
}

impl HmacSha256Header {
    pub fn new(header: HeaderName, encoding: SignatureEncoding, prefix: &str) -> Self {
        Self {
            header: Some(header),
            encoding,
            prefix: prefix.to_owned(),
        }
    }

    pub fn from_proto(settings: &foco_proto::v1::HmacSha256) -> Self {
        let encoding = SignatureEncoding::from_proto(settings.encoding);
        Self {
            // `from_bytes` lower-cases, so "X-Shopify-Hmac-Sha256" matches as sent.
            header: HeaderName::from_bytes(settings.header.trim().as_bytes()).ok(),
            encoding,
            prefix: settings.prefix.clone(),
        }
    }

    fn decode(&self, text: &str) -> Option<Vec<u8>> {
        self.encoding.decode(text, 32)
    }
}

impl SignatureEncoding {
    pub fn from_proto(value: i32) -> Self {
        use foco_proto::v1::SignatureEncoding as Proto;
        match Proto::try_from(value) {
            Ok(Proto::Hex) => Self::Hex,
            Ok(Proto::Base64) => Self::Base64,
            _ => Self::Auto,
        }
    }

    /// Decodes a MAC of `mac_len` bytes; `Auto` tells hex from base64 by length.
    pub fn decode(self, text: &str, mac_len: usize) -> Option<Vec<u8>> {
        match self {
            Self::Hex => hex::decode(text).ok(),
            Self::Base64 => BASE64.decode(text).ok(),
            Self::Auto if text.len() == mac_len * 2 => hex::decode(text).ok(),
            Self::Auto => BASE64.decode(text).ok(),
        }
    }
}

impl SignatureScheme for HmacSha256Header {
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
                "the signature header name is empty or invalid",
            ));
        };
        let text = header_text(request.headers, header)?;
        let encoded = strip_prefix_ignore_case(text, &self.prefix)
            .ok_or_else(|| SignatureError::Malformed(header.clone()))?;
        let provided = self
            .decode(encoded.trim())
            .ok_or_else(|| SignatureError::Malformed(header.clone()))?;
        let candidates = [provided];
        let mut matched = false;
        // Every secret is tried, so timing does not tell which one matched.
        for secret in secrets {
            let expected = hmac_sha256(secret.as_bytes(), &[request.raw_body]);
            matched |= matches_any(&expected, &candidates);
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// The body is all that is signed.
    fn replayable_under_new_id(&self, _id_header: &HeaderName) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::fixture;
    use axum::http::HeaderMap;

    fn verify(
        scheme: &HmacSha256Header,
        header_value: Option<&str>,
        body: &[u8],
        secrets: &[&str],
    ) -> Result<(), SignatureError> {
        let mut headers = HeaderMap::new();
        if let (Some(value), Some(name)) = (header_value, &scheme.header) {
            headers.insert(name.clone(), value.parse().unwrap());
        }
        let request = SignedRequest::new(&headers, body, 1_700_000_000);
        let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
        scheme.verify(&request, &secrets)
    }

    fn shopify() -> HmacSha256Header {
        HmacSha256Header::from_proto(&foco_proto::v1::HmacSha256 {
            header: "X-Shopify-Hmac-Sha256".to_owned(),
            encoding: foco_proto::v1::SignatureEncoding::Base64 as i32,
            prefix: String::new(),
        })
    }

    #[test]
    fn shopify_fixture_vector() {
        let body = fixture("shopify__orders_create.json");
        let signature = "SqTdZZfPEI+MBk5AUEqo1wpYGF0UEIHWECKWwfJAcsQ=";
        assert_eq!(
            verify(&shopify(), Some(signature), &body, &["test_secret"]),
            Ok(())
        );
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        assert_eq!(
            verify(&shopify(), Some(signature), &tampered, &["test_secret"]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&shopify(), Some(signature), &body, &["other"]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn woocommerce_fixture_vector_with_rotated_secret() {
        let scheme = HmacSha256Header::new(
            HeaderName::from_static("x-wc-webhook-signature"),
            SignatureEncoding::Base64,
            "",
        );
        let body = fixture("woocommerce__order_created.json");
        let signature = "dbd8cN7BISGillqMsi0zMR+0Y9kuiw/6Hcjf+nwkYE0=";
        // During rotation the new secret comes first and the old one still works.
        assert_eq!(
            verify(
                &scheme,
                Some(signature),
                &body,
                &["new_secret", "test_secret"]
            ),
            Ok(())
        );
        assert_eq!(
            verify(&scheme, Some(signature), &body, &["test_secret", "new"]),
            Ok(())
        );
    }

    #[test]
    fn typeform_fixture_vector_with_prefix() {
        let scheme = HmacSha256Header::new(
            HeaderName::from_static("typeform-signature"),
            SignatureEncoding::Base64,
            "sha256=",
        );
        let body = fixture("typeform__form_response.json");
        let signature = "sha256=Kd1Kw01uIzU1QbpfIkSACa9DrhEpDIc7QBOFOSBWmq4=";
        assert_eq!(
            verify(&scheme, Some(signature), &body, &["test_secret"]),
            Ok(())
        );
        // Without its prefix the header is malformed, not merely wrong.
        assert_eq!(
            verify(
                &scheme,
                Some("Kd1Kw01uIzU1QbpfIkSACa9DrhEpDIc7QBOFOSBWmq4="),
                &body,
                &["test_secret"]
            ),
            Err(SignatureError::Malformed(HeaderName::from_static(
                "typeform-signature"
            )))
        );
    }

    #[test]
    fn github_published_vector_hex_with_prefix() {
        let scheme = HmacSha256Header::new(
            HeaderName::from_static("x-hub-signature-256"),
            SignatureEncoding::Hex,
            "sha256=",
        );
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let secret = "It's a Secret to Everybody";
        assert_eq!(
            verify(&scheme, Some(signature), b"Hello, World!", &[secret]),
            Ok(())
        );
        assert_eq!(
            verify(
                &scheme,
                Some(&signature.to_ascii_uppercase()),
                b"Hello, World!",
                &[secret]
            ),
            Ok(()),
            "prefix and hex digits are case-insensitive"
        );
        assert_eq!(
            verify(&scheme, Some(signature), b"Hello, World?", &[secret]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn unspecified_encoding_accepts_hex_and_base64() {
        let scheme = HmacSha256Header::new(
            HeaderName::from_static("x-sig"),
            SignatureEncoding::Auto,
            "",
        );
        let body = fixture("shopify__orders_create.json");
        let base64 = "SqTdZZfPEI+MBk5AUEqo1wpYGF0UEIHWECKWwfJAcsQ=";
        let hex = hex::encode(BASE64.decode(base64).unwrap());
        assert_eq!(
            verify(&scheme, Some(base64), &body, &["test_secret"]),
            Ok(())
        );
        assert_eq!(verify(&scheme, Some(&hex), &body, &["test_secret"]), Ok(()));
    }

    #[test]
    fn missing_and_garbage_headers_are_refused() {
        let body = fixture("shopify__orders_create.json");
        let header = HeaderName::from_static("x-shopify-hmac-sha256");
        assert_eq!(
            verify(&shopify(), None, &body, &["test_secret"]),
            Err(SignatureError::MissingHeader(header.clone()))
        );
        assert_eq!(
            verify(&shopify(), Some("not base64!"), &body, &["test_secret"]),
            Err(SignatureError::Malformed(header))
        );
    }

    #[test]
    fn empty_header_name_is_a_misconfiguration() {
        let scheme = HmacSha256Header::from_proto(&foco_proto::v1::HmacSha256 {
            header: " ".to_owned(),
            encoding: 0,
            prefix: String::new(),
        });
        let error = verify(&scheme, None, b"{}", &["s"]).unwrap_err();
        assert!(error.is_misconfiguration());
    }
}
