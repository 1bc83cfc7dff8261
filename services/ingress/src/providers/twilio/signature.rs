//! Twilio's request signature: `X-Twilio-Signature` is base64(HMAC-SHA1(auth
//! token, URL + each POST parameter's name and value, sorted by name)), where the
//! URL is exactly the one Twilio called (query included). For JSON bodies Twilio
//! signs the URL alone and adds `bodySHA256=<hex sha256 of the body>` to its query.
//!
//! Twilio's own validators also accept the URL with the default port added or
//! removed (proxies differ in what they forward), and so does this one.

use axum::http::{HeaderName, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::signature::sha256;
use crate::signature::{
    Algorithm, SignatureError, SignatureScheme, SignedRequest, header_text, hmac, matches_any,
};

pub const TWILIO_SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwilioSignature;

/// The signature Twilio sends for `url` and the POST `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(mac(auth_token, url, params))
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Twilio's libraries sort by name, then by value for repeated names.
    sorted.sort();
    sorted.dedup();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + sorted.len() * 2);
    parts.push(url.as_bytes());
    for (name, value) in sorted {
        parts.push(name.as_bytes());
        parts.push(value.as_bytes());
    }
    hmac(Algorithm::Sha1, auth_token.as_bytes(), &parts)
}

/// `url`, and the same URL with its default port removed, or added when absent.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return variants,
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let other = match authority.rsplit_once(':') {
        Some((host, port)) if port == default_port => format!("{scheme}://{host}{tail}"),
        Some(_) => return variants,
        None => format!("{scheme}://{authority}:{default_port}{tail}"),
    };
    variants.push(other);
    variants
}

fn is_form(request: &SignedRequest<'_>) -> bool {
    request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// The POST parameters Twilio signed: the form body's pairs, or none for other
/// bodies (whose hash must then be the query's `bodySHA256`).
fn signed_params(request: &SignedRequest<'_>) -> Result<Vec<(String, String)>, SignatureError> {
    if is_form(request) {
        return serde_urlencoded::from_bytes(request.raw_body)
            .map_err(|_| SignatureError::Mismatch);
    }
    let declared = request.query().and_then(|query| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()?
            .into_iter()
            .find(|(key, _)| key == "bodySHA256")
            .map(|(_, value)| value)
    });
    match declared {
        Some(declared) => {
            let actual = hex::encode(sha256(request.raw_body));
            if declared.eq_ignore_ascii_case(&actual) {
                Ok(Vec::new())
            } else {
                Err(SignatureError::Mismatch)
            }
        }
        None if request.raw_body.is_empty() => Ok(Vec::new()),
        None => Err(SignatureError::Mismatch),
    }
}

impl SignatureScheme for TwilioSignature {
    fn signature_headers(&self) -> Vec<HeaderName> {
        vec![TWILIO_SIGNATURE]
    }

    fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let provided = BASE64
            .decode(header_text(request.headers, &TWILIO_SIGNATURE)?)
            .map_err(|_| SignatureError::Malformed(TWILIO_SIGNATURE))?;
        let params = signed_params(request)?;
        let candidates = [provided];
        let mut matched = false;
        for url in url_variants(&request.public_url()) {
            for secret in secrets {
                matched |= matches_any(&mac(secret.trim(), &url, &params), &candidates);
            }
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Twilio signs the URL and the body, and no time.
    fn replayable_under_new_id(&self, _id_header: &HeaderName) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::{fixture, pairs, secrets};
    use axum::http::HeaderMap;

    #[test]
    fn published_vector() {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    /// The shared fixture shows the form fields as a JSON object.
    fn fixture_params(name: &str) -> Vec<(String, String)> {
        let shown: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&fixture(name)).unwrap();
        shown
            .into_iter()
            .map(|(key, value)| {
                let text = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                (key, text)
            })
            .collect()
    }

    #[test]
    fn status_callback_fixture_vector() {
        let params = fixture_params("twilio__message_status_delivered.json");
        assert_eq!(
            signature(
                "12345",
                "https://example.com/webhooks/twilio/status",
                &params
            ),
            "/AtN4Qg6fMGmiw55GIYxr7Tg9tw="
        );
    }

    fn form_request<'a>(
        headers: &'a mut HeaderMap,
        body: &'a [u8],
        sig: &str,
    ) -> SignedRequest<'a> {
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        headers.insert(TWILIO_SIGNATURE, sig.parse().unwrap());
        let mut request = SignedRequest::new(headers, body, 0);
        request.path_and_query = "/webhooks/twilio/status";
        request.public_base = Some("https://example.com");
        request
    }

    #[test]
    fn a_form_request_verifies_with_the_public_url_and_tampering_fails() {
        let params = fixture_params("twilio__message_status_delivered.json");
        let body = serde_urlencoded::to_string(&params).unwrap();
        let mut headers = HeaderMap::new();
        let request = form_request(
            &mut headers,
            body.as_bytes(),
            "/AtN4Qg6fMGmiw55GIYxr7Tg9tw=",
        );
        assert_eq!(
            TwilioSignature.verify(&request, &secrets(&["12345"])),
            Ok(())
        );
        assert_eq!(
            TwilioSignature.verify(&request, &secrets(&["rotated", "12345"])),
            Ok(())
        );
        assert_eq!(
            TwilioSignature.verify(&request, &secrets(&["54321"])),
            Err(SignatureError::Mismatch)
        );
        let tampered = body.replace("delivered", "failed");
        let mut headers = HeaderMap::new();
        let request = form_request(
            &mut headers,
            tampered.as_bytes(),
            "/AtN4Qg6fMGmiw55GIYxr7Tg9tw=",
        );
        assert_eq!(
            TwilioSignature.verify(&request, &secrets(&["12345"])),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn default_ports_are_tolerated() {
        assert_eq!(
            url_variants("https://example.com:443/a?b=1"),
            vec!["https://example.com:443/a?b=1", "https://example.com/a?b=1"]
        );
        assert_eq!(
            url_variants("http://example.com/a"),
            vec!["http://example.com/a", "http://example.com:80/a"]
        );
        assert_eq!(
            url_variants("https://example.com:8443/a"),
            vec!["https://example.com:8443/a"]
        );
    }

    #[test]
    fn json_bodies_are_bound_by_their_hash() {
        let body = br#"{"MessageSid":"SM1"}"#;
        let hash = hex::encode(sha256(body));
        let path = format!("/v1/hooks/t?bodySHA256={hash}");
        let url = format!("https://example.com{path}");
        let sig = signature("token", &url, &[]);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        headers.insert(TWILIO_SIGNATURE, sig.parse().unwrap());
        let mut request = SignedRequest::new(&headers, body, 0);
        request.path_and_query = &path;
        request.public_base = Some("https://example.com");
        assert_eq!(
            TwilioSignature.verify(&request, &secrets(&["token"])),
            Ok(())
        );
        request.raw_body = br#"{"MessageSid":"SM2"}"#;
        assert_eq!(
            TwilioSignature.verify(&request, &secrets(&["token"])),
            Err(SignatureError::Mismatch)
        );
    }
}
