//! CEL conditions. Variables: `event` (the JSON payload), `event_type`, `headers`.
//!
//! Expressions are checked for size and nesting before they reach the parser:
//! deeply nested input can exhaust the parser's stack (in debug builds well
//! before the parser's own recursion limit). Evaluation cost is bounded by the
//! payload: CEL has no loops beyond its comprehension macros over payload lists,
//! and ingress bounds the payload size.

use std::sync::{Arc, LazyLock};

use super::EventInputs;

/// CEL's standard library, built once: building it registers a few hundred
/// overloads, far more work than evaluating a typical condition.
static STANDARD_LIBRARY: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// The variables conditions see for one event, bound once and shared by every
/// condition evaluated on it.
pub(crate) fn event_context(
    event: cel::Value,
    headers: cel::Value,
    event_type: &str,
) -> cel::Context<'static, 'static> {
    let mut context = cel::Context::with_env(STANDARD_LIBRARY.clone());
    context.add_variable_from_value("event", event);
    context.add_variable_from_value("headers", headers);
    context.add_variable_from_value(
        "event_type",
        cel::Value::String(Arc::new(event_type.to_owned())),
    );
    context
}

pub const MAX_CONDITION_CHARS: usize = 4096;
/// Deepest nesting of parentheses, brackets and braces.
pub const MAX_CONDITION_DEPTH: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum ConditionError {
    #[error("{0}")]
    Execution(String),
    #[error("condition returned {0}, not a bool")]
    NotBool(String),
}

pub struct Condition {
    program: cel::Program,
}

/// Checks and compiles `source`; the error gives the position ("line 1, column
/// 15: …") when the parser reports one.
pub fn validate_condition(source: &str) -> Result<(), String> {
    Condition::compile(source).map(|_| ())
}

fn nesting_depth(source: &str) -> usize {
    let mut depth: usize = 0;
    let mut deepest = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in source.chars() {
        if let Some(open) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == open => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

impl Condition {
    pub fn compile(source: &str) -> Result<Self, String> {
        if source.len() > MAX_CONDITION_CHARS {
            return Err(format!("longer than {MAX_CONDITION_CHARS} characters"));
        }
        let depth = nesting_depth(source);
        if depth > MAX_CONDITION_DEPTH {
            return Err(format!(
                "nested {depth} levels deep; at most {MAX_CONDITION_DEPTH} are allowed"
            ));
        }
        STANDARD_LIBRARY
            .compile(source)
            .map(|program| Self { program })
            .map_err(|errors| {
                errors
                    .errors
                    .iter()
                    .map(|error| {
                        format!(
                            "line {}, column {}: {}",
                            error.pos.0, error.pos.1, error.msg
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
    }

    pub fn matches(&self, inputs: &EventInputs) -> Result<bool, ConditionError> {
        match self.program.execute(&inputs.cel_context) {
            Ok(cel::Value::Bool(matched)) => Ok(matched),
            Ok(other) => Err(ConditionError::NotBool(format!("{other:?}"))),
            Err(error) => Err(ConditionError::Execution(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_positions() {
        let error = validate_condition("event_type ==").unwrap_err();
        assert!(error.starts_with("line 1, column"), "{error}");
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}true{}", "(".repeat(5000), ")".repeat(5000));
        let error = validate_condition(&deep).unwrap_err();
        assert!(
            error.contains("longer than") || error.contains("nested"),
            "{error}"
        );
        let deep = format!("{}true{}", "(".repeat(100), ")".repeat(100));
        assert!(
            validate_condition(&deep)
                .unwrap_err()
                .contains("nested 100 levels")
        );
        assert!(validate_condition(r#"event.a == "((((((((((((((((((((((((((((((""#).is_ok());
    }
}
