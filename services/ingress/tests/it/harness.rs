//! A real control service (fresh database) and a real ingress on a fresh bus prefix,
//! both in-process on port 0, plus helpers to configure sources and to read what
//! reached the events stream.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use foco_bus::BusNames;
use foco_control_client::ControlApi;
use foco_harness::TestControl;
use foco_proto::v1::{EventEnvelope, Source, UpsertSourceRequest, Verification};
use foco_testkit::TestBus;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};

pub const ACCOUNT: &str = "tienda-ale";

pub struct Harness {
    pub names: BusNames,
    pub api: ControlApi,
    pub http: reqwest::Client,
    pub ingress_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub jetstream: async_nats::jetstream::Context,
    ingress_shutdown: CancellationToken,
    ingress: Option<JoinHandle<Result<(), foco_ingress::AppError>>>,
    /// Kept for its lifetime: dropped with the harness, it fails the test if
    /// control crashed meanwhile.
    _control: TestControl,
}

/// Ingress settings tests may change before start.
pub struct IngressOptions {
    pub control_url: Option<String>,
    pub max_body_bytes: usize,
    pub public_url: Option<String>,
    pub bus: foco_bus::StreamSettings,
    /// Webhooks a second of a source that sets no limit (0: none).
    pub default_source_rate: u32,
}

impl Default for IngressOptions {
    fn default() -> Self {
        Self {
            control_url: None,
            max_body_bytes: 1024 * 1024,
            public_url: None,
            bus: foco_bus::StreamSettings::default(),
            default_source_rate: 0,
        }
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(foco_testkit::nats_url(), IngressOptions::default()).await
    }

    pub async fn start_with(nats_url: String, options: IngressOptions) -> Self {
        install_test_telemetry();
        // reqwest is built without a bundled crypto provider; plain HTTP still needs one set.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let control = TestControl::start_on(TestBus::on(nats_url)).await;
        let names = BusNames::new(&control.bus.prefix).unwrap();
        let ingress_key = control.service_key("ingress").await;

        let ingress_shutdown = CancellationToken::new();
        let config = foco_ingress::Config {
            http_listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            bus: foco_harness::bus_config(&control.bus, foco_bus::NatsAuth::default(), options.bus),
            control: foco_control_client::ControlConfig {
                url: options
                    .control_url
                    .unwrap_or_else(|| control.grpc_url.clone()),
                ..foco_harness::control_config(&control, ingress_key)
            },
            config_cache_ttl: Duration::from_secs(30),
            max_body_bytes: options.max_body_bytes,
            default_source_rate: options.default_source_rate,
            publish_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            public_url: options.public_url,
        };
        let app = foco_ingress::App::build(config, ingress_shutdown.clone())
            .await
            .expect("build ingress");
        let ingress_addr = app.http_addr();
        let admin_addr = app.admin_addr();
        let ingress = tokio::spawn(app.run());

        let api = control.admin();
        let client = async_nats::connect(control.bus.nats_url.clone())
            .await
            .unwrap();
        let mut harness = Self {
            names,
            api,
            http: reqwest::Client::new(),
            ingress_addr,
            admin_addr,
            jetstream: async_nats::jetstream::new(client),
            ingress_shutdown,
            ingress: Some(ingress),
            _control: control,
        };
        harness.create_account(ACCOUNT).await;
        harness
    }

    /// Creates an account (the test account is created at start).
    pub async fn create_account(&mut self, name: &str) {
        foco_harness::create_test_account(&mut self.api, name).await;
    }

    /// Creates or updates a source of the test account.
    pub async fn upsert_source(&mut self, request: UpsertSourceRequest) -> Source {
        self.api
            .upsert_source(UpsertSourceRequest {
                account: ACCOUNT.to_owned(),
                ..request
            })
            .await
            .expect("upsert source")
            .into_inner()
    }

    pub async fn source(
        &mut self,
        name: &str,
        verification: Option<Verification>,
        secret: &str,
    ) -> Source {
        self.upsert_source(UpsertSourceRequest {
            name: name.to_owned(),
            verification,
            secret: secret.to_owned(),
            ..Default::default()
        })
        .await
    }

    pub fn hook_url(&self, token: &str) -> String {
        format!("http://{}/v1/hooks/{token}", self.ingress_addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// The Prometheus text ingress serves on `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(self.admin_url("/metrics")).send().await;
        response.unwrap().text().await.unwrap()
    }

    /// Messages stored in this test's events stream.
    pub async fn stored_events(&self) -> u64 {
        let stream = self
            .jetstream
            .get_stream(self.names.events_stream())
            .await
            .expect("events stream exists");
        stream.get_info().await.expect("stream info").state.messages
    }

    /// The event stored at `sequence`, with its `Nats-Msg-Id` and subject.
    pub async fn stored_event(&self, sequence: u64) -> StoredEvent {
        let stream = self
            .jetstream
            .get_stream(self.names.events_stream())
            .await
            .expect("events stream exists");
        let message = stream
            .get_raw_message(sequence)
            .await
            .expect("stored message");
        StoredEvent {
            subject: message.subject.to_string(),
            msg_id: message
                .headers
                .get(foco_bus::MSG_ID_HEADER)
                .map(|value| value.as_str().to_owned()),
            traceparent: message
                .headers
                .get(foco_runtime::telemetry::propagation::TRACEPARENT)
                .map(|value| value.as_str().to_owned()),
            envelope: EventEnvelope::decode(message.payload).expect("an EventEnvelope"),
        }
    }

    /// Signals shutdown as SIGTERM would, without waiting.
    pub fn begin_shutdown(&self) {
        self.ingress_shutdown.cancel();
    }

    /// Stops ingress as SIGTERM would and returns what `run` returned.
    pub async fn stop_ingress(&mut self) -> Result<(), foco_ingress::AppError> {
        self.ingress_shutdown.cancel();
        let handle = self.ingress.take().expect("ingress still running");
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("ingress stops within its grace")
            .expect("ingress task did not panic")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // An ingress that failed or quit before the test stopped it fails
        // the test (control is watched by its own harness).
        let ended_on_its_own = !self.ingress_shutdown.is_cancelled()
            && self.ingress.as_ref().is_some_and(JoinHandle::is_finished);
        self.ingress_shutdown.cancel();
        if ended_on_its_own && !std::thread::panicking() {
            panic!("ingress ended before the test stopped it");
        }
    }
}

/// One process-wide subscriber with an OpenTelemetry layer, installed before any
/// service code runs, so spans carry W3C trace ids as in production. (A
/// thread-local subscriber per test races with other tests registering the same
/// callsites.) `RUST_LOG` turns on log output for debugging; it is off by default.
fn install_test_telemetry() {
    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let provider = SdkTracerProvider::builder().build();
        let logs = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off")),
            );
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("foco-ingress-it")))
            .with(logs);
        let _ = tracing::subscriber::set_global_default(subscriber);
        provider
    });
}

pub struct StoredEvent {
    pub subject: String,
    pub msg_id: Option<String>,
    pub traceparent: Option<String>,
    pub envelope: EventEnvelope,
}

pub use foco_testkit::fixture;

/// Sends `request`: the status and the JSON answer (null when there is none).
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// A parsed problem+json answer.
pub struct ProblemAnswer {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: serde_json::Value,
}

pub async fn problem(response: reqwest::Response) -> ProblemAnswer {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let body = response.json().await.expect("a JSON problem body");
    ProblemAnswer {
        status,
        content_type,
        retry_after,
        body,
    }
}

/// Asserts a problem+json answer with `status` and the kind's stable `type`.
pub fn assert_problem(answer: &ProblemAnswer, status: u16, slug: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.content_type, foco_ingress::PROBLEM_CONTENT_TYPE);
    assert_eq!(answer.body["status"], status);
    assert_eq!(
        answer.body["type"],
        format!("https://foco.dev/problems/{slug}")
    );
    assert!(answer.body["title"].is_string());
    assert!(answer.body["detail"].is_string());
}
