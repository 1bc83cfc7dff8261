//! Jobs whose outcome is unknown: the sender stopped (or the provider did not
//! answer) after a request may have reached a provider without an idempotency
//! key. An operator looks the message up at the provider and resolves the job, or
//! decides to send it again.

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    ListUnknownJobsRequest, ListUnknownJobsResponse, Priority, RequeueResponse,
    ResendUnknownJobRequest, ResolveUnknownJobRequest, SmsJob, UnknownJob, UnknownResolution,
};

use super::{Requeuer, before, limit, millis, require_job_id, step};
use crate::api::{AppState, accounts};
use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Debug, sqlx::FromRow)]
struct UnknownRow {
    job_id: String,
    account_id: uuid::Uuid,
    event_id: String,
    recipient: String,
    body: String,
    provider: String,
    attempts: i32,
    error: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl UnknownRow {
    fn into_proto(self) -> UnknownJob {
        UnknownJob {
            job_id: self.job_id,
            account_id: self.account_id.to_string(),
            event_id: self.event_id,
            to: self.recipient,
            body: self.body,
            provider: self.provider,
            attempts: u32::try_from(self.attempts).unwrap_or_default(),
            error: self.error,
            status: self.status,
            created_at_ms: millis(self.created_at),
            updated_at_ms: millis(self.updated_at),
        }
    }
}

pub async fn list(
    state: AppState,
    caller: Caller,
    request: ListUnknownJobsRequest,
) -> Result<ListUnknownJobsResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let rows = sqlx::query_as::<_, UnknownRow>(
        "SELECT job_id, account_id, event_id, recipient, body, provider, attempts, error, status, \
                created_at, updated_at \
         FROM messages WHERE account_id = $1 AND unknown_since IS NOT NULL AND status = 'unknown' \
           AND ($2::timestamptz IS NULL OR unknown_since < $2) \
         ORDER BY unknown_since DESC, job_id DESC LIMIT $3",
    )
    .bind(account.id)
    .bind(before(request.before_ms)?)
    .bind(limit(request.limit))
    .fetch_all(&state.pool)
    .await?;
    Ok(ListUnknownJobsResponse {
        jobs: rows.into_iter().map(UnknownRow::into_proto).collect(),
    })
}

pub async fn resolve(
    state: AppState,
    caller: Caller,
    request: ResolveUnknownJobRequest,
) -> Result<UnknownJob, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    require_job_id(&request.job_id)?;
    let status = match UnknownResolution::try_from(request.resolution) {
        Ok(UnknownResolution::Sent) => "sent",
        Ok(UnknownResolution::Failed) => "failed",
        _ => return Err(ApiError::invalid("resolution must be SENT or FAILED")),
    };
    let note = if request.note.is_empty() {
        format!("resolved by an operator as {status}")
    } else {
        request.note.clone()
    };
    let row = sqlx::query_as::<_, UnknownRow>(
        "WITH resolved AS ( \
         UPDATE messages SET status = $3, error = CASE WHEN $3 = 'failed' THEN $5 ELSE error END, \
           provider_message_id = CASE WHEN $4 = '' THEN provider_message_id ELSE $4 END, \
           sent_at = CASE WHEN $3 = 'sent' THEN COALESCE(sent_at, now()) ELSE sent_at END, \
           history = history || $6::jsonb, updated_at = now(), unknown_since = NULL \
         WHERE account_id = $1 AND job_id = $2 AND status = 'unknown' \
         RETURNING job_id, account_id, event_id, recipient, body, provider, provider_message_id, \
                   attempts, error, status, created_at, updated_at), \
         ids AS ( \
           INSERT INTO provider_message_ids (provider_message_id, job_id) \
           SELECT provider_message_id, job_id FROM resolved WHERE provider_message_id <> '' \
           ON CONFLICT DO NOTHING) \
         SELECT job_id, account_id, event_id, recipient, body, provider, attempts, error, status, \
                created_at, updated_at FROM resolved",
    )
    .bind(account.id)
    .bind(&request.job_id)
    .bind(status)
    .bind(&request.provider_message_id)
    .bind(&note)
    .bind(step("resolved", &note))
    .fetch_optional(&state.pool)
    .await?;
    match row {
        Some(row) => Ok(row.into_proto()),
        None => Err(not_unknown(&state, account.id, &request.job_id).await),
    }
}

#[derive(Debug, sqlx::FromRow)]
struct ResendRow {
    job_id: String,
    event_id: String,
    source_id: String,
    rule_id: String,
    recipient: String,
    body: String,
    provider: String,
    sender_id: String,
    priority: i16,
}

/// Requeues the job through the route it was being sent through (locked to it:
/// where the provider has an idempotency key, the job id keeps this safe).
pub async fn resend(
    state: AppState,
    caller: Caller,
    request: ResendUnknownJobRequest,
    requeuer: Requeuer,
) -> Result<RequeueResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    require_job_id(&request.job_id)?;
    let mut transaction = state.pool.begin().await?;
    let row = sqlx::query_as::<_, ResendRow>(
        "UPDATE messages SET status = 'queued', provider_locked = true, updated_at = now(), \
           unknown_since = NULL, \
           history = history || $3::jsonb \
         WHERE account_id = $1 AND job_id = $2 AND status = 'unknown' \
         RETURNING job_id, event_id, source_id, rule_id, recipient, body, provider, sender_id, priority",
    )
    .bind(account.id)
    .bind(&request.job_id)
    .bind(step("requeued", "resent by an operator"))
    .fetch_optional(&mut *transaction)
    .await?;
    let Some(row) = row else {
        return Err(not_unknown(&state, account.id, &request.job_id).await);
    };
    let job = SmsJob {
        job_id: row.job_id,
        account_id: account.id.to_string(),
        event_id: row.event_id,
        source_id: row.source_id,
        rule_id: row.rule_id,
        to: row.recipient,
        body: row.body,
        provider: row.provider,
        from: row.sender_id,
        priority: if row.priority == Priority::Marketing as i16 {
            Priority::Marketing as i32
        } else {
            Priority::Transactional as i32
        },
        created_at_ms: Utc::now().timestamp_millis(),
        ..SmsJob::default()
    };
    let publish_id = foco_bus::resend_msg_id(&job.job_id, Utc::now().timestamp_millis());
    requeuer.publish(&job, &publish_id).await?;
    transaction.commit().await?;
    tracing::info!(job_id = %job.job_id, "unknown job resent by an operator");
    Ok(RequeueResponse {
        job_id: job.job_id,
        publish_id,
    })
}

async fn not_unknown(state: &AppState, account_id: uuid::Uuid, job_id: &str) -> ApiError {
    let status: Result<Option<String>, sqlx::Error> =
        sqlx::query_scalar("SELECT status FROM messages WHERE account_id = $1 AND job_id = $2")
            .bind(account_id)
            .bind(job_id)
            .fetch_optional(&state.pool)
            .await;
    match status {
        Ok(Some(status)) => ApiError::invalid(format!("job {job_id:?} is {status}, not unknown")),
        Ok(None) => ApiError::not_found(format!("job {job_id:?} not found")),
        Err(error) => ApiError::Database(error),
    }
}
