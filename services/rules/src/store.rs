//! Applies an event's plan to Postgres in one transaction: cancellations first,
//! then delayed jobs (replacing or keeping pending ones with the same key), caps,
//! and the event's reports. Immediate jobs are published by the caller after the
//! commit, so an event is acked only when everything it produced is durable.
//!
//! Every write is idempotent: a redelivered event changes nothing twice.

use std::collections::HashSet;

use foco_proto::v1::{Account, EventEnvelope};
use foco_rule_engine::{Cap, EventPlan, OnRepeat, PlannedJob};
use prost::Message as _;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// What the transaction decided, for logs and the caller.
#[derive(Debug, Default)]
pub struct Applied {
    /// The sender delivered this event before and it was processed then.
    pub duplicate_of_sequence: Option<u64>,
    /// Jobs to publish now.
    pub immediate: Vec<PlannedJob>,
    pub scheduled: usize,
    pub cancelled: u64,
    pub capped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("event names account {0:?}, which is not a UUID")]
    BadAccountId(String),
}

struct Report<'a> {
    rule_id: &'a str,
    rule_name: &'a str,
    kind: &'static str,
    detail: String,
}

pub async fn apply(
    pool: &PgPool,
    event: &EventEnvelope,
    stream_sequence: u64,
    account: &Account,
    plan: EventPlan,
) -> Result<Applied, StoreError> {
    let account_id = Uuid::parse_str(&event.account_id)
        .map_err(|_| StoreError::BadAccountId(event.account_id.clone()))?;
    let received_at = chrono::DateTime::from_timestamp_millis(event.received_at_ms)
        .filter(|_| event.received_at_ms > 0)
        .unwrap_or_else(chrono::Utc::now);
    let mut transaction = pool.begin().await?;
    let mut applied = Applied::default();
    if !event.external_id.is_empty() {
        let first_sequence: i64 = sqlx::query_scalar(
            "INSERT INTO seen_events (account_id, event_id, stream_sequence) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, event_id) DO UPDATE SET account_id = EXCLUDED.account_id
             RETURNING stream_sequence",
        )
        .bind(account_id)
        .bind(&event.event_id)
        .bind(i64::try_from(stream_sequence).unwrap_or(i64::MAX))
        .fetch_one(&mut *transaction)
        .await?;
        let first_sequence = u64::try_from(first_sequence).unwrap_or(0);
        if first_sequence != stream_sequence {
            transaction.rollback().await?;
            applied.duplicate_of_sequence = Some(first_sequence);
            return Ok(applied);
        }
    }
    let mut reports: Vec<Report> = Vec::new();

    // Cancellations and keyed delayed jobs of one (rule, key) are serialised:
    // without it, a cancelling event and its trigger evaluated at the same moment
    // would each miss the other's uncommitted rows. Locks are taken in one order
    // so concurrent events cannot deadlock.
    let mut keys: Vec<String> = plan
        .cancellations
        .iter()
        .map(|cancellation| {
            format!(
                "{}:{}:{}",
                account_id, cancellation.rule_id, cancellation.key
            )
        })
        .chain(
            plan.jobs
                .iter()
                .filter(|planned| planned.due_at_ms.is_some() && !planned.key.is_empty())
                .map(|planned| format!("{}:{}:{}", account_id, planned.job.rule_id, planned.key)),
        )
        .collect();
    keys.sort();
    keys.dedup();
    for key in &keys {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))")
            .bind(key)
            .execute(&mut *transaction)
            .await?;
    }

    for cancellation in &plan.cancellations {
        let Ok(rule_id) = Uuid::parse_str(&cancellation.rule_id) else {
            continue;
        };
        let cancelled = sqlx::query(
            "UPDATE scheduled_jobs SET state = 'cancelled', cancel_reason = $4, updated_at = now()
             WHERE account_id = $1 AND rule_id = $2 AND correlation_key = $3 AND state = 'pending'
               AND trigger_received_at <= $5",
        )
        .bind(account_id)
        .bind(rule_id)
        .bind(&cancellation.key)
        .bind(format!("cancelled by event {}", event.event_id))
        .bind(received_at)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        // Remembered, for a trigger received earlier but evaluated later.
        sqlx::query(
            "INSERT INTO cancel_marks (account_id, rule_id, correlation_key, event_id, received_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(account_id)
        .bind(rule_id)
        .bind(&cancellation.key)
        .bind(&event.event_id)
        .bind(received_at)
        .execute(&mut *transaction)
        .await?;
        applied.cancelled += cancelled;
        if cancelled > 0 {
            reports.push(Report {
                rule_id: &cancellation.rule_id,
                rule_name: &cancellation.rule_name,
                kind: "cancelled",
                detail: format!(
                    "{cancelled} pending job(s) with key {:?} cancelled",
                    cancellation.key
                ),
            });
        }
    }

    if let Some(reason) = &plan.unreadable {
        reports.push(Report {
            rule_id: "",
            rule_name: "",
            kind: "unreadable",
            detail: reason.clone(),
        });
    }
    for failure in &plan.failures {
        reports.push(Report {
            rule_id: &failure.rule_id,
            rule_name: &failure.rule_name,
            kind: "error",
            detail: failure.error.to_string(),
        });
    }
    for invalid in &plan.invalid_recipients {
        reports.push(Report {
            rule_id: &invalid.rule_id,
            rule_name: &invalid.rule_name,
            kind: "invalid_recipient",
            detail: format!("{:?}: {}", invalid.raw, invalid.reason),
        });
    }

    let daily_cap = account.daily_sms_cap;
    let mut capped_rules: HashSet<&str> = HashSet::new();
    for planned in &plan.jobs {
        let rule_id = Uuid::parse_str(&planned.job.rule_id).unwrap_or_default();
        if let Some(reason) = cap_reached(
            &mut transaction,
            account_id,
            account,
            rule_id,
            planned,
            daily_cap,
        )
        .await?
        {
            applied.capped += 1;
            if capped_rules.insert(&planned.job.rule_id) {
                reports.push(Report {
                    rule_id: &planned.job.rule_id,
                    rule_name: &planned.rule_name,
                    kind: "capped",
                    detail: reason,
                });
            }
            continue;
        }
        let Some(due_at_ms) = planned.due_at_ms else {
            record_send(&mut transaction, account_id, rule_id, planned).await?;
            applied.immediate.push(planned.clone());
            continue;
        };
        if !planned.key.is_empty() {
            match planned.on_repeat {
                OnRepeat::Replace => {
                    let replaced = sqlx::query(
                        "UPDATE scheduled_jobs SET state = 'cancelled', cancel_reason = $5, updated_at = now()
                         WHERE account_id = $1 AND rule_id = $2 AND correlation_key = $3 AND state = 'pending'
                           AND event_id <> $4 AND recipient = $6 AND trigger_received_at <= $7",
                    )
                    .bind(account_id)
                    .bind(rule_id)
                    .bind(&planned.key)
                    .bind(&event.event_id)
                    .bind(format!("replaced by event {}", event.event_id))
                    .bind(&planned.job.to)
                    .bind(received_at)
                    .execute(&mut *transaction)
                    .await?
                    .rows_affected();
                    if replaced > 0 {
                        reports.push(Report {
                            rule_id: &planned.job.rule_id,
                            rule_name: &planned.rule_name,
                            kind: "replaced",
                            detail: format!(
                                "{replaced} pending job(s) with key {:?} replaced",
                                planned.key
                            ),
                        });
                    }
                }
                OnRepeat::KeepFirst => {
                    let pending: Option<String> = sqlx::query_scalar(
                        "SELECT job_id FROM scheduled_jobs
                         WHERE account_id = $1 AND rule_id = $2 AND correlation_key = $3 AND state = 'pending'
                           AND event_id <> $4 AND recipient = $5 AND trigger_received_at <= $6 LIMIT 1",
                    )
                    .bind(account_id)
                    .bind(rule_id)
                    .bind(&planned.key)
                    .bind(&event.event_id)
                    .bind(&planned.job.to)
                    .bind(received_at)
                    .fetch_optional(&mut *transaction)
                    .await?;
                    if let Some(pending) = pending {
                        reports.push(Report {
                            rule_id: &planned.job.rule_id,
                            rule_name: &planned.rule_name,
                            kind: "kept_first",
                            detail: format!(
                                "job {pending} with key {:?} is already pending",
                                planned.key
                            ),
                        });
                        continue;
                    }
                }
            }
        }
        // A cancelling event received after this trigger may have been
        // evaluated first: then the job is stored already cancelled.
        let cancelled_by: Option<String> = if planned.key.is_empty() {
            None
        } else {
            sqlx::query_scalar(
                "SELECT event_id FROM cancel_marks
                 WHERE account_id = $1 AND rule_id = $2 AND correlation_key = $3 AND received_at >= $4
                 LIMIT 1",
            )
            .bind(account_id)
            .bind(rule_id)
            .bind(&planned.key)
            .bind(received_at)
            .fetch_optional(&mut *transaction)
            .await?
        };
        if cancelled_by.is_none() {
            record_send(&mut transaction, account_id, rule_id, planned).await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO scheduled_jobs (job_id, account_id, rule_id, event_id, correlation_key, recipient, body,
                                         due_at, trigger_received_at, job, state, cancel_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8::double precision / 1000), $10, $9,
                     CASE WHEN $11::text IS NULL THEN 'pending' ELSE 'cancelled' END,
                     COALESCE('cancelled by event ' || $11::text || ', received after the trigger', ''))
             ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(&planned.job.job_id)
        .bind(account_id)
        .bind(rule_id)
        .bind(&event.event_id)
        .bind(&planned.key)
        .bind(&planned.job.to)
        .bind(&planned.job.body)
        .bind(due_at_ms as f64)
        .bind(planned.job.encode_to_vec())
        .bind(received_at)
        .bind(&cancelled_by)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if inserted > 0
            && let Some(cancelled_by) = &cancelled_by
        {
            applied.cancelled += 1;
            reports.push(Report {
                rule_id: &planned.job.rule_id,
                rule_name: &planned.rule_name,
                kind: "cancelled",
                detail: format!(
                    "cancelled on arrival by event {cancelled_by}, received after this one"
                ),
            });
        } else if inserted > 0 {
            applied.scheduled += 1;
            reports.push(Report {
                rule_id: &planned.job.rule_id,
                rule_name: &planned.rule_name,
                kind: "scheduled",
                detail: format!(
                    "job {} to {} due at {}",
                    planned.job.job_id,
                    foco_runtime::telemetry::mask_phone(&planned.job.to),
                    chrono::DateTime::from_timestamp_millis(due_at_ms)
                        .map(|at| at.to_rfc3339())
                        .unwrap_or_default()
                ),
            });
        }
    }

    for report in &reports {
        sqlx::query(
            "INSERT INTO event_reports (account_id, event_id, rule_id, rule_name, kind, detail)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(account_id)
        .bind(&event.event_id)
        .bind(report.rule_id)
        .bind(report.rule_name)
        .bind(report.kind)
        .bind(&report.detail)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    Ok(applied)
}

/// Counts the job towards its rule's and its account's caps.
async fn record_send(
    transaction: &mut Transaction<'_, Postgres>,
    account_id: Uuid,
    rule_id: Uuid,
    planned: &PlannedJob,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recipient_sends (job_id, account_id, rule_id, recipient) VALUES ($1, $2, $3, $4)
         ON CONFLICT (job_id) DO NOTHING",
    )
    .bind(&planned.job.job_id)
    .bind(account_id)
    .bind(rule_id)
    .bind(&planned.job.to)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Why a job may not be created, if a cap forbids it. Counts exclude the job
/// itself, so a redelivered event is not capped by its own first delivery; an
/// advisory lock per (rule, recipient) keeps concurrent events from both passing.
async fn cap_reached(
    transaction: &mut Transaction<'_, Postgres>,
    account_id: Uuid,
    account: &Account,
    rule_id: Uuid,
    planned: &PlannedJob,
    daily_cap: u32,
) -> Result<Option<String>, sqlx::Error> {
    if let Some(Cap { count, window }) = planned.cap {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("{rule_id}:{}", planned.job.to))
            .execute(&mut **transaction)
            .await?;
        let recent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM recipient_sends
             WHERE rule_id = $1 AND recipient = $2 AND job_id <> $3
               AND created_at > now() - make_interval(secs => $4)",
        )
        .bind(rule_id)
        .bind(&planned.job.to)
        .bind(&planned.job.job_id)
        .bind(window.as_secs_f64())
        .fetch_one(&mut **transaction)
        .await?;
        if recent >= i64::from(count) {
            return Ok(Some(format!(
                "{} already got {recent} message(s) from this rule within {}",
                foco_runtime::telemetry::mask_phone(&planned.job.to),
                humantime_window(window)
            )));
        }
    }
    if daily_cap > 0 {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("daily:{account_id}"))
            .execute(&mut **transaction)
            .await?;
        // "Today" in the account's time zone.
        let today: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM recipient_sends
             WHERE account_id = $1 AND job_id <> $2
               AND created_at >= (date_trunc('day', now() AT TIME ZONE $3) AT TIME ZONE $3)",
        )
        .bind(account_id)
        .bind(&planned.job.job_id)
        .bind(if account.timezone.is_empty() {
            "UTC"
        } else {
            account.timezone.as_str()
        })
        .fetch_one(&mut **transaction)
        .await?;
        if today >= i64::from(daily_cap) {
            return Ok(Some(format!(
                "the account's daily cap of {daily_cap} SMS is reached"
            )));
        }
    }
    Ok(None)
}

fn humantime_window(window: std::time::Duration) -> String {
    let seconds = window.as_secs();
    if seconds.is_multiple_of(86_400) {
        format!("{}d", seconds / 86_400)
    } else if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}
