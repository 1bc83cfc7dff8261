//! What every HTTP provider adapter shares: how transport errors map to outcomes
//! (the line between "not sent" and "maybe sent"), bounded body reads, and
//! `Retry-After`.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::{FailureKind, ProviderOutcome, guard};
use crate::retry::parse_retry_after;

/// Provider answers larger than this are cut: we only need ids and error codes.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Reasons recorded in `messages.error` stay short.
const MAX_REASON_CHARS: usize = 200;

/// Maps a failed request to an outcome. Only failures that certainly happened
/// before the request left (resolution, connection, TLS handshake) are transient;
/// a timeout or reset after that may have reached the provider, so the outcome is
/// unknown and the job is not resent blindly.
pub fn transport_failure(error: &reqwest::Error) -> ProviderOutcome {
    if guard::is_blocked(error) {
        return ProviderOutcome::permanent(
            FailureKind::Provider,
            "provider host resolves only to private, loopback or link-local addresses",
        );
    }
    if error.is_builder() {
        return ProviderOutcome::permanent(
            FailureKind::Provider,
            "provider request could not be built",
        );
    }
    if error.is_connect() {
        return ProviderOutcome::transient(if error.is_timeout() {
            "provider connection timed out"
        } else {
            "provider connection failed"
        });
    }
    if error.is_timeout() {
        return ProviderOutcome::Unknown {
            reason: "provider did not answer in time after the request was sent".to_owned(),
        };
    }
    ProviderOutcome::Unknown {
        reason: "provider connection failed after the request was sent".to_owned(),
    }
}

/// Reads at most `MAX_BODY_BYTES` of the body. A body that cannot be read is
/// returned as empty: the status line already says what happened.
pub async fn read_body(mut response: reqwest::Response) -> Bytes {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_BODY_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    Bytes::from(body)
}

pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()))
}

/// The usual meaning of an HTTP error status, for answers a provider's own error
/// codes do not explain: 429 throttles the route, 5xx and 408 are transient, 401
/// and 403 are the provider refusing our account (another provider may work),
/// 402 is no credit, and any other 4xx refuses the message.
pub fn classify_status(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    reason: String,
) -> ProviderOutcome {
    match status.as_u16() {
        429 => ProviderOutcome::throttled(retry_after, reason),
        408 | 500..=599 => ProviderOutcome::Transient {
            retry_after,
            reason,
            throttled: false,
        },
        401 | 403 => ProviderOutcome::permanent(FailureKind::Provider, reason),
        402 => ProviderOutcome::permanent(FailureKind::NoCredit, reason),
        _ => ProviderOutcome::permanent(FailureKind::Rejected, reason),
    }
}

/// A string field of a JSON object, also accepting numbers (some APIs send ids as numbers).
pub fn json_text(value: &serde_json::Value, field: &str) -> Option<String> {
    match value.get(field)? {
        serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A short, single-line reason for `messages.error`.
pub fn shorten(text: &str) -> String {
    let single_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = single_line.trim();
    if trimmed.chars().count() <= MAX_REASON_CHARS {
        return trimmed.to_owned();
    }
    let mut cut: String = trimmed.chars().take(MAX_REASON_CHARS).collect();
    cut.push('…');
    cut
}

/// The most useful short description of an error answer: a message field of a
/// JSON body, else the start of a text body, else the status's reason phrase.
pub fn error_reason(status: reqwest::StatusCode, body: &[u8]) -> String {
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| {
            ["message", "error_description", "detail", "title", "reason"]
                .iter()
                .find_map(|field| json_text(&json, field))
                .or_else(|| {
                    json.get("error").and_then(|error| match error {
                        serde_json::Value::String(text) => Some(text.clone()),
                        other => json_text(other, "message"),
                    })
                })
        })
        .or_else(|| {
            let text = String::from_utf8_lossy(body);
            let looks_like_html = text.trim_start().starts_with('<');
            (!text.trim().is_empty() && !looks_like_html).then(|| text.into_owned())
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    shorten(&format!("HTTP {}: {}", status.as_u16(), detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_come_from_json_fields_or_text() {
        let status = reqwest::StatusCode::BAD_REQUEST;
        assert_eq!(
            error_reason(status, br#"{"message":"bad number"}"#),
            "HTTP 400: bad number"
        );
        assert_eq!(
            error_reason(status, br#"{"error":{"message":"nope"}}"#),
            "HTTP 400: nope"
        );
        assert_eq!(
            error_reason(status, br#"{"error":"invalid_to"}"#),
            "HTTP 400: invalid_to"
        );
        assert_eq!(
            error_reason(status, b"plain words\n"),
            "HTTP 400: plain words"
        );
        assert_eq!(
            error_reason(status, b"<html>oops</html>"),
            "HTTP 400: Bad Request"
        );
        assert_eq!(error_reason(status, b""), "HTTP 400: Bad Request");
    }

    #[test]
    fn long_reasons_are_cut() {
        let long = "x".repeat(500);
        assert_eq!(shorten(&long).chars().count(), MAX_REASON_CHARS + 1);
    }

    #[test]
    fn retry_after_header_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
