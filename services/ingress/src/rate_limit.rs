//! Per-source rate limits: a token bucket per source, in this replica's memory
//! (so a source's limit applies to each ingress replica; an operator divides by
//! the replica count). Refused requests get 429 with the seconds until a token is
//! free, so a well-behaved sender backs off instead of hammering.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Buckets untouched this long are dropped when the map grows, so deleted
/// sources do not linger.
const IDLE_BUCKET: Duration = Duration::from_secs(600);
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

impl RateLimiter {
    /// Takes a token for `source_id`, whose limit is `per_second` with bursts of
    /// `burst` (0: one second's worth). `Err` carries the whole seconds (at least
    /// 1) until a token is free. A `per_second` of 0 means no limit.
    pub fn check(
        &self,
        source_id: &str,
        per_second: u32,
        burst: u32,
        now: Instant,
    ) -> Result<(), u64> {
        if per_second == 0 {
            return Ok(());
        }
        let rate = f64::from(per_second);
        let capacity = f64::from(if burst == 0 { per_second } else { burst.max(1) });
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, bucket| now.duration_since(bucket.updated) < IDLE_BUCKET);
        }
        let bucket = buckets.entry(source_id.to_owned()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        // A lowered limit takes effect at once: the bucket never holds more than
        // the current capacity.
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait_seconds = ((1.0 - bucket.tokens) / rate).ceil();
        // At most one token a second is the slowest rate, so this is small.
        Err((wait_seconds as u64).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.check("s", 2, 5, start), Ok(()));
        }
        assert_eq!(limiter.check("s", 2, 5, start), Err(1));
        // Half a second later one token (2/s) is back.
        let later = start + Duration::from_millis(500);
        assert_eq!(limiter.check("s", 2, 5, later), Ok(()));
        assert_eq!(limiter.check("s", 2, 5, later), Err(1));
        // Other sources have their own bucket; unlimited sources are never refused.
        assert_eq!(limiter.check("other", 2, 0, start), Ok(()));
        for _ in 0..100 {
            assert_eq!(limiter.check("free", 0, 0, start), Ok(()));
        }
    }

    #[test]
    fn slow_limits_ask_for_a_longer_wait() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        assert_eq!(limiter.check("s", 1, 0, start), Ok(()));
        assert_eq!(limiter.check("s", 1, 0, start), Err(1));
        assert_eq!(
            limiter.check("s", 1, 0, start + Duration::from_secs(1)),
            Ok(())
        );
    }
}
