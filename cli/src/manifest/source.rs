//! Source keys for sender presets and limits (`preset`, `signature`, `tolerance`,
//! `content_type`, `rate_limit`), and their translation into
//! `UpsertSourceRequest` fields. Control expands the preset (scheme, event type
//! and id locations, content type) and checks what it stores; here the file is
//! checked for what it alone shows, with YAML locations.

use foco_proto::v1::{
    GenericHmac, HmacAlgorithm, SignatureEncoding, UpsertSourceRequest, Verification, verification,
};
use serde::Deserialize;

use super::{EncodingSpec, Manifest, ManifestError, SourceSpec};

/// The senders Foco knows how to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PresetSpec {
    StandardWebhooks,
    Stripe,
    Shopify,
    Woocommerce,
    Github,
    Typeform,
    Calendly,
    Hubspot,
    Mercadopago,
    Tiendanube,
    Hotmart,
    Twilio,
    /// Any other HMAC signer, described by `signature`.
    Generic,
    BasicAuth,
    Bearer,
    None,
}

impl PresetSpec {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard-webhooks",
            Self::Stripe => "stripe",
            Self::Shopify => "shopify",
            Self::Woocommerce => "woocommerce",
            Self::Github => "github",
            Self::Typeform => "typeform",
            Self::Calendly => "calendly",
            Self::Hubspot => "hubspot",
            Self::Mercadopago => "mercadopago",
            Self::Tiendanube => "tiendanube",
            Self::Hotmart => "hotmart",
            Self::Twilio => "twilio",
            Self::Generic => "generic",
            Self::BasicAuth => "basic-auth",
            Self::Bearer => "bearer",
            Self::None => "none",
        }
    }

    /// Presets whose signature carries a timestamp (and so take `tolerance`).
    fn is_timestamped(self) -> bool {
        matches!(
            self,
            Self::StandardWebhooks
                | Self::Stripe
                | Self::Calendly
                | Self::Hubspot
                | Self::Mercadopago
        )
    }
}

/// The `generic` preset's signature.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericSignatureSpec {
    pub header: String,
    #[serde(default)]
    pub algorithm: Option<AlgorithmSpec>,
    pub encoding: EncodingSpec,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// What is signed, e.g. `"{timestamp}.{body}"`; absent: the body.
    #[serde(default)]
    pub signed_content: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlgorithmSpec {
    Sha256,
    Sha1,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentTypeSpec {
    Json,
    Form,
}

/// `100/s`, `6000/m`… as text, or `{ per_second: 100, burst: 500 }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RateLimitSpec {
    PerSecond(u32),
    Text(String),
    Detailed(RateLimitDetail),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitDetail {
    pub per_second: u32,
    #[serde(default)]
    pub burst: Option<u32>,
}

impl Manifest {
    /// Fills the preset and limit fields of `request` from `source`.
    pub(crate) fn apply_source_keys(
        &self,
        location: &str,
        source: &SourceSpec,
        request: &mut UpsertSourceRequest,
    ) -> Result<(), ManifestError> {
        let at = |key: &str| format!("{location}.{key}");
        if let Some(preset) = source.preset {
            if source.verify.is_some() {
                return Err(self.invalid(
                    at("verify"),
                    "`verify` and `preset` exclude each other: the preset sets the scheme",
                ));
            }
            request.preset = preset.as_str().to_owned();
            // Control fills the preset's own scheme in; only `generic` sends one.
            request.verification = None;
        }
        match (source.preset, &source.signature) {
            (Some(PresetSpec::Generic), Some(signature)) => {
                request.verification = Some(generic_verification(signature));
            }
            (Some(PresetSpec::Generic), None) => {
                return Err(self.invalid(
                    at("signature"),
                    "preset generic needs `signature: { header, encoding, ... }`",
                ));
            }
            (_, Some(_)) => {
                return Err(self.invalid(at("signature"), "only preset generic takes `signature`"));
            }
            (_, None) => {}
        }
        if let Some(tolerance) = &source.tolerance {
            let timestamped = match (source.preset, &source.signature) {
                (Some(PresetSpec::Generic), Some(signature)) => {
                    signature.timestamp_header.is_some()
                }
                (Some(preset), _) => preset.is_timestamped(),
                (None, _) => false,
            };
            if !timestamped {
                return Err(self.invalid(
                    at("tolerance"),
                    "only timestamped presets take a tolerance (standard-webhooks, stripe, calendly, hubspot, mercadopago, or generic with a timestamp_header)",
                ));
            }
            request.timestamp_tolerance_seconds = parse_seconds(tolerance)
                .filter(|seconds| *seconds > 0)
                .ok_or_else(|| {
                    self.invalid(at("tolerance"), "needs a duration such as 300s or 10m")
                })?;
        }
        if let Some(content_type) = source.content_type {
            request.content_type = match content_type {
                ContentTypeSpec::Json => "json",
                ContentTypeSpec::Form => "form",
            }
            .to_owned();
        }
        if let Some(limit) = &source.rate_limit {
            let (per_second, burst) = match limit {
                RateLimitSpec::PerSecond(per_second) => (*per_second, 0),
                RateLimitSpec::Detailed(detail) => (detail.per_second, detail.burst.unwrap_or(0)),
                RateLimitSpec::Text(text) => parse_rate(text).ok_or_else(|| {
                    self.invalid(at("rate_limit"), "needs a rate such as 100/s or 6000/m")
                })?,
            };
            if per_second == 0 {
                return Err(self.invalid(
                    at("rate_limit"),
                    "must be at least 1 a second; leave the key out for no limit",
                ));
            }
            request.rate_limit_per_second = per_second;
            request.rate_limit_burst = burst;
        }
        Ok(())
    }
}

fn generic_verification(signature: &GenericSignatureSpec) -> Verification {
    let algorithm = match signature.algorithm {
        None | Some(AlgorithmSpec::Sha256) => HmacAlgorithm::Sha256,
        Some(AlgorithmSpec::Sha1) => HmacAlgorithm::Sha1,
        Some(AlgorithmSpec::Sha512) => HmacAlgorithm::Sha512,
    };
    Verification {
        scheme: Some(verification::Scheme::GenericHmac(GenericHmac {
            header: signature.header.clone(),
            algorithm: algorithm as i32,
            encoding: match signature.encoding {
                EncodingSpec::Hex => SignatureEncoding::Hex,
                EncodingSpec::Base64 => SignatureEncoding::Base64,
            } as i32,
            prefix: signature.prefix.clone().unwrap_or_default(),
            timestamp_header: signature.timestamp_header.clone().unwrap_or_default(),
            signed_content: signature.signed_content.clone().unwrap_or_default(),
            tolerance_seconds: 0,
        })),
    }
}

/// `300`, `300s`, `5m`, `1h` → seconds.
fn parse_seconds(text: &str) -> Option<u32> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((index, _)) => text.split_at(index),
        None => (text, "s"),
    };
    let value: u32 = number.parse().ok()?;
    let factor = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    value.checked_mul(factor)
}

/// `100/s`, `100/m` (at least 1 a second after rounding up), `100/h` is too slow
/// to be a webhook limit and refused.
fn parse_rate(text: &str) -> Option<(u32, u32)> {
    let (count, unit) = text.trim().split_once('/')?;
    let count: u32 = count.trim().parse().ok()?;
    match unit.trim() {
        "s" => Some((count, 0)),
        // A minute's worth may arrive at once.
        "m" => Some((count.div_ceil(60), count)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_seconds("300"), Some(300));
        assert_eq!(parse_seconds("10m"), Some(600));
        assert_eq!(parse_seconds("1h"), Some(3600));
        assert_eq!(parse_seconds("soon"), None);
        assert_eq!(parse_seconds("5d"), None);
        assert_eq!(parse_rate("100/s"), Some((100, 0)));
        assert_eq!(parse_rate("6000/m"), Some((100, 6000)));
        assert_eq!(parse_rate("30/m"), Some((1, 30)));
        assert_eq!(parse_rate("100/h"), None);
        assert_eq!(parse_rate("100"), None);
    }
}
