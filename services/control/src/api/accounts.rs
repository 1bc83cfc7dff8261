//! Accounts, and the scoping every other handler starts with: the account a
//! request names, checked against the caller's key.

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    Account, GetAccountRequest, ListAccountsRequest, ListAccountsResponse, UpsertAccountRequest,
};
use uuid::Uuid;

use super::{AppState, millis};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::notify::ChangeKind;
use crate::validate;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: Uuid,
    pub name: String,
    pub default_country: String,
    pub timezone: String,
    pub daily_sms_cap: i32,
    /// Empty: the built-in default (`foco_rule_engine::DEFAULT_VALID_FOR`).
    pub default_valid_for: String,
    /// The source received SMS become events of; empty: none.
    pub inbound_source: String,
    pub created_at: DateTime<Utc>,
}

impl AccountRow {
    pub fn into_proto(self) -> Account {
        Account {
            id: self.id.to_string(),
            name: self.name,
            default_country: self.default_country,
            timezone: self.timezone,
            created_at_ms: millis(self.created_at),
            daily_sms_cap: u32::try_from(self.daily_sms_cap).unwrap_or(0),
            default_valid_for: self.default_valid_for,
            inbound_source: self.inbound_source,
        }
    }
}

/// The `accounts` columns an [`AccountRow`] reads, as a literal for `concat!`.
macro_rules! account_columns {
    () => {
        "id, name, default_country, timezone, daily_sms_cap, default_valid_for, inbound_source, created_at"
    };
}

const ACCOUNT_COLUMNS_BY_NAME: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE name = $1"
);

pub async fn load_by_id(
    state: &AppState,
    account_id: Uuid,
) -> Result<Option<AccountRow>, ApiError> {
    Ok(sqlx::query_as::<_, AccountRow>(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE id = $1"
    ))
    .bind(account_id)
    .fetch_optional(&state.pool)
    .await?)
}

/// The account named in a request, if the caller may act on it. An account key
/// naming another account is denied whether or not that account exists, so keys
/// cannot probe for account names.
pub async fn authorize(
    state: &AppState,
    caller: Caller,
    name: &str,
) -> Result<AccountRow, ApiError> {
    if name.is_empty() {
        return Err(ApiError::invalid("account is required"));
    }
    let account = sqlx::query_as::<_, AccountRow>(ACCOUNT_COLUMNS_BY_NAME)
        .bind(name)
        .fetch_optional(&state.pool)
        .await?;
    match account {
        Some(account) if caller.may_access(account.id) => Ok(account),
        Some(_) => Err(other_account_denied()),
        None if caller.is_admin() => {
            Err(ApiError::not_found(format!("account {name:?} not found")))
        }
        None => Err(other_account_denied()),
    }
}

fn other_account_denied() -> ApiError {
    ApiError::denied("this API key belongs to another account")
}

pub async fn upsert(
    state: AppState,
    caller: Caller,
    request: UpsertAccountRequest,
) -> Result<Account, ApiError> {
    validate::name("name", &request.name)?;
    let default_country = validate::country(&request.default_country)?;
    let timezone = validate::timezone(&request.timezone)?;
    let daily_sms_cap = i32::try_from(request.daily_sms_cap)
        .map_err(|_| ApiError::invalid("daily_sms_cap is too large"))?;
    validate::valid_for("default_valid_for", &request.default_valid_for)?;
    let default_valid_for = request.default_valid_for.trim();
    let inbound_source = request.inbound_source.trim();
    // By name, not checked against the sources: a file applies the account
    // before its sources, and a missing source only means no events.
    if !inbound_source.is_empty() {
        validate::name("inbound_source", inbound_source)?;
    }
    let account = match caller {
        Caller::Admin => {
            sqlx::query_as::<_, AccountRow>(concat!(
                "INSERT INTO accounts (id, name, default_country, timezone, daily_sms_cap, default_valid_for,
                                       inbound_source)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (name) DO UPDATE
                   SET default_country = EXCLUDED.default_country,
                       timezone = EXCLUDED.timezone,
                       daily_sms_cap = EXCLUDED.daily_sms_cap,
                       default_valid_for = EXCLUDED.default_valid_for,
                       inbound_source = EXCLUDED.inbound_source,
                       updated_at = now()
                 RETURNING ",
                account_columns!()
            ))
            .bind(Uuid::now_v7())
            .bind(&request.name)
            .bind(&default_country)
            .bind(&timezone)
            .bind(daily_sms_cap)
            .bind(default_valid_for)
            .bind(inbound_source)
            .fetch_one(&state.pool)
            .await?
        }
        // An account key may update its own account, never create another one.
        Caller::Account { account_id, .. } => sqlx::query_as::<_, AccountRow>(concat!(
            "UPDATE accounts SET default_country = $3, timezone = $4, daily_sms_cap = $5,
                    default_valid_for = $6, inbound_source = $7, updated_at = now()
             WHERE id = $1 AND name = $2
             RETURNING ",
            account_columns!()
        ))
        .bind(account_id)
        .bind(&request.name)
        .bind(&default_country)
        .bind(&timezone)
        .bind(daily_sms_cap)
        .bind(default_valid_for)
        .bind(inbound_source)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| ApiError::denied("an account API key can only update its own account"))?,
        Caller::Service { .. } => {
            return Err(ApiError::denied("a service API key manages no account"));
        }
    };
    state
        .notifier
        .announce(account.id, ChangeKind::Account)
        .await;
    Ok(account.into_proto())
}

pub async fn get(
    state: AppState,
    caller: Caller,
    request: GetAccountRequest,
) -> Result<Account, ApiError> {
    Ok(authorize(&state, caller, &request.account)
        .await?
        .into_proto())
}

pub async fn list(
    state: AppState,
    caller: Caller,
    _request: ListAccountsRequest,
) -> Result<ListAccountsResponse, ApiError> {
    let rows = match caller {
        Caller::Admin => {
            sqlx::query_as::<_, AccountRow>(concat!(
                "SELECT ",
                account_columns!(),
                " FROM accounts ORDER BY name"
            ))
            .fetch_all(&state.pool)
            .await?
        }
        Caller::Account { account_id, .. } => {
            load_by_id(&state, account_id).await?.into_iter().collect()
        }
        Caller::Service { .. } => Vec::new(),
    };
    Ok(ListAccountsResponse {
        accounts: rows.into_iter().map(AccountRow::into_proto).collect(),
    })
}
