//! The stored form of `foco.v1.Verification`: validated from requests, kept as
//! jsonb, turned back into protobuf for answers and lookups.

use foco_proto::v1::verification::Scheme;
use foco_proto::v1::{
    BasicAuth, CalendlySignature, GenericHmac, HmacAlgorithm, HmacSha256, HubspotSignatureV3,
    MercadoPagoSignature, NoVerification, SignatureEncoding, StandardWebhooks, StaticToken,
    StripeSignature, TwilioSignature, Verification,
};
use serde::{Deserialize, Serialize};

use super::{MAX_TOLERANCE_SECONDS, header_name, tolerance_or_default};
use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case")]
pub enum StoredVerification {
    None,
    StandardWebhooks {
        tolerance_seconds: u32,
    },
    #[serde(rename = "hmac-sha256")]
    HmacSha256 {
        header: String,
        encoding: StoredEncoding,
        #[serde(default)]
        prefix: String,
    },
    Stripe {
        tolerance_seconds: u32,
    },
    Calendly {
        tolerance_seconds: u32,
    },
    #[serde(rename = "hubspot-v3")]
    HubspotV3 {
        tolerance_seconds: u32,
    },
    Mercadopago {
        tolerance_seconds: u32,
    },
    Twilio,
    StaticToken {
        header: String,
        #[serde(default)]
        prefix: String,
    },
    BasicAuth,
    GenericHmac {
        header: String,
        algorithm: StoredAlgorithm,
        encoding: StoredEncoding,
        #[serde(default)]
        prefix: String,
        #[serde(default)]
        timestamp_header: String,
        #[serde(default)]
        signed_content: String,
        #[serde(default)]
        tolerance_seconds: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredEncoding {
    Hex,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredAlgorithm {
    Sha256,
    Sha1,
    Sha512,
}

/// Placeholders a generic signed-content template may use.
const PLACEHOLDERS: [&str; 4] = ["{body}", "{timestamp}", "{method}", "{url}"];

impl StoredVerification {
    /// Validates a request's verification; absent means no verification.
    pub fn from_request(verification: Option<Verification>) -> Result<Self, ApiError> {
        let Some(scheme) = verification.and_then(|verification| verification.scheme) else {
            return Ok(Self::None);
        };
        let stored = match scheme {
            Scheme::None(NoVerification {}) => Self::None,
            Scheme::StandardWebhooks(StandardWebhooks { tolerance_seconds }) => {
                Self::StandardWebhooks {
                    tolerance_seconds: tolerance_or_default(tolerance_seconds),
                }
            }
            Scheme::HmacSha256(hmac) => Self::HmacSha256 {
                header: header_name("verification.hmac_sha256.header", &hmac.header)?,
                encoding: encoding("verification.hmac_sha256.encoding", hmac.encoding)?,
                prefix: hmac.prefix,
            },
            Scheme::Stripe(StripeSignature { tolerance_seconds }) => Self::Stripe {
                tolerance_seconds: tolerance_or_default(tolerance_seconds),
            },
            Scheme::Calendly(CalendlySignature { tolerance_seconds }) => Self::Calendly {
                tolerance_seconds: tolerance_or_default(tolerance_seconds),
            },
            Scheme::HubspotV3(HubspotSignatureV3 { tolerance_seconds }) => Self::HubspotV3 {
                tolerance_seconds: tolerance_or_default(tolerance_seconds),
            },
            Scheme::Mercadopago(MercadoPagoSignature { tolerance_seconds }) => Self::Mercadopago {
                tolerance_seconds: tolerance_or_default(tolerance_seconds),
            },
            Scheme::Twilio(TwilioSignature {}) => Self::Twilio,
            Scheme::StaticToken(token) => Self::StaticToken {
                header: header_name("verification.static_token.header", &token.header)?,
                prefix: token.prefix,
            },
            Scheme::BasicAuth(BasicAuth {}) => Self::BasicAuth,
            Scheme::GenericHmac(generic) => generic_from_request(generic)?,
        };
        Ok(stored)
    }

    pub fn needs_secret(&self) -> bool {
        !matches!(self, Self::None)
    }

    pub fn scheme_name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StandardWebhooks { .. } => "standard-webhooks",
            Self::HmacSha256 { .. } => "hmac-sha256",
            Self::Stripe { .. } => "stripe",
            Self::Calendly { .. } => "calendly",
            Self::HubspotV3 { .. } => "hubspot-v3",
            Self::Mercadopago { .. } => "mercadopago",
            Self::Twilio => "twilio",
            Self::StaticToken { .. } => "static-token",
            Self::BasicAuth => "basic-auth",
            Self::GenericHmac { .. } => "generic-hmac",
        }
    }

    /// Sets the timestamp tolerance of a timestamped scheme; `false` when the
    /// scheme has no timestamp.
    pub fn set_tolerance(&mut self, seconds: u32) -> bool {
        match self {
            Self::StandardWebhooks { tolerance_seconds }
            | Self::Stripe { tolerance_seconds }
            | Self::Calendly { tolerance_seconds }
            | Self::HubspotV3 { tolerance_seconds }
            | Self::Mercadopago { tolerance_seconds } => {
                *tolerance_seconds = seconds;
                true
            }
            Self::GenericHmac {
                timestamp_header,
                tolerance_seconds,
                ..
            } if !timestamp_header.is_empty() => {
                *tolerance_seconds = seconds;
                true
            }
            _ => false,
        }
    }

    /// The timestamp tolerance of a timestamped scheme.
    pub fn tolerance_seconds(&self) -> Option<u32> {
        match self {
            Self::StandardWebhooks { tolerance_seconds }
            | Self::Stripe { tolerance_seconds }
            | Self::Calendly { tolerance_seconds }
            | Self::HubspotV3 { tolerance_seconds }
            | Self::Mercadopago { tolerance_seconds } => Some(*tolerance_seconds),
            Self::GenericHmac {
                timestamp_header,
                tolerance_seconds,
                ..
            } if !timestamp_header.is_empty() => Some(*tolerance_seconds),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({"scheme": "none"}))
    }

    /// The stored scheme; a tolerance stored before the cap was enforced on
    /// every field is read as the cap.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ApiError> {
        let mut stored: Self = serde_json::from_value(value)
            .map_err(|error| ApiError::Corrupt(format!("sources.verification: {error}")))?;
        if stored
            .tolerance_seconds()
            .is_some_and(|tolerance| tolerance > MAX_TOLERANCE_SECONDS)
        {
            stored.set_tolerance(MAX_TOLERANCE_SECONDS);
        }
        Ok(stored)
    }

    pub fn into_proto(self) -> Verification {
        let scheme = match self {
            Self::None => Scheme::None(NoVerification {}),
            Self::StandardWebhooks { tolerance_seconds } => {
                Scheme::StandardWebhooks(StandardWebhooks { tolerance_seconds })
            }
            Self::HmacSha256 {
                header,
                encoding,
                prefix,
            } => Scheme::HmacSha256(HmacSha256 {
                header,
                encoding: encoding.into_proto() as i32,
                prefix,
            }),
            Self::Stripe { tolerance_seconds } => {
                Scheme::Stripe(StripeSignature { tolerance_seconds })
            }
            Self::Calendly { tolerance_seconds } => {
                Scheme::Calendly(CalendlySignature { tolerance_seconds })
            }
            Self::HubspotV3 { tolerance_seconds } => {
                Scheme::HubspotV3(HubspotSignatureV3 { tolerance_seconds })
            }
            Self::Mercadopago { tolerance_seconds } => {
                Scheme::Mercadopago(MercadoPagoSignature { tolerance_seconds })
            }
            Self::Twilio => Scheme::Twilio(TwilioSignature {}),
            Self::StaticToken { header, prefix } => {
                Scheme::StaticToken(StaticToken { header, prefix })
            }
            Self::BasicAuth => Scheme::BasicAuth(BasicAuth {}),
            Self::GenericHmac {
                header,
                algorithm,
                encoding,
                prefix,
                timestamp_header,
                signed_content,
                tolerance_seconds,
            } => Scheme::GenericHmac(GenericHmac {
                header,
                algorithm: match algorithm {
                    StoredAlgorithm::Sha256 => HmacAlgorithm::Sha256,
                    StoredAlgorithm::Sha1 => HmacAlgorithm::Sha1,
                    StoredAlgorithm::Sha512 => HmacAlgorithm::Sha512,
                } as i32,
                encoding: encoding.into_proto() as i32,
                prefix,
                timestamp_header,
                signed_content,
                tolerance_seconds,
            }),
        };
        Verification {
            scheme: Some(scheme),
        }
    }
}

impl StoredEncoding {
    fn into_proto(self) -> SignatureEncoding {
        match self {
            Self::Hex => SignatureEncoding::Hex,
            Self::Base64 => SignatureEncoding::Base64,
        }
    }
}

fn encoding(field: &str, value: i32) -> Result<StoredEncoding, ApiError> {
    match SignatureEncoding::try_from(value) {
        Ok(SignatureEncoding::Hex) => Ok(StoredEncoding::Hex),
        Ok(SignatureEncoding::Base64) => Ok(StoredEncoding::Base64),
        _ => Err(ApiError::invalid(format!("{field} must be hex or base64"))),
    }
}

fn generic_from_request(generic: GenericHmac) -> Result<StoredVerification, ApiError> {
    let algorithm = match HmacAlgorithm::try_from(generic.algorithm) {
        Ok(HmacAlgorithm::Unspecified | HmacAlgorithm::Sha256) => StoredAlgorithm::Sha256,
        Ok(HmacAlgorithm::Sha1) => StoredAlgorithm::Sha1,
        Ok(HmacAlgorithm::Sha512) => StoredAlgorithm::Sha512,
        Err(_) => {
            return Err(ApiError::invalid(
                "verification.generic_hmac.algorithm must be sha256, sha1 or sha512",
            ));
        }
    };
    let timestamp_header = if generic.timestamp_header.trim().is_empty() {
        String::new()
    } else {
        header_name(
            "verification.generic_hmac.timestamp_header",
            &generic.timestamp_header,
        )?
    };
    check_signed_content(&generic.signed_content, !timestamp_header.is_empty())?;
    let tolerance_seconds = if timestamp_header.is_empty() {
        0
    } else {
        tolerance_or_default(generic.tolerance_seconds)
    };
    Ok(StoredVerification::GenericHmac {
        header: header_name("verification.generic_hmac.header", &generic.header)?,
        algorithm,
        encoding: encoding("verification.generic_hmac.encoding", generic.encoding)?,
        prefix: generic.prefix,
        timestamp_header,
        signed_content: generic.signed_content,
        tolerance_seconds,
    })
}

/// Every `{...}` must be a known placeholder (or `{header:Name}`), and
/// `{timestamp}` needs a timestamp header to read it from.
fn check_signed_content(template: &str, has_timestamp_header: bool) -> Result<(), ApiError> {
    if template.len() > 512 {
        return Err(ApiError::invalid(
            "verification.generic_hmac.signed_content may be at most 512 characters",
        ));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(ApiError::invalid(
                "verification.generic_hmac.signed_content has a '{' without its '}'",
            ));
        };
        let placeholder = &rest[open..open + close + 1];
        let known = PLACEHOLDERS.contains(&placeholder)
            || placeholder
                .strip_prefix("{header:")
                .and_then(|name| name.strip_suffix('}'))
                .is_some_and(|name| header_name("signed_content header", name).is_ok());
        if !known {
            return Err(ApiError::invalid(format!(
                "verification.generic_hmac.signed_content: unknown placeholder {placeholder}; use {{body}}, {{timestamp}}, {{method}}, {{url}} or {{header:Name}}"
            )));
        }
        if placeholder == "{timestamp}" && !has_timestamp_header {
            return Err(ApiError::invalid(
                "verification.generic_hmac.signed_content uses {timestamp} but no timestamp_header is set",
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tolerance_stored_over_the_cap_is_read_as_the_cap() {
        let stored = serde_json::json!({"scheme": "stripe", "tolerance_seconds": 604_800});
        assert_eq!(
            StoredVerification::from_json(stored).unwrap(),
            StoredVerification::Stripe {
                tolerance_seconds: MAX_TOLERANCE_SECONDS
            }
        );
    }

    #[test]
    fn json_round_trip() {
        let stored = StoredVerification::HmacSha256 {
            header: "X-Shopify-Hmac-Sha256".to_owned(),
            encoding: StoredEncoding::Base64,
            prefix: String::new(),
        };
        let json = stored.to_json();
        assert_eq!(json["scheme"], "hmac-sha256");
        assert_eq!(json["encoding"], "base64");
        assert_eq!(StoredVerification::from_json(json).unwrap(), stored);
        let standard = StoredVerification::from_request(Some(Verification {
            scheme: Some(Scheme::StandardWebhooks(StandardWebhooks {
                tolerance_seconds: 0,
            })),
        }))
        .unwrap();
        assert_eq!(
            standard.to_json(),
            serde_json::json!({"scheme": "standard-webhooks", "tolerance_seconds": 300})
        );
        for stored in [
            StoredVerification::Twilio,
            StoredVerification::BasicAuth,
            StoredVerification::HubspotV3 {
                tolerance_seconds: 300,
            },
            StoredVerification::StaticToken {
                header: "X-HOTMART-HOTTOK".to_owned(),
                prefix: String::new(),
            },
        ] {
            let back = StoredVerification::from_json(stored.to_json()).unwrap();
            assert_eq!(back, stored);
            let proto = back.clone().into_proto();
            assert_eq!(
                StoredVerification::from_request(Some(proto)).unwrap(),
                stored
            );
        }
    }

    #[test]
    fn hmac_needs_header_and_encoding() {
        let request = |header: &str, encoding: SignatureEncoding| {
            StoredVerification::from_request(Some(Verification {
                scheme: Some(Scheme::HmacSha256(HmacSha256 {
                    header: header.to_owned(),
                    encoding: encoding as i32,
                    prefix: String::new(),
                })),
            }))
        };
        assert!(request("", SignatureEncoding::Hex).is_err());
        assert!(request("X-Sig", SignatureEncoding::Unspecified).is_err());
        assert!(request("X-Sig", SignatureEncoding::Hex).is_ok());
        assert_eq!(
            StoredVerification::from_request(None).unwrap(),
            StoredVerification::None
        );
    }

    #[test]
    fn generic_templates_are_checked() {
        assert!(check_signed_content("{timestamp}.{body}", true).is_ok());
        assert!(check_signed_content("{method}{url}{body}{header:X-Id}", false).is_ok());
        assert!(check_signed_content("{timestamp}.{body}", false).is_err());
        assert!(check_signed_content("{nope}", false).is_err());
        assert!(check_signed_content("{body", false).is_err());
        assert!(check_signed_content("", false).is_ok());
    }
}
