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
//!
//! Jobs sent through control's messaging API with a delay wait here too, with
//! no rule.
//!
//! A job already past its deadline (`SmsJob.expires_at_ms`, set when it was
//! planned) is published like any other: the sender compares the deadline
//! before claiming and records it `expired` with the reason in its message row,
//! the one place `foco messages` and `foco events show` read what became of a
//! job. Deciding here too would put a second writer on that outcome.
//!
//! A job is due at its time *and* once every event received before that time
//! has been evaluated: when rules lags behind ingress, the event that cancels a
//! job may still be waiting on the stream. Each pass reads how far the events
//! consumer has got (the receive time of its oldest unacknowledged event) and
//! publishes only jobs due before it. So that one event stuck in retries cannot
//! hold every account's jobs, the wait is bounded by `max_hold`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use foco_proto::v1::EventEnvelope;
use prost::Message as _;
use prost::bytes::Bytes;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

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
    /// Longest a due job waits for the events received before its due time to
    /// be evaluated.
    pub max_hold: Duration,
}

/// How far the rules consumer has evaluated the events stream.
#[derive(Clone)]
pub struct EventsWatermark {
    stream: jetstream::stream::Stream,
    consumer: jetstream::consumer::PullConsumer,
}

impl EventsWatermark {
    pub fn new(
        stream: jetstream::stream::Stream,
        consumer: jetstream::consumer::PullConsumer,
    ) -> Self {
        Self { stream, consumer }
    }

    /// Every event received before the returned instant has been evaluated;
    /// `None` when every stored event has.
    pub async fn evaluated_before(&self) -> Result<Option<DateTime<Utc>>, SchedulerError> {
        let info = self
            .consumer
            .get_info()
            .await
            .map_err(|error| SchedulerError::Watermark(error.to_string()))?;
        let Some(oldest) = foco_bus::lag::oldest_unacked(&self.stream, &info)
            .await
            .map_err(|error| SchedulerError::Watermark(error.to_string()))?
        else {
            return Ok(None);
        };
        let stored_ms = (oldest.time.unix_timestamp_nanos() / 1_000_000) as i64;
        // The receive time ingress stamped, which is what due times and
        // cancellations are compared with; the stored time if it has none.
        let received_ms = EventEnvelope::decode(oldest.payload)
            .map(|event| event.received_at_ms)
            .ok()
            .filter(|received| *received > 0)
            .map_or(stored_ms, |received| received.min(stored_ms));
        Ok(DateTime::from_timestamp_millis(received_ms))
    }
}

/// A due row as claimed; `enabled` is its rule's (`None`: the rule is gone).
#[derive(sqlx::FromRow)]
struct ClaimedJob {
    job_id: String,
    account_id: String,
    job: Vec<u8>,
    trace_context: String,
    due_at: DateTime<Utc>,
    enabled: Option<bool>,
}

/// A pending job whose time has come.
struct DueJob {
    job_id: String,
    account_id: String,
    job: Vec<u8>,
    trace_context: String,
    due_at: DateTime<Utc>,
}

/// The span of a due job's publish: a child of the event's span that scheduled
/// it, so the job's trace goes on from where it waited. None when the event's
/// span was not exported.
fn release_span(due_job: &DueJob) -> tracing::Span {
    if due_job.trace_context.is_empty() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "scheduled_job.publish",
        job_id = due_job.job_id.as_str(),
        otel.kind = "producer",
    );
    foco_runtime::telemetry::propagation::set_parent_from_text(&span, &due_job.trace_context);
    span
}

#[derive(Debug, Default)]
struct Pass {
    published: usize,
    claimed: usize,
}

#[derive(Clone)]
pub struct Scheduler {
    pool: PgPool,
    state: RulesState,
    clock: Arc<dyn Clock>,
    settings: SchedulerSettings,
    watermark: EventsWatermark,
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("could not read how far events are evaluated: {0}")]
    Watermark(String),
}

impl Scheduler {
    pub fn new(
        pool: PgPool,
        state: RulesState,
        clock: Arc<dyn Clock>,
        settings: SchedulerSettings,
        watermark: EventsWatermark,
    ) -> Self {
        Self {
            pool,
            state,
            clock,
            settings,
            watermark,
        }
    }

    /// The latest due time a pass may publish: now, or earlier while events
    /// received before now still wait to be evaluated (at most `max_hold`).
    async fn publish_until(&self) -> Result<DateTime<Utc>, SchedulerError> {
        let now = self.clock.now();
        let Some(evaluated_before) = self.watermark.evaluated_before().await? else {
            self.state.metrics.scheduler_hold_seconds.set(0.0);
            return Ok(now);
        };
        let longest_hold =
            chrono::Duration::from_std(self.settings.max_hold).unwrap_or(chrono::Duration::MAX);
        let floor = now
            .checked_sub_signed(longest_hold)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let until = evaluated_before.clamp(floor, now);
        self.state
            .metrics
            .scheduler_hold_seconds
            .set((now - until).as_seconds_f64());
        Ok(until)
    }

    /// Publishes due jobs at once, each waiting for JetStream's ack; returns
    /// the ids of those stored (the others stay pending for the next pass).
    async fn publish<'a>(&self, due: &'a [DueJob]) -> Vec<&'a str> {
        let publishes = due.iter().map(|due_job| {
            foco_bus::publish_durable(
                &self.state.jetstream,
                &self.state.nats,
                self.state.names.sms_subject(&due_job.account_id),
                &due_job.job_id,
                Bytes::copy_from_slice(&due_job.job),
                self.state.publish_timeout,
            )
            .instrument(release_span(due_job))
        });
        let results = futures::future::join_all(publishes).await;
        let mut published: Vec<&str> = Vec::with_capacity(due.len());
        // Against the wall clock, not `self.clock`: how late jobs really go out.
        let published_at = Utc::now();
        for (DueJob { job_id, due_at, .. }, result) in due.iter().zip(results) {
            match result {
                Ok(ack) => {
                    if ack.duplicate {
                        self.state.metrics.scheduled_duplicates.inc();
                    }
                    if let Ok(late) = (published_at - *due_at).to_std() {
                        self.state
                            .metrics
                            .scheduled_release_lateness_seconds
                            .observe(late.as_secs_f64());
                    }
                    published.push(job_id);
                }
                Err(error) => {
                    tracing::warn!(job_id = %job_id, error = %error, "due job not published; next pass retries")
                }
            }
        }
        published
    }

    /// One pass at the clock's current time: returns how many jobs it published.
    pub async fn run_once(&self) -> Result<usize, SchedulerError> {
        Ok(self.pass().await?.published)
    }

    /// One pass: what it published, and how many due rows it claimed (the
    /// others were cancelled because their rule is gone or disabled).
    async fn pass(&self) -> Result<Pass, SchedulerError> {
        let now = self.publish_until().await?;
        let mut transaction = self.pool.begin().await?;
        // A job whose rule was deleted or disabled after it was stored (control
        // cancels them, but a job stored meanwhile by an event evaluated with the
        // older configuration escapes that) is cancelled here instead of sent.
        // A job with no rule was sent through the messaging API: always due.
        let claimed: Vec<ClaimedJob> = sqlx::query_as(
            "SELECT j.job_id, j.account_id::text AS account_id, j.job, j.trace_context, j.due_at,
                    CASE WHEN j.rule_id IS NULL THEN true ELSE r.enabled END AS enabled
             FROM scheduled_jobs j LEFT JOIN rules r ON r.id = j.rule_id
             WHERE j.state = 'pending' AND j.due_at <= $1
             ORDER BY j.due_at LIMIT $2
             FOR UPDATE OF j SKIP LOCKED",
        )
        .bind(now)
        .bind(self.settings.batch)
        .fetch_all(&mut *transaction)
        .await?;
        if claimed.is_empty() {
            transaction.rollback().await?;
            return Ok(Pass::default());
        }
        let claimed_count = claimed.len();
        let mut due: Vec<DueJob> = Vec::with_capacity(claimed.len());
        let mut rule_deleted: Vec<String> = Vec::new();
        let mut rule_disabled: Vec<String> = Vec::new();
        for claimed_job in claimed {
            let ClaimedJob {
                job_id,
                account_id,
                job,
                trace_context,
                due_at,
                enabled,
            } = claimed_job;
            match enabled {
                Some(true) => due.push(DueJob {
                    job_id,
                    account_id,
                    job,
                    trace_context,
                    due_at,
                }),
                Some(false) => rule_disabled.push(job_id),
                None => rule_deleted.push(job_id),
            }
        }
        for (job_ids, reason) in [
            (&rule_deleted, "rule deleted"),
            (&rule_disabled, "rule disabled"),
        ] {
            if job_ids.is_empty() {
                continue;
            }
            sqlx::query(
                "UPDATE scheduled_jobs SET state = 'cancelled', cancel_reason = $2, updated_at = now()
                 WHERE job_id = ANY($1)",
            )
            .bind(job_ids)
            .bind(reason)
            .execute(&mut *transaction)
            .await?;
        }
        let published = self.publish(&due).await;
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
        Ok(Pass {
            published: published.len(),
            claimed: claimed_count,
        })
    }

    /// Forgets what only matters for a while: event ids kept for long-window
    /// deduplication (senders retry for up to 3 days; kept 7), cancel marks
    /// (they only bridge events evaluated out of order; kept 1 day) and event
    /// samples (for rule previews; kept 7 days).
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
        let samples =
            sqlx::query("DELETE FROM event_samples WHERE received_at < now() - interval '7 days'")
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(seen + marks + samples)
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
            let pause = match self.pass().await {
                Ok(pass) if pass.claimed as i64 >= self.settings.batch => {
                    // A full batch: more may be due. Keep under the rate limit.
                    let minimum = Duration::from_secs_f64(
                        pass.published as f64 / f64::from(self.settings.max_per_second.max(1)),
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
