//! Twilio's Messages API: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! form-encoded `To`, `From` (or `MessagingServiceSid`) and `Body`, HTTP basic auth
//! with the account SID and auth token. Success is `201` with the message `sid`;
//! errors carry `{code, message, more_info, status}`.
//!
//! Route settings: `base_url` (default `https://api.twilio.com`, for regional
//! endpoints and fakes), `from`, `messaging_service_sid`, `account_sid` (may also be
//! a credential). Credentials: `account_sid`, `auth_token`.
//!
//! Success carries `num_segments` and (often later) `price`/`price_unit`. Error
//! 21610 (recipient unsubscribed) opts the number out of the account.
//!
//! Twilio's API has no idempotency key, so an unknown outcome is never retried.

use std::collections::HashMap;

use foco_providers::ProviderKind;
use foco_providers::keys::{ACCOUNT_SID, AUTH_TOKEN, FROM, MESSAGING_SERVICE_SID};
use serde::Deserialize;

use super::response::{
    classify_status, error_reason, read_body, retry_after, shorten, transport_failure,
};
use super::{
    Accepted, FailureKind, OutboundSms, Price, ProviderOutcome, RouteConfigError, credential,
    endpoint, from_or, setting,
};

#[derive(Clone)]
pub struct TwilioProvider {
    client: reqwest::Client,
    messages_url: url::Url,
    account_sid: String,
    auth_token: String,
    default_from: String,
    messaging_service_sid: String,
}

impl std::fmt::Debug for TwilioProvider {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TwilioProvider")
            .field("messages_url", &self.messages_url.as_str())
            .field("auth_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Twilio's error body.
#[derive(Debug, Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TwilioMessage {
    sid: Option<String>,
    num_segments: Option<serde_json::Value>,
    price: Option<serde_json::Value>,
    price_unit: Option<String>,
}

impl TwilioProvider {
    pub fn new(
        client: reqwest::Client,
        settings: &HashMap<String, String>,
        credentials: &HashMap<String, String>,
        allow_private_hosts: bool,
    ) -> Result<Self, RouteConfigError> {
        let account_sid = credential(credentials, settings, ACCOUNT_SID)?;
        // The SID becomes a path segment; Twilio SIDs are "AC" + 32 hex digits.
        if !account_sid.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            return Err(RouteConfigError::InvalidCredential(ACCOUNT_SID));
        }
        let auth_token = setting(credentials, AUTH_TOKEN)
            .ok_or(RouteConfigError::MissingCredential(AUTH_TOKEN))?;
        let messages_url = endpoint(
            ProviderKind::Twilio,
            settings,
            &["2010-04-01", "Accounts", account_sid, "Messages.json"],
            allow_private_hosts,
        )?;
        Ok(Self {
            client,
            messages_url,
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            default_from: setting(settings, FROM).unwrap_or_default().to_owned(),
            messaging_service_sid: setting(settings, MESSAGING_SERVICE_SID)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    pub async fn send(&self, message: &OutboundSms) -> ProviderOutcome {
        let from = from_or(message, &self.default_from);
        let mut form: Vec<(&str, &str)> = vec![("To", message.to.as_str())];
        if !from.is_empty() {
            form.push(("From", from));
        } else if !self.messaging_service_sid.is_empty() {
            form.push(("MessagingServiceSid", self.messaging_service_sid.as_str()));
        } else {
            return ProviderOutcome::permanent(
                FailureKind::Provider,
                "twilio route has no from number or messaging_service_sid",
            );
        }
        form.push(("Body", message.body.as_str()));
        let request = self
            .client
            .post(self.messages_url.clone())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form);
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return transport_failure(&error),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_body(response).await;
        if status.is_success() {
            let answer = serde_json::from_slice::<TwilioMessage>(&body).ok();
            return ProviderOutcome::Sent(accepted(answer, &message.job_id));
        }
        let error = serde_json::from_slice::<TwilioError>(&body).ok();
        let reason = twilio_reason(status, &body);
        match error
            .and_then(|error| error.code)
            .and_then(failure_for_code)
        {
            Some(kind) => ProviderOutcome::permanent(kind, reason),
            None => classify_status(status, retry_after, reason),
        }
    }
}

fn accepted(answer: Option<TwilioMessage>, job_id: &str) -> Accepted {
    let Some(answer) = answer else {
        return Accepted::with_id(job_id);
    };
    let text = |value: &Option<serde_json::Value>| match value {
        Some(serde_json::Value::String(text)) if !text.is_empty() => Some(text.clone()),
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    Accepted {
        provider_message_id: answer
            .sid
            .filter(|sid| !sid.is_empty())
            .unwrap_or_else(|| job_id.to_owned()),
        part_ids: Vec::new(),
        segments: text(&answer.num_segments)
            .and_then(|segments| segments.parse().ok())
            .unwrap_or(0),
        // Twilio usually reports the price later (null on creation).
        price: text(&answer.price).map(|amount| Price {
            amount,
            currency: answer.price_unit.unwrap_or_default(),
        }),
    }
}

/// Twilio error codes whose meaning is more precise than their HTTP status.
/// https://www.twilio.com/docs/api/errors
fn failure_for_code(code: i64) -> Option<FailureKind> {
    Some(match code {
        21610 => FailureKind::OptedOut,
        // Invalid 'To', not a mobile number, cannot route to it, not SMS-capable.
        21211 | 21214 | 21217 | 21401 | 21407 | 21612 | 21614 => FailureKind::InvalidNumber,
        // The destination is on a blocklist or the message was filtered.
        21635 | 30004 | 30007 => FailureKind::Blocked,
        // Authentication, suspended account, region not enabled, invalid From.
        20003 | 20005 | 20008 | 21212 | 21408 | 21606 | 21659 => FailureKind::Provider,
        // Body missing or too long.
        21602 | 21617 => FailureKind::Rejected,
        _ => return None,
    })
}

/// `21211: The 'To' number +1555 is not a valid phone number.` when Twilio sent its
/// error body; the generic reason otherwise.
fn twilio_reason(status: reqwest::StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<TwilioError>(body) {
        Ok(TwilioError {
            code: Some(code),
            message,
        }) => shorten(&format!("{code}: {}", message.unwrap_or_default())),
        Ok(TwilioError {
            code: None,
            message: Some(message),
        }) => shorten(&format!("HTTP {}: {message}", status.as_u16())),
        _ => error_reason(status, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        super::super::build_http_client(std::time::Duration::from_secs(1), true, "foco-test")
            .unwrap()
    }

    #[test]
    fn messages_url_includes_the_account() {
        let settings =
            HashMap::from([("base_url".to_owned(), "https://api.twilio.com/".to_owned())]);
        let credentials = HashMap::from([
            ("account_sid".to_owned(), "AC123".to_owned()),
            ("auth_token".to_owned(), "secret".to_owned()),
        ]);
        let provider = TwilioProvider::new(client(), &settings, &credentials, false).unwrap();
        assert_eq!(
            provider.messages_url.as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        assert!(!format!("{provider:?}").contains("secret"));
    }

    #[test]
    fn missing_credentials_are_reported() {
        let credentials = HashMap::from([("account_sid".to_owned(), "AC1".to_owned())]);
        let error =
            TwilioProvider::new(client(), &HashMap::new(), &credentials, false).unwrap_err();
        assert_eq!(error, RouteConfigError::MissingCredential("auth_token"));
        let credentials = HashMap::from([
            ("account_sid".to_owned(), "AC1/../x".to_owned()),
            ("auth_token".to_owned(), "t".to_owned()),
        ]);
        let error =
            TwilioProvider::new(client(), &HashMap::new(), &credentials, false).unwrap_err();
        assert_eq!(error, RouteConfigError::InvalidCredential("account_sid"));
    }

    #[test]
    fn twilio_errors_read_as_code_and_message() {
        let body = br#"{"code": 21211, "message": "The 'To' number 5551234 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        assert_eq!(
            twilio_reason(reqwest::StatusCode::BAD_REQUEST, body),
            "21211: The 'To' number 5551234 is not a valid phone number."
        );
        assert_eq!(
            twilio_reason(reqwest::StatusCode::BAD_GATEWAY, b"upstream"),
            "HTTP 502: upstream"
        );
    }
}
