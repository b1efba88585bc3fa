//! Token signing keys, kept in one file of the data directory with owner-only permissions.
//!
//! Every key has an id that tokens carry, so that after a rotation the server signs with the new
//! key while tokens signed with a retired one keep verifying until they expire.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use crate::secret;

/// File name of the key ring inside the data directory.
pub const KEYS_FILE: &str = "signing-keys.json";

/// Retired keys are kept this long: far beyond any sensible access-token lifetime, so that no
/// token outlives the key that verifies it.
const RETIRED_KEY_RETENTION_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read signing keys from {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write signing keys to {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signing key file {path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Clone, Serialize, Deserialize)]
pub struct SigningKey {
    pub id: String,
    #[serde(with = "base64_bytes")]
    secret: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl SigningKey {
    fn generate(now: OffsetDateTime) -> Self {
        let secret = secret::random_bytes().to_vec();
        let id = format!("k{}", now.unix_timestamp_nanos() / 1_000_000);
        SigningKey {
            id,
            secret,
            created_at: now.unix_timestamp(),
            retired_at: None,
        }
    }

    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl std::fmt::Debug for SigningKey {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(KEYS_FILE)
    }

    /// Loads the key ring of `data_dir`, creating it with a first key when there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let path = Self::path(data_dir);
        match fs::read(&path) {
            Ok(bytes) => Self::parse(&path, &bytes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let ring = KeyRing {
                    keys: vec![SigningKey::generate(OffsetDateTime::now_utc())],
                };
                ring.save(&path)?;
                Ok(ring)
            }
            Err(source) => Err(KeyError::Read { path, source }),
        }
    }

    /// Retires the current key, adds a new one and drops keys retired long ago. Returns the new
    /// key's id.
    pub fn rotate(data_dir: &Path) -> Result<String, KeyError> {
        let mut ring = Self::load_or_create(data_dir)?;
        let now = OffsetDateTime::now_utc();
        for key in ring.keys.iter_mut().filter(|k| k.retired_at.is_none()) {
            key.retired_at = Some(now.unix_timestamp());
        }
        ring.keys.retain(|k| match k.retired_at {
            Some(at) => now.unix_timestamp() - at < RETIRED_KEY_RETENTION_SECONDS,
            None => true,
        });
        let mut key = SigningKey::generate(now);
        // Two rotations within one millisecond would otherwise share an id.
        while ring.keys.iter().any(|k| k.id == key.id) {
            key.id.push('x');
        }
        let id = key.id.clone();
        ring.keys.push(key);
        ring.save(&Self::path(data_dir))?;
        Ok(id)
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<Self, KeyError> {
        let ring: KeyRing = serde_json::from_slice(bytes).map_err(|e| KeyError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if ring.current_key().is_none() {
            return Err(KeyError::Invalid {
                path: path.to_path_buf(),
                reason: "it holds no active key".into(),
            });
        }
        Ok(ring)
    }

    /// Writes the ring atomically (temporary file, fsync, rename) with mode 0600.
    fn save(&self, path: &Path) -> Result<(), KeyError> {
        let write_error = |source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| KeyError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let temporary = path.with_extension("json.tmp");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary).map_err(write_error)?;
        file.write_all(&json).map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        fs::rename(&temporary, path).map_err(write_error)?;
        if let Some(dir) = path.parent() {
            // Make the rename itself durable.
            if let Ok(handle) = fs::File::open(dir) {
                handle.sync_all().map_err(write_error)?;
            }
        }
        Ok(())
    }

    fn current_key(&self) -> Option<&SigningKey> {
        self.keys.iter().rev().find(|k| k.retired_at.is_none())
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> &SigningKey {
        // `parse` and the constructors guarantee an active key; fall back to the newest key so
        // that a hand-edited file cannot make signing panic.
        self.current_key()
            .or_else(|| self.keys.last())
            .unwrap_or_else(|| unreachable!("a key ring always holds at least one key"))
    }

    pub fn get(&self, id: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }
}

mod base64_bytes {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_with_owner_only_permissions_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyRing::load_or_create(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(KeyRing::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = KeyRing::load_or_create(dir.path()).unwrap();
        assert_eq!(first.current().id, again.current().id);
        assert_eq!(first.current().secret(), again.current().secret());
    }

    #[test]
    fn rotation_keeps_the_previous_key_for_verification() {
        let dir = tempfile::tempdir().unwrap();
        let old = KeyRing::load_or_create(dir.path())
            .unwrap()
            .current()
            .id
            .clone();
        let new = KeyRing::rotate(dir.path()).unwrap();
        assert_ne!(old, new);
        let ring = KeyRing::load_or_create(dir.path()).unwrap();
        assert_eq!(ring.current().id, new);
        assert!(ring.get(&old).is_some());
    }

    #[test]
    fn a_file_without_active_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(KeyRing::path(dir.path()), br#"{"keys":[]}"#).unwrap();
        let error = KeyRing::load_or_create(dir.path()).unwrap_err();
        assert!(error.to_string().contains("no active key"), "{error}");
    }
}
