//! Lookups for the other services, with secrets and credentials in clear, for
//! every account: service keys with the `resolve:sources` / `resolve:routes`
//! scope (checked before these run) and the admin key. Disabled sources are returned too (with `enabled = false`) so ingress
//! can answer 410 Gone rather than 404.

use foco_proto::v1::{ResolveRouteRequest, ResolveSourceRequest, ResolvedRoute, ResolvedSource};
use uuid::Uuid;

use super::routes::{RouteRow, route_columns};
use super::sources::{SourceRow, source_columns};
use super::{AppState, accounts, rules};
use crate::auth::Caller;
use crate::error::ApiError;

pub async fn source(
    state: AppState,
    _caller: Caller,
    request: ResolveSourceRequest,
) -> Result<ResolvedSource, ApiError> {
    let row = match (request.token.is_empty(), request.source_id.is_empty()) {
        (false, true) => {
            sqlx::query_as::<_, SourceRow>(concat!(
                "SELECT ",
                source_columns!(),
                " FROM sources WHERE token = $1"
            ))
            .bind(&request.token)
            .fetch_optional(&state.pool)
            .await?
        }
        (true, false) => match Uuid::parse_str(&request.source_id) {
            Ok(source_id) => {
                sqlx::query_as::<_, SourceRow>(concat!(
                    "SELECT ",
                    source_columns!(),
                    " FROM sources WHERE id = $1"
                ))
                .bind(source_id)
                .fetch_optional(&state.pool)
                .await?
            }
            // Not an id Foco generated, so no source has it.
            Err(_) => None,
        },
        _ => return Err(ApiError::invalid("give exactly one of token or source_id")),
    };
    let row = row.ok_or_else(|| ApiError::not_found("no source with that token or id"))?;
    let account = accounts::load_by_id(&state, row.account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the source's account no longer exists"))?;
    let secrets = row
        .secrets_encrypted
        .iter()
        .map(|sealed| state.sealer.open_string(row.id, sealed))
        .collect::<Result<Vec<_>, _>>()?;
    let rules = rules::load_for_source(&state, row.id, true).await?;
    let cancel_rules = rules::load_cancel_rules(&state, row.account_id).await?;
    Ok(ResolvedSource {
        cancel_rules: cancel_rules
            .into_iter()
            .map(rules::RuleRow::into_proto)
            .collect(),
        source: Some(row.to_proto()?),
        account: Some(account.into_proto()),
        secrets,
        rules: rules.into_iter().map(rules::RuleRow::into_proto).collect(),
    })
}

pub async fn route(
    state: AppState,
    _caller: Caller,
    request: ResolveRouteRequest,
) -> Result<ResolvedRoute, ApiError> {
    let account_id = Uuid::parse_str(&request.account_id).map_err(|_| {
        ApiError::invalid(format!("account_id {:?} is not a UUID", request.account_id))
    })?;
    let account = accounts::load_by_id(&state, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("account {account_id} not found")))?;
    // An empty name is the default route: the one marked default, else the oldest.
    let row = sqlx::query_as::<_, RouteRow>(concat!(
        "SELECT ",
        route_columns!(),
        " FROM provider_routes WHERE account_id = $1 AND ($2 = '' OR name = $2)
          ORDER BY is_default DESC, created_at ASC, id ASC LIMIT 1"
    ))
    .bind(account.id)
    .bind(&request.name)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| {
        if request.name.is_empty() {
            ApiError::not_found(format!("account {:?} has no provider route", account.name))
        } else {
            ApiError::not_found(format!(
                "provider route {:?} not found in account {:?}",
                request.name, account.name
            ))
        }
    })?;
    let credentials = row.credentials(&state)?;
    let inbound_source_id: Option<Uuid> = if account.inbound_source.is_empty() {
        None
    } else {
        sqlx::query_scalar("SELECT id FROM sources WHERE account_id = $1 AND name = $2 AND enabled")
            .bind(account.id)
            .bind(&account.inbound_source)
            .fetch_optional(&state.pool)
            .await?
    };
    Ok(ResolvedRoute {
        route: Some(row.to_proto()?),
        account: Some(account.into_proto()),
        credentials,
        inbound_source_id: inbound_source_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    })
}
