//! `foco preview`: renders a source's rules (or one of them) against a sample
//! payload and headers, the way the rules service would for a real webhook, and
//! shows what it would cost: encoding, segments, the characters that force UCS-2,
//! and when it would go out. Nothing is sent or scheduled.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use foco_control_client::{ControlApi, SchedulingApi};
use foco_proto::v1::{PreviewRulesRequest, PreviewRulesResponse, RulePreview};
use serde_json::json;

use crate::CliError;
use crate::args::FormatArg;
use crate::local_time::DisplayZone;
use crate::output::{self, OutputFormat};

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The source whose rules are rendered.
    #[arg(long)]
    pub source: String,
    /// One rule by name; absent: every rule of the source.
    #[arg(long)]
    pub rule: Option<String>,
    /// Sample payload (JSON), or `-` to read it from standard input.
    #[arg(long, value_name = "FILE|-")]
    pub payload: PathBuf,
    /// A request header as the sender would post it, e.g. 'X-Shopify-Topic: orders/create' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Use this event type instead of the one the source reads from headers or body.
    #[arg(long)]
    pub event_type: Option<String>,
    #[command(flatten)]
    pub format: FormatArg,
}

/// `Name: value` → (`Name`, `value`).
pub fn parse_header(raw: &str) -> Result<(String, String), String> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| format!("expected 'Name: value', got {raw:?}"))?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("{name:?} is not a header name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// Reads the payload file, or `stdin` when the path is `-`.
pub fn read_payload(path: &Path, stdin: &mut dyn Read) -> Result<String, CliError> {
    let what = || format!("payload {}", path.display());
    let mut text = String::new();
    let read = if path == Path::new("-") {
        stdin.read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|content| text = content)
    };
    read.map_err(|error| CliError::Input {
        what: what(),
        message: format!("cannot read: {error}"),
    })?;
    // Catch a wrong file here, with the parser's line and column, rather than as a
    // vague refusal from the API.
    serde_json::from_str::<serde_json::Value>(&text).map_err(|error| CliError::Input {
        what: what(),
        message: format!("not JSON: {error}"),
    })?;
    Ok(text)
}

/// `-H` headers as a request map: a repeated header is one header with both
/// values, as HTTP folds them.
pub fn fold_headers(headers: &[(String, String)]) -> HashMap<String, String> {
    let mut folded: HashMap<String, String> = HashMap::new();
    for (name, value) in headers {
        folded
            .entry(name.clone())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    folded
}

/// The request for `args`, with the payload already read.
pub fn preview_request(account: &str, args: &PreviewArgs, payload: String) -> PreviewRulesRequest {
    let headers = fold_headers(&args.headers);
    PreviewRulesRequest {
        account: account.to_owned(),
        source: args.source.clone(),
        rule: args.rule.clone().unwrap_or_default(),
        payload,
        headers,
        event_type: args.event_type.clone().unwrap_or_default(),
        draft: None,
    }
}

pub async fn preview(
    api: &mut ControlApi,
    scheduling: &mut SchedulingApi,
    request: PreviewRulesRequest,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let zone = DisplayZone::of_account(api, &request.account).await;
    let what = match request.rule.as_str() {
        "" => format!("preview the rules of source {:?}", request.source),
        rule => format!("preview rule {rule:?} of source {:?}", request.source),
    };
    let response = scheduling
        .preview_rules(request)
        .await
        .map_err(|status| CliError::api(what, status))?
        .into_inner();
    print_preview(&response, zone, format, out)
}

pub fn print_preview(
    response: &PreviewRulesResponse,
    zone: DisplayZone,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => output::json(out, &preview_json(response, zone)),
        OutputFormat::Table => {
            let event_type = match response.event_type.as_str() {
                "" => "(none)",
                event_type => event_type,
            };
            writeln!(out, "event type: {event_type}")?;
            if response.rules.is_empty() {
                writeln!(out, "no rules to preview")?;
            }
            for rule in &response.rules {
                writeln!(out)?;
                print_rule(rule, zone, out)?;
            }
            Ok(())
        }
    }
}

fn print_rule(rule: &RulePreview, zone: DisplayZone, out: &mut dyn Write) -> std::io::Result<()> {
    if !rule.error.is_empty() {
        return writeln!(out, "rule {}: error: {}", rule.rule, rule.error);
    }
    if !rule.matched {
        return writeln!(out, "rule {}: not matched", rule.rule);
    }
    writeln!(out, "rule {}: matched", rule.rule)?;
    let recipients: Vec<String> = rule.recipients.iter().map(recipient_text).collect();
    field(out, "to", &recipients.join("\n"))?;
    field(out, "text", &rule.body)?;
    field(out, "encoding", &encoding_text(rule))?;
    let send_at = match zone.rfc3339(rule.send_at_ms) {
        None => "at once".to_owned(),
        Some(at) => format!("{at} ({})", zone.name()),
    };
    field(out, "send at", &send_at)?;
    if !rule.key.is_empty() {
        field(out, "key", &rule.key)?;
    }
    Ok(())
}

fn recipient_text(recipient: &foco_proto::v1::RecipientPreview) -> String {
    if !recipient.error.is_empty() {
        return format!("{} → invalid: {}", recipient.raw, recipient.error);
    }
    if recipient.raw == recipient.e164 {
        return recipient.e164.clone();
    }
    format!("{} → {}", recipient.raw, recipient.e164)
}

fn encoding_text(rule: &RulePreview) -> String {
    let plural = |count: u32, noun: &str| {
        if count == 1 {
            format!("1 {noun}")
        } else {
            format!("{count} {noun}s")
        }
    };
    let mut text = format!(
        "{}, {}, {}",
        rule.encoding,
        plural(rule.segments, "segment"),
        plural(rule.characters, "character"),
    );
    if !rule.ucs2_characters.is_empty() {
        let characters = rule.ucs2_characters.join(" ");
        // With encoding: gsm7 these were transliterated; otherwise they cost the
        // message its 160-character segments.
        if rule.encoding == "UCS-2" {
            text.push_str(&format!(
                "\nUCS-2 because of: {characters} (encoding: gsm7 transliterates them)"
            ));
        } else {
            text.push_str(&format!("\ntransliterated: {characters}"));
        }
    }
    text
}

/// `  label     value`, continuation lines aligned under the value.
fn field(out: &mut dyn Write, label: &str, value: &str) -> std::io::Result<()> {
    const WIDTH: usize = 10;
    let mut lines = value.lines();
    writeln!(out, "  {label:<WIDTH$}{}", lines.next().unwrap_or(""))?;
    for line in lines {
        writeln!(out, "  {:<WIDTH$}{line}", "")?;
    }
    Ok(())
}

fn preview_json(response: &PreviewRulesResponse, zone: DisplayZone) -> serde_json::Value {
    let rules: Vec<_> = response
        .rules
        .iter()
        .map(|rule| {
            let recipients: Vec<_> = rule
                .recipients
                .iter()
                .map(|recipient| {
                    json!({
                        "raw": recipient.raw,
                        "e164": recipient.e164,
                        "error": recipient.error,
                    })
                })
                .collect();
            json!({
                "rule": rule.rule,
                "matched": rule.matched,
                "recipients": recipients,
                "body": rule.body,
                "encoding": rule.encoding,
                "segments": rule.segments,
                "characters": rule.characters,
                "ucs2_characters": rule.ucs2_characters,
                "send_at": zone.rfc3339(rule.send_at_ms),
                "key": rule.key,
                "error": rule.error,
            })
        })
        .collect();
    json!({
        "event_type": response.event_type,
        "timezone": zone.name(),
        "rules": rules,
    })
}

#[cfg(test)]
mod tests;
