//! How a source's signature scheme is stored (`sources.verification`, jsonb), and
//! how a request's preset and explicit settings become what is stored:
//!
//! ```json
//! {"scheme": "none"}
//! {"scheme": "standard-webhooks", "tolerance_seconds": 300}
//! {"scheme": "hmac-sha256", "header": "X-Shopify-Hmac-Sha256", "encoding": "base64", "prefix": ""}
//! {"scheme": "stripe", "tolerance_seconds": 300}
//! {"scheme": "static-token", "header": "X-HOTMART-HOTTOK", "prefix": ""}
//! {"scheme": "generic-hmac", "header": "X-Sig", "algorithm": "sha512", "encoding": "hex", ...}
//! ```
//!
//! The preset table itself is in `presets`.

mod presets;
mod stored;

use foco_proto::v1::UpsertSourceRequest;

use crate::error::ApiError;
use crate::validate;

pub use presets::{PRESET_NAMES, is_platform};
pub use stored::{StoredEncoding, StoredVerification};

/// Seconds a timestamped scheme's timestamp may differ from now when unset.
pub const DEFAULT_TOLERANCE_SECONDS: u32 = 300;
/// A day: a longer window makes replays too easy to be worth a signature.
const MAX_TOLERANCE_SECONDS: u32 = 86_400;

/// What a source upsert stores about how its webhooks are read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSettings {
    pub preset: String,
    pub verification: StoredVerification,
    pub event_type_from: String,
    pub event_id_from: String,
    pub content_type: String,
}

/// Applies the request's preset (its defaults fill what the request leaves
/// empty) and validates the result.
pub fn source_settings(request: &UpsertSourceRequest) -> Result<SourceSettings, ApiError> {
    let preset_name = request.preset.trim().to_ascii_lowercase();
    let preset = if preset_name.is_empty() {
        None
    } else {
        Some(presets::preset(&preset_name).ok_or_else(|| {
            ApiError::invalid(format!(
                "preset {:?} is not known; use one of {}",
                request.preset,
                PRESET_NAMES.join(", ")
            ))
        })?)
    };
    let explicit = request
        .verification
        .as_ref()
        .and_then(|verification| verification.scheme.as_ref())
        .is_some();
    let mut verification = match (&preset, explicit) {
        (_, true) => {
            let given = StoredVerification::from_request(request.verification.clone())?;
            if let Some(preset) = &preset {
                preset.check_scheme(&preset_name, &given)?;
            }
            given
        }
        (Some(preset), false) => preset.verification(&preset_name)?,
        (None, false) => StoredVerification::None,
    };
    if request.timestamp_tolerance_seconds > 0
        && !verification.set_tolerance(request.timestamp_tolerance_seconds)
    {
        return Err(ApiError::invalid(format!(
            "timestamp_tolerance_seconds applies only to timestamped schemes; {} has no timestamp",
            verification.scheme_name()
        )));
    }
    // Whichever field set it: the preset's `timestamp_tolerance_seconds` or the
    // explicit scheme's own `tolerance_seconds`.
    if let Some(tolerance) = verification.tolerance_seconds()
        && tolerance > MAX_TOLERANCE_SECONDS
    {
        return Err(ApiError::invalid(format!(
            "a timestamp tolerance of {tolerance} seconds is too long for {}; it may be at most {MAX_TOLERANCE_SECONDS} seconds (a day)",
            verification.scheme_name()
        )));
    }
    let pick = |given: &str, default: Option<&'static str>| {
        let given = given.trim();
        if given.is_empty() {
            default.unwrap_or_default().to_owned()
        } else {
            given.to_owned()
        }
    };
    let event_type_from = pick(
        &request.event_type_from,
        preset.as_ref().map(|preset| preset.event_type_from),
    );
    let event_id_from = pick(
        &request.event_id_from,
        preset.as_ref().map(|preset| preset.event_id_from),
    );
    let content_type = pick(
        &request.content_type,
        preset.as_ref().map(|preset| preset.content_type),
    )
    .to_ascii_lowercase();
    validate::field_locator("event_type_from", &event_type_from)?;
    for alternative in event_id_from.split('|') {
        if event_id_from.contains('|') && alternative.trim().is_empty() {
            return Err(ApiError::invalid(format!(
                "event_id_from {event_id_from:?} has an empty alternative"
            )));
        }
        validate::field_locator("event_id_from", alternative.trim())?;
    }
    if !matches!(content_type.as_str(), "" | "json" | "form") {
        return Err(ApiError::invalid(format!(
            "content_type {:?} must be \"json\", \"form\" or empty",
            request.content_type
        )));
    }
    Ok(SourceSettings {
        preset: preset_name,
        verification,
        event_type_from,
        event_id_from: event_id_from
            .split('|')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("|"),
        content_type,
    })
}

/// A header name as senders spell them: letters, digits, '-' and '_'.
fn header_name(field: &str, value: &str) -> Result<String, ApiError> {
    let header = value.trim();
    let valid = !header.is_empty()
        && header.len() <= 128
        && header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(header.to_owned())
    } else {
        Err(ApiError::invalid(format!(
            "{field} must be a header name such as \"X-Signature\""
        )))
    }
}

fn tolerance_or_default(tolerance_seconds: u32) -> u32 {
    if tolerance_seconds == 0 {
        DEFAULT_TOLERANCE_SECONDS
    } else {
        tolerance_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foco_proto::v1::verification::Scheme;
    use foco_proto::v1::{
        GenericHmac, HmacSha256, SignatureEncoding, StandardWebhooks, StripeSignature, Verification,
    };

    fn request(preset: &str) -> UpsertSourceRequest {
        UpsertSourceRequest {
            account: "a".to_owned(),
            name: "s".to_owned(),
            preset: preset.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn every_preset_expands_to_valid_settings() {
        for name in PRESET_NAMES {
            if name == "generic" {
                continue;
            }
            let settings = source_settings(&request(name)).unwrap();
            assert_eq!(settings.preset, name);
        }
    }

    #[test]
    fn platform_presets_are_all_but_the_hand_written_ones() {
        let platforms: Vec<&str> = PRESET_NAMES
            .into_iter()
            .filter(|name| is_platform(name))
            .collect();
        assert_eq!(platforms.len(), PRESET_NAMES.len() - 4);
        for name in [
            "generic",
            "basic-auth",
            "bearer",
            "none",
            "",
            "no-such-preset",
        ] {
            assert!(!is_platform(name), "{name:?}");
        }
        for name in ["shopify", "stripe", "github", "twilio"] {
            assert!(is_platform(name), "{name}");
        }
    }

    #[test]
    fn shopify_defaults_and_overrides() {
        let settings = source_settings(&request("Shopify")).unwrap();
        assert_eq!(settings.preset, "shopify");
        assert_eq!(settings.event_type_from, "header:X-Shopify-Topic");
        assert_eq!(
            settings.event_id_from,
            "header:X-Shopify-Event-Id|header:X-Shopify-Webhook-Id"
        );
        assert_eq!(settings.content_type, "json");
        assert_eq!(settings.verification.scheme_name(), "hmac-sha256");

        let mut custom = request("shopify");
        custom.event_type_from = "body:kind".to_owned();
        custom.content_type = "form".to_owned();
        let settings = source_settings(&custom).unwrap();
        assert_eq!(settings.event_type_from, "body:kind");
        assert_eq!(settings.content_type, "form");
    }

    #[test]
    fn a_preset_refuses_another_scheme_and_unknown_names() {
        let mut mismatched = request("stripe");
        mismatched.verification = Some(Verification {
            scheme: Some(Scheme::HmacSha256(HmacSha256 {
                header: "X-Sig".to_owned(),
                encoding: SignatureEncoding::Hex as i32,
                prefix: String::new(),
            })),
        });
        assert!(source_settings(&mismatched).is_err());
        assert!(source_settings(&request("paypal")).is_err());
    }

    #[test]
    fn generic_needs_its_settings_and_tolerance_needs_a_timestamp() {
        assert!(source_settings(&request("generic")).is_err());
        let mut generic = request("generic");
        generic.verification = Some(Verification {
            scheme: Some(Scheme::GenericHmac(GenericHmac {
                header: "X-Sig".to_owned(),
                encoding: SignatureEncoding::Hex as i32,
                timestamp_header: "X-Time".to_owned(),
                signed_content: "{timestamp}.{body}".to_owned(),
                ..Default::default()
            })),
        });
        generic.timestamp_tolerance_seconds = 600;
        let settings = source_settings(&generic).unwrap();
        assert_eq!(settings.verification.to_json()["tolerance_seconds"], 600);

        let mut shopify = request("shopify");
        shopify.timestamp_tolerance_seconds = 600;
        assert!(source_settings(&shopify).is_err());
        let mut stripe = request("stripe");
        stripe.timestamp_tolerance_seconds = 600;
        let settings = source_settings(&stripe).unwrap();
        assert_eq!(
            settings.verification.to_json(),
            serde_json::json!({"scheme": "stripe", "tolerance_seconds": 600})
        );
    }

    #[test]
    fn no_tolerance_may_exceed_a_day_whichever_field_sets_it() {
        let explicit = |scheme: Scheme| {
            let mut request = request("");
            request.verification = Some(Verification {
                scheme: Some(scheme),
            });
            request
        };
        let generic = |tolerance_seconds| {
            Scheme::GenericHmac(GenericHmac {
                header: "X-Sig".to_owned(),
                encoding: SignatureEncoding::Hex as i32,
                timestamp_header: "X-Time".to_owned(),
                signed_content: "{timestamp}.{body}".to_owned(),
                tolerance_seconds,
                ..Default::default()
            })
        };
        let too_long = [
            explicit(Scheme::Stripe(StripeSignature {
                tolerance_seconds: MAX_TOLERANCE_SECONDS + 1,
            })),
            explicit(Scheme::StandardWebhooks(StandardWebhooks {
                tolerance_seconds: u32::MAX,
            })),
            explicit(generic(MAX_TOLERANCE_SECONDS + 1)),
            UpsertSourceRequest {
                timestamp_tolerance_seconds: MAX_TOLERANCE_SECONDS + 1,
                ..request("stripe")
            },
        ];
        for request in too_long {
            let error = source_settings(&request).unwrap_err().to_string();
            assert!(error.contains("at most 86400 seconds"), "{error}");
        }
        let a_day = [
            explicit(Scheme::Stripe(StripeSignature {
                tolerance_seconds: MAX_TOLERANCE_SECONDS,
            })),
            explicit(generic(MAX_TOLERANCE_SECONDS)),
            UpsertSourceRequest {
                timestamp_tolerance_seconds: MAX_TOLERANCE_SECONDS,
                ..request("hubspot")
            },
        ];
        for request in a_day {
            let settings = source_settings(&request).unwrap();
            assert_eq!(
                settings.verification.tolerance_seconds(),
                Some(MAX_TOLERANCE_SECONDS)
            );
        }
    }

    #[test]
    fn event_id_alternatives_are_each_checked() {
        let mut bad = request("");
        bad.event_id_from = "header:X-A|".to_owned();
        assert!(source_settings(&bad).is_err());
        bad.event_id_from = "header:X-A|query:x".to_owned();
        assert!(source_settings(&bad).is_err());
        bad.event_id_from = "header:X-A | body:id".to_owned();
        assert_eq!(
            source_settings(&bad).unwrap().event_id_from,
            "header:X-A|body:id"
        );
    }
}
