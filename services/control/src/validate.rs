//! Input checks done at save time, so a mistake is reported to whoever wrote it
//! (with the field and, for expressions and templates, the position) instead of
//! surfacing later as a failed event.

use std::collections::HashMap;
use std::str::FromStr;

use foco_providers::ProviderKind;

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

/// A validity ("2h", as `delay` is written: 1 minute to 400 days); `None`
/// when empty ("not set").
pub fn valid_for(
    field: &'static str,
    value: &str,
) -> Result<Option<std::time::Duration>, ApiError> {
    match value.trim() {
        "" => Ok(None),
        text => foco_rule_engine::parse_valid_for(text)
            .map(Some)
            .map_err(|message| ApiError::invalid_field(field, message)),
    }
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

/// Parses a minijinja template; the error names the field, the line and,
/// when the parser knows where, the column (1-based, in characters).
pub fn template(field: &str, source: &str) -> Result<(), ApiError> {
    template_message(field, source).map_or(Ok(()), |message| Err(ApiError::invalid(message)))
}

/// Why `source` is not a valid template, in the words [`template`] answers
/// with; `None` when it parses.
pub fn template_message(field: &str, source: &str) -> Option<String> {
    let error = foco_rule_engine::template_syntax_error(source)?;
    let location = if error.location.is_empty() {
        String::new()
    } else {
        format!(" ({})", error.location)
    };
    Some(format!(
        "{field} is not a valid template{location}: {}",
        error.detail
    ))
}

/// A provider route's kind, settings and credentials, checked against the
/// provider catalog. `credential_names` are the credentials that will be
/// stored after this write.
pub fn provider_route(
    kind: ProviderKind,
    settings: &HashMap<String, String>,
    credential_names: &[String],
) -> Result<(), ApiError> {
    foco_providers::validate::route(kind, settings, credential_names).map_err(invalid_route)
}

/// The kind a route names (trimmed and lower-cased by the caller).
pub fn provider_kind(kind: &str) -> Result<ProviderKind, ApiError> {
    foco_providers::validate::kind(kind).map_err(invalid_route)
}

/// Checks of credential values that can be checked without the provider: the
/// ones ingress verifies callbacks with. Credentials of other names pass as given.
pub fn provider_credentials(
    kind: ProviderKind,
    credentials: &HashMap<String, String>,
) -> Result<(), ApiError> {
    foco_providers::validate::credentials(kind, credentials).map_err(invalid_route)
}

fn invalid_route(error: foco_providers::validate::InvalidRoute) -> ApiError {
    ApiError::invalid(error.to_string())
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
            error.starts_with("body is not a valid template (line 1, column "),
            "{error}"
        );
        let error = message(template("body", "Hola\n  {{ event.name | }}"));
        assert!(
            error.starts_with("body is not a valid template (line 2, column 19)"),
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
    fn provider_refusals_are_invalid_arguments() {
        assert!(
            message(provider_kind("carrier-pigeon").map(drop))
                .contains("console, http, twilio, vonage, infobip, smsmasivos, telnyx")
        );
        let kind = provider_kind("twilio").unwrap();
        let credentials = ["account_sid".to_owned()];
        assert!(
            message(provider_route(kind, &HashMap::new(), &credentials)).contains("auth_token")
        );
        let key = HashMap::from([("public_key".to_owned(), "not a key".to_owned())]);
        let telnyx = provider_kind("telnyx").unwrap();
        assert!(message(provider_credentials(telnyx, &key)).contains("public_key"));
    }
}
