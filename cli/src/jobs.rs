//! `foco jobs list|cancel`: the delayed SMS jobs the rules scheduler holds in
//! Postgres (a reminder due in five days, an abandoned-cart message due in an
//! hour), and cancelling them by id or by rule and correlation key.

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use foco_control_client::SchedulingApi;
use foco_proto::v1::{CancelScheduledJobsRequest, ListScheduledJobsRequest, ScheduledJob};
use serde_json::json;

use crate::CliError;
use crate::args::FormatArg;
use crate::output::{self, OutputFormat, rfc3339};

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List delayed jobs, pending ones by default.
    List(ListJobsArgs),
    /// Cancel pending jobs by id, or every pending job of a rule with a correlation key.
    Cancel(CancelJobsArgs),
    /// SMS jobs whose send outcome is unknown: list, resolve, resend.
    #[command(subcommand)]
    Unknown(crate::delivery::UnknownJobsCommand),
}

#[derive(Debug, Args)]
pub struct ListJobsArgs {
    /// Only this rule's jobs.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only jobs with this correlation key (e.g. the customer's email).
    #[arg(long)]
    pub key: Option<String>,
    /// Only jobs to this recipient (E.164).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, value_enum, default_value_t = JobState::Pending)]
    pub state: JobState,
    /// How many (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobState {
    Pending,
    Published,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Published => "published",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Args)]
pub struct CancelJobsArgs {
    /// Job ids (from `foco jobs list`).
    #[arg(
        value_name = "JOB_ID",
        required_unless_present = "rule",
        conflicts_with_all = ["rule", "key"]
    )]
    pub job_ids: Vec<String>,
    /// The rule whose pending jobs with `--key` are cancelled.
    #[arg(long, requires = "key")]
    pub rule: Option<String>,
    /// The correlation key, e.g. the customer's email.
    #[arg(long, requires = "rule")]
    pub key: Option<String>,
    #[command(flatten)]
    pub format: FormatArg,
}

pub async fn run(
    scheduling: &mut SchedulingApi,
    account: &str,
    command: &JobsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        JobsCommand::List(args) => {
            let request = ListScheduledJobsRequest {
                account: account.to_owned(),
                rule: args.rule.clone().unwrap_or_default(),
                key: args.key.clone().unwrap_or_default(),
                to: args.to.clone().unwrap_or_default(),
                state: args.state.as_str().to_owned(),
                limit: args.limit,
            };
            list_jobs(scheduling, request, args.format.output, out).await
        }
        JobsCommand::Cancel(args) => {
            let request = CancelScheduledJobsRequest {
                account: account.to_owned(),
                job_ids: args.job_ids.clone(),
                rule: args.rule.clone().unwrap_or_default(),
                key: args.key.clone().unwrap_or_default(),
            };
            cancel_jobs(scheduling, request, args.format.output, out)
                .await
                .map(drop)
        }
        // Served by DeliveryService: `lib.rs` sends these to `delivery`.
        JobsCommand::Unknown(_) => Ok(()),
    }
}

pub async fn list_jobs(
    scheduling: &mut SchedulingApi,
    request: ListScheduledJobsRequest,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let what = format!("list jobs of {:?}", request.account);
    let jobs = scheduling
        .list_scheduled_jobs(request)
        .await
        .map_err(|status| CliError::api(what, status))?
        .into_inner()
        .jobs;
    print_jobs(&jobs, format, out)
}

pub fn print_jobs(
    jobs: &[ScheduledJob],
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => {
            let items: Vec<_> = jobs
                .iter()
                .map(|job| {
                    json!({
                        "id": job.job_id,
                        "rule": job.rule_name,
                        "event_id": job.event_id,
                        "key": job.key,
                        "to": job.to,
                        "body": job.body,
                        "due_at": rfc3339(job.due_at_ms),
                        "state": job.state,
                        "cancel_reason": job.cancel_reason,
                        "created_at": rfc3339(job.created_at_ms),
                        "updated_at": rfc3339(job.updated_at_ms),
                    })
                })
                .collect();
            output::json(out, &json!(items))
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = jobs
                .iter()
                .map(|job| {
                    vec![
                        rfc3339(job.due_at_ms).unwrap_or_default(),
                        job.state.clone(),
                        job.rule_name.clone(),
                        job.key.clone(),
                        job.to.clone(),
                        job.job_id.clone(),
                    ]
                })
                .collect();
            Ok(output::table(
                out,
                &["DUE", "STATE", "RULE", "KEY", "TO", "JOB ID"],
                &rows,
            )?)
        }
    }
}

pub async fn cancel_jobs(
    scheduling: &mut SchedulingApi,
    request: CancelScheduledJobsRequest,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<u32, CliError> {
    let what = if request.job_ids.is_empty() {
        format!(
            "cancel the jobs of rule {:?} with key {:?}",
            request.rule, request.key
        )
    } else {
        format!("cancel {}", jobs_count(request.job_ids.len() as u32))
    };
    let cancelled = scheduling
        .cancel_scheduled_jobs(request)
        .await
        .map_err(|status| CliError::api(what, status))?
        .into_inner()
        .cancelled;
    match format {
        OutputFormat::Json => output::json(out, &json!({ "cancelled": cancelled }))?,
        OutputFormat::Table => writeln!(out, "cancelled {}", jobs_count(cancelled))?,
    }
    Ok(cancelled)
}

fn jobs_count(count: u32) -> String {
    if count == 1 {
        "1 job".to_owned()
    } else {
        format!("{count} jobs")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::Cli;
    use crate::args::Command;

    fn cancel_args(line: &[&str]) -> Result<CancelJobsArgs, clap::Error> {
        match Cli::try_parse_from(line)?.command {
            Command::Jobs(JobsCommand::Cancel(args)) => Ok(args),
            other => panic!("not jobs cancel: {other:?}"),
        }
    }

    #[test]
    fn cancel_takes_ids_or_a_rule_and_key() {
        let by_id = cancel_args(&["foco", "jobs", "cancel", "job-a", "job-b"]).unwrap();
        assert_eq!(by_id.job_ids, ["job-a", "job-b"]);
        let by_key = cancel_args(&[
            "foco",
            "jobs",
            "cancel",
            "--rule",
            "abandoned-cart",
            "--key",
            "tok-1",
        ])
        .unwrap();
        assert_eq!(
            (by_key.rule.as_deref(), by_key.key.as_deref()),
            (Some("abandoned-cart"), Some("tok-1"))
        );
        assert!(by_key.job_ids.is_empty());

        for wrong in [
            &["foco", "jobs", "cancel"][..],
            &["foco", "jobs", "cancel", "--rule", "abandoned-cart"],
            &["foco", "jobs", "cancel", "--key", "tok-1"],
            &[
                "foco", "jobs", "cancel", "job-a", "--rule", "r", "--key", "k",
            ],
        ] {
            assert!(cancel_args(wrong).is_err(), "{wrong:?} should be refused");
        }
    }

    #[test]
    fn list_defaults_to_pending() {
        let cli =
            Cli::try_parse_from(["foco", "jobs", "list", "--rule", "abandoned-cart"]).unwrap();
        let Command::Jobs(JobsCommand::List(args)) = cli.command else {
            panic!("not jobs list");
        };
        assert_eq!(args.state, JobState::Pending);
        assert_eq!(args.limit, 100);
        assert!(
            Cli::try_parse_from(["foco", "jobs", "list", "--state", "sent"]).is_err(),
            "states are pending, published or cancelled"
        );
    }
}
