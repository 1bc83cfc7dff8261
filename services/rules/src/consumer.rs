//! The pull loop around `handle_event`: bounded concurrency, ack only after the
//! jobs are stored, `nak` with a growing delay for retryable failures, `term` for
//! messages that can never succeed.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use foco_proto::v1::EventEnvelope;
use foco_rule_engine::{EventPlan, PlannedJob};
use prost::Message as _;

use crate::RulesState;
use crate::store::{Entry, StoredEvent};
use foco_runtime::error_chain;

/// Where the event came from on the stream.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub stream_sequence: u64,
}

/// What to do with an event message.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every job it produced is stored (or it produced none).
    Ack { jobs: usize },
    /// A dependency failed; try again later.
    Retry { reason: String },
    /// It can never succeed (undecodable); stop redelivering.
    Drop { reason: String },
    /// It failed the same way it always will (Postgres refused its data):
    /// recorded on the event as `dead_lettered`, then terminated.
    DeadEnd { reason: String },
}

/// Report kind of an event rules gave up on.
pub const DEAD_LETTERED: &str = "dead_lettered";

/// Evaluates one event and publishes its jobs. Called by the pull loop, and by
/// tests directly without a consumer.
pub async fn handle_event(state: &RulesState, payload: &[u8], delivery: Delivery) -> Outcome {
    match decode(payload) {
        Ok(event) => handle_decoded(state, event, delivery).await,
        Err(outcome) => outcome,
    }
}

fn decode(payload: &[u8]) -> Result<EventEnvelope, Outcome> {
    EventEnvelope::decode(payload).map_err(|error| Outcome::Drop {
        reason: format!("undecodable event envelope: {error}"),
    })
}

async fn handle_decoded(state: &RulesState, event: EventEnvelope, delivery: Delivery) -> Outcome {
    let source = match state.config_cache.source_by_id(&event.source_id).await {
        Ok(Some(source)) => source,
        Ok(None) => {
            tracing::warn!(event_id = %event.event_id, source_id = %event.source_id, "source no longer exists, event dropped");
            return Outcome::Ack { jobs: 0 };
        }
        Err(error) => {
            return Outcome::Retry {
                reason: error.to_string(),
            };
        }
    };
    state.samples.offer(&event);
    let now_ms = chrono_like_now_ms();
    let plan = match state.engine.plan(&event, &source, now_ms) {
        Ok(plan) => plan,
        Err(error) => {
            // Ingress stores a platform's body as signed, unread; one that is not
            // JSON is reported on the event, where the account looks for it.
            state.metrics.unreadable_events.inc();
            tracing::warn!(event_id = %event.event_id, error = %error.detail(), "event cannot be read by any rule");
            EventPlan::unreadable(&error)
        }
    };
    log_plan_problems(state, &event.event_id, &plan);
    let account = source.account.clone().unwrap_or_default();
    // Only delayed jobs need the context stored; spans not exported give none.
    let trace_context = if plan.jobs.iter().any(|planned| planned.due_at_ms.is_some()) {
        foco_runtime::telemetry::propagation::current_context_text()
    } else {
        String::new()
    };
    let stored_event =
        match StoredEvent::new(&event, delivery.stream_sequence, &account, trace_context) {
            Ok(stored_event) => stored_event,
            Err(error) => {
                return Outcome::Drop {
                    reason: error.to_string(),
                };
            }
        };
    let applied = match state
        .writer
        .apply(Entry {
            event: stored_event,
            plan,
        })
        .await
    {
        Ok(applied) => applied,
        Err(crate::store::StoreError::Database(error))
            if foco_runtime::postgres::is_deterministic(&error) =>
        {
            return Outcome::DeadEnd {
                reason: format!(
                    "Postgres refused the event's writes: {}",
                    error_chain(&error)
                ),
            };
        }
        Err(error) => {
            return Outcome::Retry {
                reason: format!("could not store the event's outcome: {error}"),
            };
        }
    };
    if let Some(first) = applied.duplicate_of_sequence {
        tracing::info!(event_id = %event.event_id, first_stream_sequence = first, "event already processed; duplicate dropped");
        return Outcome::Ack { jobs: 0 };
    }
    state
        .metrics
        .jobs_scheduled
        .inc_by(applied.scheduled as u64);
    state.metrics.jobs_cancelled.inc_by(applied.cancelled);
    let stored = publish_jobs(state, &event.event_id, &applied.immediate).await;
    state.metrics.jobs_published.inc_by(stored as u64);
    if stored < applied.immediate.len() {
        // Stored jobs are deduplicated by their id when the event is retried.
        return Outcome::Retry {
            reason: format!(
                "{} of {} jobs not stored",
                applied.immediate.len() - stored,
                applied.immediate.len()
            ),
        };
    }
    publish_status_changes(state, &applied.status_changes).await;
    tracing::debug!(
        event_id = %event.event_id,
        jobs = stored,
        scheduled = applied.scheduled,
        cancelled = applied.cancelled,
        capped = applied.capped,
        "event evaluated"
    );
    Outcome::Ack {
        jobs: stored + applied.scheduled,
    }
}

/// Announces the event's scheduled and cancelled jobs on the status feed,
/// concurrently. The rows are committed; a change JetStream does not take is
/// logged, not retried: a redelivered event is a duplicate and decides nothing.
async fn publish_status_changes(state: &RulesState, changes: &[foco_proto::v1::StatusChange]) {
    if changes.is_empty() {
        return;
    }
    let results = futures::future::join_all(
        changes
            .iter()
            .map(|change| state.status_feed.publish(change.clone())),
    )
    .await;
    for (change, result) in changes.iter().zip(results) {
        if let Err(error) = result {
            tracing::warn!(job_id = %change.message_id, kind = %change.kind, error = %error, "status change not published");
        }
    }
}

/// Publishes an event's immediate jobs, each under its job id; how many JetStream
/// stored.
async fn publish_jobs(state: &RulesState, event_id: &str, jobs: &[PlannedJob]) -> usize {
    let publishes = jobs.iter().map(|planned| {
        let subject = state.names.sms_subject(&planned.job.account_id);
        state.job_publisher.publish_durable(
            subject,
            &planned.job.job_id,
            planned.job.encode_to_vec().into(),
            state.publish_timeout,
        )
    });
    let results = futures::future::join_all(publishes).await;
    let mut stored = 0;
    for (planned, result) in jobs.iter().zip(&results) {
        match result {
            Ok(_) => stored += 1,
            Err(error) => {
                tracing::warn!(event_id = %event_id, job_id = %planned.job.job_id, error = %error, "job not stored");
            }
        }
    }
    stored
}

/// Logs (and counts) the plan's failed rules and invalid recipients; they are
/// reported on the event by the store.
fn log_plan_problems(state: &RulesState, event_id: &str, plan: &EventPlan) {
    for failure in &plan.failures {
        state.metrics.rule_failures.inc();
        tracing::warn!(
            event_id = %event_id,
            rule_id = %failure.rule_id,
            rule = %failure.rule_name,
            error = %failure.error,
            "rule failed for event"
        );
    }
    for invalid in &plan.invalid_recipients {
        tracing::warn!(event_id = %event_id, rule = %invalid.rule_name, reason = %invalid.reason, "invalid recipient not sent");
    }
}

fn chrono_like_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether a retryable failure on its `delivered`-th delivery has had its
/// last try: then it is recorded as a dead end rather than retried again.
pub(crate) fn out_of_deliveries(delivered: i64, max_deliveries: i64) -> bool {
    max_deliveries > 0 && delivered >= max_deliveries
}

/// Records on the event that rules gave up on it, so `foco events show` says
/// why no SMS came. `true` once recorded; otherwise the event is kept for retry
/// (never terminated without a record).
async fn record_dead_end(
    state: &RulesState,
    account_id: &str,
    event_id: &str,
    reason: &str,
) -> bool {
    let Ok(account_id) = uuid::Uuid::parse_str(account_id) else {
        return false;
    };
    let detail: String = reason.chars().filter(|c| !c.is_control()).collect();
    let recorded = sqlx::query(
        "INSERT INTO event_reports (account_id, event_id, rule_id, rule_name, kind, detail)
         VALUES ($1, $2, '', '', $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(account_id)
    .bind(event_id)
    .bind(DEAD_LETTERED)
    .bind(&detail)
    .execute(&state.pool)
    .await;
    match recorded {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "could not record the event's dead end; it stays for retry");
            false
        }
    }
}

/// Delay before a retried event is redelivered: 1 s, 2 s, 4 s … capped at 60 s.
pub(crate) fn retry_delay(delivered: i64) -> Duration {
    let exponent = (delivered.max(1) - 1).min(6) as u32;
    Duration::from_secs(2u64.pow(exponent)).min(Duration::from_secs(60))
}

/// How rules handles one message of the events stream, for the bus's pull loop.
pub(crate) struct Events(pub(crate) RulesState);

impl foco_bus::Handle for Events {
    async fn handle(&self, message: &jetstream::Message) -> AckKind {
        process(message, &self.0).await
    }
}

async fn process(message: &jetstream::Message, state: &RulesState) -> AckKind {
    // Decoded before the span exists, so the span is built once with its
    // fields: recording a field later formats the span's fields again.
    let decoded = decode(&message.payload);
    let work = foco_runtime::work_span!(
        "event",
        event_id = decoded.as_ref().map_or("", |event| event.event_id.as_str()),
        subject = message.subject.as_str(),
    );
    if let Some(span) = work.span() {
        foco_bus::trace::set_parent_from(span, message.headers.as_ref());
    }
    work.instrument(settle(message, state, decoded)).await
}

/// Handles a decoded event (or its decoding error) and says how to acknowledge
/// it, inside its unit of work.
async fn settle(
    message: &jetstream::Message,
    state: &RulesState,
    decoded: Result<EventEnvelope, Outcome>,
) -> AckKind {
    let delivery = Delivery {
        stream_sequence: message.info().map(|info| info.stream_sequence).unwrap_or(0),
    };
    let ids = decoded
        .as_ref()
        .map(|event| (event.account_id.clone(), event.event_id.clone()))
        .ok();
    let outcome = match decoded {
        Ok(event) => {
            if let Some(waited) = foco_runtime::latency::seconds_since_unix_ms(event.received_at_ms)
            {
                state.metrics.event_wait_seconds.observe(waited);
            }
            let started = std::time::Instant::now();
            let handled = handle_decoded(state, event, delivery);
            let outcome = tokio::time::timeout(state.event_deadline, handled).await;
            state
                .metrics
                .event_handling_seconds
                .observe(started.elapsed().as_secs_f64());
            match outcome {
                Ok(outcome) => outcome,
                // Its redelivery is on its way: whatever it stored is found again
                // by its id, and its jobs are published again under theirs.
                Err(_) => Outcome::Retry {
                    reason: format!(
                        "took longer than {:?} (Postgres or NATS not answering)",
                        state.event_deadline
                    ),
                },
            }
        }
        Err(outcome) => outcome,
    };
    let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
    let outcome = match outcome {
        Outcome::Retry { reason } if out_of_deliveries(delivered, state.max_deliveries) => {
            Outcome::DeadEnd {
                reason: format!("gave up after {delivered} deliveries: {reason}"),
            }
        }
        other => other,
    };
    match &outcome {
        Outcome::Ack { .. } => {
            state.metrics.event("acked");
            AckKind::Ack
        }
        Outcome::Retry { reason } => {
            state.metrics.event("retried");
            let delay = retry_delay(delivered);
            tracing::warn!(reason = %reason, delivered, retry_in = ?delay, "event will be retried");
            AckKind::Nak(Some(delay))
        }
        Outcome::Drop { reason } => {
            state.metrics.event("dropped");
            let sequence = message.info().map(|info| info.stream_sequence).unwrap_or(0);
            tracing::error!(reason = %reason, stream_sequence = sequence, "event cannot be processed, terminated");
            AckKind::Term
        }
        Outcome::DeadEnd { reason } => {
            let (account_id, event_id) = ids.as_ref().map_or(("", ""), |(account, event)| {
                (account.as_str(), event.as_str())
            });
            if record_dead_end(state, account_id, event_id, reason).await {
                state.metrics.event("dead_lettered");
                tracing::error!(reason = %reason, "event given up on; recorded on the event and terminated");
                AckKind::Term
            } else {
                state.metrics.event("retried");
                AckKind::Nak(Some(retry_delay(delivered)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::retry_delay;
    use std::time::Duration;

    #[test]
    fn deliveries_run_out_only_with_a_limit() {
        assert!(!super::out_of_deliveries(5, 6));
        assert!(super::out_of_deliveries(6, 6));
        assert!(super::out_of_deliveries(7, 6));
        assert!(!super::out_of_deliveries(1_000, 0), "0: unlimited");
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(4), Duration::from_secs(8));
        assert_eq!(retry_delay(50), Duration::from_secs(60));
    }
}
