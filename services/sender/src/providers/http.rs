//! The generic provider: a POST to a configured URL. What tests use with a fake
//! provider, and what teams use for an in-house SMS gateway.
//!
//! Route settings: `url` (required), `from` (default sender), `body_template` (a
//! minijinja template of the request body; variables `job_id`, `to`, `to_digits`
//! (E.164 without `+`), `from`, `body`, `account_id`, `event_id`; filters `tojson`
//! and `urlencode`), `content_type` [application/json], `id_pointer` (JSON pointer
//! to the provider's message id in the answer, e.g. `/data/id`; default: top-level
//! `id` or `message_id`), `idempotent` [false] (`true` when the gateway
//! deduplicates on `Idempotency-Key`, which lets an unknown outcome be retried).
//! Without a template the body is JSON `{job_id, to, from, body, account_id,
//! event_id}`.
//!
//! Every credential is a request header: `<Name>` (as `foco apply` stores a
//! route's `headers:`), or `header:<Name>` / `header.<Name>` → `<Name>: value`.
//! Every request carries `Idempotency-Key: <job id>`.

use std::collections::HashMap;
use std::sync::Arc;

use foco_providers::ProviderKind;
use foco_providers::keys::{self, BODY_TEMPLATE, FROM, ID_POINTER, IDEMPOTENT, URL};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::response::{
    classify_status, error_reason, json_text, read_body, retry_after, transport_failure,
};
use super::{
    Accepted, FailureKind, OutboundSms, ProviderOutcome, Repeat, RouteConfigError, from_or,
    setting, setting_or_default, url_setting,
};

pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Templates are small; fuel stops one that loops.
const TEMPLATE_FUEL: u64 = 50_000;

#[derive(Debug, Clone)]
pub struct HttpProvider {
    client: reqwest::Client,
    url: url::Url,
    default_from: String,
    headers: HeaderMap,
    template: Option<Arc<BodyTemplate>>,
    content_type: HeaderValue,
    id_pointer: Option<String>,
    repeat: Repeat,
}

/// The body without a template.
#[derive(serde::Serialize)]
struct DefaultBody<'a> {
    job_id: &'a str,
    to: &'a str,
    from: &'a str,
    body: &'a str,
    account_id: &'a str,
    event_id: &'a str,
}

/// A compiled `body_template`.
struct BodyTemplate {
    environment: minijinja::Environment<'static>,
}

impl std::fmt::Debug for BodyTemplate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("BodyTemplate")
    }
}

impl BodyTemplate {
    fn compile(source: &str) -> Result<Self, RouteConfigError> {
        let mut environment = minijinja::Environment::new();
        environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        environment.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        environment.set_fuel(Some(TEMPLATE_FUEL));
        environment
            .add_template_owned("body", source.to_owned())
            .map_err(|_| RouteConfigError::InvalidSetting(BODY_TEMPLATE))?;
        Ok(Self { environment })
    }

    fn render(&self, message: &OutboundSms, from: &str) -> Result<String, minijinja::Error> {
        let template = self.environment.get_template("body")?;
        template.render(minijinja::context! {
            job_id => message.job_id.as_str(),
            to => message.to.as_str(),
            to_digits => message.to.trim_start_matches('+'),
            from => from,
            body => message.body.as_str(),
            account_id => message.account_id.as_str(),
            event_id => message.event_id.as_str(),
        })
    }
}

impl HttpProvider {
    pub fn new(
        client: reqwest::Client,
        settings: &HashMap<String, String>,
        credentials: &HashMap<String, String>,
        allow_private_hosts: bool,
    ) -> Result<Self, RouteConfigError> {
        let url = setting(settings, URL).ok_or(RouteConfigError::MissingSetting(URL))?;
        let url = url_setting(url, URL, allow_private_hosts)?;
        let template = setting(settings, BODY_TEMPLATE)
            .map(BodyTemplate::compile)
            .transpose()?
            .map(Arc::new);
        let content_type = setting_or_default(ProviderKind::Http, settings, keys::CONTENT_TYPE);
        let content_type = HeaderValue::from_str(content_type)
            .map_err(|_| RouteConfigError::InvalidSetting(keys::CONTENT_TYPE))?;
        let repeat = match setting(settings, IDEMPOTENT).map(str::parse::<bool>) {
            None | Some(Ok(false)) => Repeat::MaySendTwice,
            Some(Ok(true)) => Repeat::Deduplicated,
            Some(Err(_)) => return Err(RouteConfigError::InvalidSetting(IDEMPOTENT)),
        };
        Ok(Self {
            client,
            url,
            default_from: setting(settings, FROM).unwrap_or_default().to_owned(),
            headers: credential_headers(credentials)?,
            template,
            content_type,
            id_pointer: setting(settings, ID_POINTER).map(str::to_owned),
            repeat,
        })
    }

    pub fn repeat(&self) -> Repeat {
        self.repeat
    }

    pub async fn send(&self, message: &OutboundSms) -> ProviderOutcome {
        let from = from_or(message, &self.default_from);
        let body = match &self.template {
            Some(template) => match template.render(message, from) {
                Ok(body) => body,
                Err(error) => {
                    // The template is the route's configuration: another provider may work.
                    tracing::warn!(error = %error, "http provider body template failed");
                    return ProviderOutcome::permanent(
                        FailureKind::Provider,
                        "provider route body_template could not be rendered",
                    );
                }
            },
            None => {
                let body = DefaultBody {
                    job_id: &message.job_id,
                    to: &message.to,
                    from,
                    body: &message.body,
                    account_id: &message.account_id,
                    event_id: &message.event_id,
                };
                match serde_json::to_string(&body) {
                    Ok(body) => body,
                    Err(_) => {
                        return ProviderOutcome::permanent(
                            FailureKind::Rejected,
                            "message could not be encoded",
                        );
                    }
                }
            }
        };
        let mut request = self.client.post(self.url.clone());
        if !self.headers.is_empty() {
            request = request.headers(self.headers.clone());
        }
        let request = request
            .header(CONTENT_TYPE, self.content_type.clone())
            .header(IDEMPOTENCY_KEY, message.job_id.as_str())
            .body(body);
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
                .and_then(|json| self.message_id(&json))
                .unwrap_or_else(|| message.job_id.clone());
            return ProviderOutcome::Sent(Accepted::with_id(provider_message_id));
        }
        classify_status(status, retry_after, error_reason(status, &body))
    }

    fn message_id(&self, json: &serde_json::Value) -> Option<String> {
        if let Some(pointer) = &self.id_pointer {
            return match json.pointer(pointer)? {
                serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
                serde_json::Value::Number(number) => Some(number.to_string()),
                _ => None,
            };
        }
        json_text(json, "id").or_else(|| json_text(json, "message_id"))
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
