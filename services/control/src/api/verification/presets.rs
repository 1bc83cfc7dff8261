//! Sender presets: for each platform, how it signs, where its event type and id
//! live, and how its bodies are encoded. Checked against each platform's own
//! documentation; ingress implements the schemes.

use super::{DEFAULT_TOLERANCE_SECONDS, StoredEncoding, StoredVerification};
use crate::error::ApiError;

pub const PRESET_NAMES: [&str; 16] = [
    "standard-webhooks",
    "stripe",
    "shopify",
    "woocommerce",
    "github",
    "typeform",
    "calendly",
    "hubspot",
    "mercadopago",
    "tiendanube",
    "hotmart",
    "twilio",
    "generic",
    "basic-auth",
    "bearer",
    "none",
];

/// Presets for requests written by hand (the account's own code, a script, a form
/// tool) rather than by a platform.
const HAND_WRITTEN: [&str; 4] = ["generic", "basic-auth", "bearer", "none"];

/// Whether `name` is a platform's preset, whose bodies the platform itself
/// produces (ingress then stores JSON bodies unread); false for the hand-written
/// presets and for names that are no preset.
pub fn is_platform(name: &str) -> bool {
    preset(name).is_some() && !HAND_WRITTEN.contains(&name)
}

/// What a preset fills in.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    scheme: PresetScheme,
    pub event_type_from: &'static str,
    pub event_id_from: &'static str,
    /// How bodies without a usable Content-Type are read.
    pub content_type: &'static str,
}

#[derive(Debug, Clone, Copy)]
enum PresetScheme {
    None,
    StandardWebhooks,
    Hmac {
        header: &'static str,
        encoding: StoredEncoding,
        prefix: &'static str,
    },
    Stripe,
    Calendly,
    HubspotV3,
    Mercadopago,
    Twilio,
    StaticToken {
        header: &'static str,
        prefix: &'static str,
    },
    BasicAuth,
    /// The request must give `verification.generic_hmac`.
    Generic,
}

const fn entry(
    scheme: PresetScheme,
    event_type_from: &'static str,
    event_id_from: &'static str,
    content_type: &'static str,
) -> Preset {
    Preset {
        scheme,
        event_type_from,
        event_id_from,
        content_type,
    }
}

/// The preset named `name` (lower-case), if it exists.
pub fn preset(name: &str) -> Option<Preset> {
    use PresetScheme::{Hmac, StaticToken};
    let found = match name {
        "standard-webhooks" => entry(
            PresetScheme::StandardWebhooks,
            "body:type",
            "header:webhook-id",
            "json",
        ),
        // Stripe retries for days with the same event `id`.
        "stripe" => entry(PresetScheme::Stripe, "body:type", "body:id", "json"),
        // X-Shopify-Event-Id is the same across the deliveries of one event (and
        // its webhook subscriptions); older API versions only send Webhook-Id.
        "shopify" => entry(
            Hmac {
                header: "X-Shopify-Hmac-Sha256",
                encoding: StoredEncoding::Base64,
                prefix: "",
            },
            "header:X-Shopify-Topic",
            "header:X-Shopify-Event-Id|header:X-Shopify-Webhook-Id",
            "json",
        ),
        "woocommerce" => entry(
            Hmac {
                header: "X-WC-Webhook-Signature",
                encoding: StoredEncoding::Base64,
                prefix: "",
            },
            "header:X-WC-Webhook-Topic",
            "header:X-WC-Webhook-Delivery-ID",
            "json",
        ),
        "github" => entry(
            Hmac {
                header: "X-Hub-Signature-256",
                encoding: StoredEncoding::Hex,
                prefix: "sha256=",
            },
            "header:X-GitHub-Event",
            "header:X-GitHub-Delivery",
            "json",
        ),
        "typeform" => entry(
            Hmac {
                header: "Typeform-Signature",
                encoding: StoredEncoding::Base64,
                prefix: "sha256=",
            },
            "body:event_type",
            "body:event_id",
            "json",
        ),
        // Calendly has no delivery id; a retry carries the same body, so the body
        // hash recognises it.
        "calendly" => entry(PresetScheme::Calendly, "body:event", "", "json"),
        // A delivery is an array of events; the first one names it.
        "hubspot" => entry(
            PresetScheme::HubspotV3,
            "body:0.subscriptionType",
            "body:0.eventId",
            "json",
        ),
        "mercadopago" => entry(PresetScheme::Mercadopago, "body:action", "body:id", "json"),
        // Tiendanube's `id` is the resource's (order/created and order/paid share
        // it), so the body hash is the event id.
        "tiendanube" => entry(
            Hmac {
                header: "x-linkedstore-hmac-sha256",
                encoding: StoredEncoding::Hex,
                prefix: "",
            },
            "body:event",
            "",
            "json",
        ),
        "hotmart" => entry(
            StaticToken {
                header: "X-HOTMART-HOTTOK",
                prefix: "",
            },
            "body:event",
            "body:id",
            "json",
        ),
        "twilio" => entry(
            PresetScheme::Twilio,
            "",
            "body:MessageSid|body:SmsSid",
            "form",
        ),
        "generic" => entry(PresetScheme::Generic, "", "", ""),
        "basic-auth" => entry(PresetScheme::BasicAuth, "", "", ""),
        "bearer" => entry(
            StaticToken {
                header: "Authorization",
                prefix: "Bearer ",
            },
            "",
            "",
            "",
        ),
        "none" => entry(PresetScheme::None, "", "", ""),
        _ => return None,
    };
    Some(found)
}

impl Preset {
    /// The preset's own verification.
    pub fn verification(&self, name: &str) -> Result<StoredVerification, ApiError> {
        let tolerance_seconds = DEFAULT_TOLERANCE_SECONDS;
        Ok(match self.scheme {
            PresetScheme::None => StoredVerification::None,
            PresetScheme::StandardWebhooks => {
                StoredVerification::StandardWebhooks { tolerance_seconds }
            }
            PresetScheme::Hmac {
                header,
                encoding,
                prefix,
            } => StoredVerification::HmacSha256 {
                header: header.to_owned(),
                encoding,
                prefix: prefix.to_owned(),
            },
            PresetScheme::Stripe => StoredVerification::Stripe { tolerance_seconds },
            PresetScheme::Calendly => StoredVerification::Calendly { tolerance_seconds },
            PresetScheme::HubspotV3 => StoredVerification::HubspotV3 { tolerance_seconds },
            PresetScheme::Mercadopago => StoredVerification::Mercadopago { tolerance_seconds },
            PresetScheme::Twilio => StoredVerification::Twilio,
            PresetScheme::StaticToken { header, prefix } => StoredVerification::StaticToken {
                header: header.to_owned(),
                prefix: prefix.to_owned(),
            },
            PresetScheme::BasicAuth => StoredVerification::BasicAuth,
            PresetScheme::Generic => {
                return Err(ApiError::invalid(format!(
                    "preset {name:?} needs verification.generic_hmac (header, algorithm, encoding, ...)"
                )));
            }
        })
    }

    /// An explicit verification given with a preset must be of the preset's
    /// scheme (its settings may differ, e.g. a longer tolerance).
    pub fn check_scheme(&self, name: &str, given: &StoredVerification) -> Result<(), ApiError> {
        let expected = match self.scheme {
            PresetScheme::Generic => "generic-hmac",
            _ => self.verification(name)?.scheme_name(),
        };
        if given.scheme_name() == expected {
            Ok(())
        } else {
            Err(ApiError::invalid(format!(
                "preset {name:?} verifies with {expected}, not {}; leave verification out to use the preset's",
                given.scheme_name()
            )))
        }
    }
}
