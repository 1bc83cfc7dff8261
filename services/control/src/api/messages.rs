//! Message history, read from the `messages` table the sender writes.

use chrono::{DateTime, TimeZone as _, Utc};
use foco_proto::v1::{ListMessagesRequest, ListMessagesResponse, Message, MessageStatus};
use uuid::Uuid;

use super::{AppState, accounts, millis};
use crate::auth::Caller;
use crate::error::ApiError;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, sqlx::FromRow)]
struct MessageRow {
    job_id: String,
    account_id: Uuid,
    event_id: String,
    rule_id: String,
    recipient: String,
    body: String,
    status: String,
    provider: String,
    provider_message_id: String,
    attempts: i32,
    error: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

impl MessageRow {
    fn into_proto(self) -> Message {
        Message {
            job_id: self.job_id,
            account_id: self.account_id.to_string(),
            event_id: self.event_id,
            rule_id: self.rule_id,
            to: self.recipient,
            body: self.body,
            status: status_from_text(&self.status) as i32,
            provider: self.provider,
            provider_message_id: self.provider_message_id,
            attempts: u32::try_from(self.attempts).unwrap_or_default(),
            error: self.error,
            created_at_ms: millis(self.created_at),
            updated_at_ms: millis(self.updated_at),
            sent_at_ms: self.sent_at.map(millis).unwrap_or_default(),
        }
    }
}

/// `messages.status` text → enum; an unknown text (a newer sender) is Unspecified.
pub fn status_from_text(status: &str) -> MessageStatus {
    match status {
        "queued" => MessageStatus::Queued,
        "sending" => MessageStatus::Sending,
        "sent" => MessageStatus::Sent,
        "failed" => MessageStatus::Failed,
        "unknown" => MessageStatus::Unknown,
        "delivered" => MessageStatus::Delivered,
        "undelivered" => MessageStatus::Undelivered,
        "cancelled" => MessageStatus::Cancelled,
        "opted-out" => MessageStatus::OptedOut,
        "expired" => MessageStatus::Expired,
        _ => MessageStatus::Unspecified,
    }
}

fn status_to_text(status: MessageStatus) -> Option<&'static str> {
    match status {
        MessageStatus::Unspecified => None,
        MessageStatus::Queued => Some("queued"),
        MessageStatus::Sending => Some("sending"),
        MessageStatus::Sent => Some("sent"),
        MessageStatus::Failed => Some("failed"),
        MessageStatus::Unknown => Some("unknown"),
        MessageStatus::Delivered => Some("delivered"),
        MessageStatus::Undelivered => Some("undelivered"),
        MessageStatus::Cancelled => Some("cancelled"),
        MessageStatus::OptedOut => Some("opted-out"),
        MessageStatus::Expired => Some("expired"),
    }
}

pub async fn list(
    state: AppState,
    caller: Caller,
    request: ListMessagesRequest,
) -> Result<ListMessagesResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let status = MessageStatus::try_from(request.status).map_err(|_| {
        ApiError::invalid(format!("status {} is not a message status", request.status))
    })?;
    let limit = match request.limit {
        0 => DEFAULT_LIMIT,
        limit => limit.min(MAX_LIMIT),
    };
    let before = match request.before_ms {
        0 => None,
        ms => Some(
            Utc.timestamp_millis_opt(ms)
                .single()
                .ok_or_else(|| ApiError::invalid("before_ms is out of range"))?,
        ),
    };
    let after = match request.after_ms {
        0 => None,
        ms => Some(
            Utc.timestamp_millis_opt(ms)
                .single()
                .ok_or_else(|| ApiError::invalid("after_ms is out of range"))?,
        ),
    };
    let event_id = (!request.event_id.is_empty()).then_some(request.event_id.as_str());
    let to_digits = recipient_digits(&request.to)?;
    let rule_id = (!request.rule_id.trim().is_empty()).then_some(request.rule_id.trim());
    let rows = sqlx::query_as::<_, MessageRow>(
        "SELECT job_id, account_id, event_id, rule_id, recipient, body, status, provider, provider_message_id,
                attempts, error, created_at, updated_at, sent_at
         FROM messages
         WHERE account_id = $1
           AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR event_id = $3)
           AND ($4::timestamptz IS NULL OR created_at < $4)
           AND ($6::timestamptz IS NULL OR created_at >= $6)
           AND ($7::text IS NULL OR strpos(regexp_replace(recipient, '[^0-9]', '', 'g'), $7) > 0)
           AND ($8::text IS NULL OR rule_id = $8)
         ORDER BY created_at DESC, job_id DESC
         LIMIT $5",
    )
    .bind(account.id)
    .bind(status_to_text(status))
    .bind(event_id)
    .bind(before)
    .bind(i64::from(limit))
    .bind(after)
    .bind(to_digits.as_deref())
    .bind(rule_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(ListMessagesResponse {
        messages: rows.into_iter().map(MessageRow::into_proto).collect(),
    })
}

/// The digits of a number filter; `None` when it has none (no filter). A
/// filter with letters is refused rather than silently matching everything.
fn recipient_digits(filter: &str) -> Result<Option<String>, ApiError> {
    let filter = filter.trim();
    if filter
        .chars()
        .any(|c| !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.')))
    {
        return Err(ApiError::invalid(format!(
            "to {filter:?} may hold only digits, spaces, +, -, ( ) and ."
        )));
    }
    let digits: String = filter.chars().filter(char::is_ascii_digit).collect();
    Ok((!digits.is_empty()).then_some(digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips() {
        for text in [
            "queued",
            "sending",
            "sent",
            "failed",
            "unknown",
            "delivered",
            "undelivered",
            "cancelled",
            "opted-out",
            "expired",
        ] {
            assert_eq!(status_to_text(status_from_text(text)), Some(text));
        }
        assert_eq!(status_from_text("weird"), MessageStatus::Unspecified);
    }

    #[test]
    fn a_number_filter_keeps_its_digits() {
        assert_eq!(
            recipient_digits(" +52 (55) 1234-5678 ").unwrap().as_deref(),
            Some("525512345678")
        );
        assert_eq!(recipient_digits("").unwrap(), None);
        assert!(recipient_digits("55' OR 1=1").is_err());
    }
}
