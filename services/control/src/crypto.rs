//! Secrets at rest and random credentials.
//!
//! Source signing secrets and provider credentials are sealed with AES-256-GCM: a
//! random 96-bit nonce is stored in front of the ciphertext, and the owning row's
//! id is bound as associated data, so a sealed value copied into another row does
//! not decrypt. API keys and webhook tokens are 256-bit random values.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::config::{EncryptionKey, key_bytes};

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("sealed value is too short to hold a nonce")]
    Truncated,
    #[error(
        "sealed value does not decrypt with the configured key (wrong FOCO_ENCRYPTION_KEY, or the value was moved between rows)"
    )]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
    #[error("decrypted value is not valid UTF-8")]
    NotUtf8,
}

/// AES-256-GCM with the service's key.
#[derive(Clone)]
pub struct SecretSealer {
    cipher: Aes256Gcm,
}

impl SecretSealer {
    pub fn new(key: &EncryptionKey) -> Self {
        Self {
            cipher: Aes256Gcm::new(key_bytes(key).into()),
        }
    }

    /// `nonce || ciphertext`, authenticated together with `row_id`.
    pub fn seal(&self, row_id: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: row_id.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open(&self, row_id: Uuid, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Truncated);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: row_id.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }

    pub fn open_string(&self, row_id: Uuid, sealed: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.open(row_id, sealed)?).map_err(|_| CryptoError::NotUtf8)
    }
}

/// SHA-256 of an API key: what `api_keys.key_hash` stores and what callers are
/// matched against.
pub fn hash_api_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// 32 random bytes as unpadded URL-safe base64 (43 characters).
fn random_url_safe() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A webhook token, of the form `foco_control_client::is_well_formed_source_token`
/// checks: `src_` + 43 URL-safe characters.
pub fn new_source_token() -> String {
    format!(
        "{}{}",
        foco_control_client::SOURCE_TOKEN_PREFIX,
        random_url_safe()
    )
}

/// An account API key: `foco_` + 43 URL-safe characters.
pub fn new_api_key() -> String {
    format!("foco_{}", random_url_safe())
}

/// The part of an API key that listings show: `foco_` and 6 random characters
/// (36 of its 256 random bits), enough to tell keys apart, too few to matter.
pub fn api_key_prefix(key: &str) -> &str {
    key.get(..API_KEY_PREFIX_LEN).unwrap_or(key)
}

const API_KEY_PREFIX_LEN: usize = "foco_".len() + 6;

#[cfg(test)]
mod tests {
    use secrecy::SecretBox;

    use super::*;

    fn sealer() -> SecretSealer {
        SecretSealer::new(&SecretBox::new(Box::new([9u8; 32])))
    }

    #[test]
    fn sealed_values_round_trip_and_are_bound_to_their_row() {
        let row = Uuid::new_v4();
        let sealed = sealer().seal(row, b"whsec_abc").unwrap();
        assert!(!sealed.windows(9).any(|window| window == b"whsec_abc"));
        assert_eq!(sealer().open_string(row, &sealed).unwrap(), "whsec_abc");
        assert!(matches!(
            sealer().open(Uuid::new_v4(), &sealed),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn nonces_are_fresh() {
        let row = Uuid::new_v4();
        assert_ne!(
            sealer().seal(row, b"x").unwrap(),
            sealer().seal(row, b"x").unwrap()
        );
    }

    #[test]
    fn tokens_have_their_prefix_and_length() {
        let token = new_source_token();
        assert!(token.starts_with("src_") && token.len() == 47, "{token}");
        for token in std::iter::repeat_with(new_source_token).take(100) {
            assert!(
                foco_control_client::is_well_formed_source_token(&token),
                "{token}"
            );
        }
        let key = new_api_key();
        assert!(key.starts_with("foco_") && key.len() == 48, "{key}");
        assert_eq!(api_key_prefix(&key), &key[..11]);
        assert!(
            key[5..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
