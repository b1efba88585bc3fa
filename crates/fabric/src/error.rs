//! The one error type of the fabric's control surface (configuring, deploying, inspecting).
//! Faults of running handlers are not errors of this kind: they go to the channel's log stream
//! and the handler's status.

use thiserror::Error;

/// What kind of failure, so that the API maps it to a status once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong; the message says how to fix it.
    Invalid,
    /// A referenced resource does not exist or belongs to someone else.
    NotFound,
    /// The request clashes with the current state (a taken name, a version not accepted).
    Conflict,
    /// A bug or an unavailable store.
    Internal,
}

#[derive(Debug, Error)]
#[error("{message}")]
pub struct FabricError {
    pub kind: ErrorKind,
    /// Machine-readable, e.g. `invalid_configuration`.
    pub code: &'static str,
    pub message: String,
}

impl FabricError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        FabricError {
            kind: ErrorKind::Invalid,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        FabricError {
            kind: ErrorKind::NotFound,
            code: "not_found",
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        FabricError {
            kind: ErrorKind::Conflict,
            code,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        FabricError {
            kind: ErrorKind::Internal,
            code: "internal_error",
            message: message.into(),
        }
    }
}

impl From<mh_store::StoreError> for FabricError {
    fn from(error: mh_store::StoreError) -> Self {
        match error {
            mh_store::StoreError::Conflict(message) => FabricError::conflict("conflict", message),
            other => FabricError::internal(format!("the metadata store failed: {other}")),
        }
    }
}

impl From<mh_log::LogError> for FabricError {
    fn from(error: mh_log::LogError) -> Self {
        FabricError::internal(format!("the message log failed: {error}"))
    }
}

impl From<mh_blobs::BlobError> for FabricError {
    fn from(error: mh_blobs::BlobError) -> Self {
        FabricError::internal(format!("the blob store failed: {error}"))
    }
}

pub type Result<T, E = FabricError> = std::result::Result<T, E>;
