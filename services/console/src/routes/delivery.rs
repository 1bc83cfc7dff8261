//! Scheduled jobs (cancel), dead letters (retry) and opt-outs (view, add).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use foco_proto::v1::{
    AddOptOutRequest, CancelScheduledJobsRequest, ListDeadLettersRequest, ListOptOutsRequest,
    ListScheduledJobsRequest, RetryDeadLetterRequest,
};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use crate::error::ConsoleError;
use crate::render::Frame;
use crate::session::Session;
use crate::state::AppState;

const PAGE: u32 = 200;

pub async fn jobs(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
) -> Result<Response, ConsoleError> {
    let jobs = state
        .scheduling(&session)?
        .list_scheduled_jobs(ListScheduledJobsRequest {
            account: session.account.clone(),
            limit: PAGE,
            ..Default::default()
        })
        .await?
        .into_inner()
        .jobs;
    let views: Vec<_> = jobs
        .iter()
        .map(|job| {
            json!({"job_id": job.job_id, "rule_name": job.rule_name, "to": job.to,
                   "key": job.key, "due_at_ms": job.due_at_ms})
        })
        .collect();
    state.page(
        &frame,
        &session,
        "jobs.html",
        frame.text("jobs_title"),
        "jobs",
        context! { jobs => crate::render::value(&views) },
    )
}

pub async fn cancel_job(
    State(state): State<AppState>,
    session: Session,
    Path(job_id): Path<String>,
) -> Result<Response, ConsoleError> {
    state
        .scheduling(&session)?
        .cancel_scheduled_jobs(CancelScheduledJobsRequest {
            account: session.account.clone(),
            job_ids: vec![job_id],
            ..Default::default()
        })
        .await?;
    Ok(Redirect::to("/jobs?done=job_cancelled").into_response())
}

pub async fn dead_letters(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
) -> Result<Response, ConsoleError> {
    let letters = state
        .delivery(&session)?
        .list_dead_letters(ListDeadLettersRequest {
            account: session.account.clone(),
            limit: PAGE,
            ..Default::default()
        })
        .await?
        .into_inner()
        .dead_letters;
    let views: Vec<_> = letters
        .iter()
        .map(|letter| {
            json!({"job_id": letter.job_id, "to": letter.to, "reason": letter.reason,
                   "attempts": letter.attempts, "dead_lettered_at_ms": letter.dead_lettered_at_ms})
        })
        .collect();
    state.page(
        &frame,
        &session,
        "dead_letters.html",
        frame.text("dead_letters_title"),
        "dead-letters",
        context! { dead_letters => crate::render::value(&views) },
    )
}

pub async fn retry_dead_letter(
    State(state): State<AppState>,
    session: Session,
    Path(job_id): Path<String>,
) -> Result<Response, ConsoleError> {
    state
        .delivery(&session)?
        .retry_dead_letter(RetryDeadLetterRequest {
            account: session.account.clone(),
            job_id,
        })
        .await?;
    Ok(Redirect::to("/dead-letters?done=dead_letter_retried").into_response())
}

pub async fn opt_outs(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
) -> Result<Response, ConsoleError> {
    let opt_outs = state
        .delivery(&session)?
        .list_opt_outs(ListOptOutsRequest {
            account: session.account.clone(),
            limit: PAGE,
            ..Default::default()
        })
        .await?
        .into_inner()
        .opt_outs;
    let views: Vec<_> = opt_outs
        .iter()
        .map(|opt_out| {
            json!({"phone": opt_out.phone, "source": opt_out.source, "reason": opt_out.reason,
                   "created_at_ms": opt_out.created_at_ms})
        })
        .collect();
    state.page(
        &frame,
        &session,
        "opt_outs.html",
        frame.text("opt_outs_title"),
        "opt-outs",
        context! { opt_outs => crate::render::value(&views) },
    )
}

#[derive(Deserialize)]
pub struct OptOutForm {
    phone: String,
    #[serde(default)]
    reason: String,
}

pub async fn add_opt_out(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<OptOutForm>,
) -> Result<Response, ConsoleError> {
    state
        .delivery(&session)?
        .add_opt_out(AddOptOutRequest {
            account: session.account.clone(),
            phone: form.phone.trim().to_owned(),
            reason: form.reason.trim().to_owned(),
        })
        .await?;
    Ok(Redirect::to("/opt-outs?done=opt_out_added").into_response())
}
