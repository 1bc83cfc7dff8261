//! Message templates: a body an account keeps under a name and an API call
//! renders with its own variables instead of an event. The same minijinja
//! environment as rules' bodies (strict undefined, the shop filters, fuel, no
//! escaping), over the variables at the top level and `account`. A variable
//! the body reads and the call does not give refuses the message: it never
//! goes out with a hole.

use std::collections::{BTreeSet, HashMap};

use crate::encoding::{self, SegmentInfo};
use crate::template::{self, TemplateError};

/// Longest template body, in characters: room for ten segments of text plus
/// the expressions that fill them.
pub const MAX_TEMPLATE_CHARS: usize = 4000;

/// The name the account's fields are read under; no variable may take it.
pub const ACCOUNT_VARIABLE: &str = "account";

/// The account a message is rendered for: what the filters read (`money`
/// separators, `date` zone and language).
#[derive(Debug, Clone, Default)]
pub struct MessageAccount {
    pub name: String,
    pub timezone: String,
    pub default_country: String,
}

/// Why a message template rendered nothing.
#[derive(Debug, thiserror::Error)]
pub enum MessageTemplateError {
    #[error("is not a valid template ({location}): {detail}")]
    Syntax { location: String, detail: String },
    #[error("needs variables that were not given: {}", .0.join(", "))]
    MissingVariables(Vec<String>),
    #[error("failed to render: {0}")]
    Render(#[from] TemplateError),
    #[error("rendered empty")]
    Empty,
}

/// A rendered message: the text to store and send, and what it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    pub text: String,
    pub segments: SegmentInfo,
    /// Characters of the text before transliteration that force UCS-2.
    pub ucs2_characters: Vec<char>,
}

/// The variables `source` reads at the top level, sorted, leaving out
/// `account` and the environment's globals (`range`, `dict`, ...). Empty when
/// it does not parse.
pub fn template_variables(source: &str) -> BTreeSet<String> {
    let environment = template::environment();
    let Ok(compiled) = environment.template_from_str(source) else {
        return BTreeSet::new();
    };
    let globals: BTreeSet<&str> = environment.globals().map(|(name, _)| name).collect();
    compiled
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| name != ACCOUNT_VARIABLE && !globals.contains(name.as_str()))
        .collect()
}

/// Renders `source` with `variables`; with `transliterate`, the text becomes
/// GSM-7. Surrounding whitespace is trimmed and control characters dropped,
/// as in a rule's body.
pub fn render_message(
    source: &str,
    variables: &HashMap<String, String>,
    account: &MessageAccount,
    transliterate: bool,
) -> Result<RenderedMessage, MessageTemplateError> {
    if let Some(error) = template::syntax_error(source) {
        return Err(MessageTemplateError::Syntax {
            location: error.location,
            detail: error.detail,
        });
    }
    let missing: Vec<String> = template_variables(source)
        .into_iter()
        .filter(|name| !variables.contains_key(name))
        .collect();
    if !missing.is_empty() {
        return Err(MessageTemplateError::MissingVariables(missing));
    }
    let mut context: serde_json::Map<String, serde_json::Value> = variables
        .iter()
        .filter(|(name, _)| name.as_str() != ACCOUNT_VARIABLE)
        .map(|(name, value)| (name.clone(), serde_json::Value::from(value.as_str())))
        .collect();
    context.insert(
        ACCOUNT_VARIABLE.to_owned(),
        serde_json::json!({
            "name": account.name,
            "timezone": account.timezone,
            "default_country": account.default_country,
        }),
    );
    let environment = template::environment();
    let rendered = environment
        .render_str(
            source,
            minijinja::Value::from(minijinja::value::Serde(serde_json::Value::Object(context))),
        )
        .map_err(TemplateError::from)?;
    let text = crate::compiled::without_control_characters(rendered)
        .trim()
        .to_owned();
    if text.is_empty() {
        return Err(MessageTemplateError::Empty);
    }
    let ucs2_characters = encoding::non_gsm7_characters(&text);
    let text = if transliterate {
        encoding::transliterate_to_gsm7(&text)
    } else {
        text
    };
    Ok(RenderedMessage {
        segments: encoding::analyze(&text),
        text,
        ucs2_characters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> MessageAccount {
        MessageAccount {
            name: "tienda-ale".to_owned(),
            timezone: "America/Mexico_City".to_owned(),
            default_country: "MX".to_owned(),
        }
    }

    fn variables(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn renders_variables_with_the_rules_filters() {
        let rendered = render_message(
            "Hola {{ name | first_name }}, tu total es {{ total | money(\"MXN\") }}",
            &variables(&[("name", "ALE ruiz"), ("total", "1234.5")]),
            &account(),
            false,
        )
        .unwrap();
        assert_eq!(rendered.text, "Hola Ale, tu total es $1,234.50");
        assert_eq!(rendered.segments.encoding, encoding::Encoding::Gsm7);
        assert_eq!(rendered.segments.segments, 1);
    }

    #[test]
    fn a_missing_variable_refuses_and_names_it() {
        let error = render_message(
            "Tu código es {{ code }}, {{ name }}; {% for i in range(2) %}{{ i }}{% endfor %}",
            &variables(&[("name", "Ale")]),
            &account(),
            false,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "needs variables that were not given: code"
        );
    }

    #[test]
    fn an_undefined_attribute_fails_rather_than_render_empty() {
        let error = render_message(
            "Hola {{ name.first }}",
            &variables(&[("name", "Ale")]),
            &account(),
            false,
        )
        .unwrap_err();
        assert!(
            matches!(error, MessageTemplateError::Render(_)),
            "{error:?}"
        );
    }

    #[test]
    fn variables_are_the_top_level_names_read() {
        let names: Vec<String> =
            template_variables("{{ account.name }} {{ b }} {% if a %}{{ a.x }}{% endif %}")
                .into_iter()
                .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn gsm7_transliterates_and_counts_segments() {
        let rendered = render_message(
            "Tu código es {{ code }}",
            &variables(&[("code", "4821")]),
            &account(),
            true,
        )
        .unwrap();
        assert_eq!(rendered.text, "Tu codigo es 4821");
        assert_eq!(rendered.ucs2_characters, ['ó']);
        assert_eq!(rendered.segments.encoding, encoding::Encoding::Gsm7);
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let error =
            render_message("Hola\n {{ name | }}", &HashMap::new(), &account(), false).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("is not a valid template (line 2, column 12)"),
            "{error}"
        );
    }
}
