//! `foco.v1.DeliveryService`: dead letters, opt-outs, jobs whose outcome is
//! unknown, and message histories, read from (and acted on in) the tables the
//! sender writes. Every call goes through the same `ControlApi::call` as the
//! control API: the same authentication, account scoping, metrics and error table.
//!
//! Requeueing a job (retrying a dead letter, resending an unknown job) moves its
//! row back to `queued` and publishes the job on FOCO_SMS in one step: the
//! publish happens inside the row's transaction and the transaction commits only
//! after JetStream stored the job. The sender then claims it as any other job, so
//! it is still sent at most once per requeue.

mod dead_letters;
mod history;
mod opt_outs;
mod unknown;

use chrono::{DateTime, TimeZone as _, Utc};
use foco_proto::v1::delivery_service_server::DeliveryService;
use foco_proto::v1::*;
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{AppState, ControlApi};
use crate::error::ApiError;
use crate::publisher::Publisher;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Publishes requeued jobs on FOCO_SMS.
#[derive(Clone)]
pub struct Requeuer {
    publisher: Publisher,
}

impl Requeuer {
    pub fn new(publisher: Publisher) -> Self {
        Self { publisher }
    }

    /// Publishes `job` with `publish_id` as its `Nats-Msg-Id`.
    async fn publish(&self, job: &SmsJob, publish_id: &str) -> Result<(), ApiError> {
        self.publisher
            .publish(
                self.publisher.names().sms_subject(&job.account_id),
                publish_id,
                job.encode_to_vec().into(),
            )
            .await
            .map_err(|error| {
                tracing::warn!(error = %error, job_id = %job.job_id, "requeued job not published");
                ApiError::Unavailable(
                    "the job could not be queued (NATS unavailable); retry later".to_owned(),
                )
            })?;
        Ok(())
    }
}

#[derive(Clone)]
pub struct DeliveryApi {
    control: ControlApi,
    requeuer: Requeuer,
}

impl DeliveryApi {
    pub fn new(state: AppState, requeuer: Requeuer) -> Self {
        Self {
            control: ControlApi::new(state),
            requeuer,
        }
    }
}

fn limit(requested: u32) -> i64 {
    i64::from(match requested {
        0 => DEFAULT_LIMIT,
        limit => limit.min(MAX_LIMIT),
    })
}

fn before(before_ms: i64) -> Result<Option<DateTime<Utc>>, ApiError> {
    match before_ms {
        0 => Ok(None),
        ms => Utc
            .timestamp_millis_opt(ms)
            .single()
            .map(Some)
            .ok_or_else(|| ApiError::invalid("before_ms is out of range")),
    }
}

fn require_job_id(job_id: &str) -> Result<(), ApiError> {
    if job_id.is_empty() {
        return Err(ApiError::invalid("job_id is required"));
    }
    Ok(())
}

/// `messages.history` (a JSON array of steps) as protobuf attempts.
fn attempts_from_json(history: &serde_json::Value) -> Vec<Attempt> {
    let Some(steps) = history.as_array() else {
        return Vec::new();
    };
    steps
        .iter()
        .map(|step| Attempt {
            at_ms: step
                .get("at")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
            attempt: step
                .get("attempt")
                .and_then(serde_json::Value::as_u64)
                .and_then(|attempt| u32::try_from(attempt).ok())
                .unwrap_or(0),
            provider: text(step, "provider"),
            outcome: text(step, "outcome"),
            detail: text(step, "detail"),
        })
        .collect()
}

fn text(step: &serde_json::Value, field: &str) -> String {
    step.get(field)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A history step written by control (an operator's action).
fn step(outcome: &str, detail: &str) -> String {
    serde_json::json!({
        "at": Utc::now().timestamp_millis(),
        "attempt": 0,
        "provider": "",
        "outcome": outcome,
        "detail": detail,
    })
    .to_string()
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[tonic::async_trait]
impl DeliveryService for DeliveryApi {
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        self.control
            .call("ListDeadLetters", request, dead_letters::list)
            .await
    }

    async fn get_dead_letter(
        &self,
        request: Request<GetDeadLetterRequest>,
    ) -> Result<Response<DeadLetter>, Status> {
        self.control
            .call("GetDeadLetter", request, dead_letters::get)
            .await
    }

    async fn retry_dead_letter(
        &self,
        request: Request<RetryDeadLetterRequest>,
    ) -> Result<Response<RequeueResponse>, Status> {
        let requeuer = self.requeuer.clone();
        self.control
            .call("RetryDeadLetter", request, move |state, caller, request| {
                dead_letters::retry(state, caller, request, requeuer)
            })
            .await
    }

    async fn list_opt_outs(
        &self,
        request: Request<ListOptOutsRequest>,
    ) -> Result<Response<ListOptOutsResponse>, Status> {
        self.control
            .call("ListOptOuts", request, opt_outs::list)
            .await
    }

    async fn add_opt_out(
        &self,
        request: Request<AddOptOutRequest>,
    ) -> Result<Response<OptOut>, Status> {
        self.control.call("AddOptOut", request, opt_outs::add).await
    }

    async fn remove_opt_out(
        &self,
        request: Request<RemoveOptOutRequest>,
    ) -> Result<Response<RemoveOptOutResponse>, Status> {
        self.control
            .call("RemoveOptOut", request, opt_outs::remove)
            .await
    }

    async fn list_unknown_jobs(
        &self,
        request: Request<ListUnknownJobsRequest>,
    ) -> Result<Response<ListUnknownJobsResponse>, Status> {
        self.control
            .call("ListUnknownJobs", request, unknown::list)
            .await
    }

    async fn resolve_unknown_job(
        &self,
        request: Request<ResolveUnknownJobRequest>,
    ) -> Result<Response<UnknownJob>, Status> {
        self.control
            .call("ResolveUnknownJob", request, unknown::resolve)
            .await
    }

    async fn resend_unknown_job(
        &self,
        request: Request<ResendUnknownJobRequest>,
    ) -> Result<Response<RequeueResponse>, Status> {
        let requeuer = self.requeuer.clone();
        self.control
            .call(
                "ResendUnknownJob",
                request,
                move |state, caller, request| unknown::resend(state, caller, request, requeuer),
            )
            .await
    }

    async fn get_message(
        &self,
        request: Request<GetMessageRequest>,
    ) -> Result<Response<MessageStory>, Status> {
        self.control
            .call("GetMessage", request, history::story)
            .await
    }

    async fn get_message_history(
        &self,
        request: Request<GetMessageHistoryRequest>,
    ) -> Result<Response<MessageHistory>, Status> {
        self.control
            .call("GetMessageHistory", request, history::get)
            .await
    }

    async fn cancel_message(
        &self,
        request: Request<CancelMessageRequest>,
    ) -> Result<Response<CancelMessageResponse>, Status> {
        self.control
            .call("CancelMessage", request, history::cancel)
            .await
    }
}
