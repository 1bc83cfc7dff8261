//! minijinja templates for bodies, recipients, keys and send times: strict
//! undefined variables (a typo is an error, not an empty string), no escaping (SMS
//! is plain text), fuel so a template cannot loop for ever, and bounded output.

use minijinja::{Environment, UndefinedBehavior};

/// Instructions one render may execute.
const FUEL_PER_RENDER: u64 = 50_000;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

impl From<minijinja::Error> for TemplateError {
    fn from(error: minijinja::Error) -> Self {
        // minijinja's Display carries the kind, the detail and the line.
        Self(error.to_string())
    }
}

pub fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    environment.set_fuel(Some(FUEL_PER_RENDER));
    environment.set_recursion_limit(32);
    crate::filters::register(&mut environment);
    environment
}

/// Where a template stops parsing and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSyntaxError {
    /// "line 2, column 19" (1-based; the column in characters), "line 2" when
    /// the parser knows no column, or empty.
    pub location: String,
    /// The parser's kind and detail: "syntax error: unexpected `}}`".
    pub detail: String,
}

/// Parses a template without rendering it: `None` when it parses.
pub fn syntax_error(source: &str) -> Option<TemplateSyntaxError> {
    let environment = environment();
    let error = environment.template_from_str(source).err()?;
    let column = error
        .range()
        .and_then(|range| source.get(..range.start))
        .map(|before| before.chars().rev().take_while(|c| *c != '\n').count() + 1);
    let location = match (error.line(), column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}"),
        (Some(line), None) => format!("line {line}"),
        _ => String::new(),
    };
    let detail = error
        .detail()
        .map_or_else(|| error.kind().to_string(), str::to_owned);
    Some(TemplateSyntaxError {
        location,
        detail: format!("{}: {detail}", error.kind()),
    })
}

/// True when `text` needs rendering (a fixed phone number does not).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// Parses a template without rendering it; the error names the line.
pub fn validate_template(source: &str) -> Result<(), String> {
    let environment = environment();
    environment
        .template_from_str(source)
        .map(|_| ())
        .map_err(|error| {
            let location = error
                .line()
                .map(|line| format!(" (line {line})"))
                .unwrap_or_default();
            let detail = error
                .detail()
                .map_or_else(|| error.kind().to_string(), str::to_owned);
            format!("{}{location}: {detail}", error.kind())
        })
}

/// The literal text of a template, outside `{{ }}`, `{% %}` and `{# #}`: what
/// every rendering contains whatever the payload.
pub fn literal_text(source: &str) -> String {
    let mut out = String::new();
    let mut rest = source;
    loop {
        let next = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|open| rest.find(open).map(|at| (at, *open)))
            .min_by_key(|(at, _)| *at);
        let Some((at, open)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        let close = match open {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        match rest[at + 2..].find(close) {
            Some(end) => rest = &rest[at + 2 + end + 2..],
            None => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_text_skips_expressions_statements_and_comments() {
        assert_eq!(
            literal_text("Hola {{ name }}, tu código{# note #} {% if x %}es{% endif %} listo"),
            "Hola , tu código es listo"
        );
        assert_eq!(literal_text("unterminated {{ x"), "unterminated ");
    }
}
