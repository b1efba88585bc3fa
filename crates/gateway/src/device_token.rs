//! Device tokens: what `POST /devices/register/{endpoint}/{device}` hands out.
//!
//! `mhd.<base64url(payload)>.<base64url(HMAC-SHA256)>` where the payload is the endpoint id
//! (16 bytes), the token generation and expiry (8 bytes each, big-endian) and the device id.
//! The signature proves the token was issued here; the generation, compared with the device's
//! current one in memory, makes refreshed, deleted and disabled devices' old tokens fail at
//! once without a database round trip. The `mhd.` prefix tells device tokens apart from account
//! access tokens in the same `Authorization: Bearer` header.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use uuid::Uuid;

use crate::keys::mac;

pub const PREFIX: &str = "mhd.";

/// What a verified device token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceClaims {
    pub endpoint: Uuid,
    pub device: String,
    pub generation: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Signs a token with the endpoint's device-token key.
pub fn issue(key: &[u8], claims: &DeviceClaims) -> String {
    let mut payload = Vec::with_capacity(32 + claims.device.len());
    payload.extend_from_slice(claims.endpoint.as_bytes());
    payload.extend_from_slice(&claims.generation.to_be_bytes());
    payload.extend_from_slice(&claims.expires_at.to_be_bytes());
    payload.extend_from_slice(claims.device.as_bytes());
    let mut signer = mac(key);
    signer.update(&payload);
    let signature = signer.finalize().into_bytes();
    format!(
        "{PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The device token in a bearer value, sent as is or base64-encoded (as the seed's clients
/// encode access tokens); `None` when the value is not a device token.
pub fn from_bearer(credentials: &str) -> Option<String> {
    let raw = credentials.trim();
    if raw.starts_with(PREFIX) {
        return Some(raw.to_string());
    }
    mh_auth::decode_bearer(raw)
        .filter(|decoded| decoded.starts_with(PREFIX))
        .map(|decoded| decoded.into_owned())
}

/// Reads the claims without checking the signature: the caller needs the endpoint id to find
/// the key, then calls [`verify`].
pub fn peek(token: &str) -> Option<(DeviceClaims, Vec<u8>, Vec<u8>)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (payload, signature) = rest.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    if payload.len() < 33 {
        return None;
    }
    let endpoint = Uuid::from_slice(&payload[..16]).ok()?;
    let generation = i64::from_be_bytes(payload[16..24].try_into().ok()?);
    let expires_at = i64::from_be_bytes(payload[24..32].try_into().ok()?);
    let device = String::from_utf8(payload[32..].to_vec()).ok()?;
    Some((
        DeviceClaims {
            endpoint,
            device,
            generation,
            expires_at,
        },
        payload,
        signature,
    ))
}

/// Constant-time signature check of a peeked token.
pub fn verify(key: &[u8], payload: &[u8], signature: &[u8]) -> bool {
    let mut verifier = mac(key);
    verifier.update(payload);
    verifier.verify_slice(signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_detect_tampering() {
        let claims = DeviceClaims {
            endpoint: Uuid::new_v4(),
            device: "thermo:1@hall".into(),
            generation: 3,
            expires_at: 1_900_000_000,
        };
        let token = issue(&[5; 32], &claims);
        let (peeked, payload, signature) = peek(&token).unwrap();
        assert_eq!(peeked, claims);
        assert!(verify(&[5; 32], &payload, &signature));
        assert!(!verify(&[6; 32], &payload, &signature));
        assert!(peek("mhd.AAAA.BBBB").is_none());
        assert!(peek("Issuer=x&HMACSHA256=y").is_none());
    }
}
