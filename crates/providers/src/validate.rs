//! The checks control makes when a route is saved, so a mistake is reported to
//! whoever wrote it instead of surfacing later as a failed send. Only what can
//! be checked without the provider: required keys, URLs, words from a list,
//! key formats.

use std::collections::HashMap;

use base64::Engine as _;

use crate::ProviderKind;
use crate::spec::{Check, Storage};

/// Why a route cannot be saved; the text names the field and is safe to show
/// (it never contains a credential's value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRoute(String);

/// `kind` as a route names it, or why it names none.
pub fn kind(id: &str) -> Result<ProviderKind, InvalidRoute> {
    ProviderKind::from_id(id).ok_or_else(|| {
        InvalidRoute(format!(
            "kind {id:?} is not a provider kind; use one of: {}",
            ProviderKind::IDS.join(", ")
        ))
    })
}

/// The kind's requirements of a route's settings. `credential_names` are the
/// credentials that will be stored after this write (their values may be
/// sealed already, from an earlier write).
pub fn route(
    kind: ProviderKind,
    settings: &HashMap<String, String>,
    credential_names: &[String],
) -> Result<(), InvalidRoute> {
    let spec = kind.spec();
    if let Some((_, reason)) = spec
        .refused_settings
        .iter()
        .find(|(name, _)| settings.contains_key(*name))
    {
        return Err(InvalidRoute((*reason).to_owned()));
    }
    for key in spec.keys.iter().filter(|key| key.required) {
        let present = match key.storage {
            Storage::Setting => settings
                .get(key.name)
                .is_some_and(|value| !value.is_empty()),
            // Credentials that are not secret (account ids) may be given as settings.
            Storage::Credential => {
                settings
                    .get(key.name)
                    .is_some_and(|value| !value.trim().is_empty())
                    || credential_names.iter().any(|name| name == key.name)
            }
        };
        if !present {
            return Err(InvalidRoute(format!(
                "{} {} route needs {}.{}",
                article(spec.id),
                spec.id,
                place(key.storage),
                key.name
            )));
        }
    }
    check_values(kind, Storage::Setting, settings)
}

/// Checks of credential values that can be checked without the provider: the
/// ones ingress verifies callbacks with. Credentials of other names pass as given.
pub fn credentials(
    kind: ProviderKind,
    credentials: &HashMap<String, String>,
) -> Result<(), InvalidRoute> {
    check_values(kind, Storage::Credential, credentials)
}

/// The checks of the kind's keys kept in `storage`, on the values given.
fn check_values(
    kind: ProviderKind,
    storage: Storage,
    values: &HashMap<String, String>,
) -> Result<(), InvalidRoute> {
    let keys = kind.spec().keys.iter().filter(|key| key.storage == storage);
    for key in keys {
        if let Some(value) = values.get(key.name) {
            let field = format!("{}.{}", place(storage), key.name);
            check(&field, value, key.check)?;
        }
    }
    Ok(())
}

/// Where a request to control puts values kept in `storage`.
fn place(storage: Storage) -> &'static str {
    match storage {
        Storage::Setting => "settings",
        Storage::Credential => "credentials",
    }
}

/// An empty value is left to the required-key check (and the sender's default).
fn check(field: &str, value: &str, check: Check) -> Result<(), InvalidRoute> {
    match check {
        Check::None => Ok(()),
        Check::HttpUrl if value.is_empty() => Ok(()),
        Check::HttpUrl => http_url(field, value),
        Check::OneOf(words) => {
            let word = value.trim();
            if word.is_empty() || words.contains(&word.to_ascii_lowercase().as_str()) {
                Ok(())
            } else {
                Err(InvalidRoute(format!(
                    "{field} {word:?} is not one of {}",
                    words.join(", ")
                )))
            }
        }
        Check::Base64 { bytes, what } => {
            let decoded = base64::engine::general_purpose::STANDARD.decode(value.trim());
            if decoded.is_ok_and(|decoded| decoded.len() == bytes) {
                Ok(())
            } else {
                Err(InvalidRoute(format!(
                    "{field} must be {what} (base64 of {bytes} bytes)"
                )))
            }
        }
    }
}

fn http_url(field: &str, value: &str) -> Result<(), InvalidRoute> {
    match url::Url::parse(value) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            Ok(())
        }
        Ok(_) => Err(InvalidRoute(format!(
            "{field} {value:?} must be an http(s) URL"
        ))),
        Err(error) => Err(InvalidRoute(format!(
            "{field} {value:?} is not a URL: {error}"
        ))),
    }
}

/// "an http route", "an infobip route", "a twilio route".
fn article(id: &str) -> &'static str {
    if id.starts_with(['a', 'e', 'i', 'o', 'u', 'h']) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<(), InvalidRoute>) -> String {
        result.expect_err("expected an error").to_string()
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn kinds_are_named_by_their_id() {
        assert_eq!(kind("twilio"), Ok(ProviderKind::Twilio));
        assert_eq!(
            message(kind("carrier-pigeon").map(drop)),
            "kind \"carrier-pigeon\" is not a provider kind; use one of: console, http, twilio, vonage, infobip, smsmasivos, telnyx"
        );
    }

    #[test]
    fn routes_by_kind() {
        let none = HashMap::new();
        assert!(route(ProviderKind::Console, &none, &[]).is_ok());
        let anywhere = map(&[("path", "/etc/cron.d/x")]);
        assert!(message(route(ProviderKind::Console, &anywhere, &[])).contains("settings.path"));
        assert_eq!(
            message(route(ProviderKind::Http, &none, &[])),
            "an http route needs settings.url"
        );
        let ftp = map(&[("url", "ftp://x")]);
        assert!(message(route(ProviderKind::Http, &ftp, &[])).contains("http(s) URL"));
        let local = map(&[("url", "http://127.0.0.1:9999/sms")]);
        assert!(route(ProviderKind::Http, &local, &[]).is_ok());
        let sid = ["account_sid".to_owned()];
        assert_eq!(
            message(route(ProviderKind::Twilio, &none, &sid)),
            "a twilio route needs credentials.auth_token"
        );
        let both = ["account_sid".to_owned(), "auth_token".to_owned()];
        assert!(route(ProviderKind::Twilio, &none, &both).is_ok());
        // An account id is not secret: it may come as a setting.
        let sid_setting = map(&[("account_sid", "AC1")]);
        let token = ["auth_token".to_owned()];
        assert!(route(ProviderKind::Twilio, &sid_setting, &token).is_ok());
        let bad_base = map(&[("base_url", "not a url")]);
        assert!(message(route(ProviderKind::Twilio, &bad_base, &both)).contains("base_url"));
    }

    #[test]
    fn infobip_needs_its_own_host() {
        let key = ["api_key".to_owned()];
        assert_eq!(
            message(route(ProviderKind::Infobip, &HashMap::new(), &key)),
            "an infobip route needs settings.base_url"
        );
        let host = map(&[("base_url", "https://x1.api.infobip.com")]);
        assert!(route(ProviderKind::Infobip, &host, &key).is_ok());
        assert_eq!(
            message(route(ProviderKind::Infobip, &host, &[])),
            "an infobip route needs credentials.api_key"
        );
    }

    #[test]
    fn callback_verification_settings_are_checked() {
        let keys = ["api_key".to_owned(), "api_secret".to_owned()];
        let sha256 = map(&[("signature_method", " SHA256 ")]);
        assert!(route(ProviderKind::Vonage, &sha256, &keys).is_ok());
        let sha384 = map(&[("signature_method", "sha384")]);
        assert_eq!(
            message(route(ProviderKind::Vonage, &sha384, &keys)),
            "settings.signature_method \"sha384\" is not one of md5hash, md5, sha1, sha256, sha512"
        );

        let key = |value: &str| map(&[("public_key", value)]);
        let telnyx = ProviderKind::Telnyx;
        assert!(credentials(telnyx, &key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")).is_ok());
        assert_eq!(
            message(credentials(telnyx, &key("not a key"))),
            "credentials.public_key must be the Telnyx public key as shown in its portal (base64 of 32 bytes)"
        );
        assert!(credentials(telnyx, &key("c2hvcnQ=")).is_err());
        // Other kinds' credentials and other names are not interpreted.
        assert!(credentials(ProviderKind::Vonage, &key("anything")).is_ok());
        assert!(credentials(telnyx, &HashMap::new()).is_ok());
    }
}
