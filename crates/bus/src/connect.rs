//! How every service connects to NATS, with which identity, and how it tells
//! its readiness probe whether the connection is up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::connection::State;
use foco_runtime::env::{self, ConfigError, Env};
use secrecy::{ExposeSecret as _, SecretString};

use crate::{BusNames, Service};

/// `NATS_CREDS_FILE`: a `.creds` file (user JWT and NKey seed), for servers
/// in operator mode.
pub const CREDS_FILE_VAR: &str = "NATS_CREDS_FILE";
/// `NATS_NKEY_FILE`: a file holding the service's NKey seed (`SU…`), for
/// servers whose configuration lists users by public NKey.
pub const NKEY_FILE_VAR: &str = "NATS_NKEY_FILE";
/// `NATS_USER` and `NATS_PASSWORD`.
pub const USER_VAR: &str = "NATS_USER";
pub const PASSWORD_VAR: &str = "NATS_PASSWORD";
/// `NATS_CA_FILE`: PEM of the CA that signed the NATS servers' certificates;
/// when set, the connection must be TLS.
pub const CA_FILE_VAR: &str = "NATS_CA_FILE";

/// NATS could not be reached at `url` (credentials masked).
#[derive(Debug, thiserror::Error)]
#[error("could not connect to NATS at {url}")]
pub struct ConnectError {
    pub url: String,
    #[source]
    pub source: async_nats::ConnectError,
}

/// How a service proves who it is to NATS. Read once at start: a rotated
/// file takes effect when the service restarts. `Debug` shows paths and the
/// user name, never a seed, a JWT or a password.
#[derive(Debug, Clone, Default)]
pub enum NatsCredentials {
    /// No credentials beyond what `NATS_URL` holds.
    #[default]
    None,
    /// A `.creds` file's contents (`NATS_CREDS_FILE`).
    CredsFile {
        path: PathBuf,
        contents: SecretString,
    },
    /// An NKey seed (`NATS_NKEY_FILE`).
    NkeySeed { path: PathBuf, seed: SecretString },
    /// `NATS_USER` and `NATS_PASSWORD`.
    UserPassword {
        user: String,
        password: SecretString,
    },
}

/// Identity and transport security of a service's NATS connection.
#[derive(Debug, Clone, Default)]
pub struct NatsAuth {
    pub credentials: NatsCredentials,
    /// `NATS_CA_FILE` [none: the system's roots for `tls://` URLs].
    pub ca_file: Option<PathBuf>,
}

impl NatsAuth {
    /// From `NATS_CREDS_FILE`, `NATS_NKEY_FILE` or `NATS_USER`/`NATS_PASSWORD`
    /// (at most one of them) and `NATS_CA_FILE`. Files are read and checked
    /// here, so a bad one stops the service at start with the variable named.
    pub fn from_lookup(env: &Env) -> Result<Self, ConfigError> {
        let creds_file = env.optional(CREDS_FILE_VAR);
        let nkey_file = env.optional(NKEY_FILE_VAR);
        let user = env.optional(USER_VAR);
        let chosen = [
            (CREDS_FILE_VAR, creds_file.is_some()),
            (NKEY_FILE_VAR, nkey_file.is_some()),
            (USER_VAR, user.is_some()),
        ];
        let set: Vec<&str> = chosen
            .iter()
            .filter(|(_, is_set)| *is_set)
            .map(|(name, _)| *name)
            .collect();
        if set.len() > 1 {
            return Err(ConfigError::new(
                set[1],
                "[set]",
                format!(
                    "set only one of {CREDS_FILE_VAR}, {NKEY_FILE_VAR} and {USER_VAR}; {} is set too",
                    set[0]
                ),
            ));
        }
        let credentials = if let Some(path) = creds_file {
            NatsCredentials::creds_file(Path::new(&path))?
        } else if let Some(path) = nkey_file {
            NatsCredentials::nkey_seed_file(Path::new(&path))?
        } else if let Some(user) = user {
            let password = env.optional(PASSWORD_VAR).ok_or_else(|| {
                ConfigError::new(PASSWORD_VAR, "", format!("required when {USER_VAR} is set"))
            })?;
            NatsCredentials::UserPassword {
                user,
                password: SecretString::from(password),
            }
        } else if env.optional(PASSWORD_VAR).is_some() {
            return Err(ConfigError::new(
                PASSWORD_VAR,
                "[set]",
                format!("needs {USER_VAR}"),
            ));
        } else {
            NatsCredentials::None
        };
        let ca_file = env.optional(CA_FILE_VAR).map(PathBuf::from);
        if let Some(ca_file) = &ca_file {
            std::fs::metadata(ca_file).map_err(|error| {
                ConfigError::new(CA_FILE_VAR, &ca_file.display().to_string(), error)
            })?;
        }
        Ok(Self {
            credentials,
            ca_file,
        })
    }
}

impl NatsCredentials {
    /// A `.creds` file, read and parsed (`NATS_CREDS_FILE`).
    pub fn creds_file(path: &Path) -> Result<Self, ConfigError> {
        let contents = read_secret_file(CREDS_FILE_VAR, path)?;
        if let Err(error) = async_nats::ConnectOptions::new().credentials(contents.expose_secret())
        {
            return Err(ConfigError::new(
                CREDS_FILE_VAR,
                &path.display().to_string(),
                format!("not a NATS credentials file (user JWT and NKey seed): {error}"),
            ));
        }
        Ok(Self::CredsFile {
            path: path.to_owned(),
            contents,
        })
    }

    /// A file holding an NKey seed, read and checked (`NATS_NKEY_FILE`).
    pub fn nkey_seed_file(path: &Path) -> Result<Self, ConfigError> {
        let seed = read_secret_file(NKEY_FILE_VAR, path)?;
        let seed = SecretString::from(seed.expose_secret().trim());
        if nkeys::KeyPair::from_seed(seed.expose_secret()).is_err() {
            // The parser's message may quote the seed: not repeated here.
            return Err(ConfigError::new(
                NKEY_FILE_VAR,
                &path.display().to_string(),
                "not an NKey seed (one line starting with \"SU\")",
            ));
        }
        Ok(Self::NkeySeed {
            path: path.to_owned(),
            seed,
        })
    }

    fn apply(
        &self,
        options: async_nats::ConnectOptions,
    ) -> std::io::Result<async_nats::ConnectOptions> {
        Ok(match self {
            Self::None => options,
            Self::CredsFile { contents, .. } => options.credentials(contents.expose_secret())?,
            Self::NkeySeed { seed, .. } => options.nkey(seed.expose_secret().to_owned()),
            Self::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.expose_secret().to_owned())
            }
        })
    }
}

fn read_secret_file(variable: &str, path: &Path) -> Result<SecretString, ConfigError> {
    std::fs::read_to_string(path)
        .map(SecretString::from)
        .map_err(|error| ConfigError::new(variable, &path.display().to_string(), error))
}

/// The options every connection of `service` starts from: its name (what NATS
/// monitoring shows), its identity, its TLS roots, and its own inbox prefix,
/// the only replies its NATS user may subscribe to.
fn options(
    service: Service,
    names: &BusNames,
    auth: &NatsAuth,
    url: &str,
) -> Result<async_nats::ConnectOptions, ConnectError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(service.client_name())
        .custom_inbox_prefix(names.inbox_prefix(service));
    if let Some(ca_file) = &auth.ca_file {
        options = options
            .add_root_certificates(ca_file.clone())
            .require_tls(true);
    }
    auth.credentials
        .apply(options)
        .map_err(|error| ConnectError {
            url: env::redacted_url(url),
            source: async_nats::ConnectError::with_source(
                async_nats::ConnectErrorKind::Authentication,
                error,
            ),
        })
}

/// Connects as `service`. The service starts even while NATS is still coming
/// up, and reconnects for ever after; work that needs the bus meanwhile fails
/// and is retried by its own rules.
pub async fn connect(
    service: Service,
    names: &BusNames,
    url: &str,
    auth: &NatsAuth,
) -> Result<async_nats::Client, ConnectError> {
    options(service, names, auth, url)?
        .retry_on_initial_connect()
        .connect(servers(url))
        .await
        .map_err(|source| ConnectError {
            url: env::redacted_url(url),
            source,
        })
}

/// Connects as `service` for a one-off command: fails after `timeout` rather
/// than waiting for NATS.
pub async fn connect_once(
    service: Service,
    names: &BusNames,
    url: &str,
    auth: &NatsAuth,
    timeout: Duration,
) -> Result<async_nats::Client, ConnectError> {
    options(service, names, auth, url)?
        .connection_timeout(timeout)
        .connect(servers(url))
        .await
        .map_err(|source| ConnectError {
            url: env::redacted_url(url),
            source,
        })
}

/// The servers of `NATS_URL`: one URL, or several separated by commas (the
/// seed list of a cluster; the client learns the others from the servers).
fn servers(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .collect()
}

/// A readiness check: ready while connected, else the connection's state.
pub fn readiness_check(
    client: &async_nats::Client,
) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
    let client = client.clone();
    move || match client.connection_state() {
        State::Connected => Ok(()),
        other => Err(format!("{other:?}").to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nats_url_may_list_several_servers() {
        assert_eq!(servers("nats://a:4222"), ["nats://a:4222"]);
        assert_eq!(
            servers("nats://a:4222, nats://b:4222,,nats://c:4222"),
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
    }

    fn file_with(contents: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), contents).unwrap();
        file
    }

    #[test]
    fn debug_output_hides_seeds_passwords_and_creds() {
        let key_pair = nkeys::KeyPair::new_user();
        let seed = key_pair.seed().unwrap();
        let seed_file = file_with(&format!("{seed}\n"));
        let nkey = NatsCredentials::nkey_seed_file(seed_file.path()).unwrap();
        let password = NatsCredentials::UserPassword {
            user: "foco-sender".to_owned(),
            password: SecretString::from("hunter2"),
        };
        for credentials in [nkey, password] {
            let shown = format!(
                "{:?}",
                NatsAuth {
                    credentials,
                    ca_file: None
                }
            );
            assert!(!shown.contains(&seed), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn a_bad_or_unreadable_file_is_refused_naming_its_variable() {
        let not_a_seed = file_with("SUnot-a-seed\n");
        let refused = NatsCredentials::nkey_seed_file(not_a_seed.path())
            .unwrap_err()
            .to_string();
        assert!(refused.starts_with("invalid NATS_NKEY_FILE="), "{refused}");
        assert!(!refused.contains("SUnot-a-seed"), "{refused}");

        let not_creds = file_with("just some text");
        let refused = NatsCredentials::creds_file(not_creds.path())
            .unwrap_err()
            .to_string();
        assert!(refused.starts_with("invalid NATS_CREDS_FILE="), "{refused}");

        let missing = std::path::Path::new("/nonexistent/foco.creds");
        let refused = NatsCredentials::creds_file(missing)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("/nonexistent/foco.creds"), "{refused}");
    }
}
