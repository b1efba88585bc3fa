//! Failures of the gateway, each with the HTTP-independent kind the API maps to a status.

use std::time::Duration;

/// What kind of failure, in protocol-neutral terms (HTTP, WebSocket and MQTT adapters map it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    /// Missing or invalid credentials.
    Unauthorized,
    /// Valid credentials that do not allow this.
    Forbidden,
    /// Unknown, expired, or someone else's.
    NotFound,
    Conflict,
    TooManyRequests {
        retry_after: Duration,
    },
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct GatewayError {
    pub kind: ErrorKind,
    /// Machine-readable code for the `error` field.
    pub code: &'static str,
    pub message: String,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, "unauthorized", message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "internal_error", message)
    }
}

impl From<mh_store::StoreError> for GatewayError {
    fn from(error: mh_store::StoreError) -> Self {
        match error {
            mh_store::StoreError::NotFound(what) => {
                GatewayError::not_found(format!("{what} not found"))
            }
            mh_store::StoreError::Conflict(message) => {
                GatewayError::new(ErrorKind::Conflict, "conflict", message)
            }
            other => GatewayError::internal(other.to_string()),
        }
    }
}

impl From<mh_log::LogError> for GatewayError {
    fn from(error: mh_log::LogError) -> Self {
        match error {
            mh_log::LogError::LockLost => GatewayError::new(
                ErrorKind::NotFound,
                "lock_lost",
                "the lock token is unknown or its lock has expired; the message may have been delivered again",
            ),
            mh_log::LogError::Invalid(message) => {
                GatewayError::bad_request("invalid_message", message)
            }
            other => GatewayError::internal(other.to_string()),
        }
    }
}

pub type Result<T, E = GatewayError> = std::result::Result<T, E>;
