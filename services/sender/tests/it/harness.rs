//! A control App and a sender App on port-0 listeners over a fresh database and bus
//! prefix, a fake provider, and helpers to publish jobs and read message rows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use foco_bus::BusNames;
use foco_harness::TestControl;
use foco_proto::v1::delivery_service_client::DeliveryServiceClient;
use foco_proto::v1::{Account, DeliveryReceipt, InboundSms, SmsJob, UpsertProviderRouteRequest};
use foco_testkit::FakeProvider;
use prost::Message as _;
use secrecy::SecretString;
use sqlx::Row;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use foco_harness::ADMIN_KEY;

/// One test's world: control, Postgres, NATS prefix, a fake provider, an account.
pub struct TestEnv {
    /// Control, with its database and bus prefix.
    pub app: TestControl,
    pub names: BusNames,
    pub account: Account,
    pub fake: FakeProvider,
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub outbox_dir: PathBuf,
}

impl TestEnv {
    /// Control running, an account `acme` (default country MX), nothing else.
    pub async fn start() -> Self {
        let app = TestControl::start().await;
        let names = BusNames::new(&app.bus.prefix).unwrap();
        let nats = async_nats::connect(&app.bus.nats_url)
            .await
            .expect("connect to NATS");
        let jetstream = jetstream::new(nats.clone());
        let mut env = Self {
            app,
            names,
            account: Account::default(),
            fake: FakeProvider::start().await,
            nats,
            jetstream,
            outbox_dir: std::env::temp_dir()
                .join(format!("foco-sender-it-{}", uuid::Uuid::new_v4())),
        };
        env.account = env.create_account("acme").await;
        env
    }

    /// An account in Mexico (country MX, Mexico City time).
    async fn create_account(&self, name: &str) -> Account {
        foco_harness::create_test_account(&mut self.control(), name).await
    }

    pub fn control(&self) -> foco_control_client::ControlApi {
        self.app.admin()
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.app.db.pool
    }

    /// The delivery API (dead letters, opt-outs, unknown jobs) with the admin key.
    pub fn delivery(&self) -> Delivery {
        let channel = tonic::transport::Endpoint::from_shared(self.app.grpc_url.clone())
            .unwrap()
            .connect_lazy();
        DeliveryServiceClient::with_interceptor(channel, add_admin_key as AddKey)
    }

    /// A default route.
    pub async fn upsert_route(
        &self,
        name: &str,
        kind: &str,
        settings: &[(&str, &str)],
        credentials: &[(&str, &str)],
    ) {
        self.upsert_route_as(name, kind, settings, credentials, true)
            .await;
    }

    pub async fn upsert_route_as(
        &self,
        name: &str,
        kind: &str,
        settings: &[(&str, &str)],
        credentials: &[(&str, &str)],
        is_default: bool,
    ) {
        let owned = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect()
        };
        self.control()
            .upsert_provider_route(UpsertProviderRouteRequest {
                account: self.account.name.clone(),
                name: name.to_owned(),
                kind: kind.to_owned(),
                settings: owned(settings),
                credentials: owned(credentials),
                is_default,
            })
            .await
            .expect("upsert provider route");
    }

    /// The default route: the generic http provider pointed at the fake.
    pub async fn http_route(&self) {
        let url = format!("{}/sms", self.fake.url());
        self.upsert_route(
            "gateway",
            "http",
            &[("url", &url), ("from", "FOCO")],
            &[("authorization", "Bearer gateway-token")],
        )
        .await;
    }

    /// The default route: Twilio's API pointed at the fake (a provider kind
    /// that sends delivery receipts).
    pub async fn twilio_route(&self) {
        self.upsert_route(
            "twilio",
            "twilio",
            &[("base_url", &self.fake.url()), ("from", "+15005550006")],
            &[("account_sid", "AC1"), ("auth_token", "tw")],
        )
        .await;
    }

    /// Another account (country MX) whose default route is the http provider
    /// pointed at `fake`.
    pub async fn second_account(&self, name: &str, fake: &FakeProvider) -> OtherAccount {
        let account = self.create_account(name).await;
        self.control()
            .upsert_provider_route(UpsertProviderRouteRequest {
                account: account.name.clone(),
                name: "gateway".to_owned(),
                kind: "http".to_owned(),
                settings: HashMap::from([("url".to_owned(), format!("{}/sms", fake.url()))]),
                credentials: HashMap::new(),
                is_default: true,
            })
            .await
            .expect("upsert provider route");
        OtherAccount {
            account_id: account.id,
        }
    }

    /// Publishes `job` on `account_id`'s subject.
    pub async fn publish_for(&self, account_id: &str, job: &SmsJob) {
        self.publish_on(
            self.names.sms_subject(account_id),
            &job.job_id,
            job.encode_to_vec().into(),
        )
        .await;
    }

    /// Settings a test may adjust before starting a sender.
    pub fn sender_config(&self) -> foco_sender::Config {
        foco_sender::Config {
            bus: foco_harness::bus_config(&self.app.bus, Default::default(), Default::default()),
            database_url: self.app.db.url.clone(),
            control: foco_harness::control_config(&self.app, SecretString::from(ADMIN_KEY)),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            concurrency: 8,
            max_ack_pending: 1000,
            ack_wait: Duration::from_secs(5),
            provider_timeout: Duration::from_secs(3),
            max_attempts: 8,
            console_outbox: self.outbox_dir.join("outbox.jsonl"),
            console_provider: true,
            allow_private_provider_hosts: true,
            config_cache_ttl: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            claim_margin: Duration::from_secs(1),
            shared_state_poll: Duration::from_millis(100),
            // Deterministic at any hour; the quiet-hours tests set their window.
            quiet_hours: None,
            ..foco_sender::Config::default()
        }
    }

    pub async fn start_sender(&self, config: foco_sender::Config) -> RunningSender {
        let shutdown = CancellationToken::new();
        let app = foco_sender::App::build(config, shutdown.clone())
            .await
            .expect("build sender");
        let admin_addr = app.admin_addr();
        let metrics = app.metrics();
        RunningSender {
            shutdown,
            admin_addr,
            metrics,
            task: Some(tokio::spawn(app.run())),
        }
    }

    /// The `foco-sender` binary itself, configured through its environment as in
    /// production, so that it can be killed with SIGKILL.
    pub fn spawn_sender_process(&self, config: &foco_sender::Config) -> SenderProcess {
        use secrecy::ExposeSecret as _;
        let duration = |value: Duration| format!("{}ms", value.as_millis());
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_foco-sender"))
            .env_clear()
            .env("RUST_LOG", "warn")
            .env("NATS_URL", &config.bus.url)
            .env("FOCO_BUS_PREFIX", config.bus.names.prefix())
            .env("DATABASE_URL", &config.database_url)
            .env("FOCO_CONTROL_URL", &config.control.url)
            .env(
                "FOCO_CONTROL_API_KEY",
                config.control.api_key.expose_secret(),
            )
            .env("FOCO_ADMIN_LISTEN", config.admin_listen.to_string())
            .env("FOCO_SENDER_CONCURRENCY", config.concurrency.to_string())
            .env(
                "FOCO_SENDER_MAX_ACK_PENDING",
                config.max_ack_pending.to_string(),
            )
            .env("FOCO_SENDER_ACK_WAIT", duration(config.ack_wait))
            .env("FOCO_PROVIDER_TIMEOUT", duration(config.provider_timeout))
            .env("FOCO_SENDER_CLAIM_MARGIN", duration(config.claim_margin))
            .env("FOCO_SHUTDOWN_GRACE", duration(config.shutdown_grace))
            .env(
                "FOCO_SENDER_SHARED_STATE_POLL",
                duration(config.shared_state_poll),
            )
            .env("FOCO_SENDER_MAX_ATTEMPTS", config.max_attempts.to_string())
            .env("FOCO_CONSOLE_OUTBOX", &config.console_outbox)
            .env("FOCO_CONSOLE_PROVIDER", config.console_provider.to_string())
            .env(
                "FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS",
                config.allow_private_provider_hosts.to_string(),
            )
            .env("FOCO_QUIET_HOURS", "off")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the foco-sender binary");
        SenderProcess { child }
    }

    /// A job to `to` on the account's default route.
    pub fn job(&self, to: &str, body: &str) -> SmsJob {
        job_for(&self.account.id, to, body)
    }

    /// Publishes `job` with `Nats-Msg-Id: msg_id` (the job id, unless a test wants
    /// to slip a duplicate past JetStream's dedup).
    pub async fn publish_with_id(&self, job: &SmsJob, msg_id: &str) {
        self.publish_bytes(job.encode_to_vec().into(), msg_id).await;
    }

    pub async fn publish(&self, job: &SmsJob) {
        self.publish_with_id(job, &job.job_id).await;
    }

    pub async fn publish_bytes(&self, payload: Bytes, msg_id: &str) {
        foco_bus::publish_durable(
            &self.jetstream,
            &self.nats,
            self.names.sms_subject(&self.account.id),
            msg_id,
            payload,
            Duration::from_secs(5),
        )
        .await
        .expect("publish sms job");
    }

    /// The streams a sender would create, for tests that publish before one runs.
    pub async fn ensure_streams(&self) {
        foco_bus::ensure_streams(&self.jetstream, &self.names, Default::default())
            .await
            .expect("ensure streams");
    }

    pub async fn publish_receipt(&self, receipt: &DeliveryReceipt) {
        let status = receipt.status.to_string();
        let msg_id = foco_bus::receipt_msg_id(
            &receipt.account_id,
            &receipt.provider,
            &receipt.provider_message_id,
            0,
            &status,
        );
        self.publish_on(
            self.names
                .receipts_subject(&self.account.id, foco_bus::ReceiptKind::Status),
            &msg_id,
            receipt.encode_to_vec().into(),
        )
        .await;
    }

    pub async fn publish_inbound(&self, inbound: &InboundSms) {
        self.publish_on(
            self.names
                .receipts_subject(&self.account.id, foco_bus::ReceiptKind::Inbound),
            &foco_bus::inbound_msg_id(
                &inbound.account_id,
                &inbound.provider,
                &inbound.provider_message_id,
            ),
            inbound.encode_to_vec().into(),
        )
        .await;
    }

    async fn publish_on(&self, subject: String, msg_id: &str, payload: Bytes) {
        foco_bus::publish_durable(
            &self.jetstream,
            &self.nats,
            subject,
            msg_id,
            payload,
            Duration::from_secs(5),
        )
        .await
        .expect("publish");
    }

    /// Waits until `count` rows have a final status (anything but queued or
    /// sending) and returns every row's (job id, status).
    pub async fn wait_for_final(&self, count: i64, timeout: Duration) -> Vec<(String, String)> {
        foco_testkit::wait_for(&format!("{count} final messages"), timeout, || async {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT job_id, status FROM messages WHERE status NOT IN ('queued', 'sending')",
            )
            .fetch_all(self.pool())
            .await
            .unwrap();
            (rows.len() as i64 >= count).then_some(rows)
        })
        .await
    }

    /// Rows in a final status (anything but queued or sending).
    pub async fn count_final(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM messages WHERE status NOT IN ('queued', 'sending')",
        )
        .fetch_one(self.pool())
        .await
        .expect("count messages")
    }

    pub async fn count_status(&self, status: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE status = $1")
            .bind(status)
            .fetch_one(self.pool())
            .await
            .expect("count messages")
    }

    pub async fn message(&self, job_id: &str) -> Option<MessageRow> {
        let row = sqlx::query(
            "SELECT status, attempts, error, provider, provider_message_id, recipient, sent_at IS NOT NULL AS has_sent_at
             FROM messages WHERE job_id = $1",
        )
        .bind(job_id)
        .fetch_optional(self.pool())
        .await
        .expect("read message")?;
        Some(MessageRow {
            status: row.get("status"),
            attempts: row.get("attempts"),
            error: row.get("error"),
            provider: row.get("provider"),
            provider_message_id: row.get("provider_message_id"),
            recipient: row.get("recipient"),
            has_sent_at: row.get("has_sent_at"),
        })
    }

    pub async fn wait_for_status(
        &self,
        job_id: &str,
        status: &str,
        timeout: Duration,
    ) -> MessageRow {
        foco_testkit::wait_for(
            &format!("message {job_id} to be {status}"),
            timeout,
            || async {
                self.message(job_id)
                    .await
                    .filter(|row| row.status == status)
            },
        )
        .await
    }
}

pub type AddKey = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
pub type Delivery = DeliveryServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, AddKey>,
>;

fn add_admin_key(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let header = format!("Bearer {ADMIN_KEY}").parse().expect("header value");
    request.metadata_mut().insert("authorization", header);
    Ok(request)
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.outbox_dir);
    }
}

#[derive(Debug, Clone)]
pub struct MessageRow {
    pub status: String,
    pub attempts: i32,
    pub error: String,
    pub provider: String,
    pub provider_message_id: String,
    pub recipient: String,
    pub has_sent_at: bool,
}

/// An account made by `second_account`.
pub struct OtherAccount {
    pub account_id: String,
}

impl OtherAccount {
    /// A job to `to` on this account's default route.
    pub fn job(&self, to: &str, body: &str) -> SmsJob {
        job_for(&self.account_id, to, body)
    }
}

fn job_for(account_id: &str, to: &str, body: &str) -> SmsJob {
    let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    SmsJob {
        job_id: foco_bus::job_id(&event_id, "rule-1", to),
        account_id: account_id.to_owned(),
        event_id,
        source_id: "source-1".to_owned(),
        rule_id: "rule-1".to_owned(),
        to: to.to_owned(),
        body: body.to_owned(),
        provider: String::new(),
        from: String::new(),
        priority: 1,
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        ..Default::default()
    }
}

/// A `foco-sender` process (`spawn_sender_process`).
pub struct SenderProcess {
    child: tokio::process::Child,
}

impl SenderProcess {
    /// SIGKILL: no drain, no acks, no outcome writes; then reaps the process.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL the sender");
        let _ = self.child.wait().await;
    }
}

pub struct RunningSender {
    pub shutdown: CancellationToken,
    pub admin_addr: SocketAddr,
    pub metrics: foco_sender::metrics::Metrics,
    pub task: Option<JoinHandle<Result<(), foco_sender::SenderError>>>,
}

impl RunningSender {
    /// Cancels and waits for `run` to return.
    pub async fn stop(mut self) -> Result<(), foco_sender::SenderError> {
        self.shutdown.cancel();
        let task = self.task.take().expect("sender task");
        task.await.expect("sender task panicked")
    }

    /// Aborts the task, as a SIGKILL would: no drain, no acks, no outcome writes.
    pub async fn kill(mut self) {
        let task = self.task.take().expect("sender task");
        task.abort();
        let _ = task.await;
    }

    pub async fn wait_for_jobs(&self, outcome: &'static str, count: u64) {
        foco_testkit::wait_for(
            &format!("{count} jobs with outcome {outcome}"),
            Duration::from_secs(20),
            || async { (self.metrics.jobs_with_outcome(outcome) >= count).then_some(()) },
        )
        .await;
    }

    /// `GET path` on the admin listener: (status code, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        foco_testkit::http_get(self.admin_addr, path).await
    }
}

impl Drop for RunningSender {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
