//! Random secrets (client secrets, refresh tokens, signing keys) and their hashes.
//!
//! Secrets are 256 bits from the operating system's generator, so a single SHA-256 is a sound
//! at-rest hash: there is nothing to brute-force that a slow password KDF would protect, and the
//! token endpoint stays fast (a KDF such as argon2 would cap it at a few hundred tokens/s).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of randomness in every generated secret.
pub const SECRET_BYTES: usize = 32;

pub fn random_bytes() -> [u8; SECRET_BYTES] {
    let mut bytes = [0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A new secret, printable and URL-safe (43 characters).
pub fn generate() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes())
}

/// The at-rest form of a secret.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Checks `candidate` against a stored hash in constant time.
pub fn verify(candidate: &str, stored_hash: &[u8]) -> bool {
    hash(candidate).ct_eq(stored_hash).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_distinct_and_verify() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(verify(&a, &hash(&a)));
        assert!(!verify(&b, &hash(&a)));
        assert!(!verify(&a, &[0u8; 3]));
    }
}
