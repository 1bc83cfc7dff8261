//! Circuit breakers, one per provider route, local to this process: after
//! `threshold` consecutive definite failures (transient errors, provider-side
//! refusals such as bad credentials or no credit, timeouts) the route is skipped
//! for a while, so jobs fail over to the route's next provider at once instead
//! of each paying for a failing call. After that calls go through again
//! (half-open); the first failure re-opens it, a success closes it.
//!
//! The time open grows while the provider keeps failing: an eighth of `cooldown`
//! (at least a second) the first time, doubling at each re-opening, up to
//! `cooldown`. So a blip of a few seconds costs seconds, not the whole cooldown,
//! and a provider that stays down is tried only every `cooldown`.
//!
//! Local rather than shared: each replica learns about a failing provider from its
//! own calls within `threshold` jobs, and a network problem of one replica must
//! not open the breaker for all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Route settings `breaker_threshold` and `breaker_cooldown` override these.
pub const DEFAULT_THRESHOLD: u32 = 5;
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    pub threshold: u32,
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            cooldown: DEFAULT_COOLDOWN,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    /// Times opened since the last success.
    openings: u32,
}

/// How long the breaker stays open at its `openings`-th opening (1-based).
fn open_time(cooldown: Duration, openings: u32) -> Duration {
    let first = (cooldown / 8).max(Duration::from_secs(1)).min(cooldown);
    first
        .saturating_mul(1 << openings.saturating_sub(1).min(16))
        .min(cooldown)
}

#[derive(Clone, Default)]
pub struct Breakers {
    states: Arc<Mutex<HashMap<Arc<str>, State>>>,
}

impl Breakers {
    /// `None` when calls may go through; else how long the breaker stays open.
    pub fn open_for(&self, key: &Arc<str>) -> Option<Duration> {
        let states = self
            .states
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let until = states.get(key)?.open_until?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    pub fn success(&self, key: &Arc<str>) {
        let mut states = self
            .states
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(state) = states.get_mut(key) {
            state.consecutive_failures = 0;
            state.open_until = None;
            state.openings = 0;
        }
    }

    /// Counts a definite failure; returns true when this opened the breaker.
    pub fn failure(&self, key: &Arc<str>, settings: BreakerSettings) -> bool {
        let mut states = self
            .states
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let state = states.entry(key.clone()).or_default();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        if state.consecutive_failures >= settings.threshold.max(1) {
            let was_closed = state.open_until.is_none_or(|until| until <= Instant::now());
            if was_closed {
                state.openings = state.openings.saturating_add(1);
            }
            state.open_until = Some(Instant::now() + open_time(settings.cooldown, state.openings));
            return was_closed;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_after_the_threshold_and_closes_on_success() {
        let breakers = Breakers::default();
        let key: Arc<str> = Arc::from("a/primary");
        let settings = BreakerSettings {
            threshold: 3,
            cooldown: Duration::from_secs(60),
        };
        assert!(!breakers.failure(&key, settings));
        assert!(!breakers.failure(&key, settings));
        assert_eq!(breakers.open_for(&key), None);
        assert!(breakers.failure(&key, settings));
        assert!(breakers.open_for(&key).is_some());
        breakers.success(&key);
        assert_eq!(breakers.open_for(&key), None);
    }

    #[test]
    fn the_time_open_grows_from_an_eighth_of_the_cooldown() {
        let cooldown = Duration::from_secs(30);
        let times: Vec<f64> = (1..=6)
            .map(|openings| open_time(cooldown, openings).as_secs_f64())
            .collect();
        assert_eq!(times, [3.75, 7.5, 15.0, 30.0, 30.0, 30.0]);
        // At least a second, never more than the cooldown.
        assert_eq!(open_time(Duration::from_secs(4), 1), Duration::from_secs(1));
        assert_eq!(
            open_time(Duration::from_millis(500), 1),
            Duration::from_millis(500)
        );
        assert_eq!(open_time(Duration::ZERO, 3), Duration::ZERO);
        assert_eq!(open_time(cooldown, u32::MAX), cooldown);
    }

    #[tokio::test(start_paused = true)]
    async fn a_breaker_that_reopens_stays_open_longer() {
        let breakers = Breakers::default();
        let key: Arc<str> = Arc::from("a/primary");
        let settings = BreakerSettings {
            threshold: 1,
            cooldown: Duration::from_secs(40),
        };
        assert!(breakers.failure(&key, settings));
        assert_eq!(breakers.open_for(&key), Some(Duration::from_secs(5)));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(breakers.open_for(&key), None, "half-open");
        assert!(breakers.failure(&key, settings), "re-opened");
        assert_eq!(breakers.open_for(&key), Some(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(10)).await;
        breakers.success(&key);
        assert!(breakers.failure(&key, settings));
        assert_eq!(
            breakers.open_for(&key),
            Some(Duration::from_secs(5)),
            "a success starts over"
        );
    }

    #[tokio::test]
    async fn half_open_after_the_cooldown_reopens_on_failure() {
        let breakers = Breakers::default();
        let key: Arc<str> = Arc::from("a/primary");
        let settings = BreakerSettings {
            threshold: 1,
            cooldown: Duration::ZERO,
        };
        assert!(breakers.failure(&key, settings));
        // A zero cooldown is over at once: calls go through (half-open).
        assert_eq!(breakers.open_for(&key), None);
        let settings = BreakerSettings {
            threshold: 1,
            cooldown: Duration::from_secs(60),
        };
        assert!(breakers.failure(&key, settings));
        assert!(breakers.open_for(&key).is_some());
    }
}
