//! Work that waits in Postgres, as Prometheus gauges: delayed jobs pending in
//! `scheduled_jobs` (and those overdue: due, not yet published by a rules
//! scheduler), and dead letters nobody has retried yet.
//!
//! A background task reads them with one statement every `interval`, however
//! often and by however many scrapers `/metrics` is read. Each part of the
//! statement is an index-only scan of a partial index (`scheduled_jobs_due` or
//! `scheduled_jobs_key`, `dead_letters_waiting`); the overdue and dead-letter
//! parts are bounded by what is late, the pending count by what is scheduled
//! (about 20 ms for 200,000 pending jobs). The gauges are global, never per account
//! (one series each, whatever the number of accounts); the API lists the jobs
//! and dead letters of an account. Every control replica reports the same
//! numbers: alerts take the max.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Ages are 0 when nothing is overdue (or dead-lettered), so that `> threshold`
/// alerts need no `absent()`.
const BACKLOG_QUERY: &str = "SELECT \
       (SELECT count(*) FROM scheduled_jobs WHERE state = 'pending') AS scheduled_pending, \
       (SELECT count(*) FROM scheduled_jobs WHERE state = 'pending' AND due_at <= now()) AS scheduled_overdue, \
       (SELECT coalesce(extract(epoch FROM now() - min(due_at))::float8, 0) \
          FROM scheduled_jobs WHERE state = 'pending' AND due_at <= now()) AS scheduled_overdue_age, \
       (SELECT count(*) FROM dead_letters WHERE retried_at IS NULL) AS dead_letters, \
       (SELECT coalesce(extract(epoch FROM now() - min(dead_lettered_at))::float8, 0) \
          FROM dead_letters WHERE retried_at IS NULL) AS dead_letters_age";

#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct BacklogState {
    pub scheduled_pending: i64,
    pub scheduled_overdue: i64,
    pub scheduled_overdue_age: f64,
    pub dead_letters: i64,
    pub dead_letters_age: f64,
}

/// The gauges, and a counter of reads that failed (the gauges then keep their
/// last values: a failing refresh must show, not read as "all clear").
#[derive(Clone, Default)]
pub struct Backlog {
    scheduled_pending: Gauge,
    scheduled_overdue: Gauge,
    scheduled_overdue_age: Gauge<f64, AtomicU64>,
    dead_letters: Gauge,
    dead_letters_age: Gauge<f64, AtomicU64>,
    refresh_failures: Counter,
}

impl Backlog {
    /// Registers the gauges under `foco_*` (they describe the system's state,
    /// not control itself) and the failure counter under `foco_control_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let backlog = Self::default();
        registry.register(
            "foco_scheduled_jobs_pending",
            "Delayed jobs waiting in Postgres for their due time, overdue ones included",
            backlog.scheduled_pending.clone(),
        );
        registry.register(
            "foco_scheduled_jobs_overdue",
            "Delayed jobs past their due time and not yet published by a rules scheduler",
            backlog.scheduled_overdue.clone(),
        );
        registry.register(
            "foco_scheduled_jobs_overdue_age_seconds",
            "How long past its due time the most overdue delayed job is (0 when none is)",
            backlog.scheduled_overdue_age.clone(),
        );
        registry.register(
            "foco_dead_letters",
            "Dead letters not retried yet (jobs that gave up after their retries)",
            backlog.dead_letters.clone(),
        );
        registry.register(
            "foco_dead_letters_oldest_age_seconds",
            "Age of the oldest dead letter not retried yet (0 when there is none)",
            backlog.dead_letters_age.clone(),
        );
        registry.register(
            "foco_control_backlog_refresh_failures",
            "Reads of the scheduled-job and dead-letter gauges that failed (the gauges keep their last values)",
            backlog.refresh_failures.clone(),
        );
        backlog
    }

    /// Reads the backlog every `interval` until `shutdown`; the first read is at once.
    pub fn watch(
        &self,
        pool: PgPool,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let backlog = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                // Bounded, so a stuck read does not stack up behind the next tick.
                match tokio::time::timeout(interval.max(Duration::from_secs(5)), read(&pool)).await
                {
                    Ok(Ok(state)) => backlog.set(state),
                    Ok(Err(error)) => {
                        backlog.refresh_failures.inc();
                        tracing::debug!(error = %error, "could not read the backlog gauges");
                    }
                    Err(_) => {
                        backlog.refresh_failures.inc();
                        tracing::debug!("reading the backlog gauges timed out");
                    }
                }
            }
        })
    }

    fn set(&self, state: BacklogState) {
        self.scheduled_pending.set(state.scheduled_pending);
        self.scheduled_overdue.set(state.scheduled_overdue);
        self.scheduled_overdue_age
            .set(state.scheduled_overdue_age.max(0.0));
        self.dead_letters.set(state.dead_letters);
        self.dead_letters_age.set(state.dead_letters_age.max(0.0));
    }
}

/// One statement: the whole backlog as of one `now()`.
pub async fn read(pool: &PgPool) -> Result<BacklogState, sqlx::Error> {
    sqlx::query_as(BACKLOG_QUERY).fetch_one(pool).await
}
