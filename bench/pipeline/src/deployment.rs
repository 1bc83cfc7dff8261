//! What a phase runs against: Foco (the four release binaries on a fresh database
//! and bus prefix, configured as an operator would) or the bare pipe (its own
//! prefix). Each phase gets a fresh one, so that a backlog one phase leaves behind
//! never slows the next, and drops it afterwards: processes killed, database
//! dropped, streams deleted.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use foco_bus::BusNames;
use foco_proto::v1::{
    UpsertAccountRequest, UpsertProviderRouteRequest, UpsertRuleRequest, UpsertSourceRequest,
};
use foco_testkit::{TestBus, TestDatabase};
use secrecy::SecretString;

use crate::fake_provider::FakeProviderClient;
use crate::processes::{ChildGuard, free_port};
use crate::settings::Settings;
use crate::sms::{CART_TEMPLATE, ORDER_TEMPLATE, OWNER_NUMBER};

/// The account of immediate orders, and of abandoned carts (kept apart so that
/// the cart rule's cancel clause is not evaluated on every order).
pub const ORDERS_ACCOUNT: &str = "tienda-bench";
pub const CARTS_ACCOUNT: &str = "carritos-bench";
pub const ORDER_RULE_WHEN: &str = r#"event_type == "orders/create" && event.tenant == "t1""#;
pub const CART_RULE_WHEN: &str = r#"event_type == "checkouts/create" && event.tenant == "t1""#;
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What every phase shares: settings, the fake provider, the run's secrets.
pub struct Context {
    pub settings: Settings,
    /// This binary, re-run as the load generator.
    pub exe: PathBuf,
    pub log_root: PathBuf,
    pub http: reqwest::Client,
    pub fake: FakeProviderClient,
    pub fake_pid: u32,
    pub nats: async_nats::Client,
    pub admin_key: String,
    pub encryption_key: String,
    pub webhook_secret: String,
}

pub enum Pipeline {
    Foco(Foco),
    Bare(Bare),
}

/// Field order is drop order: processes first, then the database and streams.
pub struct Foco {
    processes: Vec<ChildGuard>,
    pub order_url: String,
    pub cart_url: String,
    pub log_dir: PathBuf,
    names: BusNames,
    pub database: TestDatabase,
    _bus: TestBus,
}

pub struct Bare {
    process: ChildGuard,
    pub url: String,
    _bus: TestBus,
}

/// Unprocessed messages per stage when the load ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageBacklog {
    pub events_for_rules: Option<u64>,
    pub jobs_for_sender: Option<u64>,
}

impl Pipeline {
    pub fn name(&self) -> &'static str {
        match self {
            Pipeline::Foco(_) => "foco",
            Pipeline::Bare(_) => "bare pipe",
        }
    }

    pub fn order_url(&self) -> &str {
        match self {
            Pipeline::Foco(foco) => &foco.order_url,
            Pipeline::Bare(bare) => &bare.url,
        }
    }

    fn guards(&self) -> Vec<&ChildGuard> {
        match self {
            Pipeline::Foco(foco) => foco.processes.iter().collect(),
            Pipeline::Bare(bare) => vec![&bare.process],
        }
    }

    /// (label, pid) of each process of the pipeline.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.guards()
            .into_iter()
            .map(|guard| (guard.name.clone(), guard.pid()))
            .collect()
    }

    /// An error naming the process and its log when one of them has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        let guards: Vec<&mut ChildGuard> = match self {
            Pipeline::Foco(foco) => foco.processes.iter_mut().collect(),
            Pipeline::Bare(bare) => vec![&mut bare.process],
        };
        for guard in guards {
            if let Some(status) = guard.exited() {
                anyhow::bail!("{} exited ({status}){}", guard.name, guard.log_hint());
            }
        }
        Ok(())
    }

    pub async fn stage_backlog(&self, nats: &async_nats::Client) -> StageBacklog {
        let Pipeline::Foco(foco) = self else {
            return StageBacklog::default();
        };
        StageBacklog {
            events_for_rules: consumer_backlog(
                nats,
                &foco.names.events_stream(),
                foco.names.rules_consumer(),
            )
            .await,
            jobs_for_sender: consumer_backlog(
                nats,
                &foco.names.sms_stream(),
                foco.names.sender_consumer(),
            )
            .await,
        }
    }
}

/// Messages a durable consumer has not acked (pending + in flight), from the
/// JetStream API directly: async-nats' typed info does not parse every server
/// version's answer.
async fn consumer_backlog(nats: &async_nats::Client, stream: &str, consumer: &str) -> Option<u64> {
    let subject = format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}");
    let reply = tokio::time::timeout(
        Duration::from_secs(3),
        nats.request(subject, bytes::Bytes::new()),
    )
    .await
    .ok()?
    .ok()?;
    let info: serde_json::Value = serde_json::from_slice(&reply.payload).ok()?;
    Some(info["num_pending"].as_u64()? + info["num_ack_pending"].as_u64().unwrap_or(0))
}

impl Foco {
    /// Starts control, then ingress, rules and sender, each waited for on its
    /// `/readyz`, and configures both accounts.
    pub async fn start(context: &Context, label: &str) -> anyhow::Result<Self> {
        let settings = &context.settings;
        let database = TestDatabase::create().await;
        let bus = TestBus::new();
        let names = BusNames::new(&bus.prefix)?;
        let log_dir = context.log_root.join(label);
        std::fs::create_dir_all(&log_dir)?;

        let control_grpc = format!("127.0.0.1:{}", free_port()?);
        let ingress_http = format!("127.0.0.1:{}", free_port()?);
        let base_env: Vec<(&str, String)> = vec![
            ("DATABASE_URL", database.url.clone()),
            ("NATS_URL", bus.nats_url.clone()),
            ("FOCO_BUS_PREFIX", bus.prefix.clone()),
            ("FOCO_ADMIN_API_KEY", context.admin_key.clone()),
            ("FOCO_ENCRYPTION_KEY", context.encryption_key.clone()),
            ("FOCO_CONTROL_LISTEN", control_grpc.clone()),
            ("FOCO_CONTROL_URL", format!("http://{control_grpc}")),
            ("FOCO_INGRESS_LISTEN", ingress_http.clone()),
            // The fake provider is on loopback, which the sender refuses by default.
            ("FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS", "true".to_owned()),
            (
                "FOCO_CONSOLE_OUTBOX",
                log_dir.join("outbox.jsonl").display().to_string(),
            ),
        ];
        let start = |service: &str| -> anyhow::Result<(ChildGuard, u16)> {
            let admin_port = free_port()?;
            let mut command = Command::new(settings.bin_dir.join(format!("foco-{service}")));
            command
                .envs(base_env.iter().map(|(name, value)| (*name, value)))
                .env("FOCO_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"));
            if std::env::var_os("FOCO_LOG_FORMAT").is_none() {
                command.env("FOCO_LOG_FORMAT", "json");
            }
            let log = log_dir.join(format!("{service}.log"));
            Ok((
                ChildGuard::spawn_logged(service, command, &log)?,
                admin_port,
            ))
        };

        let mut processes = Vec::new();
        let (mut control, control_admin) = start("control")?;
        wait_ready(&context.http, &mut control, control_admin).await?;
        processes.push(control);
        let mut starting = Vec::new();
        for service in ["ingress", "rules", "sender"] {
            starting.push(start(service)?);
        }
        for (mut guard, admin_port) in starting {
            wait_ready(&context.http, &mut guard, admin_port).await?;
            processes.push(guard);
        }

        let ingress_url = format!("http://{ingress_http}");
        let (order_url, cart_url) =
            configure(context, &format!("http://{control_grpc}"), &ingress_url).await?;
        Ok(Self {
            processes,
            order_url,
            cart_url,
            log_dir,
            names,
            database,
            _bus: bus,
        })
    }
}

async fn wait_ready(
    http: &reqwest::Client,
    guard: &mut ChildGuard,
    admin_port: u16,
) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{admin_port}/readyz");
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = guard.exited() {
            anyhow::bail!(
                "{} exited at start ({status}){}",
                guard.name,
                guard.log_hint()
            );
        }
        let ready = http
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{} not ready within {READY_TIMEOUT:?}{}",
                guard.name,
                guard.log_hint()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Through control's gRPC API, as `foco apply` would: per account an `http` route
/// to the fake provider, a Shopify source and its rule. Returns the webhook URLs
/// of the orders and carts sources.
async fn configure(
    context: &Context,
    control_url: &str,
    ingress_url: &str,
) -> anyhow::Result<(String, String)> {
    let mut api =
        foco_control_client::connect(control_url, &SecretString::from(context.admin_key.clone()))?;
    let delay = format!("{}s", context.settings.delay.as_secs());
    let rules = [
        (
            ORDERS_ACCOUNT,
            UpsertRuleRequest {
                name: "owner-alert".to_owned(),
                when: ORDER_RULE_WHEN.to_owned(),
                body: ORDER_TEMPLATE.to_owned(),
                ..Default::default()
            },
        ),
        (
            CARTS_ACCOUNT,
            UpsertRuleRequest {
                name: "abandoned-cart".to_owned(),
                when: CART_RULE_WHEN.to_owned(),
                body: CART_TEMPLATE.to_owned(),
                delay,
                key: "{{ event.token }}".to_owned(),
                cancel_when: r#"event_type == "orders/create""#.to_owned(),
                cancel_key: "{{ event.checkout_token }}".to_owned(),
                ..Default::default()
            },
        ),
    ];
    let mut urls = Vec::new();
    for (account, rule) in rules {
        api.upsert_account(UpsertAccountRequest {
            name: account.to_owned(),
            default_country: "MX".to_owned(),
            timezone: "America/Mexico_City".to_owned(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("create account {account}"))?;
        api.upsert_provider_route(UpsertProviderRouteRequest {
            account: account.to_owned(),
            name: "fake".to_owned(),
            kind: "http".to_owned(),
            settings: [("url".to_owned(), context.fake.sms_url())].into(),
            credentials: Default::default(),
            is_default: true,
        })
        .await
        .with_context(|| format!("create the http route of {account}"))?;
        let source = api
            .upsert_source(UpsertSourceRequest {
                account: account.to_owned(),
                name: "shop".to_owned(),
                preset: "shopify".to_owned(),
                secret: context.webhook_secret.clone(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("create the source of {account}"))?
            .into_inner();
        let rule_name = rule.name.clone();
        api.upsert_rule(UpsertRuleRequest {
            account: account.to_owned(),
            source: "shop".to_owned(),
            to: vec![OWNER_NUMBER.to_owned()],
            ..rule
        })
        .await
        .with_context(|| format!("create rule {rule_name} of {account}"))?;
        urls.push(format!("{ingress_url}/v1/hooks/{}", source.token));
    }
    let [order_url, cart_url] =
        <[String; 2]>::try_from(urls).map_err(|_| anyhow::anyhow!("expected two webhook URLs"))?;
    Ok((order_url, cart_url))
}

impl Bare {
    pub async fn start(context: &Context, label: &str) -> anyhow::Result<Self> {
        let bus = TestBus::new();
        let log_dir = context.log_root.join(label);
        std::fs::create_dir_all(&log_dir)?;
        let mut command = Command::new(context.settings.bin_dir.join("foco-bench-bare-pipe"));
        command
            .env("NATS_URL", &bus.nats_url)
            .env("FOCO_BUS_PREFIX", &bus.prefix)
            .env("FOCO_BARE_PROVIDER_URL", context.fake.sms_url());
        let mut process =
            ChildGuard::spawn_piped("bare pipe", command, &log_dir.join("bare-pipe.log"))?;
        let address = process.first_line(READY_TIMEOUT).await?;
        Ok(Self {
            process,
            url: format!("{address}/hooks"),
            _bus: bus,
        })
    }
}
