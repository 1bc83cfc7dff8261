//! One measured phase: CPU read, the load generator run, the stage backlog read as
//! the load ends, a bounded wait for the backlog to be delivered, CPU read again,
//! and every SMS the fake provider saw for the phase checked against what was
//! accepted (exactly once) and turned into figures.

use std::time::Duration;

use anyhow::Context as _;

use crate::deployment::{Context, Pipeline, StageBacklog};
use crate::fake_provider::Arrival;
use crate::load::{LoadReport, LoadSpec, Plan};
use crate::stats::Latencies;

/// Everything the report prints about one phase.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    pub pipeline: &'static str,
    pub label: String,
    /// Starting the pipeline and warming it up.
    pub setup: Duration,
    pub load: LoadReport,
    /// SMS expected: accepted orders, or accepted carts not cancelled.
    pub expected: u64,
    /// Distinct expected SMS that arrived, in all and while the load ran.
    pub delivered: u64,
    pub delivered_during_load: u64,
    pub first_arrival_us: u64,
    pub last_arrival_us: u64,
    pub duplicates: u64,
    /// SMS of webhooks whose request failed (stored though not answered 202).
    pub delivered_of_failed: u64,
    /// SMS of cancelled carts (must be 0), and SMS with unknown ids (must be 0).
    pub delivered_cancelled: u64,
    pub delivered_unknown: u64,
    /// Provider calls the fake could not read, over the whole run so far.
    pub unreadable: u64,
    pub stage_backlog: StageBacklog,
    /// End-to-end latency (delayed mode: lateness against the due time).
    pub latencies: Latencies,
    /// Carts only: SMS that arrived before their due time.
    pub early: u64,
    /// From the end of the load to the last expected SMS, when all arrived.
    pub drained_after: Option<Duration>,
    /// The CPU window: load start to end of the wait.
    pub window: Duration,
    /// CPU per process label over the window.
    pub cpu: Vec<(String, Duration)>,
    /// What PostgreSQL wrote to its write-ahead log over the window, when the
    /// pipeline has a database and the server says (`pg_stat_wal`).
    pub wal: Option<WalWritten>,
    /// Cores each process used in the second before the load.
    pub idle_cores: Vec<(String, f64)>,
    /// The most memory each process the benchmark started for the phase held
    /// resident (bytes); every phase starts its own, so this is the phase's.
    pub peak_memory: Vec<(String, u64)>,
    /// Delayed mode: scheduled jobs by state in Postgres, when readable.
    pub job_states: Option<String>,
    /// The p99 of each second of sending (delayed mode: of each second's due
    /// time), over the SMS that arrived.
    pub by_second: Option<crate::stats::SecondsSpread>,
    /// Where the time went, stage by stage (Foco only).
    pub stages: Vec<crate::stages::StageLatency>,
    /// A few SMS that should not have been sent, or were not: where to look.
    pub samples: Vec<String>,
}

impl PhaseResult {
    pub fn load_seconds(&self) -> f64 {
        self.load.seconds()
    }

    /// The SMS a phase's costs are divided by: every one that arrived,
    /// including those of webhooks whose request failed (at least 1).
    pub fn sms_for_costs(&self) -> f64 {
        (self.delivered + self.delivered_of_failed).max(1) as f64
    }

    pub fn backlog_at_load_end(&self) -> u64 {
        self.expected.saturating_sub(self.delivered_during_load)
    }

    pub fn exactly_once(&self) -> bool {
        self.duplicates == 0
            && self.delivered_cancelled == 0
            && self.delivered_unknown == 0
            && self.delivered == self.expected
    }
}

/// PostgreSQL's write-ahead log counters (`pg_stat_wal`, PostgreSQL 14 and
/// later): server-wide, so over a phase they are the phase's pipeline's, as
/// nothing else writes meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalWritten {
    pub records: u64,
    pub full_page_images: u64,
    pub bytes: u64,
}

impl WalWritten {
    /// The counters now; `None` without a database or without the view.
    async fn read(pipeline: &Pipeline) -> Option<Self> {
        let pool = &pipeline.database()?.pool;
        let (records, full_page_images, bytes): (i64, i64, i64) =
            sqlx::query_as("SELECT wal_records, wal_fpi, wal_bytes::bigint FROM pg_stat_wal")
                .fetch_one(pool)
                .await
                .ok()?;
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        Some(Self {
            records: count(records),
            full_page_images: count(full_page_images),
            bytes: count(bytes),
        })
    }

    /// What was written between `before` and `self`.
    fn since(self, before: Self) -> Self {
        Self {
            records: self.records.saturating_sub(before.records),
            full_page_images: self
                .full_page_images
                .saturating_sub(before.full_page_images),
            bytes: self.bytes.saturating_sub(before.bytes),
        }
    }
}

/// Sequence states while checking arrivals.
const NOT_SENT: u8 = 0;
const EXPECTED: u8 = 1;
const FAILED: u8 = 2;
const CANCELLED: u8 = 3;
/// How long the machine is watched at rest before each load.
const IDLE_SAMPLE: Duration = Duration::from_secs(1);
/// Examples of anything unexpected to print.
const SAMPLES: usize = 5;

fn cpu_sample(context: &Context, pipeline: &Pipeline) -> Vec<(String, Duration)> {
    // The bare pipe has no database: only the server's own processes count.
    cpu_sample_of(context, pipeline.processes(), pipeline.database_name())
}

/// CPU used so far by each of `processes`, nats-server, the PostgreSQL
/// backends serving `database` (and the server's own processes), and the
/// fake provider.
pub fn cpu_sample_of(
    context: &Context,
    processes: Vec<(String, u32)>,
    database: &str,
) -> Vec<(String, Duration)> {
    let mut sample: Vec<(String, Duration)> = processes
        .into_iter()
        .map(|(label, pid)| (label, crate::cpu::process(pid)))
        .collect();
    sample.push((
        "nats-server".to_owned(),
        crate::cpu::processes_named("nats-server"),
    ));
    sample.push((
        "postgres".to_owned(),
        crate::cpu::postgres_serving(database),
    ));
    sample.push((
        "fake provider".to_owned(),
        crate::cpu::process(context.fake_pid),
    ));
    sample
}

/// Warm-up: `count` orders in a closed loop, all delivered, before measuring.
pub async fn warm_up(
    context: &Context,
    pipeline: &mut Pipeline,
    tag: &str,
    count: u64,
) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let spec = LoadSpec {
        tag: tag.to_owned(),
        connections: context.settings.connections,
        body_bytes: context.settings.body_bytes,
        secret: context.webhook_secret.clone(),
        plan: Plan::Closed {
            url: pipeline.order_url().to_owned(),
            seconds: 60.0,
            max_requests: Some(count),
        },
    };
    let report = crate::load::run_process(&context.exe, &spec).await?;
    let order = report.kind("order");
    anyhow::ensure!(
        order.failed == 0,
        "{} refused warm-up webhooks: {:?}",
        pipeline.name(),
        order.failures
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        pipeline.check_alive()?;
        if context.fake.count(tag).await?.distinct >= order.accepted {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} did not deliver the {} warm-up SMS within 60 s",
            pipeline.name(),
            order.accepted
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Warm-up of the delayed-jobs phase: `count` abandoned carts due one second
/// after they are posted, every second one cancelled, until the others are
/// delivered; so `scheduled_jobs` and `cancel_marks` hold rows (and get
/// statistics) before the measured carts arrive, as in a running system.
pub async fn warm_up_carts(
    context: &Context,
    pipeline: &mut Pipeline,
    cart_url: &str,
    tag: &str,
    count: u64,
) -> anyhow::Result<()> {
    const RATE: u64 = 250;
    let seconds = count.div_ceil(RATE).max(1);
    let spec = LoadSpec {
        tag: tag.to_owned(),
        connections: context.settings.connections,
        body_bytes: context.settings.body_bytes,
        secret: context.webhook_secret.clone(),
        plan: Plan::Carts {
            url: cart_url.to_owned(),
            rate: RATE,
            seconds,
            delay_us: 1_000_000,
            cancel_after_us: 500_000,
        },
    };
    let report = crate::load::run_process(&context.exe, &spec).await?;
    let (carts, cancels) = (report.kind("cart"), report.kind("cancel"));
    anyhow::ensure!(
        carts.failed == 0 && cancels.failed == 0,
        "{} refused warm-up carts: {:?} {:?}",
        pipeline.name(),
        carts.failures,
        cancels.failures
    );
    // Carts with an odd sequence number are not cancelled.
    let expected = carts.accepted / 2;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        pipeline.check_alive()?;
        if context.fake.count(tag).await?.distinct >= expected {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} did not deliver the {expected} warm-up cart SMS within 60 s",
            pipeline.name(),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs one measured phase on `pipeline` with `plan`.
#[allow(
    clippy::too_many_lines,
    reason = "a benchmark phase: its steps read best in order"
)]
pub async fn measure(
    context: &Context,
    pipeline: &mut Pipeline,
    setup: Duration,
    label: &str,
    tag: &str,
    plan: Plan,
) -> anyhow::Result<PhaseResult> {
    let carts = matches!(plan, Plan::Carts { .. });
    let delay_us = match plan {
        Plan::Carts { delay_us, .. } => delay_us,
        _ => 0,
    };
    let spec = LoadSpec {
        tag: tag.to_owned(),
        connections: context.settings.connections,
        body_bytes: context.settings.body_bytes,
        secret: context.webhook_secret.clone(),
        plan,
    };
    // What runs before any load: the pipeline at rest (pollers, timers) and
    // whatever else shares the machine, nats-server and postgres.
    let idle_before = cpu_sample(context, pipeline);
    tokio::time::sleep(IDLE_SAMPLE).await;
    let cpu_before = cpu_sample(context, pipeline);
    let wal_before = WalWritten::read(pipeline).await;
    let idle_cores = cpu_before
        .iter()
        .zip(&idle_before)
        .map(|((label, after), (_, before))| {
            let busy = after.saturating_sub(*before).as_secs_f64() / IDLE_SAMPLE.as_secs_f64();
            (label.clone(), busy)
        })
        .collect();
    let stages_before = pipeline.stage_snapshot().await;
    let window_start = tokio::time::Instant::now();
    let load = crate::load::run_process(&context.exe, &spec)
        .await
        .with_context(|| format!("{label} on {}", pipeline.name()))?;
    let stage_backlog = pipeline.stage_backlog(&context.nats).await;

    let (states, expected) = expected_sequences(&load, carts);
    let wait = context.settings.drain + Duration::from_micros(delay_us);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        pipeline.check_alive()?;
        let enough = context.fake.count(tag).await?.distinct >= expected;
        // Distinct ids may include SMS that should not exist (a cancelled cart's,
        // a failed request's): only the expected ones end the wait.
        if enough && delivered_expected(&states, &context.fake.arrivals(tag).await?) >= expected {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let poll = if enough { 500 } else { 100 };
        tokio::time::sleep(Duration::from_millis(poll)).await;
    }
    let window = window_start.elapsed();
    let window_end_us = crate::unix_micros();
    let cpu_after = cpu_sample(context, pipeline);
    let peak_memory = pipeline
        .processes()
        .into_iter()
        .filter_map(|(label, pid)| Some((label, crate::cpu::peak_resident_bytes(pid)?)))
        .collect();
    let wal = match (WalWritten::read(pipeline).await, wal_before) {
        (Some(after), Some(before)) => Some(after.since(before)),
        _ => None,
    };
    let mut cpu: Vec<(String, Duration)> = cpu_after
        .into_iter()
        .zip(cpu_before)
        .map(|((label, after), (_, before))| (label, after.saturating_sub(before)))
        .collect();
    cpu.push((
        "load generator".to_owned(),
        Duration::from_micros(load.cpu_us),
    ));
    let count = context.fake.count(tag).await?;
    let arrivals = context.fake.arrivals(tag).await?;
    write_arrivals(&pipeline.log_dir().join("arrivals.tsv"), &arrivals)?;
    let stages_after = pipeline.stage_snapshot().await;
    let stages = crate::stages::STAGES
        .iter()
        .filter_map(|(_, name, stage)| {
            crate::stages::between(stage, name, &stages_before, &stages_after)
        })
        .collect();

    let job_states = match pipeline {
        Pipeline::Foco(foco) if carts => job_states(&foco.database.pool).await,
        _ => None,
    };
    let trigger_kind = if carts { "cart" } else { "order" };
    let latest_stamp_us = load.kind(trigger_kind).last_stamp_us + delay_us;
    let mut result = PhaseResult {
        pipeline: pipeline.name(),
        label: label.to_owned(),
        setup,
        expected,
        delivered: 0,
        delivered_during_load: 0,
        first_arrival_us: 0,
        last_arrival_us: 0,
        duplicates: count.duplicates,
        delivered_of_failed: 0,
        delivered_cancelled: 0,
        delivered_unknown: 0,
        unreadable: count.unreadable,
        stage_backlog,
        latencies: Latencies::default(),
        by_second: None,
        early: 0,
        drained_after: None,
        window,
        cpu,
        wal,
        idle_cores,
        peak_memory,
        job_states,
        stages,
        samples: Vec::new(),
        load,
    };
    check_arrivals(
        &mut result,
        &states,
        &arrivals,
        window_end_us,
        latest_stamp_us,
    );
    if let Pipeline::Foco(foco) = pipeline
        && carts
    {
        result.samples = explain_samples(&foco.database.pool, tag, &result.samples).await;
    }
    Ok(result)
}

/// The state of every sequence of the phase, and how many SMS are expected.
fn expected_sequences(load: &LoadReport, carts: bool) -> (Vec<u8>, u64) {
    let triggers = load.kind(if carts { "cart" } else { "order" });
    let scheduled = usize::try_from(triggers.sent + triggers.unsent).unwrap_or(0);
    let mut states = vec![EXPECTED; scheduled];
    // Failures beyond the listed ones (10,000) cannot be told apart: the report
    // shows the counts, and a run with that many failures says little anyway.
    for (sequences, state) in [
        (&triggers.failed_sequences, FAILED),
        (&triggers.unsent_sequences, NOT_SENT),
    ] {
        for sequence in sequences {
            if let Some(slot) = states.get_mut(*sequence as usize) {
                *slot = state;
            }
        }
    }
    if carts {
        // Every even cart has a cancel scheduled; it cancels unless it failed or
        // was never sent.
        let cancels = load.kind("cancel");
        let mut not_cancelling: Vec<u64> = cancels
            .failed_sequences
            .iter()
            .chain(&cancels.unsent_sequences)
            .copied()
            .collect();
        not_cancelling.sort_unstable();
        for (sequence, state) in states.iter_mut().enumerate().step_by(2) {
            if *state == EXPECTED && not_cancelling.binary_search(&(sequence as u64)).is_err() {
                *state = CANCELLED;
            }
        }
    }
    let expected = states.iter().filter(|state| **state == EXPECTED).count() as u64;
    (states, expected)
}

fn check_arrivals(
    result: &mut PhaseResult,
    states: &[u8],
    arrivals: &[Arrival],
    window_end_us: u64,
    latest_stamp_us: u64,
) {
    let mut seen = vec![false; states.len()];
    let mut latencies = Vec::with_capacity(arrivals.len());
    let mut sent_and_latency = Vec::with_capacity(arrivals.len());
    let mut last_expected_arrival = 0;
    for arrival in arrivals {
        let state = states
            .get(arrival.sequence as usize)
            .copied()
            .unwrap_or(NOT_SENT);
        let index = arrival.sequence as usize;
        if state == NOT_SENT || seen[index] {
            // Unknown ids; duplicates are counted by the fake provider.
            result.delivered_unknown += u64::from(state == NOT_SENT);
            continue;
        }
        seen[index] = true;
        match state {
            FAILED => result.delivered_of_failed += 1,
            CANCELLED => {
                result.delivered_cancelled += 1;
                if result.samples.len() < SAMPLES {
                    result
                        .samples
                        .push(format!("{} sent though cancelled", arrival.sequence));
                }
            }
            _ => {
                result.delivered += 1;
                if arrival.arrived_us <= result.load.ended_us {
                    result.delivered_during_load += 1;
                }
                result.early += u64::from(arrival.arrived_us < arrival.stamp_us);
                let latency_us = arrival.arrived_us.saturating_sub(arrival.stamp_us);
                latencies.push(latency_us);
                sent_and_latency.push((arrival.stamp_us, latency_us));
                last_expected_arrival = last_expected_arrival.max(arrival.arrived_us);
            }
        }
    }
    // Seconds count from the first stamp: the first send, or for delayed jobs
    // the first due time, a delay after the load started.
    let first_stamp_us = sent_and_latency
        .iter()
        .map(|(sent_us, _)| *sent_us)
        .min()
        .unwrap_or(0)
        .max(result.load.started_us);
    result.by_second = crate::stats::SecondsSpread::new(&sent_and_latency, first_stamp_us);
    result.first_arrival_us = arrivals.iter().map(|a| a.arrived_us).min().unwrap_or(0);
    result.last_arrival_us = arrivals.iter().map(|a| a.arrived_us).max().unwrap_or(0);
    let missing = result.expected.saturating_sub(result.delivered);
    let missing_samples = states
        .iter()
        .zip(&seen)
        .enumerate()
        .filter(|(_, (state, seen))| **state == EXPECTED && !**seen)
        .take(SAMPLES)
        .map(|(sequence, _)| format!("{sequence} never arrived"))
        .collect::<Vec<_>>();
    result.samples.extend(missing_samples);
    // A missing SMS is at least as late as the wait was long after the latest
    // timestamp sent (for carts the latest due time).
    result.latencies = Latencies::new(
        latencies,
        missing,
        window_end_us.saturating_sub(latest_stamp_us),
    );
    if missing == 0 && result.expected > 0 {
        result.drained_after = Some(Duration::from_micros(
            last_expected_arrival.saturating_sub(result.load.ended_us),
        ));
    }
}

/// Every SMS the fake provider recorded in the phase, for a closer look at
/// where a tail comes from: sequence, the time the webhook carried (sent, or
/// for carts due) and the arrival, in µs since the Unix epoch.
fn write_arrivals(path: &std::path::Path, arrivals: &[Arrival]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "sequence\tstamp_us\tarrived_us")?;
    for arrival in arrivals {
        writeln!(
            out,
            "{}\t{}\t{}",
            arrival.sequence, arrival.stamp_us, arrival.arrived_us
        )?;
    }
    out.flush()?;
    Ok(())
}

/// How many of the expected SMS have arrived.
fn delivered_expected(states: &[u8], arrivals: &[Arrival]) -> u64 {
    let mut seen = vec![false; states.len()];
    let mut count = 0;
    for arrival in arrivals {
        let index = arrival.sequence as usize;
        if states.get(index) == Some(&EXPECTED) && !seen[index] {
            seen[index] = true;
            count += 1;
        }
    }
    count
}

/// A delayed job's history, in seconds after its trigger reached ingress.
#[derive(sqlx::FromRow)]
struct JobTimeline {
    state: String,
    cancel_reason: String,
    due: f64,
    changed: f64,
    cancel_received: Option<f64>,
    cancel_recorded: Option<f64>,
}

/// Each sample with its row in `scheduled_jobs`, times relative to the trigger's
/// arrival at ingress; unchanged when the table cannot be read.
async fn explain_samples(pool: &sqlx::PgPool, tag: &str, samples: &[String]) -> Vec<String> {
    let mut explained = Vec::new();
    for sample in samples {
        let sequence = sample.split_whitespace().next().unwrap_or_default();
        let key = crate::sms::webhook_id(tag, sequence.parse().unwrap_or(u64::MAX));
        let row: Option<JobTimeline> = sqlx::query_as(
            "SELECT j.state, j.cancel_reason, \
                    extract(epoch FROM j.due_at - j.trigger_received_at)::float8 AS due, \
                    extract(epoch FROM j.updated_at - j.trigger_received_at)::float8 AS changed, \
                    extract(epoch FROM m.received_at - j.trigger_received_at)::float8 \
                        AS cancel_received, \
                    extract(epoch FROM m.created_at - j.trigger_received_at)::float8 \
                        AS cancel_recorded \
             FROM scheduled_jobs j \
             LEFT JOIN cancel_marks m ON m.correlation_key = j.correlation_key \
             WHERE j.correlation_key = $1 LIMIT 1",
        )
        .bind(&key)
        .fetch_optional(pool)
        .await
        .ok()
        .flatten();
        let seconds = |value: Option<f64>| value.map_or("?".to_owned(), |v| format!("+{v:.3} s"));
        explained.push(match row {
            Some(job) => format!(
                "{key}: {sample}; job {}{} due +{:.3} s, changed +{:.3} s; its cancel reached ingress {}, was recorded by rules {} (all after the trigger reached ingress)",
                job.state,
                if job.cancel_reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", job.cancel_reason)
                },
                job.due,
                job.changed,
                seconds(job.cancel_received),
                seconds(job.cancel_recorded),
            ),
            None => format!("{key}: {sample}; no scheduled job"),
        });
    }
    explained
}

/// `published 7500, cancelled 7500` from `scheduled_jobs`; `None` when the table
/// cannot be read (the schema belongs to control and may change).
async fn job_states(pool: &sqlx::PgPool) -> Option<String> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM scheduled_jobs GROUP BY state ORDER BY state")
            .fetch_all(pool)
            .await
            .ok()?;
    Some(
        rows.iter()
            .map(|(state, count)| format!("{state} {count}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::WalWritten;

    #[test]
    fn wal_written_over_a_window_is_the_difference_and_never_negative() {
        let before = WalWritten {
            records: 100,
            full_page_images: 7,
            bytes: 10_000,
        };
        let after = WalWritten {
            records: 1_400,
            full_page_images: 9,
            bytes: 210_000,
        };
        let written = after.since(before);
        assert_eq!(
            written,
            WalWritten {
                records: 1_300,
                full_page_images: 2,
                bytes: 200_000,
            }
        );
        // Counters reset by `pg_stat_reset_shared('wal')` meanwhile.
        assert_eq!(before.since(after), WalWritten::default());
    }
}
