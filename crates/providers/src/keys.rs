//! The names of provider settings and credentials, spelled once. Adapters and
//! callback handlers read routes with these, so a misspelt name does not build.

pub const ACCOUNT_SID: &str = "account_sid";
pub const API_KEY: &str = "api_key";
pub const API_SECRET: &str = "api_secret";
pub const AUTH_TOKEN: &str = "auth_token";
pub const BASE_URL: &str = "base_url";
pub const BODY_TEMPLATE: &str = "body_template";
pub const CONTENT_TYPE: &str = "content_type";
pub const CURRENCY: &str = "currency";
pub const FROM: &str = "from";
pub const ID_POINTER: &str = "id_pointer";
pub const IDEMPOTENT: &str = "idempotent";
pub const MESSAGING_PROFILE_ID: &str = "messaging_profile_id";
pub const MESSAGING_SERVICE_SID: &str = "messaging_service_sid";
pub const PUBLIC_KEY: &str = "public_key";
pub const SANDBOX: &str = "sandbox";
pub const SIGNATURE_METHOD: &str = "signature_method";
pub const SIGNATURE_SECRET: &str = "signature_secret";
pub const URL: &str = "url";
pub const WEBHOOK_SECRET: &str = "webhook_secret";

/// Settings every kind takes, read by the sender's routing (docs/providers.md):
/// failover order, destinations, shared rate limit, circuit breaker, quiet
/// hours, HELP text.
pub const ROUTE_SETTINGS: &[&str] = &[
    "failover",
    "country_prefixes",
    "rate_limit",
    "breaker_threshold",
    "breaker_cooldown",
    "quiet_hours",
    "help_text",
];
