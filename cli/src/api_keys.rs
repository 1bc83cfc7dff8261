//! `foco api-keys list|create|revoke`: an account's API keys. The key itself is
//! printed once, by `create`; listings show only its prefix.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use clap::Subcommand;
use foco_control_client::ControlApi;
use foco_proto::v1::{ApiKey, CreateApiKeyRequest, ListApiKeysRequest, RevokeApiKeyRequest};
use serde_json::json;

use crate::CliError;
use crate::args::FormatArg;
use crate::output::{self, OutputFormat, rfc3339};

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// The account's keys (revoked and expired ones too), without their secrets.
    List(FormatArg),
    /// Create an API key for the account; the key is shown once.
    Create {
        #[arg(long, default_value = "")]
        description: String,
        /// Lifetime, e.g. `90d`, `12h`, `1y` (at most two years); none: never expires.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Revoke a key by id; it stops working at once. Revoking twice is harmless.
    Revoke { id: String },
}

pub async fn run(
    api: &mut ControlApi,
    account: &str,
    command: &ApiKeysCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        ApiKeysCommand::List(format) => list(api, account, format.output, out).await,
        ApiKeysCommand::Create {
            description,
            expires_in,
            format,
        } => {
            let expires_at_ms = expires_in
                .map(|lifetime| expiry_ms(Utc::now(), lifetime))
                .transpose()?
                .unwrap_or(0);
            create(api, account, description, expires_at_ms, format.output, out).await
        }
        ApiKeysCommand::Revoke { id } => {
            let revoked = api
                .revoke_api_key(RevokeApiKeyRequest {
                    account: account.to_owned(),
                    id: id.clone(),
                })
                .await
                .map_err(|status| CliError::api(format!("revoke API key {id}"), status))?
                .into_inner();
            writeln!(
                out,
                "API key {} revoked at {}",
                revoked.id,
                rfc3339(revoked.revoked_at_ms).unwrap_or_default()
            )?;
            Ok(())
        }
    }
}

/// `now + lifetime` in Unix milliseconds; control checks the upper bound.
fn expiry_ms(now: DateTime<Utc>, lifetime: Duration) -> Result<i64, CliError> {
    let invalid = || CliError::Input {
        what: "--expires-in".to_owned(),
        message: "must be more than zero and at most two years".to_owned(),
    };
    let lifetime = TimeDelta::from_std(lifetime).map_err(|_| invalid())?;
    if lifetime <= TimeDelta::zero() {
        return Err(invalid());
    }
    now.checked_add_signed(lifetime)
        .map(|at| at.timestamp_millis())
        .ok_or_else(invalid)
}

async fn list(
    api: &mut ControlApi,
    account: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let keys = api
        .list_api_keys(ListApiKeysRequest {
            account: account.to_owned(),
        })
        .await
        .map_err(|status| CliError::api(format!("list API keys of {account:?}"), status))?
        .into_inner()
        .api_keys;
    let now_ms = Utc::now().timestamp_millis();
    match format {
        OutputFormat::Json => {
            let items: Vec<_> = keys.iter().map(|key| key_json(key, now_ms)).collect();
            output::json(out, &json!(items))
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|key| {
                    vec![
                        key.id.clone(),
                        key.prefix.clone(),
                        state(key, now_ms).to_owned(),
                        rfc3339(key.created_at_ms).unwrap_or_default(),
                        rfc3339(key.expires_at_ms).unwrap_or_else(|| "never".to_owned()),
                        key.description.clone(),
                    ]
                })
                .collect();
            Ok(output::table(
                out,
                &["ID", "PREFIX", "STATE", "CREATED", "EXPIRES", "DESCRIPTION"],
                &rows,
            )?)
        }
    }
}

async fn create(
    api: &mut ControlApi,
    account: &str,
    description: &str,
    expires_at_ms: i64,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let created = api
        .create_api_key(CreateApiKeyRequest {
            account: account.to_owned(),
            description: description.to_owned(),
            expires_at_ms,
        })
        .await
        .map_err(|status| CliError::api(format!("create an API key for {account:?}"), status))?
        .into_inner();
    let expires_at = rfc3339(expires_at_ms);
    match format {
        OutputFormat::Json => output::json(
            out,
            &json!({"id": created.id, "key": created.key, "expires_at": expires_at}),
        ),
        OutputFormat::Table => {
            writeln!(out, "created API key {} for account {account}", created.id)?;
            writeln!(out, "{}", created.key)?;
            match expires_at {
                Some(expires_at) => writeln!(out, "expires at {expires_at}")?,
                None => writeln!(out, "never expires")?,
            }
            writeln!(out, "store it now: it is not shown again")?;
            Ok(())
        }
    }
}

fn state(key: &ApiKey, now_ms: i64) -> &'static str {
    if key.revoked_at_ms != 0 {
        "revoked"
    } else if key.expires_at_ms != 0 && key.expires_at_ms <= now_ms {
        "expired"
    } else {
        "active"
    }
}

fn key_json(key: &ApiKey, now_ms: i64) -> serde_json::Value {
    json!({
        "id": key.id,
        "prefix": key.prefix,
        "description": key.description,
        "state": state(key, now_ms),
        "created_at": rfc3339(key.created_at_ms),
        "expires_at": rfc3339(key.expires_at_ms),
        "revoked_at": rfc3339(key.revoked_at_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_become_expiry_times() {
        let now = DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000).unwrap();
        let ninety_days = humantime::parse_duration("90d").unwrap();
        assert_eq!(
            expiry_ms(now, ninety_days).unwrap(),
            1_700_000_000_000 + 90 * 86_400_000
        );
        assert!(matches!(
            expiry_ms(now, Duration::ZERO),
            Err(CliError::Input { .. })
        ));
        assert!(matches!(
            expiry_ms(now, Duration::MAX),
            Err(CliError::Input { .. })
        ));
    }

    #[test]
    fn states_follow_revocation_then_expiry() {
        let key = |expires_at_ms, revoked_at_ms| ApiKey {
            expires_at_ms,
            revoked_at_ms,
            ..Default::default()
        };
        assert_eq!(state(&key(0, 0), 100), "active");
        assert_eq!(state(&key(200, 0), 100), "active");
        assert_eq!(state(&key(100, 0), 100), "expired");
        assert_eq!(state(&key(200, 50), 100), "revoked");
    }
}
