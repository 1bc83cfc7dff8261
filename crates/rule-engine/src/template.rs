//! minijinja templates for bodies and recipients: strict undefined variables (a
//! typo is an error, not an empty string), no auto-escaping (SMS is plain text),
//! and fuel so a template cannot loop for ever.

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

/// True when `text` needs rendering (a fixed phone number does not).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}
