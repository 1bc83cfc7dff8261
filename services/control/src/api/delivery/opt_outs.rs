//! Opt-outs of an account. Numbers are stored as E.164, read with the account's
//! default country, so "55 1234 5678" and "+525512345678" are the same opt-out.

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    AddOptOutRequest, ListOptOutsRequest, ListOptOutsResponse, OptOut, RemoveOptOutRequest,
    RemoveOptOutResponse,
};
use phonenumber::Mode;

use super::{limit, millis};
use crate::api::{AppState, accounts};
use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Debug, sqlx::FromRow)]
struct OptOutRow {
    account_id: uuid::Uuid,
    phone: String,
    source: String,
    reason: String,
    created_at: DateTime<Utc>,
}

impl OptOutRow {
    fn into_proto(self) -> OptOut {
        OptOut {
            account_id: self.account_id.to_string(),
            phone: self.phone,
            source: self.source,
            reason: self.reason,
            created_at_ms: millis(self.created_at),
        }
    }
}

/// E.164 of `raw` read with `default_country`.
fn normalize(raw: &str, default_country: &str) -> Result<String, ApiError> {
    let country = default_country.parse::<phonenumber::country::Id>().ok();
    let invalid = || ApiError::invalid(format!("phone {raw:?} is not a valid phone number"));
    let number = phonenumber::parse(country, raw.trim()).map_err(|_| invalid())?;
    if !phonenumber::is_valid(&number) {
        return Err(invalid());
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

pub async fn list(
    state: AppState,
    caller: Caller,
    request: ListOptOutsRequest,
) -> Result<ListOptOutsResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let phone = if request.phone.is_empty() {
        None
    } else {
        Some(normalize(&request.phone, &account.default_country)?)
    };
    let rows = sqlx::query_as::<_, OptOutRow>(
        "SELECT account_id, phone, source, reason, created_at FROM opt_outs \
         WHERE account_id = $1 AND ($2::text IS NULL OR phone = $2) \
         ORDER BY created_at DESC, phone LIMIT $3",
    )
    .bind(account.id)
    .bind(phone)
    .bind(limit(request.limit))
    .fetch_all(&state.pool)
    .await?;
    Ok(ListOptOutsResponse {
        opt_outs: rows.into_iter().map(OptOutRow::into_proto).collect(),
    })
}

/// Adding a number that is opted out already keeps the original record.
pub async fn add(
    state: AppState,
    caller: Caller,
    request: AddOptOutRequest,
) -> Result<OptOut, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let phone = normalize(&request.phone, &account.default_country)?;
    sqlx::query(
        "INSERT INTO opt_outs (account_id, phone, source, reason) VALUES ($1, $2, 'api', $3) \
         ON CONFLICT (account_id, phone) DO NOTHING",
    )
    .bind(account.id)
    .bind(&phone)
    .bind(&request.reason)
    .execute(&state.pool)
    .await?;
    let row = sqlx::query_as::<_, OptOutRow>(
        "SELECT account_id, phone, source, reason, created_at FROM opt_outs \
         WHERE account_id = $1 AND phone = $2",
    )
    .bind(account.id)
    .bind(&phone)
    .fetch_one(&state.pool)
    .await?;
    Ok(row.into_proto())
}

pub async fn remove(
    state: AppState,
    caller: Caller,
    request: RemoveOptOutRequest,
) -> Result<RemoveOptOutResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let phone = normalize(&request.phone, &account.default_country)?;
    let deleted = sqlx::query("DELETE FROM opt_outs WHERE account_id = $1 AND phone = $2")
        .bind(account.id)
        .bind(&phone)
        .execute(&state.pool)
        .await?;
    Ok(RemoveOptOutResponse {
        removed: deleted.rows_affected() == 1,
    })
}
