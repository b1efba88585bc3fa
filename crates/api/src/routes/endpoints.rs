//! Endpoints: secured gates for external systems, with their shared access signatures,
//! authorized routes, restrictions and registration policy.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use mh_gateway::{EndpointEntry, Gateway};
use mh_store::{Direction, Endpoint, Registration, Route};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use super::channels::resolve_channel;
use super::environments::resolve_environment;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Json};
use crate::state::AppState;

/// Protocols the gateway speaks today; WebSocket and MQTT adapters will add theirs.
const PROTOCOLS: &[&str] = &["http"];
/// Most endpoints one assign request creates.
const MAX_ASSIGN: u32 = 1000;
/// Signatures of endpoints without an expiry are handed out valid for this long; rotation is how
/// they are revoked earlier.
const SIGNATURE_LIFETIME: Duration = Duration::days(365);

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    /// Channel identifier or name.
    channel: String,
    /// Environment identifier or name.
    environment: String,
    /// `in` (endpoint → channel) or `out` (channel → endpoint).
    direction: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignRequest {
    /// How many endpoints to create (1-1000) [default: 1].
    count: Option<u32>,
    /// A `{0}` in the name becomes the endpoint's identifier, making each name unique.
    name: String,
    /// [default: `["http"]`]
    protocols_in: Option<Vec<String>>,
    /// [default: `["http"]`]
    protocols_out: Option<Vec<String>>,
    #[serde(default)]
    routes: Vec<RouteSpec>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
    /// Origins (`https://app.example.com`) allowed to call the endpoint from a browser.
    #[serde(default)]
    allowed_origins: Vec<String>,
    /// `open` [default], `key` or `disabled`.
    registration: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteView {
    channel: Uuid,
    channel_name: String,
    environment: Uuid,
    environment_name: String,
    direction: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct ProtocolUri {
    protocol: String,
    /// Where to send (`in`) or receive (`out`) with this protocol.
    uri: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Protocols {
    #[serde(rename = "in")]
    inbound: Vec<ProtocolUri>,
    #[serde(rename = "out")]
    outbound: Vec<ProtocolUri>,
}

#[derive(Serialize, ToSchema)]
pub struct Signatures {
    /// Authorizes sending: `Authorization: SharedAccessSignature sr=..&sig=..&se=..&skn=inbound`.
    inbound: String,
    /// Authorizes receiving from the endpoint's inbox.
    outbound: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Restrictions {
    allowed_origins: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    identifier: Uuid,
    name: String,
    protocols: Protocols,
    signatures: Signatures,
    routes: Vec<RouteView>,
    restrictions: Restrictions,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// `open`, `key` or `disabled`.
    registration: &'static str,
    /// Base64 key for device key proofs, `base64(HMAC-SHA256(key, deviceId))`. Shown only by
    /// `GET /endpoints/{id}` and after a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    enrollment_key: Option<String>,
}

fn view(gateway: &Gateway, entry: &EndpointEntry, with_enrollment_key: bool) -> EndpointView {
    let endpoint = &entry.endpoint;
    let expiry = endpoint
        .expires_at
        .unwrap_or_else(|| OffsetDateTime::now_utc() + SIGNATURE_LIFETIME)
        .unix_timestamp();
    let uri = format!(
        "{}{}",
        gateway.config().public_url,
        Gateway::message_path(endpoint.id)
    );
    let uris = |protocols: &[String]| {
        protocols
            .iter()
            .map(|protocol| ProtocolUri {
                protocol: protocol.clone(),
                uri: uri.clone(),
            })
            .collect()
    };
    EndpointView {
        identifier: endpoint.id,
        name: endpoint.name.clone(),
        protocols: Protocols {
            inbound: uris(&endpoint.protocols_in),
            outbound: uris(&endpoint.protocols_out),
        },
        signatures: Signatures {
            inbound: gateway.signature(entry, Direction::In, expiry),
            outbound: gateway.signature(entry, Direction::Out, expiry),
        },
        routes: entry
            .routes
            .iter()
            .map(|r| RouteView {
                channel: r.channel,
                channel_name: r.channel_name.clone(),
                environment: r.environment,
                environment_name: r.environment_name.clone(),
                direction: r.direction.as_str(),
            })
            .collect(),
        restrictions: Restrictions {
            allowed_origins: endpoint.allowed_origins.clone(),
        },
        expires_at: endpoint.expires_at,
        created_at: endpoint.created_at,
        registration: endpoint.registration.as_str(),
        enrollment_key: with_enrollment_key.then(|| gateway.enrollment_key(entry)),
    }
}

fn protocols(requested: Option<Vec<String>>, field: &str) -> ApiResult<Vec<String>> {
    let requested = requested.unwrap_or_else(|| vec!["http".to_string()]);
    let mut protocols = Vec::with_capacity(requested.len());
    for protocol in requested {
        let protocol = protocol.to_ascii_lowercase();
        if !PROTOCOLS.contains(&protocol.as_str()) {
            return Err(ApiError::bad_request(
                "unsupported_protocol",
                format!(
                    "{field}: protocol {protocol:?} is not supported; use one of {PROTOCOLS:?}"
                ),
            ));
        }
        if !protocols.contains(&protocol) {
            protocols.push(protocol);
        }
    }
    Ok(protocols)
}

fn validate_origin(origin: &str) -> ApiResult<()> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let valid = rest.is_some_and(|host| {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    });
    if !valid {
        return Err(ApiError::bad_request(
            "invalid_origin",
            format!("allowed origin {origin:?} must be scheme://host[:port], e.g. https://app.example.com, without a path"),
        ));
    }
    Ok(())
}

async fn resolve_route(state: &AppState, account: Uuid, spec: &RouteSpec) -> ApiResult<Route> {
    let direction = Direction::parse(&spec.direction).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_direction",
            format!(
                "route direction {:?} must be \"in\" or \"out\"",
                spec.direction
            ),
        )
    })?;
    Ok(Route {
        channel_id: resolve_channel(state, account, &spec.channel).await?.id,
        environment_id: resolve_environment(state, account, &spec.environment)
            .await?
            .id,
        direction,
    })
}

#[utoipa::path(post, path = "/endpoints/assign", tag = "endpoints", security(("bearer" = [])),
    request_body = AssignRequest,
    responses(
        (status = 201, description = "The created endpoints", body = [EndpointView]),
        (status = 400, description = "Invalid count, name, protocol, direction, origin, policy or expiry", body = ErrorBody),
        (status = 404, description = "A route names an unknown channel or environment", body = ErrorBody),
    ))]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<AssignRequest>,
) -> ApiResult<(StatusCode, axum::Json<Vec<EndpointView>>)> {
    let count = request.count.unwrap_or(1);
    if !(1..=MAX_ASSIGN).contains(&count) {
        return Err(ApiError::bad_request(
            "invalid_count",
            format!("count must be between 1 and {MAX_ASSIGN}"),
        ));
    }
    if request.name.trim().is_empty() || request.name.len() > 200 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "the endpoint name must be 1 to 200 characters",
        ));
    }
    let protocols_in = protocols(request.protocols_in, "protocolsIn")?;
    let protocols_out = protocols(request.protocols_out, "protocolsOut")?;
    for origin in &request.allowed_origins {
        validate_origin(origin)?;
    }
    let registration = match request.registration.as_deref() {
        None => Registration::Open,
        Some(text) => Registration::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_registration",
                format!("registration {text:?} must be open, key or disabled"),
            )
        })?,
    };
    let now = OffsetDateTime::now_utc();
    if request.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "expiresAt must be in the future",
        ));
    }
    let mut routes = Vec::with_capacity(request.routes.len());
    for spec in &request.routes {
        routes.push(resolve_route(&state, caller.account, spec).await?);
    }
    let endpoints: Vec<Endpoint> = (0..count)
        .map(|_| {
            let id = Uuid::new_v4();
            Endpoint {
                id,
                account_id: caller.account,
                name: request.name.replace("{0}", &id.to_string()),
                protocols_in: protocols_in.clone(),
                protocols_out: protocols_out.clone(),
                routes: routes.clone(),
                allowed_origins: request.allowed_origins.clone(),
                registration,
                key_version: 1,
                expires_at: request.expires_at,
                created_at: now,
            }
        })
        .collect();
    state.store.create_endpoints(&endpoints).await?;
    let mut views = Vec::with_capacity(endpoints.len());
    for endpoint in &endpoints {
        let entry = state.gateway.endpoint(endpoint.id).await?;
        views.push(view(&state.gateway, &entry, false));
    }
    Ok((StatusCode::CREATED, axum::Json(views)))
}

#[derive(Deserialize, ToSchema)]
pub struct QuickEndpointRequest {
    /// `http`.
    protocol: String,
    /// Channel identifier or name.
    channel: String,
    /// Environment identifier or name.
    environment: String,
}

#[derive(Serialize, ToSchema)]
pub struct QuickEndpoint {
    identifier: Uuid,
    protocol: String,
    /// The server's public URL; `host` + `path` is the message URI.
    host: String,
    path: String,
}

#[utoipa::path(post, path = "/endpoints", tag = "endpoints", security(("bearer" = [])),
    request_body(content = QuickEndpointRequest, content_type = "application/json",
        description = "Also accepted as application/x-www-form-urlencoded."),
    responses(
        (status = 201, description = "A new endpoint with an inbound and outbound route", body = QuickEndpoint),
        (status = 200, description = "The caller's existing endpoint for that channel and environment", body = QuickEndpoint),
        (status = 404, description = "Unknown channel or environment", body = ErrorBody),
        (status = 415, description = "Body is neither JSON nor form-encoded", body = ErrorBody),
    ))]
pub async fn quick(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<(StatusCode, axum::Json<QuickEndpoint>)> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let request: QuickEndpointRequest = match media_type.as_str() {
        "application/json" => serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request("invalid_body", format!("the body is not valid: {e}"))
        })?,
        "application/x-www-form-urlencoded" => {
            serde_urlencoded::from_bytes(&body).map_err(|e| {
                ApiError::bad_request("invalid_body", format!("the form is not valid: {e}"))
            })?
        }
        _ => {
            return Err(ApiError::unsupported_media_type(
                "send the request as application/json or application/x-www-form-urlencoded",
            ))
        }
    };
    let protocol = protocols(Some(vec![request.protocol]), "protocol")?.remove(0);
    let channel = resolve_channel(&state, caller.account, &request.channel).await?;
    let environment = resolve_environment(&state, caller.account, &request.environment).await?;
    let wanted = [Direction::In, Direction::Out].map(|direction| Route {
        channel_id: channel.id,
        environment_id: environment.id,
        direction,
    });
    let now = OffsetDateTime::now_utc();
    let existing = state
        .store
        .endpoints_of(caller.account)
        .await?
        .into_iter()
        .find(|e| {
            !e.is_expired(now)
                && e.protocols_in.contains(&protocol)
                && e.protocols_out.contains(&protocol)
                && wanted.iter().all(|r| e.routes.contains(r))
        });
    let (status, id) = match existing {
        Some(endpoint) => (StatusCode::OK, endpoint.id),
        None => {
            let endpoint = Endpoint {
                id: Uuid::new_v4(),
                account_id: caller.account,
                name: format!("{}-{}", channel.name, environment.name),
                protocols_in: vec![protocol.clone()],
                protocols_out: vec![protocol.clone()],
                routes: wanted.to_vec(),
                allowed_origins: Vec::new(),
                registration: Registration::Open,
                key_version: 1,
                expires_at: None,
                created_at: now,
            };
            state
                .store
                .create_endpoints(std::slice::from_ref(&endpoint))
                .await?;
            (StatusCode::CREATED, endpoint.id)
        }
    };
    Ok((
        status,
        axum::Json(QuickEndpoint {
            identifier: id,
            protocol,
            host: state.gateway.config().public_url.clone(),
            path: Gateway::message_path(id),
        }),
    ))
}

#[utoipa::path(get, path = "/endpoints", tag = "endpoints", security(("bearer" = [])),
    responses((status = 200, description = "The caller's endpoints", body = [EndpointView])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<EndpointView>>> {
    let endpoints = state.store.endpoints_of(caller.account).await?;
    let mut views = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let entry = state.gateway.endpoint(endpoint.id).await?;
        views.push(view(&state.gateway, &entry, false));
    }
    Ok(axum::Json(views))
}

/// Parses an endpoint id from a path; a malformed one is as unknown as a missing one.
pub(crate) fn endpoint_id(text: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| ApiError::not_found(format!("endpoint {text} not found")))
}

#[utoipa::path(get, path = "/endpoints/{id}", tag = "endpoints", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint identifier")),
    responses(
        (status = 200, description = "Details, with signatures and the enrollment key", body = EndpointView),
        (status = 404, description = "Unknown, or someone else's", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<EndpointView>> {
    let entry = state
        .gateway
        .owned_endpoint(endpoint_id(&id)?, caller.account)
        .await?;
    Ok(axum::Json(view(&state.gateway, &entry, true)))
}

#[utoipa::path(post, path = "/endpoints/{id}/keys/rotate", tag = "endpoints", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint identifier")),
    responses(
        (status = 200, description = "New signatures and enrollment key; the old ones stop working", body = EndpointView),
        (status = 404, description = "Unknown, or someone else's", body = ErrorBody),
    ))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<EndpointView>> {
    let id = endpoint_id(&id)?;
    state.gateway.owned_endpoint(id, caller.account).await?;
    state.store.rotate_endpoint_keys(id).await?;
    state.gateway.invalidate_endpoint(id);
    let entry = state.gateway.endpoint(id).await?;
    Ok(axum::Json(view(&state.gateway, &entry, true)))
}

#[utoipa::path(delete, path = "/endpoints/{id}", tag = "endpoints", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint identifier")),
    responses(
        (status = 204, description = "Deleted with its devices and inbox"),
        (status = 404, description = "Unknown, or someone else's", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = endpoint_id(&id)?;
    state.gateway.owned_endpoint(id, caller.account).await?;
    state.store.delete_endpoint(id).await?;
    state.gateway.invalidate_endpoint(id);
    state
        .gateway
        .inboxes()
        .purge(id)
        .await
        .map_err(mh_gateway::GatewayError::from)?;
    Ok(StatusCode::NO_CONTENT)
}
