//! API keys: generated here, shown once, stored as a SHA-256 hash with a short
//! prefix that tells keys apart. Account keys hold some of the account scopes;
//! service keys (admin key only) hold one service's lookups. Keys may expire and
//! can be revoked; an account key cannot create a key of wider reach than its
//! own: no scope it lacks, no later expiry.

use chrono::{DateTime, TimeDelta, Utc};
use foco_proto::v1::{
    ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, ListApiKeysRequest, ListApiKeysResponse,
    RevokeApiKeyRequest,
};
use uuid::Uuid;

use super::accounts::AccountRow;
use super::{AppState, accounts, millis};
use crate::auth::{Caller, rfc3339};
use crate::crypto::{api_key_prefix, hash_api_key, new_api_key};
use crate::error::ApiError;
use crate::notify::ChangeKind;
use crate::scopes::{Scopes, Service};
use crate::validate;

const MAX_DESCRIPTION_LEN: usize = 200;

/// The longest a key may live: long enough for a yearly rotation with slack,
/// short enough that a forgotten key does not work forever.
const MAX_LIFETIME: TimeDelta = TimeDelta::days(2 * 365);

/// The `api_keys` columns an [`ApiKeyRow`] reads, as a literal for `concat!`.
macro_rules! api_key_columns {
    () => {
        "id, name, description, key_prefix, scopes, service, created_at, expires_at, revoked_at, last_used_at"
    };
}

#[derive(Debug, sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    name: String,
    description: String,
    key_prefix: Option<String>,
    scopes: Vec<String>,
    service: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
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
            scopes: self.scopes,
            name: self.name,
            service: self.service.unwrap_or_default(),
            last_used_at_ms: self.last_used_at.map_or(0, millis),
        }
    }
}

/// Whose keys a request is about: an account's, or (`account` empty, admin key
/// only) the services'.
enum Owner {
    Account(AccountRow),
    Services,
}

impl Owner {
    async fn of(state: &AppState, caller: Caller, account: &str) -> Result<Self, ApiError> {
        if account.is_empty() && caller.is_admin() {
            return Ok(Self::Services);
        }
        Ok(Self::Account(
            accounts::authorize(state, caller, account).await?,
        ))
    }

    fn account_id(&self) -> Option<Uuid> {
        match self {
            Self::Account(account) => Some(account.id),
            Self::Services => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Account(account) => format!("account {:?}", account.name),
            Self::Services => "the service keys".to_owned(),
        }
    }

    async fn announce(&self, state: &AppState) {
        if let Self::Account(account) = self {
            state
                .notifier
                .announce(account.id, ChangeKind::Account)
                .await;
        }
    }
}

pub async fn create(
    state: AppState,
    caller: Caller,
    request: CreateApiKeyRequest,
) -> Result<CreateApiKeyResponse, ApiError> {
    let (owner, service, scopes) = if request.service.is_empty() {
        let owner = Owner::Account(accounts::authorize(&state, caller, &request.account).await?);
        (owner, None, account_scopes(caller, &request.scopes)?)
    } else {
        let service = service_key(caller, &request)?;
        (Owner::Services, Some(service), service.scopes())
    };
    if !request.name.is_empty() {
        validate::name("name", &request.name)?;
    }
    if request.description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(ApiError::invalid(format!(
            "description is longer than {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    let expires_at = requested_expiry(request.expires_at_ms, Utc::now())?;
    check_reach(caller, expires_at)?;
    let id = Uuid::now_v7();
    let key = new_api_key();
    let row = sqlx::query_as::<_, ApiKeyRow>(concat!(
        "INSERT INTO api_keys
           (id, account_id, key_hash, key_prefix, name, description, scopes, service, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING ",
        api_key_columns!()
    ))
    .bind(id)
    .bind(owner.account_id())
    .bind(hash_api_key(&key).as_slice())
    .bind(api_key_prefix(&key))
    .bind(&request.name)
    .bind(&request.description)
    .bind(scopes.names())
    .bind(service.map(Service::name))
    .bind(expires_at)
    .fetch_one(&state.pool)
    .await?;
    tracing::info!(
        account_id = ?owner.account_id(),
        service = ?service.map(Service::name),
        key_id = %id,
        scopes = %scopes,
        by_key_id = ?caller.key_id(),
        "api key created"
    );
    owner.announce(&state).await;
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
    let owner = Owner::of(&state, caller, &request.account).await?;
    let rows = sqlx::query_as::<_, ApiKeyRow>(concat!(
        "SELECT ",
        api_key_columns!(),
        " FROM api_keys WHERE account_id IS NOT DISTINCT FROM $1 ORDER BY created_at, id"
    ))
    .bind(owner.account_id())
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
    let owner = Owner::of(&state, caller, &request.account).await?;
    let key_id = Uuid::parse_str(request.id.trim())
        .map_err(|_| ApiError::invalid(format!("id {:?} is not an API key id", request.id)))?;
    let row = sqlx::query_as::<_, ApiKeyRow>(concat!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
         WHERE id = $1 AND account_id IS NOT DISTINCT FROM $2
         RETURNING ",
        api_key_columns!()
    ))
    .bind(key_id)
    .bind(owner.account_id())
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "API key {key_id} not found in {}",
            owner.describe()
        ))
    })?;
    tracing::info!(account_id = ?owner.account_id(), key_id = %key_id, by_key_id = ?caller.key_id(), "api key revoked");
    owner.announce(&state).await;
    Ok(row.into_proto())
}

/// Creates the service keys the configuration names by hash, unless a key with
/// that hash exists: a key revoked since stays revoked.
pub async fn provision_service_keys(
    pool: &sqlx::PgPool,
    hashes: &[(Service, [u8; 32])],
) -> Result<(), sqlx::Error> {
    for (service, hash) in hashes {
        let created = sqlx::query(
            "INSERT INTO api_keys (id, account_id, key_hash, name, description, scopes, service)
             VALUES ($1, NULL, $2, $3, 'from FOCO_SERVICE_KEY_HASHES', $4, $5)
             ON CONFLICT (key_hash) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(hash.as_slice())
        .bind(format!("{}-configured", service.name()))
        .bind(service.scopes().names())
        .bind(service.name())
        .execute(pool)
        .await?;
        if created.rows_affected() > 0 {
            tracing::info!(
                service = service.name(),
                "service key created from the configuration"
            );
        }
    }
    Ok(())
}

/// The scopes an account key asks for: account scopes only, none the calling
/// key lacks; none asked: every account scope the calling key holds.
fn account_scopes(caller: Caller, requested: &[String]) -> Result<Scopes, ApiError> {
    let held = caller.scopes();
    if requested.is_empty() {
        return Ok(held
            .iter()
            .filter(|scope| Scopes::account().contains(*scope))
            .collect());
    }
    let scopes = Scopes::parse(requested)
        .map_err(|unknown| ApiError::invalid(format!("{unknown:?} is not a scope")))?;
    if let Some(service_scope) = scopes
        .iter()
        .find(|scope| !Scopes::account().contains(*scope))
    {
        return Err(ApiError::invalid(format!(
            "{service_scope} is a service key's scope: create one with service"
        )));
    }
    if let Some(lacking) = scopes.iter().find(|scope| !held.contains(*scope)) {
        return Err(ApiError::denied(format!(
            "this API key lacks the {lacking} scope, so the keys it creates cannot hold it"
        )));
    }
    Ok(scopes)
}

/// The service a service-key request names; only the admin key creates them,
/// since they read every account's secrets.
fn service_key(caller: Caller, request: &CreateApiKeyRequest) -> Result<Service, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::denied(
            "service keys are created with the admin API key",
        ));
    }
    if !request.account.is_empty() || !request.scopes.is_empty() {
        return Err(ApiError::invalid(
            "a service key has no account, and its scopes are its service's",
        ));
    }
    Service::parse(request.service.trim()).ok_or_else(|| {
        ApiError::invalid(format!(
            "service {:?} is not one of ingress, rules, sender",
            request.service
        ))
    })
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
    use crate::scopes::Scope;

    fn account_key(expires_at: Option<DateTime<Utc>>) -> Caller {
        Caller::Account {
            account_id: Uuid::now_v7(),
            key_id: Uuid::now_v7(),
            expires_at,
            scopes: Scopes::account(),
        }
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn an_account_key_creates_only_keys_with_scopes_it_holds() {
        let reader = Caller::Account {
            account_id: Uuid::now_v7(),
            key_id: Uuid::now_v7(),
            expires_at: None,
            scopes: [Scope::Read, Scope::Send].into_iter().collect(),
        };
        assert_eq!(
            account_scopes(reader, &[]).unwrap().to_string(),
            "send,read"
        );
        assert_eq!(
            account_scopes(reader, &names(&["read"]))
                .unwrap()
                .to_string(),
            "read"
        );
        assert!(matches!(
            account_scopes(reader, &names(&["read", "manage"])),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(matches!(
            account_scopes(Caller::Admin, &names(&["resolve:routes"])),
            Err(ApiError::InvalidArgument(_))
        ));
        assert!(matches!(
            account_scopes(Caller::Admin, &names(&["everything"])),
            Err(ApiError::InvalidArgument(_))
        ));
        assert_eq!(
            account_scopes(Caller::Admin, &[]).unwrap(),
            Scopes::account()
        );
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
