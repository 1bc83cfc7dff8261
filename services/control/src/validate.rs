//! Input checks done at save time, so a mistake is reported to whoever wrote it
//! (with the field and, for expressions and templates, the position) instead of
//! surfacing later as a failed event.

use std::collections::HashMap;
use std::str::FromStr;

use crate::error::ApiError;

/// `[a-z0-9][a-z0-9-_]{0,62}`
pub fn name(field: &str, value: &str) -> Result<(), ApiError> {
    let mut chars = value.chars();
    let valid_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid_rest =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid_first && valid_rest && value.len() <= 63 {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "{field} {value:?} is not a valid name: use 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
    )))
}

/// ISO 3166-1 alpha-2 code of a country with a phone numbering plan; returns it
/// upper-cased.
pub fn country(value: &str) -> Result<String, ApiError> {
    let upper = value.trim().to_ascii_uppercase();
    let is_alpha2 = upper.len() == 2 && upper.chars().all(|c| c.is_ascii_uppercase());
    if is_alpha2 && phonenumber::country::Id::from_str(&upper).is_ok() {
        return Ok(upper);
    }
    Err(ApiError::invalid(format!(
        "default_country {value:?} is not an ISO 3166-1 alpha-2 country code such as \"MX\" or \"US\""
    )))
}

/// An IANA time zone name.
pub fn timezone(value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid(
            "timezone is required: an IANA time zone such as \"America/Mexico_City\"",
        ));
    }
    if chrono_tz::Tz::from_str(trimmed).is_err() {
        return Err(ApiError::invalid(format!(
            "timezone {value:?} is not an IANA time zone such as \"America/Mexico_City\""
        )));
    }
    Ok(trimmed.to_owned())
}

/// `header:<Name>` or `body:<dotted.path>`, or empty.
pub fn field_locator(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Ok(());
    }
    let valid = match value.split_once(':') {
        Some(("header", name)) => {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        Some(("body", path)) => !path.is_empty() && !path.split('.').any(str::is_empty),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{field} {value:?} must be \"header:<Header-Name>\" or \"body:<path.to.field>\""
        )))
    }
}

/// Compiles a CEL condition; the error names the field and the parser's
/// line/column.
pub fn condition(field: &str, source: &str) -> Result<(), ApiError> {
    if source.trim().is_empty() {
        return Ok(());
    }
    // The engine's own check: size and nesting limits, then the parser, whose
    // positions are already 1-based ("line 1, column 15: …").
    foco_rule_engine::validate_condition(source).map_err(|message| {
        ApiError::invalid(format!("{field} is not a valid CEL expression: {message}"))
    })
}

/// Parses a minijinja template; the error names the field and the line.
pub fn template(field: &str, source: &str) -> Result<(), ApiError> {
    let environment = minijinja::Environment::new();
    match environment.template_from_str(source) {
        Ok(_) => Ok(()),
        Err(error) => {
            let location = error
                .line()
                .map(|line| format!(" (line {line})"))
                .unwrap_or_default();
            let detail = error
                .detail()
                .map_or_else(|| error.kind().to_string(), str::to_owned);
            Err(ApiError::invalid(format!(
                "{field} is not a valid template{location}: {}: {detail}",
                error.kind()
            )))
        }
    }
}

pub const ROUTE_KINDS: [&str; 7] = [
    "console",
    "http",
    "twilio",
    "vonage",
    "infobip",
    "smsmasivos",
    "telnyx",
];

/// Kind-specific requirements of a provider route. `credential_names` are the
/// credentials that will be stored after this write.
pub fn provider_route(
    kind: &str,
    settings: &HashMap<String, String>,
    credential_names: &[String],
) -> Result<(), ApiError> {
    let has = |key: &str| {
        settings
            .get(key)
            .is_some_and(|value| !value.trim().is_empty())
            || credential_names.iter().any(|name| name == key)
    };
    match kind {
        // The file is the operator's (the sender's FOCO_CONSOLE_OUTBOX): a route
        // must not make the sender write anywhere else.
        "console" if settings.contains_key("path") => Err(ApiError::invalid(
            "a console route writes to the operator's outbox (FOCO_CONSOLE_OUTBOX on the sender); settings.path is not accepted",
        )),
        "console" => Ok(()),
        "http" => {
            let url = settings.get("url").map(String::as_str).unwrap_or_default();
            if url.is_empty() {
                return Err(ApiError::invalid("an http route needs settings.url"));
            }
            http_url("settings.url", url)
        }
        "twilio" => {
            for required in ["account_sid", "auth_token"] {
                if !has(required) {
                    return Err(ApiError::invalid(format!(
                        "a twilio route needs credentials.{required}"
                    )));
                }
            }
            if let Some(base_url) = settings.get("base_url").filter(|url| !url.is_empty()) {
                http_url("settings.base_url", base_url)?;
            }
            Ok(())
        }
        "vonage" | "infobip" | "smsmasivos" | "telnyx" => {
            let required: &[&str] = match kind {
                "vonage" => &["api_key", "api_secret"],
                _ => &["api_key"],
            };
            for required in required {
                if !has(required) {
                    return Err(ApiError::invalid(format!(
                        "a {kind} route needs credentials.{required}"
                    )));
                }
            }
            if kind == "vonage" {
                vonage_signature_method(settings)?;
            }
            match settings.get("base_url").filter(|url| !url.is_empty()) {
                Some(base_url) => http_url("settings.base_url", base_url),
                // Each Infobip account has its own API host.
                None if kind == "infobip" => Err(ApiError::invalid(
                    "an infobip route needs settings.base_url",
                )),
                None => Ok(()),
            }
        }
        other => Err(ApiError::invalid(format!(
            "kind {other:?} is not a provider kind; use one of: {}",
            ROUTE_KINDS.join(", ")
        ))),
    }
}

/// Vonage's signature methods, as its dashboard names them; ingress verifies
/// signed callbacks with the one the account chose (default `md5hash`).
const VONAGE_SIGNATURE_METHODS: [&str; 5] = ["md5hash", "md5", "sha1", "sha256", "sha512"];

fn vonage_signature_method(settings: &HashMap<String, String>) -> Result<(), ApiError> {
    let Some(method) = settings
        .get("signature_method")
        .map(|method| method.trim())
        .filter(|method| !method.is_empty())
    else {
        return Ok(());
    };
    if VONAGE_SIGNATURE_METHODS.contains(&method.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "settings.signature_method {method:?} is not one of {}",
            VONAGE_SIGNATURE_METHODS.join(", ")
        )))
    }
}

/// Checks of credential values that can be checked without the provider: the
/// ones ingress verifies callbacks with. Credentials of other names pass as given.
pub fn provider_credentials(
    kind: &str,
    credentials: &HashMap<String, String>,
) -> Result<(), ApiError> {
    if kind == "telnyx"
        && let Some(public_key) = credentials.get("public_key")
    {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD.decode(public_key.trim());
        if !decoded.is_ok_and(|bytes| bytes.len() == 32) {
            return Err(ApiError::invalid(
                "credentials.public_key must be the Telnyx public key as shown in its portal (base64 of 32 bytes)",
            ));
        }
    }
    Ok(())
}

fn http_url(field: &str, value: &str) -> Result<(), ApiError> {
    match url::Url::parse(value) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            Ok(())
        }
        Ok(_) => Err(ApiError::invalid(format!(
            "{field} {value:?} must be an http(s) URL"
        ))),
        Err(error) => Err(ApiError::invalid(format!(
            "{field} {value:?} is not a URL: {error}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<(), ApiError>) -> String {
        result.expect_err("expected an error").to_string()
    }

    #[test]
    fn names_follow_the_pattern() {
        assert!(name("name", "tienda-ale").is_ok());
        assert!(name("name", "a_1").is_ok());
        assert!(name("name", &"a".repeat(63)).is_ok());
        for bad in ["", "-a", "Tienda", "a b", "a.b", &"a".repeat(64)] {
            assert!(name("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn countries_and_timezones() {
        assert_eq!(country("mx").unwrap(), "MX");
        assert!(country("XX").is_err());
        assert!(country("MEX").is_err());
        assert!(timezone("America/Mexico_City").is_ok());
        assert!(timezone("").is_err());
        assert!(timezone("Mars/Olympus").is_err());
    }

    #[test]
    fn cel_errors_carry_a_position() {
        assert!(
            condition(
                "when",
                r#"event_type == "orders/create" && double(event.total) >= 500.0"#
            )
            .is_ok()
        );
        assert!(condition("when", "").is_ok());
        let error = message(condition("when", "event_type == "));
        assert!(
            error.starts_with("when is not a valid CEL expression: line 1, column 15: "),
            "{error}"
        );
        let error = message(condition("when", "a &&\n b ==="));
        assert!(error.contains("line 2, column 6: "), "{error}");
    }

    #[test]
    fn template_errors_name_the_field() {
        assert!(template("body", "Hola {{ event.name }}").is_ok());
        let error = message(template("body", "Hola {{ event.name "));
        assert!(
            error.starts_with("body is not a valid template (line 1)"),
            "{error}"
        );
    }

    #[test]
    fn locators() {
        assert!(field_locator("event_type_from", "header:X-Shopify-Topic").is_ok());
        assert!(field_locator("event_type_from", "body:data.type").is_ok());
        assert!(field_locator("event_type_from", "").is_ok());
        assert!(field_locator("event_type_from", "query:x").is_err());
        assert!(field_locator("event_type_from", "body:a..b").is_err());
    }

    #[test]
    fn routes_by_kind() {
        let mut settings = HashMap::new();
        assert!(provider_route("console", &settings, &[]).is_ok());
        let anywhere = HashMap::from([("path".to_owned(), "/etc/cron.d/x".to_owned())]);
        assert!(provider_route("console", &anywhere, &[]).is_err());
        assert!(message(provider_route("http", &settings, &[])).contains("settings.url"));
        settings.insert("url".to_owned(), "ftp://x".to_owned());
        assert!(provider_route("http", &settings, &[]).is_err());
        settings.insert("url".to_owned(), "http://127.0.0.1:9999/sms".to_owned());
        assert!(provider_route("http", &settings, &[]).is_ok());
        let credentials = ["account_sid".to_owned()];
        assert!(message(provider_route("twilio", &settings, &credentials)).contains("auth_token"));
        let credentials = ["account_sid".to_owned(), "auth_token".to_owned()];
        assert!(provider_route("twilio", &settings, &credentials).is_ok());
        assert!(
            message(provider_route("carrier-pigeon", &settings, &[]))
                .contains("console, http, twilio, vonage, infobip, smsmasivos, telnyx")
        );
    }

    #[test]
    fn callback_verification_settings_are_checked() {
        let credentials = ["api_key".to_owned(), "api_secret".to_owned()];
        let mut settings = HashMap::from([("signature_method".to_owned(), "SHA256".to_owned())]);
        assert!(provider_route("vonage", &settings, &credentials).is_ok());
        settings.insert("signature_method".to_owned(), "sha384".to_owned());
        assert!(
            message(provider_route("vonage", &settings, &credentials)).contains("md5hash, md5")
        );

        let key = |value: &str| HashMap::from([("public_key".to_owned(), value.to_owned())]);
        assert!(
            provider_credentials(
                "telnyx",
                &key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
            )
            .is_ok()
        );
        assert!(message(provider_credentials("telnyx", &key("not a key"))).contains("public_key"));
        assert!(provider_credentials("telnyx", &key("c2hvcnQ=")).is_err());
        // Other kinds' credentials and other names are not interpreted.
        assert!(provider_credentials("vonage", &key("anything")).is_ok());
        assert!(provider_credentials("telnyx", &HashMap::new()).is_ok());
    }
}
