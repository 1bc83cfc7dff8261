//! Opt-outs (by keyword, in the order keywords were received) and quiet-hour
//! holds.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{ClaimRequest, Step, StoreError};

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

/// What an opt-out keyword from an inbound SMS asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordChange<'a> {
    /// STOP and its synonyms; `reason` is kept with the opt-out.
    OptOut { reason: &'a str },
    /// START and its synonyms.
    OptIn,
}

impl KeywordChange<'_> {
    fn as_str(self) -> &'static str {
        match self {
            Self::OptOut { .. } => "stop",
            Self::OptIn => "start",
        }
    }
}

/// What applying a keyword did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordApplied {
    /// The number's opt-out now follows this keyword.
    Applied,
    /// A keyword received later was applied already: this one changes nothing.
    Superseded,
}

/// Records the keyword as the number's latest unless one received later is
/// recorded already. Ties go to STOP: when in doubt, the number stays opted
/// out. The row lock this takes (also when nothing is updated) holds back any
/// other keyword of the number until the transaction ends, so the opt-out
/// statement that follows sees the outcome of every keyword recorded before.
const RECORD_KEYWORD: &str = "INSERT INTO opt_out_keywords (account_id, phone, keyword, received_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (account_id, phone) DO UPDATE \
       SET keyword = EXCLUDED.keyword, received_at = EXCLUDED.received_at \
       WHERE opt_out_keywords.received_at < EXCLUDED.received_at \
          OR (opt_out_keywords.received_at = EXCLUDED.received_at AND EXCLUDED.keyword = 'stop') \
     RETURNING keyword";

/// Applies a STOP or START keyword received at `received_at` to the number's
/// opt-out, in the order keywords were received rather than handled: inbound
/// messages are handled concurrently and redelivered after failures, so a START
/// handled after a STOP may well have been sent before it, and must then leave
/// the number opted out. A STOP keeps an existing opt-out as it was; a START
/// lifts any opt-out, whatever recorded it.
pub async fn apply_keyword(
    pool: &PgPool,
    account_id: Uuid,
    phone: &str,
    change: KeywordChange<'_>,
    received_at: DateTime<Utc>,
) -> Result<KeywordApplied, StoreError> {
    let mut transaction = pool.begin().await?;
    let recorded: Option<String> = sqlx::query_scalar(RECORD_KEYWORD)
        .bind(account_id)
        .bind(phone)
        .bind(change.as_str())
        .bind(received_at)
        .fetch_optional(&mut *transaction)
        .await?;
    if recorded.is_none() {
        transaction.commit().await?;
        return Ok(KeywordApplied::Superseded);
    }
    match change {
        KeywordChange::OptOut { reason } => {
            sqlx::query(
                "INSERT INTO opt_outs (account_id, phone, source, reason) \
                 VALUES ($1, $2, 'inbound', $3) ON CONFLICT (account_id, phone) DO NOTHING",
            )
            .bind(account_id)
            .bind(phone)
            .bind(reason)
            .execute(&mut *transaction)
            .await?;
        }
        KeywordChange::OptIn => {
            sqlx::query("DELETE FROM opt_outs WHERE account_id = $1 AND phone = $2")
                .bind(account_id)
                .bind(phone)
                .execute(&mut *transaction)
                .await?;
        }
    }
    transaction.commit().await?;
    Ok(KeywordApplied::Applied)
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

/// A job to park in `held_jobs` until `release_at`: a marketing job in the
/// recipient's quiet hours, or a job whose route has no send budget for a while.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub message: ClaimRequest,
    /// `messages.history` outcome: `held` (quiet hours) or `throttled`.
    pub outcome: &'static str,
    /// Why, in words (kept in `messages.error` while it waits).
    pub reason: String,
    pub release_at: DateTime<Utc>,
    /// The encoded `SmsJob`, published again when due.
    pub job: Vec<u8>,
    /// The W3C trace context of the job's span (empty when spans are not
    /// exported), so its release continues the trace.
    pub trace_context: String,
}

/// Each message row is created `queued` (or kept, if it is queued already: a
/// retry or a job parked before) and its job parked until `release_at`. Nothing
/// is held for a row past `queued`; the caller then claims as usual. Rows are
/// written in job id order so concurrent batches lock in the same order.
const HOLD: &str = "WITH input AS ( \
       SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
                            $7::text[], $8::text[], $9::text[], $10::int2[], $11::text[], $12::text[], \
                            $13::timestamptz[], $14::bytea[], $15::text[]) \
         AS t(job_id, account_id, event_id, source_id, rule_id, recipient, body, provider, sender_id, \
              priority, reason, step, release_at, job, trace_context) \
       ORDER BY job_id), \
     msg AS ( \
       INSERT INTO messages (job_id, account_id, event_id, source_id, rule_id, recipient, body, status, \
                             provider, sender_id, priority, attempts, error, history) \
       SELECT job_id, account_id, event_id, source_id, rule_id, recipient, body, 'queued', provider, \
              sender_id, priority, 0, reason, jsonb_build_array(step::jsonb) FROM input \
       ON CONFLICT (job_id) DO UPDATE SET error = EXCLUDED.error, updated_at = now(), \
         history = messages.history || EXCLUDED.history \
       WHERE messages.status = 'queued' \
       RETURNING job_id) \
     INSERT INTO held_jobs (job_id, account_id, release_at, job, trace_context) \
     SELECT i.job_id, i.account_id, i.release_at, i.job, i.trace_context FROM input i JOIN msg USING (job_id) \
     ON CONFLICT (job_id) DO UPDATE SET release_at = EXCLUDED.release_at, job = EXCLUDED.job, \
       trace_context = EXCLUDED.trace_context \
     RETURNING job_id";

/// Parks each request's job; answers, in order, whether it was held (false: the
/// job is past `queued`).
pub async fn hold_jobs<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    requests: &[HoldRequest],
) -> Result<Vec<bool>, StoreError> {
    let text =
        |pick: fn(&HoldRequest) -> &str| -> Vec<&str> { requests.iter().map(pick).collect() };
    let steps: Vec<String> = requests
        .iter()
        .map(|request| {
            Step::now(
                0,
                &request.message.provider,
                request.outcome,
                &request.reason,
            )
            .to_json()
        })
        .collect();
    let held: Vec<String> = sqlx::query_scalar(HOLD)
        .bind(text(|request| &request.message.job_id))
        .bind(
            requests
                .iter()
                .map(|request| request.message.account_id)
                .collect::<Vec<_>>(),
        )
        .bind(text(|request| &request.message.event_id))
        .bind(text(|request| &request.message.source_id))
        .bind(text(|request| &request.message.rule_id))
        .bind(text(|request| &request.message.recipient))
        .bind(text(|request| &request.message.body))
        .bind(text(|request| &request.message.provider))
        .bind(text(|request| &request.message.sender_id))
        .bind(
            requests
                .iter()
                .map(|request| request.message.priority)
                .collect::<Vec<_>>(),
        )
        .bind(text(|request| &request.reason))
        .bind(steps)
        .bind(
            requests
                .iter()
                .map(|request| request.release_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            requests
                .iter()
                .map(|request| request.job.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(text(|request| &request.trace_context))
        .fetch_all(executor)
        .await?;
    let held: std::collections::HashSet<String> = held.into_iter().collect();
    Ok(requests
        .iter()
        .map(|request| held.contains(&request.message.job_id))
        .collect())
}

/// A held job that is due.
#[derive(Debug, Clone)]
pub struct DueHold {
    pub job_id: String,
    pub account_id: Uuid,
    pub release_at_ms: i64,
    pub job: Bytes,
    /// See [`HoldRequest::trace_context`].
    pub trace_context: String,
}

/// Takes up to `limit` due holds inside `transaction` (locked, skipped by other
/// replicas); the caller publishes them and then deletes them in the same
/// transaction, so a crash in between publishes them again rather than never.
pub async fn take_due_holds(
    transaction: &mut sqlx::PgConnection,
    limit: i64,
) -> Result<Vec<DueHold>, StoreError> {
    let rows = sqlx::query(
        "SELECT job_id, account_id, (extract(epoch from release_at) * 1000)::bigint AS release_at_ms, job, \
         trace_context \
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
                trace_context: row.try_get("trace_context")?,
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
