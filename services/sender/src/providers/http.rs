//! The generic provider: a JSON POST to a configured URL. What tests use with a
//! fake provider, and what teams use for an in-house SMS gateway.
//!
//! Route settings: `url` (required), `from` (default sender). Every credential is
//! a request header: `<Name>` (as `foco apply` stores a route's `headers:`), or
//! `header:<Name>` / `header.<Name>` → `<Name>: value`. Every request carries `Idempotency-Key: <job id>`, so a
//! gateway that honours it can absorb a retry of an unknown outcome.

use std::collections::HashMap;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use super::response::{error_reason, json_text, read_body, retry_after, transport_failure};
use super::{OutboundSms, ProviderOutcome, RouteConfigError, setting, url_setting};

pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

#[derive(Debug, Clone)]
pub struct HttpProvider {
    client: reqwest::Client,
    url: url::Url,
    default_from: String,
    headers: HeaderMap,
}

impl HttpProvider {
    pub fn new(
        client: reqwest::Client,
        settings: &HashMap<String, String>,
        credentials: &HashMap<String, String>,
        allow_private_hosts: bool,
    ) -> Result<Self, RouteConfigError> {
        let url = setting(settings, "url").ok_or(RouteConfigError::MissingSetting("url"))?;
        let url = url_setting(url, "url", allow_private_hosts)?;
        Ok(Self {
            client,
            url,
            default_from: setting(settings, "from").unwrap_or_default().to_owned(),
            headers: credential_headers(credentials)?,
        })
    }

    pub async fn send(&self, message: &OutboundSms) -> ProviderOutcome {
        let from = if message.from.is_empty() {
            self.default_from.as_str()
        } else {
            message.from.as_str()
        };
        let payload = serde_json::json!({
            "job_id": message.job_id,
            "to": message.to,
            "from": from,
            "body": message.body,
            "account_id": message.account_id,
            "event_id": message.event_id,
        });
        let request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
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
            let provider_message_id = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|json| json_text(&json, "id").or_else(|| json_text(&json, "message_id")))
                .unwrap_or_else(|| message.job_id.clone());
            return ProviderOutcome::Sent {
                provider_message_id,
            };
        }
        if status.as_u16() == 429 || status.is_server_error() {
            return ProviderOutcome::Transient {
                retry_after,
                reason: error_reason(status, &body),
            };
        }
        ProviderOutcome::Permanent {
            reason: error_reason(status, &body),
        }
    }
}

/// Credentials that are HTTP headers. Values are marked sensitive so that debug
/// output of the request never shows them.
fn credential_headers(
    credentials: &HashMap<String, String>,
) -> Result<HeaderMap, RouteConfigError> {
    let mut headers = HeaderMap::new();
    for (name, value) in credentials {
        let header_name = if name.eq_ignore_ascii_case("authorization") {
            AUTHORIZATION
        } else {
            // `foco apply` stores each YAML header under its own name; the
            // `header:`/`header.` prefixes are accepted for routes made by hand.
            let header = name
                .strip_prefix("header:")
                .or_else(|| name.strip_prefix("header."))
                .unwrap_or(name);
            HeaderName::from_bytes(header.trim().as_bytes())
                .map_err(|_| RouteConfigError::InvalidHeader(name.clone()))?
        };
        let mut header_value = HeaderValue::from_str(value.trim())
            .map_err(|_| RouteConfigError::InvalidHeader(name.clone()))?;
        header_value.set_sensitive(true);
        headers.insert(header_name, header_value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_credentials_become_headers() {
        let credentials = HashMap::from([
            ("header:X-Api-Key".to_owned(), "k1".to_owned()),
            ("header.X-Tenant".to_owned(), "t1".to_owned()),
            ("authorization".to_owned(), "Bearer t".to_owned()),
            ("X-Shop".to_owned(), "ale".to_owned()),
        ]);
        let headers = credential_headers(&credentials).unwrap();
        assert_eq!(headers.len(), 4);
        assert_eq!(headers["x-shop"], "ale");
        assert_eq!(headers["x-tenant"], "t1");
        assert_eq!(headers["x-api-key"], "k1");
        assert_eq!(headers[AUTHORIZATION], "Bearer t");
        assert!(headers[AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn unusable_header_credentials_are_refused() {
        let credentials = HashMap::from([("header:bad name".to_owned(), "v".to_owned())]);
        assert!(matches!(
            credential_headers(&credentials),
            Err(RouteConfigError::InvalidHeader(_))
        ));
        let credentials = HashMap::from([("authorization".to_owned(), "line\nbreak".to_owned())]);
        assert!(credential_headers(&credentials).is_err());
    }
}
