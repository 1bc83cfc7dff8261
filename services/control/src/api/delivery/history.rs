//! One message's whole story (what made it, its wait, attempts, receipts,
//! operator actions, parts), and cancelling a job that has not been sent yet.

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    CancelMessageRequest, CancelMessageResponse, EventReport, GetMessageHistoryRequest,
    GetMessageRequest, MessageHistory, MessagePart, MessageStory, ScheduledJob, SmsJob,
};
use prost::Message as _;
use uuid::Uuid;

use super::{attempts_from_json, millis, require_job_id, step};
use crate::api::scheduling::{
    ReportRow, ScheduledJobRow, select_event_reports, select_scheduled_jobs,
};
use crate::api::{AppState, accounts};
use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Debug, sqlx::FromRow)]
struct HistoryRow {
    job_id: String,
    account_id: uuid::Uuid,
    event_id: String,
    source_id: String,
    rule_id: String,
    body: String,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
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
    find_message(&state.pool, account.id, &request.job_id)
        .await?
        .map(|(row, parts)| history_of(&row, parts))
        .ok_or_else(|| ApiError::not_found(format!("message {:?} not found", request.job_id)))
}

/// The sender's row of a message and its parts.
async fn find_message(
    pool: &sqlx::PgPool,
    account_id: Uuid,
    job_id: &str,
) -> Result<Option<(HistoryRow, Vec<PartRow>)>, ApiError> {
    let Some(row) = sqlx::query_as::<_, HistoryRow>(
        "SELECT job_id, account_id, event_id, source_id, rule_id, body, created_at, sent_at, \
                delivered_at, recipient, status, provider, provider_message_id, attempts, error, \
                segments, price, price_currency, history \
         FROM messages WHERE account_id = $1 AND job_id = $2",
    )
    .bind(account_id)
    .bind(job_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let parts = sqlx::query_as::<_, PartRow>(
        "SELECT part_index, provider_message_id, status, error FROM message_parts \
         WHERE job_id = $1 ORDER BY part_index",
    )
    .bind(job_id)
    .fetch_all(pool)
    .await?;
    Ok(Some((row, parts)))
}

fn history_of(row: &HistoryRow, parts: Vec<PartRow>) -> MessageHistory {
    MessageHistory {
        job_id: row.job_id.clone(),
        account_id: row.account_id.to_string(),
        to: row.recipient.clone(),
        status: row.status.clone(),
        provider: row.provider.clone(),
        provider_message_id: row.provider_message_id.clone(),
        attempts: u32::try_from(row.attempts).unwrap_or_default(),
        error: row.error.clone(),
        segments: u32::try_from(row.segments).unwrap_or_default(),
        price: row.price.clone(),
        price_currency: row.price_currency.clone(),
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
    }
}

/// Where a message without a sender's row stands: its scheduled job's state.
fn scheduled_status(state: &str) -> &'static str {
    match state {
        "pending" => "scheduled",
        "cancelled" => "cancelled",
        // Published: on FOCO_SMS, not claimed by the sender yet.
        _ => "queued",
    }
}

pub async fn story(
    state: AppState,
    caller: Caller,
    request: GetMessageRequest,
) -> Result<MessageStory, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    if request.message_id.is_empty() {
        return Err(ApiError::invalid("message_id is required"));
    }
    let pool = &state.pool;
    let message = find_message(pool, account.id, &request.message_id).await?;
    let scheduled = sqlx::query_as::<_, ScheduledJobRow>(concat!(
        select_scheduled_jobs!(),
        "WHERE j.account_id = $1 AND j.job_id = $2"
    ))
    .bind(account.id)
    .bind(&request.message_id)
    .fetch_optional(pool)
    .await?
    .map(ScheduledJob::from);
    let mut story = match (&message, &scheduled) {
        (Some((row, _)), _) => MessageStory {
            status: row.status.clone(),
            event_id: row.event_id.clone(),
            source_id: row.source_id.clone(),
            rule_id: row.rule_id.clone(),
            to: row.recipient.clone(),
            body: row.body.clone(),
            created_at_ms: millis(row.created_at),
            sent_at_ms: row.sent_at.map(millis).unwrap_or_default(),
            delivered_at_ms: row.delivered_at.map(millis).unwrap_or_default(),
            ..Default::default()
        },
        (None, Some(job)) => MessageStory {
            status: scheduled_status(&job.state).to_owned(),
            event_id: job.event_id.clone(),
            source_id: scheduled_source(pool, account.id, &job.job_id).await?,
            rule_id: job.rule_id.clone(),
            to: job.to.clone(),
            body: job.body.clone(),
            created_at_ms: job.created_at_ms,
            ..Default::default()
        },
        (None, None) => {
            return Err(ApiError::not_found(format!(
                "message {:?} not found",
                request.message_id
            )));
        }
    };
    story.message_id.clone_from(&request.message_id);
    story.account_id = account.id.to_string();
    let metadata: Option<sqlx::types::Json<std::collections::HashMap<String, String>>> =
        sqlx::query_scalar("SELECT metadata FROM api_sends WHERE account_id = $1 AND job_id = $2")
            .bind(account.id)
            .bind(&request.message_id)
            .fetch_optional(pool)
            .await?;
    story.origin = if metadata.is_some() { "api" } else { "rule" }.to_owned();
    story.metadata = metadata.map(|metadata| metadata.0).unwrap_or_default();
    story.rule_name = name_of(
        pool,
        "SELECT name FROM rules WHERE account_id = $1 AND id = $2",
        account.id,
        &story.rule_id,
    )
    .await?;
    story.source_name = name_of(
        pool,
        "SELECT name FROM sources WHERE account_id = $1 AND id = $2",
        account.id,
        &story.source_id,
    )
    .await?;
    if !story.event_id.is_empty() {
        story.decisions = sqlx::query_as::<_, ReportRow>(concat!(
            select_event_reports!(),
            "WHERE account_id = $1 AND event_id = $2 AND (rule_id = $3 OR rule_id = '')
             ORDER BY created_at, id"
        ))
        .bind(account.id)
        .bind(&story.event_id)
        .bind(&story.rule_id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(EventReport::from)
        .collect();
    }
    story.scheduled = scheduled;
    story.message = message.map(|(row, parts)| history_of(&row, parts));
    Ok(story)
}

/// The source of a job still in the scheduler, from the job it will publish.
async fn scheduled_source(
    pool: &sqlx::PgPool,
    account_id: Uuid,
    job_id: &str,
) -> Result<String, ApiError> {
    let job: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT job FROM scheduled_jobs WHERE account_id = $1 AND job_id = $2")
            .bind(account_id)
            .bind(job_id)
            .fetch_optional(pool)
            .await?;
    Ok(job
        .and_then(|bytes| SmsJob::decode(bytes.as_slice()).ok())
        .map(|job| job.source_id)
        .unwrap_or_default())
}

/// The name `query` finds for the account's rule or source `id`; empty when
/// there is none (deleted since, or no id).
async fn name_of(
    pool: &sqlx::PgPool,
    query: &'static str,
    account_id: Uuid,
    id: &str,
) -> Result<String, ApiError> {
    let Ok(id) = Uuid::parse_str(id) else {
        return Ok(String::new());
    };
    let name: Option<String> = sqlx::query_scalar(query)
        .bind(account_id)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(name.unwrap_or_default())
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
