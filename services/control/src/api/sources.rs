//! Sources: where webhooks come from, the token in their URL, and how their
//! signature is checked. Signing secrets are sealed with the row id; a new secret
//! becomes current and the previous current one stays valid beside it, so a
//! sender can rotate without dropping events (or a request lists both secrets
//! explicitly). A preset fills in the scheme and where the event type and id live
//! (see `verification`).

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    DeleteResponse, DeleteSourceRequest, GetSourceRequest, ListSourcesRequest, ListSourcesResponse,
    Source, UpsertSourceRequest,
};
use uuid::Uuid;

use super::verification::{SourceSettings, StoredVerification, is_platform, source_settings};
use super::{AppState, accounts, millis};
use crate::auth::Caller;
use crate::crypto::new_source_token;
use crate::error::ApiError;
use crate::notify::ChangeKind;
use crate::validate;

pub const DEFAULT_MAX_BODY_BYTES: u32 = 256 * 1024;
const MAX_MAX_BODY_BYTES: u32 = 16 * 1024 * 1024;
const MAX_SECRET_LEN: usize = 1024;
/// Two secrets are valid at once while one is rotated; more would only widen
/// what an attacker may guess.
const MAX_SECRETS: usize = 2;
const MAX_RATE_LIMIT_PER_SECOND: u32 = 100_000;
const MAX_RATE_LIMIT_BURST: u32 = 1_000_000;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SourceRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub token: String,
    pub verification: serde_json::Value,
    pub secrets_encrypted: Vec<Vec<u8>>,
    pub event_type_from: String,
    pub event_id_from: String,
    pub enabled: bool,
    pub max_body_bytes: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub preset: String,
    pub content_type: String,
    pub rate_limit_per_second: i32,
    pub rate_limit_burst: i32,
}

/// The `sources` columns a [`SourceRow`] reads, as a literal for `concat!`.
macro_rules! source_columns {
    () => {
        "id, account_id, name, token, verification, secrets_encrypted, event_type_from, event_id_from, \
         enabled, max_body_bytes, created_at, updated_at, preset, content_type, \
         rate_limit_per_second, rate_limit_burst"
    };
}
pub(crate) use source_columns;

impl SourceRow {
    pub fn to_proto(&self) -> Result<Source, ApiError> {
        let verification = StoredVerification::from_json(self.verification.clone())?;
        Ok(Source {
            id: self.id.to_string(),
            account_id: self.account_id.to_string(),
            name: self.name.clone(),
            token: self.token.clone(),
            verification: Some(verification.into_proto()),
            has_secret: !self.secrets_encrypted.is_empty(),
            event_type_from: self.event_type_from.clone(),
            event_id_from: self.event_id_from.clone(),
            enabled: self.enabled,
            max_body_bytes: u32::try_from(self.max_body_bytes).unwrap_or(DEFAULT_MAX_BODY_BYTES),
            created_at_ms: millis(self.created_at),
            updated_at_ms: millis(self.updated_at),
            preset: self.preset.clone(),
            content_type: self.content_type.clone(),
            rate_limit_per_second: u32::try_from(self.rate_limit_per_second).unwrap_or(0),
            rate_limit_burst: u32::try_from(self.rate_limit_burst).unwrap_or(0),
            secret_count: u32::try_from(self.secrets_encrypted.len()).unwrap_or(u32::MAX),
            platform_preset: is_platform(&self.preset),
        })
    }
}

/// The named source of an account already authorized.
pub async fn load(
    state: &AppState,
    account: &accounts::AccountRow,
    name: &str,
) -> Result<SourceRow, ApiError> {
    sqlx::query_as::<_, SourceRow>(concat!(
        "SELECT ",
        source_columns!(),
        " FROM sources WHERE account_id = $1 AND name = $2"
    ))
    .bind(account.id)
    .bind(name)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "source {name:?} not found in account {:?}",
            account.name
        ))
    })
}

struct ExistingSource {
    id: Uuid,
    secrets_encrypted: Vec<Vec<u8>>,
}

/// What an upsert writes besides the identity and the secrets, checked.
struct SourceColumns {
    settings: SourceSettings,
    enabled: bool,
    max_body_bytes: i32,
    rate_limit_per_second: i32,
    rate_limit_burst: i32,
}

impl SourceColumns {
    fn from_request(request: &UpsertSourceRequest) -> Result<Self, ApiError> {
        let settings = source_settings(request)?;
        let (rate_limit_per_second, rate_limit_burst) = rate_limit(request)?;
        let max_body_bytes = match request.max_body_bytes {
            0 => DEFAULT_MAX_BODY_BYTES,
            bytes if bytes > MAX_MAX_BODY_BYTES => {
                return Err(ApiError::invalid(format!(
                    "max_body_bytes may be at most {MAX_MAX_BODY_BYTES}"
                )));
            }
            bytes => bytes,
        };
        Ok(Self {
            settings,
            enabled: request.enabled.unwrap_or(true),
            max_body_bytes: i32::try_from(max_body_bytes).unwrap_or(i32::MAX),
            rate_limit_per_second,
            rate_limit_burst,
        })
    }
}

pub async fn upsert(
    state: AppState,
    caller: Caller,
    request: UpsertSourceRequest,
) -> Result<Source, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    validate::name("name", &request.name)?;
    let columns = SourceColumns::from_request(&request)?;
    let new_secrets = requested_secrets(&request)?;
    let verification = &columns.settings.verification;

    let mut tx = state.pool.begin().await?;
    // Locking the row keeps rotation consistent when two writers race; the loop
    // covers a concurrent first insert (the second attempt finds the row).
    for _attempt in 0..2 {
        let existing = sqlx::query_as::<_, (Uuid, Vec<Vec<u8>>)>(
            "SELECT id, secrets_encrypted FROM sources WHERE account_id = $1 AND name = $2 FOR UPDATE",
        )
        .bind(account.id)
        .bind(&request.name)
        .fetch_optional(&mut *tx)
        .await?
        .map(|(id, secrets_encrypted)| ExistingSource { id, secrets_encrypted });
        let is_update = existing.is_some();
        let id = existing
            .as_ref()
            .map_or_else(Uuid::now_v7, |existing| existing.id);
        let current = existing
            .map(|existing| existing.secrets_encrypted)
            .unwrap_or_default();
        let secrets = match &new_secrets {
            RequestedSecrets::Rotate(secret) => rotate_secrets(&state, id, current, secret)?,
            RequestedSecrets::Replace(listed) => replace_secrets(&state, id, current, listed)?,
        };
        if verification.needs_secret() && secrets.is_empty() {
            return Err(ApiError::invalid(format!(
                "verification scheme {} needs a signing secret",
                verification.scheme_name()
            )));
        }
        let saved = if is_update {
            update_source(&mut tx, id, &secrets, &columns).await?
        } else {
            insert_source(&mut tx, id, account.id, &request.name, &secrets, &columns).await?
        };
        let Some(row) = saved else { continue };
        tx.commit().await?;
        tracing::info!(account_id = %account.id, source = %row.name, "source saved");
        state
            .notifier
            .announce(account.id, ChangeKind::Source)
            .await;
        return row.to_proto();
    }
    Err(ApiError::AlreadyExists(format!(
        "source {:?} was created concurrently; retry",
        request.name
    )))
}

async fn update_source(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    secrets: &[Vec<u8>],
    columns: &SourceColumns,
) -> Result<Option<SourceRow>, ApiError> {
    let settings = &columns.settings;
    Ok(sqlx::query_as::<_, SourceRow>(concat!(
        "UPDATE sources SET verification = $2, secrets_encrypted = $3, event_type_from = $4,
                event_id_from = $5, enabled = $6, max_body_bytes = $7, preset = $8,
                content_type = $9, rate_limit_per_second = $10, rate_limit_burst = $11,
                updated_at = now()
         WHERE id = $1 RETURNING ",
        source_columns!()
    ))
    .bind(id)
    .bind(settings.verification.to_json())
    .bind(secrets)
    .bind(&settings.event_type_from)
    .bind(&settings.event_id_from)
    .bind(columns.enabled)
    .bind(columns.max_body_bytes)
    .bind(&settings.preset)
    .bind(&settings.content_type)
    .bind(columns.rate_limit_per_second)
    .bind(columns.rate_limit_burst)
    .fetch_optional(&mut *tx)
    .await?)
}

/// `None` when a source of that name was created concurrently.
async fn insert_source(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    account_id: Uuid,
    name: &str,
    secrets: &[Vec<u8>],
    columns: &SourceColumns,
) -> Result<Option<SourceRow>, ApiError> {
    let settings = &columns.settings;
    sqlx::query_as::<_, SourceRow>(concat!(
        "INSERT INTO sources (id, account_id, name, token, verification, secrets_encrypted,
                              event_type_from, event_id_from, enabled, max_body_bytes,
                              preset, content_type, rate_limit_per_second, rate_limit_burst)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (account_id, name) DO NOTHING
         RETURNING ",
        source_columns!()
    ))
    .bind(id)
    .bind(account_id)
    .bind(name)
    .bind(new_source_token())
    .bind(settings.verification.to_json())
    .bind(secrets)
    .bind(&settings.event_type_from)
    .bind(&settings.event_id_from)
    .bind(columns.enabled)
    .bind(columns.max_body_bytes)
    .bind(&settings.preset)
    .bind(&settings.content_type)
    .bind(columns.rate_limit_per_second)
    .bind(columns.rate_limit_burst)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|error| ApiError::unique_or(error, format!("source {name:?} already exists")))
}

/// How a request changes the stored secrets.
enum RequestedSecrets {
    /// `secret`: empty keeps them, a new one becomes current beside the previous.
    Rotate(String),
    /// `secrets`: exactly these, current first.
    Replace(Vec<String>),
}

fn requested_secrets(request: &UpsertSourceRequest) -> Result<RequestedSecrets, ApiError> {
    let too_long = |secret: &String| secret.len() > MAX_SECRET_LEN;
    if too_long(&request.secret) || request.secrets.iter().any(too_long) {
        return Err(ApiError::invalid(format!(
            "a secret is longer than {MAX_SECRET_LEN} bytes"
        )));
    }
    if request.secrets.is_empty() {
        return Ok(RequestedSecrets::Rotate(request.secret.clone()));
    }
    if !request.secret.is_empty() {
        return Err(ApiError::invalid(
            "give either secret (rotates) or secrets (replaces), not both",
        ));
    }
    if request.secrets.len() > MAX_SECRETS {
        return Err(ApiError::invalid(format!(
            "at most {MAX_SECRETS} secrets can be valid at once"
        )));
    }
    if request
        .secrets
        .iter()
        .any(|secret| secret.trim().is_empty())
    {
        return Err(ApiError::invalid("secrets may not be empty"));
    }
    if request.secrets.len() == 2 && request.secrets[0] == request.secrets[1] {
        return Err(ApiError::invalid("secrets lists the same secret twice"));
    }
    Ok(RequestedSecrets::Replace(request.secrets.clone()))
}

fn rate_limit(request: &UpsertSourceRequest) -> Result<(i32, i32), ApiError> {
    if request.rate_limit_per_second > MAX_RATE_LIMIT_PER_SECOND {
        return Err(ApiError::invalid(format!(
            "rate_limit_per_second may be at most {MAX_RATE_LIMIT_PER_SECOND}"
        )));
    }
    if request.rate_limit_burst > MAX_RATE_LIMIT_BURST {
        return Err(ApiError::invalid(format!(
            "rate_limit_burst may be at most {MAX_RATE_LIMIT_BURST}"
        )));
    }
    if request.rate_limit_burst > 0 && request.rate_limit_per_second == 0 {
        return Err(ApiError::invalid(
            "rate_limit_burst needs rate_limit_per_second",
        ));
    }
    // Both bounds are far below i32::MAX.
    Ok((
        i32::try_from(request.rate_limit_per_second).unwrap_or(i32::MAX),
        i32::try_from(request.rate_limit_burst).unwrap_or(i32::MAX),
    ))
}

/// Stores exactly `listed`; when they equal what is stored (an idempotent
/// re-apply of the same file) the sealed values are kept as they are.
fn replace_secrets(
    state: &AppState,
    source_id: Uuid,
    current: Vec<Vec<u8>>,
    listed: &[String],
) -> Result<Vec<Vec<u8>>, ApiError> {
    if current.len() == listed.len() {
        let mut same = true;
        for (sealed, secret) in current.iter().zip(listed) {
            same &= state.sealer.open(source_id, sealed)? == secret.as_bytes();
        }
        if same {
            return Ok(current);
        }
    }
    listed
        .iter()
        .map(|secret| Ok(state.sealer.seal(source_id, secret.as_bytes())?))
        .collect()
}

/// A non-empty new secret becomes current and the previous current one is kept
/// second; re-sending the current secret (an idempotent re-apply) changes nothing.
fn rotate_secrets(
    state: &AppState,
    source_id: Uuid,
    current: Vec<Vec<u8>>,
    new_secret: &str,
) -> Result<Vec<Vec<u8>>, ApiError> {
    if new_secret.is_empty() {
        return Ok(current);
    }
    if let Some(current_sealed) = current.first() {
        let current_secret = state.sealer.open(source_id, current_sealed)?;
        if current_secret == new_secret.as_bytes() {
            return Ok(current);
        }
    }
    let mut rotated = vec![state.sealer.seal(source_id, new_secret.as_bytes())?];
    rotated.extend(current.into_iter().take(1));
    Ok(rotated)
}

pub async fn get(
    state: AppState,
    caller: Caller,
    request: GetSourceRequest,
) -> Result<Source, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    load(&state, &account, &request.name).await?.to_proto()
}

pub async fn list(
    state: AppState,
    caller: Caller,
    request: ListSourcesRequest,
) -> Result<ListSourcesResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let rows = sqlx::query_as::<_, SourceRow>(concat!(
        "SELECT ",
        source_columns!(),
        " FROM sources WHERE account_id = $1 ORDER BY name"
    ))
    .bind(account.id)
    .fetch_all(&state.pool)
    .await?;
    let sources = rows
        .iter()
        .map(SourceRow::to_proto)
        .collect::<Result<_, _>>()?;
    Ok(ListSourcesResponse { sources })
}

pub async fn delete(
    state: AppState,
    caller: Caller,
    request: DeleteSourceRequest,
) -> Result<DeleteResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let deleted = sqlx::query("DELETE FROM sources WHERE account_id = $1 AND name = $2")
        .bind(account.id)
        .bind(&request.name)
        .execute(&state.pool)
        .await?
        .rows_affected()
        > 0;
    if deleted {
        tracing::info!(account_id = %account.id, source = %request.name, "source deleted");
        state
            .notifier
            .announce(account.id, ChangeKind::Source)
            .await;
    }
    Ok(DeleteResponse { deleted })
}
