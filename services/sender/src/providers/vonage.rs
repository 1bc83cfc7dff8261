//! Vonage (Nexmo) SMS API: `POST {base}/sms/json`, form-encoded `api_key`,
//! `api_secret`, `from`, `to` (digits, no `+`), `text`, `type=unicode` when the
//! text is not GSM-7, and `client-ref` = the job id (echoed in delivery receipts).
//!
//! Vonage answers `200` even for refusals: the body lists one entry per part,
//! `{"message-count": "2", "messages": [{"status": "0", "message-id": ..,
//! "message-price": ..}, ..]}`, where a non-zero `status` is an error with
//! `error-text`. Each part has its own message id and its own delivery receipt.
//!
//! Route settings: `base_url` [https://rest.nexmo.com], `from` (number or
//! alphanumeric sender id), `currency` [EUR] (Vonage prices are in the account's
//! currency, which the answer does not name). Credentials: `api_key`, `api_secret`.
//!
//! No idempotency key: an unknown outcome is never retried.

use std::collections::HashMap;

use foco_providers::ProviderKind;
use foco_providers::keys::{API_KEY, API_SECRET, CURRENCY, FROM};
use serde::Deserialize;

use super::response::{
    classify_status, error_reason, read_body, retry_after, shorten, transport_failure,
};
use super::{
    Accepted, FailureKind, OutboundSms, Price, ProviderOutcome, RouteConfigError, credential,
    endpoint, from_or, setting, setting_or_default,
};

#[derive(Clone)]
pub struct VonageProvider {
    client: reqwest::Client,
    url: url::Url,
    api_key: String,
    api_secret: String,
    default_from: String,
    currency: String,
}

impl std::fmt::Debug for VonageProvider {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VonageProvider")
            .field("url", &self.url.as_str())
            .field("api_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct VonageAnswer {
    #[serde(default)]
    messages: Vec<VonagePart>,
}

#[derive(Debug, Deserialize)]
struct VonagePart {
    status: Option<String>,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "message-price")]
    message_price: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
}

impl VonageProvider {
    pub fn new(
        client: reqwest::Client,
        settings: &HashMap<String, String>,
        credentials: &HashMap<String, String>,
        allow_private_hosts: bool,
    ) -> Result<Self, RouteConfigError> {
        Ok(Self {
            client,
            url: endpoint(
                ProviderKind::Vonage,
                settings,
                &["sms", "json"],
                allow_private_hosts,
            )?,
            api_key: credential(credentials, settings, API_KEY)?.to_owned(),
            api_secret: setting(credentials, API_SECRET)
                .ok_or(RouteConfigError::MissingCredential(API_SECRET))?
                .to_owned(),
            default_from: setting(settings, FROM).unwrap_or_default().to_owned(),
            currency: setting_or_default(ProviderKind::Vonage, settings, CURRENCY).to_owned(),
        })
    }

    pub async fn send(&self, message: &OutboundSms) -> ProviderOutcome {
        let from = from_or(message, &self.default_from);
        if from.is_empty() {
            return ProviderOutcome::permanent(
                FailureKind::Provider,
                "vonage route has no from number or sender id",
            );
        }
        let to = message.to.trim_start_matches('+');
        let mut form: Vec<(&str, &str)> = vec![
            ("api_key", &self.api_key),
            ("api_secret", &self.api_secret),
            ("from", from),
            ("to", to),
            ("text", &message.body),
            ("client-ref", &message.job_id),
        ];
        if !foco_rule_engine::encoding::is_gsm7(&message.body) {
            form.push(("type", "unicode"));
        }
        let request = self.client.post(self.url.clone()).form(&form);
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return transport_failure(&error),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_body(response).await;
        if !status.is_success() {
            return classify_status(status, retry_after, error_reason(status, &body));
        }
        let Ok(answer) = serde_json::from_slice::<VonageAnswer>(&body) else {
            // A 200 we cannot read may still have sent the message.
            return ProviderOutcome::Unknown {
                reason: "vonage answered 200 with an unreadable body".to_owned(),
            };
        };
        self.outcome(answer, retry_after)
    }

    fn outcome(
        &self,
        answer: VonageAnswer,
        retry_after: Option<std::time::Duration>,
    ) -> ProviderOutcome {
        if answer.messages.is_empty() {
            return ProviderOutcome::Unknown {
                reason: "vonage answered without message parts".to_owned(),
            };
        }
        // Parts are accepted or refused together in practice; the first refusal
        // decides (a part already accepted is billed, which the reason says).
        if let Some(refused) = answer
            .messages
            .iter()
            .find(|part| part.status.as_deref().unwrap_or("0") != "0")
        {
            let code = refused.status.clone().unwrap_or_default();
            let reason = shorten(&format!(
                "vonage status {code}: {}",
                refused.error_text.as_deref().unwrap_or("error")
            ));
            return match code.as_str() {
                // Throttled; too many binds.
                "1" | "10" => ProviderOutcome::throttled(retry_after, reason),
                // Internal error.
                "5" => ProviderOutcome::transient(reason),
                // Invalid message (unroutable prefix), deactivated number.
                "6" | "33" => ProviderOutcome::permanent(FailureKind::InvalidNumber, reason),
                // Number barred; destination not whitelisted.
                "7" | "29" => ProviderOutcome::permanent(FailureKind::Blocked, reason),
                // Partner quota violation: out of credit.
                "9" => ProviderOutcome::permanent(FailureKind::NoCredit, reason),
                // Credentials, barred account, HTTP not enabled, signature, sender.
                "4" | "8" | "11" | "14" | "15" | "32" => {
                    ProviderOutcome::permanent(FailureKind::Provider, reason)
                }
                _ => ProviderOutcome::permanent(FailureKind::Rejected, reason),
            };
        }
        let part_ids: Vec<String> = answer
            .messages
            .iter()
            .filter_map(|part| part.message_id.clone())
            .collect();
        let price = sum_prices(
            answer
                .messages
                .iter()
                .filter_map(|part| part.message_price.as_deref()),
        )
        .map(|amount| Price {
            amount,
            currency: self.currency.clone(),
        });
        Accepted {
            provider_message_id: part_ids.first().cloned().unwrap_or_default(),
            segments: u32::try_from(answer.messages.len()).unwrap_or(u32::MAX),
            part_ids: if answer.messages.len() > 1 {
                part_ids
            } else {
                Vec::new()
            },
            price,
        }
        .into()
    }
}

/// Adds decimal prices exactly (Vonage gives e.g. "0.03330000" per part), in
/// units of 10^-8, so no float rounding creeps into what is billed.
fn sum_prices<'a>(prices: impl Iterator<Item = &'a str>) -> Option<String> {
    const SCALE: u32 = 8;
    let mut total: i128 = 0;
    let mut any = false;
    for price in prices {
        let (whole, fraction) = price.trim().split_once('.').unwrap_or((price.trim(), ""));
        if fraction.len() > SCALE as usize {
            return None;
        }
        let whole: i128 = whole.parse().ok()?;
        let fraction_value: i128 = if fraction.is_empty() {
            0
        } else {
            fraction.parse::<i128>().ok()? * 10_i128.pow(SCALE - fraction.len() as u32)
        };
        total += whole * 10_i128.pow(SCALE) + fraction_value;
        any = true;
    }
    if !any {
        return None;
    }
    let divisor = 10_i128.pow(SCALE);
    Some(format!("{}.{:08}", total / divisor, total % divisor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_add_up_exactly() {
        assert_eq!(
            sum_prices(["0.03330000", "0.03330000"].into_iter()).as_deref(),
            Some("0.06660000")
        );
        assert_eq!(
            sum_prices(["1", "0.5"].into_iter()).as_deref(),
            Some("1.50000000")
        );
        assert_eq!(sum_prices(std::iter::empty()), None);
        assert_eq!(sum_prices(["abc"].into_iter()), None);
    }
}
