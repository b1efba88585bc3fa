//! Blob storage: immutable byte strings addressed by their SHA-256.
//!
//! Handler packages live here, and the gateway's claim checks will. Content addressing makes a
//! write idempotent (the same bytes always land at the same address) and lets every read verify
//! what it returns. [`FsBlobStore`] is the embedded implementation on the data directory; a NATS
//! object store implements the same trait for multi-node installations.

mod digest;
mod fs;

use async_trait::async_trait;
use thiserror::Error;

pub use digest::Digest;
pub use fs::FsBlobStore;

#[derive(Debug, Error)]
pub enum BlobError {
    #[error("blob storage failure at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// What is stored no longer hashes to its address: the storage is damaged.
    #[error("blob {0} is corrupt: its content does not match its address")]
    Corrupt(Digest),
    #[error("blob storage failure: {0}")]
    Task(String),
}

pub type Result<T, E = BlobError> = std::result::Result<T, E>;

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` durably and returns their address. Storing the same bytes again is a no-op.
    async fn put(&self, bytes: Vec<u8>) -> Result<Digest>;
    /// The bytes at `digest`, verified, or `None` when there are none.
    async fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>>;
    async fn exists(&self, digest: &Digest) -> Result<bool>;
    /// Removes the blob; answers whether there was one.
    async fn delete(&self, digest: &Digest) -> Result<bool>;
}
