//! Who is calling: the bootstrap admin key (every scope, any account), an
//! account key (its scopes, its own account only) or a service key (the lookups
//! one service makes, across accounts; see [`crate::scopes`]).
//!
//! Account keys are looked up in Postgres on every call, with no cache, so a
//! revoked or expired key is refused from its next call on, by every replica. A
//! cache added here would have to drop an account's entries on its change notice
//! (`ChangeKind::Account`, which key creation and revocation announce) and keep
//! none for more than a few seconds, so that a lost notice delays revocation only
//! that long.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use subtle::ConstantTimeEq as _;
use tonic::metadata::MetadataMap;
use uuid::Uuid;

use crate::crypto::hash_api_key;
use crate::error::ApiError;
use crate::scopes::{Scope, Scopes, required_scope};

/// How long `last_used_at` may lag behind a key's use: it is written at most
/// once per this interval, so a busy key costs no write per call.
const LAST_USED_PRECISION: TimeDelta = TimeDelta::minutes(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Account {
        account_id: Uuid,
        key_id: Uuid,
        /// When the calling key stops working; `None`: never. Keys it creates may
        /// not outlive it.
        expires_at: Option<DateTime<Utc>>,
        scopes: Scopes,
    },
    /// A service's key: no account of its own, only the lookups in its scopes.
    Service {
        key_id: Uuid,
        scopes: Scopes,
    },
}

impl Caller {
    pub fn is_admin(self) -> bool {
        matches!(self, Self::Admin)
    }

    pub fn scopes(self) -> Scopes {
        match self {
            Self::Admin => Scopes::all(),
            Self::Account { scopes, .. } | Self::Service { scopes, .. } => scopes,
        }
    }

    /// Refuses a key without the scope `method` needs (every method, through the
    /// one table in [`crate::scopes`]); a method missing from it is refused too.
    pub fn require_scope_for(self, method: &str) -> Result<(), ApiError> {
        let Some(scope) = required_scope(method) else {
            return Err(ApiError::denied(format!(
                "{method} is not open to any API key"
            )));
        };
        self.require_scope(scope, method)
    }

    pub fn require_scope(self, scope: Scope, what: &str) -> Result<(), ApiError> {
        if self.scopes().contains(scope) {
            Ok(())
        } else {
            Err(ApiError::denied(format!(
                "{what} needs an API key with the {scope} scope"
            )))
        }
    }

    /// The calling key, for audit logs; `None` for the admin key.
    pub fn key_id(self) -> Option<Uuid> {
        match self {
            Self::Admin => None,
            Self::Account { key_id, .. } | Self::Service { key_id, .. } => Some(key_id),
        }
    }

    /// Whether the caller may act on `account_id`'s own resources. Service keys
    /// act on none: their lookups are not account-scoped calls.
    pub fn may_access(self, account_id: Uuid) -> bool {
        match self {
            Self::Admin => true,
            Self::Account {
                account_id: own, ..
            } => own == account_id,
            Self::Service { .. } => false,
        }
    }
}

/// Matches a bearer key against the admin key's hash (in constant time) or the
/// stored hashes of account keys.
#[derive(Clone)]
pub struct Authenticator {
    admin_key_hash: [u8; 32],
    pool: PgPool,
}

impl Authenticator {
    pub fn new(admin_api_key: &SecretString, pool: PgPool) -> Self {
        Self {
            admin_key_hash: hash_api_key(admin_api_key.expose_secret()),
            pool,
        }
    }

    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, ApiError> {
        let key = bearer_key(metadata).ok_or(ApiError::Unauthenticated)?;
        // Comparing hashes keeps the comparison's length fixed, so timing says
        // nothing about the admin key even for keys of a different length.
        let presented = hash_api_key(key);
        if bool::from(presented.ct_eq(&self.admin_key_hash)) {
            return Ok(Caller::Admin);
        }
        let key: Option<StoredKey> = sqlx::query_as(
            "SELECT id, account_id, scopes, expires_at, revoked_at, last_used_at
             FROM api_keys WHERE key_hash = $1",
        )
        .bind(presented.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let key = key.ok_or(ApiError::Unauthenticated)?;
        let now = Utc::now();
        key.check_usable(now)?;
        if key
            .last_used_at
            .is_none_or(|last_used_at| last_used_at + LAST_USED_PRECISION <= now)
        {
            sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE id = $1")
                .bind(key.id)
                .execute(&self.pool)
                .await?;
        }
        Ok(key.caller())
    }
}

#[derive(Debug, sqlx::FromRow)]
struct StoredKey {
    id: Uuid,
    /// `None` for a service key.
    account_id: Option<Uuid>,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl StoredKey {
    fn caller(&self) -> Caller {
        // A name this build does not know grants nothing.
        let scopes = self
            .scopes
            .iter()
            .filter_map(|name| Scope::parse(name))
            .collect();
        match self.account_id {
            Some(account_id) => Caller::Account {
                account_id,
                key_id: self.id,
                expires_at: self.expires_at,
                scopes,
            },
            None => Caller::Service {
                key_id: self.id,
                scopes,
            },
        }
    }

    /// Only the holder of the key sees these messages, so saying why it was
    /// refused tells a guesser nothing.
    fn check_usable(&self, now: DateTime<Utc>) -> Result<(), ApiError> {
        if let Some(revoked_at) = self.revoked_at {
            return Err(ApiError::KeyRefused(format!(
                "this API key was revoked at {}",
                rfc3339(revoked_at)
            )));
        }
        match self.expires_at {
            Some(expires_at) if expires_at <= now => Err(ApiError::KeyRefused(format!(
                "this API key expired at {}",
                rfc3339(expires_at)
            ))),
            _ => Ok(()),
        }
    }
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn bearer_key(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?.trim();
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(expires_at: Option<DateTime<Utc>>, revoked_at: Option<DateTime<Utc>>) -> StoredKey {
        StoredKey {
            id: Uuid::now_v7(),
            account_id: Some(Uuid::now_v7()),
            scopes: vec!["read".to_owned(), "unknown".to_owned()],
            expires_at,
            revoked_at,
            last_used_at: None,
        }
    }

    #[test]
    fn stored_scopes_become_the_callers_and_unknown_names_grant_nothing() {
        let key = stored(None, None);
        let caller = key.caller();
        assert_eq!(caller.scopes().to_string(), "read");
        assert!(caller.require_scope_for("ListSources").is_ok());
        assert!(matches!(
            caller.require_scope_for("UpsertSource"),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(matches!(
            Caller::Admin.require_scope_for("NoSuchMethod"),
            Err(ApiError::PermissionDenied(_))
        ));
        let service = StoredKey {
            account_id: None,
            scopes: vec!["resolve:routes".to_owned()],
            ..stored(None, None)
        }
        .caller();
        assert!(service.require_scope_for("ResolveRoute").is_ok());
        assert!(service.require_scope_for("ResolveSource").is_err());
        assert!(!service.may_access(Uuid::now_v7()));
    }

    #[test]
    fn revoked_and_expired_keys_are_refused_with_the_reason() {
        let now = Utc::now();
        let later = now + TimeDelta::hours(1);
        assert!(stored(None, None).check_usable(now).is_ok());
        assert!(stored(Some(later), None).check_usable(now).is_ok());
        let expired = stored(Some(now), None).check_usable(now).unwrap_err();
        assert!(matches!(&expired, ApiError::KeyRefused(message) if message.contains("expired")));
        let revoked = stored(Some(later), Some(now))
            .check_usable(now)
            .unwrap_err();
        assert!(matches!(&revoked, ApiError::KeyRefused(message) if message.contains("revoked")));
    }

    fn metadata(value: &str) -> MetadataMap {
        let mut map = MetadataMap::new();
        map.insert("authorization", value.parse().unwrap());
        map
    }

    #[test]
    fn bearer_keys_are_read_case_insensitively() {
        assert_eq!(bearer_key(&metadata("Bearer abc")), Some("abc"));
        assert_eq!(bearer_key(&metadata("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_key(&metadata("Basic abc")), None);
        assert_eq!(bearer_key(&metadata("Bearer")), None);
        assert_eq!(bearer_key(&MetadataMap::new()), None);
    }
}
