//! The entries: one `ProviderSpec` per kind, and the `ProviderKind` enum that
//! names them. Adding a kind is one line in `kinds!` and one entry below.

use crate::keys::{
    ACCOUNT_SID, API_KEY, API_SECRET, AUTH_TOKEN, BASE_URL, BODY_TEMPLATE, CONTENT_TYPE, CURRENCY,
    FROM, ID_POINTER, IDEMPOTENT, MESSAGING_PROFILE_ID, MESSAGING_SERVICE_SID, PUBLIC_KEY, SANDBOX,
    SIGNATURE_METHOD, SIGNATURE_SECRET, URL, WEBHOOK_SECRET,
};
use crate::spec::{Callback, CallbackMethod, Carries, Check, Idempotency, Key, ProviderSpec};

/// Generates `ProviderKind` (one variant per entry, in this order: the order
/// of every list shown to people) and its link to the entries.
macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident => $spec:ident,)+) => {
        /// A provider kind. Matching on it is how a service says what it does
        /// for each kind, so adding one makes the compiler point at every place
        /// that must decide.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProviderKind {
            $($(#[$doc])* $variant,)+
        }

        impl ProviderKind {
            pub const ALL: &'static [ProviderKind] = &[$(ProviderKind::$variant,)+];
            /// Every kind's id, in the same order.
            pub const IDS: &'static [&'static str] = &[$($spec.id,)+];

            pub const fn spec(self) -> &'static ProviderSpec {
                match self {
                    $(Self::$variant => &$spec,)+
                }
            }
        }
    };
}

kinds! {
    /// Prints the SMS to the operator's outbox: development and demos.
    Console => CONSOLE,
    /// A POST to your own gateway.
    Http => HTTP,
    Twilio => TWILIO,
    Vonage => VONAGE,
    Infobip => INFOBIP,
    SmsMasivos => SMSMASIVOS,
    Telnyx => TELNYX,
}

const POST: &[CallbackMethod] = &[CallbackMethod::Post];
const GET_OR_POST: &[CallbackMethod] = &[CallbackMethod::Get, CallbackMethod::Post];

/// The usual pair: receipts at `…/status`, customers' messages at `…/inbound`.
const fn status_and_inbound(methods: &'static [CallbackMethod]) -> [Callback; 2] {
    [
        Callback {
            name: "status",
            carries: Carries::Receipts,
            methods,
        },
        Callback {
            name: "inbound",
            carries: Carries::Inbound,
            methods,
        },
    ]
}

const fn from_setting(about: &'static str) -> Key {
    Key::setting(FROM, about)
}

const fn base_url(default: &'static str) -> Key {
    Key::setting(BASE_URL, "API base URL (regional endpoints, test fakes)")
        .checked(Check::HttpUrl)
        .defaults_to(default)
}

const CONSOLE: ProviderSpec = ProviderSpec {
    id: "console",
    display_name: "Console",
    summary: "prints the SMS to the sender's FOCO_CONSOLE_OUTBOX; nothing leaves the machine",
    keys: &[],
    header_credentials: false,
    // The file is the operator's (the sender's FOCO_CONSOLE_OUTBOX): a route
    // must not make the sender write anywhere else.
    refused_settings: &[(
        "path",
        "a console route writes to the operator's outbox (FOCO_CONSOLE_OUTBOX on the sender); settings.path is not accepted",
    )],
    sender_settings: &[],
    idempotency: Idempotency::Never,
    callbacks: &[],
};

const HTTP: ProviderSpec = ProviderSpec {
    id: "http",
    display_name: "HTTP gateway",
    summary: "POST {url} with Idempotency-Key: <job id>; other credentials are request headers",
    keys: &[
        Key::setting(URL, "the gateway's URL")
            .required()
            .checked(Check::HttpUrl),
        from_setting("default sender"),
        Key::setting(
            BODY_TEMPLATE,
            "minijinja template of the body (job_id, to, to_digits, from, body, account_id, event_id)",
        ),
        Key::setting(CONTENT_TYPE, "the body's content type").defaults_to("application/json"),
        Key::setting(
            ID_POINTER,
            "JSON pointer to the message id in the answer (e.g. /data/id)",
        ),
        Key::setting(
            IDEMPOTENT,
            "true if the gateway deduplicates on Idempotency-Key",
        )
        .defaults_to("false"),
    ],
    header_credentials: true,
    refused_settings: &[],
    sender_settings: &[],
    idempotency: Idempotency::WhenSetting(IDEMPOTENT),
    callbacks: &[],
};

const TWILIO: ProviderSpec = ProviderSpec {
    id: "twilio",
    display_name: "Twilio",
    summary: "Programmable Messaging",
    keys: &[
        Key::credential(ACCOUNT_SID, "AC…").required(),
        Key::credential(AUTH_TOKEN, "also verifies callbacks (X-Twilio-Signature)")
            .required()
            .verifying_callbacks(),
        from_setting("sender number or id (a job's from overrides it)"),
        Key::setting(MESSAGING_SERVICE_SID, "used when there is no from"),
        base_url("https://api.twilio.com"),
    ],
    header_credentials: false,
    refused_settings: &[],
    sender_settings: &[FROM, MESSAGING_SERVICE_SID],
    idempotency: Idempotency::Never,
    callbacks: &status_and_inbound(POST),
};

/// Vonage's signature methods, as its dashboard names them; ingress verifies
/// signed callbacks with the one the account chose.
pub const VONAGE_SIGNATURE_METHODS: &[&str] = &["md5hash", "md5", "sha1", "sha256", "sha512"];

const VONAGE: ProviderSpec = ProviderSpec {
    id: "vonage",
    display_name: "Vonage",
    summary: "SMS API",
    keys: &[
        Key::credential(API_KEY, "the API key").required(),
        Key::credential(API_SECRET, "the API secret").required(),
        // Verifies signed delivery receipts and inbound SMS (ingress).
        Key::credential(SIGNATURE_SECRET, "verifies signed callbacks").verifying_callbacks(),
        Key::setting(
            SIGNATURE_METHOD,
            "md5hash, md5, sha1, sha256 or sha512: the API key's",
        )
        .checked(Check::OneOf(VONAGE_SIGNATURE_METHODS))
        .defaults_to("md5hash"),
        from_setting("sender number or alphanumeric id"),
        Key::setting(CURRENCY, "currency of the account's prices").defaults_to("EUR"),
        base_url("https://rest.nexmo.com"),
    ],
    header_credentials: false,
    refused_settings: &[],
    sender_settings: &[],
    idempotency: Idempotency::Never,
    // Accounts may be set to send callbacks as query strings.
    callbacks: &status_and_inbound(GET_OR_POST),
};

const INFOBIP: ProviderSpec = ProviderSpec {
    id: "infobip",
    display_name: "Infobip",
    summary: "SMS API v3",
    keys: &[
        Key::credential(API_KEY, "the API key").required(),
        // What Infobip's webhook subscription sends back (ingress).
        Key::credential(
            WEBHOOK_SECRET,
            "authenticates callbacks (basic auth password or X-Foco-Webhook-Secret)",
        )
        .verifying_callbacks(),
        // Each Infobip account has its own API host: there is no default.
        Key::setting(BASE_URL, "the account's own https://<id>.api.infobip.com")
            .required()
            .checked(Check::HttpUrl),
        from_setting("sender"),
    ],
    header_credentials: false,
    refused_settings: &[],
    sender_settings: &[],
    idempotency: Idempotency::Never,
    callbacks: &status_and_inbound(POST),
};

const SMSMASIVOS: ProviderSpec = ProviderSpec {
    id: "smsmasivos",
    display_name: "SMS Masivos",
    summary: "SMS Masivos (México), API v2; no callbacks documented",
    keys: &[
        Key::credential(API_KEY, "the API key").required(),
        from_setting("sender (where contracted)"),
        Key::setting(SANDBOX, "true sends sandbox=1"),
        base_url("https://api.smsmasivos.com.mx"),
    ],
    header_credentials: false,
    refused_settings: &[],
    sender_settings: &[],
    idempotency: Idempotency::Never,
    callbacks: &[],
};

const TELNYX: ProviderSpec = ProviderSpec {
    id: "telnyx",
    display_name: "Telnyx",
    summary: "Messaging API v2, with Idempotency-Key",
    keys: &[
        Key::credential(API_KEY, "the API key").required(),
        // The account's Ed25519 public key, for signed webhooks (ingress).
        Key::credential(
            PUBLIC_KEY,
            "the account's public key (base64): verifies callbacks",
        )
        .checked(Check::Base64 {
            bytes: 32,
            what: "the Telnyx public key as shown in its portal",
        })
        .verifying_callbacks(),
        from_setting("sender number (or use messaging_profile_id)"),
        Key::setting(MESSAGING_PROFILE_ID, "the messaging profile to send from"),
        base_url("https://api.telnyx.com"),
    ],
    header_credentials: false,
    refused_settings: &[],
    sender_settings: &[],
    idempotency: Idempotency::Always,
    // One URL per messaging profile receives both receipts and messages.
    callbacks: &[Callback {
        name: "events",
        carries: Carries::ReceiptsAndInbound,
        methods: POST,
    }],
};
