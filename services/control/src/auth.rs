//! Who is calling: the bootstrap admin key (any account, and the lookups that
//! return secrets) or an account key (its own account only).

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
    Account { account_id: Uuid },
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

    /// Whether the caller may act on `account_id`.
    pub fn may_access(self, account_id: Uuid) -> bool {
        match self {
            Self::Admin => true,
            Self::Account { account_id: own } => own == account_id,
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
        let account_id: Option<Uuid> = sqlx::query_scalar(
            "SELECT account_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(presented.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        account_id
            .map(|account_id| Caller::Account { account_id })
            .ok_or(ApiError::Unauthenticated)
    }
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
