//! Typed reads of environment variables with defaults and clear errors,
//! through a lookup ([`Env`]) that tests fill themselves.

use std::collections::HashMap;
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

/// Where configuration is read from: the process environment in a service's
/// `main`, a fixed set of pairs in tests (which never touch the process
/// environment: a test that sets a variable races every other test of its
/// binary). Every `Config::from_lookup` reads through one of these.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pairs: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { pairs: None }
    }

    /// Only these variables; every other one is unset.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            pairs: Some(
                pairs
                    .into_iter()
                    .map(|(name, value)| (name.into(), value.into()))
                    .collect(),
            ),
        }
    }

    /// The variable's value, or `None` when unset or empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        let value = match &self.pairs {
            None => std::env::var(name).ok(),
            Some(pairs) => pairs.get(name).cloned(),
        };
        value.filter(|value| !value.trim().is_empty())
    }

    /// The variable's value; unset or empty is an error saying `why` it is needed.
    pub fn required(&self, name: &str, why: &str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or_else(|| ConfigError::new(name, "", format!("required: {why}")))
    }

    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_owned())
    }

    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|error| ConfigError::new(name, &value, error)),
        }
    }

    /// A number that must be at least 1.
    pub fn positive_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + From<u8> + Display,
        T::Err: Display,
    {
        let value = self.parse_or(name, default)?;
        if value < T::from(1) {
            return Err(ConfigError::new(
                name,
                &value.to_string(),
                "must be at least 1",
            ));
        }
        Ok(value)
    }

    /// Durations in humantime form: `500ms`, `30s`, `5m`.
    pub fn duration_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(value) => humantime::parse_duration(value.trim())
                .map_err(|error| ConfigError::new(name, &value, error)),
        }
    }

    /// A duration, as [`Env::duration_or`], refused above `most`.
    pub fn duration_at_most_or(
        &self,
        name: &str,
        default: Duration,
        most: Duration,
    ) -> Result<Duration, ConfigError> {
        let value = self.duration_or(name, default)?;
        if value > most {
            return Err(ConfigError::new(
                name,
                &humantime::format_duration(value).to_string(),
                format!("must be at most {}", humantime::format_duration(most)),
            ));
        }
        Ok(value)
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
    fn pairs_are_the_whole_environment_and_blank_means_unset() {
        let env = Env::from_pairs([("A", "7"), ("BLANK", "  "), ("WAIT", "250ms")]);
        assert_eq!(env.optional("A").as_deref(), Some("7"));
        assert_eq!(env.optional("BLANK"), None);
        assert_eq!(env.optional("PATH"), None);
        assert_eq!(env.parse_or("A", 1_u32).unwrap(), 7);
        assert_eq!(env.parse_or("MISSING", 3_u32).unwrap(), 3);
        assert_eq!(
            env.duration_or("WAIT", Duration::ZERO).unwrap(),
            Duration::from_millis(250)
        );
        let error = env
            .duration_at_most_or("WAIT", Duration::ZERO, Duration::from_millis(100))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid WAIT=\"250ms\": must be at most 100ms"
        );
        let error = env.parse_or::<u32>("WAIT", 1).unwrap_err();
        assert_eq!(error.name, "WAIT");
        assert!(error.to_string().contains("250ms"), "{error}");
        let error = Env::from_pairs([("N", "0")])
            .positive_or("N", 4_usize)
            .unwrap_err();
        assert!(error.to_string().contains("at least 1"), "{error}");
        let error = env.required("KEY", "the service's API key").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid KEY=\"\": required: the service's API key"
        );
    }

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
