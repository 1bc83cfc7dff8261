//! How a source's signature scheme is stored (`sources.verification`, jsonb):
//!
//! ```json
//! {"scheme": "none"}
//! {"scheme": "standard-webhooks", "tolerance_seconds": 300}
//! {"scheme": "hmac-sha256", "header": "X-Shopify-Hmac-Sha256", "encoding": "base64", "prefix": ""}
//! ```

use foco_proto::v1::verification::Scheme;
use foco_proto::v1::{
    HmacSha256, NoVerification, SignatureEncoding, StandardWebhooks, Verification,
};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Seconds a Standard Webhooks timestamp may differ from now when unset.
pub const DEFAULT_TOLERANCE_SECONDS: u32 = 300;

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredEncoding {
    Hex,
    Base64,
}

impl StoredVerification {
    /// Validates a request's verification; absent means no verification.
    pub fn from_request(verification: Option<Verification>) -> Result<Self, ApiError> {
        let Some(scheme) = verification.and_then(|verification| verification.scheme) else {
            return Ok(Self::None);
        };
        match scheme {
            Scheme::None(NoVerification {}) => Ok(Self::None),
            Scheme::StandardWebhooks(StandardWebhooks { tolerance_seconds }) => {
                Ok(Self::StandardWebhooks {
                    tolerance_seconds: if tolerance_seconds == 0 {
                        DEFAULT_TOLERANCE_SECONDS
                    } else {
                        tolerance_seconds
                    },
                })
            }
            Scheme::HmacSha256(hmac) => {
                let header = hmac.header.trim().to_owned();
                let header_is_valid = !header.is_empty()
                    && header
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !header_is_valid {
                    return Err(ApiError::invalid(
                        "verification.hmac_sha256.header must be a header name such as \"X-Shopify-Hmac-Sha256\"",
                    ));
                }
                let encoding = match SignatureEncoding::try_from(hmac.encoding) {
                    Ok(SignatureEncoding::Hex) => StoredEncoding::Hex,
                    Ok(SignatureEncoding::Base64) => StoredEncoding::Base64,
                    _ => {
                        return Err(ApiError::invalid(
                            "verification.hmac_sha256.encoding must be hex or base64",
                        ));
                    }
                };
                Ok(Self::HmacSha256 {
                    header,
                    encoding,
                    prefix: hmac.prefix,
                })
            }
        }
    }

    pub fn needs_secret(&self) -> bool {
        !matches!(self, Self::None)
    }

    pub fn scheme_name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StandardWebhooks { .. } => "standard-webhooks",
            Self::HmacSha256 { .. } => "hmac-sha256",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({"scheme": "none"}))
    }

    pub fn from_json(value: serde_json::Value) -> Result<Self, ApiError> {
        serde_json::from_value(value)
            .map_err(|error| ApiError::Corrupt(format!("sources.verification: {error}")))
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
                encoding: match encoding {
                    StoredEncoding::Hex => SignatureEncoding::Hex,
                    StoredEncoding::Base64 => SignatureEncoding::Base64,
                } as i32,
                prefix,
            }),
        };
        Verification {
            scheme: Some(scheme),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
