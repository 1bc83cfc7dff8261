//! The running service: Postgres (migrated at build), a NATS client for change
//! announcements and durable publishes (requeued jobs, sent messages, triggered
//! events), the gRPC server (control API, health, reflection; over TLS when
//! configured) and the admin
//! listener. `build` binds everything; `run` serves until the shutdown token fires.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use foco_proto::v1::control_service_server::ControlServiceServer;
use foco_proto::v1::delivery_service_server::DeliveryServiceServer;
use foco_proto::v1::messaging_service_server::MessagingServiceServer;
use foco_runtime::{AdminServer, Readiness};
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use crate::api::{AppState, ControlApi, DeliveryApi, MessagingApi, Requeuer};
use crate::auth::Authenticator;
use crate::backlog::Backlog;
use crate::config::Config;
use crate::crypto::SecretSealer;
use crate::error::{ControlError, cause_chain};
use crate::metrics::Metrics;
use crate::notify::ChangeNotifier;
use crate::publisher::Publisher;

/// How often `/readyz`'s database flag is refreshed.
const DB_PING_INTERVAL: Duration = Duration::from_secs(3);
/// In-flight requests get this long to finish after shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Largest accepted request; configuration documents are small.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

pub struct App {
    state: AppState,
    webhooks: crate::webhooks::Worker,
    publisher: Publisher,
    grpc_listener: TcpListener,
    grpc_addr: SocketAddr,
    grpc_tls: Option<TlsAcceptor>,
    admin: AdminServer,
    admin_addr: SocketAddr,
    database_ready: Arc<AtomicBool>,
    backlog: Backlog,
    backlog_interval: Duration,
    shutdown: CancellationToken,
}

impl App {
    /// Connects to Postgres and runs the migrations, connects to NATS (in the
    /// background: control keeps serving while NATS is away), and binds both
    /// listeners. Nothing is served yet.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, ControlError> {
        let names = config.bus.names.clone();
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&config.database_url)
            .await
            .map_err(ControlError::Database)?;
        crate::MIGRATOR.run(&pool).await?;
        crate::api::provision_service_keys(&pool, &config.service_key_hashes)
            .await
            .map_err(ControlError::ServiceKeys)?;
        let grpc_tls = config.tls.clone().map(crate::tls::acceptor).transpose()?;
        let nats = config.bus.connect(foco_bus::Service::Control).await?;

        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let backlog = Backlog::register(&mut registry);
        let database_ready = Arc::new(AtomicBool::new(true));
        let readiness_flag = database_ready.clone();
        let readiness = Readiness::default().with_check("database", move || {
            if readiness_flag.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err("Postgres is not answering".to_owned())
            }
        });
        let admin = AdminServer::bind(
            config.admin_listen,
            "foco-control",
            Arc::new(registry),
            readiness,
            shutdown.clone(),
        )
        .await
        .map_err(|source| ControlError::Bind {
            what: "admin",
            addr: config.admin_listen,
            source,
        })?;
        let admin_addr = admin.local_addr().map_err(ControlError::Admin)?;
        let bind_error = |source| ControlError::Bind {
            what: "gRPC",
            addr: config.grpc_listen,
            source,
        };
        let grpc_listener = TcpListener::bind(config.grpc_listen)
            .await
            .map_err(bind_error)?;
        let grpc_addr = grpc_listener.local_addr().map_err(bind_error)?;

        let state = AppState {
            auth: Authenticator::new(&config.admin_api_key, pool.clone()),
            sealer: Arc::new(SecretSealer::new(&config.encryption_key)),
            notifier: ChangeNotifier::new(nats.clone(), names.config_changed_subject()),
            metrics,
            pool,
            webhooks_allow_private_hosts: config.webhooks.allow_private_hosts,
            publisher: Publisher::new(nats.clone(), names.clone()),
        };
        let publisher = state.publisher.clone();
        let webhooks = crate::webhooks::Worker {
            pool: state.pool.clone(),
            nats: nats.clone(),
            names: names.clone(),
            streams: config.bus.streams,
            sealer: state.sealer.clone(),
            settings: config.webhooks.clone(),
        };
        Ok(Self {
            state,
            webhooks,
            publisher,
            grpc_listener,
            grpc_addr,
            grpc_tls,
            admin,
            admin_addr,
            database_ready,
            backlog,
            backlog_interval: config.backlog_interval,
            shutdown,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until the shutdown token is cancelled, then lets in-flight requests
    /// finish (bounded by a grace period) and closes the database pool.
    pub async fn run(self) -> Result<(), ControlError> {
        let Self {
            state,
            webhooks,
            publisher,
            grpc_listener,
            grpc_tls,
            admin,
            database_ready,
            backlog,
            backlog_interval,
            shutdown,
            ..
        } = self;
        let pinger = tokio::spawn(ping_database(
            state.pool.clone(),
            database_ready,
            shutdown.clone(),
        ));
        let backlog_watch = backlog.watch(state.pool.clone(), backlog_interval, shutdown.clone());
        let admin_task = tokio::spawn(admin.serve(shutdown.clone()));
        let webhook_tasks = webhooks.spawn(shutdown.clone())?;

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<ControlServiceServer<ControlApi>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(foco_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let control = ControlServiceServer::new(ControlApi::new(state.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let scheduling = foco_proto::v1::scheduling_service_server::SchedulingServiceServer::new(
            ControlApi::new(state.clone()),
        )
        .max_decoding_message_size(MAX_MESSAGE_BYTES);

        let delivery = DeliveryServiceServer::new(DeliveryApi::new(
            state.clone(),
            Requeuer::new(publisher.clone()),
        ))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let messaging = MessagingServiceServer::new(MessagingApi::new(state.clone(), publisher))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);

        let stop_accepting = {
            let shutdown = shutdown.clone();
            let health = health.clone();
            async move {
                shutdown.cancelled().await;
                health
                    .set_not_serving::<ControlServiceServer<ControlApi>>()
                    .await;
                tracing::info!("grpc server draining");
            }
        };
        let router = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(control)
            .add_service(delivery)
            .add_service(scheduling)
            .add_service(messaging);
        let server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
            match grpc_tls {
                Some(acceptor) => Box::pin(router.serve_with_incoming_shutdown(
                    crate::tls::incoming(grpc_listener, acceptor, shutdown.clone()),
                    stop_accepting,
                )),
                None => Box::pin(router.serve_with_incoming_shutdown(
                    TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
                    stop_accepting,
                )),
            };
        let grace_expired = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let served = tokio::select! {
            served = server => served.map_err(ControlError::from),
            () = grace_expired => {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "grace period over, dropping remaining connections");
                Ok(())
            }
        };
        shutdown.cancel();
        let _ = pinger.await;
        let _ = backlog_watch.await;
        for task in webhook_tasks {
            let _ = task.await;
        }
        match admin_task.await {
            Ok(Err(error)) => tracing::warn!(error = %cause_chain(&error), "admin server failed"),
            Err(error) => tracing::warn!(%error, "admin server task failed"),
            Ok(Ok(())) => {}
        }
        state.pool.close().await;
        tracing::info!("control stopped");
        served
    }
}

/// Keeps `/readyz` cheap: the handler reads a flag this loop refreshes.
async fn ping_database(pool: PgPool, ready: Arc<AtomicBool>, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(DB_PING_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let ping = sqlx::query("SELECT 1").execute(&pool);
        let reachable = matches!(
            tokio::time::timeout(DB_PING_INTERVAL, ping).await,
            Ok(Ok(_))
        );
        let was_reachable = ready.swap(reachable, Ordering::Relaxed);
        if was_reachable != reachable {
            if reachable {
                tracing::info!("database reachable again");
            } else {
                tracing::warn!("database not reachable; /readyz reports not ready");
            }
        }
    }
}
