//! Latency of the pipeline's stages, as Prometheus histograms: how long an event
//! or job waited for its stage (from the time the previous stage stamped on it)
//! and how long the stage took. Read together, they say where a webhook's time
//! to SMS goes: `foco_rules_event_wait_seconds`, `foco_rules_event_handling_seconds`,
//! `foco_sender_job_wait_seconds`, `foco_sender_job_handling_seconds`.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Buckets from 0.5 ms to about 33 s, doubling: a loopback hop to a backlog
/// an operator must act on.
pub fn histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 17))
}

/// Seconds from `unix_ms` (a time stamped by another process) until now;
/// `None` when it is unset (0) or in the future (clocks apart).
pub fn seconds_since_unix_ms(unix_ms: i64) -> Option<f64> {
    if unix_ms <= 0 {
        return None;
    }
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|elapsed| i64::try_from(elapsed.as_micros()).ok())?;
    let elapsed_us = now_us.checked_sub(unix_ms.checked_mul(1_000)?)?;
    (elapsed_us >= 0).then(|| elapsed_us as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::seconds_since_unix_ms;

    #[test]
    fn age_of_a_stamp() {
        assert_eq!(seconds_since_unix_ms(0), None);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert_eq!(seconds_since_unix_ms(now_ms + 60_000), None, "future");
        let age = seconds_since_unix_ms(now_ms - 2_000).unwrap();
        assert!((2.0..3.0).contains(&age), "{age}");
    }
}
