//! Foco as the suite runs it: the four service binaries as processes configured
//! by environment, on a NATS server of the suite's own (so that it can be stopped
//! and started again), a fresh database reached through a [`Proxy`] (so that it
//! can be taken away), and the suite's [`FakeProvider`]; two accounts configured
//! through control's API as `foco apply` would (orders sent at once, abandoned
//! carts sent after a delay unless an order cancels them), and a third whose
//! route sends one SMS a second and whose rules include a poison one and an
//! expensive one, to flood the others with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use foco_bench_pipeline::deployment::{ORDER_RULE_WHEN, Setup, configure, configure_account};
use foco_bench_pipeline::processes::{Services, free_port};
use foco_bench_pipeline::sms::{ORDER_TEMPLATE, OWNER_NUMBER};
use foco_proto::v1::UpsertRuleRequest;
use foco_testkit::{PrivateNats, Proxy, TestDatabase};
use secrecy::SecretString;

use crate::provider::FakeProvider;

const ADMIN_KEY: &str = "faults-admin-key-0123456789";
/// base64 of 32 bytes.
const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const WEBHOOK_SECRET: &str = "faults-shopify-secret";
/// The account that floods a route limited to one SMS a second.
pub const THROTTLED_ACCOUNT: &str = "ruidosa";
/// Its rule whose correlation key, rendered from the payload's padding, is
/// longer than any key Foco stores: every one of its events is poison for it.
pub const POISON_RULE: &str = "poison-key";
/// Its rule whose condition costs the whole evaluation budget on every event
/// (two nested comprehensions of 64 elements) and then matches nothing.
pub const EXPENSIVE_RULE: &str = "expensive";
/// The services of one deployment, in start order.
pub const SERVICES: [&str; 4] = ["control", "ingress", "rules", "sender"];

/// Field order is drop order: processes first, then what they use.
pub struct Cluster {
    pub services: Services,
    pub order_url: String,
    pub cart_url: String,
    /// The webhook URL of an account whose route sends one SMS a second.
    pub throttled_url: String,
    pub provider: FakeProvider,
    pub proxy: Proxy,
    pub nats: PrivateNats,
    pub database: TestDatabase,
    pub log_dir: PathBuf,
    _logs: Option<tempfile::TempDir>,
}

impl Cluster {
    /// `bin_dir` holds `foco-control`, `foco-ingress`, `foco-rules` and
    /// `foco-sender`; `cart_delay` is when an abandoned-cart SMS is due.
    #[allow(
        clippy::too_many_lines,
        reason = "the deployment is set up in the order it starts"
    )]
    pub async fn start(bin_dir: &Path, cart_delay: Duration) -> anyhow::Result<Self> {
        for service in SERVICES {
            let binary = bin_dir.join(format!("foco-{service}"));
            anyhow::ensure!(
                binary.exists(),
                "{} is missing: build the services first (cargo build --bins)",
                binary.display()
            );
        }
        let logs = tempfile::Builder::new()
            .prefix("foco-faults-")
            .tempdir()
            .context("a log directory")?;
        let log_dir = logs.path().to_owned();
        // Kept when asked for, to read after a failed run.
        let logs = if std::env::var_os("FOCO_FAULTS_KEEP_LOGS").is_some() {
            let _ = logs.keep();
            None
        } else {
            Some(logs)
        };
        let nats = PrivateNats::start().await;
        let database = TestDatabase::create().await;
        let proxy = Proxy::start(database.server_addr()).await;
        let provider = FakeProvider::start().await?;

        let control_grpc = format!("127.0.0.1:{}", free_port()?);
        let ingress_http = format!("127.0.0.1:{}", free_port()?);
        let through_proxy = database.url_through(proxy.addr());
        let env = [
            ("DATABASE_URL", through_proxy),
            ("NATS_URL", nats.url()),
            ("FOCO_BUS_PREFIX", "FAULTS".to_owned()),
            ("FOCO_ADMIN_API_KEY", ADMIN_KEY.to_owned()),
            // The admin key holds every scope, so one value serves the three
            // services here; deployments give each its own service key.
            ("FOCO_CONTROL_API_KEY", ADMIN_KEY.to_owned()),
            ("FOCO_ENCRYPTION_KEY", ENCRYPTION_KEY.to_owned()),
            ("FOCO_CONTROL_LISTEN", control_grpc.clone()),
            ("FOCO_CONTROL_URL", format!("http://{control_grpc}")),
            ("FOCO_INGRESS_LISTEN", ingress_http.clone()),
            ("FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS", "true".to_owned()),
            // Shorter than production, so that a job abandoned by a killed sender
            // is settled (recorded unknown) within the suite's patience.
            ("FOCO_PROVIDER_TIMEOUT", "3s".to_owned()),
            ("FOCO_SENDER_CLAIM_MARGIN", "1s".to_owned()),
            ("FOCO_SENDER_ACK_WAIT", "6s".to_owned()),
            ("FOCO_RULES_ACK_WAIT", "6s".to_owned()),
            ("FOCO_QUIET_HOURS", "off".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ];
        let env = env
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        let mut services = Services::new(bin_dir, &log_dir, env);
        services.start_all(&SERVICES).await?;
        let control_url = format!("http://{control_grpc}");
        let ingress_url = format!("http://{ingress_http}");
        let setup = Setup {
            control_url: &control_url,
            admin_key: ADMIN_KEY,
            provider_url: provider.url(),
            webhook_secret: WEBHOOK_SECRET,
            cart_delay,
        };
        let (order_url, cart_url) = configure(&setup, &ingress_url).await?;
        let mut api =
            foco_control_client::connect(&control_url, &SecretString::from(ADMIN_KEY.to_owned()))?;
        let throttled_url = configure_account(
            &mut api,
            &setup,
            &ingress_url,
            THROTTLED_ACCOUNT,
            UpsertRuleRequest {
                name: "every-order".to_owned(),
                when: ORDER_RULE_WHEN.to_owned(),
                body: ORDER_TEMPLATE.to_owned(),
                ..Default::default()
            },
            &[("rate_limit", "1")],
        )
        .await?;
        let sixty_four = (0..64).map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        for rule in [
            UpsertRuleRequest {
                name: POISON_RULE.to_owned(),
                when: ORDER_RULE_WHEN.to_owned(),
                body: ORDER_TEMPLATE.to_owned(),
                key: "{{ event.note }}{{ event.note }}".to_owned(),
                delay: "1h".to_owned(),
                ..Default::default()
            },
            UpsertRuleRequest {
                name: EXPENSIVE_RULE.to_owned(),
                when: format!(
                    "{ORDER_RULE_WHEN} && [{sixty_four}].all(x, [{sixty_four}].all(y, x + y >= 0)) && event.order == \"\""
                ),
                body: ORDER_TEMPLATE.to_owned(),
                ..Default::default()
            },
        ] {
            let name = rule.name.clone();
            api.upsert_rule(UpsertRuleRequest {
                account: THROTTLED_ACCOUNT.to_owned(),
                source: "shop".to_owned(),
                to: vec![OWNER_NUMBER.to_owned()],
                ..rule
            })
            .await
            .with_context(|| format!("create rule {name} of {THROTTLED_ACCOUNT}"))?;
        }
        Ok(Self {
            services,
            order_url,
            cart_url,
            throttled_url,
            provider,
            proxy,
            nats,
            database,
            log_dir,
            _logs: logs,
        })
    }

    /// Rows of the phase `tag` with `status`, read past the proxy.
    pub async fn count_messages(&self, tag: &str, status: &str) -> anyhow::Result<i64> {
        let count =
            sqlx::query_scalar("SELECT count(*) FROM messages WHERE status = $1 AND body LIKE $2")
                .bind(status)
                .bind(format!("% {tag}-%"))
                .fetch_one(&self.database.pool)
                .await?;
        Ok(count)
    }
}
