//! `foco send` and `foco trigger`: the messaging API from a shell. `send` stores
//! one SMS (at once, or after `--delay` / at `--send-at`) and prints its message
//! id; `trigger` stores an event of a source as its webhook would and prints the
//! event id (`foco events show <id>` then tells what the rules did with it).
//!
//! `send --template NAME --var k=v` renders one of the account's templates
//! instead of `--body` (control renders it; the rendering is what is sent).
//!
//! With an account key `--account` may be left out; the admin key needs it.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use foco_control_client::MessagingApi;
use foco_proto::v1::{Priority, SendMessageRequest, TriggerEventRequest};
use serde_json::json;

use crate::CliError;
use crate::args::FormatArg;
use crate::output::{self, OutputFormat, rfc3339};
use crate::preview::{fold_headers, parse_header};

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The recipient: E.164, or a local number read with the account's country.
    #[arg(long)]
    pub to: String,
    /// The text.
    #[arg(
        long,
        required_unless_present = "template",
        conflicts_with = "template"
    )]
    pub body: Option<String>,
    /// Instead of --body: one of the account's templates (`foco templates list`),
    /// rendered with --var.
    #[arg(long)]
    pub template: Option<String>,
    /// A template variable, e.g. `--var code=4821` (repeatable); every variable
    /// the template reads must be given.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_key_value, conflicts_with = "body")]
    pub variables: Vec<(String, String)>,
    /// Makes a retry safe: the same key answers with the first message and sends nothing more.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Send after this long ("30m", "5d").
    #[arg(long, conflicts_with = "send_at")]
    pub delay: Option<String>,
    /// Send at this time: RFC 3339, or "YYYY-MM-DD HH:MM" in the account's time zone.
    #[arg(long)]
    pub send_at: Option<String>,
    /// How long after its due time it may still go out ("2h"); later it is
    /// recorded expired, not sent. Absent: the account's default.
    #[arg(long)]
    pub valid_for: Option<String>,
    /// Provider route name; absent: the account's default route.
    #[arg(long)]
    pub route: Option<String>,
    /// Sender id or from number; absent: the route's.
    #[arg(long)]
    pub from: Option<String>,
    #[arg(long, value_enum, default_value_t = PriorityArg::Transactional)]
    pub priority: PriorityArg,
    /// `gsm7` transliterates what GSM-7 lacks (á → a), for 160 characters a
    /// segment. Absent: unicode, or the template's.
    #[arg(long, value_enum)]
    pub encoding: Option<EncodingArg>,
    /// Stored with the message, e.g. `--metadata order=A-17` (repeatable).
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub metadata: Vec<(String, String)>,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PriorityArg {
    /// Codes, alarms, receipts: never held.
    Transactional,
    /// Promotions: held during the recipient's quiet hours.
    Marketing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    Unicode,
    Gsm7,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The source, by name or id.
    #[arg(long)]
    pub source: String,
    /// The event type rules see as `event_type`.
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: String,
    /// The event (JSON), or `-` to read it from standard input.
    #[arg(long, value_name = "FILE|-")]
    pub payload: PathBuf,
    /// The sender's id for the event: the same id again is the same event.
    #[arg(long)]
    pub event_id: Option<String>,
    /// A header rules may read, e.g. 'X-Shopify-Topic: orders/create' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    #[command(flatten)]
    pub format: FormatArg,
}

/// `key=value` → (`key`, `value`).
pub(crate) fn parse_key_value(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {raw:?}"))?;
    Ok((key.to_owned(), value.to_owned()))
}

/// The API's name of an encoding; absent: `""` (unicode, or a template's own).
pub(crate) fn encoding_name(encoding: Option<EncodingArg>) -> String {
    match encoding {
        None => "",
        Some(EncodingArg::Unicode) => "unicode",
        Some(EncodingArg::Gsm7) => "gsm7",
    }
    .to_owned()
}

pub fn send_request(account: &str, args: &SendArgs) -> SendMessageRequest {
    SendMessageRequest {
        account: account.to_owned(),
        to: args.to.clone(),
        body: args.body.clone().unwrap_or_default(),
        template: args.template.clone().unwrap_or_default(),
        variables: args.variables.iter().cloned().collect::<HashMap<_, _>>(),
        route: args.route.clone().unwrap_or_default(),
        priority: match args.priority {
            PriorityArg::Transactional => Priority::Transactional,
            PriorityArg::Marketing => Priority::Marketing,
        } as i32,
        delay: args.delay.clone().unwrap_or_default(),
        send_at: args.send_at.clone().unwrap_or_default(),
        valid_for: args.valid_for.clone().unwrap_or_default(),
        metadata: args.metadata.iter().cloned().collect::<HashMap<_, _>>(),
        idempotency_key: args.idempotency_key.clone().unwrap_or_default(),
        from: args.from.clone().unwrap_or_default(),
        // A body's default is said as before (it is part of an idempotency
        // key's digest); a template's is its own.
        encoding: match (args.encoding, &args.template) {
            (None, None) => encoding_name(Some(EncodingArg::Unicode)),
            (encoding, _) => encoding_name(encoding),
        },
    }
}

pub async fn send(
    api: &mut MessagingApi,
    account: &str,
    args: &SendArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let sent = api
        .send_message(send_request(account, args))
        .await
        .map_err(|status| CliError::api("send", status))?
        .into_inner();
    match args.format.output {
        OutputFormat::Json => output::json(
            out,
            &json!({
                "message_id": sent.message_id,
                "duplicate": sent.duplicate,
                "send_at": rfc3339(sent.send_at_ms),
                "encoding": sent.encoding,
                "segments": sent.segments,
            }),
        ),
        OutputFormat::Table => {
            let when = rfc3339(sent.send_at_ms)
                .map_or_else(|| "queued".to_owned(), |at| format!("scheduled for {at}"));
            let repeat = if sent.duplicate {
                " (already sent with this idempotency key)"
            } else {
                ""
            };
            writeln!(
                out,
                "message {}: {when}, {} {} segment(s){repeat}",
                sent.message_id, sent.encoding, sent.segments
            )?;
            Ok(())
        }
    }
}

pub async fn trigger(
    api: &mut MessagingApi,
    account: &str,
    args: &TriggerArgs,
    payload: String,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let triggered = api
        .trigger_event(TriggerEventRequest {
            account: account.to_owned(),
            source: args.source.clone(),
            event_type: args.event_type.clone(),
            payload,
            event_id: args.event_id.clone().unwrap_or_default(),
            headers: fold_headers(&args.headers),
        })
        .await
        .map_err(|status| CliError::api(format!("trigger on source {:?}", args.source), status))?
        .into_inner();
    match args.format.output {
        OutputFormat::Json => output::json(
            out,
            &json!({
                "event_id": triggered.event_id,
                "duplicate": triggered.duplicate,
            }),
        ),
        OutputFormat::Table => {
            let repeat = if triggered.duplicate {
                " (duplicate: stored already, nothing new)"
            } else {
                ""
            };
            writeln!(
                out,
                "event {}{repeat}; `foco events show {}` tells what the rules did",
                triggered.event_id, triggered.event_id
            )?;
            Ok(())
        }
    }
}
