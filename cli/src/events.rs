//! `foco events show|list`: what the rules service did with an event, rule by
//! rule (render errors, invalid recipients, scheduled, replaced, cancelled and
//! capped jobs, or a payload no rule could read), and for `show` the messages the
//! event produced.

use std::io::Write;

use clap::{Args, Subcommand};
use foco_control_client::{ControlApi, SchedulingApi};
use foco_proto::v1::{EventReport, ListEventReportsRequest, ListMessagesRequest, Message};
use serde_json::json;

use crate::CliError;
use crate::args::FormatArg;
use crate::commands::status_text;
use crate::output::{self, OutputFormat, rfc3339};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// One event: its rule reports and the messages it produced.
    Show(ShowEventArgs),
    /// The latest rule reports of the account, newest first.
    List(ListEventsArgs),
}

#[derive(Debug, Args)]
pub struct ShowEventArgs {
    /// The event id (as in `foco messages list`).
    #[arg(value_name = "EVENT_ID")]
    pub event_id: String,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
pub struct ListEventsArgs {
    /// How many reports (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub format: FormatArg,
}

pub async fn run(
    api: &mut ControlApi,
    scheduling: &mut SchedulingApi,
    account: &str,
    command: &EventsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        EventsCommand::Show(args) => {
            show_event(
                api,
                scheduling,
                account,
                &args.event_id,
                args.format.output,
                out,
            )
            .await
        }
        EventsCommand::List(args) => {
            list_event_reports(scheduling, account, args.limit, args.format.output, out).await
        }
    }
}

pub async fn show_event(
    api: &mut ControlApi,
    scheduling: &mut SchedulingApi,
    account: &str,
    event_id: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let reports = scheduling
        .list_event_reports(ListEventReportsRequest {
            account: account.to_owned(),
            event_id: event_id.to_owned(),
            limit: 1000,
        })
        .await
        .map_err(|status| CliError::api(format!("list reports of event {event_id:?}"), status))?
        .into_inner()
        .reports;
    let messages = api
        .list_messages(ListMessagesRequest {
            account: account.to_owned(),
            event_id: event_id.to_owned(),
            limit: 1000,
            ..ListMessagesRequest::default()
        })
        .await
        .map_err(|status| CliError::api(format!("list messages of event {event_id:?}"), status))?
        .into_inner()
        .messages;
    match format {
        OutputFormat::Json => output::json(
            out,
            &json!({
                "event_id": event_id,
                "reports": reports.iter().map(report_json).collect::<Vec<_>>(),
                "messages": messages.iter().map(message_json).collect::<Vec<_>>(),
            }),
        ),
        OutputFormat::Table => {
            writeln!(out, "event {event_id}")?;
            if reports.is_empty() && messages.is_empty() {
                writeln!(out, "no rule reports and no messages for this event")?;
                return Ok(());
            }
            writeln!(out)?;
            if reports.is_empty() {
                writeln!(out, "no rule reports")?;
            } else {
                let rows: Vec<Vec<String>> = reports
                    .iter()
                    .map(|report| {
                        vec![
                            rfc3339(report.created_at_ms).unwrap_or_default(),
                            report.rule_name.clone(),
                            report.kind.clone(),
                            report.detail.clone(),
                        ]
                    })
                    .collect();
                output::table(out, &["REPORTED", "RULE", "KIND", "DETAIL"], &rows)?;
            }
            writeln!(out)?;
            if messages.is_empty() {
                writeln!(out, "no messages")?;
            } else {
                let rows: Vec<Vec<String>> = messages
                    .iter()
                    .map(|message| {
                        vec![
                            rfc3339(message.created_at_ms).unwrap_or_default(),
                            status_text(message.status).to_owned(),
                            message.to.clone(),
                            message.job_id.clone(),
                            message.body.chars().take(60).collect(),
                            message.error.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    out,
                    &["CREATED", "STATUS", "TO", "JOB ID", "BODY", "REASON"],
                    &rows,
                )?;
            }
            Ok(())
        }
    }
}

pub async fn list_event_reports(
    scheduling: &mut SchedulingApi,
    account: &str,
    limit: u32,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let reports = scheduling
        .list_event_reports(ListEventReportsRequest {
            account: account.to_owned(),
            event_id: String::new(),
            limit,
        })
        .await
        .map_err(|status| CliError::api(format!("list event reports of {account:?}"), status))?
        .into_inner()
        .reports;
    match format {
        OutputFormat::Json => output::json(
            out,
            &json!(reports.iter().map(report_json).collect::<Vec<_>>()),
        ),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = reports
                .iter()
                .map(|report| {
                    vec![
                        rfc3339(report.created_at_ms).unwrap_or_default(),
                        report.event_id.clone(),
                        report.rule_name.clone(),
                        report.kind.clone(),
                        report.detail.clone(),
                    ]
                })
                .collect();
            Ok(output::table(
                out,
                &["REPORTED", "EVENT", "RULE", "KIND", "DETAIL"],
                &rows,
            )?)
        }
    }
}

fn report_json(report: &EventReport) -> serde_json::Value {
    json!({
        "event_id": report.event_id,
        "rule": report.rule_name,
        "rule_id": report.rule_id,
        "kind": report.kind,
        "detail": report.detail,
        "created_at": rfc3339(report.created_at_ms),
    })
}

fn message_json(message: &Message) -> serde_json::Value {
    json!({
        "id": message.job_id,
        "to": message.to,
        "body": message.body,
        "status": status_text(message.status),
        "provider": message.provider,
        "error": message.error,
        "created_at": rfc3339(message.created_at_ms),
        "sent_at": rfc3339(message.sent_at_ms),
    })
}
