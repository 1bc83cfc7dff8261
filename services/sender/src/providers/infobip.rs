//! Infobip SMS API v3: `POST {base}/sms/3/messages` with `Authorization: App
//! <api key>` and JSON `{"messages": [{"sender": .., "destinations": [{"to": ..,
//! "messageId": <job id>}], "content": {"text": ..}}]}`. The job id as
//! `messageId` makes Infobip's delivery reports carry it back.
//!
//! Success is `200` with `{"bulkId": .., "messages": [{"messageId": .., "status":
//! {"groupName": "PENDING", "name": ..}, "details": {"messageCount": n}}]}`; a
//! message in status group REJECTED was refused. Errors are `{"errorCode": ..,
//! "description": ..}` (v3) or `{"requestError": {"serviceException":
//! {"messageId": .., "text": ..}}}` (older endpoints).
//!
//! Route settings: `base_url` (required: each Infobip account has its own
//! `https://<id>.api.infobip.com`), `from`. Credentials: `api_key`.
//!
//! No idempotency key: an unknown outcome is never retried.

use std::collections::HashMap;

use foco_providers::ProviderKind;
use foco_providers::keys::{API_KEY, BASE_URL, FROM};
use serde::Deserialize;

use super::response::{
    classify_status, error_reason, read_body, retry_after, shorten, transport_failure,
};
use super::{
    Accepted, FailureKind, OutboundSms, ProviderOutcome, RouteConfigError, endpoint, from_or,
    setting,
};

#[derive(Clone)]
pub struct InfobipProvider {
    client: reqwest::Client,
    url: url::Url,
    authorization: reqwest::header::HeaderValue,
    default_from: String,
}

impl std::fmt::Debug for InfobipProvider {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("InfobipProvider")
            .field("url", &self.url.as_str())
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct InfobipAnswer {
    #[serde(default)]
    messages: Vec<InfobipMessage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfobipMessage {
    message_id: Option<String>,
    status: Option<InfobipStatus>,
    details: Option<InfobipDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfobipStatus {
    group_name: Option<String>,
    name: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfobipDetails {
    message_count: Option<u32>,
}

impl InfobipProvider {
    pub fn new(
        client: reqwest::Client,
        settings: &HashMap<String, String>,
        credentials: &HashMap<String, String>,
        allow_private_hosts: bool,
    ) -> Result<Self, RouteConfigError> {
        if setting(settings, BASE_URL).is_none() {
            return Err(RouteConfigError::MissingSetting(BASE_URL));
        }
        let api_key =
            setting(credentials, API_KEY).ok_or(RouteConfigError::MissingCredential(API_KEY))?;
        let mut authorization = reqwest::header::HeaderValue::from_str(&format!("App {api_key}"))
            .map_err(|_| RouteConfigError::InvalidCredential(API_KEY))?;
        authorization.set_sensitive(true);
        Ok(Self {
            client,
            url: endpoint(
                ProviderKind::Infobip,
                settings,
                &["sms", "3", "messages"],
                allow_private_hosts,
            )?,
            authorization,
            default_from: setting(settings, FROM).unwrap_or_default().to_owned(),
        })
    }

    pub async fn send(&self, message: &OutboundSms) -> ProviderOutcome {
        let mut outbound = serde_json::json!({
            "destinations": [{"to": message.to.trim_start_matches('+'), "messageId": message.job_id}],
            "content": {"text": message.body},
        });
        let from = from_or(message, &self.default_from);
        if !from.is_empty() {
            outbound["sender"] = serde_json::Value::from(from);
        }
        let request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
            .json(&serde_json::json!({ "messages": [outbound] }));
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return transport_failure(&error),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_body(response).await;
        if !status.is_success() {
            return classify_status(status, retry_after, infobip_reason(status, &body));
        }
        let Some(sent) = serde_json::from_slice::<InfobipAnswer>(&body)
            .ok()
            .and_then(|answer| answer.messages.into_iter().next())
        else {
            return ProviderOutcome::Unknown {
                reason: "infobip answered 200 with an unreadable body".to_owned(),
            };
        };
        let status = sent.status.as_ref();
        let group = status.and_then(|status| status.group_name.as_deref());
        if matches!(group, Some("REJECTED" | "UNDELIVERABLE")) {
            let name = status
                .and_then(|status| status.name.clone())
                .unwrap_or_default();
            let description = status
                .and_then(|status| status.description.clone())
                .unwrap_or_default();
            let reason = shorten(&format!("infobip {name}: {description}"));
            return ProviderOutcome::permanent(failure_for_status(&name), reason);
        }
        Accepted {
            provider_message_id: sent.message_id.unwrap_or_else(|| message.job_id.clone()),
            part_ids: Vec::new(),
            segments: sent
                .details
                .and_then(|details| details.message_count)
                .unwrap_or(0),
            price: None,
        }
        .into()
    }
}

/// Infobip's REJECTED_* status names (e.g. `REJECTED_NOT_ENOUGH_CREDITS`).
fn failure_for_status(name: &str) -> FailureKind {
    if name.contains("CREDIT") || name.contains("PREPAID") {
        FailureKind::NoCredit
    } else if name.contains("DESTINATION") || name.contains("PREFIX") || name.contains("MISSING_TO")
    {
        FailureKind::InvalidNumber
    } else if name.contains("DND") || name.contains("BLOCK") || name.contains("FLOODING") {
        FailureKind::Blocked
    } else if name.contains("SOURCE")
        || name.contains("SENDER")
        || name.contains("ROUTE")
        || name.contains("NETWORK")
        || name.contains("SYSTEM")
    {
        FailureKind::Provider
    } else {
        FailureKind::Rejected
    }
}

fn infobip_reason(status: reqwest::StatusCode, body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return error_reason(status, body);
    };
    if let Some(description) = json.get("description").and_then(|value| value.as_str()) {
        let code = json
            .get("errorCode")
            .and_then(|value| value.as_str())
            .unwrap_or("error");
        return shorten(&format!("infobip {code}: {description}"));
    }
    if let Some(exception) = json.pointer("/requestError/serviceException") {
        let id = exception
            .get("messageId")
            .and_then(|value| value.as_str())
            .unwrap_or("error");
        let text = exception
            .get("text")
            .and_then(|value| value.as_str())
            .unwrap_or("");
        return shorten(&format!("infobip {id}: {text}"));
    }
    error_reason(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_names_map_to_kinds() {
        assert_eq!(
            failure_for_status("REJECTED_NOT_ENOUGH_CREDITS"),
            FailureKind::NoCredit
        );
        assert_eq!(
            failure_for_status("REJECTED_INVALID_DESTINATION"),
            FailureKind::InvalidNumber
        );
        assert_eq!(failure_for_status("REJECTED_DND"), FailureKind::Blocked);
        assert_eq!(failure_for_status("REJECTED_SENDER"), FailureKind::Provider);
        assert_eq!(failure_for_status("REJECTED_OTHER"), FailureKind::Rejected);
    }
}
