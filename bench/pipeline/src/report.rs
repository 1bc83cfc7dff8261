//! What the benchmark prints: a block per phase as it finishes, then one table per
//! mode, CPU per delivered SMS and the exactly-once check.

use std::time::Duration;

use crate::phases::{PhaseResult, WalWritten};
use crate::stats::{duration_us, rate};

/// Process columns of the CPU table, in order.
const CPU_COLUMNS: [&str; 10] = [
    "ingress",
    "rules",
    "sender",
    "control",
    "bare pipe",
    "floor pipe",
    "nats-server",
    "postgres",
    "fake provider",
    "load generator",
];

fn seconds_between(from_us: u64, to_us: u64) -> f64 {
    to_us.saturating_sub(from_us) as f64 / 1e6
}

/// SMS/s from the first arrival to the last.
pub fn first_to_last_rate(result: &PhaseResult) -> String {
    let count = result.delivered + result.delivered_of_failed + result.delivered_cancelled;
    if count < 2 {
        return "-".to_owned();
    }
    rate(
        count - 1,
        seconds_between(result.first_arrival_us, result.last_arrival_us),
    )
}

pub fn delivered_during_load_rate(result: &PhaseResult) -> f64 {
    result.delivered_during_load as f64 / result.load_seconds().max(1e-9)
}

fn drained(result: &PhaseResult, wait: Duration) -> String {
    match result.drained_after {
        Some(after) => format!("in {}", duration_us(after.as_micros() as u64)),
        None => format!(
            "NOT within {}s: {} missing",
            wait.as_secs(),
            result.expected.saturating_sub(result.delivered)
        ),
    }
}

fn stage_backlog(result: &PhaseResult) -> String {
    let backlog = result.stage_backlog;
    let show = |value: Option<u64>| value.map_or("?".to_owned(), |value| value.to_string());
    match (backlog.events_for_rules, backlog.jobs_for_sender) {
        (None, None) => String::new(),
        (events, jobs) => format!(
            " (unacked when the load ended: {} events at rules, {} jobs at the sender)",
            show(events),
            show(jobs)
        ),
    }
}

/// CPU per delivered SMS of one process, µs; `None` when it is not in the phase.
fn cpu_per_sms(result: &PhaseResult, label: &str) -> Option<f64> {
    let delivered = result.sms_for_costs();
    result
        .cpu
        .iter()
        .find(|(name, _)| name == label)
        .map(|(_, cpu)| cpu.as_micros() as f64 / delivered)
}

fn cpu_total(result: &PhaseResult) -> Duration {
    result.cpu.iter().map(|(_, cpu)| *cpu).sum()
}

/// Printed as soon as a phase ends.
#[allow(clippy::too_many_lines, reason = "one printed report, line by line")]
pub fn print_phase(result: &PhaseResult, wait: Duration) {
    let load = &result.load;
    let carts = load.kinds.contains_key("cart");
    let trigger = load.kind(if carts { "cart" } else { "order" });
    println!(
        "\n--- {} on {} (set up in {:.1} s)",
        result.label,
        result.pipeline,
        result.setup.as_secs_f64()
    );
    println!(
        "  webhooks    {} accepted ({:.0}/s), {} failed{}; answered p50 {} p99 {} max {}",
        trigger.accepted,
        trigger.accepted_per_second(),
        trigger.failed,
        if trigger.failures.is_empty() {
            String::new()
        } else {
            format!(" {:?}", trigger.failures)
        },
        duration_us(load.answer_p50_us),
        duration_us(load.answer_p99_us),
        duration_us(load.answer_max_us),
    );
    if carts {
        let cancel = load.kind("cancel");
        println!(
            "  cancels     {} accepted ({:.0}/s), {} failed",
            cancel.accepted,
            cancel.accepted_per_second(),
            cancel.failed
        );
    }
    if load.lag_max_us > 0 || load.unsent > 0 {
        let behind = if load.kept_schedule() {
            ""
        } else {
            "\n              << the generator fell behind its schedule: no free connection (answers slower than the connections allow) or no CPU; latencies still count from the intended times"
        };
        println!(
            "  schedule    sent late p99 {} max {}, {} sent >10 ms late, {} never sent{behind}",
            duration_us(load.lag_p99_us),
            duration_us(load.lag_max_us),
            load.late_requests,
            load.unsent,
        );
    }
    if carts {
        println!(
            "  sent        {} SMS ({}/s first to last){}",
            result.delivered,
            first_to_last_rate(result),
            stage_backlog(result),
        );
    } else {
        println!(
            "  delivered   {} during the load ({:.0}/s), {} in all ({}/s first to last); backlog at the end of the load {}{}",
            result.delivered_during_load,
            delivered_during_load_rate(result),
            result.delivered,
            first_to_last_rate(result),
            result.backlog_at_load_end(),
            stage_backlog(result),
        );
    }
    println!(
        "  {} p50 {} p90 {} p99 {} max {}; drained {}",
        if carts { "lateness  " } else { "end to end" },
        result.latencies.percentile(50.0),
        result.latencies.percentile(90.0),
        result.latencies.percentile(99.0),
        result.latencies.max(),
        drained(result, wait),
    );
    if let Some(spread) = &result.by_second {
        println!(
            "  by second   p99 of each of {} seconds: best {}, median {}, worst {} (second {}); every SMS in arrivals.tsv",
            spread.seconds,
            duration_us(spread.best_us),
            duration_us(spread.median_us),
            duration_us(spread.worst_us),
            spread.worst_second,
        );
    }
    println!("  exactly once: {}", exactly_once_text(result));
    if let Some(states) = &result.job_states {
        println!("  scheduled_jobs in Postgres: {states}");
    }
    if !result.stages.is_empty() {
        let stages: Vec<String> = result
            .stages
            .iter()
            .map(|stage| {
                format!(
                    "{} {}/{}",
                    stage.stage,
                    duration_us(stage.p50_us),
                    duration_us(stage.p99_us)
                )
            })
            .collect();
        println!("  stages p50/p99  {}", stages.join("; "));
    }
    for sample in &result.samples {
        println!("    e.g. {sample}");
    }
    let busy = cpu_total(result).as_secs_f64() / result.window.as_secs_f64().max(1e-9);
    let parts: Vec<String> = result
        .cpu
        .iter()
        .map(|(label, _)| format!("{label} {:.0}", cpu_per_sms(result, label).unwrap_or(0.0)))
        .collect();
    println!(
        "  cpu/SMS us  {} (window {:.1} s, {busy:.2} cores busy)",
        parts.join(", "),
        result.window.as_secs_f64()
    );
    if !result.peak_memory.is_empty() {
        let peaks: Vec<String> = result
            .peak_memory
            .iter()
            .map(|(label, bytes)| format!("{label} {:.0} MB", *bytes as f64 / 1e6))
            .collect();
        println!("  peak memory {} (resident)", peaks.join(", "));
    }
    let idle: Vec<String> = result
        .idle_cores
        .iter()
        .filter(|(_, cores)| *cores >= 0.005)
        .map(|(label, cores)| format!("{label} {cores:.2}"))
        .collect();
    println!(
        "  at rest     cores busy in the second before the load: {}",
        if idle.is_empty() {
            "none".to_owned()
        } else {
            idle.join(", ")
        }
    );
}

fn exactly_once_text(result: &PhaseResult) -> String {
    let mut text = format!(
        "{} expected, {} delivered, {} duplicates, {} of cancelled carts, {} unknown ids",
        result.expected,
        result.delivered,
        result.duplicates,
        result.delivered_cancelled,
        result.delivered_unknown,
    );
    if result.delivered_of_failed > 0 {
        text.push_str(&format!(
            ", {} of requests that failed (stored, answer lost)",
            result.delivered_of_failed
        ));
    }
    if result.unreadable > 0 {
        text.push_str(&format!(
            ", {} unreadable provider calls",
            result.unreadable
        ));
    }
    let verdict = if result.exactly_once() {
        "ok"
    } else if result.duplicates > 0
        || result.delivered_cancelled > 0
        || result.delivered_unknown > 0
    {
        "VIOLATED"
    } else {
        "INCOMPLETE (not all delivered within the wait)"
    };
    format!("{text}: {verdict}")
}

fn percentile_cells(result: &PhaseResult, percentiles: &[f64]) -> String {
    let mut cells: Vec<String> = percentiles
        .iter()
        .map(|p| format!("{:>9}", result.latencies.percentile(*p)))
        .collect();
    cells.push(format!("{:>9}", result.latencies.max()));
    cells.join(" ")
}

/// The tables at the end.
pub fn print_summary(results: &[PhaseResult], wait: Duration) {
    let closed: Vec<&PhaseResult> = results
        .iter()
        .filter(|r| r.label.starts_with("closed"))
        .collect();
    if !closed.is_empty() {
        println!("\n== closed loop");
        println!(
            "{:<10} {:>10} {:>12} {:>11} {:>8} {:>9} {:>9} {:>9} {:>9}  drained",
            "", "accepted/s", "delivered/s", "first-last", "backlog", "p50", "p90", "p99", "max"
        );
        for result in &closed {
            println!(
                "{:<10} {:>10} {:>12.0} {:>11} {:>8} {}  {}",
                result.pipeline,
                format!("{:.0}", result.load.kind("order").accepted_per_second()),
                delivered_during_load_rate(result),
                first_to_last_rate(result),
                result.backlog_at_load_end(),
                percentile_cells(result, &[50.0, 90.0, 99.0]),
                drained(result, wait),
            );
        }
        print_ratio(&closed);
    }

    let open: Vec<&PhaseResult> = results
        .iter()
        .filter(|r| r.label.starts_with("open"))
        .collect();
    if !open.is_empty() {
        println!("\n== open loop (latency from each webhook's intended send time)");
        println!(
            "{:<10} {:>7} {:>10} {:>8} {:>9} {:>9} {:>9} {:>8}  drained",
            "", "rate", "accepted/s", "late", "p50", "p99", "max", "backlog"
        );
        for result in &open {
            let late = result.load.late_requests + result.load.unsent;
            println!(
                "{:<10} {:>7} {:>10} {:>8} {} {:>8}  {}",
                result.pipeline,
                result.label.trim_start_matches("open loop "),
                format!("{:.0}", result.load.kind("order").accepted_per_second()),
                late,
                percentile_cells(result, &[50.0, 99.0]),
                result.backlog_at_load_end(),
                drained(result, wait),
            );
        }
        println!("(late: requests the generator sent >10 ms after their time or never sent)");
    }

    for result in results.iter().filter(|r| r.label.starts_with("delayed")) {
        let load = &result.load;
        println!("\n== delayed jobs (abandoned carts; lateness against the due time)");
        println!(
            "scheduled/s {:.0}  cancelled/s {:.0}  sent/s {}  lateness p50 {} p99 {} max {}  cancelled carts sent {}  early {}",
            load.kind("cart").accepted_per_second(),
            load.kind("cancel").accepted_per_second(),
            first_to_last_rate(result),
            result.latencies.percentile(50.0),
            result.latencies.percentile(99.0),
            result.latencies.max(),
            result.delivered_cancelled,
            result.early,
        );
    }

    print_stages(results);

    print_cpu(results);
    print_wal(results);

    println!("\n== exactly once");
    for result in results {
        println!(
            "{:<22} {}",
            format!("{} {}", short_label(&result.label), result.pipeline),
            exactly_once_text(result)
        );
    }
}

/// CPU per delivered SMS of every process, one row per phase.
fn print_cpu(results: &[PhaseResult]) {
    println!("\n== CPU per delivered SMS (us)");
    let mut header = format!("{:<22}", "");
    for column in CPU_COLUMNS {
        header.push_str(&format!(" {:>9}", short(column)));
    }
    println!("{header} {:>7} {:>7}", "total", "cores");
    for result in results {
        let mut row = format!(
            "{:<22}",
            format!("{} {}", short_label(&result.label), result.pipeline)
        );
        for column in CPU_COLUMNS {
            match cpu_per_sms(result, column) {
                Some(value) => row.push_str(&format!(" {value:>9.0}")),
                None => row.push_str(&format!(" {:>9}", "-")),
            }
        }
        let delivered = result.sms_for_costs();
        let busy = cpu_total(result).as_secs_f64() / result.window.as_secs_f64().max(1e-9);
        println!(
            "{row} {:>7.0} {busy:>7.2}",
            cpu_total(result).as_micros() as f64 / delivered
        );
    }
    println!(
        "(over each phase's window, load start to end of drain; postgres: the phase's database's backends and the server's own processes; nats-server: all of it, shared with anything else using it)"
    );
}

/// What PostgreSQL wrote to its write-ahead log per delivered SMS, for each
/// phase whose pipeline has a database: the log is what every durable write
/// costs in full (each row and index entry is a record; a page's first change
/// after a checkpoint copies the whole page).
fn print_wal(results: &[PhaseResult]) {
    let with_wal: Vec<(&PhaseResult, WalWritten)> = results
        .iter()
        .filter_map(|result| Some((result, result.wal?)))
        .collect();
    if with_wal.is_empty() {
        return;
    }
    println!("\n== PostgreSQL write-ahead log per delivered SMS");
    println!(
        "{:<22} {:>9} {:>11} {:>9}",
        "", "records", "full pages", "bytes"
    );
    for (result, wal) in with_wal {
        let delivered = result.sms_for_costs();
        println!(
            "{:<22} {:>9.1} {:>11.2} {:>9.0}",
            format!("{} {}", short_label(&result.label), result.pipeline),
            wal.records as f64 / delivered,
            wal.full_page_images as f64 / delivered,
            wal.bytes as f64 / delivered,
        );
    }
    println!(
        "(pg_stat_wal over each phase's window: the whole server's log, which only the phase's pipeline writes to meanwhile)"
    );
}

/// Each Foco phase's stage percentiles, one column per stage.
fn print_stages(results: &[PhaseResult]) {
    let foco: Vec<&PhaseResult> = results.iter().filter(|r| !r.stages.is_empty()).collect();
    if foco.is_empty() {
        return;
    }
    println!("\n== where the time goes (Foco's stage histograms, p50 / p99)");
    let mut header = format!("{:<22}", "");
    for (_, _, stage) in crate::stages::STAGES {
        header.push_str(&format!(" {stage:>33}"));
    }
    println!("{header}");
    for result in foco {
        let mut row = format!("{:<22}", short_label(&result.label));
        for (_, _, stage) in crate::stages::STAGES {
            let cell = result
                .stages
                .iter()
                .find(|latency| latency.stage == stage)
                .map_or("-".to_owned(), |latency| {
                    format!(
                        "{} / {}",
                        duration_us(latency.p50_us),
                        duration_us(latency.p99_us)
                    )
                });
            row.push_str(&format!(" {cell:>33}"));
        }
        println!("{row}");
    }
    println!("(from bucket counts: placed within a factor of two, not exact)");
}

/// Delivered SMS/s of `of` over `to`'s: during the load, and first to last.
fn ratios(of: &PhaseResult, to: &PhaseResult) -> (f64, f64) {
    let rate_of = |result: &PhaseResult| {
        let count = result.delivered.saturating_sub(1) as f64;
        count / seconds_between(result.first_arrival_us, result.last_arrival_us).max(1e-9)
    };
    (
        delivered_during_load_rate(of) / delivered_during_load_rate(to).max(1e-9),
        rate_of(of) / rate_of(to).max(1e-9),
    )
}

fn print_ratio(closed: &[&PhaseResult]) {
    let find = |name: &str| closed.iter().find(|r| r.pipeline == name).copied();
    let (foco, bare, floor) = (find("foco"), find("bare pipe"), find("floor pipe"));
    if let (Some(foco), Some(bare)) = (foco, bare) {
        let (during, first_to_last) = ratios(foco, bare);
        println!(
            "ratio foco / bare pipe, delivered SMS/s: {during:.2} during the load, {first_to_last:.2} first to last (target >= 0.5)"
        );
    }
    if let (Some(floor), Some(bare)) = (floor, bare) {
        let (during, first_to_last) = ratios(floor, bare);
        println!(
            "ratio floor pipe / bare pipe: {during:.2} during the load, {first_to_last:.2} first to last (what Foco's promises leave of the bare pipe with no code of Foco's)"
        );
    }
    if let (Some(foco), Some(floor)) = (foco, floor) {
        let (during, first_to_last) = ratios(foco, floor);
        println!(
            "ratio foco / floor pipe: {during:.2} during the load, {first_to_last:.2} first to last (what Foco's own code leaves of the floor)"
        );
    }
    if let (Some(foco), Some(bare)) = (foco, bare)
        && let Some(budget) = Budget::of(foco, bare)
    {
        budget.print();
    }
}

/// What half the bare pipe's rate allows Foco's CPU per SMS, from one run's
/// CPU table: both loops saturate the same cores, so their rates stand in the
/// inverse ratio of their CPU per SMS.
#[derive(Debug, PartialEq)]
struct Budget {
    /// The bare pipe's CPU per SMS, all processes.
    bare_total: f64,
    /// The bare pipe's own process.
    bare_process: f64,
    /// Foco's nats-server, PostgreSQL, fake provider and load generator.
    foco_shared: f64,
    /// Foco's four services.
    foco_services: f64,
}

/// Processes that are not a pipeline's own code.
const SUPPORT: [&str; 4] = ["nats-server", "postgres", "fake provider", "load generator"];
const SERVICES: [&str; 4] = ["ingress", "rules", "sender", "control"];

impl Budget {
    fn of(foco: &PhaseResult, bare: &PhaseResult) -> Option<Self> {
        let sum = |result: &PhaseResult, labels: &[&str]| -> Option<f64> {
            labels.iter().map(|label| cpu_per_sms(result, label)).sum()
        };
        let bare_process = cpu_per_sms(bare, "bare pipe")?;
        Some(Self {
            bare_total: bare_process + sum(bare, &SUPPORT)?,
            bare_process,
            foco_shared: sum(foco, &SUPPORT)?,
            foco_services: sum(foco, &SERVICES)?,
        })
    }

    /// Foco's rate over the bare pipe's, were its four services together as
    /// cheap as the bare pipe's one process.
    fn ratio_at_bare_process_cost(&self) -> f64 {
        self.bare_total / (self.foco_shared + self.bare_process).max(1e-9)
    }

    fn print(&self) {
        let allowed = 2.0 * self.bare_total;
        println!(
            "what 0.5 takes, CPU per SMS: Foco may spend {allowed:.0} us (twice the bare pipe's {:.0}); nats-server, postgres, fake provider and load generator took {:.0} of it, leaving {:.0} for ingress, rules, sender and control, which spent {:.0} (the bare pipe's own process: {:.0}); were they as cheap as that process, the ratio would be {:.2}",
            self.bare_total,
            self.foco_shared,
            allowed - self.foco_shared,
            self.foco_services,
            self.bare_process,
            self.ratio_at_bare_process_cost(),
        );
    }
}

fn short(column: &str) -> &str {
    match column {
        "fake provider" => "fake",
        "load generator" => "loadgen",
        "nats-server" => "nats",
        "bare pipe" => "bare",
        "floor pipe" => "floor",
        other => other,
    }
}

fn short_label(label: &str) -> String {
    label
        .replace(" loop", "")
        .replace("delayed jobs", "delayed")
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn the_ratio_at_bare_process_cost_swaps_foco_services_for_the_bare_process() {
        // Bare pipe: 70 in its process, 110 in support processes. Foco: 260
        // in support processes; with services costing 70 it would spend 330
        // per SMS against the bare pipe's 180.
        let budget = Budget {
            bare_total: 180.0,
            bare_process: 70.0,
            foco_shared: 260.0,
            foco_services: 230.0,
        };
        let ratio = budget.ratio_at_bare_process_cost();
        assert!((ratio - 180.0 / 330.0).abs() < 1e-9, "{ratio}");
    }
}
