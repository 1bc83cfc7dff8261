//! `foco dead-letters list|show|retry`, `foco opt-outs list|add|remove` and
//! `foco jobs unknown list|resolve|resend`: what the sender could not finish, who
//! must not be texted, and jobs whose send outcome is unknown
//! (`foco.v1.DeliveryService`).

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use foco_control_client::DeliveryApi;
use foco_proto::v1::{
    AddOptOutRequest, Attempt, DeadLetter, GetDeadLetterRequest, GetMessageRequest,
    ListDeadLettersRequest, ListOptOutsRequest, ListUnknownJobsRequest, MessageStory, OptOut,
    RemoveOptOutRequest, ResendUnknownJobRequest, ResolveUnknownJobRequest, RetryDeadLetterRequest,
    UnknownJob, UnknownResolution,
};
use serde_json::json;

use crate::CliError;
use crate::args::FormatArg;
use crate::output::{self, OutputFormat, rfc3339};

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Jobs that ran out of attempts or age, newest first.
    List {
        /// Also those already retried.
        #[arg(long)]
        all: bool,
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        format: FormatArg,
    },
    /// One dead letter with every attempt.
    Show {
        job_id: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Send the job again with a fresh attempt budget.
    Retry { job_id: String },
}

#[derive(Debug, Subcommand)]
pub enum OptOutsCommand {
    /// Numbers that must not receive SMS from the account.
    List {
        /// Only this number.
        #[arg(long)]
        phone: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Opt a number out (any format the account's country reads).
    Add {
        phone: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Opt a number back in.
    Remove { phone: String },
}

#[derive(Debug, Subcommand)]
pub enum UnknownJobsCommand {
    /// Jobs that may or may not have reached the provider.
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Record what the provider says happened.
    Resolve(ResolveArgs),
    /// Send again through the same route (with the job id as idempotency key where
    /// the provider has one; otherwise this risks a duplicate by your decision).
    Resend { job_id: String },
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    pub job_id: String,
    #[arg(long = "as", value_enum)]
    pub resolution: Resolution,
    /// The provider's id for the message, when it was sent.
    #[arg(long, default_value = "")]
    pub provider_message_id: String,
    #[arg(long, default_value = "")]
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Resolution {
    Sent,
    Failed,
}

pub async fn dead_letters(
    api: &mut DeliveryApi,
    account: &str,
    command: &DeadLettersCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        DeadLettersCommand::List { all, limit, format } => {
            let request = ListDeadLettersRequest {
                account: account.to_owned(),
                limit: *limit,
                before_ms: 0,
                include_retried: *all,
            };
            let letters = api
                .list_dead_letters(request)
                .await
                .map_err(|status| CliError::api("list dead letters", status))?
                .into_inner()
                .dead_letters;
            match format.output {
                OutputFormat::Json => output::json(
                    out,
                    &json!(letters.iter().map(dead_letter_json).collect::<Vec<_>>()),
                ),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = letters
                        .iter()
                        .map(|letter| {
                            vec![
                                rfc3339(letter.dead_lettered_at_ms).unwrap_or_default(),
                                letter.status.clone(),
                                letter.attempts.to_string(),
                                letter.to.clone(),
                                letter.reason.clone(),
                                letter.job_id.clone(),
                            ]
                        })
                        .collect();
                    Ok(output::table(
                        out,
                        &["DEAD SINCE", "STATUS", "ATTEMPTS", "TO", "REASON", "JOB ID"],
                        &rows,
                    )?)
                }
            }
        }
        DeadLettersCommand::Show { job_id, format } => {
            let letter = api
                .get_dead_letter(GetDeadLetterRequest {
                    account: account.to_owned(),
                    job_id: job_id.clone(),
                })
                .await
                .map_err(|status| CliError::api(format!("show dead letter {job_id}"), status))?
                .into_inner();
            match format.output {
                OutputFormat::Json => output::json(out, &dead_letter_json(&letter)),
                OutputFormat::Table => {
                    writeln!(out, "job       {}", letter.job_id)?;
                    writeln!(out, "to        {}", letter.to)?;
                    writeln!(out, "status    {}", letter.status)?;
                    writeln!(out, "reason    {}", letter.reason)?;
                    writeln!(out, "retried   {} time(s)", letter.retry_count)?;
                    writeln!(out)?;
                    history_table(out, &letter.history)
                }
            }
        }
        DeadLettersCommand::Retry { job_id } => {
            let answer = api
                .retry_dead_letter(RetryDeadLetterRequest {
                    account: account.to_owned(),
                    job_id: job_id.clone(),
                })
                .await
                .map_err(|status| CliError::api(format!("retry dead letter {job_id}"), status))?
                .into_inner();
            writeln!(out, "requeued {} ({})", answer.job_id, answer.publish_id)?;
            Ok(())
        }
    }
}

pub async fn opt_outs(
    api: &mut DeliveryApi,
    account: &str,
    command: &OptOutsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        OptOutsCommand::List {
            phone,
            limit,
            format,
        } => {
            let opt_outs = api
                .list_opt_outs(ListOptOutsRequest {
                    account: account.to_owned(),
                    limit: *limit,
                    phone: phone.clone().unwrap_or_default(),
                })
                .await
                .map_err(|status| CliError::api("list opt-outs", status))?
                .into_inner()
                .opt_outs;
            match format.output {
                OutputFormat::Json => output::json(
                    out,
                    &json!(opt_outs.iter().map(opt_out_json).collect::<Vec<_>>()),
                ),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = opt_outs
                        .iter()
                        .map(|opt_out| {
                            vec![
                                opt_out.phone.clone(),
                                opt_out.source.clone(),
                                rfc3339(opt_out.created_at_ms).unwrap_or_default(),
                                opt_out.reason.clone(),
                            ]
                        })
                        .collect();
                    Ok(output::table(
                        out,
                        &["PHONE", "SOURCE", "SINCE", "REASON"],
                        &rows,
                    )?)
                }
            }
        }
        OptOutsCommand::Add { phone, reason } => {
            let added = api
                .add_opt_out(AddOptOutRequest {
                    account: account.to_owned(),
                    phone: phone.clone(),
                    reason: reason.clone(),
                })
                .await
                .map_err(|status| CliError::api(format!("opt out {phone}"), status))?
                .into_inner();
            writeln!(out, "opted out {}", added.phone)?;
            Ok(())
        }
        OptOutsCommand::Remove { phone } => {
            let removed = api
                .remove_opt_out(RemoveOptOutRequest {
                    account: account.to_owned(),
                    phone: phone.clone(),
                })
                .await
                .map_err(|status| CliError::api(format!("opt {phone} back in"), status))?
                .into_inner()
                .removed;
            if removed {
                writeln!(out, "opted {phone} back in")?;
            } else {
                writeln!(out, "{phone} was not opted out")?;
            }
            Ok(())
        }
    }
}

pub async fn unknown_jobs(
    api: &mut DeliveryApi,
    account: &str,
    command: &UnknownJobsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        UnknownJobsCommand::List { limit, format } => {
            let jobs = api
                .list_unknown_jobs(ListUnknownJobsRequest {
                    account: account.to_owned(),
                    limit: *limit,
                    before_ms: 0,
                })
                .await
                .map_err(|status| CliError::api("list unknown jobs", status))?
                .into_inner()
                .jobs;
            match format.output {
                OutputFormat::Json => output::json(
                    out,
                    &json!(jobs.iter().map(unknown_json).collect::<Vec<_>>()),
                ),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = jobs
                        .iter()
                        .map(|job| {
                            vec![
                                rfc3339(job.updated_at_ms).unwrap_or_default(),
                                job.provider.clone(),
                                job.to.clone(),
                                job.error.clone(),
                                job.job_id.clone(),
                            ]
                        })
                        .collect();
                    Ok(output::table(
                        out,
                        &["SINCE", "ROUTE", "TO", "WHY", "JOB ID"],
                        &rows,
                    )?)
                }
            }
        }
        UnknownJobsCommand::Resolve(args) => {
            let resolution = match args.resolution {
                Resolution::Sent => UnknownResolution::Sent,
                Resolution::Failed => UnknownResolution::Failed,
            };
            let job = api
                .resolve_unknown_job(ResolveUnknownJobRequest {
                    account: account.to_owned(),
                    job_id: args.job_id.clone(),
                    resolution: resolution as i32,
                    provider_message_id: args.provider_message_id.clone(),
                    note: args.note.clone(),
                })
                .await
                .map_err(|status| CliError::api(format!("resolve job {}", args.job_id), status))?
                .into_inner();
            writeln!(out, "{} is {}", job.job_id, job.status)?;
            Ok(())
        }
        UnknownJobsCommand::Resend { job_id } => {
            let answer = api
                .resend_unknown_job(ResendUnknownJobRequest {
                    account: account.to_owned(),
                    job_id: job_id.clone(),
                })
                .await
                .map_err(|status| CliError::api(format!("resend job {job_id}"), status))?
                .into_inner();
            writeln!(out, "requeued {} ({})", answer.job_id, answer.publish_id)?;
            Ok(())
        }
    }
}

/// `foco messages show`: the message's story, from what made it to its state now.
pub async fn show_message(
    api: &mut DeliveryApi,
    account: &str,
    message_id: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let story = api
        .get_message(GetMessageRequest {
            account: account.to_owned(),
            message_id: message_id.to_owned(),
        })
        .await
        .map_err(|status| CliError::api(format!("show message {message_id}"), status))?
        .into_inner();
    match format {
        OutputFormat::Json => output::json(out, &story_json(&story)),
        OutputFormat::Table => story_text(out, &story),
    }
}

fn story_text(out: &mut dyn Write, story: &MessageStory) -> Result<(), CliError> {
    let named = |name: &str, id: &str| match (name, id) {
        (_, "") => "-".to_owned(),
        ("", id) => format!("{id} (deleted)"),
        (name, id) => format!("{name} ({id})"),
    };
    writeln!(out, "message   {}", story.message_id)?;
    writeln!(out, "status    {}", story.status)?;
    writeln!(out, "to        {}", story.to)?;
    writeln!(out, "body      {}", story.body)?;
    if story.origin == "api" {
        writeln!(out, "made by   SendMessage")?;
        let mut metadata: Vec<_> = story.metadata.iter().collect();
        metadata.sort();
        for (key, value) in metadata {
            writeln!(out, "  {key} = {value}")?;
        }
    } else {
        writeln!(out, "event     {}", story.event_id)?;
        writeln!(
            out,
            "source    {}",
            named(&story.source_name, &story.source_id)
        )?;
        writeln!(out, "rule      {}", named(&story.rule_name, &story.rule_id))?;
    }
    writeln!(
        out,
        "created   {}",
        rfc3339(story.created_at_ms).unwrap_or_default()
    )?;
    if let Some(job) = &story.scheduled {
        let reason = if job.cancel_reason.is_empty() {
            String::new()
        } else {
            format!(": {}", job.cancel_reason)
        };
        writeln!(
            out,
            "scheduled due {} ({}{reason})",
            rfc3339(job.due_at_ms).unwrap_or_default(),
            job.state
        )?;
    }
    if !story.decisions.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = story
            .decisions
            .iter()
            .map(|report| {
                vec![
                    rfc3339(report.created_at_ms).unwrap_or_default(),
                    report.kind.clone(),
                    report.detail.clone(),
                ]
            })
            .collect();
        output::table(out, &["DECIDED", "DECISION", "DETAIL"], &rows)?;
    }
    if let Some(message) = &story.message {
        writeln!(out)?;
        history_table(out, &message.history)?;
    }
    Ok(())
}

fn story_json(story: &MessageStory) -> serde_json::Value {
    json!({
        "message_id": story.message_id,
        "status": story.status,
        "origin": story.origin,
        "event_id": story.event_id,
        "source": {"id": story.source_id, "name": story.source_name},
        "rule": {"id": story.rule_id, "name": story.rule_name},
        "to": story.to,
        "body": story.body,
        "metadata": story.metadata,
        "created_at": rfc3339(story.created_at_ms),
        "sent_at": rfc3339(story.sent_at_ms),
        "delivered_at": rfc3339(story.delivered_at_ms),
        "decisions": story.decisions.iter().map(|report| json!({
            "at": rfc3339(report.created_at_ms),
            "kind": report.kind,
            "detail": report.detail,
        })).collect::<Vec<_>>(),
        "scheduled": story.scheduled.as_ref().map(|job| json!({
            "due_at": rfc3339(job.due_at_ms),
            "state": job.state,
            "key": job.key,
            "cancel_reason": job.cancel_reason,
        })),
        "attempts": story.message.as_ref().map(|message| history_json(&message.history)),
        "provider": story.message.as_ref().map(|message| json!({
            "route": message.provider,
            "provider_message_id": message.provider_message_id,
            "segments": message.segments,
            "price": message.price,
            "price_currency": message.price_currency,
            "error": message.error,
        })),
    })
}

fn history_table(out: &mut dyn Write, history: &[Attempt]) -> Result<(), CliError> {
    let rows: Vec<Vec<String>> = history
        .iter()
        .map(|step| {
            vec![
                rfc3339(step.at_ms).unwrap_or_default(),
                step.attempt.to_string(),
                step.provider.clone(),
                step.outcome.clone(),
                step.detail.clone(),
            ]
        })
        .collect();
    Ok(output::table(
        out,
        &["AT", "ATTEMPT", "ROUTE", "OUTCOME", "DETAIL"],
        &rows,
    )?)
}

fn history_json(history: &[Attempt]) -> serde_json::Value {
    json!(
        history
            .iter()
            .map(|step| json!({
                "at": rfc3339(step.at_ms),
                "attempt": step.attempt,
                "route": step.provider,
                "outcome": step.outcome,
                "detail": step.detail,
            }))
            .collect::<Vec<_>>()
    )
}

fn dead_letter_json(letter: &DeadLetter) -> serde_json::Value {
    json!({
        "job_id": letter.job_id,
        "event_id": letter.event_id,
        "to": letter.to,
        "body": letter.body,
        "route": letter.provider,
        "status": letter.status,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "dead_lettered_at": rfc3339(letter.dead_lettered_at_ms),
        "retried_at": rfc3339(letter.retried_at_ms),
        "retry_count": letter.retry_count,
        "history": history_json(&letter.history),
    })
}

fn opt_out_json(opt_out: &OptOut) -> serde_json::Value {
    json!({
        "phone": opt_out.phone,
        "source": opt_out.source,
        "reason": opt_out.reason,
        "created_at": rfc3339(opt_out.created_at_ms),
    })
}

fn unknown_json(job: &UnknownJob) -> serde_json::Value {
    json!({
        "job_id": job.job_id,
        "event_id": job.event_id,
        "to": job.to,
        "body": job.body,
        "route": job.provider,
        "attempts": job.attempts,
        "error": job.error,
        "status": job.status,
        "created_at": rfc3339(job.created_at_ms),
        "updated_at": rfc3339(job.updated_at_ms),
    })
}
