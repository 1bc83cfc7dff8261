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

/// Settings every kind takes, read by the sender's routing (docs/providers.md).
/// Failover order: route names, comma-separated.
pub const FAILOVER: &str = "failover";
/// E.164 prefixes the route sends to, comma-separated (`+52,+1`).
pub const COUNTRY_PREFIXES: &str = "country_prefixes";
/// Messages a second for the route, across all sender replicas.
pub const RATE_LIMIT: &str = "rate_limit";
/// Failures in a row that open the route's circuit breaker.
pub const BREAKER_THRESHOLD: &str = "breaker_threshold";
/// Longest an open breaker skips the route (a duration).
pub const BREAKER_COOLDOWN: &str = "breaker_cooldown";
/// Local window in which marketing messages are held (`21:00-08:00`, `off`).
pub const QUIET_HOURS: &str = "quiet_hours";
/// The answer to an inbound HELP/AYUDA.
pub const HELP_TEXT: &str = "help_text";

/// Every setting every kind takes.
pub const ROUTE_SETTINGS: &[&str] = &[
    FAILOVER,
    COUNTRY_PREFIXES,
    RATE_LIMIT,
    BREAKER_THRESHOLD,
    BREAKER_COOLDOWN,
    QUIET_HOURS,
    HELP_TEXT,
];
