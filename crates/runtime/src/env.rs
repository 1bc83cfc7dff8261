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

/// A connection URL as it may be shown in logs and `Debug` output: user
/// information (`user:password@`, or a NATS token) and the query (libpq takes
/// `?password=`) become `[redacted]`. A comma-separated list of URLs (NATS
/// takes one) is redacted URL by URL; text that is not a URL is hidden whole.
pub fn redacted_url(url: &str) -> String {
    url.split(',')
        .map(redacted_single_url)
        .collect::<Vec<_>>()
        .join(",")
}

fn redacted_single_url(url: &str) -> String {
    const HIDDEN: &str = "[redacted]";
    let Some((scheme, rest)) = url.split_once("://") else {
        return HIDDEN.to_owned();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((before_query, _)) => (before_query, Some(HIDDEN)),
        None => (rest, None),
    };
    // Up to the last '@', even past a '/': a password written without
    // percent-encoding may hold either.
    let host_and_path = match before_query.rsplit_once('@') {
        Some((_, host_and_path)) => format!("{HIDDEN}@{host_and_path}"),
        None => before_query.to_owned(),
    };
    let mut shown = format!("{scheme}://{host_and_path}");
    if let Some(query) = query {
        shown.push('?');
        shown.push_str(query);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_and_query_but_keep_host_and_path() {
        let cases = [
            (
                "postgres://foco:hunter2@db.internal:5432/foco",
                "postgres://[redacted]@db.internal:5432/foco",
            ),
            (
                "postgres://db/foco?sslmode=require&password=hunter2",
                "postgres://db/foco?[redacted]",
            ),
            (
                "nats://s3cr3t-token@nats-0:4222,nats://u:hunter2@nats-1:4222",
                "nats://[redacted]@nats-0:4222,nats://[redacted]@nats-1:4222",
            ),
            ("postgres://a:b@c@db/foco", "postgres://[redacted]@db/foco"),
            ("http://127.0.0.1:50051", "http://127.0.0.1:50051"),
            ("host=db password=hunter2", "[redacted]"),
        ];
        for (url, shown) in cases {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }
}
