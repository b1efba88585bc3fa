//! The one error type of the log.

/// Errors of the message log and inbox traits.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The storage engine failed (I/O, disk full, corruption detected by the engine).
    #[error("message storage failed: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored record could not be decoded; the data directory is damaged or was written by an
    /// incompatible version.
    #[error("corrupt record in the message log: {0}")]
    Corrupt(&'static str),
    /// The lock token is unknown, belongs to another inbox, or its lock expired (the message may
    /// already have been delivered to someone else).
    #[error("the lock token is unknown or its lock has expired")]
    LockLost,
    /// The caller passed something the log cannot store (e.g. an oversized idempotency key).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The log was closed (or its writer stopped after a storage failure).
    #[error("the message log is closed")]
    Closed,
}

/// Result alias of this crate.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

impl From<fjall::Error> for LogError {
    fn from(e: fjall::Error) -> Self {
        LogError::Storage(Box::new(e))
    }
}
