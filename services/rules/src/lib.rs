//! foco-rules: a durable pull consumer on FOCO_EVENTS. For each event it evaluates
//! the enabled rules of the event's source (CEL condition, minijinja recipients and
//! body), publishes one SMS job per (rule, recipient) to FOCO_SMS with the job id as
//! `Nats-Msg-Id`, and acks the event only after every job is stored.
//!
//! Configuration comes from foco-control (cached, dropped on change). This service
//! never calls a provider and never writes message state.
//!
//! Environment: `NATS_URL`, `FOCO_BUS_PREFIX`, `FOCO_BUS_REPLICAS`,
//! `FOCO_CONTROL_URL`, `FOCO_CONTROL_API_KEY` (or `FOCO_ADMIN_API_KEY`),
//! `FOCO_ADMIN_LISTEN` (127.0.0.1:9093), `FOCO_CONFIG_CACHE_TTL` (30s),
//! `FOCO_RULES_CONCURRENCY` (32), `FOCO_RULES_ACK_WAIT` (30s),
//! `FOCO_PUBLISH_TIMEOUT` (5s), `FOCO_SHUTDOWN_GRACE` (20s).

mod config;
mod consumer;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use foco_bus::BusNames;
use foco_control_client::ConfigCache;
use foco_runtime::{AdminServer, Readiness};
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use consumer::{Outcome, handle_event};

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("invalid bus prefix")]
    BusPrefix(#[from] foco_bus::InvalidPrefix),
    #[error("could not connect to NATS at {url}")]
    Nats {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("could not set up JetStream")]
    Topology(#[from] foco_bus::TopologyError),
    #[error("could not reach the control API")]
    Control(#[from] foco_control_client::ControlClientError),
    #[error("could not subscribe to configuration changes")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("could not bind the admin listener on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("admin server failed")]
    Serve(#[source] std::io::Error),
}

/// Everything the per-event handler needs; cheap to clone.
#[derive(Clone)]
pub struct RulesState {
    pub names: Arc<BusNames>,
    pub nats: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    pub config_cache: ConfigCache,
    pub engine: foco_rule_engine::Engine,
    pub publish_timeout: Duration,
    pub metrics: Arc<metrics::RulesMetrics>,
}

pub struct App {
    config: Config,
    state: RulesState,
    consumer: async_nats::jetstream::consumer::PullConsumer,
    admin: AdminServer,
    admin_addr: SocketAddr,
    shutdown: CancellationToken,
    watcher: tokio::task::JoinHandle<()>,
}

impl App {
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, RulesError> {
        let names = Arc::new(BusNames::new(&config.bus_prefix)?);
        let nats = async_nats::ConnectOptions::new()
            .name("foco-rules")
            .retry_on_initial_connect()
            .connect(&config.nats_url)
            .await
            .map_err(|source| RulesError::Nats {
                url: config.nats_url.clone(),
                source,
            })?;
        let jetstream = async_nats::jetstream::new(nats.clone());
        foco_bus::ensure_streams(
            &jetstream,
            &names,
            config.bus_replicas,
            Duration::from_secs(120),
        )
        .await?;
        let consumer = foco_bus::ensure_consumer(
            &jetstream,
            &foco_bus::ConsumerSettings {
                stream: names.events_stream(),
                durable_name: names.rules_consumer().to_owned(),
                filter_subject: names.events_filter(),
                ack_wait: config.ack_wait,
                max_ack_pending: (config.concurrency * 4) as i64,
                max_deliver: -1,
            },
        )
        .await?;
        let api = foco_control_client::connect(&config.control_url, &config.control_api_key)?;
        let config_cache = ConfigCache::new(api, config.config_cache_ttl);
        let watcher = config_cache
            .watch_changes(&nats, names.config_changed_subject(), shutdown.clone())
            .await?;

        let mut registry = prometheus_client::registry::Registry::with_prefix("foco_rules");
        let metrics = Arc::new(metrics::RulesMetrics::register(&mut registry));
        let readiness_client = nats.clone();
        let readiness = Readiness::default().with_check("nats", move || {
            match readiness_client.connection_state() {
                async_nats::connection::State::Connected => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        let admin = AdminServer::bind(
            config.admin_listen,
            Arc::new(registry),
            readiness,
            shutdown.clone(),
        )
        .await
        .map_err(|source| RulesError::Bind {
            addr: config.admin_listen,
            source,
        })?;
        let admin_addr = admin.local_addr().map_err(RulesError::Serve)?;
        let state = RulesState {
            names,
            nats,
            jetstream,
            config_cache,
            engine: foco_rule_engine::Engine::new(),
            publish_timeout: config.publish_timeout,
            metrics,
        };
        Ok(Self {
            config,
            state,
            consumer,
            admin,
            admin_addr,
            shutdown,
            watcher,
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn state(&self) -> &RulesState {
        &self.state
    }

    /// Consumes until shutdown, then drains in-flight events within the grace period.
    pub async fn run(self) -> Result<(), RulesError> {
        let admin = tokio::spawn(self.admin.serve(self.shutdown.clone()));
        consumer::run(
            self.consumer,
            self.state,
            self.config.concurrency,
            self.config.shutdown_grace,
            self.shutdown.clone(),
        )
        .await;
        self.watcher.abort();
        match admin.await {
            Ok(result) => result.map_err(RulesError::Serve),
            Err(_) => Ok(()),
        }
    }
}
