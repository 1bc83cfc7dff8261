//! A real control service (fresh database) and a real ingress on a fresh bus prefix,
//! both in-process on port 0, plus helpers to configure sources and to read what
//! reached the events stream.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use foco_bus::BusNames;
use foco_control_client::ControlApi;
use foco_proto::v1::{
    EventEnvelope, Source, UpsertAccountRequest, UpsertSourceRequest, Verification,
};
use foco_testkit::{TestBus, TestDatabase};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message as _;
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const ACCOUNT: &str = "tienda-ale";

pub struct Harness {
    _bus: TestBus,
    pub names: BusNames,
    pub api: ControlApi,
    pub http: reqwest::Client,
    pub ingress_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub jetstream: async_nats::jetstream::Context,
    ingress_shutdown: CancellationToken,
    ingress: Option<JoinHandle<Result<(), foco_ingress::AppError>>>,
    control_shutdown: CancellationToken,
    _database: TestDatabase,
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
        let database = TestDatabase::create().await;
        let bus = TestBus::on(nats_url.clone());
        let names = BusNames::new(&bus.prefix).unwrap();

        let control_shutdown = CancellationToken::new();
        let control_config = foco_control::Config {
            grpc_listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            database_url: database.url.clone(),
            nats_url: nats_url.clone(),
            nats_auth: foco_bus::NatsAuth::default(),
            bus_prefix: bus.prefix.clone(),
            admin_api_key: SecretString::from(ADMIN_KEY),
            encryption_key: foco_control::parse_encryption_key(
                &base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            )
            .unwrap(),
            bus: Default::default(),
            webhooks: Default::default(),
            backlog_interval: std::time::Duration::from_secs(15),
            tls: None,
            service_key_hashes: Vec::new(),
        };
        let control = foco_control::App::build(control_config, control_shutdown.clone())
            .await
            .expect("build control");
        let control_url = format!("http://{}", control.grpc_addr());
        tokio::spawn(control.run());

        let ingress_shutdown = CancellationToken::new();
        let config = foco_ingress::Config {
            http_listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            nats_url,
            nats_auth: foco_bus::NatsAuth::default(),
            bus_prefix: bus.prefix.clone(),
            bus: options.bus,
            control_url: options.control_url.unwrap_or_else(|| control_url.clone()),
            control_api_key: SecretString::from(ADMIN_KEY),
            control_ca_file: None,
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

        let api =
            foco_control_client::connect(&control_url, &SecretString::from(ADMIN_KEY)).unwrap();
        let client = async_nats::connect(bus.nats_url.clone()).await.unwrap();
        let mut harness = Self {
            _bus: bus,
            names,
            api,
            http: reqwest::Client::new(),
            ingress_addr,
            admin_addr,
            jetstream: async_nats::jetstream::new(client),
            ingress_shutdown,
            ingress: Some(ingress),
            control_shutdown,
            _database: database,
        };
        harness.create_account(ACCOUNT).await;
        harness
    }

    /// Creates an account (the test account is created at start).
    pub async fn create_account(&mut self, name: &str) {
        self.api
            .upsert_account(UpsertAccountRequest {
                name: name.to_owned(),
                default_country: "MX".to_owned(),
                timezone: "America/Mexico_City".to_owned(),
                ..Default::default()
            })
            .await
            .expect("create account");
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
        self.ingress_shutdown.cancel();
        self.control_shutdown.cancel();
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

/// The bytes of a shared webhook fixture, from this crate's byte-exact copy first.
pub fn fixture(name: &str) -> Vec<u8> {
    let candidates = [
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")),
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/webhooks"
        )),
    ]
    .into_iter()
    .chain(std::env::var_os("FOCO_FIXTURES_DIR").map(PathBuf::from));
    for dir in candidates {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            return bytes;
        }
    }
    panic!("fixture {name} not found");
}

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
