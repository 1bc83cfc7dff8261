//! What a phase runs against: Foco (the four release binaries on a fresh database
//! and bus prefix, configured as an operator would), the bare pipe (its own
//! prefix) or the floor pipe (its own prefix and database). Each phase gets a
//! fresh one, so that a backlog one phase leaves behind never slows the next,
//! and drops it afterwards: processes killed, database dropped, streams
//! deleted.

use std::path::{Path, PathBuf};
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
use crate::processes::{ChildGuard, READY_TIMEOUT, Services};
use crate::settings::Settings;
use crate::sms::{CART_TEMPLATE, ORDER_TEMPLATE, OWNER_NUMBER};

/// The account of immediate orders, and of abandoned carts (kept apart so that
/// the cart rule's cancel clause is not evaluated on every order).
pub const ORDERS_ACCOUNT: &str = "tienda-bench";
pub const CARTS_ACCOUNT: &str = "carritos-bench";
pub const ORDER_RULE_WHEN: &str = r#"event_type == "orders/create" && event.tenant == "t1""#;
pub const CART_RULE_WHEN: &str = r#"event_type == "checkouts/create" && event.tenant == "t1""#;

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

/// Which pipeline a phase runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Foco,
    Bare,
    Floor,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Foco => "foco",
            Kind::Bare => "bare pipe",
            Kind::Floor => "floor pipe",
        }
    }
}

pub enum Pipeline {
    Foco(Box<Foco>),
    /// The bare or the floor pipe: one process.
    Pipe(Box<Pipe>),
}

/// Field order is drop order: processes first, then the database and streams.
pub struct Foco {
    services: Services,
    /// Control's gRPC API.
    pub control_url: String,
    pub order_url: String,
    pub cart_url: String,
    pub log_dir: PathBuf,
    pub names: BusNames,
    pub database: TestDatabase,
    _bus: TestBus,
}

/// The bare or the floor pipe. Field order is drop order: the process first,
/// then the database (the floor pipe's) and streams.
pub struct Pipe {
    kind: Kind,
    process: ChildGuard,
    pub url: String,
    pub log_dir: PathBuf,
    pub database: Option<TestDatabase>,
    _bus: TestBus,
}

/// Unprocessed messages per stage when the load ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageBacklog {
    pub events_for_rules: Option<u64>,
    pub jobs_for_sender: Option<u64>,
}

impl Pipeline {
    pub async fn start(kind: Kind, context: &Context, label: &str) -> anyhow::Result<Self> {
        Ok(match kind {
            Kind::Foco => Pipeline::Foco(Box::new(Foco::start(context, label).await?)),
            Kind::Bare | Kind::Floor => {
                Pipeline::Pipe(Box::new(Pipe::start(kind, context, label).await?))
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Pipeline::Foco(_) => Kind::Foco.name(),
            Pipeline::Pipe(pipe) => pipe.kind.name(),
        }
    }

    /// The pipeline's database, if it has one.
    pub fn database(&self) -> Option<&TestDatabase> {
        match self {
            Pipeline::Foco(foco) => Some(&foco.database),
            Pipeline::Pipe(pipe) => pipe.database.as_ref(),
        }
    }

    /// The database whose backends count as the pipeline's ("" for none).
    pub fn database_name(&self) -> &str {
        self.database()
            .map_or("", |database| database.name.as_str())
    }

    /// The phase's directory of logs.
    pub fn log_dir(&self) -> &Path {
        match self {
            Pipeline::Foco(foco) => &foco.log_dir,
            Pipeline::Pipe(pipe) => &pipe.log_dir,
        }
    }

    pub fn order_url(&self) -> &str {
        match self {
            Pipeline::Foco(foco) => &foco.order_url,
            Pipeline::Pipe(pipe) => &pipe.url,
        }
    }

    /// (label, pid) of each process of the pipeline.
    pub fn processes(&self) -> Vec<(String, u32)> {
        match self {
            Pipeline::Foco(foco) => foco.services.processes(),
            Pipeline::Pipe(pipe) => vec![(pipe.process.name.clone(), pipe.process.pid())],
        }
    }

    /// An error naming the process and its log when one of them has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        let process = match self {
            Pipeline::Foco(foco) => return foco.services.check_alive(),
            Pipeline::Pipe(pipe) => &mut pipe.process,
        };
        match process.exited() {
            Some(status) => {
                anyhow::bail!("{} exited ({status}){}", process.name, process.log_hint())
            }
            None => Ok(()),
        }
    }

    /// The stage histograms of every service (empty for the bare and floor pipes, or
    /// where a scrape fails: the report then leaves the stages out).
    pub async fn stage_snapshot(&self) -> crate::stages::Snapshot {
        let Pipeline::Foco(foco) = self else {
            return crate::stages::Snapshot::new();
        };
        let mut snapshot = crate::stages::Snapshot::new();
        for service in ["ingress", "rules", "sender"] {
            if let Ok(text) = foco.services.metrics(service).await {
                snapshot.extend(crate::stages::parse(&text));
            }
        }
        snapshot
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
    /// Foco's service processes, by label.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.services.processes()
    }

    /// Starts control, then ingress, rules and sender, each waited for on its
    /// `/readyz`, and configures both accounts.
    pub async fn start(context: &Context, label: &str) -> anyhow::Result<Self> {
        let settings = &context.settings;
        let database = TestDatabase::create().await;
        let bus = TestBus::new();
        let names = BusNames::new(&bus.prefix)?;
        let log_dir = context.log_root.join(label);
        std::fs::create_dir_all(&log_dir)?;

        let control_grpc = format!("127.0.0.1:{}", foco_testkit::free_port());
        let ingress_http = format!("127.0.0.1:{}", foco_testkit::free_port());
        let env = [
            ("DATABASE_URL", database.url.clone()),
            ("NATS_URL", bus.nats_url.clone()),
            ("FOCO_BUS_PREFIX", bus.prefix.clone()),
            ("FOCO_ADMIN_API_KEY", context.admin_key.clone()),
            // The admin key holds every scope, so one value serves the three
            // services here; deployments give each its own service key.
            ("FOCO_CONTROL_API_KEY", context.admin_key.clone()),
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
        let env = env
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        let mut services = Services::new(&settings.bin_dir, &log_dir, env);
        services
            .start_all(&["control", "ingress", "rules", "sender"])
            .await?;

        let ingress_url = format!("http://{ingress_http}");
        let delay = context.settings.delay;
        let (order_url, cart_url) = configure(
            &Setup {
                control_url: &format!("http://{control_grpc}"),
                admin_key: &context.admin_key,
                provider_url: &context.fake.sms_url(),
                webhook_secret: &context.webhook_secret,
                cart_delay: delay,
            },
            &ingress_url,
        )
        .await?;
        Ok(Self {
            services,
            control_url: format!("http://{control_grpc}"),
            order_url,
            cart_url,
            log_dir,
            names,
            database,
            _bus: bus,
        })
    }
}

/// One account as `foco apply` would make it: an `http` route to the fake
/// provider (with `route_settings` besides its `url`), a Shopify source `shop`
/// and `rule` on it, to the owner's number. Returns the source's webhook URL.
pub async fn configure_account(
    api: &mut foco_control_client::ControlApi,
    setup: &Setup<'_>,
    ingress_url: &str,
    account: &str,
    rule: UpsertRuleRequest,
    route_settings: &[(&str, &str)],
) -> anyhow::Result<String> {
    api.upsert_account(UpsertAccountRequest {
        name: account.to_owned(),
        default_country: "MX".to_owned(),
        timezone: "America/Mexico_City".to_owned(),
        ..Default::default()
    })
    .await
    .with_context(|| format!("create account {account}"))?;
    let mut settings: std::collections::HashMap<String, String> = route_settings
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    settings.insert("url".to_owned(), setup.provider_url.to_owned());
    api.upsert_provider_route(UpsertProviderRouteRequest {
        account: account.to_owned(),
        name: "fake".to_owned(),
        kind: "http".to_owned(),
        settings,
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
            secret: setup.webhook_secret.to_owned(),
            // A platform sending thousands a second sets its source's limit
            // above ingress's default.
            rate_limit_per_second: 100_000,
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
    Ok(format!("{ingress_url}/v1/hooks/{}", source.token))
}

/// What [`configure`] needs.
pub struct Setup<'a> {
    pub control_url: &'a str,
    pub admin_key: &'a str,
    /// Where the accounts' `http` route posts.
    pub provider_url: &'a str,
    pub webhook_secret: &'a str,
    /// How long after its checkout an abandoned-cart SMS is due.
    pub cart_delay: Duration,
}

/// Through control's gRPC API, as `foco apply` would: per account an `http` route
/// to the fake provider, a Shopify source and its rule. Returns the webhook URLs
/// of the orders and carts sources.
pub async fn configure(setup: &Setup<'_>, ingress_url: &str) -> anyhow::Result<(String, String)> {
    let mut api = foco_control_client::connect(
        setup.control_url,
        &SecretString::from(setup.admin_key.to_owned()),
    )?;
    let delay = format!("{}s", setup.cart_delay.as_secs());
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
        urls.push(configure_account(&mut api, setup, ingress_url, account, rule, &[]).await?);
    }
    let [order_url, cart_url] =
        <[String; 2]>::try_from(urls).map_err(|_| anyhow::anyhow!("expected two webhook URLs"))?;
    Ok((order_url, cart_url))
}

impl Pipe {
    /// The bare or floor pipe on a bus prefix of its own (and, the floor pipe,
    /// a database of its own).
    pub async fn start(kind: Kind, context: &Context, label: &str) -> anyhow::Result<Self> {
        let bus = TestBus::new();
        let log_dir = context.log_root.join(label);
        std::fs::create_dir_all(&log_dir)?;
        let (binary, log, database) = match kind {
            Kind::Floor => (
                "foco-bench-floor-pipe",
                "floor-pipe.log",
                Some(TestDatabase::create().await),
            ),
            // Foco does not start here (see `Pipeline::start`).
            Kind::Bare | Kind::Foco => ("foco-bench-bare-pipe", "bare-pipe.log", None),
        };
        let mut command = Command::new(context.settings.bin_dir.join(binary));
        command
            .env("NATS_URL", &bus.nats_url)
            .env("FOCO_BUS_PREFIX", &bus.prefix)
            .env(crate::bare::PROVIDER_URL_ENV, context.fake.sms_url());
        if let Some(database) = &database {
            command
                .env("DATABASE_URL", &database.url)
                .env("FOCO_FLOOR_WEBHOOK_SECRET", &context.webhook_secret);
        }
        let mut process = ChildGuard::spawn_piped(kind.name(), command, &log_dir.join(log))?;
        let address = process.first_line(READY_TIMEOUT).await?;
        Ok(Self {
            kind,
            process,
            url: format!("{address}/hooks"),
            log_dir,
            database,
            _bus: bus,
        })
    }
}
