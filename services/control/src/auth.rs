//! Who is calling: the bootstrap admin key (any account, and the lookups that
//! return secrets) or an account key (its own account only).
//!
//! Account keys are looked up in Postgres on every call, with no cache, so a
//! revoked or expired key is refused from its next call on, by every replica. A
//! cache added here would have to drop an account's entries on its change notice
//! (`ChangeKind::Account`, which key creation and revocation announce) and keep
//! none for more than a few seconds, so that a lost notice delays revocation only
//! that long.

use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use subtle::ConstantTimeEq as _;
use tonic::metadata::MetadataMap;
use uuid::Uuid;

use crate::crypto::hash_api_key;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Account {
        account_id: Uuid,
        key_id: Uuid,
        /// When the calling key stops working; `None`: never. Keys it creates may
        /// not outlive it.
        expires_at: Option<DateTime<Utc>>,
    },
}

impl Caller {
    pub fn is_admin(self) -> bool {
        matches!(self, Self::Admin)
    }

    /// Refuses account keys: for the calls that act across accounts or return
    /// secrets in clear.
    pub fn require_admin(self, what: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::denied(format!("{what} needs the admin API key")))
        }
    }

    /// The calling account key, for audit logs; `None` for the admin key.
    pub fn key_id(self) -> Option<Uuid> {
        match self {
            Self::Admin => None,
            Self::Account { key_id, .. } => Some(key_id),
        }
    }

    /// Whether the caller may act on `account_id`.
    pub fn may_access(self, account_id: Uuid) -> bool {
        match self {
            Self::Admin => true,
            Self::Account {
                account_id: own, ..
            } => own == account_id,
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
            "SELECT id, account_id, expires_at, revoked_at FROM api_keys WHERE key_hash = $1",
        )
        .bind(presented.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let key = key.ok_or(ApiError::Unauthenticated)?;
        key.check_usable(Utc::now())?;
        Ok(Caller::Account {
            account_id: key.account_id,
            key_id: key.id,
            expires_at: key.expires_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct StoredKey {
    id: Uuid,
    account_id: Uuid,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl StoredKey {
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
    use chrono::TimeDelta;

    use super::*;

    fn stored(expires_at: Option<DateTime<Utc>>, revoked_at: Option<DateTime<Utc>>) -> StoredKey {
        StoredKey {
            id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            expires_at,
            revoked_at,
        }
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
