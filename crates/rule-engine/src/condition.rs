//! CEL conditions. Variables: `event` (the JSON payload), `event_type`, `headers`.

use std::sync::Arc;

use super::EventInputs;

/// Longer expressions are refused: deep nesting can exhaust the parser's stack.
pub const MAX_CONDITION_CHARS: usize = 4096;

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

impl Condition {
    pub fn compile(source: &str) -> Result<Self, String> {
        if source.len() > MAX_CONDITION_CHARS {
            return Err(format!("longer than {MAX_CONDITION_CHARS} characters"));
        }
        cel::Program::compile(source)
            .map(|program| Self { program })
            .map_err(|errors| errors.to_string())
    }

    pub fn matches(&self, inputs: &EventInputs) -> Result<bool, ConditionError> {
        let mut context = cel::Context::default();
        context.add_variable_from_value("event", inputs.cel_event.clone());
        context.add_variable_from_value("headers", inputs.cel_headers.clone());
        context.add_variable_from_value(
            "event_type",
            cel::Value::String(Arc::new(inputs.event_type.clone())),
        );
        match self.program.execute(&context) {
            Ok(cel::Value::Bool(matched)) => Ok(matched),
            Ok(other) => Err(ConditionError::NotBool(format!("{other:?}"))),
            Err(error) => Err(ConditionError::Execution(error.to_string())),
        }
    }
}
