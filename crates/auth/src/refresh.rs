//! Refresh-token values: `base64url(id ‖ secret)`, where `id` is a time-ordered UUIDv7 that the
//! store looks the token up by and `secret` is 256 random bits of which only the SHA-256 is
//! stored. Looking tokens up by a time-ordered id instead of by the hash of the whole value makes
//! new tokens append to the store's index instead of landing on random pages, which is what
//! bounded the token endpoint's throughput (see docs/benchmarks.md).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::secret::{random_bytes, SECRET_BYTES};

/// A new refresh token: the value for the client and what the store keeps.
pub struct IssuedRefreshToken {
    pub value: String,
    pub id: Uuid,
    pub secret_hash: [u8; 32],
}

pub fn issue_refresh_token() -> IssuedRefreshToken {
    let id = Uuid::now_v7();
    let secret = random_bytes();
    let mut raw = Vec::with_capacity(16 + SECRET_BYTES);
    raw.extend_from_slice(id.as_bytes());
    raw.extend_from_slice(&secret);
    IssuedRefreshToken {
        value: URL_SAFE_NO_PAD.encode(raw),
        id,
        secret_hash: Sha256::digest(secret).into(),
    }
}

/// The id and the hash of the secret carried by a presented value; `None` when the value cannot
/// be a refresh token.
pub fn parse_refresh_token(value: &str) -> Option<(Uuid, [u8; 32])> {
    let raw = URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
    if raw.len() != 16 + SECRET_BYTES {
        return None;
    }
    let (id, secret) = raw.split_at(16);
    let id = Uuid::from_slice(id).ok()?;
    Some((id, Sha256::digest(secret).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_values_parse_back() {
        let issued = issue_refresh_token();
        assert_eq!(issued.value.len(), 64);
        assert_eq!(
            parse_refresh_token(&issued.value),
            Some((issued.id, issued.secret_hash))
        );
        assert!(parse_refresh_token("made-up").is_none());
        assert!(parse_refresh_token(&issued.value[..60]).is_none());
        let later = issue_refresh_token();
        assert!(later.id > issued.id, "ids are time-ordered");
    }
}
