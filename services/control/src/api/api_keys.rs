//! Account API keys: generated here, shown once, stored as a SHA-256 hash with a
//! short prefix that tells keys apart. They may expire and can be revoked; an
//! account key cannot create a key of wider reach than its own.

use chrono::{DateTime, TimeDelta, Utc};
use foco_proto::v1::{
    ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, ListApiKeysRequest, ListApiKeysResponse,
    RevokeApiKeyRequest,
};
use uuid::Uuid;

use super::{AppState, accounts, millis};
use crate::auth::{Caller, rfc3339};
use crate::crypto::{api_key_prefix, hash_api_key, new_api_key};
use crate::error::ApiError;
use crate::notify::ChangeKind;

const MAX_DESCRIPTION_LEN: usize = 200;

/// The longest a key may live: long enough for a yearly rotation with slack,
/// short enough that a forgotten key does not work forever.
const MAX_LIFETIME: TimeDelta = TimeDelta::days(2 * 365);

#[derive(Debug, sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    description: String,
    key_prefix: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyRow {
    fn into_proto(self) -> ApiKey {
        ApiKey {
            id: self.id.to_string(),
            description: self.description,
            prefix: self.key_prefix.unwrap_or_default(),
            created_at_ms: millis(self.created_at),
            expires_at_ms: self.expires_at.map_or(0, millis),
            revoked_at_ms: self.revoked_at.map_or(0, millis),
        }
    }
}

pub async fn create(
    state: AppState,
    caller: Caller,
    request: CreateApiKeyRequest,
) -> Result<CreateApiKeyResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    if request.description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(ApiError::invalid(format!(
            "description is longer than {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    let expires_at = requested_expiry(request.expires_at_ms, Utc::now())?;
    check_reach(caller, expires_at)?;
    let id = Uuid::now_v7();
    let key = new_api_key();
    let row = sqlx::query_as::<_, ApiKeyRow>(
        "INSERT INTO api_keys (id, account_id, key_hash, key_prefix, description, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, description, key_prefix, created_at, expires_at, revoked_at",
    )
    .bind(id)
    .bind(account.id)
    .bind(hash_api_key(&key).as_slice())
    .bind(api_key_prefix(&key))
    .bind(&request.description)
    .bind(expires_at)
    .fetch_one(&state.pool)
    .await?;
    tracing::info!(account_id = %account.id, key_id = %id, by_key_id = ?caller.key_id(), "api key created");
    state
        .notifier
        .announce(account.id, ChangeKind::Account)
        .await;
    Ok(CreateApiKeyResponse {
        id: id.to_string(),
        key,
        api_key: Some(row.into_proto()),
    })
}

pub async fn list(
    state: AppState,
    caller: Caller,
    request: ListApiKeysRequest,
) -> Result<ListApiKeysResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let rows = sqlx::query_as::<_, ApiKeyRow>(
        "SELECT id, description, key_prefix, created_at, expires_at, revoked_at
         FROM api_keys WHERE account_id = $1 ORDER BY created_at, id",
    )
    .bind(account.id)
    .fetch_all(&state.pool)
    .await?;
    Ok(ListApiKeysResponse {
        api_keys: rows.into_iter().map(ApiKeyRow::into_proto).collect(),
    })
}

/// Keeps the first revocation time, so revoking twice answers the same. An
/// account key may revoke itself: its next call is refused.
pub async fn revoke(
    state: AppState,
    caller: Caller,
    request: RevokeApiKeyRequest,
) -> Result<ApiKey, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let key_id = Uuid::parse_str(request.id.trim())
        .map_err(|_| ApiError::invalid(format!("id {:?} is not an API key id", request.id)))?;
    let row = sqlx::query_as::<_, ApiKeyRow>(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
         WHERE id = $1 AND account_id = $2
         RETURNING id, description, key_prefix, created_at, expires_at, revoked_at",
    )
    .bind(key_id)
    .bind(account.id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "API key {key_id} not found in account {:?}",
            account.name
        ))
    })?;
    tracing::info!(account_id = %account.id, key_id = %key_id, by_key_id = ?caller.key_id(), "api key revoked");
    state
        .notifier
        .announce(account.id, ChangeKind::Account)
        .await;
    Ok(row.into_proto())
}

/// `expires_at_ms` as a time: 0 is never; otherwise in the future and at most
/// [`MAX_LIFETIME`] away.
fn requested_expiry(
    expires_at_ms: i64,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    if expires_at_ms == 0 {
        return Ok(None);
    }
    let expires_at = DateTime::<Utc>::from_timestamp_millis(expires_at_ms)
        .ok_or_else(|| ApiError::invalid("expires_at_ms is out of range"))?;
    if expires_at <= now {
        return Err(ApiError::invalid(format!(
            "expires_at {} is not in the future",
            rfc3339(expires_at)
        )));
    }
    if expires_at > now + MAX_LIFETIME {
        return Err(ApiError::invalid(format!(
            "expires_at {} is more than two years away",
            rfc3339(expires_at)
        )));
    }
    Ok(Some(expires_at))
}

/// An account key cannot mint a key that outlives it (the account itself is
/// checked by `accounts::authorize`). Admin and non-expiring keys may create
/// keys of any lifetime.
fn check_reach(caller: Caller, expires_at: Option<DateTime<Utc>>) -> Result<(), ApiError> {
    let Caller::Account {
        expires_at: Some(caller_expires_at),
        ..
    } = caller
    else {
        return Ok(());
    };
    match expires_at {
        Some(expires_at) if expires_at <= caller_expires_at => Ok(()),
        _ => Err(ApiError::denied(format!(
            "this API key expires at {}; the keys it creates must expire no later",
            rfc3339(caller_expires_at)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account_key(expires_at: Option<DateTime<Utc>>) -> Caller {
        Caller::Account {
            account_id: Uuid::now_v7(),
            key_id: Uuid::now_v7(),
            expires_at,
        }
    }

    #[test]
    fn expiry_is_in_the_future_and_at_most_two_years_away() {
        let now = DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000).unwrap();
        assert_eq!(requested_expiry(0, now).unwrap(), None);
        let in_a_day = now + TimeDelta::days(1);
        assert_eq!(
            requested_expiry(millis(in_a_day), now).unwrap(),
            Some(in_a_day)
        );
        let limit = now + MAX_LIFETIME;
        assert_eq!(requested_expiry(millis(limit), now).unwrap(), Some(limit));
        for refused in [millis(now), millis(now) - 1, millis(limit) + 1, i64::MAX] {
            assert!(
                matches!(
                    requested_expiry(refused, now),
                    Err(ApiError::InvalidArgument(_))
                ),
                "{refused}"
            );
        }
    }

    #[test]
    fn an_expiring_account_key_creates_only_keys_that_expire_no_later() {
        let now = Utc::now();
        let caller_expires_at = now + TimeDelta::days(10);
        let expiring = account_key(Some(caller_expires_at));
        assert!(check_reach(expiring, Some(now + TimeDelta::days(5))).is_ok());
        assert!(check_reach(expiring, Some(caller_expires_at)).is_ok());
        for refused in [None, Some(caller_expires_at + TimeDelta::seconds(1))] {
            assert!(matches!(
                check_reach(expiring, refused),
                Err(ApiError::PermissionDenied(_))
            ));
        }
        for unrestricted in [Caller::Admin, account_key(None)] {
            assert!(check_reach(unrestricted, None).is_ok());
            assert!(check_reach(unrestricted, Some(now + MAX_LIFETIME)).is_ok());
        }
    }
}
