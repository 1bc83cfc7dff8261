//! Vonage SMS API signed webhooks: delivery receipts and inbound messages carry
//! `sig`, `timestamp` (unix seconds) and `nonce` among their parameters, whether
//! they arrive as a query string (GET), a form or a JSON object (POST).
//!
//! The signed text is `&name=value` for every parameter but `sig`, sorted by name,
//! each value with `&` and `=` replaced by `_`. The account's signature method
//! (chosen in Vonage's dashboard with the signature secret) turns it into `sig`:
//! `md5hash` is MD5(text + secret) in lowercase hex; `md5`, `sha1`, `sha256` and
//! `sha512` are HMAC(secret, text) in uppercase hex. Hex case is not significant
//! here. A `timestamp` further than the tolerance from now is refused (replays).

use crate::signature::md5;
use crate::signature::{
    Algorithm, DEFAULT_TOLERANCE_SECONDS, SignatureError, check_freshness, hmac, matches_any,
    timestamp_seconds,
};

pub const SIG: &str = "sig";
pub const TIMESTAMP: &str = "timestamp";

/// The signature methods Vonage offers, named as its dashboard and libraries
/// name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VonageMethod {
    /// Vonage's default: MD5 of the text followed by the secret.
    Md5Hash,
    HmacMd5,
    HmacSha1,
    HmacSha256,
    HmacSha512,
}

impl VonageMethod {
    /// `md5hash`, `md5`, `sha1`, `sha256` or `sha512` (case-insensitive); `None`
    /// for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "md5hash" => Some(Self::Md5Hash),
            "md5" => Some(Self::HmacMd5),
            "sha1" => Some(Self::HmacSha1),
            "sha256" => Some(Self::HmacSha256),
            "sha512" => Some(Self::HmacSha512),
            _ => None,
        }
    }

    fn digest(self, secret: &str, text: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            Self::Md5Hash => return md5(&[text, secret.as_bytes()]).to_vec(),
            Self::HmacMd5 => Algorithm::Md5,
            Self::HmacSha1 => Algorithm::Sha1,
            Self::HmacSha256 => Algorithm::Sha256,
            Self::HmacSha512 => Algorithm::Sha512,
        };
        hmac(algorithm, secret.as_bytes(), &[text])
    }
}

/// Verifies a Vonage webhook's parameters with the route's signature secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VonageSignature {
    method: VonageMethod,
    tolerance_seconds: u64,
}

impl VonageSignature {
    pub fn new(method: VonageMethod) -> Self {
        Self {
            method,
            tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
        }
    }

    /// Accepts `params` (every parameter of the request, `sig` included) when one
    /// of `secrets` produced its `sig` and its `timestamp` is fresh.
    pub fn verify(
        &self,
        params: &[(String, String)],
        now_unix_seconds: i64,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let usable: Vec<&str> = secrets
            .iter()
            .map(|secret| secret.trim())
            .filter(|secret| !secret.is_empty())
            .collect();
        if usable.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        let provided = single(params, SIG)?;
        let provided =
            hex::decode(provided.trim()).map_err(|_| SignatureError::MalformedParameter(SIG))?;
        let timestamp = timestamp_seconds(single(params, TIMESTAMP)?)
            .ok_or(SignatureError::MalformedParameter(TIMESTAMP))?;
        check_freshness(timestamp, now_unix_seconds, self.tolerance_seconds)?;
        let text = signed_text(params);
        let candidates = [provided];
        let mut matched = false;
        for secret in usable {
            matched |= matches_any(&self.method.digest(secret, &text), &candidates);
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// The one value of `name`: missing or repeated (which would make it ambiguous
/// what was signed) is refused.
fn single<'a>(
    params: &'a [(String, String)],
    name: &'static str,
) -> Result<&'a str, SignatureError> {
    let mut values = params
        .iter()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.as_str());
    let value = values
        .next()
        .ok_or(SignatureError::MissingParameter(name))?;
    if values.next().is_some() || value.trim().is_empty() {
        return Err(SignatureError::MalformedParameter(name));
    }
    Ok(value)
}

/// `&name=value` for each parameter but `sig`, sorted by name (then value).
fn signed_text(params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(key, _)| key != SIG).collect();
    sorted.sort();
    let mut text = Vec::new();
    for (key, value) in sorted {
        text.push(b'&');
        text.extend_from_slice(key.as_bytes());
        text.push(b'=');
        text.extend(value.bytes().map(|byte| {
            if matches!(byte, b'&' | b'=') {
                b'_'
            } else {
                byte
            }
        }));
    }
    text
}

/// The `sig` Vonage sends for `params` (any `sig` among them is left out), in
/// the case Vonage uses; for tests and fixtures.
pub fn sign(secret: &str, method: VonageMethod, params: &[(String, String)]) -> String {
    let digest = hex::encode(method.digest(secret, &signed_text(params)));
    match method {
        VonageMethod::Md5Hash => digest,
        _ => digest.to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::{fixture, pairs, secrets};

    /// Vonage's libraries test with this inbound message and secret, for every
    /// method (vonage-ruby-sdk's signature tests).
    #[test]
    fn published_vectors_for_every_method() {
        let params = pairs(&[
            ("message-timestamp", "2013-11-21 15:27:30"),
            ("messageId", "020000001B0FE827"),
            ("msisdn", "14843472194"),
            ("text", "Test again"),
            ("timestamp", "1385047698"),
            ("to", "13239877404"),
            ("type", "text"),
        ]);
        let cases = [
            (VonageMethod::Md5Hash, "d2e7b1dc968737c5998ad624e02f90b7"),
            (VonageMethod::HmacMd5, "DDEBD46008C2D4E93CCE578A332A52D5"),
            (
                VonageMethod::HmacSha1,
                "27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A",
            ),
            (
                VonageMethod::HmacSha256,
                "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330",
            ),
            (
                VonageMethod::HmacSha512,
                "E0D3C650F8C9D1A5C174D10DDDBFB003E561F59B265616208B0487C5D819481CD3C311D59CF6165ECD1139622D5BA3A256C0D763AC4A9AD9144B5A426B94FE82",
            ),
        ];
        let secret = "my_secret_key_for_testing";
        for (method, expected) in cases {
            assert_eq!(sign(secret, method, &params), expected, "{method:?}");
            let mut signed = params.clone();
            // Either hex case verifies.
            signed.push((SIG.to_owned(), expected.to_ascii_lowercase()));
            assert_eq!(
                VonageSignature::new(method).verify(&signed, 1_385_047_698, &secrets(&[secret])),
                Ok(()),
                "{method:?}"
            );
        }
        // The shorter vector of Vonage's Python and Ruby libraries.
        let short = pairs(&[("a", "1"), ("b", "2"), ("timestamp", "1461605396")]);
        assert_eq!(
            sign("secret", VonageMethod::Md5Hash, &short),
            "6af838ef94998832dbfc29020b564830"
        );
    }

    /// `&` and `=` in a value sign as `_` (vonage-ruby-sdk's vector).
    #[test]
    fn disallowed_characters_sign_as_underscores() {
        for value in ["_", "&", "="] {
            assert_eq!(
                sign(
                    "my_secret_key_for_testing",
                    VonageMethod::Md5Hash,
                    &pairs(&[("k", value)])
                ),
                "c3d6a686ab9c7e7408bb1c0506e9629a"
            );
        }
    }

    #[test]
    fn ampersands_and_equals_in_values_are_replaced() {
        let params = pairs(&[("text", "a=b&c"), ("timestamp", "1")]);
        assert_eq!(signed_text(&params), b"&text=a_b_c&timestamp=1");
        let with_sig = pairs(&[("sig", "x"), ("b", "2"), ("a", "1")]);
        assert_eq!(signed_text(&with_sig), b"&a=1&b=2");
    }

    /// The delivery receipt fixture's parameters, signed now with `secret`.
    fn signed_receipt(secret: &str, method: VonageMethod, now: i64) -> Vec<(String, String)> {
        let shown: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&fixture("vonage__delivery_receipt.json")).unwrap();
        let mut params: Vec<(String, String)> = shown
            .into_iter()
            .map(|(key, value)| (key, value.as_str().unwrap_or_default().to_owned()))
            .filter(|(key, _)| key != TIMESTAMP)
            .collect();
        params.push((TIMESTAMP.to_owned(), now.to_string()));
        let sig = sign(secret, method, &params);
        params.push((SIG.to_owned(), sig));
        params
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_signed_receipt_verifies_and_tampering_fails() {
        let scheme = VonageSignature::new(VonageMethod::HmacSha256);
        let params = signed_receipt("signature-secret", VonageMethod::HmacSha256, NOW);
        assert_eq!(
            scheme.verify(&params, NOW + 10, &secrets(&["signature-secret"])),
            Ok(())
        );
        let tampered: Vec<(String, String)> = params
            .iter()
            .map(|(key, value)| {
                let value = if key == "status" { "failed" } else { value };
                (key.clone(), value.to_owned())
            })
            .collect();
        assert_eq!(
            scheme.verify(&tampered, NOW, &secrets(&["signature-secret"])),
            Err(SignatureError::Mismatch)
        );
        let mut added = params.clone();
        added.push(("client-ref".to_owned(), "job_other".to_owned()));
        assert_eq!(
            scheme.verify(&added, NOW, &secrets(&["signature-secret"])),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_keys_and_methods_fail() {
        let params = signed_receipt("signature-secret", VonageMethod::Md5Hash, NOW);
        assert_eq!(
            VonageSignature::new(VonageMethod::Md5Hash).verify(
                &params,
                NOW,
                &secrets(&["another-secret"])
            ),
            Err(SignatureError::Mismatch)
        );
        // The same secret with another method than the account's: refused.
        assert_eq!(
            VonageSignature::new(VonageMethod::HmacMd5).verify(
                &params,
                NOW,
                &secrets(&["signature-secret"])
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            VonageSignature::new(VonageMethod::Md5Hash).verify(&params, NOW, &secrets(&[" "])),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn stale_or_future_timestamps_fail_even_when_signed() {
        let scheme = VonageSignature::new(VonageMethod::HmacSha512);
        let params = signed_receipt("s", VonageMethod::HmacSha512, NOW);
        assert_eq!(
            scheme.verify(&params, NOW + 301, &secrets(&["s"])),
            Err(SignatureError::Stale {
                tolerance_seconds: 300
            })
        );
        assert_eq!(
            scheme.verify(&params, NOW - 301, &secrets(&["s"])),
            Err(SignatureError::Stale {
                tolerance_seconds: 300
            })
        );
        assert_eq!(scheme.verify(&params, NOW + 300, &secrets(&["s"])), Ok(()));
    }

    #[test]
    fn missing_or_garbled_parameters_are_refused() {
        let scheme = VonageSignature::new(VonageMethod::Md5Hash);
        let unsigned = pairs(&[("messageId", "0A"), ("timestamp", "1700000000")]);
        assert_eq!(
            scheme.verify(&unsigned, NOW, &secrets(&["s"])),
            Err(SignatureError::MissingParameter(SIG))
        );
        let garbled = pairs(&[("sig", "not hex"), ("timestamp", "1700000000")]);
        assert_eq!(
            scheme.verify(&garbled, NOW, &secrets(&["s"])),
            Err(SignatureError::MalformedParameter(SIG))
        );
        let untimed = pairs(&[("sig", "00")]);
        assert_eq!(
            scheme.verify(&untimed, NOW, &secrets(&["s"])),
            Err(SignatureError::MissingParameter(TIMESTAMP))
        );
        let twice = pairs(&[("sig", "00"), ("sig", "01"), ("timestamp", "1700000000")]);
        assert_eq!(
            scheme.verify(&twice, NOW, &secrets(&["s"])),
            Err(SignatureError::MalformedParameter(SIG))
        );
    }

    #[test]
    fn method_names() {
        assert_eq!(VonageMethod::parse("md5hash"), Some(VonageMethod::Md5Hash));
        assert_eq!(
            VonageMethod::parse(" SHA256 "),
            Some(VonageMethod::HmacSha256)
        );
        assert_eq!(VonageMethod::parse("md5"), Some(VonageMethod::HmacMd5));
        assert_eq!(VonageMethod::parse("sha384"), None);
    }
}
