//! Building the service from its configuration, and running it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use foco_bus::BusNames;
use foco_control_client::ConfigCache;
use foco_runtime::{AdminServer, Readiness};
use tokio_util::sync::CancellationToken;

use crate::{
    Clock, Config, RulesError, Scheduler, SchedulerSettings, SystemClock, consumer, metrics,
    scheduler, store,
};

/// Everything the per-event handler needs; cheap to clone.
#[derive(Clone)]
pub struct RulesState {
    pub names: Arc<BusNames>,
    pub nats: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    /// Publishes the events' immediate jobs, those of events evaluated
    /// together in one write.
    pub job_publisher: foco_bus::Publisher,
    pub config_cache: ConfigCache,
    pub engine: foco_rule_engine::Engine,
    pub publish_timeout: Duration,
    pub metrics: Arc<metrics::RulesMetrics>,
    pub pool: sqlx::PgPool,
    /// Group-commits what events store in Postgres.
    pub writer: store::Writer,
    /// Keeps a few recent events of each source for rule previews.
    pub samples: crate::samples::Sampler,
    /// Where scheduled and cancelled jobs are announced (FOCO_STATUS).
    pub status_feed: foco_bus::StatusFeed,
    /// Deliveries after which a failing event is recorded as a dead end.
    pub max_deliveries: i64,
    /// Longest one event may take: its consumer's ack_wait, after which
    /// JetStream delivers it again anyway. Frees the slot of an event stuck on
    /// something that stopped answering without failing.
    pub event_deadline: Duration,
}

pub struct App {
    config: Config,
    state: RulesState,
    consumer: async_nats::jetstream::consumer::PullConsumer,
    admin: AdminServer,
    admin_addr: SocketAddr,
    shutdown: CancellationToken,
    watcher: tokio::task::JoinHandle<()>,
    lag_watcher: tokio::task::JoinHandle<()>,
    scheduler: Scheduler,
}

impl App {
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, RulesError> {
        Self::build_with_clock(config, shutdown, Arc::new(SystemClock)).await
    }

    /// As `build`, with the scheduler reading time from `clock`.
    pub async fn build_with_clock(
        config: Config,
        shutdown: CancellationToken,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RulesError> {
        let pool = foco_runtime::postgres::connect(&config.database_url, 16).await?;
        let names = Arc::new(config.bus.names.clone());
        let nats = config.bus.connect(foco_bus::Service::Rules).await?;
        let jetstream = async_nats::jetstream::new(nats.clone());
        foco_bus::ensure_streams(&jetstream, &names, config.bus.streams).await?;
        let consumer = events_consumer(&jetstream, &names, &config).await?;
        let api = config.control.connect()?;
        let config_cache = ConfigCache::new(api, config.config_cache_ttl);
        let watcher = config_cache
            .watch_changes(&nats, names.config_changed_subject(), shutdown.clone())
            .await?;

        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(metrics::RulesMetrics::register(
            registry.sub_registry_with_prefix("foco_rules"),
        ));
        let lag = foco_bus::ConsumerLag::register(registry.sub_registry_with_prefix("foco"));
        let events_stream =
            jetstream
                .get_stream(names.events_stream())
                .await
                .map_err(|source| {
                    RulesError::Topology(foco_bus::TopologyError::GetStream {
                        stream: names.events_stream(),
                        source,
                    })
                })?;
        let watermark = scheduler::EventsWatermark::new(events_stream.clone(), consumer.clone());
        let lag_watcher = lag.watch(
            events_stream,
            consumer.clone(),
            config.lag_interval,
            shutdown.clone(),
        );
        let readiness = Readiness::default().with_check("nats", foco_bus::readiness_check(&nats));
        let admin = AdminServer::bind(
            config.admin_listen,
            "foco-rules",
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
        // Scheduled and cancelled jobs are announced once stored, after the
        // event's immediate jobs are published: they may wait a little for
        // company.
        let status_feed = foco_bus::StatusFeed::lingering(
            nats.clone(),
            (*names).clone(),
            config.publish_timeout,
            foco_bus::status::LINGER,
        );
        let state = RulesState {
            status_feed,
            names,
            job_publisher: foco_bus::Publisher::start(jetstream.clone(), nats.clone()),
            nats,
            jetstream,
            config_cache,
            engine: foco_rule_engine::Engine::with_limits(config.limits),
            publish_timeout: config.publish_timeout,
            writer: writer(&pool, &config, metrics.clone()).await?,
            metrics,
            samples: crate::samples::Sampler::start(pool.clone()),
            pool: pool.clone(),
            max_deliveries: config.max_deliveries,
            event_deadline: config.ack_wait,
        };
        let scheduler = Scheduler::new(
            pool,
            state.clone(),
            clock,
            SchedulerSettings {
                tick: config.scheduler_tick,
                batch: config.scheduler_batch,
                max_per_second: config.scheduler_max_per_second,
                max_hold: config.scheduler_max_hold,
            },
            watermark,
        );
        Ok(Self {
            config,
            state,
            consumer,
            admin,
            admin_addr,
            shutdown,
            watcher,
            lag_watcher,
            scheduler,
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn state(&self) -> &RulesState {
        &self.state
    }

    /// The scheduler this App runs; tests call `run_once` on a clone.
    pub fn scheduler(&self) -> Scheduler {
        self.scheduler.clone()
    }

    /// Consumes until shutdown, then drains in-flight events within the grace period.
    pub async fn run(self) -> Result<(), RulesError> {
        let admin = tokio::spawn(self.admin.serve(self.shutdown.clone()));
        let scheduler = tokio::spawn(self.scheduler.run(self.shutdown.clone()));
        foco_bus::pull::run(
            self.consumer,
            Arc::new(consumer::Events(self.state)),
            foco_bus::PullSettings {
                what: "events",
                concurrency: self.config.concurrency,
                shutdown_grace: self.config.shutdown_grace,
                // An event's own deadline is its consumer's ack_wait.
                keep_alive: None,
            },
            self.shutdown.clone(),
        )
        .await;
        self.watcher.abort();
        self.lag_watcher.abort();
        let _ = scheduler.await;
        match admin.await {
            Ok(result) => result.map_err(RulesError::Serve),
            Err(_) => Ok(()),
        }
    }
}

/// Rules' durable consumer of the events stream.
async fn events_consumer(
    jetstream: &async_nats::jetstream::Context,
    names: &BusNames,
    config: &Config,
) -> Result<async_nats::jetstream::consumer::PullConsumer, RulesError> {
    Ok(foco_bus::ensure_consumer(
        jetstream,
        &foco_bus::ConsumerSettings {
            stream: names.events_stream(),
            durable_name: names.rules_consumer().to_owned(),
            filter_subject: names.events_filter(),
            ack_wait: config.ack_wait,
            max_ack_pending: (config.concurrency * 4) as i64,
            max_deliver: -1,
        },
    )
    .await?)
}

/// The group-committing writer of events' plans, with its own small pool for
/// what may commit without waiting for the disk (see [`store::Pools`]).
async fn writer(
    pool: &sqlx::PgPool,
    config: &Config,
    metrics: Arc<metrics::RulesMetrics>,
) -> Result<store::Writer, RulesError> {
    let deduplication = foco_runtime::postgres::connect_without_commit_wait(
        &config.database_url,
        u32::try_from(config.store_writers.max(1)).unwrap_or(u32::MAX),
    )
    .await?;
    Ok(store::Writer::start(
        store::Pools {
            durable: pool.clone(),
            deduplication,
        },
        foco_runtime::batch::BatchSettings {
            max_batch: config.store_batch,
            flushes_in_flight: config.store_writers,
            linger: config.store_linger,
        },
        metrics,
    ))
}
