//! A control App on port-0 listeners over a fresh database and bus prefix, and
//! clients for it.

use std::net::SocketAddr;

use foco_control::{App, Config};
use foco_control_client::ControlApi;
use foco_proto::v1::{
    Account, CreateApiKeyRequest, HmacSha256, SignatureEncoding, Source, UpsertAccountRequest,
    UpsertProviderRouteRequest, UpsertRuleRequest, UpsertSourceRequest, Verification, verification,
};
use foco_testkit::{TestBus, TestDatabase};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

pub struct TestControl {
    pub db: TestDatabase,
    pub bus: TestBus,
    pub grpc_url: String,
    pub admin_addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), foco_control::ControlError>>>,
}

impl TestControl {
    pub async fn start() -> Self {
        let db = TestDatabase::create().await;
        let bus = TestBus::new();
        let config = Config {
            grpc_listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            database_url: db.url.clone(),
            nats_url: bus.nats_url.clone(),
            bus_prefix: bus.prefix.clone(),
            admin_api_key: SecretString::from(ADMIN_KEY),
            encryption_key: foco_control::parse_encryption_key(
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .unwrap(),
        };
        let shutdown = CancellationToken::new();
        let app = App::build(config, shutdown.clone())
            .await
            .expect("build control");
        let grpc_url = format!("http://{}", app.grpc_addr());
        let admin_addr = app.admin_addr();
        let task = tokio::spawn(app.run());
        Self {
            db,
            bus,
            grpc_url,
            admin_addr,
            shutdown,
            task: Some(task),
        }
    }

    pub fn client(&self, key: &str) -> ControlApi {
        foco_control_client::connect(&self.grpc_url, &SecretString::from(key)).unwrap()
    }

    pub fn admin(&self) -> ControlApi {
        self.client(ADMIN_KEY)
    }

    pub async fn create_account(&self, name: &str) -> Account {
        self.admin()
            .upsert_account(UpsertAccountRequest {
                name: name.to_owned(),
                default_country: "MX".to_owned(),
                timezone: "America/Mexico_City".to_owned(),
                ..Default::default()
            })
            .await
            .expect("create account")
            .into_inner()
    }

    pub async fn account_key(&self, account: &str) -> String {
        self.admin()
            .create_api_key(CreateApiKeyRequest {
                account: account.to_owned(),
                description: "test".to_owned(),
            })
            .await
            .expect("create api key")
            .into_inner()
            .key
    }

    /// Stops the App and waits for `run` to return.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("control task").expect("control run");
        }
    }

    /// `GET path` on the admin listener: (status code, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.admin_addr)
            .await
            .unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for TestControl {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn hmac_verification() -> Verification {
    Verification {
        scheme: Some(verification::Scheme::HmacSha256(HmacSha256 {
            header: "X-Shopify-Hmac-Sha256".to_owned(),
            encoding: SignatureEncoding::Base64 as i32,
            prefix: String::new(),
        })),
    }
}

pub fn source_request(account: &str, name: &str, secret: &str) -> UpsertSourceRequest {
    UpsertSourceRequest {
        account: account.to_owned(),
        name: name.to_owned(),
        verification: Some(hmac_verification()),
        secret: secret.to_owned(),
        event_type_from: "header:X-Shopify-Topic".to_owned(),
        event_id_from: "header:X-Shopify-Event-Id".to_owned(),
        enabled: None,
        max_body_bytes: 0,
        ..Default::default()
    }
}

pub fn rule_request(account: &str, source: &str, name: &str) -> UpsertRuleRequest {
    UpsertRuleRequest {
        account: account.to_owned(),
        source: source.to_owned(),
        name: name.to_owned(),
        when: r#"event_type == "orders/create""#.to_owned(),
        to: vec!["+52 55 1234 5678".to_owned()],
        body: "{{ event.customer.first_name }} compró ${{ event.total_price }}".to_owned(),
        provider: String::new(),
        from: String::new(),
        priority: 0,
        enabled: None,
        ..Default::default()
    }
}

pub fn console_route(account: &str, name: &str, is_default: bool) -> UpsertProviderRouteRequest {
    UpsertProviderRouteRequest {
        account: account.to_owned(),
        name: name.to_owned(),
        kind: "console".to_owned(),
        settings: Default::default(),
        credentials: Default::default(),
        is_default,
    }
}

pub async fn create_source(
    control: &TestControl,
    account: &str,
    name: &str,
    secret: &str,
) -> Source {
    control
        .admin()
        .upsert_source(source_request(account, name, secret))
        .await
        .expect("create source")
        .into_inner()
}
