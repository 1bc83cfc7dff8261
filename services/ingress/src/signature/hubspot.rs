//! HubSpot's v3 request signature: `X-HubSpot-Signature-v3` is
//! base64(HMAC-SHA256(client secret, method + URL + raw body + timestamp)), with
//! `X-HubSpot-Request-Timestamp` in unix milliseconds. The URL is the one HubSpot
//! called, with a few percent-encoded characters decoded as HubSpot's own
//! validator does.

use axum::http::HeaderName;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{
    SignatureError, SignatureScheme, SignedRequest, check_freshness, header_text, hmac_sha256,
    matches_any, tolerance_or_default,
};

pub const HUBSPOT_SIGNATURE_V3: HeaderName = HeaderName::from_static("x-hubspot-signature-v3");
pub const HUBSPOT_TIMESTAMP: HeaderName = HeaderName::from_static("x-hubspot-request-timestamp");
/// The older v1/v2 signature, sent alongside; dropped from envelopes as well.
const HUBSPOT_SIGNATURE: HeaderName = HeaderName::from_static("x-hubspot-signature");

/// Percent-encodings HubSpot decodes in the URI before signing.
const DECODED: [(&str, char); 12] = [
    ("%3A", ':'),
    ("%2F", '/'),
    ("%3F", '?'),
    ("%40", '@'),
    ("%21", '!'),
    ("%24", '$'),
    ("%27", '\''),
    ("%28", '('),
    ("%29", ')'),
    ("%2A", '*'),
    ("%2C", ','),
    ("%3B", ';'),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubspotV3 {
    tolerance_seconds: u64,
}

impl HubspotV3 {
    pub fn new(tolerance_seconds: u32) -> Self {
        Self {
            tolerance_seconds: tolerance_or_default(tolerance_seconds),
        }
    }
}

/// `url` with HubSpot's list of percent-encodings decoded (either hex case).
pub fn decode_uri(url: &str) -> String {
    let mut decoded = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(position) = rest.find('%') {
        decoded.push_str(&rest[..position]);
        let candidate = rest.get(position..position + 3);
        let replacement = candidate.and_then(|encoded| {
            DECODED
                .iter()
                .find(|(code, _)| code.eq_ignore_ascii_case(encoded))
                .map(|(_, character)| *character)
        });
        match replacement {
            Some(character) => {
                decoded.push(character);
                rest = &rest[position + 3..];
            }
            None => {
                decoded.push('%');
                rest = &rest[position + 1..];
            }
        }
    }
    decoded.push_str(rest);
    decoded
}

impl SignatureScheme for HubspotV3 {
    fn signature_headers(&self) -> Vec<HeaderName> {
        vec![HUBSPOT_SIGNATURE_V3, HUBSPOT_SIGNATURE]
    }

    fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let signature = header_text(request.headers, &HUBSPOT_SIGNATURE_V3)?;
        let timestamp_text = header_text(request.headers, &HUBSPOT_TIMESTAMP)?;
        let timestamp_ms: i64 = timestamp_text
            .parse()
            .map_err(|_| SignatureError::Malformed(HUBSPOT_TIMESTAMP))?;
        let provided = BASE64
            .decode(signature)
            .map_err(|_| SignatureError::Malformed(HUBSPOT_SIGNATURE_V3))?;
        check_freshness(
            timestamp_ms.div_euclid(1000),
            request.now_unix_seconds,
            self.tolerance_seconds,
        )?;
        let url = decode_uri(&request.public_url());
        let candidates = [provided];
        let mut matched = false;
        for secret in secrets {
            let expected = hmac_sha256(
                secret.trim().as_bytes(),
                &[
                    request.method.as_bytes(),
                    url.as_bytes(),
                    request.raw_body,
                    timestamp_text.as_bytes(),
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
}

/// Signs like HubSpot; used by tests.
pub fn sign(secret: &str, method: &str, url: &str, body: &[u8], timestamp_ms: i64) -> String {
    let timestamp = timestamp_ms.to_string();
    let mac = hmac_sha256(
        secret.as_bytes(),
        &[
            method.as_bytes(),
            decode_uri(url).as_bytes(),
            body,
            timestamp.as_bytes(),
        ],
    );
    BASE64.encode(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::secrets;
    use axum::http::HeaderMap;

    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;

    fn check(
        signature: &str,
        timestamp_ms: i64,
        body: &[u8],
        now: i64,
        keys: &[&str],
    ) -> Result<(), SignatureError> {
        let mut headers = HeaderMap::new();
        headers.insert(HUBSPOT_SIGNATURE_V3, signature.parse().unwrap());
        headers.insert(HUBSPOT_TIMESTAMP, timestamp_ms.to_string().parse().unwrap());
        let mut request = SignedRequest::new(&headers, body, now);
        request.path_and_query = "/v1/hooks/tok%3Aen?portal=1";
        request.public_base = Some("https://hooks.example.com");
        HubspotV3::new(0).verify(&request, &secrets(keys))
    }

    #[test]
    fn a_signed_request_verifies_and_tampering_does_not() {
        let secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
        let timestamp_ms = NOW * 1000 + 250;
        let url = "https://hooks.example.com/v1/hooks/tok%3Aen?portal=1";
        let signature = sign(secret, "POST", url, BODY, timestamp_ms);
        assert_eq!(
            check(&signature, timestamp_ms, BODY, NOW, &[secret]),
            Ok(())
        );
        assert_eq!(
            check(&signature, timestamp_ms, b"[]", NOW, &[secret]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&signature, timestamp_ms + 1, BODY, NOW, &[secret]),
            Err(SignatureError::Mismatch),
            "the timestamp is signed"
        );
        assert_eq!(
            check(&signature, timestamp_ms, BODY, NOW + 400, &[secret]),
            Err(SignatureError::Stale {
                tolerance_seconds: 300
            })
        );
        assert_eq!(
            check(&signature, timestamp_ms, BODY, NOW, &["old", secret]),
            Ok(()),
            "rotated secrets"
        );
    }

    #[test]
    fn hubspot_decodes_only_its_list() {
        assert_eq!(
            decode_uri("https://x.io/a%3Ab%2fc%20d%3f%zz%"),
            "https://x.io/a:b/c%20d?%zz%"
        );
    }

    #[test]
    fn missing_or_garbled_headers() {
        let headers = HeaderMap::new();
        let request = SignedRequest::new(&headers, BODY, NOW);
        assert_eq!(
            HubspotV3::new(0).verify(&request, &secrets(&["s"])),
            Err(SignatureError::MissingHeader(HUBSPOT_SIGNATURE_V3))
        );
        assert_eq!(
            check("###", NOW * 1000, BODY, NOW, &["s"]),
            Err(SignatureError::Malformed(HUBSPOT_SIGNATURE_V3))
        );
    }
}
