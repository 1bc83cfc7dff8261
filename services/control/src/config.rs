//! The service's configuration, read once from the environment and validated
//! before anything connects.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use foco_runtime::env::{self, ConfigError, Env};
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::scopes::Service;
use crate::tls::TlsFiles;

/// An admin key shorter than this is refused: it is the key to every account.
pub const MIN_ADMIN_KEY_LEN: usize = 16;

/// AES-256 key for secrets at rest.
pub type EncryptionKey = SecretBox<[u8; 32]>;

pub struct Config {
    /// gRPC API (`FOCO_CONTROL_LISTEN`, default 127.0.0.1:50051).
    pub grpc_listen: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics` (`FOCO_ADMIN_LISTEN`, default 127.0.0.1:9091).
    pub admin_listen: SocketAddr,
    /// `DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/foco.
    pub database_url: String,
    /// `NATS_URL`, the NATS credentials, `FOCO_BUS_PREFIX` and the streams'
    /// settings: control announces changes, publishes API sends and sets up
    /// FOCO_STATUS for its webhook worker.
    pub bus: foco_bus::BusConfig,
    /// `FOCO_ADMIN_API_KEY` (required, at least 16 characters): may act on any account.
    pub admin_api_key: SecretString,
    /// `FOCO_ENCRYPTION_KEY` (required): base64 of 32 random bytes; encrypts source
    /// secrets and provider credentials at rest.
    pub encryption_key: EncryptionKey,
    /// How often the scheduled-job and dead-letter gauges are read from Postgres
    /// (`FOCO_BACKLOG_INTERVAL`, default 15s; one statement per read).
    pub backlog_interval: Duration,
    /// `FOCO_CONTROL_TLS_CERT` and `FOCO_CONTROL_TLS_KEY` (both or neither): the
    /// gRPC API over TLS, with the certificate reread when the files change.
    pub tls: Option<TlsFiles>,
    /// `FOCO_SERVICE_KEY_HASHES`: `service=<hex SHA-256 of its key>`, comma
    /// separated (e.g. `ingress=9f86…,rules=…`). Control creates these service
    /// keys at start unless a key with that hash exists (revoked ones stay
    /// revoked), so a deployment can hand each service its key as a Secret of its
    /// own without control ever holding the keys themselves.
    pub service_key_hashes: Vec<(Service, [u8; 32])>,
    /// The status webhook worker (`FOCO_WEBHOOK_*`).
    pub webhooks: crate::webhooks::WebhookSettings,
}

/// URLs may hold passwords or tokens; the keys are secrets already.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("grpc_listen", &self.grpc_listen)
            .field("admin_listen", &self.admin_listen)
            .field("database_url", &env::redacted_url(&self.database_url))
            .field("backlog_interval", &self.backlog_interval)
            .field("tls", &self.tls)
            .field("bus", &self.bus)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Every variable, read through `env` and checked.
    pub fn from_lookup(env: &Env) -> Result<Self, ConfigError> {
        let admin_api_key =
            parse_admin_api_key(&env.required("FOCO_ADMIN_API_KEY", "at least 16 characters")?)?;
        let encryption_key = parse_encryption_key(&env.required(
            "FOCO_ENCRYPTION_KEY",
            "base64 of 32 random bytes (e.g. `openssl rand -base64 32`)",
        )?)?;
        let backlog_interval = env.duration_or("FOCO_BACKLOG_INTERVAL", Duration::from_secs(15))?;
        if backlog_interval.is_zero() {
            return Err(ConfigError::new(
                "FOCO_BACKLOG_INTERVAL",
                "0",
                "must be longer than zero",
            ));
        }
        Ok(Self {
            grpc_listen: env.parse_or("FOCO_CONTROL_LISTEN", ([127, 0, 0, 1], 50051).into())?,
            admin_listen: env.parse_or("FOCO_ADMIN_LISTEN", ([127, 0, 0, 1], 9091).into())?,
            database_url: env.string_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/foco"),
            bus: foco_bus::BusConfig::from_lookup(env)?,
            admin_api_key,
            encryption_key,
            backlog_interval,
            tls: tls_files(env)?,
            service_key_hashes: parse_service_key_hashes(
                &env.string_or("FOCO_SERVICE_KEY_HASHES", ""),
            )?,
            webhooks: crate::webhooks::WebhookSettings::from_lookup(env)?,
        })
    }
}

fn tls_files(env: &Env) -> Result<Option<TlsFiles>, ConfigError> {
    match (
        env.optional("FOCO_CONTROL_TLS_CERT"),
        env.optional("FOCO_CONTROL_TLS_KEY"),
    ) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        })),
        (Some(_), None) => Err(ConfigError::new(
            "FOCO_CONTROL_TLS_KEY",
            "",
            "required with FOCO_CONTROL_TLS_CERT",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "FOCO_CONTROL_TLS_CERT",
            "",
            "required with FOCO_CONTROL_TLS_KEY",
        )),
    }
}

/// `ingress=<64 hex digits>,rules=...`; empty: none.
pub fn parse_service_key_hashes(raw: &str) -> Result<Vec<(Service, [u8; 32])>, ConfigError> {
    let invalid = |entry: &str, why: &str| ConfigError::new("FOCO_SERVICE_KEY_HASHES", entry, why);
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (service, hash) = entry
                .split_once('=')
                .ok_or_else(|| invalid(entry, "expected service=<hex SHA-256>"))?;
            let service = Service::parse(service.trim())
                .ok_or_else(|| invalid(entry, "the service is one of ingress, rules, sender"))?;
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hash.trim(), &mut digest)
                .map_err(|_| invalid(entry, "the hash is 64 hex digits (sha256sum of the key)"))?;
            Ok((service, digest))
        })
        .collect()
}

/// Checks the admin key's length; the value is never echoed in the error.
pub fn parse_admin_api_key(raw: &str) -> Result<SecretString, ConfigError> {
    let key = raw.trim();
    if key.chars().count() < MIN_ADMIN_KEY_LEN {
        return Err(ConfigError::new(
            "FOCO_ADMIN_API_KEY",
            "[redacted]",
            format!("must be at least {MIN_ADMIN_KEY_LEN} characters"),
        ));
    }
    Ok(SecretString::from(key.to_owned()))
}

/// Decodes base64 (standard or URL-safe, padding optional) into a 32-byte key.
pub fn parse_encryption_key(raw: &str) -> Result<EncryptionKey, ConfigError> {
    let trimmed = raw.trim();
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let decoded = engines
        .iter()
        .find_map(|engine| engine.decode(trimmed).ok())
        .ok_or_else(|| {
            ConfigError::new(
                "FOCO_ENCRYPTION_KEY",
                "[redacted]",
                "not valid base64; expected base64 of 32 random bytes (e.g. `openssl rand -base64 32`)",
            )
        })?;
    let key: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
        ConfigError::new(
            "FOCO_ENCRYPTION_KEY",
            "[redacted]",
            format!(
                "decodes to {} bytes; expected exactly 32 (e.g. `openssl rand -base64 32`)",
                decoded.len()
            ),
        )
    })?;
    Ok(SecretBox::new(Box::new(key)))
}

/// Exposes the key bytes to the cipher only.
pub(crate) fn key_bytes(key: &EncryptionKey) -> &[u8; 32] {
    key.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_key_must_be_32_bytes_of_base64() {
        let good = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(parse_encryption_key(&good).is_ok());
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        let error = parse_encryption_key(&short).err().unwrap().to_string();
        assert!(error.contains("16 bytes"), "{error}");
        let error = parse_encryption_key("not base64!!")
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("not valid base64"), "{error}");
        assert!(
            !error.contains("not base64!!"),
            "the key is never echoed: {error}"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config {
            grpc_listen: ([127, 0, 0, 1], 50051).into(),
            admin_listen: ([127, 0, 0, 1], 9091).into(),
            database_url: "postgres://foco:hunter2@db/foco".to_owned(),
            bus: foco_bus::BusConfig::local(
                "nats://nats-token-value@nats:4222",
                foco_bus::BusNames::new("").unwrap(),
            ),
            admin_api_key: SecretString::from("admin-key-value-0123"),
            encryption_key: SecretBox::new(Box::new([7u8; 32])),
            backlog_interval: Duration::from_secs(15),
            tls: None,
            service_key_hashes: Vec::new(),
            webhooks: crate::webhooks::WebhookSettings::default(),
        };
        let shown = format!("{config:?}");
        for secret in ["hunter2", "nats-token-value", "admin-key-value"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("db/foco"), "{shown}");
    }

    #[test]
    fn service_key_hashes_name_a_service_and_a_sha256() {
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let parsed =
            parse_service_key_hashes(&format!(" ingress={hash}, sender={hash} ,")).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].0, Service::Ingress);
        assert_eq!(hex::encode(parsed[1].1), hash);
        assert!(parse_service_key_hashes("").unwrap().is_empty());
        for refused in ["ingress", "admin=00", &format!("rules={}", &hash[1..])] {
            assert!(parse_service_key_hashes(refused).is_err(), "{refused}");
        }
    }

    fn keys() -> [(&'static str, String); 2] {
        [
            ("FOCO_ADMIN_API_KEY", "admin-key-0123456789".to_owned()),
            (
                "FOCO_ENCRYPTION_KEY",
                base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            ),
        ]
    }

    fn read(extra: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let pairs = keys().into_iter().chain(
            extra
                .iter()
                .map(|(name, value)| (*name, (*value).to_owned())),
        );
        Config::from_lookup(&Env::from_pairs(pairs))
    }

    #[test]
    fn both_keys_are_required_and_the_rest_defaults() {
        for (missing, _) in keys() {
            let pairs = keys().into_iter().filter(|(name, _)| *name != missing);
            let error = Config::from_lookup(&Env::from_pairs(pairs)).unwrap_err();
            assert_eq!(error.name, missing);
            assert!(error.reason.starts_with("required"), "{error}");
        }
        let config = read(&[]).unwrap();
        assert_eq!(
            config.grpc_listen,
            SocketAddr::from(([127, 0, 0, 1], 50051))
        );
        assert_eq!(
            config.admin_listen,
            SocketAddr::from(([127, 0, 0, 1], 9091))
        );
        assert_eq!(config.bus.url, foco_bus::DEFAULT_NATS_URL);
        assert_eq!(config.backlog_interval, Duration::from_secs(15));
        assert!(config.tls.is_none());
        assert!(config.service_key_hashes.is_empty());
        assert!(!config.webhooks.allow_private_hosts);
    }

    #[test]
    fn variables_override_the_defaults_and_bad_ones_are_named() {
        let config = read(&[
            ("FOCO_CONTROL_LISTEN", "0.0.0.0:6000"),
            ("FOCO_CONTROL_TLS_CERT", "/tls/tls.crt"),
            ("FOCO_CONTROL_TLS_KEY", "/tls/tls.key"),
            ("FOCO_WEBHOOK_TIMEOUT", "3s"),
            ("FOCO_BUS_PREFIX", "eu"),
        ])
        .unwrap();
        assert_eq!(config.grpc_listen, SocketAddr::from(([0, 0, 0, 0], 6000)));
        assert_eq!(
            config.tls.unwrap().key,
            std::path::PathBuf::from("/tls/tls.key")
        );
        assert_eq!(config.webhooks.request_timeout, Duration::from_secs(3));
        assert_eq!(config.bus.names.prefix(), "eu");
        for (name, value) in [
            ("FOCO_CONTROL_TLS_KEY", ""),
            ("FOCO_BACKLOG_INTERVAL", "0s"),
            ("FOCO_ADMIN_API_KEY", "short"),
            ("FOCO_SERVICE_KEY_HASHES", "admin=00"),
        ] {
            let pairs: &[(&str, &str)] = if name == "FOCO_CONTROL_TLS_KEY" {
                &[("FOCO_CONTROL_TLS_CERT", "/tls/tls.crt")]
            } else {
                &[(name, value)]
            };
            let error = read(pairs).unwrap_err();
            assert_eq!(error.name, name, "{error}");
        }
    }

    #[test]
    fn admin_key_has_a_minimum_length() {
        assert!(parse_admin_api_key("short").is_err());
        assert!(parse_admin_api_key("0123456789abcdef").is_ok());
    }
}
