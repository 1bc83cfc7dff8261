//! Telnyx Messaging API v2: `POST {base}/v2/messages` with `Authorization: Bearer
//! <api key>`, JSON `{"from": .., "to": .., "text": ..}` (or
//! `messaging_profile_id` instead of `from`), and `Idempotency-Key: <job id>`:
//! Telnyx answers a repeated key with the message it already created, so a call
//! whose outcome is unknown is simply made again.
//!
//! Success is `200` with `{"data": {"id": .., "parts": n, "cost": {"amount": ..,
//! "currency": ..}}}`; errors are `{"errors": [{"code": "40300", "title": ..,
//! "detail": ..}]}`.
//!
//! Route settings: `base_url` [https://api.telnyx.com], `from`,
//! `messaging_profile_id`. Credentials: `api_key`.

use std::collections::HashMap;

use foco_providers::ProviderKind;
use foco_providers::keys::{API_KEY, FROM, MESSAGING_PROFILE_ID};
use serde::Deserialize;

use super::http::IDEMPOTENCY_KEY;
use super::response::{
    classify_status, error_reason, read_body, retry_after, shorten, transport_failure,
};
use super::{
    Accepted, FailureKind, OutboundSms, Price, ProviderOutcome, RouteConfigError, endpoint,
    from_or, setting,
};

#[derive(Clone)]
pub struct TelnyxProvider {
    client: reqwest::Client,
    url: url::Url,
    authorization: reqwest::header::HeaderValue,
    default_from: String,
    messaging_profile_id: String,
}

impl std::fmt::Debug for TelnyxProvider {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TelnyxProvider")
            .field("url", &self.url.as_str())
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct TelnyxAnswer {
    data: Option<TelnyxMessage>,
}

#[derive(Debug, Deserialize)]
struct TelnyxMessage {
    id: Option<String>,
    parts: Option<u32>,
    cost: Option<TelnyxCost>,
}

#[derive(Debug, Deserialize)]
struct TelnyxCost {
    amount: Option<String>,
    currency: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TelnyxErrors {
    #[serde(default)]
    errors: Vec<TelnyxError>,
}

#[derive(Debug, Deserialize)]
struct TelnyxError {
    code: Option<String>,
    title: Option<String>,
    detail: Option<String>,
}

impl TelnyxProvider {
    pub fn new(
        client: reqwest::Client,
        settings: &HashMap<String, String>,
        credentials: &HashMap<String, String>,
        allow_private_hosts: bool,
    ) -> Result<Self, RouteConfigError> {
        let api_key =
            setting(credentials, API_KEY).ok_or(RouteConfigError::MissingCredential(API_KEY))?;
        let mut authorization =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {api_key}"))
                .map_err(|_| RouteConfigError::InvalidCredential(API_KEY))?;
        authorization.set_sensitive(true);
        Ok(Self {
            client,
            url: endpoint(
                ProviderKind::Telnyx,
                settings,
                &["v2", "messages"],
                allow_private_hosts,
            )?,
            authorization,
            default_from: setting(settings, FROM).unwrap_or_default().to_owned(),
            messaging_profile_id: setting(settings, MESSAGING_PROFILE_ID)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    pub async fn send(&self, message: &OutboundSms) -> ProviderOutcome {
        let mut payload = serde_json::json!({ "to": message.to, "text": message.body });
        let from = from_or(message, &self.default_from);
        if !from.is_empty() {
            payload["from"] = serde_json::Value::from(from);
        }
        if !self.messaging_profile_id.is_empty() {
            payload["messaging_profile_id"] =
                serde_json::Value::from(self.messaging_profile_id.as_str());
        }
        if from.is_empty() && self.messaging_profile_id.is_empty() {
            return ProviderOutcome::permanent(
                FailureKind::Provider,
                "telnyx route has no from number or messaging_profile_id",
            );
        }
        let request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
            .header(IDEMPOTENCY_KEY, message.job_id.as_str())
            .json(&payload);
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return transport_failure(&error),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_body(response).await;
        if status.is_success() {
            let Some(data) = serde_json::from_slice::<TelnyxAnswer>(&body)
                .ok()
                .and_then(|answer| answer.data)
            else {
                return ProviderOutcome::Unknown {
                    reason: "telnyx answered 2xx with an unreadable body".to_owned(),
                };
            };
            return Accepted {
                provider_message_id: data.id.unwrap_or_else(|| message.job_id.clone()),
                part_ids: Vec::new(),
                segments: data.parts.unwrap_or(0),
                price: data.cost.and_then(|cost| {
                    Some(Price {
                        amount: cost.amount.filter(|amount| !amount.is_empty())?,
                        currency: cost.currency.unwrap_or_default(),
                    })
                }),
            }
            .into();
        }
        let error = serde_json::from_slice::<TelnyxErrors>(&body)
            .ok()
            .and_then(|errors| errors.errors.into_iter().next());
        let Some(error) = error else {
            return classify_status(status, retry_after, error_reason(status, &body));
        };
        let code = error.code.unwrap_or_default();
        let reason = shorten(&format!(
            "telnyx {code}: {}",
            error.detail.or(error.title).unwrap_or_default()
        ));
        match failure_for_code(&code) {
            Some(kind) if status.as_u16() != 429 && !status.is_server_error() => {
                ProviderOutcome::permanent(kind, reason)
            }
            _ => classify_status(status, retry_after, reason),
        }
    }
}

/// Telnyx error codes, https://developers.telnyx.com/docs/messaging/messages/error-codes
fn failure_for_code(code: &str) -> Option<FailureKind> {
    Some(match code {
        // Blocked due to a STOP message from the recipient.
        "40300" => FailureKind::OptedOut,
        // Inactive or invalid number, not E.164, not routable, invalid 'to'.
        "10001" | "10002" | "10016" | "40001" | "40310" => FailureKind::InvalidNumber,
        // Carrier spam blocks.
        "40002" | "40003" => FailureKind::Blocked,
        // Authentication or authorisation failed; invalid 'from'.
        "10009" | "10010" | "40305" | "40311" => FailureKind::Provider,
        _ => return None,
    })
}
