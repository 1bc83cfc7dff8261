//! The sender's configuration: defaults, then environment variables, validated once
//! at start. Tests build a `Config` value directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use foco_control_client::ControlConfig;
use foco_runtime::env::{self, ConfigError, Env};

use crate::quiet::QuietHours;

#[derive(Clone)]
pub struct Config {
    /// `NATS_URL`, the NATS credentials, `FOCO_BUS_PREFIX` (isolates
    /// environments and tests sharing one NATS) and the streams' settings.
    pub bus: foco_bus::BusConfig,
    /// `DATABASE_URL`: the sender writes the `messages` table (schema owned by control).
    pub database_url: String,
    /// `FOCO_CONTROL_URL`, `FOCO_CONTROL_API_KEY` (required: the sender's
    /// service key, scope `resolve:routes`, as route resolution returns
    /// provider credentials), `FOCO_CONTROL_CA_FILE`.
    pub control: ControlConfig,
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
    /// `FOCO_CONSOLE_PROVIDER` [false]: whether `console` routes work at all. A
    /// development feature: when off, a console route's jobs fail with the reason.
    pub console_provider: bool,
    /// `FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS`: allow provider URLs on loopback, private
    /// and link-local addresses (local fakes, tests). Off in production (SSRF).
    pub allow_private_provider_hosts: bool,
    /// `FOCO_CONFIG_CACHE_TTL`: backstop for missed configuration-change announcements.
    pub config_cache_ttl: Duration,
    /// `FOCO_SHUTDOWN_GRACE`: how long in-flight jobs may take to finish on shutdown.
    pub shutdown_grace: Duration,
    /// `FOCO_SENDER_MAX_DELIVERIES` [50, 0 = unlimited]: deliveries of a job
    /// whose Postgres writes keep failing before it is recorded as failed with the
    /// reason (only once that record is written: while Postgres is down, jobs
    /// wait). Writes that fail the same way every time (a NUL byte, a value over
    /// a Postgres limit) are recorded at once.
    pub max_deliveries: u32,
    /// `FOCO_SENDER_JOB_DEADLINE` [5m]: longest one job may take, from pulling it
    /// to its acknowledgement. A backstop for a dependency that stops answering
    /// without failing (a silent Postgres connection: statement timeouts run on
    /// the server and cannot fire then). Must exceed the claim lease.
    pub job_deadline: Duration,
    /// `FOCO_SENDER_MAX_JOB_AGE`: a transiently failing job older than this is
    /// dead-lettered instead of retried again.
    pub max_job_age: Duration,
    /// `FOCO_SENDER_CLAIM_MARGIN`: how much longer than `provider_timeout` a
    /// `sending` claim is presumed alive (the outcome write after the call).
    pub claim_margin: Duration,
    /// `FOCO_QUIET_HOURS` [21:00-08:00, `off` to disable]: local hours in which
    /// marketing messages are held; a route's `quiet_hours` setting overrides it.
    pub quiet_hours: Option<QuietHours>,
    /// `FOCO_SENDER_SHARED_STATE_POLL`: how often route pauses other replicas set
    /// (after a provider's 429) are read, and held jobs due for release looked for.
    pub shared_state_poll: Duration,
    /// `FOCO_SENDER_WRITE_BATCH`: most rows one batched claim or outcome write holds.
    pub write_batch: usize,
    /// `FOCO_SENDER_CLAIM_LINGER` [1ms]: how long a batch of claims waits for
    /// more jobs before it is written; the SMS waits that much longer at
    /// moderate rates, and the machine spends less on a statement per job.
    pub claim_linger: Duration,
    /// `FOCO_SENDER_PARK_AFTER` [10s]: a job whose route has no send budget (rate
    /// limit, a provider's 429) for longer than this waits parked in Postgres
    /// rather than in the stream, so one account's backlog never fills the
    /// ack-pending window every account shares. Shorter waits stay in the stream.
    pub park_after: Duration,
    /// `FOCO_SENDER_RECEIPTS_CONCURRENCY`: delivery receipts and inbound SMS
    /// handled at once.
    pub receipts_concurrency: usize,
    /// `FOCO_LAG_INTERVAL`: how often the consumers' lag is read from JetStream
    /// for `/metrics`.
    pub lag_interval: Duration,
}

/// The local defaults of every setting (what `from_lookup` uses when a variable
/// is unset), with an empty control API key. Tests start from here.
impl Default for Config {
    fn default() -> Self {
        Self {
            bus: foco_bus::BusConfig::local(
                foco_bus::DEFAULT_NATS_URL,
                foco_bus::BusNames::new("").expect("the empty prefix"),
            ),
            database_url: "postgres://postgres@127.0.0.1:5432/foco".to_owned(),
            control: ControlConfig::local(foco_control_client::DEFAULT_CONTROL_URL, ""),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9094)),
            concurrency: 1024,
            max_ack_pending: 10_000,
            ack_wait: Duration::from_secs(60),
            provider_timeout: Duration::from_secs(15),
            max_attempts: 8,
            console_outbox: PathBuf::from("var/outbox.jsonl"),
            console_provider: false,
            allow_private_provider_hosts: false,
            config_cache_ttl: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(25),
            max_deliveries: 50,
            job_deadline: Duration::from_secs(300),
            max_job_age: Duration::from_secs(24 * 3600),
            claim_margin: Duration::from_secs(5),
            quiet_hours: Some(QuietHours::DEFAULT),
            shared_state_poll: Duration::from_millis(500),
            write_batch: 512,
            claim_linger: foco_runtime::batch::SMS_PATH_LINGER,
            park_after: Duration::from_secs(10),
            receipts_concurrency: 16,
            lag_interval: Duration::from_secs(5),
        }
    }
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
            .field("max_ack_pending", &self.max_ack_pending)
            .field("ack_wait", &self.ack_wait)
            .field("provider_timeout", &self.provider_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("console_outbox", &self.console_outbox)
            .field("console_provider", &self.console_provider)
            .field(
                "allow_private_provider_hosts",
                &self.allow_private_provider_hosts,
            )
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Every variable, read through `env` and checked.
    pub fn from_lookup(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let quiet_hours = match env.optional("FOCO_QUIET_HOURS") {
            None => defaults.quiet_hours,
            Some(text) => QuietHours::parse(&text)
                .map_err(|error| ConfigError::new("FOCO_QUIET_HOURS", &text, error.to_string()))?,
        };
        let config = Self {
            bus: foco_bus::BusConfig::from_lookup(env)?,
            database_url: env.string_or("DATABASE_URL", &defaults.database_url),
            control: ControlConfig::from_lookup(
                env,
                "the sender resolves provider routes through control, with its service key (foco api-keys create --service sender)",
            )?,
            admin_listen: env.parse_or("FOCO_ADMIN_LISTEN", defaults.admin_listen)?,
            concurrency: env.parse_or("FOCO_SENDER_CONCURRENCY", defaults.concurrency)?,
            max_ack_pending: env
                .parse_or("FOCO_SENDER_MAX_ACK_PENDING", defaults.max_ack_pending)?,
            ack_wait: env.duration_or("FOCO_SENDER_ACK_WAIT", defaults.ack_wait)?,
            provider_timeout: env
                .duration_or("FOCO_PROVIDER_TIMEOUT", defaults.provider_timeout)?,
            max_attempts: env.parse_or("FOCO_SENDER_MAX_ATTEMPTS", defaults.max_attempts)?,
            console_outbox: PathBuf::from(env.string_or("FOCO_CONSOLE_OUTBOX", "var/outbox.jsonl")),
            console_provider: env.parse_or("FOCO_CONSOLE_PROVIDER", defaults.console_provider)?,
            allow_private_provider_hosts: env
                .parse_or("FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS", false)?,
            config_cache_ttl: env
                .duration_or("FOCO_CONFIG_CACHE_TTL", defaults.config_cache_ttl)?,
            shutdown_grace: env.duration_or("FOCO_SHUTDOWN_GRACE", defaults.shutdown_grace)?,
            max_deliveries: env.parse_or("FOCO_SENDER_MAX_DELIVERIES", defaults.max_deliveries)?,
            job_deadline: env.duration_or("FOCO_SENDER_JOB_DEADLINE", defaults.job_deadline)?,
            max_job_age: env.duration_or("FOCO_SENDER_MAX_JOB_AGE", defaults.max_job_age)?,
            claim_margin: env.duration_or("FOCO_SENDER_CLAIM_MARGIN", defaults.claim_margin)?,
            quiet_hours,
            shared_state_poll: env
                .duration_or("FOCO_SENDER_SHARED_STATE_POLL", defaults.shared_state_poll)?,
            write_batch: env.parse_or("FOCO_SENDER_WRITE_BATCH", defaults.write_batch)?,
            claim_linger: env.duration_at_most_or(
                "FOCO_SENDER_CLAIM_LINGER",
                defaults.claim_linger,
                foco_runtime::batch::MOST_LINGER,
            )?,
            park_after: env.duration_or("FOCO_SENDER_PARK_AFTER", defaults.park_after)?,
            receipts_concurrency: env.parse_or(
                "FOCO_SENDER_RECEIPTS_CONCURRENCY",
                defaults.receipts_concurrency,
            )?,
            lag_interval: env.duration_or("FOCO_LAG_INTERVAL", defaults.lag_interval)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the relations between settings; `App::build` calls it too, so a
    /// hand-built `Config` gets the same checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.job_deadline <= self.claim_lease() * 2 {
            return Err(ConfigError::new(
                "FOCO_SENDER_JOB_DEADLINE",
                &format!("{:?}", self.job_deadline),
                format!(
                    "must be more than twice the claim lease (FOCO_PROVIDER_TIMEOUT + FOCO_SENDER_CLAIM_MARGIN = {:?})",
                    self.claim_lease()
                ),
            ));
        }
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
        if self.write_batch == 0 || self.receipts_concurrency == 0 {
            return Err(ConfigError::new(
                "FOCO_SENDER_WRITE_BATCH",
                &self.write_batch.to_string(),
                "batch size and receipts concurrency must be at least 1",
            ));
        }
        if self.shared_state_poll.is_zero() {
            return Err(ConfigError::new(
                "FOCO_SENDER_SHARED_STATE_POLL",
                "0s",
                "must be positive",
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

    /// What the job handler needs of the configuration.
    pub fn handler_settings(&self) -> crate::handler::HandlerSettings {
        crate::handler::HandlerSettings {
            max_attempts: self.max_attempts,
            max_job_age: self.max_job_age,
            claim_lease: self.claim_lease(),
            quiet_hours: self.quiet_hours,
            write_batch: self.write_batch,
            claim_linger: self.claim_linger,
            park_after: self.park_after,
            max_deliveries: self.max_deliveries,
        }
    }

    /// How long a `sending` claim is presumed alive: the provider call is bounded by
    /// `provider_timeout`, and the outcome write follows within `claim_margin`. A
    /// claim older than this belongs to a sender that died. (Misjudging a slow
    /// holder as dead either mislabels the job `unknown` until the holder records
    /// the real outcome, or, for an idempotent provider, repeats the call with the
    /// same key, which the provider deduplicates: never a second SMS.)
    pub fn claim_lease(&self) -> Duration {
        self.provider_timeout + self.claim_margin
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn sample() -> Config {
        Config {
            control: ControlConfig::local(foco_control_client::DEFAULT_CONTROL_URL, "k"),
            ..Config::default()
        }
    }

    const KEY: (&str, &str) = ("FOCO_CONTROL_API_KEY", "sender-key");

    #[test]
    fn the_environment_read_with_only_a_key_gives_the_defaults() {
        let error = Config::from_lookup(&Env::from_pairs::<&str, &str>([])).unwrap_err();
        assert_eq!(error.name, "FOCO_CONTROL_API_KEY");
        assert!(error.reason.contains("--service sender"), "{error}");

        let config = Config::from_lookup(&Env::from_pairs([KEY])).unwrap();
        let defaults = Config::default();
        assert_eq!(config.bus.url, defaults.bus.url);
        assert_eq!(config.control.url, defaults.control.url);
        assert_eq!(config.admin_listen, defaults.admin_listen);
        assert_eq!(config.concurrency, defaults.concurrency);
        assert_eq!(config.ack_wait, defaults.ack_wait);
        assert_eq!(config.quiet_hours, defaults.quiet_hours);
        assert_eq!(config.write_batch, defaults.write_batch);
        assert_eq!(config.claim_linger, Duration::from_millis(1));
    }

    #[test]
    fn variables_override_the_defaults() {
        let config = Config::from_lookup(&Env::from_pairs([
            KEY,
            ("NATS_URL", "nats://nats-0:4222,nats://nats-1:4222"),
            ("FOCO_SENDER_CONCURRENCY", "32"),
            ("FOCO_PROVIDER_TIMEOUT", "4s"),
            ("FOCO_QUIET_HOURS", "off"),
            ("FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS", "true"),
            ("FOCO_SENDER_PARK_AFTER", "2s"),
            ("FOCO_SENDER_CLAIM_LINGER", "0s"),
        ]))
        .unwrap();
        assert_eq!(config.bus.url, "nats://nats-0:4222,nats://nats-1:4222");
        assert_eq!(config.concurrency, 32);
        assert_eq!(config.provider_timeout, Duration::from_secs(4));
        assert_eq!(config.quiet_hours, None);
        assert!(config.allow_private_provider_hosts);
        assert_eq!(config.park_after, Duration::from_secs(2));
        assert_eq!(
            config.claim_linger,
            Duration::ZERO,
            "lingering can be turned off"
        );
    }

    #[test]
    fn values_that_cannot_work_name_their_variable() {
        for (name, value) in [
            ("FOCO_SENDER_CONCURRENCY", "0"),
            ("FOCO_SENDER_CONCURRENCY", "many"),
            ("FOCO_SENDER_ACK_WAIT", "10s"),
            ("FOCO_QUIET_HOURS", "25:00-08:00"),
            ("FOCO_SENDER_MAX_ATTEMPTS", "0"),
            ("FOCO_CONSOLE_PROVIDER", "maybe"),
            ("FOCO_SENDER_CLAIM_LINGER", "5s"),
        ] {
            let error = Config::from_lookup(&Env::from_pairs([KEY, (name, value)])).unwrap_err();
            assert_eq!(error.name, name, "{name}={value}: {error}");
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
        config.bus.url = "nats://nats-token-value@nats:4222".to_owned();
        config.control.api_key = SecretString::from("control-key-value");
        let shown = format!("{config:?}");
        for secret in ["hunter2", "nats-token-value", "control-key-value"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("db/foco"), "{shown}");
    }

    #[test]
    fn zero_concurrency_is_refused() {
        let mut config = sample();
        config.concurrency = 0;
        assert!(config.validate().is_err());
    }
}
