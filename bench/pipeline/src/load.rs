//! The load generator: signed Shopify webhooks from a pool of keep-alive
//! connections, as its own process (`foco-bench-pipeline load`, the plan in
//! `FOCO_BENCH_LOAD_SPEC`, the report as JSON on stdout) so that its CPU is not
//! mistaken for the fake provider's or the orchestrator's.
//!
//! Closed loop: each connection posts its next webhook as soon as the last one is
//! answered; the body carries the time it was sent. Open loop (and the carts
//! plan): every webhook has an intended send time on a fixed schedule and carries
//! that time, not the time it actually left. A connection that is free takes the
//! next webhook, waits for its time if it is early and sends at once if it is
//! late, so a pipeline that answers slowly is charged for the wait
//! (coordinated omission) and the report says how far behind the generator was.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::time::Instant;

use crate::sms::webhook_id;

pub const SPEC_ENV: &str = "FOCO_BENCH_LOAD_SPEC";
/// An open-loop generator this far behind its schedule stops sending.
const GIVE_UP_BEHIND: Duration = Duration::from_secs(10);
/// A request sent this much after its intended time counts as late.
const LATE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LoadSpec {
    /// Phase tag: every webhook id is `<tag>-<sequence>`.
    pub tag: String,
    pub connections: usize,
    pub body_bytes: usize,
    pub secret: String,
    pub plan: Plan,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Plan {
    /// Orders from `connections` loops for `seconds` (or `max_requests`).
    Closed {
        url: String,
        seconds: f64,
        max_requests: Option<u64>,
    },
    /// Orders at `rate` per second for `seconds`.
    Open {
        url: String,
        rate: u64,
        seconds: u64,
    },
    /// Abandoned carts at `rate` per second for `seconds`, each due `delay_us`
    /// after its intended time; every even cart is cancelled by an order
    /// `cancel_after_us` after it.
    Carts {
        url: String,
        rate: u64,
        seconds: u64,
        delay_us: u64,
        cancel_after_us: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Order,
    Cart,
    Cancel,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Order => "order",
            Kind::Cart => "cart",
            Kind::Cancel => "cancel",
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct KindReport {
    pub sent: u64,
    pub accepted: u64,
    pub failed: u64,
    /// Answered 202 but `"duplicate": true`: should never happen (ids are unique).
    pub duplicate_answers: u64,
    #[serde(with = "ranges")]
    pub failed_sequences: Vec<u64>,
    /// Scheduled but never sent: the generator was too far behind.
    pub unsent: u64,
    #[serde(with = "ranges")]
    pub unsent_sequences: Vec<u64>,
    /// The latest timestamp a webhook of this kind carried.
    pub last_stamp_us: u64,
    /// Unix µs of the first and the last request sent.
    pub first_sent_us: u64,
    pub last_sent_us: u64,
    /// Answers other than 202, and transport errors, with their counts.
    pub failures: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LoadReport {
    /// Unix µs: when the load began, and when the last answer came.
    pub started_us: u64,
    pub ended_us: u64,
    pub kinds: BTreeMap<String, KindReport>,
    /// Time from sending a webhook to its answer (ingress' 202), µs.
    pub answer_p50_us: u64,
    pub answer_p99_us: u64,
    pub answer_max_us: u64,
    /// Open loop: how late requests left against their schedule, µs.
    pub lag_p99_us: u64,
    pub lag_max_us: u64,
    pub late_requests: u64,
    /// Scheduled requests never sent because the generator was too far behind.
    pub unsent: u64,
    /// This process's CPU during the load.
    pub cpu_us: u64,
}

impl KindReport {
    /// Accepted requests per second over the span they were sent in.
    pub fn accepted_per_second(&self) -> f64 {
        let span = self.last_sent_us.saturating_sub(self.first_sent_us) as f64 / 1e6;
        if span <= 0.0 {
            return 0.0;
        }
        self.accepted.saturating_sub(1) as f64 / span
    }
}

impl LoadReport {
    pub fn kind(&self, label: &str) -> KindReport {
        self.kinds.get(label).cloned().unwrap_or_default()
    }

    pub fn seconds(&self) -> f64 {
        self.ended_us.saturating_sub(self.started_us) as f64 / 1e6
    }

    /// Whether the generator kept to its schedule: at most 1 % of the requests
    /// left more than 10 ms late, and none was dropped.
    pub fn kept_schedule(&self) -> bool {
        let sent: u64 = self.kinds.values().map(|kind| kind.sent).sum();
        self.unsent == 0 && self.late_requests * 100 <= sent
    }
}

/// One scheduled request: its intended offset from the start, what, which.
#[derive(Debug, Clone, Copy)]
struct Entry {
    offset_us: u64,
    kind: Kind,
    sequence: u64,
}

fn schedule(plan: &Plan) -> Vec<Entry> {
    match plan {
        Plan::Closed { .. } => Vec::new(),
        Plan::Open { rate, seconds, .. } => (0..rate * seconds)
            .map(|sequence| Entry {
                offset_us: sequence * 1_000_000 / rate,
                kind: Kind::Order,
                sequence,
            })
            .collect(),
        Plan::Carts {
            rate,
            seconds,
            cancel_after_us,
            ..
        } => {
            let mut entries = Vec::new();
            for sequence in 0..rate * seconds {
                let offset_us = sequence * 1_000_000 / rate;
                entries.push(Entry {
                    offset_us,
                    kind: Kind::Cart,
                    sequence,
                });
                if sequence % 2 == 0 {
                    entries.push(Entry {
                        offset_us: offset_us + cancel_after_us,
                        kind: Kind::Cancel,
                        sequence,
                    });
                }
            }
            entries.sort_by_key(|entry| entry.offset_us);
            entries
        }
    }
}

/// Builds a webhook of exactly `size` bytes (padded with a `note`), its topic and
/// its event id.
fn webhook(spec: &LoadSpec, entry: Entry, stamp_us: u64) -> (String, &'static str, String) {
    let id = webhook_id(&spec.tag, entry.sequence);
    let (head, topic, event_id) = match entry.kind {
        Kind::Order => (
            format!(
                r#"{{"order":"{id}","tenant":"t1","sent_at_us":{stamp_us},"currency":"MXN","total_price":"404.95","customer":{{"first_name":"Laura","phone":"+525512345678"}},"note":""#
            ),
            "orders/create",
            id,
        ),
        Kind::Cart => {
            let delay_us = match spec.plan {
                Plan::Carts { delay_us, .. } => delay_us,
                _ => 0,
            };
            let due_us = stamp_us + delay_us;
            (
                format!(
                    r#"{{"token":"{id}","tenant":"t1","sent_at_us":{stamp_us},"due_us":{due_us},"customer":{{"first_name":"Laura"}},"abandoned_checkout_url":"https://tienda.example/checkouts/{id}","note":""#
                ),
                "checkouts/create",
                id,
            )
        }
        Kind::Cancel => (
            format!(
                r#"{{"checkout_token":"{id}","tenant":"t2","sent_at_us":{stamp_us},"currency":"MXN","total_price":"404.95","note":""#
            ),
            "orders/create",
            format!("{id}-cancel"),
        ),
    };
    let mut body = head;
    let padding = spec.body_bytes.saturating_sub(body.len() + 2);
    body.extend(std::iter::repeat_n('x', padding));
    body.push_str("\"}");
    (body, topic, event_id)
}

/// Shopify's `X-Shopify-Hmac-Sha256`: base64 of the body's HMAC-SHA256.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn plan_url(plan: &Plan) -> &str {
    match plan {
        Plan::Closed { url, .. } | Plan::Open { url, .. } | Plan::Carts { url, .. } => url,
    }
}

/// What one connection saw.
#[derive(Default)]
struct WorkerResult {
    kinds: BTreeMap<Kind, KindReport>,
    answers_us: Vec<u64>,
    lags_us: Vec<u64>,
    unsent: u64,
}

impl WorkerResult {
    async fn send(
        &mut self,
        client: &reqwest::Client,
        spec: &LoadSpec,
        entry: Entry,
        stamp_us: u64,
    ) {
        let (body, topic, event_id) = webhook(spec, entry, stamp_us);
        let signature = sign(spec.secret.as_bytes(), body.as_bytes());
        let sent = std::time::Instant::now();
        let sent_us = crate::unix_micros();
        let response = client
            .post(plan_url(&spec.plan))
            .header("content-type", "application/json")
            .header("x-shopify-topic", topic)
            .header("x-shopify-event-id", event_id)
            .header("x-shopify-hmac-sha256", signature)
            .body(body)
            .send()
            .await;
        let outcome = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response.headers().contains_key("retry-after");
                // Reading the body returns the connection to the pool.
                let answer = response.bytes().await.unwrap_or_default();
                if status == 202 {
                    Ok(answer
                        .windows(16)
                        .any(|window| window == b"\"duplicate\":true"))
                } else if retry_after {
                    Err(format!("{status} Retry-After"))
                } else {
                    Err(status.to_string())
                }
            }
            Err(error) if error.is_timeout() => Err("timeout".to_owned()),
            Err(error) if error.is_connect() => Err("connect error".to_owned()),
            Err(_) => Err("transport error".to_owned()),
        };
        let report = self.kinds.entry(entry.kind).or_default();
        report.sent += 1;
        report.last_stamp_us = report.last_stamp_us.max(stamp_us);
        if report.first_sent_us == 0 {
            report.first_sent_us = sent_us;
        }
        report.last_sent_us = report.last_sent_us.max(sent_us);
        match outcome {
            Ok(duplicate) => {
                report.accepted += 1;
                report.duplicate_answers += u64::from(duplicate);
                self.answers_us
                    .push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            Err(reason) => {
                report.failed += 1;
                *report.failures.entry(reason).or_default() += 1;
                report.failed_sequences.push(entry.sequence);
            }
        }
    }
}

/// Runs the plan and reports; the `load` subcommand.
#[allow(
    clippy::too_many_lines,
    reason = "a benchmark run: its steps read best in order"
)]
pub async fn generate(spec: LoadSpec) -> anyhow::Result<LoadReport> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(spec.connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("HTTP client")?;
    let spec = Arc::new(spec);
    let entries = Arc::new(schedule(&spec.plan));
    let next = Arc::new(AtomicU64::new(0));
    let cpu_before = crate::cpu::this_process();
    let started = Instant::now();
    let started_us = crate::unix_micros();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..spec.connections {
        let (client, spec, entries, next) =
            (client.clone(), spec.clone(), entries.clone(), next.clone());
        workers.spawn(async move {
            let mut result = WorkerResult::default();
            if let Plan::Closed {
                seconds,
                max_requests,
                ..
            } = spec.plan
            {
                let deadline = started + Duration::from_secs_f64(seconds);
                while Instant::now() < deadline {
                    let sequence = next.fetch_add(1, Ordering::Relaxed);
                    if max_requests.is_some_and(|max| sequence >= max) {
                        break;
                    }
                    let entry = Entry {
                        offset_us: 0,
                        kind: Kind::Order,
                        sequence,
                    };
                    result
                        .send(&client, &spec, entry, crate::unix_micros())
                        .await;
                }
                return result;
            }
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(entry) = entries.get(index as usize).copied() else {
                    return result;
                };
                let intended = started + Duration::from_micros(entry.offset_us);
                if Instant::now() > intended + GIVE_UP_BEHIND {
                    result.unsent += 1;
                    let report = result.kinds.entry(entry.kind).or_default();
                    report.unsent += 1;
                    report.unsent_sequences.push(entry.sequence);
                    continue;
                }
                tokio::time::sleep_until(intended).await;
                result
                    .lags_us
                    .push(u64::try_from(intended.elapsed().as_micros()).unwrap_or(u64::MAX));
                result
                    .send(&client, &spec, entry, started_us + entry.offset_us)
                    .await;
            }
        });
    }
    let mut merged = WorkerResult::default();
    while let Some(joined) = workers.join_next().await {
        let result = joined.context("a load connection")?;
        for (kind, report) in result.kinds {
            let total = merged.kinds.entry(kind).or_default();
            if total.first_sent_us == 0 || report.first_sent_us < total.first_sent_us {
                total.first_sent_us = report.first_sent_us;
            }
            total.last_sent_us = total.last_sent_us.max(report.last_sent_us);
            total.last_stamp_us = total.last_stamp_us.max(report.last_stamp_us);
            total.sent += report.sent;
            total.accepted += report.accepted;
            total.failed += report.failed;
            total.duplicate_answers += report.duplicate_answers;
            total.failed_sequences.extend(report.failed_sequences);
            total.unsent += report.unsent;
            total.unsent_sequences.extend(report.unsent_sequences);
            for (reason, count) in report.failures {
                *total.failures.entry(reason).or_default() += count;
            }
        }
        merged.answers_us.extend(result.answers_us);
        merged.lags_us.extend(result.lags_us);
        merged.unsent += result.unsent;
    }
    let ended_us = crate::unix_micros();
    let cpu = crate::cpu::this_process().saturating_sub(cpu_before);
    merged.answers_us.sort_unstable();
    merged.lags_us.sort_unstable();
    let late = u64::try_from(LATE.as_micros()).unwrap_or(u64::MAX);
    Ok(LoadReport {
        started_us,
        ended_us,
        kinds: merged
            .kinds
            .into_iter()
            .map(|(kind, report)| (kind.label().to_owned(), report))
            .collect(),
        answer_p50_us: crate::stats::plain_percentile(&merged.answers_us, 50.0),
        answer_p99_us: crate::stats::plain_percentile(&merged.answers_us, 99.0),
        answer_max_us: merged.answers_us.last().copied().unwrap_or(0),
        lag_p99_us: crate::stats::plain_percentile(&merged.lags_us, 99.0),
        lag_max_us: merged.lags_us.last().copied().unwrap_or(0),
        late_requests: merged.lags_us.iter().filter(|lag| **lag > late).count() as u64,
        unsent: merged.unsent,
        cpu_us: u64::try_from(cpu.as_micros()).unwrap_or(u64::MAX),
    })
}

/// The orchestrator's side: runs the generator as a child process and reads its
/// report. The child is killed if this future is dropped.
pub async fn run_process(exe: &std::path::Path, spec: &LoadSpec) -> anyhow::Result<LoadReport> {
    let child = tokio::process::Command::new(exe)
        .arg("load")
        .env(SPEC_ENV, serde_json::to_string(spec)?)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("start the load generator")?;
    let output = child.wait_with_output().await?;
    anyhow::ensure!(
        output.status.success(),
        "the load generator failed ({})",
        output.status
    );
    serde_json::from_slice(&output.stdout).context("read the load generator's report")
}

/// Sequence lists travel as sorted `[start, end)` ranges: the requests a
/// generator that fell behind never sent are mostly consecutive, and can be
/// hundreds of thousands.
mod ranges {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sequences: &[u64], serializer: S) -> Result<S::Ok, S::Error> {
        let mut sorted = sequences.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for sequence in sorted {
            match ranges.last_mut() {
                Some((_, end)) if *end == sequence => *end += 1,
                _ => ranges.push((sequence, sequence + 1)),
            }
        }
        serializer.collect_seq(ranges)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
        let ranges = Vec::<(u64, u64)>::deserialize(deserializer)?;
        Ok(ranges
            .into_iter()
            .flat_map(|(start, end)| start..end)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(plan: Plan) -> LoadSpec {
        LoadSpec {
            tag: "p1".to_owned(),
            connections: 1,
            body_bytes: 1024,
            secret: "s".to_owned(),
            plan,
        }
    }

    #[test]
    fn webhooks_have_the_requested_size_and_are_json() {
        let order = spec(Plan::Open {
            url: String::new(),
            rate: 10,
            seconds: 1,
        });
        let entry = Entry {
            offset_us: 0,
            kind: Kind::Order,
            sequence: 12,
        };
        let (body, topic, id) = webhook(&order, entry, 1_700_000_000_000_000);
        assert_eq!(body.len(), 1024);
        assert_eq!((topic, id.as_str()), ("orders/create", "p1-12"));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["sent_at_us"], 1_700_000_000_000_000_u64);
        assert_eq!(json["order"], "p1-12");
    }

    #[test]
    fn sequence_lists_travel_as_ranges() {
        let report = KindReport {
            failed_sequences: vec![9, 1, 2, 3, 7],
            ..KindReport::default()
        };
        let json = serde_json::to_string(&report).unwrap();
        assert!(
            json.contains(r#""failed_sequences":[[1,4],[7,8],[9,10]]"#),
            "{json}"
        );
        let back: KindReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.failed_sequences, vec![1, 2, 3, 7, 9]);
    }

    #[test]
    fn carts_schedule_a_cancel_for_every_second_cart() {
        let plan = Plan::Carts {
            url: String::new(),
            rate: 100,
            seconds: 2,
            delay_us: 10_000_000,
            cancel_after_us: 5_000_000,
        };
        let entries = schedule(&plan);
        let carts = entries.iter().filter(|e| e.kind == Kind::Cart).count();
        let cancels: Vec<&Entry> = entries.iter().filter(|e| e.kind == Kind::Cancel).collect();
        assert_eq!((carts, cancels.len()), (200, 100));
        assert!(cancels.iter().all(|e| e.sequence % 2 == 0));
        assert!(entries.windows(2).all(|w| w[0].offset_us <= w[1].offset_us));
        let (body, topic, id) = webhook(&spec(plan), *cancels[0], 5);
        assert_eq!((topic, id.as_str()), ("orders/create", "p1-0-cancel"));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["checkout_token"], "p1-0");
    }
}
