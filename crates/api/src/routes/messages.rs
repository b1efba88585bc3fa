//! The gateway's HTTP adapter: ingress into channels, egress from an endpoint's inbox with lock
//! tokens, dead letters, direct messages to an inbox, and CORS for browser clients.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mh_gateway::{EndpointEntry, Principal, RouteSelector};
use mh_log::{DeadLetter, Delivery, Envelope};
use mh_store::Direction;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::endpoints::endpoint_id;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Json};
use crate::state::AppState;

/// The protocol name of this adapter, as enabled per endpoint.
const PROTOCOL: &str = "http";
/// Headers whose value makes a send idempotent: a retry with the same value stores nothing new.
const IDEMPOTENCY_HEADERS: [&str; 2] = ["x-mh-message-id", "idempotency-key"];
const PROPERTY_PREFIX: &str = "x-mh-property-";
const CHANNEL_HEADER: &str = "x-mh-channel";
const ENVIRONMENT_HEADER: &str = "x-mh-environment";
const DEVICE_HEADER: &str = "x-mh-device";

/// One message as the API shows it. The body is `body` when it is UTF-8 text, else `bodyBase64`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<Uuid>,
    /// RFC 3339 with milliseconds.
    enqueued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    properties: BTreeMap<String, String>,
    partition_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

pub(crate) fn rfc3339_millis(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl From<&Envelope> for MessageView {
    fn from(message: &Envelope) -> Self {
        let (body, body_base64) = match std::str::from_utf8(&message.body) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (None, Some(STANDARD.encode(&message.body))),
        };
        MessageView {
            id: message.id,
            endpoint: message.endpoint,
            device: message.device.clone(),
            channel: message.channel,
            environment: message.environment,
            enqueued_at: rfc3339_millis(message.enqueued_at),
            content_type: message.content_type.clone(),
            properties: message.properties.clone(),
            partition_key: message.partition_key.clone(),
            subject: message.subject.clone(),
            body,
            body_base64,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MessageList {
    pub messages: Vec<MessageView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// Pass to `.../messages/{lockToken}/complete` or `/abandon`.
    lock_token: String,
    /// 1 on the first delivery.
    delivery_count: u32,
    /// RFC 3339: when the message becomes visible to other receivers again.
    locked_until: String,
    message: MessageView,
}

impl From<&Delivery> for DeliveryView {
    fn from(delivery: &Delivery) -> Self {
        DeliveryView {
            lock_token: delivery.lock_token.clone(),
            delivery_count: delivery.delivery_count,
            locked_until: rfc3339_millis(delivery.locked_until),
            message: MessageView::from(&delivery.message),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    messages: Vec<DeliveryView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    reason: String,
    dead_lettered_at: String,
    delivery_count: u32,
    message: MessageView,
}

impl From<&DeadLetter> for DeadLetterView {
    fn from(dead: &DeadLetter) -> Self {
        DeadLetterView {
            reason: dead.reason.clone(),
            dead_lettered_at: rfc3339_millis(dead.dead_lettered_at),
            delivery_count: dead.delivery_count,
            message: MessageView::from(&dead.message),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterList {
    messages: Vec<DeadLetterView>,
}

#[derive(Serialize, ToSchema)]
pub struct RouteReceiptView {
    channel: Uuid,
    environment: Uuid,
    /// One id per message, in request order.
    ids: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct SendReceipt {
    /// Every stored message id: per route, one per message in request order.
    ids: Vec<Uuid>,
    routes: Vec<RouteReceiptView>,
}

#[derive(Serialize, ToSchema)]
pub struct DirectReceipt {
    ids: Vec<Uuid>,
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> ApiResult<Option<&'h str>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request("invalid_header", format!("{name} is not text")))
        })
        .transpose()
}

/// Turns a request into envelopes: a JSON array sent as `application/json` is a batch (one
/// message per element), anything else is one message with its content type kept.
fn envelopes(headers: &HeaderMap, body: Bytes) -> ApiResult<Vec<Envelope>> {
    let content_type = header_text(headers, header::CONTENT_TYPE.as_str())?.map(str::to_string);
    let mut properties = BTreeMap::new();
    for (name, value) in headers {
        if let Some(property) = name.as_str().strip_prefix(PROPERTY_PREFIX) {
            let value = value.to_str().map_err(|_| {
                ApiError::bad_request("invalid_header", format!("{name} is not text"))
            })?;
            properties.insert(property.to_string(), value.to_string());
        }
    }
    let mut idempotency_key = None;
    for name in IDEMPOTENCY_HEADERS {
        if let Some(key) = header_text(headers, name)? {
            if key.is_empty() || key.len() > 200 {
                return Err(ApiError::bad_request(
                    "invalid_message_id",
                    format!("{name} must be 1 to 200 characters"),
                ));
            }
            idempotency_key = Some(key.to_string());
        }
    }
    let is_json = content_type.as_deref().is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    let is_array = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[');
    if !(is_json && is_array) {
        return Ok(vec![Envelope {
            content_type,
            properties,
            idempotency_key,
            body,
            ..Envelope::default()
        }]);
    }
    let elements: Vec<&RawValue> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the batch is not a valid JSON array: {e}"),
        )
    })?;
    if elements.is_empty() {
        return Err(ApiError::bad_request(
            "empty_batch",
            "the batch is an empty JSON array: send at least one message",
        ));
    }
    Ok(elements
        .into_iter()
        .enumerate()
        .map(|(index, element)| Envelope {
            content_type: Some("application/json".to_string()),
            properties: properties.clone(),
            // Each element of a retried batch must map to its own first copy.
            idempotency_key: idempotency_key.as_ref().map(|key| format!("{key}#{index}")),
            body: Bytes::copy_from_slice(element.get().as_bytes()),
            ..Envelope::default()
        })
        .collect())
}

/// Finds a live endpoint and authenticates the caller for `direction`.
async fn data_plane(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    direction: Direction,
) -> ApiResult<(Arc<EndpointEntry>, Principal)> {
    let entry = state.gateway.live_endpoint(endpoint_id(id)?).await?;
    let authorization = header_text(headers, header::AUTHORIZATION.as_str())?;
    let principal = state
        .gateway
        .authenticate(&entry, authorization, direction)
        .await?;
    Ok((entry, principal))
}

#[utoipa::path(post, path = "/endpoints/{id}/messages", tag = "gateway",
    params(
        ("id" = Uuid, Path, description = "Endpoint identifier"),
        ("x-mh-channel" = Option<String>, Header, description = "Only this channel (identifier or name)"),
        ("x-mh-environment" = Option<String>, Header, description = "Only this environment (identifier or name)"),
        ("x-mh-message-id" = Option<String>, Header, description = "Idempotency key (also Idempotency-Key): a retry stores nothing new"),
    ),
    request_body(content = String, content_type = "application/octet-stream",
        description = "Any bytes up to 256 KiB; a JSON array sent as application/json is a batch. x-mh-property-* headers become properties."),
    responses(
        (status = 200, description = "Durably stored", body = SendReceipt),
        (status = 400, description = "Malformed batch or header", body = ErrorBody),
        (status = 401, description = "Missing or invalid signature or token", body = ErrorBody),
        (status = 403, description = "Route not authorized, device disabled, or protocol not enabled", body = ErrorBody),
        (status = 404, description = "Unknown or expired endpoint", body = ErrorBody),
        (status = 413, description = "Larger than 256 KiB", body = ErrorBody),
    ))]
pub async fn send(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<axum::Json<SendReceipt>> {
    let (entry, principal) = data_plane(&state, &id, &headers, Direction::In).await?;
    let selector = RouteSelector {
        channel: header_text(&headers, CHANNEL_HEADER)?.map(str::to_string),
        environment: header_text(&headers, ENVIRONMENT_HEADER)?.map(str::to_string),
    };
    let messages = envelopes(&headers, body)?;
    let receipt = state
        .gateway
        .ingest(&entry, PROTOCOL, &principal, &selector, messages)
        .await?;
    let ids = receipt
        .routes
        .iter()
        .flat_map(|r| r.ids.iter().copied())
        .collect();
    Ok(axum::Json(SendReceipt {
        ids,
        routes: receipt
            .routes
            .into_iter()
            .map(|r| RouteReceiptView {
                channel: r.channel,
                environment: r.environment,
                ids: r.ids,
            })
            .collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct ReceiveQuery {
    /// At most this many messages (1-1000) [default: 1].
    max: Option<usize>,
    /// Seconds to wait when the inbox is empty [default: 0].
    wait: Option<u64>,
}

#[utoipa::path(get, path = "/endpoints/{id}/messages", tag = "gateway",
    params(("id" = Uuid, Path, description = "Endpoint identifier"), ReceiveQuery),
    description = "Outbound signature, device token (that device's messages and undirected ones) or the owner's token.",
    responses(
        (status = 200, description = "Locked messages; empty when none arrived in time", body = DeliveryList),
        (status = 401, description = "Missing or invalid signature or token", body = ErrorBody),
        (status = 404, description = "Unknown or expired endpoint", body = ErrorBody),
    ))]
pub async fn receive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ReceiveQuery>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<DeliveryList>> {
    let (entry, principal) = data_plane(&state, &id, &headers, Direction::Out).await?;
    let deliveries = state
        .gateway
        .receive(
            &entry,
            PROTOCOL,
            &principal,
            query.max.unwrap_or(1),
            Duration::from_secs(query.wait.unwrap_or(0)),
        )
        .await?;
    Ok(axum::Json(DeliveryList {
        messages: deliveries.iter().map(DeliveryView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/endpoints/{id}/messages/{lockToken}/complete", tag = "gateway",
    params(("id" = Uuid, Path), ("lockToken" = String, Path)),
    responses(
        (status = 204, description = "Removed from the inbox"),
        (status = 404, description = "Unknown endpoint, or the lock is unknown or expired (code lock_lost)", body = ErrorBody),
    ))]
pub async fn complete(
    State(state): State<AppState>,
    Path((id, lock_token)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let (entry, _) = data_plane(&state, &id, &headers, Direction::Out).await?;
    state.gateway.complete(&entry, &lock_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Most lock tokens one batch completion may carry.
const MAX_COMPLETIONS: usize = 1000;

/// Lock tokens received from `GET /endpoints/{id}/messages`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteRequest {
    /// 1 to 1000 lock tokens.
    lock_tokens: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CompleteReceipt {
    /// Tokens whose messages were removed from the inbox.
    completed: Vec<String>,
    /// Tokens whose lock was unknown, expired or already used; their messages are (or will be)
    /// delivered again.
    lost: Vec<String>,
}

#[utoipa::path(post, path = "/endpoints/{id}/messages/complete", tag = "gateway",
    params(("id" = Uuid, Path)),
    request_body = CompleteRequest,
    description = "Completes many received messages in one request and one durable commit.",
    responses(
        (status = 200, description = "Which tokens were completed and which locks were lost", body = CompleteReceipt),
        (status = 400, description = "No tokens, or more than 1000", body = ErrorBody),
        (status = 404, description = "Unknown endpoint", body = ErrorBody),
    ))]
pub async fn complete_many(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<CompleteRequest>,
) -> ApiResult<axum::Json<CompleteReceipt>> {
    let count = request.lock_tokens.len();
    if count == 0 || count > MAX_COMPLETIONS {
        return Err(ApiError::bad_request(
            "invalid_lock_tokens",
            format!("lockTokens holds {count} tokens; send 1 to {MAX_COMPLETIONS}"),
        ));
    }
    let (entry, _) = data_plane(&state, &id, &headers, Direction::Out).await?;
    let outcomes = state
        .gateway
        .complete_many(&entry, &request.lock_tokens)
        .await?;
    let mut receipt = CompleteReceipt {
        completed: Vec::with_capacity(count),
        lost: Vec::new(),
    };
    for (token, completed) in request.lock_tokens.into_iter().zip(outcomes) {
        if completed {
            receipt.completed.push(token);
        } else {
            receipt.lost.push(token);
        }
    }
    Ok(axum::Json(receipt))
}

#[utoipa::path(post, path = "/endpoints/{id}/messages/{lockToken}/abandon", tag = "gateway",
    params(("id" = Uuid, Path), ("lockToken" = String, Path)),
    responses(
        (status = 204, description = "Visible again (or dead-lettered after too many deliveries)"),
        (status = 404, description = "Unknown endpoint, or the lock is unknown or expired (code lock_lost)", body = ErrorBody),
    ))]
pub async fn abandon(
    State(state): State<AppState>,
    Path((id, lock_token)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let (entry, _) = data_plane(&state, &id, &headers, Direction::Out).await?;
    state.gateway.abandon(&entry, &lock_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
pub struct DeadLetterQuery {
    /// At most this many (1-1000) [default: 100].
    max: Option<usize>,
}

#[utoipa::path(get, path = "/endpoints/{id}/deadletter", tag = "gateway",
    params(("id" = Uuid, Path), DeadLetterQuery),
    responses(
        (status = 200, description = "Messages that used up their deliveries, oldest first", body = DeadLetterList),
        (status = 404, description = "Unknown or expired endpoint", body = ErrorBody),
    ))]
pub async fn dead_letters(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DeadLetterQuery>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<DeadLetterList>> {
    let (entry, _) = data_plane(&state, &id, &headers, Direction::Out).await?;
    let dead = state
        .gateway
        .dead_letters(&entry, query.max.unwrap_or(100))
        .await?;
    Ok(axum::Json(DeadLetterList {
        messages: dead.iter().map(DeadLetterView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/endpoints/{id}/inbox", tag = "gateway", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path),
        ("x-mh-device" = Option<String>, Header, description = "Deliver only to this registered device"),
    ),
    request_body(content = String, content_type = "application/octet-stream",
        description = "Like a send: up to 256 KiB, a JSON array is a batch"),
    responses(
        (status = 200, description = "Durably in the inbox", body = DirectReceipt),
        (status = 404, description = "Unknown endpoint or device, or someone else's endpoint", body = ErrorBody),
        (status = 413, description = "Larger than 256 KiB", body = ErrorBody),
    ))]
pub async fn direct(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<axum::Json<DirectReceipt>> {
    let entry = state
        .gateway
        .owned_endpoint(endpoint_id(&id)?, caller.account)
        .await?;
    let device = header_text(&headers, DEVICE_HEADER)?;
    let messages = envelopes(&headers, body)?;
    let ids = state.gateway.deliver(&entry, device, messages).await?;
    Ok(axum::Json(DirectReceipt { ids }))
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

/// Answers a CORS preflight for endpoints that allow the asking origin.
pub async fn preflight(
    State(state): State<AppState>,
    params: RawPathParams,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = params
        .iter()
        .find(|(name, _)| *name == "id")
        .map(|(_, value)| value.to_string())
        .unwrap_or_default();
    let entry = state.gateway.live_endpoint(endpoint_id(&id)?).await?;
    let origin = origin(&headers)
        .filter(|o| entry.endpoint.allowed_origins.iter().any(|a| a == o))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin is not among the endpoint's allowed origins",
            )
        })?;
    let origin = HeaderValue::from_str(origin)
        .map_err(|_| ApiError::bad_request("invalid_header", "Origin is not a valid header"))?;
    let requested_headers = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("authorization, content-type"));
    Ok((
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            ),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, requested_headers),
            (
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            ),
            (header::VARY, HeaderValue::from_static("Origin")),
        ],
    )
        .into_response())
}

/// Adds CORS headers to data-plane answers (errors included, so browsers can read them) when the
/// request's origin is allowed by the endpoint; other origins get no CORS headers at all.
pub async fn cors(
    State(state): State<AppState>,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = params
        .iter()
        .find(|(name, _)| *name == "id")
        .and_then(|(_, value)| Uuid::parse_str(value).ok());
    let origin = origin(request.headers()).map(str::to_string);
    let is_preflight = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    let (Some(endpoint), Some(origin), false) = (endpoint, origin, is_preflight) else {
        return response;
    };
    let allowed = match state.gateway.endpoint(endpoint).await {
        Ok(entry) => entry.endpoint.allowed_origins.contains(&origin),
        Err(_) => false,
    };
    if let (true, Ok(value)) = (allowed, HeaderValue::from_str(&origin)) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            HeaderName::from_static("access-control-expose-headers"),
            HeaderValue::from_static("content-type, retry-after"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_json_array_is_a_batch_and_anything_else_one_message() {
        let json = headers(&[
            ("content-type", "application/json"),
            ("x-mh-property-site", "hall"),
            ("x-mh-message-id", "m1"),
        ]);
        let batch = envelopes(&json, Bytes::from_static(b" [1, {\"a\": 2}, \"x\"]")).unwrap();
        assert_eq!(batch.len(), 3);
        assert_eq!(&batch[1].body[..], b"{\"a\": 2}");
        assert_eq!(batch[2].idempotency_key.as_deref(), Some("m1#2"));
        assert_eq!(batch[0].properties["site"], "hall");

        let object = envelopes(&json, Bytes::from_static(b"{\"a\": 1}")).unwrap();
        assert_eq!(object.len(), 1);
        assert_eq!(object[0].idempotency_key.as_deref(), Some("m1"));

        let text = headers(&[("content-type", "text/plain")]);
        let single = envelopes(&text, Bytes::from_static(b"[not json")).unwrap();
        assert_eq!(single[0].content_type.as_deref(), Some("text/plain"));

        assert_eq!(
            envelopes(&json, Bytes::from_static(b"[1,"))
                .unwrap_err()
                .code(),
            "invalid_json"
        );
        assert_eq!(
            envelopes(&json, Bytes::from_static(b"[]"))
                .unwrap_err()
                .code(),
            "empty_batch"
        );
    }
}
