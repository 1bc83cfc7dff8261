//! `foco.v1.SchedulingService`: delayed jobs (list, cancel), rule previews and the
//! per-event reports the rules service writes. Served by the same `ControlApi`
//! (same authentication, metrics and error table) on the same port.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use foco_proto::v1::scheduling_service_server::SchedulingService;
use foco_proto::v1::{
    CancelScheduledJobsRequest, CancelScheduledJobsResponse, EventEnvelope, EventReport,
    ListEventReportsRequest, ListEventReportsResponse, ListEventSamplesRequest,
    ListEventSamplesResponse, ListScheduledJobsRequest, ListScheduledJobsResponse,
    PreviewRulesRequest, PreviewRulesResponse, RecipientPreview, ResolvedSource, RulePreview,
    ScheduledJob,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{AppState, ControlApi, accounts, millis, rules, sources};
use crate::auth::Caller;
use crate::error::ApiError;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// A preview payload is a sample, not a bulk upload.
const MAX_PREVIEW_PAYLOAD: usize = 256 * 1024;

#[tonic::async_trait]
impl SchedulingService for ControlApi {
    async fn list_scheduled_jobs(
        &self,
        request: Request<ListScheduledJobsRequest>,
    ) -> Result<Response<ListScheduledJobsResponse>, Status> {
        self.call("ListScheduledJobs", request, list_jobs).await
    }

    async fn cancel_scheduled_jobs(
        &self,
        request: Request<CancelScheduledJobsRequest>,
    ) -> Result<Response<CancelScheduledJobsResponse>, Status> {
        self.call("CancelScheduledJobs", request, cancel_jobs).await
    }

    async fn preview_rules(
        &self,
        request: Request<PreviewRulesRequest>,
    ) -> Result<Response<PreviewRulesResponse>, Status> {
        self.call("PreviewRules", request, preview).await
    }

    async fn list_event_reports(
        &self,
        request: Request<ListEventReportsRequest>,
    ) -> Result<Response<ListEventReportsResponse>, Status> {
        self.call("ListEventReports", request, list_reports).await
    }

    async fn list_event_samples(
        &self,
        request: Request<ListEventSamplesRequest>,
    ) -> Result<Response<ListEventSamplesResponse>, Status> {
        self.call("ListEventSamples", request, super::samples::list)
            .await
    }
}

fn limit(requested: u32) -> i64 {
    i64::from(match requested {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    })
}

/// A scheduled job with its rule's name, as [`select_scheduled_jobs`] reads it.
#[derive(sqlx::FromRow)]
pub(super) struct ScheduledJobRow {
    job_id: String,
    account_id: Uuid,
    /// None for a job sent through the messaging API.
    rule_id: Option<Uuid>,
    rule_name: Option<String>,
    event_id: String,
    correlation_key: String,
    recipient: String,
    body: String,
    due_at: DateTime<Utc>,
    state: String,
    cancel_reason: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// `SELECT … FROM scheduled_jobs j` with the rule's name, for a
/// [`ScheduledJobRow`]; the caller adds its `WHERE`.
macro_rules! select_scheduled_jobs {
    () => {
        "SELECT j.job_id, j.account_id, j.rule_id, r.name AS rule_name, j.event_id, j.correlation_key,
                j.recipient, j.body, j.due_at, j.state, j.cancel_reason, j.created_at, j.updated_at
         FROM scheduled_jobs j LEFT JOIN rules r ON r.id = j.rule_id "
    };
}
pub(super) use select_scheduled_jobs;

impl From<ScheduledJobRow> for ScheduledJob {
    fn from(row: ScheduledJobRow) -> Self {
        ScheduledJob {
            job_id: row.job_id,
            account_id: row.account_id.to_string(),
            rule_id: row.rule_id.map(|id| id.to_string()).unwrap_or_default(),
            rule_name: row.rule_name.unwrap_or_default(),
            event_id: row.event_id,
            key: row.correlation_key,
            to: row.recipient,
            body: row.body,
            due_at_ms: millis(row.due_at),
            state: row.state,
            cancel_reason: row.cancel_reason,
            created_at_ms: millis(row.created_at),
            updated_at_ms: millis(row.updated_at),
        }
    }
}

async fn list_jobs(
    state: AppState,
    caller: Caller,
    request: ListScheduledJobsRequest,
) -> Result<ListScheduledJobsResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let job_state = match request.state.as_str() {
        "" => "pending",
        "pending" | "published" | "cancelled" => request.state.as_str(),
        other => {
            return Err(ApiError::invalid(format!(
                "state {other:?} is not pending, published or cancelled"
            )));
        }
    };
    let rows = sqlx::query_as::<_, ScheduledJobRow>(concat!(
        select_scheduled_jobs!(),
        "WHERE j.account_id = $1 AND j.state = $2
           AND ($3 = '' OR r.name = $3) AND ($4 = '' OR j.correlation_key = $4)
           AND ($5 = '' OR j.recipient = $5)
         ORDER BY j.due_at, j.job_id LIMIT $6"
    ))
    .bind(account.id)
    .bind(job_state)
    .bind(&request.rule)
    .bind(&request.key)
    .bind(&request.to)
    .bind(limit(request.limit))
    .fetch_all(&state.pool)
    .await?;
    Ok(ListScheduledJobsResponse {
        jobs: rows.into_iter().map(ScheduledJob::from).collect(),
    })
}

/// Cancels the pending delayed jobs of a rule that no longer sends (deleted or
/// disabled), recording `reason` on each: they are neither sent later nor left
/// waiting unseen. The rules scheduler also refuses, at its due time, a job
/// whose rule is gone or disabled, for a job stored while this ran.
pub async fn cancel_jobs_of_rule(
    pool: &sqlx::PgPool,
    account_id: Uuid,
    rule_id: Uuid,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE scheduled_jobs SET state = 'cancelled', cancel_reason = $3, updated_at = now()
         WHERE account_id = $1 AND rule_id = $2 AND state = 'pending'",
    )
    .bind(account_id)
    .bind(rule_id)
    .bind(reason)
    .execute(pool)
    .await?
    .rows_affected())
}

async fn cancel_jobs(
    state: AppState,
    caller: Caller,
    request: CancelScheduledJobsRequest,
) -> Result<CancelScheduledJobsResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let by_ids = !request.job_ids.is_empty();
    let by_key = !request.rule.is_empty() || !request.key.is_empty();
    // The row lock this UPDATE takes is the one the scheduler's pass holds while
    // publishing, so a job is either cancelled before it is published or not at all.
    let cancelled: Vec<(String, String)> = match (by_ids, by_key) {
        (true, false) => {
            sqlx::query_as(
                "UPDATE scheduled_jobs SET state = 'cancelled', cancel_reason = 'cancelled through the API',
                        updated_at = now()
                 WHERE account_id = $1 AND job_id = ANY($2) AND state = 'pending'
                 RETURNING job_id, recipient",
            )
            .bind(account.id)
            .bind(&request.job_ids)
            .fetch_all(&state.pool)
            .await?
        }
        (false, true) if !request.rule.is_empty() && !request.key.is_empty() => {
            sqlx::query_as(
                "UPDATE scheduled_jobs j SET state = 'cancelled', cancel_reason = 'cancelled through the API',
                        updated_at = now()
                 FROM rules r
                 WHERE r.id = j.rule_id AND r.account_id = $1 AND r.name = $2
                   AND j.account_id = $1 AND j.correlation_key = $3 AND j.state = 'pending'
                 RETURNING j.job_id, j.recipient",
            )
            .bind(account.id)
            .bind(&request.rule)
            .bind(&request.key)
            .fetch_all(&state.pool)
            .await?
        }
        _ => {
            return Err(ApiError::invalid(
                "give job_ids, or rule and key (not both)",
            ));
        }
    };
    let account_id = account.id.to_string();
    let changes: Vec<foco_proto::v1::StatusChange> = cancelled
        .iter()
        .map(|(job_id, recipient)| {
            let mut change =
                foco_bus::status_change(&account_id, job_id, foco_bus::status::kind::CANCELLED);
            change.reason = "cancelled through the API".to_owned();
            change.to.clone_from(recipient);
            change
        })
        .collect();
    state.publisher.publish_status_changes(&changes).await;
    let cancelled = cancelled.len();
    if cancelled > 0 {
        tracing::info!(account_id = %account.id, cancelled, "scheduled jobs cancelled through the API");
    }
    Ok(CancelScheduledJobsResponse {
        cancelled: u32::try_from(cancelled).unwrap_or(u32::MAX),
    })
}

/// Reads a field the way ingress does: `header:<Name>` or `body:<a.b.c>`.
fn locate(locator: &str, headers: &HashMap<String, String>, payload: &serde_json::Value) -> String {
    if let Some(name) = locator.strip_prefix("header:") {
        return headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name.trim()))
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
    }
    if let Some(path) = locator.strip_prefix("body:") {
        let mut value = payload;
        for part in path.trim().split('.') {
            value = match value {
                serde_json::Value::Object(map) => map.get(part).unwrap_or(&serde_json::Value::Null),
                serde_json::Value::Array(items) => part
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| items.get(index))
                    .unwrap_or(&serde_json::Value::Null),
                _ => &serde_json::Value::Null,
            };
        }
        return match value {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
    }
    String::new()
}

async fn preview(
    state: AppState,
    caller: Caller,
    request: PreviewRulesRequest,
) -> Result<PreviewRulesResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let source = sources::load(&state, &account, &request.source).await?;
    if request.payload.len() > MAX_PREVIEW_PAYLOAD {
        return Err(ApiError::invalid("payload is larger than 256 KiB"));
    }
    let payload_text = if request.payload.trim().is_empty() {
        "{}"
    } else {
        request.payload.as_str()
    };
    let payload: serde_json::Value = serde_json::from_str(payload_text)
        .map_err(|error| ApiError::invalid(format!("payload is not valid JSON: {error}")))?;
    let event_type = if request.event_type.is_empty() {
        locate(&source.event_type_from, &request.headers, &payload)
    } else {
        request.event_type.clone()
    };
    let (source_rules, only_rule) = match &request.draft {
        Some(draft) => (vec![rules::draft_rule(draft)?], Some(draft.name.as_str())),
        None => {
            let rule_rows = rules::load_for_source(&state, source.id, false).await?;
            if !request.rule.is_empty() && !rule_rows.iter().any(|rule| rule.name == request.rule) {
                return Err(ApiError::not_found(format!(
                    "rule {:?} not found in source {:?}",
                    request.rule, source.name
                )));
            }
            let stored = rule_rows
                .into_iter()
                .map(rules::RuleRow::into_proto)
                .collect();
            (
                stored,
                (!request.rule.is_empty()).then_some(request.rule.as_str()),
            )
        }
    };
    let resolved = ResolvedSource {
        source: Some(source.to_proto()?),
        account: Some(account.clone().into_proto()),
        rules: source_rules,
        ..Default::default()
    };
    let now_ms = Utc::now().timestamp_millis();
    let event = EventEnvelope {
        event_id: "evt_preview".to_owned(),
        account_id: account.id.to_string(),
        source_id: source.id.to_string(),
        event_type: event_type.clone(),
        received_at_ms: now_ms,
        content_type: "application/json".to_owned(),
        headers: request
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect(),
        payload: payload_text.as_bytes().to_vec(),
        ..Default::default()
    };
    let engine = foco_rule_engine::Engine::new();
    let previews = engine
        .preview(&event, &resolved, only_rule, now_ms)
        .map_err(|error| ApiError::invalid(error.to_string()))?;
    Ok(PreviewRulesResponse {
        event_type,
        rules: previews.into_iter().map(rule_preview).collect(),
    })
}

/// One rule's preview as the API answers it.
fn rule_preview(preview: foco_rule_engine::RulePreview) -> RulePreview {
    match preview.result {
        Ok(None) => RulePreview {
            rule: preview.rule_name,
            matched: false,
            ..Default::default()
        },
        Ok(Some(evaluation)) => RulePreview {
            rule: preview.rule_name,
            matched: true,
            recipients: evaluation
                .recipients
                .into_iter()
                .map(|recipient| RecipientPreview {
                    raw: recipient.raw,
                    e164: recipient.e164.clone().unwrap_or_default(),
                    error: recipient.e164.err().unwrap_or_default(),
                })
                .collect(),
            body: evaluation.body,
            encoding: evaluation.segments.encoding.as_str().to_owned(),
            segments: evaluation.segments.segments as u32,
            characters: evaluation.segments.characters as u32,
            ucs2_characters: evaluation
                .ucs2_characters
                .iter()
                .map(char::to_string)
                .collect(),
            send_at_ms: evaluation.due_at_ms.unwrap_or(0),
            key: evaluation.key,
            error: String::new(),
        },
        Err(error) => RulePreview {
            rule: preview.rule_name,
            matched: true,
            error: error.to_string(),
            ..Default::default()
        },
    }
}

/// An event report, as [`select_event_reports`] reads it.
#[derive(sqlx::FromRow)]
pub(super) struct ReportRow {
    event_id: String,
    rule_id: String,
    rule_name: String,
    kind: String,
    detail: String,
    created_at: DateTime<Utc>,
}

/// `SELECT … FROM event_reports` for a [`ReportRow`]; the caller adds its `WHERE`.
macro_rules! select_event_reports {
    () => {
        "SELECT event_id, rule_id, rule_name, kind, detail, created_at FROM event_reports "
    };
}
pub(super) use select_event_reports;

impl From<ReportRow> for EventReport {
    fn from(row: ReportRow) -> Self {
        EventReport {
            event_id: row.event_id,
            rule_id: row.rule_id,
            rule_name: row.rule_name,
            kind: row.kind,
            detail: row.detail,
            created_at_ms: millis(row.created_at),
        }
    }
}

async fn list_reports(
    state: AppState,
    caller: Caller,
    request: ListEventReportsRequest,
) -> Result<ListEventReportsResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let rows = sqlx::query_as::<_, ReportRow>(concat!(
        select_event_reports!(),
        "WHERE account_id = $1 AND ($2 = '' OR event_id = $2)
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(account.id)
    .bind(&request.event_id)
    .bind(limit(request.limit))
    .fetch_all(&state.pool)
    .await?;
    Ok(ListEventReportsResponse {
        reports: rows.into_iter().map(EventReport::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::locate;
    use std::collections::HashMap;

    #[test]
    fn locators_read_headers_and_body_paths() {
        let headers = HashMap::from([("X-Shopify-Topic".to_owned(), "orders/create".to_owned())]);
        let payload = serde_json::json!({"type": "a", "data": {"items": [{"kind": 7}]}});
        assert_eq!(
            locate("header:x-shopify-topic", &headers, &payload),
            "orders/create"
        );
        assert_eq!(locate("body:type", &headers, &payload), "a");
        assert_eq!(locate("body:data.items.0.kind", &headers, &payload), "7");
        assert_eq!(locate("body:missing", &headers, &payload), "");
        assert_eq!(locate("", &headers, &payload), "");
    }
}
