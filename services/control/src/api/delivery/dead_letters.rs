//! Dead letters: list, show (with the message's full history), retry.

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    DeadLetter, GetDeadLetterRequest, ListDeadLettersRequest, ListDeadLettersResponse,
    RequeueResponse, RetryDeadLetterRequest, SmsJob,
};
use prost::Message as _;

use super::{Requeuer, attempts_from_json, before, limit, millis, require_job_id, step};
use crate::api::{AppState, accounts};
use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Debug, sqlx::FromRow)]
struct DeadLetterRow {
    job_id: String,
    account_id: uuid::Uuid,
    event_id: String,
    rule_id: String,
    recipient: String,
    body: String,
    provider: String,
    reason: String,
    attempts: i32,
    history: serde_json::Value,
    dead_lettered_at: DateTime<Utc>,
    retried_at: Option<DateTime<Utc>>,
    retry_count: i32,
    status: String,
}

impl DeadLetterRow {
    fn into_proto(self) -> DeadLetter {
        DeadLetter {
            job_id: self.job_id,
            account_id: self.account_id.to_string(),
            event_id: self.event_id,
            rule_id: self.rule_id,
            to: self.recipient,
            body: self.body,
            provider: self.provider,
            reason: self.reason,
            attempts: u32::try_from(self.attempts).unwrap_or_default(),
            history: attempts_from_json(&self.history),
            dead_lettered_at_ms: millis(self.dead_lettered_at),
            retried_at_ms: self.retried_at.map(millis).unwrap_or_default(),
            retry_count: u32::try_from(self.retry_count).unwrap_or_default(),
            status: self.status,
        }
    }
}

/// `$HISTORY` is the dead letter's snapshot in lists and the message's full
/// history (including what happened after a retry) when one is shown.
macro_rules! select_dead_letters {
    ($history:literal) => {
        concat!(
            "SELECT d.job_id, d.account_id, m.event_id, m.rule_id, m.recipient, m.body, m.provider, \
                    d.reason, d.attempts, ",
            $history,
            " AS history, d.dead_lettered_at, d.retried_at, d.retry_count, m.status \
             FROM dead_letters d JOIN messages m USING (job_id) "
        )
    };
}

pub async fn list(
    state: AppState,
    caller: Caller,
    request: ListDeadLettersRequest,
) -> Result<ListDeadLettersResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let rows = sqlx::query_as::<_, DeadLetterRow>(concat!(
        select_dead_letters!("d.history"),
        "WHERE d.account_id = $1 \
           AND ($2 OR d.retried_at IS NULL) \
           AND ($3::timestamptz IS NULL OR d.dead_lettered_at < $3) \
         ORDER BY d.dead_lettered_at DESC, d.job_id DESC LIMIT $4"
    ))
    .bind(account.id)
    .bind(request.include_retried)
    .bind(before(request.before_ms)?)
    .bind(limit(request.limit))
    .fetch_all(&state.pool)
    .await?;
    Ok(ListDeadLettersResponse {
        dead_letters: rows.into_iter().map(DeadLetterRow::into_proto).collect(),
    })
}

pub async fn get(
    state: AppState,
    caller: Caller,
    request: GetDeadLetterRequest,
) -> Result<DeadLetter, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    require_job_id(&request.job_id)?;
    sqlx::query_as::<_, DeadLetterRow>(concat!(
        select_dead_letters!("m.history"),
        "WHERE d.account_id = $1 AND d.job_id = $2"
    ))
    .bind(account.id)
    .bind(&request.job_id)
    .fetch_optional(&state.pool)
    .await?
    .map(DeadLetterRow::into_proto)
    .ok_or_else(|| ApiError::not_found(format!("dead letter {:?} not found", request.job_id)))
}

/// Puts the job back on FOCO_SMS with a fresh attempt budget and age.
pub async fn retry(
    state: AppState,
    caller: Caller,
    request: RetryDeadLetterRequest,
    requeuer: Requeuer,
) -> Result<RequeueResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    require_job_id(&request.job_id)?;
    let mut transaction = state.pool.begin().await?;
    let found: Option<(Vec<u8>, String, i32)> = sqlx::query_as(
        "SELECT d.job, m.status, d.retry_count FROM dead_letters d JOIN messages m USING (job_id) \
         WHERE d.account_id = $1 AND d.job_id = $2 FOR UPDATE",
    )
    .bind(account.id)
    .bind(&request.job_id)
    .fetch_optional(&mut *transaction)
    .await?;
    let Some((encoded, status, retry_count)) = found else {
        return Err(ApiError::not_found(format!(
            "dead letter {:?} not found",
            request.job_id
        )));
    };
    if status != "failed" {
        return Err(ApiError::invalid(format!(
            "job {:?} is {status} now; only a failed dead letter can be retried",
            request.job_id
        )));
    }
    let mut job = SmsJob::decode(encoded.as_slice())
        .map_err(|_| ApiError::Corrupt("dead_letters.job is not an SmsJob".to_owned()))?;
    // A fresh age: the sender gives up on jobs older than its maximum age.
    job.created_at_ms = Utc::now().timestamp_millis();
    let retry_number = retry_count + 1;
    sqlx::query(
        "UPDATE messages SET status = 'queued', attempts = 0, error = '', updated_at = now(), \
           history = history || $2::jsonb WHERE job_id = $1",
    )
    .bind(&request.job_id)
    .bind(step(
        "requeued",
        &format!("dead letter retry {retry_number}"),
    ))
    .execute(&mut *transaction)
    .await?;
    sqlx::query("UPDATE dead_letters SET retried_at = now(), retry_count = $2 WHERE job_id = $1")
        .bind(&request.job_id)
        .bind(retry_number)
        .execute(&mut *transaction)
        .await?;
    let publish_id = foco_bus::retry_msg_id(&job.job_id, retry_number);
    requeuer.publish(&job, &publish_id).await?;
    transaction.commit().await?;
    tracing::info!(job_id = %job.job_id, retry_number, "dead letter requeued");
    Ok(RequeueResponse {
        job_id: job.job_id,
        publish_id,
    })
}
