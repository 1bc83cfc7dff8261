//! An in-process control App on port-0 listeners, and a sample configuration file.

use std::collections::HashMap;
use std::path::PathBuf;

use foco_control::{App, Config};
use foco_control_client::ControlApi;
use foco_testkit::{TestBus, TestDatabase};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

pub const ADMIN_KEY: &str = "cli-test-admin-key-0123456789";
pub const INGRESS_URL: &str = "https://hooks.example.test/";

pub struct Control {
    pub grpc_url: String,
    pub db: TestDatabase,
    _bus: TestBus,
    shutdown: CancellationToken,
}

impl Control {
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
        tokio::spawn(app.run());
        Self {
            grpc_url,
            db,
            _bus: bus,
            shutdown,
        }
    }

    pub fn api(&self) -> ControlApi {
        foco_control_client::connect(&self.grpc_url, &SecretString::from(ADMIN_KEY)).unwrap()
    }

    pub fn scheduling(&self) -> foco_control_client::SchedulingApi {
        foco_control_client::connect_scheduling(&self.grpc_url, &SecretString::from(ADMIN_KEY))
            .unwrap()
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub const CONFIG: &str = r#"
account: tienda-ale
default_country: MX
timezone: America/Mexico_City
providers:
  - name: primary
    kind: console
    default: true
  - name: hook
    kind: http
    url: http://127.0.0.1:9999/sms
    headers: { Authorization: env:HOOK_TOKEN }
sources:
  - name: shop
    verify: { scheme: hmac-sha256, header: X-Shopify-Hmac-Sha256, encoding: base64 }
    secret: env:SHOPIFY_WEBHOOK_SECRET
    event_type: header:X-Shopify-Topic
    event_id: header:X-Shopify-Event-Id
    rules:
      - name: owner-alert
        when: 'event_type == "orders/create" && double(event.total_price) >= 500.0'
        to: ["+52 55 1234 5678"]
        body: '{{ event.customer.first_name }} acaba de comprar ${{ event.total_price }}'
        provider: primary
        priority: transactional
      - name: thanks
        to: ['{{ event.customer.phone }}']
        body: 'Gracias por tu compra'
"#;

pub fn environment() -> HashMap<String, String> {
    HashMap::from([
        ("HOOK_TOKEN".to_owned(), "Bearer hook-token".to_owned()),
        (
            "SHOPIFY_WEBHOOK_SECRET".to_owned(),
            "shpss_cli_secret".to_owned(),
        ),
    ])
}

pub fn write_config(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("tienda.yaml");
    std::fs::write(&path, text).unwrap();
    path
}
