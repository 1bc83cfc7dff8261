//! The console configuration: defaults, then environment variables, validated
//! once at start.

use std::net::SocketAddr;
use std::time::Duration;

use axum_extra::extract::cookie::Key;
use base64::Engine as _;
use foco_runtime::env::{self, ConfigError, Env};

/// Bytes of the session key: the cookie crate signs with half and encrypts with
/// the other half.
pub const SESSION_KEY_BYTES: usize = 64;

#[derive(Clone)]
pub struct Config {
    /// The pages. `FOCO_CONSOLE_LISTEN` [127.0.0.1:8081]
    pub http_listen: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics`. `FOCO_ADMIN_LISTEN` [127.0.0.1:9095]
    pub admin_listen: SocketAddr,
    /// `FOCO_CONTROL_URL` [http://127.0.0.1:50051]
    pub control_url: String,
    /// The base URL platforms post webhooks to, shown in each source's webhook
    /// URL. `FOCO_INGRESS_URL` [http://127.0.0.1:8080]
    pub ingress_url: String,
    /// Encrypts and authenticates the session cookie. `FOCO_CONSOLE_SESSION_KEY`
    /// (required): 64 random bytes, base64. Rotating it signs everyone out.
    pub session_key: Key,
    /// How long a sign-in lasts. `FOCO_CONSOLE_SESSION_TTL` [12h]
    pub session_ttl: Duration,
    /// Mark cookies `Secure` (HTTPS only). `FOCO_CONSOLE_SECURE_COOKIES` [true];
    /// `false` only for plain-HTTP development on loopback.
    pub secure_cookies: bool,
    /// After shutdown starts, how long in-flight requests may take. `FOCO_SHUTDOWN_GRACE` [10s]
    pub shutdown_grace: Duration,
}

/// The session key is a secret; URLs may hold credentials.
impl std::fmt::Debug for Config {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Config")
            .field("http_listen", &self.http_listen)
            .field("admin_listen", &self.admin_listen)
            .field("control_url", &env::redacted_url(&self.control_url))
            .field("ingress_url", &self.ingress_url)
            .field("session_ttl", &self.session_ttl)
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Every variable, read through `env` and checked.
    pub fn from_lookup(env: &Env) -> Result<Self, ConfigError> {
        let session_key_text = env.required(
            "FOCO_CONSOLE_SESSION_KEY",
            "64 random bytes, base64 (e.g. `head -c 64 /dev/urandom | base64 -w0`)",
        )?;
        let config = Self {
            http_listen: env.parse_or(
                "FOCO_CONSOLE_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 8081)),
            )?,
            admin_listen: env.parse_or(
                "FOCO_ADMIN_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 9095)),
            )?,
            control_url: env
                .string_or("FOCO_CONTROL_URL", foco_control_client::DEFAULT_CONTROL_URL),
            ingress_url: env
                .string_or("FOCO_INGRESS_URL", "http://127.0.0.1:8080")
                .trim()
                .trim_end_matches('/')
                .to_owned(),
            session_key: parse_session_key(&session_key_text)?,
            session_ttl: env
                .duration_or("FOCO_CONSOLE_SESSION_TTL", Duration::from_secs(12 * 3600))?,
            secure_cookies: env.parse_or("FOCO_CONSOLE_SECURE_COOKIES", true)?,
            shutdown_grace: env.duration_or("FOCO_SHUTDOWN_GRACE", Duration::from_secs(10))?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.session_ttl < Duration::from_secs(60)
            || self.session_ttl > Duration::from_secs(7 * 86400)
        {
            return Err(ConfigError::new(
                "FOCO_CONSOLE_SESSION_TTL",
                &humantime::format_duration(self.session_ttl).to_string(),
                "must be between 1m and 7d",
            ));
        }
        let has_scheme =
            self.ingress_url.starts_with("https://") || self.ingress_url.starts_with("http://");
        if !has_scheme || self.ingress_url.contains('?') || self.ingress_url.contains('#') {
            return Err(ConfigError::new(
                "FOCO_INGRESS_URL",
                &self.ingress_url,
                "must be an http(s) URL without query or fragment, e.g. https://hooks.example.com",
            ));
        }
        Ok(())
    }
}

/// `FOCO_CONSOLE_SESSION_KEY`: base64 (standard or URL-safe, padded or not) of
/// at least 64 bytes; the first 64 are used.
pub fn parse_session_key(text: &str) -> Result<Key, ConfigError> {
    let trimmed = text.trim();
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let bytes = engines
        .iter()
        .find_map(|engine| engine.decode(trimmed).ok())
        .ok_or_else(|| {
            ConfigError::new("FOCO_CONSOLE_SESSION_KEY", "[redacted]", "is not base64")
        })?;
    if bytes.len() < SESSION_KEY_BYTES {
        return Err(ConfigError::new(
            "FOCO_CONSOLE_SESSION_KEY",
            "[redacted]",
            format!("holds {} bytes; it needs {SESSION_KEY_BYTES}", bytes.len()),
        ));
    }
    Ok(Key::from(&bytes[..SESSION_KEY_BYTES]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            http_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            control_url: "http://foco:hunter2@127.0.0.1:50051".to_owned(),
            ingress_url: "http://127.0.0.1:8080".to_owned(),
            session_key: Key::generate(),
            session_ttl: Duration::from_secs(3600),
            secure_cookies: true,
            shutdown_grace: Duration::from_secs(10),
        }
    }

    #[test]
    fn only_the_session_key_is_required() {
        let error = Config::from_lookup(&Env::from_pairs::<&str, &str>([])).unwrap_err();
        assert_eq!(error.name, "FOCO_CONSOLE_SESSION_KEY");
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        let config = Config::from_lookup(&Env::from_pairs([
            ("FOCO_CONSOLE_SESSION_KEY", key.as_str()),
            ("FOCO_INGRESS_URL", "https://hooks.example.com/"),
        ]))
        .unwrap();
        assert_eq!(config.http_listen, SocketAddr::from(([127, 0, 0, 1], 8081)));
        assert_eq!(config.control_url, foco_control_client::DEFAULT_CONTROL_URL);
        assert_eq!(config.ingress_url, "https://hooks.example.com");
        assert!(config.secure_cookies);
        for (name, value) in [
            ("FOCO_CONSOLE_SESSION_TTL", "10s"),
            ("FOCO_CONSOLE_SECURE_COOKIES", "sometimes"),
            ("FOCO_CONSOLE_SESSION_KEY", "c2hvcnQ="),
        ] {
            let pairs = [("FOCO_CONSOLE_SESSION_KEY", key.as_str()), (name, value)];
            let error = Config::from_lookup(&Env::from_pairs(pairs)).unwrap_err();
            assert_eq!(error.name, name, "{error}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let shown = format!("{:?}", config());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("session_key"), "{shown}");
    }

    #[test]
    fn session_keys_need_64_bytes_of_base64() {
        let long = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        assert!(parse_session_key(&long).is_ok());
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(parse_session_key(&short).is_err());
        assert!(parse_session_key("not base64 at all!").is_err());
    }

    #[test]
    fn validation_catches_unworkable_values() {
        assert!(config().validate().is_ok());
        let mut bad = config();
        bad.session_ttl = Duration::from_secs(1);
        assert!(bad.validate().is_err());
        let mut bad = config();
        bad.ingress_url = "hooks.example.com".to_owned();
        assert!(bad.validate().is_err());
    }
}
