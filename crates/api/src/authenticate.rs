//! Bearer authentication for every protected route, as one extractor.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use mh_auth::decode_bearer;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The account (and client) a request acts for, proven by `Authorization: Bearer <token>` where the
/// token is the access token itself or its base64 encoding (as the seed clients send it).
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub account: Uuid,
    pub client_id: Uuid,
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    let message = message.into();
    // Quotes would end the header's quoted string; the JSON body keeps the full text.
    let description = message.replace('"', "'");
    let challenge = HeaderValue::from_str(&format!(
        "Bearer realm=\"MessageHandler\", error=\"invalid_token\", error_description=\"{description}\""
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""));
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", message)
        .with_header(header::WWW_AUTHENTICATE, challenge)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("an access token is required: send Authorization: Bearer <token> (get one at POST /authorize)"))?;
        let value = value
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not valid text"))?;
        let (scheme, credentials) = value
            .split_once(' ')
            .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <token>'"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized(format!(
                "the Authorization scheme must be Bearer, not {scheme}"
            )));
        }
        let token = decode_bearer(credentials).ok_or_else(|| {
            unauthorized("the bearer value is neither an access token nor its base64 encoding")
        })?;
        let claims = state
            .tokens
            .verify(&token, OffsetDateTime::now_utc().unix_timestamp())
            .map_err(|e| unauthorized(e.to_string()))?;
        Ok(Caller {
            account: claims.account,
            client_id: claims.client_id,
        })
    }
}
