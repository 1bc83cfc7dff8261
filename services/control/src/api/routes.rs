//! Provider routes: where an account's SMS go out. Settings are plain jsonb;
//! credentials are one JSON object sealed with the row id, and only their names
//! are ever returned outside `ResolveRoute`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    DeleteProviderRouteRequest, DeleteResponse, ListProviderRoutesRequest,
    ListProviderRoutesResponse, ProviderRoute, UpsertProviderRouteRequest,
};
use uuid::Uuid;

use super::{AppState, accounts, millis};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::notify::ChangeKind;
use crate::validate;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RouteRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub kind: String,
    pub settings: serde_json::Value,
    pub credentials_encrypted: Option<Vec<u8>>,
    pub credential_names: Vec<String>,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The `provider_routes` columns a [`RouteRow`] reads, as a literal for `concat!`.
macro_rules! route_columns {
    () => {
        "id, account_id, name, kind, settings, credentials_encrypted, credential_names, is_default, \
         created_at, updated_at"
    };
}
pub(crate) use route_columns;

impl RouteRow {
    pub fn to_proto(&self) -> Result<ProviderRoute, ApiError> {
        let settings: HashMap<String, String> = serde_json::from_value(self.settings.clone())
            .map_err(|error| ApiError::Corrupt(format!("provider_routes.settings: {error}")))?;
        Ok(ProviderRoute {
            id: self.id.to_string(),
            account_id: self.account_id.to_string(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            settings,
            credential_names: self.credential_names.clone(),
            is_default: self.is_default,
            created_at_ms: millis(self.created_at),
            updated_at_ms: millis(self.updated_at),
        })
    }

    pub fn credentials(&self, state: &AppState) -> Result<HashMap<String, String>, ApiError> {
        let Some(sealed) = &self.credentials_encrypted else {
            return Ok(HashMap::new());
        };
        let json = state.sealer.open(self.id, sealed)?;
        serde_json::from_slice(&json).map_err(|error| {
            ApiError::Corrupt(format!("provider_routes.credentials_encrypted: {error}"))
        })
    }
}

fn validate_keys(field: &str, map: &HashMap<String, String>) -> Result<(), ApiError> {
    for key in map.keys() {
        let valid = !key.is_empty()
            && key.len() <= 64
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if !valid {
            return Err(ApiError::invalid(format!(
                "{field} key {key:?} must be 1 to 64 letters, digits, '_', '-' or '.'"
            )));
        }
    }
    Ok(())
}

pub async fn upsert(
    state: AppState,
    caller: Caller,
    request: UpsertProviderRouteRequest,
) -> Result<ProviderRoute, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    validate::name("name", &request.name)?;
    validate_keys("settings", &request.settings)?;
    validate_keys("credentials", &request.credentials)?;
    let kind = validate::provider_kind(&request.kind.trim().to_ascii_lowercase())?;
    validate::provider_credentials(kind, &request.credentials)?;
    let settings = serde_json::to_value(request.settings.iter().collect::<BTreeMap<_, _>>())
        .map_err(|error| ApiError::Corrupt(format!("settings: {error}")))?;

    let mut tx = state.pool.begin().await?;
    for _attempt in 0..2 {
        let existing = sqlx::query_as::<_, (Uuid, Option<Vec<u8>>, Vec<String>)>(
            "SELECT id, credentials_encrypted, credential_names FROM provider_routes
             WHERE account_id = $1 AND name = $2 FOR UPDATE",
        )
        .bind(account.id)
        .bind(&request.name)
        .fetch_optional(&mut *tx)
        .await?;
        let is_update = existing.is_some();
        let (id, mut credentials_encrypted, mut credential_names) =
            existing.unwrap_or_else(|| (Uuid::now_v7(), None, Vec::new()));
        if !request.credentials.is_empty() {
            let sorted: BTreeMap<_, _> = request.credentials.iter().collect();
            let json = serde_json::to_vec(&sorted)
                .map_err(|error| ApiError::Corrupt(format!("credentials: {error}")))?;
            credentials_encrypted = Some(state.sealer.seal(id, &json)?);
            credential_names = sorted.keys().map(|name| (*name).clone()).collect();
        }
        validate::provider_route(kind, &request.settings, &credential_names)?;
        if request.is_default {
            // One default per account, so the default never depends on ordering.
            sqlx::query(
                "UPDATE provider_routes SET is_default = false, updated_at = now()
                 WHERE account_id = $1 AND name <> $2 AND is_default",
            )
            .bind(account.id)
            .bind(&request.name)
            .execute(&mut *tx)
            .await?;
        }
        let saved = if is_update {
            sqlx::query_as::<_, RouteRow>(concat!(
                "UPDATE provider_routes SET kind = $2, settings = $3, credentials_encrypted = $4,
                        credential_names = $5, is_default = $6, updated_at = now()
                 WHERE id = $1 RETURNING ",
                route_columns!()
            ))
            .bind(id)
            .bind(kind.id())
            .bind(&settings)
            .bind(&credentials_encrypted)
            .bind(&credential_names)
            .bind(request.is_default)
            .fetch_optional(&mut *tx)
            .await?
        } else {
            sqlx::query_as::<_, RouteRow>(concat!(
                "INSERT INTO provider_routes (id, account_id, name, kind, settings, credentials_encrypted,
                                              credential_names, is_default)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (account_id, name) DO NOTHING
                 RETURNING ",
                route_columns!()
            ))
            .bind(id)
            .bind(account.id)
            .bind(&request.name)
            .bind(kind.id())
            .bind(&settings)
            .bind(&credentials_encrypted)
            .bind(&credential_names)
            .bind(request.is_default)
            .fetch_optional(&mut *tx)
            .await?
        };
        let Some(row) = saved else { continue };
        tx.commit().await?;
        tracing::info!(account_id = %account.id, route = %row.name, kind = %row.kind, "provider route saved");
        state.notifier.announce(account.id, ChangeKind::Route).await;
        return row.to_proto();
    }
    Err(ApiError::AlreadyExists(format!(
        "provider route {:?} was created concurrently; retry",
        request.name
    )))
}

pub async fn list(
    state: AppState,
    caller: Caller,
    request: ListProviderRoutesRequest,
) -> Result<ListProviderRoutesResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let rows = sqlx::query_as::<_, RouteRow>(concat!(
        "SELECT ",
        route_columns!(),
        " FROM provider_routes WHERE account_id = $1 ORDER BY name"
    ))
    .bind(account.id)
    .fetch_all(&state.pool)
    .await?;
    let routes = rows
        .iter()
        .map(RouteRow::to_proto)
        .collect::<Result<_, _>>()?;
    Ok(ListProviderRoutesResponse { routes })
}

pub async fn delete(
    state: AppState,
    caller: Caller,
    request: DeleteProviderRouteRequest,
) -> Result<DeleteResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let deleted = sqlx::query("DELETE FROM provider_routes WHERE account_id = $1 AND name = $2")
        .bind(account.id)
        .bind(&request.name)
        .execute(&state.pool)
        .await?
        .rows_affected()
        > 0;
    if deleted {
        tracing::info!(account_id = %account.id, route = %request.name, "provider route deleted");
        state.notifier.announce(account.id, ChangeKind::Route).await;
    }
    Ok(DeleteResponse { deleted })
}
