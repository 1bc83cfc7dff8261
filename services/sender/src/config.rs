//! The sender's configuration: defaults, then environment variables, validated once
//! at start. Tests build a `Config` value directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use foco_runtime::env::{self, ConfigError};
use secrecy::SecretString;

#[derive(Clone)]
pub struct Config {
    /// `NATS_URL`
    pub nats_url: String,
    /// `FOCO_BUS_PREFIX`: isolates environments and tests sharing one NATS.
    pub bus_prefix: String,
    /// `FOCO_BUS_REPLICAS`: stream replicas when this service creates the streams.
    pub bus_replicas: usize,
    /// `DATABASE_URL`: the sender writes the `messages` table (schema owned by control).
    pub database_url: String,
    /// `FOCO_CONTROL_URL`
    pub control_url: String,
    /// `FOCO_CONTROL_API_KEY` (falls back to `FOCO_ADMIN_API_KEY`): an admin key, as
    /// route resolution returns provider credentials.
    pub control_api_key: SecretString,
    /// `FOCO_ADMIN_LISTEN`: `/healthz`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// `FOCO_SENDER_CONCURRENCY`: jobs handled at once by this process.
    pub concurrency: usize,
    /// `FOCO_SENDER_MAX_ACK_PENDING`: unacknowledged jobs across all replicas,
    /// including jobs waiting out a retry delay (a delayed `nak` still counts). Kept
    /// well above `concurrency` so that a few thousand jobs in backoff do not stall
    /// fresh ones.
    pub max_ack_pending: i64,
    /// `FOCO_SENDER_ACK_WAIT`: must exceed `provider_timeout`; long jobs also send
    /// progress acks.
    pub ack_wait: Duration,
    /// `FOCO_PROVIDER_TIMEOUT`: whole-request timeout of one provider call.
    pub provider_timeout: Duration,
    /// `FOCO_SENDER_MAX_ATTEMPTS`: provider calls before a transiently failing job
    /// is recorded as failed.
    pub max_attempts: u32,
    /// `FOCO_CONSOLE_OUTBOX`: JSON-lines file the console provider appends to when its
    /// route has no `path` setting.
    pub console_outbox: PathBuf,
    /// `FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS`: allow provider URLs on loopback, private
    /// and link-local addresses (local fakes, tests). Off in production (SSRF).
    pub allow_private_provider_hosts: bool,
    /// `FOCO_CONFIG_CACHE_TTL`: backstop for missed configuration-change announcements.
    pub config_cache_ttl: Duration,
    /// `FOCO_SHUTDOWN_GRACE`: how long in-flight jobs may take to finish on shutdown.
    pub shutdown_grace: Duration,
}

/// The database URL may hold a password; the API key is a secret already.
impl std::fmt::Debug for Config {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Config")
            .field("nats_url", &self.nats_url)
            .field("bus_prefix", &self.bus_prefix)
            .field("database_url", &"[redacted]")
            .field("control_url", &self.control_url)
            .field("admin_listen", &self.admin_listen)
            .field("concurrency", &self.concurrency)
            .field("max_ack_pending", &self.max_ack_pending)
            .field("ack_wait", &self.ack_wait)
            .field("provider_timeout", &self.provider_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("console_outbox", &self.console_outbox)
            .field(
                "allow_private_provider_hosts",
                &self.allow_private_provider_hosts,
            )
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let control_api_key = env::optional("FOCO_CONTROL_API_KEY")
            .or_else(|| env::optional("FOCO_ADMIN_API_KEY"))
            .ok_or_else(|| {
                ConfigError::new(
                    "FOCO_CONTROL_API_KEY",
                    "",
                    "required (or FOCO_ADMIN_API_KEY): the sender resolves provider routes with it",
                )
            })?;
        let config = Self {
            nats_url: env::string_or("NATS_URL", "nats://127.0.0.1:4222"),
            bus_prefix: env::string_or("FOCO_BUS_PREFIX", ""),
            bus_replicas: env::parse_or("FOCO_BUS_REPLICAS", 1)?,
            database_url: env::string_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/foco"),
            control_url: env::string_or("FOCO_CONTROL_URL", "http://127.0.0.1:50051"),
            control_api_key: SecretString::from(control_api_key),
            admin_listen: env::parse_or(
                "FOCO_ADMIN_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 9094)),
            )?,
            concurrency: env::parse_or("FOCO_SENDER_CONCURRENCY", 64)?,
            max_ack_pending: env::parse_or("FOCO_SENDER_MAX_ACK_PENDING", 10_000)?,
            ack_wait: env::duration_or("FOCO_SENDER_ACK_WAIT", Duration::from_secs(60))?,
            provider_timeout: env::duration_or("FOCO_PROVIDER_TIMEOUT", Duration::from_secs(15))?,
            max_attempts: env::parse_or("FOCO_SENDER_MAX_ATTEMPTS", 8)?,
            console_outbox: PathBuf::from(env::string_or(
                "FOCO_CONSOLE_OUTBOX",
                "var/outbox.jsonl",
            )),
            allow_private_provider_hosts: env::parse_or(
                "FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS",
                false,
            )?,
            config_cache_ttl: env::duration_or("FOCO_CONFIG_CACHE_TTL", Duration::from_secs(30))?,
            shutdown_grace: env::duration_or("FOCO_SHUTDOWN_GRACE", Duration::from_secs(25))?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the relations between settings; `App::build` calls it too, so a
    /// hand-built `Config` gets the same checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.concurrency == 0 {
            return Err(ConfigError::new(
                "FOCO_SENDER_CONCURRENCY",
                "0",
                "must be at least 1",
            ));
        }
        if self.max_ack_pending < self.concurrency as i64 {
            return Err(ConfigError::new(
                "FOCO_SENDER_MAX_ACK_PENDING",
                &self.max_ack_pending.to_string(),
                "must be at least FOCO_SENDER_CONCURRENCY",
            ));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "FOCO_SENDER_MAX_ATTEMPTS",
                "0",
                "must be at least 1",
            ));
        }
        if self.provider_timeout.is_zero() {
            return Err(ConfigError::new(
                "FOCO_PROVIDER_TIMEOUT",
                "0s",
                "must be positive",
            ));
        }
        // A job redelivered while its provider call is still running would be
        // seen as abandoned; progress acks cover the slow cases, this covers the rest.
        if self.ack_wait <= self.provider_timeout {
            return Err(ConfigError::new(
                "FOCO_SENDER_ACK_WAIT",
                &humantime::format_duration(self.ack_wait).to_string(),
                format!(
                    "must be longer than FOCO_PROVIDER_TIMEOUT ({})",
                    humantime::format_duration(self.provider_timeout)
                ),
            ));
        }
        Ok(())
    }

    /// How long a `sending` claim is presumed alive: the provider call is bounded by
    /// `provider_timeout`, and the outcome write follows within seconds. A claim
    /// older than this belongs to a sender that died. (Misjudging a slow holder as
    /// dead only mislabels the job `unknown` until the holder records the real
    /// outcome; it never causes a second send.)
    pub fn claim_lease(&self) -> Duration {
        self.provider_timeout + Duration::from_secs(5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            nats_url: String::new(),
            bus_prefix: String::new(),
            bus_replicas: 1,
            database_url: String::new(),
            control_url: String::new(),
            control_api_key: SecretString::from("k"),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            concurrency: 64,
            max_ack_pending: 10_000,
            ack_wait: Duration::from_secs(60),
            provider_timeout: Duration::from_secs(15),
            max_attempts: 8,
            console_outbox: PathBuf::from("var/outbox.jsonl"),
            allow_private_provider_hosts: false,
            config_cache_ttl: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(25),
        }
    }

    #[test]
    fn defaults_are_valid() {
        sample().validate().unwrap();
    }

    #[test]
    fn ack_wait_must_exceed_provider_timeout() {
        let mut config = sample();
        config.ack_wait = Duration::from_secs(15);
        let error = config.validate().unwrap_err();
        assert_eq!(error.name, "FOCO_SENDER_ACK_WAIT");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut config = sample();
        config.database_url = "postgres://foco:hunter2@db/foco".to_owned();
        config.control_api_key = SecretString::from("control-key-value");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("control-key-value"), "{shown}");
    }

    #[test]
    fn zero_concurrency_is_refused() {
        let mut config = sample();
        config.concurrency = 0;
        assert!(config.validate().is_err());
    }
}
