//! The admin listener every service runs beside its main port: `/healthz` (the
//! process is alive), `/readyz` (it can do its job: dependencies reachable, not
//! draining) and `/metrics` (Prometheus text format: the service's registry plus
//! `foco_build_info`, which the admin server adds so no service can forget it).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A readiness check; all must pass for `/readyz` to answer 200.
pub type ReadinessCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, ReadinessCheck)>,
}

impl Readiness {
    pub fn with_check(
        mut self,
        name: &'static str,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.checks.push((name, Arc::new(check)));
        self
    }

    fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter_map(|(name, check)| check().err().map(|reason| format!("{name}: {reason}")))
            .collect()
    }
}

#[derive(Clone)]
struct AdminState {
    registry: Arc<Registry>,
    build_info: Arc<Registry>,
    readiness: Readiness,
    shutdown: CancellationToken,
}

/// A bound admin listener; `local_addr` is known before serving starts.
pub struct AdminServer {
    listener: TcpListener,
    router: Router,
}

impl AdminServer {
    /// `service` names the process in `foco_build_info` (`foco-ingress`, ...).
    pub async fn bind(
        addr: SocketAddr,
        service: &'static str,
        registry: Arc<Registry>,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let mut build_info = Registry::default();
        crate::build_info::register(&mut build_info, service);
        let state = AdminState {
            registry,
            build_info: Arc::new(build_info),
            readiness,
            shutdown,
        };
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(state);
        Ok(Self { listener, router })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn serve(self, shutdown: CancellationToken) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_owned());
    }
    let failures = state.readiness.failures();
    if failures.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, failures.join("\n") + "\n")
    }
}

async fn metrics(State(state): State<AdminState>) -> axum::response::Response {
    use prometheus_client::encoding::text::{encode_eof, encode_registry};
    let mut body = String::new();
    let encoded = encode_registry(&mut body, &state.build_info)
        .and_then(|()| encode_registry(&mut body, &state.registry))
        .and_then(|()| encode_eof(&mut body));
    if encoded.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[tokio::test]
    async fn metrics_carry_the_build_info_beside_the_service_registry() {
        let mut registry = Registry::with_prefix("foco_probe");
        let requests = Counter::<u64>::default();
        registry.register("requests", "Requests", requests.clone());
        requests.inc();
        let shutdown = CancellationToken::new();
        let admin = AdminServer::bind(
            ([127, 0, 0, 1], 0).into(),
            "foco-probe",
            Arc::new(registry),
            Readiness::default(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let addr = admin.local_addr().unwrap();
        let server = tokio::spawn(admin.serve(shutdown.clone()));

        let (status, text) = foco_testkit::http_get(addr, "/metrics").await;
        assert_eq!(status, 200);
        let build_info = format!(
            "foco_build_info{{service=\"foco-probe\",version=\"{}\",revision=\"{}\"}}",
            crate::build_info::VERSION,
            crate::build_info::REVISION
        );
        assert_eq!(
            foco_testkit::metric_value(&text, &build_info),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            foco_testkit::metric_value(&text, "foco_probe_requests_total"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        shutdown.cancel();
        server.await.unwrap().unwrap();
    }
}
