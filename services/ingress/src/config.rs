//! The ingress configuration: defaults, then environment variables, validated once
//! at start.

use std::net::SocketAddr;
use std::time::Duration;

use foco_control_client::ControlConfig;
use foco_runtime::env::{ConfigError, Env};

/// Default per-source body limit when a source sets none (`max_body_bytes = 0`).
pub const DEFAULT_SOURCE_MAX_BODY: usize = 256 * 1024;

#[derive(Clone)]
pub struct Config {
    /// Webhook listener. `FOCO_INGRESS_LISTEN` [0.0.0.0:8080]
    pub http_listen: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics`. `FOCO_ADMIN_LISTEN` [127.0.0.1:9092]
    pub admin_listen: SocketAddr,
    /// `NATS_URL`, the NATS credentials, `FOCO_BUS_PREFIX`, and the streams'
    /// settings (`FOCO_BUS_REPLICAS` [1], `FOCO_BUS_MAX_BYTES` [1 GiB]).
    pub bus: foco_bus::BusConfig,
    /// `FOCO_CONTROL_URL`, `FOCO_CONTROL_API_KEY` (required: ingress's service
    /// key, scopes `resolve:sources` and `resolve:routes`, since lookups return
    /// signing secrets), `FOCO_CONTROL_CA_FILE`.
    pub control: ControlConfig,
    /// `FOCO_CONFIG_CACHE_TTL` [30s]: the backstop when a change announcement is missed.
    pub config_cache_ttl: Duration,
    /// Global cap on a body, whatever a source allows. `FOCO_INGRESS_MAX_BODY` [1048576]
    pub max_body_bytes: usize,
    /// `FOCO_INGRESS_SOURCE_RATE_LIMIT` [500, 0 = none]: webhooks a second each
    /// source may send to each replica when the source sets no limit of its own,
    /// with bursts of twice that. A platform that sends more sets its source's
    /// `rate_limit_per_second`.
    pub default_source_rate: u32,
    /// How long to wait for JetStream's ack. `FOCO_PUBLISH_TIMEOUT` [5s]
    pub publish_timeout: Duration,
    /// Whole-request deadline, body upload included. `FOCO_INGRESS_REQUEST_TIMEOUT` [30s]
    pub request_timeout: Duration,
    /// After shutdown starts, how long in-flight requests may take. `FOCO_SHUTDOWN_GRACE` [30s]
    pub shutdown_grace: Duration,
    /// The base URL senders call ingress at, e.g. `https://hooks.example.com` (with
    /// any path prefix a proxy strips). Twilio and HubSpot sign the URL they
    /// called, so behind a proxy it must be set. `FOCO_PUBLIC_URL` [unset: rebuilt
    /// from `X-Forwarded-Proto`/`X-Forwarded-Host`, else `Host`]
    pub public_url: Option<String>,
}

/// URLs may hold passwords or tokens; the API key is a secret already.
impl std::fmt::Debug for Config {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Config")
            .field("http_listen", &self.http_listen)
            .field("admin_listen", &self.admin_listen)
            .field("bus", &self.bus)
            .field("control", &self.control)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("publish_timeout", &self.publish_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Every variable, read through `env` and checked.
    pub fn from_lookup(env: &Env) -> Result<Self, ConfigError> {
        let config = Self {
            http_listen: env.parse_or(
                "FOCO_INGRESS_LISTEN",
                SocketAddr::from(([0, 0, 0, 0], 8080)),
            )?,
            admin_listen: env.parse_or(
                "FOCO_ADMIN_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 9092)),
            )?,
            bus: foco_bus::BusConfig::from_lookup(env)?,
            control: ControlConfig::from_lookup(
                env,
                "ingress resolves sources and provider routes through control, with its service key (foco api-keys create --service ingress)",
            )?,
            config_cache_ttl: env.duration_or("FOCO_CONFIG_CACHE_TTL", Duration::from_secs(30))?,
            max_body_bytes: env.parse_or("FOCO_INGRESS_MAX_BODY", 1024 * 1024)?,
            default_source_rate: env.parse_or("FOCO_INGRESS_SOURCE_RATE_LIMIT", 500)?,
            publish_timeout: env.duration_or("FOCO_PUBLISH_TIMEOUT", Duration::from_secs(5))?,
            request_timeout: env
                .duration_or("FOCO_INGRESS_REQUEST_TIMEOUT", Duration::from_secs(30))?,
            shutdown_grace: env.duration_or("FOCO_SHUTDOWN_GRACE", Duration::from_secs(30))?,
            public_url: env
                .optional("FOCO_PUBLIC_URL")
                .map(|url| url.trim().trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty()),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes == 0 {
            return Err(ConfigError::new(
                "FOCO_INGRESS_MAX_BODY",
                "0",
                "must be at least 1 byte",
            ));
        }
        let positive = [
            ("FOCO_PUBLISH_TIMEOUT", self.publish_timeout),
            ("FOCO_INGRESS_REQUEST_TIMEOUT", self.request_timeout),
            ("FOCO_CONFIG_CACHE_TTL", self.config_cache_ttl),
        ];
        for (name, value) in positive {
            if value.is_zero() {
                return Err(ConfigError::new(name, "0s", "must be longer than zero"));
            }
        }
        if self.publish_timeout >= self.request_timeout {
            return Err(ConfigError::new(
                "FOCO_PUBLISH_TIMEOUT",
                &format!("{:?}", self.publish_timeout),
                "must be shorter than FOCO_INGRESS_REQUEST_TIMEOUT, or a slow ack ends as a timeout instead of a clean 503",
            ));
        }
        if let Some(url) = &self.public_url {
            let has_scheme = url.starts_with("https://") || url.starts_with("http://");
            if !has_scheme || url.contains('?') || url.contains('#') {
                return Err(ConfigError::new(
                    "FOCO_PUBLIC_URL",
                    url,
                    "must be an http(s) URL without query or fragment, e.g. https://hooks.example.com",
                ));
            }
        }
        Ok(())
    }

    /// The rate limit for a source (per second, burst): its own, or the
    /// operator's default when it sets none.
    pub fn rate_limit_for(&self, per_second: u32, burst: u32) -> (u32, u32) {
        match per_second {
            0 => (
                self.default_source_rate,
                self.default_source_rate.saturating_mul(2),
            ),
            own => (own, burst),
        }
    }

    /// The body limit for a source: its own (`0` = 256 KiB), never above the cap.
    pub fn body_limit_for(&self, source_max_body_bytes: u32) -> usize {
        let source_limit = match source_max_body_bytes {
            0 => DEFAULT_SOURCE_MAX_BODY,
            limit => usize::try_from(limit).unwrap_or(usize::MAX),
        };
        source_limit.min(self.max_body_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: (&str, &str) = ("FOCO_CONTROL_API_KEY", "ingress-key");

    fn config() -> Config {
        Config::from_lookup(&Env::from_pairs([KEY])).unwrap()
    }

    #[test]
    fn defaults_need_only_the_service_key() {
        let error = Config::from_lookup(&Env::from_pairs::<&str, &str>([])).unwrap_err();
        assert_eq!(error.name, "FOCO_CONTROL_API_KEY");
        assert!(error.reason.contains("--service ingress"), "{error}");
        let config = config();
        assert_eq!(config.http_listen, SocketAddr::from(([0, 0, 0, 0], 8080)));
        assert_eq!(
            config.admin_listen,
            SocketAddr::from(([127, 0, 0, 1], 9092))
        );
        assert_eq!(config.bus.url, foco_bus::DEFAULT_NATS_URL);
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert_eq!(config.default_source_rate, 500);
        assert_eq!(config.public_url, None);
    }

    #[test]
    fn variables_override_the_defaults() {
        let config = Config::from_lookup(&Env::from_pairs([
            KEY,
            ("FOCO_INGRESS_LISTEN", "127.0.0.1:8181"),
            ("FOCO_CONTROL_URL", "https://control:50051"),
            ("FOCO_INGRESS_SOURCE_RATE_LIMIT", "0"),
            ("FOCO_PUBLIC_URL", "https://hooks.example.com/foco/"),
        ]))
        .unwrap();
        assert_eq!(config.http_listen, SocketAddr::from(([127, 0, 0, 1], 8181)));
        assert_eq!(config.control.url, "https://control:50051");
        assert_eq!(config.default_source_rate, 0);
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://hooks.example.com/foco")
        );
        for (name, value) in [
            ("FOCO_BUS_PREFIX", "a.b"),
            ("FOCO_INGRESS_MAX_BODY", "0"),
            ("FOCO_PUBLISH_TIMEOUT", "1m"),
            ("FOCO_PUBLIC_URL", "hooks.example.com"),
        ] {
            let error = Config::from_lookup(&Env::from_pairs([KEY, (name, value)])).unwrap_err();
            assert_eq!(error.name, name, "{error}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut config = config();
        config.bus.url = "nats://foco:hunter2@nats:4222".to_owned();
        config.control.api_key = secrecy::SecretString::from("control-key-value");
        let shown = format!("{config:?}");
        for secret in ["hunter2", "control-key-value"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("nats:4222"), "{shown}");
    }

    #[test]
    fn body_limits_default_per_source_and_are_capped() {
        let config = config();
        assert_eq!(config.body_limit_for(0), 256 * 1024);
        assert_eq!(config.body_limit_for(1000), 1000);
        assert_eq!(config.body_limit_for(u32::MAX), 1024 * 1024);
    }

    #[test]
    fn validation_catches_unworkable_values() {
        assert!(config().validate().is_ok());
        let mut bad = config();
        bad.publish_timeout = Duration::from_secs(60);
        assert!(bad.validate().is_err());
        let mut bad = config();
        bad.max_body_bytes = 0;
        assert!(bad.validate().is_err());
        let mut bad = config();
        bad.public_url = Some("hooks.example.com".to_owned());
        assert!(bad.validate().is_err());
        let mut good = config();
        good.public_url = Some("https://hooks.example.com/foco".to_owned());
        assert!(good.validate().is_ok());
    }
}
