//! Applies events' plans to Postgres: long-window deduplication, cancellations,
//! delayed jobs (replacing or keeping pending ones with the same key), caps, and
//! the reports an account reads in `foco events show`. Immediate jobs are
//! published by the caller after the commit, so an event is acked only when
//! everything it produced is durable.
//!
//! Only events that need a write come here: an immediate job with no sender id,
//! key, cap or report needs none, and skips Postgres altogether. The others are
//! group-committed (`foco_runtime::batch`, a few transactions in flight): a
//! batch takes every plan that is waiting (up to `max_batch`, after a short
//! linger for company at moderate rates) and applies them in one transaction —
//! bulk statements for what cannot interact (deduplication, keyless delayed
//! jobs, reports), statements in arrival order for what can (keys,
//! cancellations, caps), under advisory locks taken together in one order —
//! then answers each event after the commit. When a batch fails, its events
//! are applied one by one, so one event that cannot be stored never holds back
//! the others.
//!
//! Every write is idempotent: a redelivered event changes nothing twice.

mod entry;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use foco_proto::v1::{Account, EventEnvelope};
use foco_rule_engine::{EventPlan, PlannedJob};
use uuid::Uuid;

use crate::metrics::RulesMetrics;
use foco_runtime::batch::{BatchSettings, Batcher, WriterGone};
use foco_runtime::postgres::{FreshRowsFirst, KeptConnections};

/// What storing an event decided, for logs and the caller.
#[derive(Debug, Default)]
pub struct Applied {
    /// The sender delivered this event before and it was processed then.
    pub duplicate_of_sequence: Option<u64>,
    /// Jobs to publish now.
    pub immediate: Vec<PlannedJob>,
    pub scheduled: usize,
    pub cancelled: u64,
    pub capped: usize,
    /// Jobs stored as scheduled, and pending jobs cancelled, for the status
    /// feed (published once the batch is committed).
    pub status_changes: Vec<foco_proto::v1::StatusChange>,
}

/// A scheduled or cancelled job's change for the status feed.
pub(crate) fn job_change(
    job: &foco_proto::v1::SmsJob,
    kind: &str,
    reason: String,
) -> foco_proto::v1::StatusChange {
    let mut change = foco_bus::status_change(&job.account_id, &job.job_id, kind);
    change.reason = reason;
    change.to.clone_from(&job.to);
    change.provider.clone_from(&job.provider);
    change.event_id.clone_from(&job.event_id);
    change.rule_id.clone_from(&job.rule_id);
    change.metadata.clone_from(&job.metadata);
    change
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("event names account {0:?}, which is not a UUID")]
    BadAccountId(String),
    #[error("the store is shutting down")]
    Closed,
}

/// The facts of an event its writes need.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub account_id: Uuid,
    pub event_id: String,
    /// The sender gave its own id: remember it for long-window deduplication.
    pub deduplicate: bool,
    pub stream_sequence: u64,
    /// When ingress received it: a cancellation only reaches jobs whose trigger
    /// it followed.
    pub received_at: DateTime<Utc>,
    pub daily_cap: u32,
    pub timezone: String,
    /// The W3C trace context of the event's span, stored with its delayed jobs
    /// so that publishing them when due continues the webhook's trace. Empty
    /// when spans are not exported, or when the event has no delayed job.
    pub trace_context: String,
}

impl StoredEvent {
    /// `trace_context`: see the field; the caller captures it in the event's
    /// span.
    pub fn new(
        event: &EventEnvelope,
        stream_sequence: u64,
        account: &Account,
        trace_context: String,
    ) -> Result<Self, StoreError> {
        let account_id = Uuid::parse_str(&event.account_id)
            .map_err(|_| StoreError::BadAccountId(event.account_id.clone()))?;
        let received_at = DateTime::from_timestamp_millis(event.received_at_ms)
            .filter(|_| event.received_at_ms > 0)
            .unwrap_or_else(Utc::now);
        Ok(Self {
            account_id,
            event_id: event.event_id.clone(),
            deduplicate: !event.external_id.is_empty(),
            stream_sequence,
            received_at,
            daily_cap: account.daily_sms_cap,
            timezone: if account.timezone.is_empty() {
                "UTC".to_owned()
            } else {
                account.timezone.clone()
            },
            trace_context,
        })
    }
}

/// One event's plan to store.
#[derive(Debug)]
pub struct Entry {
    pub event: StoredEvent,
    pub plan: EventPlan,
}

impl Entry {
    /// Whether any of the plan must be written before the event is acked.
    pub fn needs_writes(&self) -> bool {
        let plan = &self.plan;
        self.event.deduplicate
            || plan.unreadable.is_some()
            || !plan.failures.is_empty()
            || !plan.invalid_recipients.is_empty()
            || !plan.notes.is_empty()
            || !plan.cancellations.is_empty()
            || (self.event.daily_cap > 0 && !plan.jobs.is_empty())
            || plan
                .jobs
                .iter()
                .any(|planned| planned.due_at_ms.is_some() || planned.cap.is_some())
    }
}

/// Where the writer's transactions go.
///
/// A batch that only records event ids for long-window deduplication commits
/// through `deduplication`, whose commits do not wait for the disk
/// (`foco_runtime::postgres::connect_without_commit_wait`): should the Postgres
/// server crash and lose such a row, a copy of the event arriving later is
/// evaluated again, and its jobs, whose ids derive from the event id, meet the
/// messages the sender recorded durably before sending the first time, so no
/// SMS goes out twice. Everything else (delayed and keyed jobs, cancellations,
/// caps, reports) is the only record of its work and commits through `durable`.
#[derive(Debug, Clone)]
pub struct Pools {
    pub durable: sqlx::PgPool,
    pub deduplication: sqlx::PgPool,
}

/// The writers' own connections from [`Pools`] (see
/// `foco_runtime::postgres::KeptConnections`): one batch every few hundred
/// microseconds must not pay the pool's pings each time.
#[derive(Clone)]
pub(crate) struct Connections {
    pub(crate) durable: KeptConnections,
    pub(crate) deduplication: KeptConnections,
    /// The form of the next batch that only deduplicates.
    pub(crate) deduplication_forms: std::sync::Arc<FreshRowsFirst>,
}

/// The handle events are stored through; cheap to clone. The writer stops
/// when the last handle is dropped.
#[derive(Clone)]
pub struct Writer {
    batches: Batcher<Entry, Applied, StoreError>,
}

impl From<WriterGone> for StoreError {
    fn from(_: WriterGone) -> Self {
        Self::Closed
    }
}

impl Writer {
    /// `settings`: most events in one transaction, transactions in flight at
    /// once, and how long a batch waits for company (see
    /// `foco_runtime::batch`).
    pub fn start(pools: Pools, settings: BatchSettings, metrics: Arc<RulesMetrics>) -> Self {
        let writers = settings.flushes_in_flight.max(1);
        let connections = Connections {
            durable: KeptConnections::new(pools.durable, writers),
            deduplication: KeptConnections::new(pools.deduplication, writers),
            deduplication_forms: std::sync::Arc::default(),
        };
        let observed = metrics.clone();
        let batches = Batcher::spawn(
            settings,
            move |events| observed.store_batch_events.observe(events as f64),
            move |entries: Vec<Entry>| {
                let connections = connections.clone();
                let metrics = metrics.clone();
                async move { write_batch(&connections, &entries, &metrics).await }
            },
        );
        Self { batches }
    }

    /// Stores what `entry` needs stored and says what it decided.
    pub async fn apply(&self, entry: Entry) -> Result<Applied, StoreError> {
        if !entry.needs_writes() {
            return Ok(Applied {
                immediate: entry.plan.jobs,
                ..Applied::default()
            });
        }
        self.batches.submit(entry).await
    }
}

/// Stores a batch in one transaction and answers each event; when that fails,
/// stores each alone, so only the event that cannot be stored is retried.
async fn write_batch(
    connections: &Connections,
    entries: &[Entry],
    metrics: &RulesMetrics,
) -> Vec<Result<Applied, StoreError>> {
    let together: Vec<&Entry> = entries.iter().collect();
    match entry::write(connections, &together).await {
        Ok(applied) => applied.into_iter().map(Ok).collect(),
        Err(error) if entries.len() == 1 => vec![Err(StoreError::Database(error))],
        Err(error) => {
            metrics.store_batch_retries.inc();
            tracing::debug!(error = %error, events = entries.len(), "batch failed; storing its events one by one");
            let mut results = Vec::with_capacity(entries.len());
            for entry in &together {
                results.push(
                    entry::write(connections, std::slice::from_ref(entry))
                        .await
                        .map(|mut applied| applied.pop().unwrap_or_default())
                        .map_err(StoreError::Database),
                );
            }
            results
        }
    }
}
