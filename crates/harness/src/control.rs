use std::net::SocketAddr;

use foco_control::{App, Config};
use foco_control_client::{ControlApi, MessagingApi, SchedulingApi};
use foco_proto::v1::CreateApiKeyRequest;
use foco_testkit::{TestBus, TestDatabase};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::running::{Crashes, Running, assert_no_crash};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
/// 32 bytes 0..=31, base64.
pub const ENCRYPTION_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// foco-control on a fresh database and bus prefix.
pub struct TestControl {
    pub db: TestDatabase,
    pub bus: TestBus,
    pub grpc_url: String,
    pub admin_addr: SocketAddr,
    running: Option<Running>,
    crashes: Crashes,
}

/// Webhook retries seconds apart rather than hours, endpoints on loopback,
/// and a short attempt timeout, so tests see an endpoint's outage and
/// recovery without waiting for the production schedule.
pub fn test_webhook_settings() -> foco_control::webhooks::WebhookSettings {
    let millis = std::time::Duration::from_millis;
    foco_control::webhooks::WebhookSettings {
        retry_schedule: [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000]
            .into_iter()
            .chain(std::iter::repeat_n(1_000, 50))
            .map(millis)
            .collect(),
        request_timeout: std::time::Duration::from_secs(2),
        poll_interval: millis(50),
        allow_private_hosts: true,
        ..Default::default()
    }
}

impl TestControl {
    pub async fn start() -> Self {
        Self::start_on(TestBus::new()).await
    }

    /// On a given bus (e.g. one on a private NATS server).
    pub async fn start_on(bus: TestBus) -> Self {
        Self::start_with(bus, None, foco_bus::NatsAuth::default()).await
    }

    /// On a given bus, connecting to NATS as `nats_auth` says.
    pub async fn start_as(bus: TestBus, nats_auth: foco_bus::NatsAuth) -> Self {
        Self::start_with(bus, None, nats_auth).await
    }

    /// With the gRPC API over TLS from `tls`'s files: `grpc_url` is `https://`.
    pub async fn start_with_tls(tls: foco_control::TlsFiles) -> Self {
        Self::start_with(TestBus::new(), Some(tls), foco_bus::NatsAuth::default()).await
    }

    async fn start_with(
        bus: TestBus,
        tls: Option<foco_control::TlsFiles>,
        nats_auth: foco_bus::NatsAuth,
    ) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let db = TestDatabase::create().await;
        let config = Config {
            grpc_listen: "127.0.0.1:0".parse().expect("address"),
            admin_listen: "127.0.0.1:0".parse().expect("address"),
            database_url: db.url.clone(),
            bus: crate::bus_config(&bus, nats_auth, Default::default()),
            admin_api_key: SecretString::from(ADMIN_KEY),
            encryption_key: foco_control::parse_encryption_key(ENCRYPTION_KEY).expect("test key"),
            // Short, so tests see a change in the backlog gauges quickly.
            backlog_interval: std::time::Duration::from_millis(200),
            tls,
            service_key_hashes: Vec::new(),
            webhooks: test_webhook_settings(),
        };
        let shutdown = CancellationToken::new();
        let app = App::build(config, shutdown.clone())
            .await
            .expect("build control");
        let grpc_url = format!("{scheme}://{}", app.grpc_addr());
        let admin_addr = app.admin_addr();
        let crashes = Crashes::default();
        let running = Running::spawn("control", &crashes, shutdown, app.run());
        Self {
            db,
            bus,
            grpc_url,
            admin_addr,
            running: Some(running),
            crashes,
        }
    }

    pub fn client(&self, key: &str) -> ControlApi {
        foco_control_client::connect(&self.grpc_url, &SecretString::from(key))
            .expect("control client")
    }

    pub fn admin(&self) -> ControlApi {
        self.client(ADMIN_KEY)
    }

    /// A new key for `service` ("ingress", "rules" or "sender"), as an operator
    /// creates one with the admin key: what that service presents to control.
    pub async fn service_key(&self, service: &str) -> SecretString {
        let created = self
            .admin()
            .create_api_key(CreateApiKeyRequest {
                service: service.to_owned(),
                name: format!("{service}-test"),
                ..Default::default()
            })
            .await
            .expect("create service key")
            .into_inner();
        SecretString::from(created.key)
    }

    /// The scheduling API (delayed jobs, event reports) with the admin key.
    pub fn scheduling(&self) -> SchedulingApi {
        foco_control_client::connect_scheduling(&self.grpc_url, &SecretString::from(ADMIN_KEY))
            .expect("scheduling client")
    }

    /// The messaging API (send, trigger) with `key`.
    pub fn messaging(&self, key: &str) -> MessagingApi {
        foco_control_client::connect_messaging(&self.grpc_url, &SecretString::from(key))
            .expect("messaging client")
    }

    /// Stops the App and waits for `run` to return; panics if it failed.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown.cancel();
            running.task.await.expect("control task");
        }
        assert_no_crash(&self.crashes);
    }
}

/// A control that failed or quit during the test fails it.
impl Drop for TestControl {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.shutdown.cancel();
        }
        if !std::thread::panicking() {
            assert_no_crash(&self.crashes);
        }
    }
}

/// Creates (or updates) the test account `name`: Mexico, Mexico City time.
/// What every test that needs an account starts from.
pub async fn create_test_account(admin: &mut ControlApi, name: &str) -> foco_proto::v1::Account {
    admin
        .upsert_account(foco_proto::v1::UpsertAccountRequest {
            name: name.to_owned(),
            default_country: "MX".to_owned(),
            timezone: "America/Mexico_City".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create account")
        .into_inner()
}
