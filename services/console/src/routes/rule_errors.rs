//! Where an error of the rule editor is: control names the field and the
//! position in its messages (`when is not a valid CEL expression: line 1,
//! column 15: …`, `body is not a valid template (line 2, column 7): …`,
//! `body: undefined value … (line 1)`); the editor shows the field's label,
//! the line of the user's own text with a caret under the column, and a link
//! to the field.

use serde::Serialize;

/// An error placed in the editor's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    /// The form field's id (`when`, `body`, `to`...).
    pub field: &'static str,
    /// The text key of the field's label.
    pub label: &'static str,
    pub line: usize,
    /// 1-based, in characters; absent when only the line is known.
    pub column: Option<usize>,
    /// That line of the field's text.
    pub excerpt: String,
    /// Spaces then `^` under the column; empty without a column.
    pub caret: String,
    pub message: String,
}

/// (name in control's messages, form field id, label key).
const FIELDS: &[(&str, &str, &str)] = &[
    ("when", "when", "condition"),
    ("body", "body", "body"),
    ("to", "to", "recipients"),
    ("key", "key", "correlation_key"),
    ("cancel_when", "cancel_when", "cancel_when"),
    ("cancel_key", "cancel_key", "cancel_key"),
    ("send_at", "send_at", "send_at"),
];

/// Places `message` in the field it names, reading that field's text with
/// `text_of(field id)`; `None` when it names no field or no position.
pub fn locate(message: &str, text_of: impl Fn(&str) -> String) -> Option<Located> {
    let (name, rest) = field_name(message)?;
    let (base, index) = match name.split_once('[') {
        Some((base, index)) => (base, index.strip_suffix(']')?.parse::<usize>().ok()),
        None => (name, None),
    };
    let &(_, field, label) = FIELDS.iter().find(|(known, _, _)| *known == base)?;
    let (line, column) = position(rest)?;
    let text = text_of(field);
    // `to[i]` is the i-th recipient: one non-empty line of the field.
    let source = match index {
        Some(index) => text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .nth(index)
            .unwrap_or_default()
            .to_owned(),
        None => text,
    };
    let excerpt = source
        .lines()
        .nth(line.checked_sub(1)?)
        .unwrap_or_default()
        .to_owned();
    let caret = column.map_or_else(String::new, |column| {
        format!("{}^", " ".repeat(column.saturating_sub(1)))
    });
    Some(Located {
        field,
        label,
        line,
        column,
        excerpt,
        caret,
        message: message.to_owned(),
    })
}

/// The field a message starts with (`body`, `to[1]`) and what follows it.
fn field_name(message: &str) -> Option<(&str, &str)> {
    let end = message
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '[' | ']')))
        .unwrap_or(message.len());
    let (name, rest) = message.split_at(end);
    (!name.is_empty() && (rest.starts_with(' ') || rest.starts_with(':'))).then_some((name, rest))
}

/// The first `line N, column M` or `(line N)` in `text`.
fn position(text: &str) -> Option<(usize, Option<usize>)> {
    let at = text.find("line ")?;
    let after = &text[at + "line ".len()..];
    let line = leading_number(after)?;
    let column = after
        .split_once(", column ")
        .filter(|(between, _)| between.len() == line.to_string().len())
        .and_then(|(_, rest)| leading_number(rest));
    (line > 0).then_some((line, column))
}

fn leading_number(text: &str) -> Option<usize> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(field: &str) -> String {
        match field {
            "when" => "event_type == \"a\" &&\n  total >".to_owned(),
            "body" => "Hola\n{{ event.name | }}".to_owned(),
            "to" => "+52 55 1234 5678\n\n{% if %}".to_owned(),
            _ => String::new(),
        }
    }

    #[test]
    fn a_cel_error_points_at_its_line_and_column() {
        let located = locate(
            "when is not a valid CEL expression: line 2, column 9: unexpected end",
            form,
        )
        .unwrap();
        assert_eq!(located.field, "when");
        assert_eq!(located.label, "condition");
        assert_eq!((located.line, located.column), (2, Some(9)));
        assert_eq!(located.excerpt, "  total >");
        assert_eq!(located.caret, "        ^");
    }

    #[test]
    fn template_errors_point_at_the_line_and_the_recipient() {
        let located = locate(
            "body is not a valid template (line 2, column 16): syntax error: unexpected `}}`",
            form,
        )
        .unwrap();
        assert_eq!(
            (located.field, located.line, located.column),
            ("body", 2, Some(16))
        );
        assert_eq!(located.excerpt, "{{ event.name | }}");
        assert_eq!(located.caret.len(), 16);

        let located = locate("to[1] is not a valid template (line 1): oops", form).unwrap();
        assert_eq!((located.field, located.column), ("to", None));
        assert_eq!(located.excerpt, "{% if %}");
        assert_eq!(located.caret, "");

        let located = locate("body: undefined value `event.x` (line 1)", form).unwrap();
        assert_eq!(located.excerpt, "Hola");
    }

    #[test]
    fn messages_without_a_field_or_a_position_stay_as_they_are() {
        assert_eq!(locate("max_segments must be a whole number", form), None);
        assert_eq!(locate("something else: line 1, column 2", form), None);
        assert_eq!(locate("", form), None);
    }
}
