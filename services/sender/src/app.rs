//! Wiring: connections, the durable consumers (jobs and receipts), the admin
//! listener, background maintenance, and the run loop with its shutdown order
//! (stop pulling, drain jobs, flush acks, close).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use foco_bus::{BusNames, ConsumerSettings};
use foco_control_client::ConfigCache;
use foco_runtime::{AdminServer, Readiness};
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::config::Config;
use crate::consumer::{self, LoopSettings};
use crate::error::SenderError;
use crate::handler::Handler;
use crate::maintenance::Maintenance;
use crate::metrics::Metrics;
use crate::providers::Providers;
use crate::receipts::{self, ReceiptHandler};
use crate::store;

/// How long JetStream has to acknowledge a status change before the job that
/// made it is handed back for a later delivery.
const STATUS_PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// How often readiness re-checks Postgres.
const DATABASE_CHECK_PERIOD: Duration = Duration::from_secs(5);

pub struct App {
    config: Config,
    nats: async_nats::Client,
    consumer: PullConsumer,
    receipts_consumer: PullConsumer,
    feed: foco_bus::StatusFeed,
    handler: Arc<Handler<ConfigCache>>,
    receipt_handler: Arc<ReceiptHandler<ConfigCache>>,
    maintenance: Maintenance,
    metrics: Metrics,
    pool: PgPool,
    admin: AdminServer,
    admin_addr: SocketAddr,
    database_ready: Arc<AtomicBool>,
    /// Dropping the app (or aborting its task) stops the watcher with it.
    _config_watch: AbortOnDropHandle<()>,
    _lag_watchers: Vec<AbortOnDropHandle<()>>,
    shutdown: CancellationToken,
}

impl App {
    /// Connects to NATS, Postgres and control, ensures the streams and the durable
    /// consumer, and binds the admin listener. Nothing is pulled until `run`.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, SenderError> {
        config.validate()?;
        let names = config.bus.names.clone();
        let nats = config.bus.connect(foco_bus::Service::Sender).await?;
        let jetstream = jetstream::new(nats.clone());
        foco_bus::ensure_streams(&jetstream, &names, config.bus.streams).await?;
        let (consumer, receipts_consumer) = consumers(&jetstream, &names, &config).await?;
        // Changes are published once the outcome is recorded, after the SMS
        // went out: they may wait a little for company.
        let feed = foco_bus::StatusFeed::lingering(
            nats.clone(),
            names.clone(),
            STATUS_PUBLISH_TIMEOUT,
            foco_bus::status::LINGER,
        );

        let pool = foco_runtime::postgres::connect(
            &config.database_url,
            database_connections(config.concurrency),
        )
        .await
        .map_err(SenderError::Database)?;

        let control = config.control.connect()?;
        let routes = ConfigCache::new(control, config.config_cache_ttl);
        let config_watch = routes
            .watch_changes(&nats, names.config_changed_subject(), shutdown.clone())
            .await
            .map_err(SenderError::Subscribe)?;

        let providers = Providers::new(
            config.provider_timeout,
            config.allow_private_provider_hosts,
            config
                .console_provider
                .then(|| config.console_outbox.clone()),
        )?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let lag = foco_bus::ConsumerLag::register(registry.sub_registry_with_prefix("foco"));
        let lag_watchers = watch_lag(
            &lag,
            &jetstream,
            [
                (names.sms_stream(), &consumer),
                (names.receipts_stream(), &receipts_consumer),
            ],
            &config,
            &shutdown,
        )
        .await?;
        let handler = Arc::new(Handler::new(
            pool.clone(),
            routes.clone(),
            providers,
            metrics.clone(),
            config.handler_settings(),
        ));
        let receipt_handler = Arc::new(ReceiptHandler {
            pool: pool.clone(),
            routes,
            route_table: handler.route_table.clone(),
            jetstream: jetstream.clone(),
            nats: nats.clone(),
            names: names.clone(),
            feed: feed.clone(),
        });
        let maintenance = Maintenance {
            pool: pool.clone(),
            limits: handler.limits.clone(),
            jetstream: jetstream.clone(),
            nats: nats.clone(),
            names: names.clone(),
            metrics: metrics.clone(),
            period: config.shared_state_poll,
        };

        let database_ready = Arc::new(AtomicBool::new(true));
        let (admin, admin_addr) = bind_admin(
            &config,
            registry,
            readiness(&nats, &database_ready),
            &shutdown,
        )
        .await?;
        Ok(Self {
            config,
            nats,
            consumer,
            receipts_consumer,
            feed,
            handler,
            receipt_handler,
            maintenance,
            metrics,
            pool,
            admin,
            admin_addr,
            database_ready,
            _config_watch: AbortOnDropHandle::new(config_watch),
            _lag_watchers: lag_watchers,
            shutdown,
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Job counters (tests read them through here as well as `/metrics`).
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Pulls and sends jobs until `shutdown` is cancelled, then drains in-flight
    /// jobs within `shutdown_grace` and returns.
    pub async fn run(self) -> Result<(), SenderError> {
        let Self {
            config,
            nats,
            consumer,
            receipts_consumer,
            feed,
            handler,
            receipt_handler,
            maintenance,
            metrics,
            pool,
            admin,
            database_ready,
            _config_watch,
            _lag_watchers,
            shutdown,
            ..
        } = self;
        // The admin listener outlives the drain (probes and metrics stay up) and
        // stops after it, without cancelling the caller's token on an error exit.
        let admin_stop = shutdown.child_token();
        let admin_task = AbortOnDropHandle::new(tokio::spawn(admin.serve(admin_stop.clone())));
        let _database_check = AbortOnDropHandle::new(tokio::spawn(watch_database(
            pool.clone(),
            database_ready,
            shutdown.clone(),
        )));
        let _maintenance = AbortOnDropHandle::new(tokio::spawn(maintenance.run(shutdown.clone())));
        // Receipts stop with the jobs: a failing receipts loop must not stop sending.
        let receipts_stop = shutdown.child_token();
        let receipts_task = AbortOnDropHandle::new(tokio::spawn(receipts::run(
            receipt_handler,
            receipts_consumer,
            config.receipts_concurrency,
            metrics.clone(),
            receipts_stop.clone(),
        )));
        tracing::info!(
            concurrency = config.concurrency,
            "sender consuming sms jobs"
        );
        let settings = LoopSettings {
            concurrency: config.concurrency,
            ack_wait: config.ack_wait,
            shutdown_grace: config.shutdown_grace,
            job_deadline: config.job_deadline,
        };
        consumer::run(handler, feed, consumer, settings, metrics, shutdown.clone()).await;
        receipts_stop.cancel();
        if receipts_task.await.is_err() {
            tracing::warn!("receipts loop panicked");
        }
        // Acks are buffered in the client; send them before the connection goes.
        if tokio::time::timeout(Duration::from_secs(5), nats.flush())
            .await
            .is_err()
        {
            tracing::warn!("could not flush acknowledgements to NATS before exit");
        }
        admin_stop.cancel();
        let served = admin_task.await;
        pool.close().await;
        match served {
            Ok(result) => result.map_err(SenderError::AdminServe),
            Err(_) => Ok(()),
        }
    }
}

/// The admin listener (`/healthz`, `/readyz`, `/metrics`) and its address.
async fn bind_admin(
    config: &Config,
    registry: Registry,
    readiness: Readiness,
    shutdown: &CancellationToken,
) -> Result<(AdminServer, SocketAddr), SenderError> {
    let admin = AdminServer::bind(
        config.admin_listen,
        "foco-sender",
        Arc::new(registry),
        readiness,
        shutdown.clone(),
    )
    .await
    .map_err(SenderError::AdminBind)?;
    let admin_addr = admin.local_addr().map_err(SenderError::AdminBind)?;
    Ok((admin, admin_addr))
}

/// Enough connections for the batched writers, per-job slow paths, receipts and
/// maintenance; hot-path writes are batched, so this does not grow with jobs.
fn database_connections(concurrency: usize) -> u32 {
    u32::try_from(concurrency / 8)
        .unwrap_or(u32::MAX)
        .clamp(8, 32)
}

/// The durable consumers of jobs and of delivery receipts, created or updated
/// to the configured settings.
async fn consumers(
    jetstream: &jetstream::Context,
    names: &BusNames,
    config: &Config,
) -> Result<(PullConsumer, PullConsumer), SenderError> {
    let settings = ConsumerSettings {
        stream: names.sms_stream(),
        durable_name: names.sender_consumer().to_owned(),
        filter_subject: names.sms_filter(),
        ack_wait: config.ack_wait,
        max_ack_pending: config.max_ack_pending,
        // Unlimited: every job ends in a recorded state by the sender's own
        // rules (attempts, permanent failures, unknown); a JetStream limit would
        // silently drop jobs that wait out a long control or Postgres outage.
        max_deliver: -1,
    };
    let consumer = foco_bus::ensure_consumer(jetstream, &settings).await?;
    let receipts_consumer = foco_bus::ensure_consumer(
        jetstream,
        &ConsumerSettings {
            stream: names.receipts_stream(),
            durable_name: names.receipts_consumer().to_owned(),
            filter_subject: names.receipts_filter(),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1000,
            // Receipts end by the handler's own rules (applied, or dropped
            // after a bounded number of unmatched deliveries).
            max_deliver: -1,
        },
    )
    .await?;
    Ok((consumer, receipts_consumer))
}

/// One lag watcher per (stream, consumer), each stopped when dropped.
async fn watch_lag(
    lag: &foco_bus::ConsumerLag,
    jetstream: &jetstream::Context,
    watched: [(String, &PullConsumer); 2],
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<Vec<AbortOnDropHandle<()>>, SenderError> {
    let mut lag_watchers = Vec::new();
    for (stream, watched) in watched {
        let stream = jetstream
            .get_stream(&stream)
            .await
            .map_err(|source| foco_bus::TopologyError::GetStream { stream, source })?;
        lag_watchers.push(AbortOnDropHandle::new(lag.watch(
            stream,
            watched.clone(),
            config.lag_interval,
            shutdown.clone(),
        )));
    }
    Ok(lag_watchers)
}

fn readiness(nats: &async_nats::Client, database_ready: &Arc<AtomicBool>) -> Readiness {
    let database_ready = database_ready.clone();
    Readiness::default()
        .with_check("nats", foco_bus::readiness_check(nats))
        .with_check("postgres", move || {
            if database_ready.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err("unreachable".to_owned())
            }
        })
}

/// Keeps the cached Postgres readiness flag fresh, so `/readyz` never waits on a query.
async fn watch_database(pool: PgPool, ready: Arc<AtomicBool>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(DATABASE_CHECK_PERIOD);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let reachable = tokio::time::timeout(Duration::from_secs(3), store::ping(&pool))
            .await
            .is_ok_and(|result| result.is_ok());
        if ready.swap(reachable, Ordering::Relaxed) != reachable {
            tracing::warn!(reachable, "postgres reachability changed");
        }
    }
}
