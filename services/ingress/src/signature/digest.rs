//! The primitives every scheme shares: HMAC over a message given in parts (so
//! nothing is concatenated into a new buffer), and constant-time comparison.

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use subtle::{Choice, ConstantTimeEq};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Only for providers that still sign with it (Vonage's `md5` method).
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC of the concatenated `parts` under `key` with `algorithm`.
pub fn hmac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Md5 => run::<Hmac<Md5>>(key, parts),
        Algorithm::Sha1 => run::<Hmac<Sha1>>(key, parts),
        Algorithm::Sha256 => hmac_sha256(key, parts).to_vec(),
        Algorithm::Sha512 => run::<Hmac<Sha512>>(key, parts),
    }
}

/// MD5 of the concatenated `parts` (Vonage's `md5hash` signatures).
pub(crate) fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// SHA-256 of `bytes`, for comparing secrets of any length in constant time.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Whether any candidate equals `expected`, in time that does not depend on where
/// (or whether) they differ.
pub fn matches_any(expected: &[u8], candidates: &[Vec<u8>]) -> bool {
    let mut found = Choice::from(0);
    for candidate in candidates {
        found |= expected.ct_eq(candidate.as_slice());
    }
    found.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_match_handles_lengths_and_several_candidates() {
        assert!(matches_any(b"abc", &[b"xyz".to_vec(), b"abc".to_vec()]));
        assert!(!matches_any(b"abc", &[b"ab".to_vec(), b"abcd".to_vec()]));
        assert!(!matches_any(b"abc", &[]));
    }

    #[test]
    fn rfc_4231_and_2202_vectors() {
        // RFC 4231 test case 2 (SHA-256, SHA-512) and RFC 2202 test case 2 (SHA-1).
        let key = b"Jefe";
        let data: &[&[u8]] = &[b"what do ya want ", b"for nothing?"];
        assert_eq!(
            hex::encode(hmac(Algorithm::Sha256, key, data)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac(Algorithm::Sha512, key, data)),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        assert_eq!(
            hex::encode(hmac(Algorithm::Sha1, key, data)),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        // RFC 2202 test case 2 (MD5), and RFC 1321's MD5 of "abc".
        assert_eq!(
            hex::encode(hmac(Algorithm::Md5, key, data)),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            hex::encode(md5(&[b"a", b"bc"])),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }
}
