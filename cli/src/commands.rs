//! The listing commands: sources, rules, messages and accounts.

use std::io::Write;

use foco_control_client::ControlApi;
use foco_proto::v1::{
    ListAccountsRequest, ListMessagesRequest, ListRulesRequest, ListSourcesRequest, MessageStatus,
    Priority, verification,
};
use serde_json::json;

use crate::CliError;
use crate::args::StatusArg;
use crate::output::{self, OutputFormat, rfc3339};
use foco_control_client::webhook_url;

pub async fn list_sources(
    api: &mut ControlApi,
    account: &str,
    ingress_url: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let sources = api
        .list_sources(ListSourcesRequest {
            account: account.to_owned(),
        })
        .await
        .map_err(|status| CliError::api(format!("list sources of {account:?}"), status))?
        .into_inner()
        .sources;
    let scheme = |source: &foco_proto::v1::Source| match source
        .verification
        .as_ref()
        .and_then(|v| v.scheme.as_ref())
    {
        None | Some(verification::Scheme::None(_)) => "none",
        Some(verification::Scheme::StandardWebhooks(_)) => "standard-webhooks",
        Some(verification::Scheme::HmacSha256(_)) => "hmac-sha256",
        Some(verification::Scheme::Stripe(_)) => "stripe",
        Some(verification::Scheme::Calendly(_)) => "calendly",
        Some(verification::Scheme::HubspotV3(_)) => "hubspot-v3",
        Some(verification::Scheme::Mercadopago(_)) => "mercadopago",
        Some(verification::Scheme::Twilio(_)) => "twilio",
        Some(verification::Scheme::StaticToken(_)) => "static-token",
        Some(verification::Scheme::BasicAuth(_)) => "basic-auth",
        Some(verification::Scheme::GenericHmac(_)) => "generic-hmac",
    };
    match format {
        OutputFormat::Json => {
            let items: Vec<_> = sources
                .iter()
                .map(|source| {
                    json!({
                        "id": source.id,
                        "name": source.name,
                        "token": source.token,
                        "webhook_url": webhook_url(ingress_url, &source.token),
                        "verification": scheme(source),
                        "has_secret": source.has_secret,
                        "event_type_from": source.event_type_from,
                        "event_id_from": source.event_id_from,
                        "enabled": source.enabled,
                        "max_body_bytes": source.max_body_bytes,
                        "created_at": rfc3339(source.created_at_ms),
                        "updated_at": rfc3339(source.updated_at_ms),
                    })
                })
                .collect();
            output::json(out, &json!(items))
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = sources
                .iter()
                .map(|source| {
                    vec![
                        source.name.clone(),
                        if source.enabled { "yes" } else { "no" }.to_owned(),
                        scheme(source).to_owned(),
                        webhook_url(ingress_url, &source.token),
                    ]
                })
                .collect();
            Ok(output::table(
                out,
                &["NAME", "ENABLED", "VERIFY", "WEBHOOK URL"],
                &rows,
            )?)
        }
    }
}

pub async fn list_rules(
    api: &mut ControlApi,
    account: &str,
    source: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let rules = api
        .list_rules(ListRulesRequest {
            account: account.to_owned(),
            source: source.to_owned(),
        })
        .await
        .map_err(|status| CliError::api(format!("list rules of source {source:?}"), status))?
        .into_inner()
        .rules;
    let priority = |value: i32| match Priority::try_from(value) {
        Ok(Priority::Marketing) => "marketing",
        _ => "transactional",
    };
    match format {
        OutputFormat::Json => {
            let items: Vec<_> = rules
                .iter()
                .map(|rule| {
                    json!({
                        "id": rule.id,
                        "name": rule.name,
                        "when": rule.when,
                        "to": rule.to,
                        "body": rule.body,
                        "provider": rule.provider,
                        "from": rule.from,
                        "priority": priority(rule.priority),
                        "enabled": rule.enabled,
                        "delay": rule.delay,
                        "send_at": rule.send_at,
                        "valid_for": rule.valid_for,
                        "key": rule.key,
                        "cancel_when": rule.cancel_when,
                        "cancel_key": rule.cancel_key,
                        "on_repeat": rule.on_repeat,
                        "encoding": rule.encoding,
                        "max_segments": rule.max_segments,
                        "cap_count": rule.cap_count,
                        "cap_window": rule.cap_window,
                        "warnings": rule.warnings,
                        "created_at": rfc3339(rule.created_at_ms),
                        "updated_at": rfc3339(rule.updated_at_ms),
                    })
                })
                .collect();
            output::json(out, &json!(items))
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = rules
                .iter()
                .map(|rule| {
                    vec![
                        rule.name.clone(),
                        if rule.enabled { "yes" } else { "no" }.to_owned(),
                        priority(rule.priority).to_owned(),
                        rule.to.join(", "),
                        if rule.when.is_empty() {
                            "(always)".to_owned()
                        } else {
                            rule.when.clone()
                        },
                    ]
                })
                .collect();
            Ok(output::table(
                out,
                &["NAME", "ENABLED", "PRIORITY", "TO", "WHEN"],
                &rows,
            )?)
        }
    }
}

pub(crate) fn status_text(status: i32) -> &'static str {
    foco_control_client::message_status_text(status)
}

fn status_filter(status: Option<StatusArg>) -> MessageStatus {
    match status {
        None => MessageStatus::Unspecified,
        Some(StatusArg::Queued) => MessageStatus::Queued,
        Some(StatusArg::Sending) => MessageStatus::Sending,
        Some(StatusArg::Sent) => MessageStatus::Sent,
        Some(StatusArg::Failed) => MessageStatus::Failed,
        Some(StatusArg::Unknown) => MessageStatus::Unknown,
        Some(StatusArg::Delivered) => MessageStatus::Delivered,
        Some(StatusArg::Undelivered) => MessageStatus::Undelivered,
        Some(StatusArg::Cancelled) => MessageStatus::Cancelled,
        Some(StatusArg::OptedOut) => MessageStatus::OptedOut,
        Some(StatusArg::Expired) => MessageStatus::Expired,
    }
}

pub async fn list_messages(
    api: &mut ControlApi,
    account: &str,
    status: Option<StatusArg>,
    limit: u32,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let messages = api
        .list_messages(ListMessagesRequest {
            account: account.to_owned(),
            status: status_filter(status) as i32,
            event_id: String::new(),
            limit,
            ..ListMessagesRequest::default()
        })
        .await
        .map_err(|status| CliError::api(format!("list messages of {account:?}"), status))?
        .into_inner()
        .messages;
    match format {
        OutputFormat::Json => {
            let items: Vec<_> = messages
                .iter()
                .map(|message| {
                    json!({
                        "id": message.job_id,
                        "event_id": message.event_id,
                        "to": message.to,
                        "body": message.body,
                        "status": status_text(message.status),
                        "provider": message.provider,
                        "provider_message_id": message.provider_message_id,
                        "attempts": message.attempts,
                        "error": message.error,
                        "created_at": rfc3339(message.created_at_ms),
                        "updated_at": rfc3339(message.updated_at_ms),
                        "sent_at": rfc3339(message.sent_at_ms),
                    })
                })
                .collect();
            output::json(out, &json!(items))
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = messages
                .iter()
                .map(|message| {
                    vec![
                        rfc3339(message.created_at_ms).unwrap_or_default(),
                        status_text(message.status).to_owned(),
                        message.to.clone(),
                        message.provider.clone(),
                        message.body.chars().take(60).collect(),
                        message.error.clone(),
                    ]
                })
                .collect();
            Ok(output::table(
                out,
                &["CREATED", "STATUS", "TO", "PROVIDER", "BODY", "REASON"],
                &rows,
            )?)
        }
    }
}

pub async fn list_accounts(
    api: &mut ControlApi,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let accounts = api
        .list_accounts(ListAccountsRequest {})
        .await
        .map_err(|status| CliError::api("list accounts", status))?
        .into_inner()
        .accounts;
    match format {
        OutputFormat::Json => {
            let items: Vec<_> = accounts
                .iter()
                .map(|account| {
                    json!({
                        "id": account.id,
                        "name": account.name,
                        "default_country": account.default_country,
                        "timezone": account.timezone,
                        "daily_sms_cap": account.daily_sms_cap,
                        "created_at": rfc3339(account.created_at_ms),
                    })
                })
                .collect();
            output::json(out, &json!(items))
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|account| {
                    vec![
                        account.name.clone(),
                        account.default_country.clone(),
                        account.timezone.clone(),
                    ]
                })
                .collect();
            Ok(output::table(out, &["NAME", "COUNTRY", "TIMEZONE"], &rows)?)
        }
    }
}
