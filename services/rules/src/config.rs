use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use foco_runtime::env::{self, ConfigError};
use secrecy::SecretString;

#[derive(Clone)]
pub struct Config {
    pub nats_url: String,
    /// `NATS_CREDS_FILE`, `NATS_NKEY_FILE` or `NATS_USER`/`NATS_PASSWORD`, and
    /// `NATS_CA_FILE`: who this service is to NATS (see `foco_bus::NatsAuth`).
    pub nats_auth: foco_bus::NatsAuth,
    pub database_url: String,
    pub bus_prefix: String,
    /// `FOCO_BUS_REPLICAS`, `FOCO_BUS_MAX_BYTES`: the streams.
    pub bus: foco_bus::StreamSettings,
    pub control_url: String,
    /// `FOCO_CONTROL_API_KEY` (required): rules' service key (scope
    /// `resolve:sources`).
    pub control_api_key: SecretString,
    /// `FOCO_CONTROL_CA_FILE` [none: the system's roots]: PEM of the CA to trust
    /// when `FOCO_CONTROL_URL` is `https://`.
    pub control_ca_file: Option<PathBuf>,
    pub admin_listen: SocketAddr,
    pub config_cache_ttl: Duration,
    /// Events evaluated at once by this replica.
    pub concurrency: usize,
    /// Postgres transactions storing events at once.
    pub store_writers: usize,
    /// Most events stored in one transaction.
    pub store_batch: usize,
    /// What one event may produce, whatever its payload holds.
    pub limits: foco_rule_engine::Limits,
    /// How long JetStream waits for an ack before redelivering an event.
    pub ack_wait: Duration,
    /// Deliveries after which an event that keeps failing is recorded as a
    /// dead end and terminated (0: never).
    pub max_deliveries: i64,
    pub publish_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Pause between scheduler passes that found nothing due.
    pub scheduler_tick: Duration,
    /// Due jobs claimed per pass.
    pub scheduler_batch: i64,
    /// Most delayed jobs this replica publishes per second (catching up after downtime).
    pub scheduler_max_per_second: u32,
    /// Longest a due job waits for events received before its due time (that
    /// might cancel it) to be evaluated.
    pub scheduler_max_hold: Duration,
    /// How often the consumer's lag is read from JetStream for the metrics.
    pub lag_interval: Duration,
}

/// URLs may hold passwords or tokens; the API key is a secret already.
impl std::fmt::Debug for Config {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Config")
            .field("nats_url", &env::redacted_url(&self.nats_url))
            .field("nats_auth", &self.nats_auth)
            .field("database_url", &env::redacted_url(&self.database_url))
            .field("bus_prefix", &self.bus_prefix)
            .field("control_url", &env::redacted_url(&self.control_url))
            .field("control_ca_file", &self.control_ca_file)
            .field("admin_listen", &self.admin_listen)
            .field("concurrency", &self.concurrency)
            .field("store_writers", &self.store_writers)
            .field("store_batch", &self.store_batch)
            .field("ack_wait", &self.ack_wait)
            .field("max_deliveries", &self.max_deliveries)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let control_api_key = env::optional("FOCO_CONTROL_API_KEY").ok_or_else(|| {
            ConfigError::new(
                "FOCO_CONTROL_API_KEY",
                "",
                "required: rules resolves sources through control, with its service key (foco api-keys create --service rules)",
            )
        })?;
        let concurrency: usize = env::parse_or("FOCO_RULES_CONCURRENCY", 256)?;
        if concurrency == 0 {
            return Err(ConfigError::new(
                "FOCO_RULES_CONCURRENCY",
                "0",
                "must be at least 1",
            ));
        }
        Ok(Self {
            nats_url: env::string_or("NATS_URL", "nats://127.0.0.1:4222"),
            nats_auth: foco_bus::NatsAuth::from_env()?,
            database_url: env::string_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/foco"),
            bus_prefix: env::string_or("FOCO_BUS_PREFIX", ""),
            bus: foco_bus::StreamSettings::from_env()?,
            control_url: env::string_or("FOCO_CONTROL_URL", "http://127.0.0.1:50051"),
            control_api_key: SecretString::from(control_api_key),
            control_ca_file: env::optional("FOCO_CONTROL_CA_FILE").map(PathBuf::from),
            admin_listen: env::parse_or(
                "FOCO_ADMIN_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 9093)),
            )?,
            config_cache_ttl: env::duration_or("FOCO_CONFIG_CACHE_TTL", Duration::from_secs(30))?,
            concurrency,
            store_writers: env::parse_or("FOCO_RULES_STORE_WRITERS", 2)?,
            store_batch: env::parse_or("FOCO_RULES_STORE_BATCH", 256)?,
            limits: foco_rule_engine::Limits {
                recipients_per_rule: env::parse_or(
                    "FOCO_RULES_MAX_RECIPIENTS_PER_RULE",
                    foco_rule_engine::Limits::default().recipients_per_rule,
                )?,
                jobs_per_event: env::parse_or(
                    "FOCO_RULES_MAX_JOBS_PER_EVENT",
                    foco_rule_engine::Limits::default().jobs_per_event,
                )?,
            },
            ack_wait: env::duration_or("FOCO_RULES_ACK_WAIT", Duration::from_secs(30))?,
            max_deliveries: env::parse_or("FOCO_RULES_MAX_DELIVERIES", 20)?,
            publish_timeout: env::duration_or("FOCO_PUBLISH_TIMEOUT", Duration::from_secs(5))?,
            shutdown_grace: env::duration_or("FOCO_SHUTDOWN_GRACE", Duration::from_secs(20))?,
            scheduler_tick: env::duration_or("FOCO_SCHEDULER_TICK", Duration::from_millis(100))?,
            scheduler_batch: env::parse_or("FOCO_SCHEDULER_BATCH", 200)?,
            scheduler_max_per_second: env::parse_or("FOCO_SCHEDULER_MAX_PER_SECOND", 2000)?,
            scheduler_max_hold: env::duration_or(
                "FOCO_SCHEDULER_MAX_HOLD",
                Duration::from_secs(30),
            )?,
            lag_interval: env::duration_or("FOCO_LAG_INTERVAL", Duration::from_secs(5))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config {
            nats_url: "nats://nats-token-value@nats:4222".to_owned(),
            nats_auth: foco_bus::NatsAuth::default(),
            database_url: "postgres://foco:hunter2@db/foco".to_owned(),
            bus_prefix: String::new(),
            bus: foco_bus::StreamSettings::default(),
            control_url: "http://control:50051".to_owned(),
            control_api_key: SecretString::from("control-key-value"),
            control_ca_file: None,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9093)),
            config_cache_ttl: Duration::from_secs(30),
            concurrency: 1,
            store_writers: 1,
            store_batch: 1,
            limits: foco_rule_engine::Limits::default(),
            ack_wait: Duration::from_secs(30),
            max_deliveries: 20,
            publish_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(20),
            scheduler_tick: Duration::from_millis(100),
            scheduler_batch: 200,
            scheduler_max_per_second: 2000,
            scheduler_max_hold: Duration::from_secs(30),
            lag_interval: Duration::from_secs(5),
        };
        let shown = format!("{config:?}");
        for secret in ["hunter2", "nats-token-value", "control-key-value"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("db/foco"), "{shown}");
    }
}
