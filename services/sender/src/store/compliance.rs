//! Opt-outs and quiet-hour holds.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{NewMessage, Step, StoreError};

/// `source`: inbound | provider | api. An existing opt-out is kept as it was.
pub async fn add_opt_out(
    pool: &PgPool,
    account_id: Uuid,
    phone: &str,
    source: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO opt_outs (account_id, phone, source, reason) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, phone) DO NOTHING",
    )
    .bind(account_id)
    .bind(phone)
    .bind(source)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn remove_opt_out(
    pool: &PgPool,
    account_id: Uuid,
    phone: &str,
) -> Result<bool, StoreError> {
    let deleted = sqlx::query("DELETE FROM opt_outs WHERE account_id = $1 AND phone = $2")
        .bind(account_id)
        .bind(phone)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

pub async fn is_opted_out(
    pool: &PgPool,
    account_id: Uuid,
    phone: &str,
) -> Result<bool, StoreError> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM opt_outs WHERE account_id = $1 AND phone = $2")
            .bind(account_id)
            .bind(phone)
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}

/// The message row is created `queued` (or kept, if it is queued already: a retry
/// that falls into quiet hours) and the job parked until `release_at`. Nothing is
/// held when the row has moved past `queued`; the caller then claims as usual.
const HOLD: &str = "WITH msg AS ( \
       INSERT INTO messages (job_id, account_id, event_id, source_id, rule_id, recipient, body, status, \
                             provider, sender_id, priority, attempts, error, history) \
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, 0, $11, jsonb_build_array($12::jsonb)) \
       ON CONFLICT (job_id) DO UPDATE SET error = EXCLUDED.error, updated_at = now(), \
         history = messages.history || $12::jsonb \
       WHERE messages.status = 'queued' \
       RETURNING job_id) \
     INSERT INTO held_jobs (job_id, account_id, release_at, job) \
     SELECT job_id, $2, $13, $14 FROM msg \
     ON CONFLICT (job_id) DO UPDATE SET release_at = EXCLUDED.release_at, job = EXCLUDED.job \
     RETURNING job_id";

/// Parks `job` (its encoded `SmsJob`) until `release_at`. Returns false when the
/// job is past `queued` and so was not held.
pub async fn hold_job(
    pool: &PgPool,
    message: &NewMessage<'_>,
    release_at: DateTime<Utc>,
    job: &[u8],
) -> Result<bool, StoreError> {
    let reason = format!("held for quiet hours until {}", release_at.to_rfc3339());
    let step = Step::now(0, message.provider, "held", &reason).to_json();
    let held = sqlx::query(HOLD)
        .bind(message.job_id)
        .bind(message.account_id)
        .bind(message.event_id)
        .bind(message.source_id)
        .bind(message.rule_id)
        .bind(message.recipient)
        .bind(message.body)
        .bind(message.provider)
        .bind(message.sender_id)
        .bind(message.priority)
        .bind(&reason)
        .bind(step)
        .bind(release_at)
        .bind(job)
        .fetch_optional(pool)
        .await?;
    Ok(held.is_some())
}

/// A held job that is due.
#[derive(Debug, Clone)]
pub struct DueHold {
    pub job_id: String,
    pub account_id: Uuid,
    pub release_at_ms: i64,
    pub job: Bytes,
}

/// Takes up to `limit` due holds inside `transaction` (locked, skipped by other
/// replicas); the caller publishes them and then deletes them in the same
/// transaction, so a crash in between publishes them again rather than never.
pub async fn take_due_holds(
    transaction: &mut sqlx::PgConnection,
    limit: i64,
) -> Result<Vec<DueHold>, StoreError> {
    let rows = sqlx::query(
        "SELECT job_id, account_id, (extract(epoch from release_at) * 1000)::bigint AS release_at_ms, job \
         FROM held_jobs WHERE release_at <= now() ORDER BY release_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *transaction)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(DueHold {
                job_id: row.try_get("job_id")?,
                account_id: row.try_get("account_id")?,
                release_at_ms: row.try_get("release_at_ms")?,
                job: Bytes::from(row.try_get::<Vec<u8>, _>("job")?),
            })
        })
        .collect()
}

pub async fn delete_holds(
    transaction: &mut sqlx::PgConnection,
    job_ids: &[String],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM held_jobs WHERE job_id = ANY($1)")
        .bind(job_ids)
        .execute(&mut *transaction)
        .await?;
    Ok(())
}
