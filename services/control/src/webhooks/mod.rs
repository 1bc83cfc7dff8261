//! Status webhooks: Foco POSTs an account's status changes to the endpoints it
//! registered, signed as the Standard Webhooks specification says.
//!
//! Control runs the worker because control owns what it reads and writes (the
//! endpoints, their sealed secrets, the delivery and attempt rows, the
//! SendMessage metadata the bodies carry) and the API that lists and replays
//! deliveries: no second service writes these tables. Calls go out through
//! `foco_outbound`, the sender's HTTP client with its SSRF guard.
//!
//! Two loops: `ingest` turns the status feed (FOCO_STATUS) into delivery rows,
//! `dispatch` sends the due ones; `subscribed` remembers which accounts have
//! an endpoint, following control's change announcements. Postgres is the
//! queue: a delivery waiting for its endpoint costs a row, never a place in a
//! shared stream, so an endpoint that is down delays only its own deliveries.

mod dispatch;
mod ingest;
pub mod payload;
pub mod signature;
mod subscribed;

use std::sync::Arc;
use std::time::Duration;

use foco_bus::{BusNames, StreamSettings};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::crypto::SecretSealer;

/// The worker's settings (`Config::webhooks`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Waits after the first, second, ... failed attempt; a delivery whose
    /// attempts outnumber them failed for good. The default, from the
    /// specification's example, spans 27 h 35 min over 8 attempts.
    pub retry_schedule: Vec<Duration>,
    /// `FOCO_WEBHOOK_TIMEOUT` [15s]: one attempt, connection to last byte.
    pub request_timeout: Duration,
    /// `FOCO_WEBHOOK_DISABLE_AFTER` [5d]: an endpoint whose every attempt
    /// failed for this long is disabled, with the reason.
    pub disable_after: Duration,
    /// Attempts in flight in this process.
    pub max_in_flight: usize,
    /// Attempts in flight to one endpoint.
    pub per_endpoint: usize,
    /// How often due deliveries are looked for when nothing wakes the worker.
    pub poll_interval: Duration,
    /// `FOCO_ALLOW_PRIVATE_WEBHOOK_HOSTS` [false]: endpoints on loopback or
    /// private addresses (development and tests only).
    pub allow_private_hosts: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let minutes = |count: u64| Duration::from_secs(count * 60);
        Self {
            retry_schedule: vec![
                Duration::from_secs(5),
                minutes(5),
                minutes(30),
                minutes(120),
                minutes(300),
                minutes(600),
                minutes(600),
            ],
            request_timeout: Duration::from_secs(15),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            max_in_flight: 64,
            per_endpoint: 4,
            poll_interval: Duration::from_secs(1),
            allow_private_hosts: false,
        }
    }
}

impl WebhookSettings {
    pub fn from_lookup(
        env: &foco_runtime::env::Env,
    ) -> Result<Self, foco_runtime::env::ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            request_timeout: env.duration_or("FOCO_WEBHOOK_TIMEOUT", defaults.request_timeout)?,
            disable_after: env.duration_or("FOCO_WEBHOOK_DISABLE_AFTER", defaults.disable_after)?,
            allow_private_hosts: env.parse_or(
                "FOCO_ALLOW_PRIVATE_WEBHOOK_HOSTS",
                defaults.allow_private_hosts,
            )?,
            ..defaults
        })
    }
}

/// What the worker needs from the App.
pub struct Worker {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub names: BusNames,
    pub streams: StreamSettings,
    pub sealer: Arc<SecretSealer>,
    pub settings: WebhookSettings,
}

impl Worker {
    /// Starts both loops; they stop when `shutdown` fires.
    pub fn spawn(
        self,
        shutdown: CancellationToken,
    ) -> Result<Vec<JoinHandle<()>>, foco_outbound::ClientBuildError> {
        let http = foco_outbound::build_http_client(
            self.settings.request_timeout,
            self.settings.allow_private_hosts,
            concat!("foco-webhooks/", env!("CARGO_PKG_VERSION")),
        )?;
        let wake = Arc::new(Notify::new());
        let subscribed = subscribed::SubscribedAccounts::new(self.pool.clone());
        let watch = subscribed.clone().watch(
            self.nats.clone(),
            self.names.config_changed_subject(),
            shutdown.clone(),
        );
        let ingest = ingest::Ingest {
            pool: self.pool.clone(),
            client: self.nats,
            names: self.names,
            streams: self.streams,
            added: wake.clone(),
            subscribed,
        };
        let dispatcher = dispatch::Dispatcher {
            pool: self.pool,
            http,
            sealer: self.sealer,
            settings: self.settings,
            wake,
        };
        Ok(vec![
            tokio::spawn(watch),
            tokio::spawn(ingest.run(shutdown.clone())),
            tokio::spawn(dispatcher.run(shutdown)),
        ])
    }
}
