use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use foco_control_client::{ControlApi, SchedulingApi};
use foco_proto::v1::{ListMessagesRequest, Message, UpsertProviderRouteRequest};
use foco_testkit::{FakeProvider, TestBus};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::TestControl;
use crate::running::{Crashes, Running};

/// The account every `TestSystem` creates.
pub const ACCOUNT: &str = "tienda-ale";

#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// Sender's ack wait: short in tests that kill a sender mid-job.
    pub sender_ack_wait: Duration,
    pub sender_max_attempts: u32,
    /// The streams' settings every service applies when it starts.
    pub bus: foco_bus::StreamSettings,
    /// Each service's NATS identity; a service not listed connects without
    /// credentials.
    pub nats_auth: BTreeMap<foco_bus::Service, foco_bus::NatsAuth>,
}

impl SystemOptions {
    fn nats_auth_of(&self, service: foco_bus::Service) -> foco_bus::NatsAuth {
        self.nats_auth.get(&service).cloned().unwrap_or_default()
    }
}

impl Default for SystemOptions {
    fn default() -> Self {
        Self {
            sender_ack_wait: Duration::from_secs(30),
            sender_max_attempts: 5,
            bus: foco_bus::StreamSettings::default(),
            nats_auth: BTreeMap::new(),
        }
    }
}

/// All four services in-process. Account `tienda-ale` (MX) exists with a default
/// `http` route to `provider`.
pub struct TestSystem {
    pub control: TestControl,
    pub provider: FakeProvider,
    pub ingress_url: String,
    pub ingress_admin: SocketAddr,
    pub options: SystemOptions,
    outbox_dir: tempfile::TempDir,
    /// What the sender presents to control: a service key, like ingress's and
    /// rules', never the admin key.
    sender_key: SecretString,
    ingress: Option<Running>,
    rules: Option<Running>,
    sender: Option<Running>,
    crashes: Crashes,
}

impl TestSystem {
    pub async fn start() -> Self {
        Self::start_with(SystemOptions::default()).await
    }

    pub async fn start_with(options: SystemOptions) -> Self {
        Self::start_on(TestBus::new(), options).await
    }

    pub async fn start_on(bus: TestBus, options: SystemOptions) -> Self {
        let control =
            TestControl::start_as(bus, options.nats_auth_of(foco_bus::Service::Control)).await;
        let provider = FakeProvider::start().await;
        add_account(&control, &provider, ACCOUNT).await;

        let shutdown = CancellationToken::new();
        let ingress_config = foco_ingress::Config {
            http_listen: "127.0.0.1:0".parse().expect("address"),
            admin_listen: "127.0.0.1:0".parse().expect("address"),
            bus: crate::bus_config(
                &control.bus,
                options.nats_auth_of(foco_bus::Service::Ingress),
                options.bus,
            ),
            control: crate::control_config(&control, control.service_key("ingress").await),
            config_cache_ttl: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            default_source_rate: 0,
            publish_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            public_url: None,
        };
        let ingress = foco_ingress::App::build(ingress_config, shutdown.clone())
            .await
            .expect("build ingress");
        let ingress_url = format!("http://{}", ingress.http_addr());
        let ingress_admin = ingress.admin_addr();
        let crashes = Crashes::default();
        let ingress = Running::spawn("ingress", &crashes, shutdown, ingress.run());

        let sender_key = control.service_key("sender").await;
        let mut system = Self {
            control,
            provider,
            ingress_url,
            ingress_admin,
            options,
            outbox_dir: tempfile::tempdir().expect("outbox dir"),
            sender_key,
            ingress: Some(ingress),
            crashes,
            rules: None,
            sender: None,
        };
        system.start_rules().await;
        system.start_sender().await;
        system
    }

    pub fn admin(&self) -> ControlApi {
        self.control.admin()
    }

    /// Another account like `ACCOUNT` (MX, a default `http` route to `provider`).
    pub async fn add_account(&self, name: &str) {
        add_account(&self.control, &self.provider, name).await;
    }

    pub fn scheduling(&self) -> SchedulingApi {
        self.control.scheduling()
    }

    pub fn outbox_path(&self) -> PathBuf {
        self.outbox_dir.path().join("outbox.jsonl")
    }

    pub async fn start_rules(&mut self) {
        let shutdown = CancellationToken::new();
        let config = foco_rules::Config {
            bus: crate::bus_config(
                &self.control.bus,
                self.options.nats_auth_of(foco_bus::Service::Rules),
                self.options.bus,
            ),
            database_url: self.control.db.url.clone(),
            control: crate::control_config(&self.control, self.control.service_key("rules").await),
            admin_listen: "127.0.0.1:0".parse().expect("address"),
            config_cache_ttl: Duration::from_secs(30),
            concurrency: 8,
            store_writers: 2,
            store_batch: 64,
            store_linger: foco_runtime::batch::SMS_PATH_LINGER,
            limits: foco_rules::Limits::default(),
            ack_wait: Duration::from_secs(10),
            max_deliveries: 20,
            publish_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            scheduler_tick: Duration::from_millis(50),
            scheduler_batch: 200,
            scheduler_max_per_second: 5000,
            scheduler_max_hold: Duration::from_secs(30),
            lag_interval: Duration::from_secs(1),
        };
        let app = foco_rules::App::build(config, shutdown.clone())
            .await
            .expect("build rules");
        self.rules = Some(Running::spawn("rules", &self.crashes, shutdown, app.run()));
    }

    /// The sender's configuration, with its own service key.
    pub fn sender_config(&self) -> foco_sender::Config {
        foco_sender::Config {
            bus: crate::bus_config(
                &self.control.bus,
                self.options.nats_auth_of(foco_bus::Service::Sender),
                self.options.bus,
            ),
            database_url: self.control.db.url.clone(),
            control: crate::control_config(&self.control, self.sender_key.clone()),
            admin_listen: "127.0.0.1:0".parse().expect("address"),
            concurrency: 16,
            max_ack_pending: 64,
            ack_wait: self.options.sender_ack_wait,
            // The sender requires its ack wait to outlast a provider call.
            provider_timeout: (self.options.sender_ack_wait / 2).min(Duration::from_secs(10)),
            max_attempts: self.options.sender_max_attempts,
            console_outbox: self.outbox_path(),
            console_provider: true,
            allow_private_provider_hosts: true,
            config_cache_ttl: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            // Deterministic at any hour: no marketing job is held for quiet hours.
            quiet_hours: None,
            ..foco_sender::Config::default()
        }
    }

    pub async fn start_sender(&mut self) {
        let shutdown = CancellationToken::new();
        let app = foco_sender::App::build(self.sender_config(), shutdown.clone())
            .await
            .expect("build sender");
        self.sender = Some(Running::spawn("sender", &self.crashes, shutdown, app.run()));
    }

    /// Aborts the sender's task without a graceful stop: whatever it was doing is
    /// cut off as by SIGKILL (nothing after the current await point runs).
    pub async fn kill_sender(&mut self) {
        if let Some(running) = self.sender.take() {
            running.task.abort();
            let _ = running.task.await;
        }
        self.assert_no_crash();
    }

    /// Graceful stop of the sender (SIGTERM path).
    pub async fn stop_sender(&mut self) {
        if let Some(running) = self.sender.take() {
            running.shutdown.cancel();
            let _ = running.task.await;
        }
        self.assert_no_crash();
    }

    /// Fails the test if a service failed or ended on its own so far.
    pub fn assert_no_crash(&self) {
        crate::assert_no_crash(&self.crashes);
    }

    pub async fn messages(&self) -> Vec<Message> {
        self.admin()
            .list_messages(ListMessagesRequest {
                account: ACCOUNT.to_owned(),
                limit: 1000,
                ..Default::default()
            })
            .await
            .expect("list messages")
            .into_inner()
            .messages
    }

    /// Stops every service gracefully.
    pub async fn stop(mut self) {
        for running in [self.sender.take(), self.rules.take(), self.ingress.take()]
            .into_iter()
            .flatten()
        {
            running.shutdown.cancel();
            let _ = running.task.await;
        }
        self.assert_no_crash();
    }
}

impl Drop for TestSystem {
    fn drop(&mut self) {
        for running in [&self.sender, &self.rules, &self.ingress]
            .into_iter()
            .flatten()
        {
            running.shutdown.cancel();
        }
        if !std::thread::panicking() {
            self.assert_no_crash();
        }
    }
}

/// Account `name` (MX) with a default `http` route to `provider`.
async fn add_account(control: &TestControl, provider: &FakeProvider, name: &str) {
    let mut admin = control.admin();
    crate::create_test_account(&mut admin, name).await;
    admin
        .upsert_provider_route(UpsertProviderRouteRequest {
            account: name.to_owned(),
            name: "fake".to_owned(),
            kind: "http".to_owned(),
            settings: [("url".to_owned(), format!("{}/sms", provider.url()))].into(),
            credentials: Default::default(),
            is_default: true,
        })
        .await
        .expect("create route");
}
