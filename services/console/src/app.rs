//! Building and running the console: compile the templates, prepare the
//! channel to control (dialled on first use), bind both listeners; then serve
//! until shutdown and let in-flight requests finish within the grace period.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use foco_runtime::serve::{joined, stop_on_error};
use foco_runtime::{AdminServer, Readiness};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::AppError;
use crate::render::Templates;
use crate::state::{AppState, Shared};

pub struct App {
    http_listener: TcpListener,
    http_addr: SocketAddr,
    router: axum::Router,
    admin: AdminServer,
    admin_addr: SocketAddr,
    shutdown: CancellationToken,
    shutdown_grace: Duration,
}

impl App {
    /// Binds every listener (port 0 works); nothing is served until [`App::run`].
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, AppError> {
        let templates = Templates::new()?;
        let channel = foco_control_client::lazy_channel(&config.control_url)?;
        let http_listener = TcpListener::bind(config.http_listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.http_listen,
                source,
            })?;
        let http_addr = http_listener
            .local_addr()
            .map_err(|source| AppError::Bind {
                addr: config.http_listen,
                source,
            })?;
        let registry = Registry::with_prefix("foco_console");
        let admin = AdminServer::bind(
            config.admin_listen,
            "foco-console",
            Arc::new(registry),
            Readiness::default(),
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
        let shutdown_grace = config.shutdown_grace;
        let state = AppState::new(Shared {
            config,
            templates,
            channel,
        });
        Ok(Self {
            http_listener,
            http_addr,
            router: crate::routes::router(state),
            admin,
            admin_addr,
            shutdown,
            shutdown_grace,
        })
    }

    /// Where the pages are served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `shutdown` is cancelled (or a listener fails), then drains.
    pub async fn run(self) -> Result<(), AppError> {
        let stop = self.shutdown.child_token();
        let http_stop = stop.clone();
        let http = tokio::spawn(stop_on_error(
            stop.clone(),
            axum::serve(self.http_listener, self.router)
                .with_graceful_shutdown(async move { http_stop.cancelled().await })
                .into_future(),
        ));
        let admin = tokio::spawn(stop_on_error(stop.clone(), self.admin.serve(stop.clone())));
        stop.cancelled().await;
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            (
                joined("http", http.await).map_err(AppError::from),
                joined("admin", admin.await).map_err(AppError::from),
            )
        })
        .await;
        tracing::info!("console stopped");
        match drained {
            Ok((http_result, admin_result)) => http_result.and(admin_result),
            Err(_) => {
                tracing::warn!("shutdown grace elapsed with requests still in flight");
                Ok(())
            }
        }
    }
}
