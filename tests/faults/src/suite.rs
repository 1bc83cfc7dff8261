//! The faults, one phase each on one running deployment: steady signed webhooks
//! go in, a fault is injected a third of the way through and repaired, and once
//! the load ends the phase waits for the pipeline to settle. Then it counts, per
//! webhook that ingress accepted (answered 202): delivered to the provider
//! exactly once, more than once (duplicated), recorded `unknown` (a sender killed
//! during its provider call: may have been sent, never resent), or nowhere (lost).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use foco_bench_pipeline::load::{self, LoadReport, LoadSpec, Plan};
use foco_bench_pipeline::sms::parse_sms;

use crate::cluster::{
    BUS_PREFIX, Bus, Cluster, DRAIN_GRACE, POISON_RULE, Topology, WEBHOOK_SECRET,
};
use crate::provider::Behaviour;
use foco_bus::BusNames;
use foco_testkit::NatsCluster;
use foco_testkit::ProxyMode as Mode;

/// A 429 in this suite says `Retry-After: 3`.
const RETRY_AFTER_SECS: u64 = 3;
/// How long a stream whose leader was killed may go without one (nats-server
/// elects another after its election timeout, a few seconds).
const ELECTION_PATIENCE: Duration = Duration::from_secs(30);
/// How long the provider takes to answer while replicas are rolled, so that a
/// stopping sender has calls in flight.
const PROVIDER_LATENCY: Duration = Duration::from_millis(300);
/// Calls already on their way when a 429 is given arrive within this.
const IN_FLIGHT_GRACE: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No fault: what the other rows compare with.
    None,
    /// SIGKILL of one service, started again a second later.
    Kill(&'static str),
    /// nats-server killed, started again on the same store after the outage.
    NatsDown,
    /// Every Postgres connection closed and new ones refused, for the outage.
    PostgresDown,
    /// Postgres stops answering without closing anything, for the outage.
    PostgresStalled,
    /// The provider answers 503 for `provider_outage`, then 429 with
    /// `Retry-After` for half that (at least 6 s), then 200 again.
    ProviderDown,
    /// Abandoned carts (delayed jobs, half of them cancelled) scheduled by two
    /// rules replicas, one of them killed half-way and started again.
    DelayedReplicaKilled,
    /// Another account floods a route limited to one SMS a second with five
    /// times the phase's rate, for the outage, each of its events poison for
    /// one of its rules and the whole evaluation budget for another; the
    /// measured account's SMS must keep their usual latency.
    ThrottledNeighbour,
    /// Two replicas of each service; every replica restarted in turn as a
    /// rolling update does (out of the balancer, SIGTERM, drain, start, ready)
    /// while the provider takes a while to answer. Ingress may answer only 202
    /// or 503 with `Retry-After`; no SMS may be left `unknown` by a stopping
    /// sender.
    RollingRestart,
    /// The bus as a three-node JetStream cluster (streams with three
    /// replicas): one node killed for the outage and started again, then
    /// another once the first has caught up. Ingress may answer only 202 or 503
    /// with `Retry-After`.
    NatsNodesKilled,
}

impl Fault {
    /// How long the fault lasts once injected.
    fn duration(self, settings: &Settings) -> Duration {
        match self {
            Fault::None => Duration::ZERO,
            Fault::Kill(_) | Fault::DelayedReplicaKilled => Duration::from_secs(2),
            Fault::NatsDown
            | Fault::PostgresDown
            | Fault::PostgresStalled
            | Fault::ThrottledNeighbour => settings.outage,
            Fault::ProviderDown => settings.provider_outage + throttle_time(settings),
            // About three seconds a replica: the pre-stop pause, the drain, a
            // start and its readiness.
            Fault::RollingRestart => Duration::from_secs(3 * 8),
            // Each node's outage (the leader's lasts until another is elected,
            // some 6 s), then its start and catching up.
            Fault::NatsNodesKilled => {
                (settings.outage.max(Duration::from_secs(8)) + Duration::from_secs(4)) * 2
            }
        }
    }

    /// The deployment the fault needs.
    pub fn topology(self) -> Topology {
        match self {
            Fault::RollingRestart | Fault::NatsNodesKilled => Topology::Replicated,
            _ => Topology::Single,
        }
    }

    /// Faults in which ingress may refuse a webhook only with 503 and
    /// `Retry-After` (anything else would leave its sender unsure).
    fn refuses_only_with_retry_after(self) -> bool {
        matches!(self, Fault::RollingRestart | Fault::NatsNodesKilled)
    }

    pub fn label(self) -> String {
        match self {
            Fault::None => "none (baseline)".to_owned(),
            Fault::Kill(service) => format!("kill -9 {service}"),
            Fault::NatsDown => "NATS stopped, restarted".to_owned(),
            Fault::PostgresDown => "Postgres down (connections reset)".to_owned(),
            Fault::PostgresStalled => "Postgres stops answering".to_owned(),
            Fault::ProviderDown => "provider 503, then 429".to_owned(),
            Fault::DelayedReplicaKilled => "2 rules replicas, delayed jobs, 1 killed".to_owned(),
            Fault::ThrottledNeighbour => "neighbour floods: 1/s, poison, costly".to_owned(),
            Fault::RollingRestart => "rolling restart, 2 replicas of each".to_owned(),
            Fault::NatsNodesKilled => "NATS cluster: 2 of 3 nodes killed in turn".to_owned(),
        }
    }

    /// Its short name, as `FOCO_FAULTS_ONLY` takes it.
    pub fn key(self) -> String {
        match self {
            Fault::None => "none".to_owned(),
            Fault::Kill(service) => format!("kill-{service}"),
            Fault::NatsDown => "nats".to_owned(),
            Fault::PostgresDown => "postgres-down".to_owned(),
            Fault::PostgresStalled => "postgres-stalled".to_owned(),
            Fault::ProviderDown => "provider".to_owned(),
            Fault::DelayedReplicaKilled => "delayed".to_owned(),
            Fault::ThrottledNeighbour => "neighbour".to_owned(),
            Fault::RollingRestart => "rolling".to_owned(),
            Fault::NatsNodesKilled => "nats-nodes".to_owned(),
        }
    }

    /// Every fault, in the order the full suite runs them.
    pub fn all() -> Vec<Fault> {
        vec![
            Fault::None,
            Fault::Kill("ingress"),
            Fault::Kill("rules"),
            Fault::Kill("sender"),
            Fault::Kill("control"),
            Fault::NatsDown,
            Fault::PostgresDown,
            Fault::PostgresStalled,
            Fault::ProviderDown,
            Fault::DelayedReplicaKilled,
            Fault::ThrottledNeighbour,
            Fault::RollingRestart,
            Fault::NatsNodesKilled,
        ]
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bin_dir: PathBuf,
    pub faults: Vec<Fault>,
    /// Webhooks per second, and for how long, in every phase (longer where the
    /// fault needs it: the load goes on for a while after every fault).
    pub rate: u64,
    pub load_seconds: u64,
    /// How long NATS or Postgres is away.
    pub outage: Duration,
    /// How long the provider answers 503 (and then 429 for twice as long).
    pub provider_outage: Duration,
    /// When an abandoned-cart SMS is due after its checkout.
    pub cart_delay: Duration,
    /// Longest wait, after the load, for every accepted webhook to be settled.
    pub settle: Duration,
    /// While another account floods its throttled route, the measured
    /// account's SMS must arrive within this of their webhook (a figure of this
    /// machine: `make faults` checks it; the fast subset only prints it).
    pub neighbour_latency_bound: Option<Duration>,
}

/// One row of the table.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub fault: String,
    pub accepted: u64,
    pub refused: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub unknown: u64,
    pub worst_latency: Duration,
    /// What else was checked, and what went wrong.
    pub notes: Vec<String>,
    pub violations: Vec<String>,
}

impl Row {
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.violations.is_empty()
    }
}

/// Runs every fault of `settings`, in order, on the deployment it needs: those
/// of a single replica each first, on one deployment, then those of replicated
/// services on a three-node bus, on another.
pub async fn run(settings: &Settings) -> anyhow::Result<Vec<Row>> {
    // reqwest and tonic are built without a default TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut rows = Vec::new();
    for topology in [Topology::Single, Topology::Replicated] {
        let faults: Vec<(usize, Fault)> = settings
            .faults
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, fault)| fault.topology() == topology)
            .collect();
        if faults.is_empty() {
            continue;
        }
        let mut cluster = Cluster::start(&settings.bin_dir, settings.cart_delay, topology).await?;
        rows.extend(run_faults(&mut cluster, settings, &faults).await?);
    }
    Ok(rows)
}

async fn run_faults(
    cluster: &mut Cluster,
    settings: &Settings,
    faults: &[(usize, Fault)],
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (index, fault) in faults {
        let tag = format!("f{index}");
        let row = run_phase(cluster, settings, *fault, &tag)
            .await
            .with_context(|| {
                format!(
                    "phase {} (service logs in {})",
                    fault.label(),
                    cluster.log_dir.display()
                )
            })?;
        rows.push(row);
    }
    Ok(rows)
}

async fn run_phase(
    cluster: &mut Cluster,
    settings: &Settings,
    fault: Fault,
    tag: &str,
) -> anyhow::Result<Row> {
    let carts = fault == Fault::DelayedReplicaKilled;
    // Injected once the load is steady, and followed by load for a while.
    let inject_at = Duration::from_secs(settings.load_seconds / 3).min(Duration::from_secs(10));
    let seconds = settings
        .load_seconds
        .max((inject_at + fault.duration(settings)).as_secs() + 5);
    if carts {
        cluster.services.start("rules-2", "rules", &[]).await?;
    }
    let plan = if carts {
        Plan::Carts {
            url: cluster.cart_url.clone(),
            rate: settings.rate,
            seconds,
            delay_us: micros(settings.cart_delay),
            // The order that cancels a cart comes well before the cart is due.
            cancel_after_us: micros(settings.cart_delay) / 4,
        }
    } else {
        Plan::Open {
            url: cluster.order_url.clone(),
            rate: settings.rate,
            seconds,
        }
    };
    let spec = LoadSpec {
        tag: tag.to_owned(),
        connections: 32,
        body_bytes: 512,
        secret: WEBHOOK_SECRET.to_owned(),
        plan,
    };
    cluster.provider.forget_calls();
    let generator = tokio::spawn(load::generate(spec));
    tokio::time::sleep(inject_at).await;
    let mut row = Row {
        fault: fault.label(),
        ..Row::default()
    };
    inject(cluster, settings, fault, tag, &mut row).await?;
    let report = generator.await.context("the load generator")??;
    cluster.services.check_alive()?;
    let expected = expected_deliveries(&report, carts, settings.rate * seconds);
    settle(cluster, settings, tag, &expected).await?;
    count(cluster, settings, tag, &report, &expected, fault, &mut row).await?;
    if carts {
        cluster.services.kill("rules-2");
    }
    Ok(row)
}

async fn inject(
    cluster: &mut Cluster,
    settings: &Settings,
    fault: Fault,
    tag: &str,
    row: &mut Row,
) -> anyhow::Result<()> {
    let order_url = cluster.order_url.clone();
    match fault {
        Fault::None => {}
        Fault::RollingRestart => roll_every_replica(cluster, row).await?,
        Fault::NatsNodesKilled => kill_nats_nodes(cluster, settings, row).await?,
        Fault::Kill(service) => {
            cluster
                .kill_and_restart(service, Duration::from_secs(1))
                .await?;
        }
        Fault::NatsDown => {
            let Bus::Single(nats) = &mut cluster.bus else {
                anyhow::bail!("NATS is stopped on a single server only");
            };
            nats.stop();
            let probe = probe_ingress(&order_url).await;
            row.notes
                .push(format!("webhook during the outage: {probe}"));
            if !probe.starts_with("503") || !probe.contains("Retry-After") {
                row.violations
                    .push(format!("ingress answered {probe} without NATS"));
            }
            tokio::time::sleep(settings.outage).await;
            nats.restart().await;
        }
        Fault::PostgresDown => {
            cluster.proxy.set(Mode::Refuse);
            tokio::time::sleep(settings.outage).await;
            cluster.proxy.set(Mode::Pass);
        }
        Fault::PostgresStalled => {
            cluster.proxy.set(Mode::Stall);
            tokio::time::sleep(settings.outage).await;
            cluster.proxy.set(Mode::Pass);
        }
        Fault::ProviderDown => {
            cluster.provider.set(Behaviour::Unavailable);
            tokio::time::sleep(settings.provider_outage).await;
            cluster.provider.set(Behaviour::Throttle {
                retry_after_secs: RETRY_AFTER_SECS,
            });
            tokio::time::sleep(throttle_time(settings)).await;
            cluster.provider.set(Behaviour::Accept);
        }
        Fault::DelayedReplicaKilled => {
            anyhow::ensure!(cluster.services.kill("rules"), "rules was not running");
            tokio::time::sleep(Duration::from_secs(1)).await;
            cluster.services.start("rules", "rules", &[]).await?;
        }
        Fault::ThrottledNeighbour => {
            let flood = LoadSpec {
                tag: format!("{tag}flood"),
                connections: 32,
                body_bytes: 512,
                secret: WEBHOOK_SECRET.to_owned(),
                plan: Plan::Open {
                    url: cluster.throttled_url.clone(),
                    rate: settings.rate * 5,
                    seconds: settings.outage.as_secs().max(1),
                },
            };
            let report = load::generate(flood).await?;
            let flooded = report.kind("order").accepted;
            let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM held_jobs")
                .fetch_one(&cluster.database.pool)
                .await?;
            row.notes.push(format!(
                "the other account: {flooded} webhooks accepted, {parked} SMS parked for its 1/s route"
            ));
            // Each of its events is poison for one of its rules: reported on the
            // event (where the account looks), never retried into a stall.
            let reported = poison_reports(cluster, flooded, settings.settle).await?;
            row.notes.push(format!(
                "its poison rule reported on {reported} of its {flooded} events; its expensive rule ran on each"
            ));
            if reported < flooded {
                row.violations.push(format!(
                    "{} poison events without a report",
                    flooded - reported
                ));
            }
        }
    }
    Ok(())
}

/// The events stream's leader killed for the outage (or until another is
/// elected, if that takes longer) and started again, then,
/// once it has caught up, a node that follows it. Refusals are counted for
/// each (a leader's loss costs the webhooks that arrive before another node is
/// elected; a follower's, at most those in flight on connections to it), and
/// every one must be a 503 with `Retry-After` (checked in [`count`]).
async fn kill_nats_nodes(
    cluster: &mut Cluster,
    settings: &Settings,
    row: &mut Row,
) -> anyhow::Result<()> {
    let Bus::Cluster(nodes) = &cluster.bus else {
        anyhow::bail!("NATS nodes are killed in a cluster only");
    };
    let stream = BusNames::new(BUS_PREFIX)?.events_stream();
    let leader = nodes
        .stream_leader(&stream)
        .await
        .with_context(|| format!("{stream} has no leader"))?;
    let refused_before = refused_for_the_bus(cluster).await?;
    let Bus::Cluster(nodes) = &mut cluster.bus else {
        unreachable!("matched above");
    };
    nodes.kill(leader);
    let killed = Instant::now();
    let mut elected = None;
    while elected.is_none() && killed.elapsed() < ELECTION_PATIENCE {
        elected = nodes
            .stream_leader(&stream)
            .await
            .map(|node| (node, killed.elapsed()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(settings.outage.saturating_sub(killed.elapsed())).await;
    let leader_name = nodes.name(leader).to_owned();
    nodes.restart(leader).await;
    let refused = refused_for_the_bus(cluster).await? - refused_before;
    match elected {
        Some((node, after)) => row.notes.push(format!(
            "leader {leader_name} of {stream} killed: {} elected after {:.1} s; {refused} webhooks refused meanwhile",
            cluster_nodes(cluster).name(node),
            after.as_secs_f64()
        )),
        None => row.violations.push(format!(
            "{stream} had no leader {} s after its leader was killed",
            ELECTION_PATIENCE.as_secs()
        )),
    }

    let nodes = cluster_nodes(cluster);
    let now_leading = nodes.stream_leader(&stream).await;
    let follower = (0..3)
        .find(|index| Some(*index) != now_leading)
        .context("a follower")?;
    let follower_name = nodes.name(follower).to_owned();
    let refused_before = refused_for_the_bus(cluster).await?;
    let nodes = cluster_nodes(cluster);
    nodes.kill(follower);
    tokio::time::sleep(settings.outage).await;
    nodes.restart(follower).await;
    let refused = refused_for_the_bus(cluster).await? - refused_before;
    row.notes.push(format!(
        "follower {follower_name} of {stream} killed for {:.0} s: {refused} webhooks refused meanwhile",
        settings.outage.as_secs_f64()
    ));
    Ok(())
}

fn cluster_nodes(cluster: &mut Cluster) -> &mut NatsCluster {
    match &mut cluster.bus {
        Bus::Cluster(nodes) => nodes,
        Bus::Single(_) => unreachable!("the caller checked"),
    }
}

/// Webhooks the ingress replicas refused because the bus did not store them.
async fn refused_for_the_bus(cluster: &Cluster) -> anyhow::Result<u64> {
    let mut refused = 0;
    for replica in cluster
        .replicas
        .iter()
        .filter(|replica| replica.service == "ingress")
    {
        let exposition = cluster.services.metrics(&replica.name).await?;
        refused += exposition
            .lines()
            .filter(|line| {
                line.starts_with("foco_ingress_webhooks_received_total{")
                    && line.contains(r#"reason="bus_unavailable""#)
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(refused)
}

/// Every replica restarted in turn, control first (as a release rolls out the
/// API before its users), each drained on SIGTERM while its provider calls
/// take a while.
async fn roll_every_replica(cluster: &mut Cluster, row: &mut Row) -> anyhow::Result<()> {
    cluster.provider.set_latency(PROVIDER_LATENCY);
    let names: Vec<String> = cluster
        .replicas
        .iter()
        .map(|replica| replica.name.clone())
        .collect();
    let mut slowest = Duration::ZERO;
    for name in &names {
        let rolled = cluster.roll(name).await;
        let rolled = match rolled {
            Ok(rolled) => rolled,
            Err(error) => {
                cluster.provider.set_latency(Duration::ZERO);
                return Err(error);
            }
        };
        slowest = slowest.max(rolled.drained_in);
        if !rolled.exit.success() {
            row.violations
                .push(format!("{} exited {} on SIGTERM", rolled.name, rolled.exit));
        }
    }
    cluster.provider.set_latency(Duration::ZERO);
    row.notes.push(format!(
        "{} replicas restarted in turn; the slowest drain took {:.1} s (grace {} s)",
        names.len(),
        slowest.as_secs_f64(),
        DRAIN_GRACE.as_secs()
    ));
    Ok(())
}

/// Events of the flooding account on which its poison rule's failure is
/// recorded, once there are `expected` of them or `patience` is over.
async fn poison_reports(
    cluster: &Cluster,
    expected: u64,
    patience: Duration,
) -> anyhow::Result<u64> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let reported: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT event_id) FROM event_reports WHERE rule_name = $1 AND kind = 'error'",
        )
        .bind(POISON_RULE)
        .fetch_one(&cluster.database.pool)
        .await?;
        let reported = u64::try_from(reported).unwrap_or(0);
        if reported >= expected || tokio::time::Instant::now() >= deadline {
            return Ok(reported);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A signed webhook to ingress: its status and `Retry-After`, as text.
async fn probe_ingress(url: &str) -> String {
    let body = r#"{"order":"probe-0","tenant":"probe","sent_at_us":0}"#;
    let response = reqwest::Client::new()
        .post(url)
        .timeout(Duration::from_secs(20))
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-event-id", "probe-during-outage")
        .header(
            "x-shopify-hmac-sha256",
            load::sign(WEBHOOK_SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(|value| format!(" Retry-After: {value}"))
                .unwrap_or_default();
            format!("{}{retry_after}", response.status().as_u16())
        }
        Err(error) => format!("no answer ({error})"),
    }
}

/// The sequences whose SMS must arrive exactly once, and (carts) those that
/// must never arrive: carts whose cancelling order was accepted.
struct Expected {
    deliver: HashSet<u64>,
    never: HashSet<u64>,
    accepted: u64,
    refused: u64,
}

fn expected_deliveries(report: &LoadReport, carts: bool, scheduled: u64) -> Expected {
    let kind = report.kind(if carts { "cart" } else { "order" });
    let not_accepted: HashSet<u64> = kind
        .failed_sequences
        .iter()
        .chain(&kind.unsent_sequences)
        .copied()
        .collect();
    let accepted: HashSet<u64> = (0..scheduled)
        .filter(|sequence| !not_accepted.contains(sequence))
        .collect();
    let mut expected = Expected {
        accepted: accepted.len() as u64,
        refused: kind.failed,
        deliver: accepted,
        never: HashSet::new(),
    };
    if carts {
        let cancels = report.kind("cancel");
        let cancel_unsure: HashSet<u64> = cancels
            .failed_sequences
            .iter()
            .chain(&cancels.unsent_sequences)
            .copied()
            .collect();
        // Every even cart is cancelled by an order; a cancel that was refused
        // (or may or may not have been stored) leaves its cart out of both sets.
        let even: Vec<u64> = expected
            .deliver
            .iter()
            .copied()
            .filter(|sequence| sequence % 2 == 0)
            .collect();
        for sequence in even {
            expected.deliver.remove(&sequence);
            if !cancel_unsure.contains(&sequence) {
                expected.never.insert(sequence);
            }
        }
    }
    expected
}

/// Waits until every expected SMS has arrived or been recorded unknown, or for
/// `settings.settle`; then a moment more, for any late duplicate.
async fn settle(
    cluster: &Cluster,
    settings: &Settings,
    tag: &str,
    expected: &Expected,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + settings.settle;
    loop {
        let record = cluster.provider.phase(tag);
        let unknown = unknown_sequences(cluster, tag).await?;
        let outstanding = expected
            .deliver
            .iter()
            .filter(|sequence| {
                !record.delivered.contains_key(sequence) && !unknown.contains(sequence)
            })
            .count();
        if outstanding == 0 || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

async fn unknown_sequences(cluster: &Cluster, tag: &str) -> anyhow::Result<HashSet<u64>> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM messages WHERE status = 'unknown' AND body LIKE $1")
            .bind(format!("% {tag}-%"))
            .fetch_all(&cluster.database.pool)
            .await?;
    Ok(bodies
        .iter()
        .filter_map(|body| parse_sms(body))
        .filter(|mark| mark.tag == tag)
        .map(|mark| mark.sequence)
        .collect())
}

/// Whether anything reached the provider before the Retry-After of a 429 it
/// gave (beyond the calls already on their way).
fn check_retry_after(cluster: &Cluster, row: &mut Row) {
    if cluster.provider.throttles_given() == 0 {
        return;
    }
    let early = cluster.provider.calls_before_retry_after(IN_FLIGHT_GRACE);
    row.notes.push(format!(
        "{} answered 429, {} calls before Retry-After",
        cluster.provider.throttles_given(),
        early.len()
    ));
    if let Some(first) = early.first() {
        // Which calls, and how long after which 429: the sender's log and
        // the jobs' histories say whether it knew of the 429 by then.
        row.violations.push(format!(
            "{} provider calls before Retry-After (the first: {first})",
            early.len()
        ));
    }
}

async fn count(
    cluster: &Cluster,
    settings: &Settings,
    tag: &str,
    report: &LoadReport,
    expected: &Expected,
    fault: Fault,
    row: &mut Row,
) -> anyhow::Result<()> {
    let carts = fault == Fault::DelayedReplicaKilled;
    let record = cluster.provider.phase(tag);
    let unknown = unknown_sequences(cluster, tag).await?;
    row.accepted = expected.accepted;
    row.refused = expected.refused;
    row.unknown = unknown.len() as u64;
    let mut worst_us = 0;
    for sequence in &expected.deliver {
        match record.delivered.get(sequence) {
            Some((copies, arrived_us, stamp_us)) => {
                row.delivered += 1;
                if *copies > 1 {
                    row.duplicated += 1;
                }
                worst_us = worst_us.max(arrived_us.saturating_sub(*stamp_us));
            }
            None if unknown.contains(sequence) => {}
            None => row.lost += 1,
        }
    }
    row.worst_latency = Duration::from_micros(worst_us);
    // Any SMS more than once is a duplicate, expected or not.
    row.duplicated = row.duplicated.max(
        record
            .delivered
            .values()
            .filter(|(copies, ..)| *copies > 1)
            .count() as u64,
    );
    if carts {
        let sent_anyway = expected
            .never
            .iter()
            .filter(|sequence| record.delivered.contains_key(sequence))
            .count();
        row.notes.push(format!(
            "{} carts cancelled, {sent_anyway} of them sent",
            expected.never.len()
        ));
        if sent_anyway > 0 {
            row.violations
                .push(format!("{sent_anyway} cancelled carts were sent"));
        }
    }
    check_retry_after(cluster, row);
    if let Some(failures) = report
        .kinds
        .get(if carts { "cart" } else { "order" })
        .map(|kind| &kind.failures)
        .filter(|failures| !failures.is_empty())
    {
        let answers: Vec<String> = failures
            .iter()
            .map(|(answer, count)| format!("{count}× {answer}"))
            .collect();
        row.notes
            .push(format!("refused webhooks: {}", answers.join(", ")));
    }
    if fault.refuses_only_with_retry_after() {
        let kind = report.kinds.get("order");
        for (answer, times) in kind.iter().flat_map(|kind| &kind.failures) {
            // A closed connection is no answer: a request racing the close of
            // an idle keep-alive connection by a stopping ingress (the sender
            // retries it; it was never stored). Shown in the notes.
            if answer != "503 Retry-After" && answer != "transport error" {
                row.violations
                    .push(format!("ingress answered {times}× {answer}"));
            }
        }
    }
    if fault == Fault::RollingRestart && row.unknown > 0 {
        row.violations.push(format!(
            "{} SMS left unknown: a sender stopped during its provider call",
            row.unknown
        ));
    }
    let bound = settings.neighbour_latency_bound;
    if fault == Fault::ThrottledNeighbour && bound.is_some_and(|bound| row.worst_latency > bound) {
        row.violations.push(format!(
            "SMS {:.1} s late while another account was throttled",
            row.worst_latency.as_secs_f64()
        ));
    }
    if row.lost > 0 {
        row.violations.push(format!("{} SMS lost", row.lost));
    }
    if row.duplicated > 0 {
        row.violations
            .push(format!("{} SMS duplicated", row.duplicated));
    }
    Ok(())
}

/// How long the provider answers 429 after its outage.
fn throttle_time(settings: &Settings) -> Duration {
    (settings.provider_outage / 2).max(Duration::from_secs(6))
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The table, as `make faults` prints it.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<42} {:>9} {:>8} {:>9} {:>5} {:>6} {:>7} {:>12}\n",
        "fault", "accepted", "refused", "delivered", "lost", "dupl.", "unknown", "worst e2e"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<42} {:>9} {:>8} {:>9} {:>5} {:>6} {:>7} {:>10.2} s\n",
            row.fault,
            row.accepted,
            row.refused,
            row.delivered,
            row.lost,
            row.duplicated,
            row.unknown,
            row.worst_latency.as_secs_f64()
        ));
        for note in row.notes.iter().chain(&row.violations) {
            out.push_str(&format!("    {note}\n"));
        }
    }
    out
}
