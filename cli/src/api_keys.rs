//! `foco api-keys list|create|revoke`: an account's API keys (`--account`), or
//! with `--services` / `--service` the keys ingress, rules and sender present to
//! control (admin key only). The key itself is printed once, by `create`;
//! listings show only its prefix.

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
    List {
        /// The service keys instead of an account's (admin key only).
        #[arg(long)]
        services: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Create an API key for the account, or a service's key; the key is shown once.
    Create(CreateArgs),
    /// Revoke a key by id; it stops working at once. Revoking twice is harmless.
    Revoke {
        id: String,
        /// A service key rather than one of the account's (admin key only).
        #[arg(long)]
        services: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// A short name to tell keys apart (lowercase letters, digits, '-', '_').
    #[arg(long, default_value = "")]
    name: String,
    #[arg(long, default_value = "")]
    description: String,
    /// Scopes of an account key: send, trigger, read, manage (repeat or separate
    /// with commas); none: every scope of the key that creates it.
    #[arg(long = "scope", value_delimiter = ',')]
    scopes: Vec<String>,
    /// A key for ingress, rules or sender, holding only the lookups that service
    /// makes, for every account (admin key only; no --account, no --scope).
    #[arg(long, value_parser = ["ingress", "rules", "sender"], conflicts_with = "scopes")]
    service: Option<String>,
    /// Lifetime, e.g. `90d`, `12h`, `1y` (at most two years); none: never expires.
    #[arg(long, value_parser = humantime::parse_duration)]
    expires_in: Option<Duration>,
    #[command(flatten)]
    format: FormatArg,
}

impl ApiKeysCommand {
    /// Whether the command needs `--account`: not for the service keys.
    pub fn needs_account(&self) -> bool {
        match self {
            Self::List { services, .. } | Self::Revoke { services, .. } => !services,
            Self::Create(args) => args.service.is_none(),
        }
    }
}

/// `account` is empty exactly when [`ApiKeysCommand::needs_account`] is false.
pub async fn run(
    api: &mut ControlApi,
    account: &str,
    command: &ApiKeysCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        ApiKeysCommand::List { format, .. } => list(api, account, format.output, out).await,
        ApiKeysCommand::Create(args) => {
            let expires_at_ms = args
                .expires_in
                .map(|lifetime| expiry_ms(Utc::now(), lifetime))
                .transpose()?
                .unwrap_or(0);
            let request = CreateApiKeyRequest {
                account: account.to_owned(),
                description: args.description.clone(),
                expires_at_ms,
                scopes: args.scopes.clone(),
                name: args.name.clone(),
                service: args.service.clone().unwrap_or_default(),
            };
            create(api, request, args.format.output, out).await
        }
        ApiKeysCommand::Revoke { id, .. } => {
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
        .map_err(|status| CliError::api(format!("list API keys of {}", owner(account)), status))?
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
                        key.name.clone(),
                        key.prefix.clone(),
                        scopes_text(key),
                        state(key, now_ms).to_owned(),
                        rfc3339(key.created_at_ms).unwrap_or_default(),
                        rfc3339(key.expires_at_ms).unwrap_or_else(|| "never".to_owned()),
                        rfc3339(key.last_used_at_ms).unwrap_or_else(|| "never".to_owned()),
                        key.description.clone(),
                    ]
                })
                .collect();
            Ok(output::table(
                out,
                &[
                    "ID",
                    "NAME",
                    "PREFIX",
                    "SCOPES",
                    "STATE",
                    "CREATED",
                    "EXPIRES",
                    "LAST USED",
                    "DESCRIPTION",
                ],
                &rows,
            )?)
        }
    }
}

/// Whose keys, for messages.
fn owner(account: &str) -> String {
    if account.is_empty() {
        "the services".to_owned()
    } else {
        format!("account {account:?}")
    }
}

async fn create(
    api: &mut ControlApi,
    request: CreateApiKeyRequest,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let for_whom = if request.service.is_empty() {
        owner(&request.account)
    } else {
        format!("service {}", request.service)
    };
    let expires_at = rfc3339(request.expires_at_ms);
    let created = api
        .create_api_key(request)
        .await
        .map_err(|status| CliError::api(format!("create an API key for {for_whom}"), status))?
        .into_inner();
    let scopes = created
        .api_key
        .as_ref()
        .map(|key| key.scopes.clone())
        .unwrap_or_default();
    match format {
        OutputFormat::Json => output::json(
            out,
            &json!({
                "id": created.id,
                "key": created.key,
                "scopes": scopes,
                "expires_at": expires_at,
            }),
        ),
        OutputFormat::Table => {
            writeln!(out, "created API key {} for {for_whom}", created.id)?;
            writeln!(out, "{}", created.key)?;
            writeln!(out, "scopes: {}", scopes.join(","))?;
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

/// A service key shows its service with its scopes.
fn scopes_text(key: &ApiKey) -> String {
    let scopes = key.scopes.join(",");
    if key.service.is_empty() {
        scopes
    } else {
        format!("{scopes} ({})", key.service)
    }
}

fn key_json(key: &ApiKey, now_ms: i64) -> serde_json::Value {
    json!({
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scopes,
        "service": (!key.service.is_empty()).then_some(&key.service),
        "description": key.description,
        "state": state(key, now_ms),
        "created_at": rfc3339(key.created_at_ms),
        "expires_at": rfc3339(key.expires_at_ms),
        "revoked_at": rfc3339(key.revoked_at_ms),
        "last_used_at": rfc3339(key.last_used_at_ms),
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
