//! Publishes delayed jobs when they are due. Runs inside every rules replica:
//! each pass claims due rows with `FOR UPDATE SKIP LOCKED` in a transaction,
//! publishes them to FOCO_SMS (job id as `Nats-Msg-Id`), marks them published and
//! commits. Replicas never claim the same row at once; a replica that dies before
//! its commit leaves the rows pending for the next pass, and the republish is
//! dropped by JetStream's dedup window and, beyond it, by the sender's job claim.
//!
//! A cancellation takes the same row lock, so it either lands before a pass (the
//! job is never published) or waits for the pass and finds it published.
//!
//! After downtime the backlog is published at most `max_per_second`, so catching
//! up never bursts past what the senders are sized for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use prost::bytes::Bytes;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::RulesState;

/// Where the scheduler reads the time. Tests move it by hand.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

const PRUNE_EVERY: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// Pause between passes that found nothing to publish.
    pub tick: Duration,
    /// Rows claimed per pass.
    pub batch: i64,
    /// Upper bound on jobs published per second by this replica.
    pub max_per_second: u32,
}

#[derive(Clone)]
pub struct Scheduler {
    pool: PgPool,
    state: RulesState,
    clock: Arc<dyn Clock>,
    settings: SchedulerSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl Scheduler {
    pub fn new(
        pool: PgPool,
        state: RulesState,
        clock: Arc<dyn Clock>,
        settings: SchedulerSettings,
    ) -> Self {
        Self {
            pool,
            state,
            clock,
            settings,
        }
    }

    /// One pass at the clock's current time: returns how many jobs it published.
    pub async fn run_once(&self) -> Result<usize, SchedulerError> {
        let now = self.clock.now();
        let mut transaction = self.pool.begin().await?;
        let due: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT job_id, account_id::text, job FROM scheduled_jobs
             WHERE state = 'pending' AND due_at <= $1
             ORDER BY due_at LIMIT $2
             FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(self.settings.batch)
        .fetch_all(&mut *transaction)
        .await?;
        if due.is_empty() {
            transaction.rollback().await?;
            return Ok(0);
        }
        let publishes = due.iter().map(|(job_id, account_id, job)| {
            foco_bus::publish_durable(
                &self.state.jetstream,
                &self.state.nats,
                self.state.names.sms_subject(account_id),
                job_id,
                Bytes::copy_from_slice(job),
                self.state.publish_timeout,
            )
        });
        let results = futures::future::join_all(publishes).await;
        let mut published: Vec<&str> = Vec::with_capacity(due.len());
        for ((job_id, _, _), result) in due.iter().zip(results) {
            match result {
                Ok(ack) => {
                    if ack.duplicate {
                        self.state.metrics.scheduled_duplicates.inc();
                    }
                    published.push(job_id);
                }
                Err(error) => {
                    tracing::warn!(job_id = %job_id, error = %error, "due job not published; next pass retries")
                }
            }
        }
        sqlx::query("UPDATE scheduled_jobs SET state = 'published', updated_at = now() WHERE job_id = ANY($1)")
            .bind(&published)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        self.state
            .metrics
            .scheduled_published
            .inc_by(published.len() as u64);
        tracing::debug!(published = published.len(), "due jobs published");
        Ok(published.len())
    }

    /// Forgets what only matters for a while: event ids kept for long-window
    /// deduplication (senders retry for up to 3 days; kept 7) and cancel marks
    /// (they only bridge events evaluated out of order; kept 1 day).
    pub async fn prune(&self) -> Result<u64, SchedulerError> {
        let seen = sqlx::query("DELETE FROM seen_events WHERE seen_at < now() - interval '7 days'")
            .execute(&self.pool)
            .await?
            .rows_affected();
        let marks =
            sqlx::query("DELETE FROM cancel_marks WHERE created_at < now() - interval '1 day'")
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(seen + marks)
    }

    /// Passes until shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_prune: Option<Instant> = None;
        loop {
            if last_prune.is_none_or(|at| at.elapsed() > PRUNE_EVERY) {
                last_prune = Some(Instant::now());
                if let Err(error) = self.prune().await {
                    tracing::warn!(error = %error, "pruning old dedup entries failed");
                }
            }
            let started = Instant::now();
            let pause = match self.run_once().await {
                Ok(published) if published as i64 >= self.settings.batch => {
                    // A full batch: more may be due. Keep under the rate limit.
                    let minimum = Duration::from_secs_f64(
                        published as f64 / f64::from(self.settings.max_per_second.max(1)),
                    );
                    minimum.saturating_sub(started.elapsed())
                }
                Ok(_) => self.settings.tick,
                Err(error) => {
                    tracing::warn!(error = %error, "scheduler pass failed");
                    self.settings.tick.max(Duration::from_secs(1))
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
