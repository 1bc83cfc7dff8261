use std::net::SocketAddr;
use std::time::Duration;

use foco_control_client::ControlConfig;
use foco_runtime::env::{self, ConfigError, Env};

#[derive(Clone)]
pub struct Config {
    /// `NATS_URL`, the NATS credentials, `FOCO_BUS_PREFIX` and the streams'
    /// settings.
    pub bus: foco_bus::BusConfig,
    /// `DATABASE_URL` [postgres://postgres@127.0.0.1:5432/foco]
    pub database_url: String,
    /// `FOCO_CONTROL_URL`, `FOCO_CONTROL_API_KEY` (required: rules' service
    /// key, scope `resolve:sources`), `FOCO_CONTROL_CA_FILE`.
    pub control: ControlConfig,
    pub admin_listen: SocketAddr,
    pub config_cache_ttl: Duration,
    /// Events evaluated at once by this replica.
    pub concurrency: usize,
    /// Postgres transactions storing events at once.
    pub store_writers: usize,
    /// Most events stored in one transaction.
    pub store_batch: usize,
    /// How long a store batch waits for more events before it is written (a
    /// transaction per event costs the machine more than the wait).
    pub store_linger: Duration,
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
            .field("bus", &self.bus)
            .field("database_url", &env::redacted_url(&self.database_url))
            .field("control", &self.control)
            .field("admin_listen", &self.admin_listen)
            .field("concurrency", &self.concurrency)
            .field("store_writers", &self.store_writers)
            .field("store_batch", &self.store_batch)
            .field("store_linger", &self.store_linger)
            .field("ack_wait", &self.ack_wait)
            .field("max_deliveries", &self.max_deliveries)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Every variable, read through `env` and checked.
    pub fn from_lookup(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            bus: foco_bus::BusConfig::from_lookup(env)?,
            database_url: env.string_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/foco"),
            control: ControlConfig::from_lookup(
                env,
                "rules resolves sources through control, with its service key (foco api-keys create --service rules)",
            )?,
            admin_listen: env.parse_or(
                "FOCO_ADMIN_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 9093)),
            )?,
            config_cache_ttl: env.duration_or("FOCO_CONFIG_CACHE_TTL", Duration::from_secs(30))?,
            concurrency: env.positive_or("FOCO_RULES_CONCURRENCY", 256)?,
            store_writers: env.positive_or("FOCO_RULES_STORE_WRITERS", 2)?,
            store_batch: env.positive_or("FOCO_RULES_STORE_BATCH", 256)?,
            store_linger: env.duration_at_most_or(
                "FOCO_RULES_STORE_LINGER",
                foco_runtime::batch::SMS_PATH_LINGER,
                foco_runtime::batch::MOST_LINGER,
            )?,
            limits: foco_rule_engine::Limits {
                recipients_per_rule: env.parse_or(
                    "FOCO_RULES_MAX_RECIPIENTS_PER_RULE",
                    foco_rule_engine::Limits::default().recipients_per_rule,
                )?,
                jobs_per_event: env.parse_or(
                    "FOCO_RULES_MAX_JOBS_PER_EVENT",
                    foco_rule_engine::Limits::default().jobs_per_event,
                )?,
            },
            ack_wait: env.duration_or("FOCO_RULES_ACK_WAIT", Duration::from_secs(30))?,
            max_deliveries: env.parse_or("FOCO_RULES_MAX_DELIVERIES", 20)?,
            publish_timeout: env.duration_or("FOCO_PUBLISH_TIMEOUT", Duration::from_secs(5))?,
            shutdown_grace: env.duration_or("FOCO_SHUTDOWN_GRACE", Duration::from_secs(20))?,
            scheduler_tick: env.duration_or("FOCO_SCHEDULER_TICK", Duration::from_millis(100))?,
            scheduler_batch: env.parse_or("FOCO_SCHEDULER_BATCH", 200)?,
            scheduler_max_per_second: env.parse_or("FOCO_SCHEDULER_MAX_PER_SECOND", 2000)?,
            scheduler_max_hold: env
                .duration_or("FOCO_SCHEDULER_MAX_HOLD", Duration::from_secs(30))?,
            lag_interval: env.duration_or("FOCO_LAG_INTERVAL", Duration::from_secs(5))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: (&str, &str) = ("FOCO_CONTROL_API_KEY", "rules-key");

    #[test]
    fn defaults_need_only_the_service_key() {
        let error = Config::from_lookup(&Env::from_pairs::<&str, &str>([])).unwrap_err();
        assert_eq!(error.name, "FOCO_CONTROL_API_KEY");
        assert!(error.reason.contains("--service rules"), "{error}");

        let config = Config::from_lookup(&Env::from_pairs([KEY])).unwrap();
        assert_eq!(config.bus.url, foco_bus::DEFAULT_NATS_URL);
        assert_eq!(config.control.url, foco_control_client::DEFAULT_CONTROL_URL);
        assert_eq!(
            config.admin_listen,
            SocketAddr::from(([127, 0, 0, 1], 9093))
        );
        assert_eq!((config.concurrency, config.store_writers), (256, 2));
        assert_eq!(config.store_linger, Duration::from_millis(1));
        assert_eq!(config.ack_wait, Duration::from_secs(30));
    }

    #[test]
    fn variables_override_the_defaults() {
        let config = Config::from_lookup(&Env::from_pairs([
            KEY,
            ("FOCO_BUS_PREFIX", "t7"),
            ("DATABASE_URL", "postgres://db/foco"),
            ("FOCO_RULES_CONCURRENCY", "64"),
            ("FOCO_RULES_ACK_WAIT", "90s"),
            ("FOCO_RULES_MAX_JOBS_PER_EVENT", "5"),
            ("FOCO_SCHEDULER_TICK", "250ms"),
            ("FOCO_RULES_STORE_LINGER", "0s"),
        ]))
        .unwrap();
        assert_eq!(config.bus.names.prefix(), "t7");
        assert_eq!(config.database_url, "postgres://db/foco");
        assert_eq!(config.concurrency, 64);
        assert_eq!(config.ack_wait, Duration::from_secs(90));
        assert_eq!(config.limits.jobs_per_event, 5);
        assert_eq!(config.scheduler_tick, Duration::from_millis(250));
        assert_eq!(
            config.store_linger,
            Duration::ZERO,
            "lingering can be turned off"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("FOCO_RULES_CONCURRENCY", "0"),
            ("FOCO_RULES_STORE_BATCH", "0"),
            ("FOCO_RULES_ACK_WAIT", "soon"),
            ("FOCO_RULES_STORE_LINGER", "1"),
            ("FOCO_RULES_STORE_LINGER", "2s"),
            ("FOCO_ADMIN_LISTEN", "localhost"),
            ("FOCO_BUS_PREFIX", "a.b"),
        ] {
            let error = Config::from_lookup(&Env::from_pairs([KEY, (name, value)])).unwrap_err();
            assert_eq!(error.name, name, "{error}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config {
            bus: foco_bus::BusConfig::local(
                "nats://nats-token-value@nats:4222",
                foco_bus::BusNames::new("").unwrap(),
            ),
            database_url: "postgres://foco:hunter2@db/foco".to_owned(),
            control: ControlConfig::local("http://control:50051", "control-key-value"),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9093)),
            config_cache_ttl: Duration::from_secs(30),
            concurrency: 1,
            store_writers: 1,
            store_batch: 1,
            store_linger: foco_runtime::batch::SMS_PATH_LINGER,
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
