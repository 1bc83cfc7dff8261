//! Per-route send rates that hold across every sender replica, and route-wide
//! slow-downs after a provider's 429.
//!
//! ## Rate limits (route setting `rate_limit`, messages per second)
//! Postgres keeps one row per route and wall-clock second (`route_rate_windows`,
//! keyed by Postgres' clock so replicas agree on the window). A replica that wants
//! to send *leases* a few tokens for the current second with one atomic upsert
//! that never lets `used` exceed the limit, and spends them locally; when its
//! lease is spent it leases again, and when the window is exhausted it waits for
//! the next one. So the sum of all replicas' sends started in any one second is
//! at most `rate_limit`, whatever the number of replicas (tokens a replica does
//! not spend before the second ends are lost: the limit errs on the slow side).
//! Leases are small (a twentieth of the limit, at least one) so that replicas
//! share a window fairly and a dying replica strands few tokens.
//!
//! ## Throttling (a 429 or the provider's equivalent)
//! The route is paused until the provider's `Retry-After` (else `DEFAULT_PAUSE`):
//! the replica that saw the 429 pauses at once and writes `route_pauses`; the
//! others read that table every `shared_state_poll`. While paused, no job of the
//! route calls the provider: jobs wait without using an attempt.
//!
//! ## Waiting jobs are paced, not polled
//! A job that finds no token is told when to come back: the next free slot of
//! the route, one slot per `1 / rate_limit` seconds after the window (or pause)
//! ends, so a backlog of N jobs comes back about `rate_limit` jobs a second
//! rather than all of them every second. An exhausted window is remembered until
//! it ends, so a job that must wait costs no Postgres round trip. The handler
//! parks jobs whose wait is long in Postgres (`held_jobs`) so that one account's
//! backlog never fills the consumer's ack-pending window that every account
//! shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sqlx::{PgPool, Row};
use tokio::time::Instant;

use crate::store::StoreError;

/// How long a route pauses after a 429 that did not say how long.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// Whether a call may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Go,
    /// Not before this long: the job's paced slot after the window or pause.
    Wait(Duration),
}

#[derive(Debug, Default)]
struct Lease {
    tokens: u32,
    /// When the window ends (local clock).
    window_ends: Option<Instant>,
    /// Every token of the window is taken (by some replica): no lease query
    /// until it ends.
    exhausted: bool,
    /// The next free slot for a job that has to wait (pacing), and the rate it
    /// was computed for.
    next_slot: Option<(Instant, u32)>,
}

impl Lease {
    /// How long a job that cannot go now waits: until its slot, the first free
    /// one from `ready` on (when the window or pause ends), each `1 / limit`
    /// seconds apart; the slot is taken.
    fn pace(&mut self, ready: Instant, limit: u32, now: Instant) -> Duration {
        let interval = Duration::from_secs(1) / limit.max(1);
        let slot = match self.next_slot {
            Some((next, paced_for)) if paced_for == limit && next > ready => next,
            _ => ready,
        };
        self.next_slot = Some((slot + interval, limit));
        // A little jitter, so that slots a replica hands out together do not
        // all land in the same instant.
        slot.saturating_duration_since(now) + jitter(interval.min(Duration::from_millis(50)))
    }
}

fn jitter(up_to: Duration) -> Duration {
    up_to.mul_f64(rand::random::<f64>())
}

/// Each route's lease, behind an async lock held across the lease query.
type Leases = HashMap<Arc<str>, Arc<tokio::sync::Mutex<Lease>>>;

/// Shared by all jobs of one sender process.
#[derive(Clone)]
pub struct RouteLimits {
    pool: PgPool,
    leases: Arc<Mutex<Leases>>,
    pauses: Arc<RwLock<HashMap<Arc<str>, Instant>>>,
}

const LEASE: &str = "INSERT INTO route_rate_windows AS w (route_key, window_start, used, last_grant) \
     SELECT $1, floor(n.t)::bigint, LEAST($2, $3), LEAST($2, $3) \
       FROM (SELECT extract(epoch from clock_timestamp())::float8 AS t) n \
     ON CONFLICT (route_key, window_start) DO UPDATE \
       SET last_grant = LEAST(w.used + $2, $3) - w.used, used = LEAST(w.used + $2, $3) \
     RETURNING window_start, last_grant, extract(epoch from clock_timestamp())::float8 AS now_epoch";

const PAUSE: &str = "INSERT INTO route_pauses (route_key, paused_until, reason) \
     VALUES ($1, clock_timestamp() + make_interval(secs => $2), $3) \
     ON CONFLICT (route_key) DO UPDATE \
       SET paused_until = GREATEST(route_pauses.paused_until, EXCLUDED.paused_until), reason = EXCLUDED.reason";

const ACTIVE_PAUSES: &str = "SELECT route_key, \
       extract(epoch from (paused_until - clock_timestamp()))::float8 AS seconds_left \
     FROM route_pauses WHERE paused_until > clock_timestamp()";

impl RouteLimits {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            leases: Arc::default(),
            pauses: Arc::default(),
        }
    }

    /// Whether a call on route `key` may start now and, if not, how long this
    /// job waits (its paced slot). `rate_limit`: the route's messages per
    /// second, if it has a limit.
    pub async fn acquire(
        &self,
        key: &Arc<str>,
        rate_limit: Option<u32>,
    ) -> Result<Permit, StoreError> {
        let limit = rate_limit.filter(|limit| *limit > 0);
        if let Some(left) = self.paused_for(key) {
            let Some(limit) = limit else {
                // No known rate to pace by: spread the comeback over a quarter of
                // the pause.
                return Ok(Permit::Wait(
                    left + jitter(left / 4 + Duration::from_millis(50)),
                ));
            };
            let now = Instant::now();
            let lease = self.lease_slot(key);
            let mut lease = lease.lock().await;
            return Ok(Permit::Wait(lease.pace(now + left, limit, now)));
        }
        let Some(limit) = limit else {
            return Ok(Permit::Go);
        };
        let lease = self.lease_slot(key);
        // One lease query per route at a time in this process; others wait here
        // and usually find tokens when they get the lock.
        let mut lease = lease.lock().await;
        let now = Instant::now();
        if let Some(ends) = lease.window_ends.filter(|ends| now < *ends) {
            if lease.tokens > 0 {
                lease.tokens -= 1;
                return Ok(Permit::Go);
            }
            if lease.exhausted {
                return Ok(Permit::Wait(lease.pace(ends, limit, now)));
            }
        }
        let want = (limit / 20).max(1);
        let row = sqlx::query(LEASE)
            .bind(key.as_ref())
            .bind(i32::try_from(want).unwrap_or(i32::MAX))
            .bind(i32::try_from(limit).unwrap_or(i32::MAX))
            .fetch_optional(&self.pool)
            .await?;
        let (granted, window_left) = match row {
            Some(row) => {
                let window: i64 = row.try_get("window_start")?;
                let granted: i32 = row.try_get("last_grant")?;
                let now_epoch: f64 = row.try_get("now_epoch")?;
                let left = ((window + 1) as f64 - now_epoch).clamp(0.0, 1.0);
                (granted, Duration::from_secs_f64(left))
            }
            // The upsert's WHERE-less update always returns a row; treat a missing
            // one as an exhausted window.
            None => (0, Duration::from_millis(100)),
        };
        // A few milliseconds past the window, so that Postgres' clock has moved
        // on to the next one too.
        let ends = now + window_left + Duration::from_millis(5);
        lease.window_ends = Some(ends);
        lease.exhausted = granted <= 0;
        if granted > 0 {
            lease.tokens = u32::try_from(granted - 1).unwrap_or(0);
            Ok(Permit::Go)
        } else {
            lease.tokens = 0;
            Ok(Permit::Wait(lease.pace(ends, limit, now)))
        }
    }

    fn lease_slot(&self, key: &Arc<str>) -> Arc<tokio::sync::Mutex<Lease>> {
        let mut leases = self
            .leases
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        leases.entry(key.clone()).or_default().clone()
    }

    /// How much longer route `key` is paused after a 429, if it is.
    pub fn paused_for(&self, key: &Arc<str>) -> Option<Duration> {
        let pauses = self
            .pauses
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        let until = *pauses.get(key)?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    /// Pauses route `key` for `duration` here at once and, through Postgres, on
    /// every replica.
    pub async fn pause(
        &self,
        key: &Arc<str>,
        duration: Duration,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.pause_locally(key, duration);
        sqlx::query(PAUSE)
            .bind(key.as_ref())
            .bind(duration.as_secs_f64())
            .bind(reason)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn pause_locally(&self, key: &Arc<str>, duration: Duration) {
        let until = Instant::now() + duration;
        let mut pauses = self
            .pauses
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let entry = pauses.entry(key.clone()).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }

    /// Reads the pauses other replicas set, and forgets expired ones.
    pub async fn refresh_pauses(&self) -> Result<(), StoreError> {
        let rows = sqlx::query(ACTIVE_PAUSES).fetch_all(&self.pool).await?;
        let now = Instant::now();
        {
            let mut pauses = self
                .pauses
                .write()
                .unwrap_or_else(|poison| poison.into_inner());
            pauses.retain(|_, until| *until > now);
        }
        for row in rows {
            let key: String = row.try_get("route_key")?;
            let seconds_left: f64 = row.try_get("seconds_left")?;
            if seconds_left > 0.0 {
                self.pause_locally(&Arc::from(key), Duration::from_secs_f64(seconds_left));
            }
        }
        Ok(())
    }

    /// Drops rate windows and pauses that are over (any replica may do it).
    pub async fn prune(&self) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM route_rate_windows \
             WHERE window_start < floor(extract(epoch from clock_timestamp()))::bigint - 60",
        )
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM route_pauses WHERE paused_until < clock_timestamp() - interval '1 minute'",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
