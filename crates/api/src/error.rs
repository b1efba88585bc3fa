//! The one place where failures become HTTP responses.
//!
//! Every error body is JSON: `{"error": "<code>", "message": "<human text>"}`. OAuth errors of the
//! token endpoint also carry `error_description` (RFC 6749 §5.2).

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mh_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `invalid_client`, `not_found`.
    pub error: String,
    /// What was wrong and how to fix it.
    pub message: String,
    /// Same as `message`; present on OAuth errors of `POST /authorize`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    oauth: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            oauth: false,
            headers: Vec::new(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// Marks the error as an OAuth error, which adds `error_description`.
    pub fn oauth(mut self) -> Self {
        self.oauth = true;
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), code = self.code, message = %self.message, "request failed");
        }
        let body = ErrorBody {
            error: self.code.to_string(),
            error_description: self.oauth.then(|| self.message.clone()),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        if self.oauth {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<mh_package::PackageError> for ApiError {
    fn from(error: mh_package::PackageError) -> Self {
        use mh_package::PackageError;
        let message = error.to_string();
        match error {
            PackageError::InvalidVersion { .. } => {
                ApiError::bad_request("invalid_version", message)
            }
            PackageError::NotAZip(_)
            | PackageError::UnsafeEntry { .. }
            | PackageError::TooManyEntries { .. }
            | PackageError::TooLarge { .. } => ApiError::bad_request("invalid_package", message),
            PackageError::MissingManifest | PackageError::InvalidManifest(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_manifest",
                message,
            ),
            PackageError::MissingComponent { .. } | PackageError::InvalidComponent { .. } => {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_component",
                    message,
                )
            }
            // Reading local files is what the CLI does; on the server it is a bug.
            PackageError::Io { .. } | PackageError::Engine(_) => ApiError::internal(message),
        }
    }
}

impl From<mh_blobs::BlobError> for ApiError {
    fn from(error: mh_blobs::BlobError) -> Self {
        ApiError::internal(error.to_string())
    }
}

impl From<mh_gateway::GatewayError> for ApiError {
    fn from(error: mh_gateway::GatewayError) -> Self {
        use mh_gateway::ErrorKind;
        let status = match error.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut mapped = ApiError::new(status, error.code, error.message);
        if let ErrorKind::TooManyRequests { retry_after } = error.kind {
            mapped = mapped.with_header(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs()),
            );
        }
        mapped
    }
}

impl From<mh_fabric::FabricError> for ApiError {
    fn from(error: mh_fabric::FabricError) -> Self {
        use mh_fabric::ErrorKind;
        let status = match error.kind {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, error.code, error.message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
