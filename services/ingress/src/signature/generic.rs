//! Any other HMAC signer: the signature's header, algorithm (SHA-256, SHA-1,
//! SHA-512), encoding (hex or base64) and prefix, plus an optional timestamp
//! header checked against a tolerance and a template saying what was signed, e.g.
//! `{timestamp}.{body}` or `{method}{url}{body}`.

use axum::http::HeaderName;
use foco_proto::v1::HmacAlgorithm;

use super::{
    Algorithm, SignatureEncoding, SignatureError, SignatureScheme, SignedRequest, check_freshness,
    header_text, hmac, matches_any, strip_prefix_ignore_case, timestamp_seconds,
    tolerance_or_default,
};

/// One piece of the signed-content template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Body,
    Timestamp,
    Method,
    Url,
    Header(HeaderName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericHmac {
    /// `Err` holds why the settings cannot be used; every request is then refused
    /// as a misconfiguration.
    settings: Result<Settings, &'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    header: HeaderName,
    algorithm: Algorithm,
    encoding: SignatureEncoding,
    prefix: String,
    timestamp_header: Option<HeaderName>,
    template: Vec<Segment>,
    tolerance_seconds: u64,
}

impl GenericHmac {
    pub fn from_proto(settings: &foco_proto::v1::GenericHmac) -> Self {
        Self {
            settings: Settings::from_proto(settings),
        }
    }
}

impl Settings {
    fn from_proto(settings: &foco_proto::v1::GenericHmac) -> Result<Self, &'static str> {
        let header = HeaderName::from_bytes(settings.header.trim().as_bytes())
            .map_err(|_| "the signature header name is empty or invalid")?;
        let algorithm = match HmacAlgorithm::try_from(settings.algorithm) {
            Ok(HmacAlgorithm::Sha1) => Algorithm::Sha1,
            Ok(HmacAlgorithm::Sha512) => Algorithm::Sha512,
            _ => Algorithm::Sha256,
        };
        let timestamp_header = match settings.timestamp_header.trim() {
            "" => None,
            name => Some(
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| "the timestamp header name is invalid")?,
            ),
        };
        let template = parse_template(&settings.signed_content)?;
        if template.contains(&Segment::Timestamp) && timestamp_header.is_none() {
            return Err("the signed content uses {timestamp} without a timestamp header");
        }
        Ok(Self {
            header,
            algorithm,
            encoding: SignatureEncoding::from_proto(settings.encoding),
            prefix: settings.prefix.clone(),
            timestamp_header,
            template,
            tolerance_seconds: tolerance_or_default(settings.tolerance_seconds),
        })
    }
}

fn parse_template(template: &str) -> Result<Vec<Segment>, &'static str> {
    if template.is_empty() {
        return Ok(vec![Segment::Body]);
    }
    let mut segments = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            segments.push(Segment::Literal(rest[..open].to_owned()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or("the signed content has a '{' without its '}'")?;
        let segment = match &rest[open + 1..open + close] {
            "body" => Segment::Body,
            "timestamp" => Segment::Timestamp,
            "method" => Segment::Method,
            "url" => Segment::Url,
            other => {
                let name = other
                    .strip_prefix("header:")
                    .ok_or("the signed content has an unknown placeholder")?;
                Segment::Header(
                    HeaderName::from_bytes(name.trim().as_bytes())
                        .map_err(|_| "the signed content names an invalid header")?,
                )
            }
        };
        segments.push(segment);
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Literal(rest.to_owned()));
    }
    Ok(segments)
}

impl SignatureScheme for GenericHmac {
    fn signature_headers(&self) -> Vec<HeaderName> {
        self.settings
            .as_ref()
            .map(|settings| vec![settings.header.clone()])
            .unwrap_or_default()
    }

    fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let settings = self
            .settings
            .as_ref()
            .map_err(|reason| SignatureError::Misconfigured(reason))?;
        let text = header_text(request.headers, &settings.header)?;
        let malformed = || SignatureError::Malformed(settings.header.clone());
        let encoded = strip_prefix_ignore_case(text, &settings.prefix).ok_or_else(malformed)?;
        let mac_len = match settings.algorithm {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        };
        let provided = settings
            .encoding
            .decode(encoded.trim(), mac_len)
            .ok_or_else(malformed)?;
        let timestamp = match &settings.timestamp_header {
            None => "",
            Some(name) => {
                let value = header_text(request.headers, name)?;
                let seconds = timestamp_seconds(value)
                    .ok_or_else(|| SignatureError::Malformed(name.clone()))?;
                check_freshness(
                    seconds,
                    request.now_unix_seconds,
                    settings.tolerance_seconds,
                )?;
                value
            }
        };
        let url = settings
            .template
            .contains(&Segment::Url)
            .then(|| request.public_url());
        let mut parts: Vec<&[u8]> = Vec::with_capacity(settings.template.len());
        for segment in &settings.template {
            parts.push(match segment {
                Segment::Literal(text) => text.as_bytes(),
                Segment::Body => request.raw_body,
                Segment::Timestamp => timestamp.as_bytes(),
                Segment::Method => request.method.as_bytes(),
                Segment::Url => url.as_deref().unwrap_or_default().as_bytes(),
                Segment::Header(name) => request
                    .headers
                    .get(name)
                    .map(|value| value.as_bytes())
                    .unwrap_or_default(),
            });
        }
        let candidates = [provided];
        let mut matched = false;
        for secret in secrets {
            let expected = hmac(settings.algorithm, secret.trim().as_bytes(), &parts);
            matched |= matches_any(&expected, &candidates);
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// When the signed content has the body but neither `{timestamp}` nor the
    /// id's header (a timestamp header that is not signed protects nothing).
    fn replayable_under_new_id(&self, id_header: &HeaderName) -> bool {
        self.settings.as_ref().is_ok_and(|settings| {
            settings.template.contains(&Segment::Body)
                && !settings.template.iter().any(|segment| match segment {
                    Segment::Timestamp => true,
                    Segment::Header(name) => name == id_header,
                    _ => false,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::secrets;
    use axum::http::HeaderMap;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use foco_proto::v1::SignatureEncoding as ProtoEncoding;

    const NOW: i64 = 1_700_000_000;

    fn scheme(
        algorithm: HmacAlgorithm,
        encoding: ProtoEncoding,
        prefix: &str,
        timestamp_header: &str,
        template: &str,
    ) -> GenericHmac {
        GenericHmac::from_proto(&foco_proto::v1::GenericHmac {
            header: "X-Signature".to_owned(),
            algorithm: algorithm as i32,
            encoding: encoding as i32,
            prefix: prefix.to_owned(),
            timestamp_header: timestamp_header.to_owned(),
            signed_content: template.to_owned(),
            tolerance_seconds: 0,
        })
    }

    #[test]
    fn an_id_header_is_replayable_unless_a_timestamp_or_the_id_is_signed() {
        let id = HeaderName::from_static("x-event-id");
        let signed = |timestamp_header: &str, template: &str| {
            scheme(
                HmacAlgorithm::Sha256,
                ProtoEncoding::Hex,
                "",
                timestamp_header,
                template,
            )
            .replayable_under_new_id(&id)
        };
        assert!(signed("", ""), "the body alone");
        // A timestamp header checked but not signed can be refreshed by anyone.
        assert!(signed("X-Timestamp", "{body}"));
        assert!(signed("", "{header:X-Other}.{body}"));
        assert!(!signed("X-Timestamp", "{timestamp}.{body}"));
        assert!(!signed("", "{header:X-Event-Id}.{body}"));
        assert!(!signed("", "{method}{url}"), "the body is not signed");
    }

    #[test]
    fn github_vector_through_the_generic_scheme() {
        let github = scheme(HmacAlgorithm::Sha256, ProtoEncoding::Hex, "sha256=", "", "");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-signature",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                .parse()
                .unwrap(),
        );
        let request = SignedRequest::new(&headers, b"Hello, World!", NOW);
        assert_eq!(
            github.verify(&request, &secrets(&["It's a Secret to Everybody"])),
            Ok(())
        );
        let request = SignedRequest::new(&headers, b"Hello, World?", NOW);
        assert_eq!(
            github.verify(&request, &secrets(&["It's a Secret to Everybody"])),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn timestamped_sha512_base64_template() {
        let generic = scheme(
            HmacAlgorithm::Sha512,
            ProtoEncoding::Base64,
            "",
            "X-Timestamp",
            "{timestamp}.{method}.{header:X-Id}.{body}",
        );
        let body = br#"{"ok":true}"#;
        let sign = |timestamp: i64| {
            let text = format!("{timestamp}.POST.42.");
            BASE64.encode(hmac(
                Algorithm::Sha512,
                b"generic-key",
                &[text.as_bytes(), body],
            ))
        };
        let request_at = |timestamp: i64, signature: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-signature", signature.parse().unwrap());
            headers.insert("x-timestamp", timestamp.to_string().parse().unwrap());
            headers.insert("x-id", "42".parse().unwrap());
            generic.verify(
                &SignedRequest::new(&headers, body, NOW),
                &secrets(&["other", "generic-key"]),
            )
        };
        assert_eq!(request_at(NOW, &sign(NOW)), Ok(()));
        assert_eq!(
            request_at(NOW - 301, &sign(NOW - 301)),
            Err(SignatureError::Stale {
                tolerance_seconds: 300
            })
        );
        assert_eq!(
            request_at(NOW + 1, &sign(NOW)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn sha1_hex() {
        let generic = scheme(HmacAlgorithm::Sha1, ProtoEncoding::Hex, "", "", "{body}");
        let mut headers = HeaderMap::new();
        let mac = hex::encode(hmac(Algorithm::Sha1, b"k", &[b"payload"]));
        headers.insert("x-signature", mac.parse().unwrap());
        let request = SignedRequest::new(&headers, b"payload", NOW);
        assert_eq!(generic.verify(&request, &secrets(&["k"])), Ok(()));
    }

    #[test]
    fn unusable_settings_are_misconfigurations() {
        for (header, template, timestamp) in [
            ("", "", ""),
            ("X-Sig", "{nope}", ""),
            ("X-Sig", "{timestamp}", ""),
            ("X-Sig", "{body", ""),
        ] {
            let generic = GenericHmac::from_proto(&foco_proto::v1::GenericHmac {
                header: header.to_owned(),
                signed_content: template.to_owned(),
                timestamp_header: timestamp.to_owned(),
                ..Default::default()
            });
            let headers = HeaderMap::new();
            let error = generic
                .verify(&SignedRequest::new(&headers, b"", NOW), &secrets(&["k"]))
                .unwrap_err();
            assert!(error.is_misconfiguration(), "{header} {template}");
        }
    }
}
