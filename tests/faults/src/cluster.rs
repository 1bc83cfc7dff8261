//! Foco as the suite runs it: the four service binaries as processes configured
//! by environment, on a NATS server of the suite's own (so that it can be stopped
//! and started again) or, replicated, two processes of each service (ingress
//! and control behind a [`Balancer`] each) on a three-node JetStream cluster
//! of the suite's own; a fresh database reached through a [`Proxy`] (so that it
//! can be taken away), and the suite's [`FakeProvider`]; two accounts configured
//! through control's API as `foco apply` would (orders sent at once, abandoned
//! carts sent after a delay unless an order cancels them), and a third whose
//! route sends one SMS a second and whose rules include a poison one and an
//! expensive one, to flood the others with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Context as _;
use foco_bench_pipeline::deployment::{ORDER_RULE_WHEN, Setup, configure, configure_account};
use foco_bench_pipeline::processes::Services;
use foco_bench_pipeline::sms::{ORDER_TEMPLATE, OWNER_NUMBER};
use foco_proto::v1::UpsertRuleRequest;
use foco_testkit::{Balancer, NatsCluster, PrivateNats, Proxy, TestDatabase};
use secrecy::SecretString;

use crate::provider::FakeProvider;

/// The deployment's `FOCO_BUS_PREFIX`.
pub const BUS_PREFIX: &str = "FAULTS";
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
/// What a rolled replica's pod gets before SIGTERM (the manifests' preStop
/// sleep is 5 s; endpoints drop a pod well within one on loopback).
const PRE_STOP: Duration = Duration::from_secs(1);
/// `FOCO_SHUTDOWN_GRACE` of every service: the longest drain after SIGTERM.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// Beyond the drain, for the process to exit (the kubelet's grace period is
/// preStop + drain + a margin, as k8s-check requires of the manifests).
const EXIT_MARGIN: Duration = Duration::from_secs(5);
/// The services of one deployment, in start order.
pub const SERVICES: [&str; 4] = ["control", "ingress", "rules", "sender"];

/// How the deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One replica of each service on one nats-server.
    Single,
    /// Two replicas of each service (ingress and control each behind a
    /// balancer, as behind a Kubernetes Service) on a three-node JetStream
    /// cluster whose streams have three replicas.
    Replicated,
}

/// The bus the deployment runs on.
pub enum Bus {
    Single(PrivateNats),
    Cluster(NatsCluster),
}

impl Bus {
    fn url(&self) -> String {
        match self {
            Bus::Single(nats) => nats.url(),
            Bus::Cluster(cluster) => cluster.url(),
        }
    }
}

/// One service process of the deployment, as it is started again.
#[derive(Debug, Clone)]
pub struct Replica {
    pub name: String,
    pub service: &'static str,
    env: Vec<(&'static str, String)>,
    /// Its address behind the ingress or the control balancer.
    behind: Option<(Front, SocketAddr)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    Ingress,
    Control,
}

/// How one replica stopped when it was rolled.
#[derive(Debug, Clone)]
pub struct Rolled {
    pub name: String,
    pub exit: ExitStatus,
    /// From SIGTERM to exit.
    pub drained_in: Duration,
}

/// Field order is drop order: processes first, then what they use.
pub struct Cluster {
    pub services: Services,
    pub replicas: Vec<Replica>,
    pub order_url: String,
    pub cart_url: String,
    /// The webhook URL of an account whose route sends one SMS a second.
    pub throttled_url: String,
    balancers: Vec<(Front, Balancer)>,
    pub provider: FakeProvider,
    pub proxy: Proxy,
    pub bus: Bus,
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
    pub async fn start(
        bin_dir: &Path,
        cart_delay: Duration,
        topology: Topology,
    ) -> anyhow::Result<Self> {
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
        let (bus, bus_replicas) = match topology {
            Topology::Single => (Bus::Single(PrivateNats::start().await), 1),
            Topology::Replicated => (Bus::Cluster(NatsCluster::start().await), 3),
        };
        let database = TestDatabase::create().await;
        let proxy = Proxy::start(database.server_addr()).await;
        let provider = FakeProvider::start().await?;

        let copies = match topology {
            Topology::Single => 1,
            Topology::Replicated => 2,
        };
        let mut replicas = Vec::new();
        let mut fronts: Vec<(Front, Vec<SocketAddr>)> =
            vec![(Front::Control, Vec::new()), (Front::Ingress, Vec::new())];
        for service in SERVICES {
            for copy in 1..=copies {
                let name = if copy == 1 {
                    service.to_owned()
                } else {
                    format!("{service}-{copy}")
                };
                let listen = match service {
                    "control" => Some((Front::Control, "FOCO_CONTROL_LISTEN")),
                    "ingress" => Some((Front::Ingress, "FOCO_INGRESS_LISTEN")),
                    _ => None,
                };
                let mut env = Vec::new();
                let mut behind = None;
                if let Some((front, variable)) = listen {
                    let addr = SocketAddr::from(([127, 0, 0, 1], foco_testkit::free_port()));
                    env.push((variable, addr.to_string()));
                    behind = Some((front, addr));
                    if let Some((_, addrs)) = fronts.iter_mut().find(|(f, _)| *f == front) {
                        addrs.push(addr);
                    }
                }
                replicas.push(Replica {
                    name,
                    service,
                    env,
                    behind,
                });
            }
        }
        let mut balancers = Vec::new();
        for (front, addrs) in fronts {
            balancers.push((front, Balancer::start(addrs).await));
        }
        let front_url = |front: Front| {
            balancers
                .iter()
                .find(|(f, _)| *f == front)
                .map(|(_, balancer)| format!("http://{}", balancer.addr()))
                .unwrap_or_default()
        };
        let control_url = front_url(Front::Control);
        let ingress_url = front_url(Front::Ingress);
        let env = [
            ("DATABASE_URL", database.url_through(proxy.addr())),
            ("NATS_URL", bus.url()),
            ("FOCO_BUS_PREFIX", BUS_PREFIX.to_owned()),
            ("FOCO_BUS_REPLICAS", bus_replicas.to_string()),
            ("FOCO_ADMIN_API_KEY", ADMIN_KEY.to_owned()),
            // The admin key holds every scope, so one value serves the three
            // services here; deployments give each its own service key.
            ("FOCO_CONTROL_API_KEY", ADMIN_KEY.to_owned()),
            ("FOCO_ENCRYPTION_KEY", ENCRYPTION_KEY.to_owned()),
            ("FOCO_CONTROL_URL", control_url.clone()),
            ("FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS", "true".to_owned()),
            // Shorter than production, so that a job abandoned by a killed sender
            // is settled (recorded unknown) within the suite's patience.
            ("FOCO_PROVIDER_TIMEOUT", "3s".to_owned()),
            ("FOCO_SENDER_CLAIM_MARGIN", "1s".to_owned()),
            ("FOCO_SENDER_ACK_WAIT", "6s".to_owned()),
            ("FOCO_RULES_ACK_WAIT", "6s".to_owned()),
            // Shorter than production's, as the manifests' grace periods are.
            ("FOCO_SHUTDOWN_GRACE", format!("{}s", DRAIN_GRACE.as_secs())),
            ("FOCO_QUIET_HOURS", "off".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ];
        let env = env
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        let mut services = Services::new(bin_dir, &log_dir, env);
        for replica in &replicas {
            services
                .start(&replica.name, replica.service, &replica.env)
                .await?;
        }
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
            replicas,
            order_url,
            cart_url,
            throttled_url,
            balancers,
            provider,
            proxy,
            bus,
            database,
            log_dir,
            _logs: logs,
        })
    }

    /// Restarts `name` as a rolling update does: out of its balancer (the pod
    /// leaves the Service's endpoints), the pre-stop pause, SIGTERM, at most
    /// [`DRAIN_GRACE`] and a margin to drain and exit; then started again, ready,
    /// and back behind its balancer.
    fn replica(&self, name: &str) -> anyhow::Result<Replica> {
        self.replicas
            .iter()
            .find(|replica| replica.name == name)
            .cloned()
            .with_context(|| format!("no replica is called {name}"))
    }

    /// Kills replica `name` with SIGKILL and, after `down_for`, starts it again
    /// as it was first started: the same environment, so a front replica
    /// listens again at the address its balancer sends to.
    pub async fn kill_and_restart(&mut self, name: &str, down_for: Duration) -> anyhow::Result<()> {
        let replica = self.replica(name)?;
        anyhow::ensure!(self.services.kill(name), "{name} was not running");
        tokio::time::sleep(down_for).await;
        self.services
            .start(name, replica.service, &replica.env)
            .await
    }

    pub async fn roll(&mut self, name: &str) -> anyhow::Result<Rolled> {
        let replica = self.replica(name)?;
        if let Some((front, addr)) = replica.behind {
            self.balancer(front).remove(addr);
        }
        tokio::time::sleep(PRE_STOP).await;
        let (exit, drained_in) = self
            .services
            .terminate(name, DRAIN_GRACE + EXIT_MARGIN)
            .await?;
        self.services
            .start(name, replica.service, &replica.env)
            .await?;
        if let Some((front, addr)) = replica.behind {
            self.balancer(front).add(addr);
        }
        Ok(Rolled {
            name: name.to_owned(),
            exit,
            drained_in,
        })
    }

    fn balancer(&self, front: Front) -> &Balancer {
        self.balancers
            .iter()
            .find(|(f, _)| *f == front)
            .map(|(_, balancer)| balancer)
            .expect("a balancer per front")
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
