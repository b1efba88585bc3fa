//! Endpoint keys, derived rather than stored.
//!
//! SAS verification needs the key itself, so endpoint keys cannot be kept as hashes. Instead of
//! sealing random keys in the database, every key is derived from one 256-bit gateway secret
//! (a file in the data directory with owner-only permissions, next to the token signing keys):
//! `HMAC-SHA256(secret, purpose | endpoint id | key version)`. Consequences:
//! - the database holds no key material at all, so a copied `metadata.db` reveals nothing;
//! - rotation is a counter bump (`key_version`), and old signatures fail at once;
//! - the hot path derives keys once per endpoint and keeps them in memory (see `cache`).
//!
//! Losing the secret file invalidates every endpoint key and device token, like losing the
//! signing keys invalidates access tokens; it is backed up with the data directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::GatewayError;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// File name of the gateway secret inside the data directory.
pub const GATEWAY_SECRET_FILE: &str = "gateway-secret";

/// What a derived key is for; part of the derivation so that no two purposes share a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Signs inbound shared access signatures (sending into channels).
    Inbound,
    /// Signs outbound shared access signatures (receiving from the inbox).
    Outbound,
    /// Group enrollment: devices prove `HMAC-SHA256(enrollment key, device id)`.
    Enrollment,
    /// Signs device tokens; not versioned, so rotating SAS keys does not log devices out.
    DeviceTokens,
}

impl KeyPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            KeyPurpose::Inbound => b"inbound",
            KeyPurpose::Outbound => b"outbound",
            KeyPurpose::Enrollment => b"enrollment",
            KeyPurpose::DeviceTokens => b"device-tokens",
        }
    }
}

pub(crate) fn mac(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    }
}

/// The root secret every endpoint key is derived from.
pub struct GatewaySecret {
    secret: [u8; 32],
}

impl std::fmt::Debug for GatewaySecret {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewaySecret(..)")
    }
}

impl GatewaySecret {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(GATEWAY_SECRET_FILE)
    }

    /// Reads the secret, creating it (owner-only) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, GatewayError> {
        let path = Self::path(data_dir);
        let io = |e: std::io::Error| {
            GatewayError::internal(format!("gateway secret {}: {e}", path.display()))
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = STANDARD.decode(text.trim()).map_err(|_| {
                    GatewayError::internal(format!("{} is not base64", path.display()))
                })?;
                let secret: [u8; 32] = bytes.try_into().map_err(|_| {
                    GatewayError::internal(format!("{} does not hold 32 bytes", path.display()))
                })?;
                Ok(GatewaySecret { secret })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Written to a temporary file and linked into place, so that a crash never leaves
                // a half-written secret and a concurrent first start keeps the winner's secret.
                let secret = mh_auth::secret::random_bytes();
                let temporary = path.with_extension(format!("tmp{}", std::process::id()));
                let mut options = fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(&temporary).map_err(io)?;
                file.write_all(STANDARD.encode(secret).as_bytes())
                    .map_err(io)?;
                file.sync_all().map_err(io)?;
                let linked = fs::hard_link(&temporary, &path);
                let _ = fs::remove_file(&temporary);
                match linked {
                    Ok(()) => Ok(GatewaySecret { secret }),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(data_dir)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    #[cfg(test)]
    pub(crate) fn fixed(secret: [u8; 32]) -> Self {
        GatewaySecret { secret }
    }

    /// The key of `endpoint` for `purpose` at `version`.
    pub fn derive(&self, purpose: KeyPurpose, endpoint: Uuid, version: i64) -> [u8; 32] {
        let mut mac = mac(&self.secret);
        mac.update(purpose.label());
        mac.update(b"|");
        mac.update(endpoint.as_bytes());
        mac.update(b"|");
        mac.update(&version.to_be_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// `base64(HMAC-SHA256(enrollment key, device id))`: what a device registering under the `key`
/// policy presents. Also what an operator computes to provision a device.
pub fn enrollment_proof(enrollment_key: &[u8], device_id: &str) -> String {
    let mut mac = mac(enrollment_key);
    mac.update(device_id.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a presented proof in constant time.
pub(crate) fn verify_enrollment_proof(enrollment_key: &[u8], device_id: &str, proof: &str) -> bool {
    let Ok(presented) = STANDARD.decode(proof.trim()) else {
        return false;
    };
    let mut mac = mac(enrollment_key);
    mac.update(device_id.as_bytes());
    mac.verify_slice(&presented).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose_endpoint_and_version() {
        let secret = GatewaySecret::fixed([7; 32]);
        let endpoint = Uuid::new_v4();
        let a = secret.derive(KeyPurpose::Inbound, endpoint, 1);
        assert_eq!(a, secret.derive(KeyPurpose::Inbound, endpoint, 1));
        assert_ne!(a, secret.derive(KeyPurpose::Outbound, endpoint, 1));
        assert_ne!(a, secret.derive(KeyPurpose::Inbound, endpoint, 2));
        assert_ne!(a, secret.derive(KeyPurpose::Inbound, Uuid::new_v4(), 1));
    }

    #[test]
    fn the_secret_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = Uuid::new_v4();
        let first = GatewaySecret::load_or_create(dir.path()).unwrap();
        let second = GatewaySecret::load_or_create(dir.path()).unwrap();
        assert_eq!(
            first.derive(KeyPurpose::Inbound, endpoint, 1),
            second.derive(KeyPurpose::Inbound, endpoint, 1)
        );
    }

    #[test]
    fn enrollment_proofs_verify() {
        let key = [3u8; 32];
        let proof = enrollment_proof(&key, "sensor-1");
        assert!(verify_enrollment_proof(&key, "sensor-1", &proof));
        assert!(!verify_enrollment_proof(&key, "sensor-2", &proof));
        assert!(!verify_enrollment_proof(&key, "sensor-1", "garbage!"));
    }
}
