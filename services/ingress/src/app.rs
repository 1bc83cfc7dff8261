//! Building and running the service: connect to NATS and control, ensure the
//! streams, bind both listeners; then serve until shutdown and drain in-flight
//! requests within the grace period.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use foco_control_client::ConfigCache;
use foco_runtime::serve::{joined, stop_on_error};
use foco_runtime::{AdminServer, Readiness};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{AppError, cause_chain};
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::state::{AppState, Shared};

pub struct App {
    http_listener: TcpListener,
    http_addr: SocketAddr,
    router: axum::Router,
    admin: AdminServer,
    admin_addr: SocketAddr,
    nats: async_nats::Client,
    change_watcher: JoinHandle<()>,
    shutdown: CancellationToken,
    shutdown_grace: Duration,
}

impl App {
    /// Connects, ensures the streams, subscribes to configuration changes and binds
    /// every listener (port 0 works); nothing is served until [`App::run`].
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, AppError> {
        let names = config.bus.names.clone();
        let nats = config.bus.connect(foco_bus::Service::Ingress).await?;
        let jetstream = async_nats::jetstream::new(nats.clone());
        foco_bus::ensure_streams(&jetstream, &names, config.bus.streams).await?;

        let control = config.control.connect()?;
        let sources = ConfigCache::new(control, config.config_cache_ttl);
        let change_watcher = sources
            .watch_changes(&nats, names.config_changed_subject(), shutdown.clone())
            .await?;

        let mut registry = Registry::with_prefix("foco_ingress");
        let metrics = Metrics::register(&mut registry);
        let readiness = Readiness::default().with_check("nats", foco_bus::readiness_check(&nats));

        let http_listener = TcpListener::bind(config.http_listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.http_listen,
                source,
            })?;
        let http_addr = local_addr(&http_listener, config.http_listen)?;
        let admin = AdminServer::bind(
            config.admin_listen,
            "foco-ingress",
            Arc::new(registry),
            readiness,
            shutdown.clone(),
        )
        .await
        .map_err(|source| AppError::Bind {
            addr: config.admin_listen,
            source,
        })?;
        let admin_addr = admin.local_addr().map_err(|source| AppError::Bind {
            addr: config.admin_listen,
            source,
        })?;

        let state = AppState::new(Shared {
            sources,
            publisher: foco_bus::Publisher::start(jetstream, nats.clone()),
            nats: nats.clone(),
            names,
            metrics,
            config: config.clone(),
            rate_limiter: RateLimiter::default(),
        });
        let router = crate::routes::router(state, config.request_timeout);
        Ok(Self {
            http_listener,
            http_addr,
            router,
            admin,
            admin_addr,
            nats,
            change_watcher,
            shutdown,
            shutdown_grace: config.shutdown_grace,
        })
    }

    /// Where webhooks are received.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `shutdown` is cancelled; then stops accepting connections,
    /// lets in-flight requests finish (at most `shutdown_grace`) and returns.
    pub async fn run(self) -> Result<(), AppError> {
        // Cancelled by the caller's token, or by a server that fails early, so
        // that one failing server stops the other and `run` reports it.
        let stop = self.shutdown.child_token();
        let http_stop = stop.clone();
        let http_serve = axum::serve(self.http_listener, self.router)
            .with_graceful_shutdown(async move { http_stop.cancelled().await })
            .into_future();
        let http = tokio::spawn(stop_on_error(stop.clone(), http_serve));
        let admin = tokio::spawn(stop_on_error(stop.clone(), self.admin.serve(stop.clone())));

        stop.cancelled().await;
        tracing::info!(grace = ?self.shutdown_grace, "draining in-flight webhooks");
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            (
                joined("http", http.await).map_err(AppError::from),
                joined("admin", admin.await).map_err(AppError::from),
            )
        })
        .await;
        let result = match drained {
            Ok((http_result, admin_result)) => http_result.and(admin_result),
            Err(_) => {
                // The tasks are dropped with the runtime; their requests get no answer
                // and their senders retry.
                tracing::warn!("shutdown grace elapsed with requests still in flight");
                Ok(())
            }
        };
        self.change_watcher.abort();
        // Every accepted event was acknowledged already; this only sends what is
        // left of the protocol traffic before the connection drops.
        if let Err(error) = self.nats.flush().await {
            tracing::debug!(error = %cause_chain(&error), "could not flush NATS at shutdown");
        }
        tracing::info!("ingress stopped");
        result
    }
}

fn local_addr(listener: &TcpListener, requested: SocketAddr) -> Result<SocketAddr, AppError> {
    listener.local_addr().map_err(|source| AppError::Bind {
        addr: requested,
        source,
    })
}
