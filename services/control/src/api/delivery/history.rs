//! One message's full story (attempts, receipts, operator actions, parts), and
//! cancelling a job that has not been sent yet.

use foco_proto::v1::{
    CancelMessageRequest, CancelMessageResponse, GetMessageHistoryRequest, MessageHistory,
    MessagePart,
};

use super::{attempts_from_json, require_job_id, step};
use crate::api::{AppState, accounts};
use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Debug, sqlx::FromRow)]
struct HistoryRow {
    job_id: String,
    account_id: uuid::Uuid,
    recipient: String,
    status: String,
    provider: String,
    provider_message_id: String,
    attempts: i32,
    error: String,
    segments: i32,
    price: String,
    price_currency: String,
    history: serde_json::Value,
}

#[derive(Debug, sqlx::FromRow)]
struct PartRow {
    part_index: i32,
    provider_message_id: String,
    status: String,
    error: String,
}

pub async fn get(
    state: AppState,
    caller: Caller,
    request: GetMessageHistoryRequest,
) -> Result<MessageHistory, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    require_job_id(&request.job_id)?;
    let row = sqlx::query_as::<_, HistoryRow>(
        "SELECT job_id, account_id, recipient, status, provider, provider_message_id, attempts, error, \
                segments, price, price_currency, history \
         FROM messages WHERE account_id = $1 AND job_id = $2",
    )
    .bind(account.id)
    .bind(&request.job_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("message {:?} not found", request.job_id)))?;
    let parts = sqlx::query_as::<_, PartRow>(
        "SELECT part_index, provider_message_id, status, error FROM message_parts \
         WHERE job_id = $1 ORDER BY part_index",
    )
    .bind(&request.job_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(MessageHistory {
        job_id: row.job_id,
        account_id: row.account_id.to_string(),
        to: row.recipient,
        status: row.status,
        provider: row.provider,
        provider_message_id: row.provider_message_id,
        attempts: u32::try_from(row.attempts).unwrap_or_default(),
        error: row.error,
        segments: u32::try_from(row.segments).unwrap_or_default(),
        price: row.price,
        price_currency: row.price_currency,
        history: attempts_from_json(&row.history),
        parts: parts
            .into_iter()
            .map(|part| MessagePart {
                index: u32::try_from(part.part_index).unwrap_or_default(),
                provider_message_id: part.provider_message_id,
                status: part.status,
                error: part.error,
            })
            .collect(),
    })
}

/// Only a queued job is cancelled (held for quiet hours, waiting for a retry, or
/// requeued): one that is being sent or is finished keeps its state.
pub async fn cancel(
    state: AppState,
    caller: Caller,
    request: CancelMessageRequest,
) -> Result<CancelMessageResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    require_job_id(&request.job_id)?;
    let mut transaction = state.pool.begin().await?;
    let cancelled = sqlx::query(
        "UPDATE messages SET status = 'cancelled', updated_at = now(), history = history || $3::jsonb \
         WHERE account_id = $1 AND job_id = $2 AND status = 'queued'",
    )
    .bind(account.id)
    .bind(&request.job_id)
    .bind(step("cancelled", "cancelled by an operator"))
    .execute(&mut *transaction)
    .await?
    .rows_affected()
        == 1;
    if cancelled {
        sqlx::query("DELETE FROM held_jobs WHERE job_id = $1")
            .bind(&request.job_id)
            .execute(&mut *transaction)
            .await?;
    }
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM messages WHERE account_id = $1 AND job_id = $2")
            .bind(account.id)
            .bind(&request.job_id)
            .fetch_optional(&mut *transaction)
            .await?;
    transaction.commit().await?;
    let status = status
        .ok_or_else(|| ApiError::not_found(format!("message {:?} not found", request.job_id)))?;
    Ok(CancelMessageResponse { cancelled, status })
}
