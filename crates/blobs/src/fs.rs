//! Blobs as files: `<root>/sha256/ab/cdef…` (the first two hex digits shard the directory).
//!
//! A blob is written to a temporary file in `<root>/tmp`, fsynced, renamed into place and the
//! directory fsynced, so a crash leaves either the whole blob or nothing at its address.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::{BlobError, BlobStore, Digest, Result};

pub struct FsBlobStore {
    root: PathBuf,
}

/// Distinguishes temporary files of concurrent writes within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn sync_dir(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(path))
}

impl FsBlobStore {
    /// A store under `root` (e.g. `<data>/blobs`), created on first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsBlobStore { root: root.into() }
    }

    fn path_of(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join("sha256").join(&hex[..2]).join(&hex[2..])
    }

    fn write(root: &Path, target: &Path, bytes: &[u8]) -> Result<()> {
        let temp_dir = root.join("tmp");
        std::fs::create_dir_all(&temp_dir).map_err(io_error(&temp_dir))?;
        let temp = temp_dir.join(format!(
            "{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(source) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(io_error(&temp)(source));
        }
        let Some(shard) = target.parent() else {
            return Err(BlobError::Task(format!(
                "{} has no directory",
                target.display()
            )));
        };
        let shard_existed = shard.is_dir();
        if let Err(source) = std::fs::create_dir_all(shard) {
            let _ = std::fs::remove_file(&temp);
            return Err(io_error(shard)(source));
        }
        if let Err(source) = std::fs::rename(&temp, target) {
            let _ = std::fs::remove_file(&temp);
            return Err(io_error(target)(source));
        }
        sync_dir(shard)?;
        if !shard_existed {
            // A new shard directory is itself an entry in its parent.
            if let Some(parent) = shard.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::Task(e.to_string()))?
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, bytes: Vec<u8>) -> Result<Digest> {
        let root = self.root.clone();
        let digest = Digest::of(&bytes);
        let target = self.path_of(&digest);
        blocking(move || {
            // Same address, same bytes: an existing blob is the result of an earlier put.
            if !target.exists() {
                FsBlobStore::write(&root, &target, &bytes)?;
            }
            Ok(digest)
        })
        .await
    }

    async fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let path = self.path_of(digest);
        let expected = *digest;
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) if Digest::of(&bytes) == expected => Ok(Some(bytes)),
            Ok(_) => Err(BlobError::Corrupt(expected)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path)(e)),
        })
        .await
    }

    async fn exists(&self, digest: &Digest) -> Result<bool> {
        let path = self.path_of(digest);
        blocking(move || path.try_exists().map_err(io_error(&path))).await
    }

    async fn delete(&self, digest: &Digest) -> Result<bool> {
        let path = self.path_of(digest);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(&path)(e)),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_exists_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path().join("blobs"));
        let digest = store.put(b"package".to_vec()).await.unwrap();
        assert_eq!(digest, Digest::of(b"package"));
        let hex = digest.to_hex();
        assert!(dir
            .path()
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(&hex[2..])
            .is_file());
        assert_eq!(store.put(b"package".to_vec()).await.unwrap(), digest);
        assert_eq!(store.get(&digest).await.unwrap().unwrap(), b"package");
        assert!(store.exists(&digest).await.unwrap());
        assert!(store.delete(&digest).await.unwrap());
        assert!(!store.delete(&digest).await.unwrap());
        assert!(store.get(&digest).await.unwrap().is_none());
        assert!(!store.exists(&digest).await.unwrap());
        // No temporary files are left behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/tmp"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn damaged_blobs_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path());
        let digest = store.put(b"original".to_vec()).await.unwrap();
        let hex = digest.to_hex();
        std::fs::write(
            dir.path().join("sha256").join(&hex[..2]).join(&hex[2..]),
            b"x",
        )
        .unwrap();
        assert!(matches!(
            store.get(&digest).await,
            Err(BlobError::Corrupt(_))
        ));
    }
}
