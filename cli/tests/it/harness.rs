//! An in-process control App (from foco-harness), and a sample configuration file.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser as _;
use foco_cli::args::Cli;
use foco_control_client::ControlApi;

pub use foco_harness::ADMIN_KEY;
pub const INGRESS_URL: &str = "https://hooks.example.test/";

/// foco-control on a fresh database and bus prefix (`foco_harness::TestControl`).
pub type Control = foco_harness::TestControl;

/// The clients the CLI's tests use (`scheduling()` is the harness's own).
pub trait ControlClients {
    fn api(&self) -> ControlApi;
}

impl ControlClients for Control {
    fn api(&self) -> ControlApi {
        self.admin()
    }
}

/// Runs `foco <args>` in process for the account `tienda-ale` with `key`, and
/// returns what it printed.
pub async fn run_foco(
    control: &Control,
    key: &str,
    args: &[&str],
) -> Result<String, foco_cli::CliError> {
    let mut line = vec![
        "foco",
        "--api-url",
        &control.grpc_url,
        "--api-key",
        key,
        "--account",
        "tienda-ale",
    ];
    line.extend_from_slice(args);
    let cli = Cli::try_parse_from(line).expect("arguments parse");
    let mut out = Vec::new();
    foco_cli::run(cli, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
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

/// Control with [`CONFIG`] applied and the bus's streams in place (a full
/// system has them from ingress, rules and sender).
pub async fn applied_control_with_streams() -> Control {
    let env = environment();
    let control = applied_control(CONFIG, &|name| env.get(name).cloned()).await;
    let names = foco_bus::BusNames::new(&control.bus.prefix).unwrap();
    let client = async_nats::connect(&control.bus.nats_url).await.unwrap();
    foco_bus::ensure_streams(
        &async_nats::jetstream::new(client),
        &names,
        Default::default(),
    )
    .await
    .unwrap();
    control
}

/// Control with `config` applied, its `env:` values read from `env`.
pub async fn applied_control(config: &str, env: &dyn Fn(&str) -> Option<String>) -> Control {
    let control = Control::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, config);
    let options = foco_cli::apply::ApplyOptions {
        ingress_url: INGRESS_URL.to_owned(),
        prune: false,
    };
    foco_cli::apply::apply_file(&mut control.api(), &path, env, &options, &mut Vec::new())
        .await
        .unwrap();
    control
}

pub fn write_config(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("tienda.yaml");
    std::fs::write(&path, text).unwrap();
    path
}
