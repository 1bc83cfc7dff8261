//! Where the time goes: the services' stage histograms (`foco_runtime::latency`,
//! and ingress's publish time), read from their `/metrics` before and after a
//! phase's load, and summarised as percentiles per stage. Percentiles come from
//! the buckets (doubling widths), interpolated within a bucket: they place the
//! time, they are not exact like the end-to-end figures.

use std::collections::BTreeMap;

/// Each stage: (service, histogram, what the report calls it).
pub const STAGES: [(&str, &str, &str); 6] = [
    (
        "ingress",
        "foco_ingress_publish_duration_seconds",
        "ingress: store event",
    ),
    ("rules", "foco_rules_event_wait_seconds", "rules: wait"),
    (
        "rules",
        "foco_rules_event_handling_seconds",
        "rules: evaluate, store, publish",
    ),
    (
        "rules",
        "foco_rules_scheduled_release_lateness_seconds",
        "rules: release after due",
    ),
    ("sender", "foco_sender_job_wait_seconds", "sender: wait"),
    (
        "sender",
        "foco_sender_job_handling_seconds",
        "sender: claim, call, record",
    ),
];

/// Cumulative bucket counts of every histogram in a scrape: name → (le, count).
pub type Snapshot = BTreeMap<String, Vec<(f64, u64)>>;

/// One stage's observations during the phase.
#[derive(Debug, Clone)]
pub struct StageLatency {
    pub stage: &'static str,
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Reads the `_bucket` lines of a Prometheus text exposition, summing series
/// of the same histogram (labelled families such as ingress's outcomes).
pub fn parse(text: &str) -> Snapshot {
    let mut snapshot: Snapshot = BTreeMap::new();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some((name, labels)) = series.split_once("_bucket{") else {
            continue;
        };
        let Some(le) = labels
            .split(',')
            .find_map(|label| label.trim_end_matches('}').strip_prefix("le=\""))
            .map(|le| le.trim_end_matches('"'))
        else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            match le.parse::<f64>() {
                Ok(le) => le,
                Err(_) => continue,
            }
        };
        let Ok(count) = value.parse::<f64>() else {
            continue;
        };
        let buckets = snapshot.entry(name.to_owned()).or_default();
        match buckets.iter_mut().find(|(bound, _)| *bound == le) {
            Some((_, total)) => *total += count as u64,
            None => buckets.push((le, count as u64)),
        }
    }
    for buckets in snapshot.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    snapshot
}

/// The stage's observations between `before` and `after`.
pub fn between(
    stage: &'static str,
    name: &str,
    before: &Snapshot,
    after: &Snapshot,
) -> Option<StageLatency> {
    let after = after.get(name)?;
    let empty = Vec::new();
    let before = before.get(name).unwrap_or(&empty);
    let buckets: Vec<(f64, u64)> = after
        .iter()
        .map(|(le, count)| {
            let earlier = before
                .iter()
                .find(|(bound, _)| bound == le)
                .map_or(0, |(_, count)| *count);
            (*le, count.saturating_sub(earlier))
        })
        .collect();
    let count = buckets.last().map_or(0, |(_, count)| *count);
    (count > 0).then(|| StageLatency {
        stage,
        count,
        p50_us: quantile(&buckets, 0.50),
        p99_us: quantile(&buckets, 0.99),
    })
}

/// The `q` quantile of cumulative buckets, µs, interpolated linearly within
/// its bucket (the last finite bound when it falls in `+Inf`).
fn quantile(buckets: &[(f64, u64)], q: f64) -> u64 {
    let total = buckets.last().map_or(0, |(_, count)| *count) as f64;
    let rank = q * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for (le, count) in buckets {
        let count = *count as f64;
        if count >= rank {
            if le.is_infinite() {
                return (lower_bound * 1e6) as u64;
            }
            let share = if count > lower_count {
                (rank - lower_count) / (count - lower_count)
            } else {
                0.0
            };
            return ((lower_bound + (le - lower_bound) * share) * 1e6) as u64;
        }
        lower_bound = *le;
        lower_count = count;
    }
    (lower_bound * 1e6) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
# TYPE foco_rules_event_wait_seconds histogram
foco_rules_event_wait_seconds_bucket{le=\"0.001\"} 10
foco_rules_event_wait_seconds_bucket{le=\"0.002\"} 10
foco_rules_event_wait_seconds_bucket{le=\"+Inf\"} 10
";
    const AFTER: &str = "\
foco_rules_event_wait_seconds_bucket{le=\"0.001\"} 60
foco_rules_event_wait_seconds_bucket{le=\"0.002\"} 109
foco_rules_event_wait_seconds_bucket{le=\"+Inf\"} 110
";

    #[test]
    fn percentiles_of_the_phase_only() {
        let stage = between(
            "wait",
            "foco_rules_event_wait_seconds",
            &parse(BEFORE),
            &parse(AFTER),
        )
        .unwrap();
        assert_eq!(stage.count, 100);
        assert_eq!(stage.p50_us, 1_000);
        assert_eq!(stage.p99_us, 2_000);
    }

    #[test]
    fn labelled_series_are_summed() {
        let text = "\
x_bucket{outcome=\"a\",le=\"0.5\"} 1
x_bucket{outcome=\"b\",le=\"0.5\"} 2
x_bucket{outcome=\"a\",le=\"+Inf\"} 1
x_bucket{outcome=\"b\",le=\"+Inf\"} 3
";
        let snapshot = parse(text);
        assert_eq!(snapshot["x"], vec![(0.5, 3), (f64::INFINITY, 4)]);
    }
}
