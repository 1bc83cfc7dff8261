//! Server-rendered pages: minijinja templates compiled into the binary, HTML
//! auto-escaping on, undefined values an error. Every page gets the same frame
//! (language and its texts, the signed-in account, the CSRF token for its
//! forms, the navigation, a one-line notice after a redirect).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Html;
use chrono::TimeZone as _;
use minijinja::{Environment, UndefinedBehavior, Value, context};

use crate::error::ConsoleError;
use crate::i18n::Lang;
use crate::session::Session;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("sign_in.html", include_str!("../templates/sign_in.html")),
    ("sources.html", include_str!("../templates/sources.html")),
    ("source.html", include_str!("../templates/source.html")),
    (
        "webhook_url.html",
        include_str!("../templates/webhook_url.html"),
    ),
    ("rule.html", include_str!("../templates/rule.html")),
    ("preview.html", include_str!("../templates/preview.html")),
    (
        "rule_error.html",
        include_str!("../templates/rule_error.html"),
    ),
    ("messages.html", include_str!("../templates/messages.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("event.html", include_str!("../templates/event.html")),
    ("jobs.html", include_str!("../templates/jobs.html")),
    (
        "dead_letters.html",
        include_str!("../templates/dead_letters.html"),
    ),
    ("opt_outs.html", include_str!("../templates/opt_outs.html")),
    ("overview.html", include_str!("../templates/overview.html")),
    (
        "providers.html",
        include_str!("../templates/providers.html"),
    ),
    ("provider.html", include_str!("../templates/provider.html")),
];

/// The navigation: (section, path, text key).
const NAV: &[(&str, &str, &str)] = &[
    ("overview", "/overview", "nav_overview"),
    ("sources", "/sources", "nav_sources"),
    ("messages", "/messages", "nav_messages"),
    ("providers", "/providers", "nav_providers"),
    ("jobs", "/jobs", "nav_jobs"),
    ("dead-letters", "/dead-letters", "nav_dead_letters"),
    ("opt-outs", "/opt-outs", "nav_opt_outs"),
];

/// The notices a redirect may ask for with `?done=`: only these text keys.
const NOTICES: &[&str] = &[
    "rule_saved",
    "source_created",
    "secret_saved",
    "job_cancelled",
    "message_cancelled",
    "dead_letter_retried",
    "opt_out_added",
    "route_saved",
];

/// Any serializable value as a template value.
pub fn value<T: serde::Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.add_filter("when", format_when);
        env.add_filter("money", crate::money::format_money);
        // Compile every template now, so a broken one stops the start.
        for (name, _) in TEMPLATES {
            env.get_template(name)?;
        }
        Ok(Self { env })
    }

    pub fn render(&self, name: &str, context: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(context)
    }

    /// A whole page: `context` inside the frame.
    pub fn page(
        &self,
        frame: &Frame,
        session: Option<&Session>,
        name: &str,
        title: &str,
        section: &str,
        context: Value,
    ) -> Result<Html<String>, ConsoleError> {
        let html = self.render(name, frame.context(session, title, section, context))?;
        Ok(Html(html))
    }
}

/// What every page of a request shares, taken from the request itself.
#[derive(Debug, Clone)]
pub struct Frame {
    pub lang: Lang,
    /// This page's path and query, for the language switch to come back to.
    pub path: String,
    /// The notice a redirect asked for.
    pub notice: Option<&'static str>,
}

impl Frame {
    pub fn text(&self, key: &str) -> &'static str {
        self.lang.text(key)
    }

    pub fn context(
        &self,
        session: Option<&Session>,
        title: &str,
        section: &str,
        page: Value,
    ) -> Value {
        let nav: Vec<Value> = NAV
            .iter()
            .map(|&(section, href, label)| context! { section, href, label })
            .collect();
        context! {
            lang => self.lang.code(),
            t => crate::render::value(self.lang.texts()),
            title,
            section,
            path => self.path.clone(),
            nav,
            flash => self.notice.map(|key| self.lang.text(key)),
            account => session.map(|session| session.account.clone()),
            csrf => session.map(|session| session.csrf_token.clone()),
            tz => session.map_or_else(|| "UTC".to_owned(), |session| session.timezone.clone()),
            country => session.map_or_else(String::new, |session| session.country.clone()),
            ..page
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Frame {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let notice = parts.uri.query().and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "done")
                .and_then(|(_, value)| NOTICES.iter().find(|key| **key == value).copied())
        });
        Ok(Self {
            lang: Lang::of_request(&parts.headers),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |path| path.as_str().to_owned()),
            notice,
        })
    }
}

/// `{{ at_ms|when(tz) }}`: a Unix-milliseconds time in the account's zone,
/// `2026-11-29 05:41:01`; `—` for 0.
fn format_when(at_ms: i64, zone: String) -> String {
    if at_ms == 0 {
        return "—".to_owned();
    }
    let Some(utc) = chrono::Utc.timestamp_millis_opt(at_ms).single() else {
        return "—".to_owned();
    };
    match zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => utc
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => utc.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_times_read_in_the_account_zone() {
        Templates::new().expect("templates");
        assert_eq!(
            format_when(1_764_394_861_000, "America/Mexico_City".to_owned()),
            "2025-11-28 23:41:01"
        );
        assert_eq!(format_when(0, "UTC".to_owned()), "—");
    }
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn a_source_with_rules_renders() {
        let templates = Templates::new().unwrap();
        let frame = Frame {
            lang: Lang::En,
            path: "/".to_owned(),
            notice: None,
        };
        let page = frame.context(None, "t", "sources", context! {
            source => value(serde_json::json!({"name": "shop", "preset": "shopify", "preset_label": "Shopify", "enabled": true, "has_secret": true, "needs_secret": true, "webhook_url": "u"})),
            instructions => vec!["a"],
            rules => value(serde_json::json!([{"name": "r", "when": "", "to": ["+52"], "enabled": true, "warnings": ["w"]}])),
            events => value(serde_json::json!([{"event_id": "e", "at_ms": 1, "summary": "s"}])),
        });
        templates.render("source.html", page).unwrap();
    }

    #[test]
    fn every_text_a_template_names_exists() {
        let texts = Lang::En.texts();
        let mut missing = Vec::new();
        for (name, source) in TEMPLATES {
            for (at, _) in source.match_indices("t.") {
                let boundary = at == 0
                    || !source.as_bytes()[at - 1].is_ascii_alphanumeric()
                        && source.as_bytes()[at - 1] != b'.'
                        && source.as_bytes()[at - 1] != b'_';
                if !boundary {
                    continue;
                }
                let key: String = source[at + 2..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !key.is_empty() && !texts.contains_key(key.as_str()) {
                    missing.push(format!("{name}: {key}"));
                }
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
