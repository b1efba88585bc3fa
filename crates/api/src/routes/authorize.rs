//! `POST /authorize`: the OAuth2 token endpoint (client credentials and refresh token grants),
//! answering exactly the seed's response fields.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mh_auth::{issue_refresh_token, parse_refresh_token, secret, SWT_TOKEN_TYPE};
use mh_store::{Client, RefreshToken};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::state::AppState;

/// Body of a token request. Sent as JSON (field names matched case-insensitively, so the seed's
/// `client_Secret` works) or as `application/x-www-form-urlencoded`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // Exists for the OpenAPI document; the handler reads the fields by name.
pub struct TokenRequest {
    /// `client_credentials` or `refresh_token`.
    grant_type: String,
    client_id: String,
    client_secret: String,
    /// Must equal the server's API scope (default `http://api.messagehandler.net/`).
    scope: Option<String>,
    /// Required for the `refresh_token` grant.
    refresh_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Always `http://schemas.xmlsoap.org/ws/2009/11/swt-token-profile-1.0`.
    token_type: &'static str,
    /// A Simple Web Token; send it as `Authorization: Bearer base64(access_token)`.
    access_token: String,
    scope: String,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Redeem with `grant_type=refresh_token` for a new access token; single use.
    refresh_token: String,
}

fn oauth_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message).oauth()
}

fn invalid_request(message: impl Into<String>) -> ApiError {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn invalid_client() -> ApiError {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed: unknown client_id, wrong client_secret, or a revoked client",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"MessageHandler\""),
    )
}

fn invalid_grant(message: impl Into<String>) -> ApiError {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", message)
}

fn too_many_requests(wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    oauth_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        format!("too many token requests; retry in {seconds} s"),
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
}

/// Request parameters with lowercase names.
struct Parameters(HashMap<String, String>);

impl Parameters {
    fn parse(headers: &HeaderMap, body: &[u8]) -> ApiResult<Self> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let pairs: Vec<(String, String)> = match media_type.as_str() {
            "application/json" => {
                let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
                    .map_err(|e| invalid_request(format!("the body is not a JSON object: {e}")))?;
                object
                    .into_iter()
                    .map(|(name, value)| match value {
                        serde_json::Value::String(text) => Ok((name, text)),
                        other => Err(invalid_request(format!(
                            "parameter {name} must be a string, not {other}"
                        ))),
                    })
                    .collect::<ApiResult<_>>()?
            }
            "application/x-www-form-urlencoded" => serde_urlencoded::from_bytes(body)
                .map_err(|e| invalid_request(format!("the form body cannot be parsed: {e}")))?,
            _ => {
                return Err(oauth_error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!(
                        "Content-Type {content_type:?} is not supported: send application/json or application/x-www-form-urlencoded"
                    ),
                ))
            }
        };
        Ok(Parameters(
            pairs
                .into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect(),
        ))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn require(&self, name: &str) -> ApiResult<&str> {
        self.get(name)
            .ok_or_else(|| invalid_request(format!("the {name} parameter is required")))
    }
}

/// Client credentials from the body, or from HTTP Basic authentication (RFC 6749 §2.3.1).
fn client_credentials(headers: &HeaderMap, parameters: &Parameters) -> ApiResult<(String, String)> {
    if let (Some(id), Some(secret)) = (parameters.get("client_id"), parameters.get("client_secret"))
    {
        return Ok((id.to_string(), secret.to_string()));
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok());
    if let Some((id, secret)) = basic.as_deref().and_then(|text| text.split_once(':')) {
        return Ok((id.to_string(), secret.to_string()));
    }
    parameters.require("client_id")?;
    parameters.require("client_secret")?;
    Err(invalid_request("client_id and client_secret are required"))
}

/// A hash no secret maps to, compared against when the client is unknown so that unknown and
/// known clients take the same time to refuse.
const NO_SECRET_HASH: [u8; 32] = [0; 32];

async fn authenticate_client(state: &AppState, id: &str, secret_text: &str) -> ApiResult<Client> {
    let client = match Uuid::parse_str(id) {
        Ok(id) => state.store.client(id).await?,
        Err(_) => None,
    };
    let stored_hash = client
        .as_ref()
        .map_or(&NO_SECRET_HASH[..], |c| &c.secret_hash[..]);
    let secret_matches = secret::verify(secret_text, stored_hash);
    match client {
        Some(client) if secret_matches && client.revoked_at.is_none() => Ok(client),
        _ => Err(invalid_client()),
    }
}

#[utoipa::path(
    post,
    path = "/authorize",
    tag = "auth",
    request_body(content = TokenRequest, content_type = "application/json",
        description = "Also accepted as application/x-www-form-urlencoded."),
    responses(
        (status = 200, description = "Access token issued", body = TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant, invalid_scope or unsupported_grant_type", body = ErrorBody),
        (status = 401, description = "invalid_client", body = ErrorBody),
        (status = 415, description = "Body is neither JSON nor form-encoded", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
    )
)]
pub async fn authorize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<impl IntoResponse> {
    state
        .limiter
        .check_ip(peer.ip())
        .map_err(too_many_requests)?;
    let parameters = Parameters::parse(&headers, &body)?;
    let grant_type = parameters.require("grant_type")?;
    if grant_type != "client_credentials" && grant_type != "refresh_token" {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("grant_type {grant_type:?} is not supported: use client_credentials or refresh_token"),
        ));
    }
    let (client_id, client_secret) = client_credentials(&headers, &parameters)?;
    state
        .limiter
        .check_client(&client_id)
        .map_err(too_many_requests)?;

    let scope = parameters.get("scope").unwrap_or(&state.config.scope);
    if scope != state.config.scope {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!(
                "scope {scope:?} is not granted by this server; use {:?}",
                state.config.scope
            ),
        ));
    }

    let client = authenticate_client(&state, &client_id, &client_secret).await?;
    let now = OffsetDateTime::now_utc();
    let issued_refresh = issue_refresh_token();
    let refresh = RefreshToken {
        id: issued_refresh.id,
        secret_hash: issued_refresh.secret_hash.to_vec(),
        client_id: client.client_id,
        account_id: client.account_id,
        created_at: now,
        expires_at: now + state.config.refresh_token_lifetime,
        revoked_at: None,
    };

    if grant_type == "refresh_token" {
        let presented = parameters.require("refresh_token")?;
        let stored = match parse_refresh_token(presented) {
            Some((id, secret_hash)) => state
                .store
                .refresh_token(id)
                .await?
                .filter(|t| bool::from(t.secret_hash.ct_eq(&secret_hash))),
            None => None,
        };
        let usable = stored.filter(|t| {
            t.client_id == client.client_id && t.revoked_at.is_none() && t.expires_at > now
        });
        let redeemed = match usable {
            Some(token) => {
                state
                    .store
                    .rotate_refresh_token(token.id, &refresh, now)
                    .await?
            }
            None => false,
        };
        if !redeemed {
            return Err(invalid_grant(
                "the refresh token is unknown, expired, already used, revoked, or belongs to another client",
            ));
        }
    } else {
        state.store.insert_refresh_token(&refresh).await?;
    }

    let lifetime = state.config.access_token_lifetime;
    let expires_on =
        now.unix_timestamp() + i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
    let access_token = state
        .tokens
        .issue(client.account_id, client.client_id, expires_on);
    let response = TokenResponse {
        token_type: SWT_TOKEN_TYPE,
        access_token,
        scope: state.config.scope.clone(),
        expires_in: lifetime.as_secs(),
        refresh_token: issued_refresh.value,
    };
    Ok((
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        axum::Json(response),
    ))
}
