//! The bus settings every service reads the same way: where NATS is, who the
//! service is to it, the subject prefix and the streams' settings.

use foco_runtime::env::{ConfigError, Env, redacted_url};

use crate::{BusNames, NatsAuth, Service, StreamSettings};

/// `NATS_URL`'s default: the local server.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// How a service reaches the bus. `Debug` shows the URL without its
/// credentials and the auth without its secrets.
#[derive(Clone)]
pub struct BusConfig {
    /// `NATS_URL` [nats://127.0.0.1:4222]; a comma-separated list of a
    /// cluster's servers is a seed list.
    pub url: String,
    /// `NATS_CREDS_FILE`, `NATS_NKEY_FILE` or `NATS_USER`/`NATS_PASSWORD`, and
    /// `NATS_CA_FILE`: who the service is to NATS.
    pub auth: NatsAuth,
    /// `FOCO_BUS_PREFIX` [""]: the subjects, streams and consumers of this
    /// deployment (see [`BusNames`]).
    pub names: BusNames,
    /// `FOCO_BUS_REPLICAS`, `FOCO_BUS_MAX_BYTES`, `FOCO_BUS_STATUS_MAX_AGE`.
    pub streams: StreamSettings,
}

impl std::fmt::Debug for BusConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BusConfig")
            .field("url", &redacted_url(&self.url))
            .field("auth", &self.auth)
            .field("prefix", &self.names.prefix())
            .field("streams", &self.streams)
            .finish()
    }
}

impl BusConfig {
    /// Reads and checks every bus variable; a bad prefix, stream setting or
    /// credential file stops the service at start with the variable named.
    pub fn from_lookup(env: &Env) -> Result<Self, ConfigError> {
        let prefix = env.string_or("FOCO_BUS_PREFIX", "");
        let names = BusNames::new(&prefix)
            .map_err(|error| ConfigError::new("FOCO_BUS_PREFIX", &prefix, error))?;
        Ok(Self {
            url: env.string_or("NATS_URL", DEFAULT_NATS_URL),
            auth: NatsAuth::from_lookup(env)?,
            names,
            streams: StreamSettings::from_lookup(env)?,
        })
    }

    /// A server reached without credentials, with default stream settings
    /// (tests and benchmarks on loopback).
    pub fn local(url: &str, names: BusNames) -> Self {
        Self {
            url: url.to_owned(),
            auth: NatsAuth::default(),
            names,
            streams: StreamSettings::default(),
        }
    }

    /// Connects as `service`, retrying until NATS is up (see [`crate::connect`]).
    pub async fn connect(
        &self,
        service: Service,
    ) -> Result<async_nats::Client, crate::ConnectError> {
        crate::connect(service, &self.names, &self.url, &self.auth).await
    }

    /// Connects as `service` for a one-off command, failing after `timeout`
    /// (see [`crate::connect_once`]).
    pub async fn connect_once(
        &self,
        service: Service,
        timeout: std::time::Duration,
    ) -> Result<async_nats::Client, crate::ConnectError> {
        crate::connect_once(service, &self.names, &self.url, &self.auth, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_local_server_without_prefix() {
        let config = BusConfig::from_lookup(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(config.url, DEFAULT_NATS_URL);
        assert_eq!(config.names.prefix(), "");
        assert_eq!(config.streams.replicas, 1);
    }

    #[test]
    fn every_variable_is_read_and_checked() {
        let config = BusConfig::from_lookup(&Env::from_pairs([
            ("NATS_URL", "nats://tok3n@nats-0:4222,nats://nats-1:4222"),
            ("FOCO_BUS_PREFIX", "staging"),
            ("FOCO_BUS_REPLICAS", "3"),
        ]))
        .unwrap();
        assert_eq!(config.names.prefix(), "staging");
        assert_eq!(config.streams.replicas, 3);
        let shown = format!("{config:?}");
        assert!(!shown.contains("tok3n"), "{shown}");
        assert!(shown.contains("nats-1:4222"), "{shown}");

        let error =
            BusConfig::from_lookup(&Env::from_pairs([("FOCO_BUS_PREFIX", "a.b")])).unwrap_err();
        assert_eq!(error.name, "FOCO_BUS_PREFIX");
        let error =
            BusConfig::from_lookup(&Env::from_pairs([("FOCO_BUS_REPLICAS", "7")])).unwrap_err();
        assert_eq!(error.name, "FOCO_BUS_REPLICAS");
        let error = BusConfig::from_lookup(&Env::from_pairs([("NATS_PASSWORD", "x")])).unwrap_err();
        assert_eq!(error.name, "NATS_PASSWORD");
    }
}
