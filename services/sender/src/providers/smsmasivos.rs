//! SMS Masivos (Mexico), API v2: `POST {base}/sms/send` with the `apikey` header
//! and form fields `message`, `numbers` (national number), `country_code` (digits,
//! e.g. 52), optional `sender` and `sandbox=1`.
//!
//! Answers are JSON `{"success": true|false, "message": .., "status": <http>,
//! "code": .., "references": ..}`; a refusal has `success: false` and a `code`
//! such as `auth_01` (unauthorised) or `auth_03` (invalid key). The reference of
//! an accepted message is read from `references` (a list of strings or of objects
//! with `reference`) or `reference`; without one, the job id stands in.
//!
//! Route settings: `base_url` [https://api.smsmasivos.com.mx], `from` (sender name,
//! where contracted), `sandbox` [false]. Credentials: `api_key`.
//!
//! No idempotency key: an unknown outcome is never retried.

use std::collections::HashMap;

use foco_providers::ProviderKind;
use foco_providers::keys::{API_KEY, FROM, SANDBOX};

use super::response::{
    classify_status, error_reason, json_text, read_body, retry_after, shorten, transport_failure,
};
use super::{
    Accepted, FailureKind, OutboundSms, ProviderOutcome, RouteConfigError, endpoint, from_or,
    setting,
};

#[derive(Clone)]
pub struct SmsMasivosProvider {
    client: reqwest::Client,
    url: url::Url,
    api_key: reqwest::header::HeaderValue,
    default_from: String,
    sandbox: bool,
}

impl std::fmt::Debug for SmsMasivosProvider {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SmsMasivosProvider")
            .field("url", &self.url.as_str())
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl SmsMasivosProvider {
    pub fn new(
        client: reqwest::Client,
        settings: &HashMap<String, String>,
        credentials: &HashMap<String, String>,
        allow_private_hosts: bool,
    ) -> Result<Self, RouteConfigError> {
        let api_key =
            setting(credentials, API_KEY).ok_or(RouteConfigError::MissingCredential(API_KEY))?;
        let mut api_key = reqwest::header::HeaderValue::from_str(api_key)
            .map_err(|_| RouteConfigError::InvalidCredential(API_KEY))?;
        api_key.set_sensitive(true);
        let sandbox = match setting(settings, SANDBOX) {
            None => false,
            Some(value) => value
                .parse::<bool>()
                .map_err(|_| RouteConfigError::InvalidSetting(SANDBOX))?,
        };
        Ok(Self {
            client,
            url: endpoint(
                ProviderKind::SmsMasivos,
                settings,
                &["sms", "send"],
                allow_private_hosts,
            )?,
            api_key,
            default_from: setting(settings, FROM).unwrap_or_default().to_owned(),
            sandbox,
        })
    }

    pub async fn send(&self, message: &OutboundSms) -> ProviderOutcome {
        let Some((country_code, national)) = split_number(&message.to) else {
            return ProviderOutcome::permanent(
                FailureKind::InvalidNumber,
                "number cannot be split into country code and national number",
            );
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("message", &message.body),
            ("numbers", &national),
            ("country_code", &country_code),
        ];
        let from = from_or(message, &self.default_from);
        if !from.is_empty() {
            form.push(("sender", from));
        }
        if self.sandbox {
            form.push(("sandbox", "1"));
        }
        let request = self
            .client
            .post(self.url.clone())
            .header("apikey", self.api_key.clone())
            .form(&form);
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return transport_failure(&error),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_body(response).await;
        let json = serde_json::from_slice::<serde_json::Value>(&body).ok();
        let success = json
            .as_ref()
            .and_then(|json| json.get("success"))
            .and_then(serde_json::Value::as_bool);
        if status.is_success() && success != Some(false) {
            let reference = json.as_ref().and_then(reference);
            if success.is_none() && reference.is_none() {
                return ProviderOutcome::Unknown {
                    reason: "sms masivos answered 2xx with an unreadable body".to_owned(),
                };
            }
            return Accepted::with_id(reference.unwrap_or_else(|| message.job_id.clone())).into();
        }
        let Some(json) = json.filter(|_| success == Some(false)) else {
            return classify_status(status, retry_after, error_reason(status, &body));
        };
        let code = json_text(&json, "code").unwrap_or_default();
        let text = json_text(&json, "message").unwrap_or_default();
        let reason = shorten(&format!("sms masivos {code}: {text}"));
        if status.as_u16() == 429 || status.is_server_error() {
            return classify_status(status, retry_after, reason);
        }
        ProviderOutcome::permanent(failure_for(&code, &text), reason)
    }
}

/// `+525512345678` → ("52", "5512345678").
fn split_number(e164: &str) -> Option<(String, String)> {
    let number = phonenumber::parse(None, e164).ok()?;
    let national = number.national();
    Some((
        number.code().value().to_string(),
        format!(
            "{}{}",
            "0".repeat(usize::from(national.zeros())),
            national.value()
        ),
    ))
}

fn reference(json: &serde_json::Value) -> Option<String> {
    if let Some(first) = json
        .get("references")
        .and_then(|references| references.as_array())
        .and_then(|references| references.first())
    {
        return match first {
            serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
            other => json_text(other, "reference").or_else(|| json_text(other, "id")),
        };
    }
    json_text(json, "reference")
}

fn failure_for(code: &str, text: &str) -> FailureKind {
    let text = text.to_lowercase();
    if code.starts_with("auth") {
        FailureKind::Provider
    } else if ["crédito", "credito", "saldo", "credit"]
        .iter()
        .any(|word| text.contains(word))
    {
        FailureKind::NoCredit
    } else if ["número", "numero", "number"]
        .iter()
        .any(|word| text.contains(word))
    {
        FailureKind::InvalidNumber
    } else {
        FailureKind::Rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_split_into_country_and_national_parts() {
        assert_eq!(
            split_number("+525512345678"),
            Some(("52".to_owned(), "5512345678".to_owned()))
        );
        assert_eq!(split_number("nope"), None);
    }

    #[test]
    fn refusals_map_to_kinds() {
        assert_eq!(
            failure_for("auth_03", "Llave privada inválida"),
            FailureKind::Provider
        );
        assert_eq!(
            failure_for("sms_07", "Saldo insuficiente"),
            FailureKind::NoCredit
        );
        assert_eq!(
            failure_for("sms_03", "Número inválido"),
            FailureKind::InvalidNumber
        );
        assert_eq!(
            failure_for("sms_09", "Mensaje vacío"),
            FailureKind::Rejected
        );
    }
}
