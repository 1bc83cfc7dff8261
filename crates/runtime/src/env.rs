//! Typed reads of environment variables with defaults and clear errors. Services
//! call these only in `Config::from_env`; tests build `Config` values directly.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("invalid {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(name: &str, value: &str, reason: impl Display) -> Self {
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// The variable's value, or `None` when unset or empty.
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

pub fn string_or(name: &str, default: &str) -> String {
    optional(name).unwrap_or_else(|| default.to_owned())
}

pub fn parse_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match optional(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|error| ConfigError::new(name, &value, error)),
    }
}

/// Durations in humantime form: `500ms`, `30s`, `5m`.
pub fn duration_or(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    match optional(name) {
        None => Ok(default),
        Some(value) => humantime::parse_duration(value.trim())
            .map_err(|error| ConfigError::new(name, &value, error)),
    }
}
