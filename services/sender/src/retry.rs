//! When to try a transiently failed job again: exponential backoff with jitter by
//! attempt, never earlier than the provider's `Retry-After`. The delay travels as a
//! delayed `nak` (a plain `nak` would ignore any backoff).

use std::time::{Duration, SystemTime};

/// First retry delay; doubles per attempt.
const BASE_DELAY: Duration = Duration::from_secs(1);
/// Longest backoff between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// A provider asking for more than this is honoured only up to this: the job is
/// retried (and may be deferred again), rather than parked for days in the stream.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// Backoff after the `attempt`-th failed call (1-based): 1 s, 2 s, 4 s, … capped at
/// five minutes, each scaled by a random factor in [0.8, 1.2) so that jobs that
/// failed together do not come back together.
pub fn backoff(attempt: u32) -> Duration {
    backoff_with_jitter(attempt, rand::random::<f64>())
}

/// `unit` in [0, 1) picks the jitter; split out so bounds are testable.
pub fn backoff_with_jitter(attempt: u32, unit: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let nominal = BASE_DELAY.saturating_mul(1 << exponent).min(MAX_BACKOFF);
    let factor = 0.8 + 0.4 * unit.clamp(0.0, 1.0);
    nominal.mul_f64(factor).min(MAX_BACKOFF)
}

/// The delay before the next attempt: the backoff, or the provider's `Retry-After`
/// when that is longer.
pub fn next_delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let backoff = backoff(attempt);
    match retry_after {
        Some(wanted) => backoff.max(wanted.min(MAX_RETRY_AFTER)),
        None => backoff,
    }
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date (a date in the past
/// means "now").
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|byte| byte.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_bounds() {
        for (attempt, nominal) in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (8, 128.0)] {
            let low = backoff_with_jitter(attempt, 0.0).as_secs_f64();
            let high = backoff_with_jitter(attempt, 0.999_999).as_secs_f64();
            assert!(
                (low - nominal * 0.8).abs() < 1e-6,
                "attempt {attempt}: {low}"
            );
            assert!(
                high < nominal * 1.2 && high > nominal * 1.19,
                "attempt {attempt}: {high}"
            );
        }
    }

    #[test]
    fn backoff_is_capped_at_five_minutes() {
        for attempt in [10, 11, 30, u32::MAX] {
            for unit in [0.0, 0.5, 0.999] {
                let delay = backoff_with_jitter(attempt, unit);
                assert!(delay <= MAX_BACKOFF, "attempt {attempt}: {delay:?}");
                assert!(
                    delay >= MAX_BACKOFF.mul_f64(0.8),
                    "attempt {attempt}: {delay:?}"
                );
            }
        }
        assert!(backoff_with_jitter(0, 0.0) >= Duration::from_millis(800));
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let delay = next_delay(1, Some(Duration::from_secs(30)));
        assert_eq!(delay, Duration::from_secs(30));
        let delay = next_delay(1, Some(Duration::from_millis(1)));
        assert!(delay >= Duration::from_millis(800));
        let delay = next_delay(1, Some(Duration::from_secs(86_400)));
        assert_eq!(delay, MAX_RETRY_AFTER);
    }

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }
}
