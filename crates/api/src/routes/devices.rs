//! Devices: self-registration (the seed's contract) and their management by the endpoint owner.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use mh_gateway::RegistrationRequest;
use mh_store::Device;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::endpoints::endpoint_id;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::state::AppState;

/// Header carrying `base64(HMAC-SHA256(enrollment key, device id))` under the `key` policy.
pub const DEVICE_KEY_HEADER: &str = "x-mh-device-key";

#[derive(Serialize, ToSchema)]
pub struct DeviceTokenResponse {
    /// The device token: send it as `Authorization: Bearer <token>` on the endpoint's routes.
    access_token: String,
    /// RFC 3339, UTC.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: OffsetDateTime,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    device_id: String,
    disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    registered_at: OffsetDateTime,
    /// When its current token was issued.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    refreshed_at: OffsetDateTime,
}

impl From<Device> for DeviceView {
    fn from(device: Device) -> Self {
        DeviceView {
            device_id: device.device_id,
            disabled: device.disabled,
            registered_at: device.registered_at,
            refreshed_at: device.refreshed_at,
        }
    }
}

#[utoipa::path(post, path = "/devices/register/{endpointid}/{deviceid}", tag = "devices",
    params(
        ("endpointid" = Uuid, Path, description = "The endpoint the device sits behind"),
        ("deviceid" = String, Path, description = "1-128 letters, digits and -._:@"),
        ("x-mh-device-key" = Option<String>, Header, description = "Key proof, required by the key policy"),
    ),
    description = "Empty body, no account token. Registering an existing device again needs its current token (Authorization: Bearer) or a key proof.",
    responses(
        (status = 200, description = "The device token", body = DeviceTokenResponse),
        (status = 400, description = "Invalid device id, or a non-empty body", body = ErrorBody),
        (status = 401, description = "Key policy without a valid proof", body = ErrorBody),
        (status = 403, description = "Registration disabled, device disabled, or the endpoint's device limit reached", body = ErrorBody),
        (status = 404, description = "Unknown or expired endpoint", body = ErrorBody),
        (status = 409, description = "The device exists and the caller did not prove it is that device", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address or on this endpoint", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((endpoint, device)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<axum::Json<DeviceTokenResponse>> {
    state.gateway.check_registration_rate(peer.ip())?;
    if !body.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "device registration takes an empty body",
        ));
    }
    let current_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| mh_gateway::device_token::from_bearer(token));
    let key_proof = headers
        .get(DEVICE_KEY_HEADER)
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| {
            ApiError::bad_request("invalid_header", format!("{DEVICE_KEY_HEADER} is not text"))
        })?;
    let issued = state
        .gateway
        .register_device(
            endpoint_id(&endpoint)?,
            &device,
            RegistrationRequest {
                current_token: current_token.as_deref(),
                key_proof,
            },
        )
        .await?;
    Ok(axum::Json(DeviceTokenResponse {
        access_token: issued.access_token,
        expires_at: issued.expires_at,
    }))
}

#[utoipa::path(get, path = "/endpoints/{id}/devices", tag = "devices", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint identifier")),
    responses(
        (status = 200, description = "The endpoint's devices", body = [DeviceView]),
        (status = 404, description = "Unknown, or someone else's endpoint", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<DeviceView>>> {
    let id = endpoint_id(&id)?;
    state.gateway.owned_endpoint(id, caller.account).await?;
    let devices = state.store.devices_of(id).await?;
    Ok(axum::Json(
        devices.into_iter().map(DeviceView::from).collect(),
    ))
}

fn device_not_found(error: mh_store::StoreError, device: &str) -> ApiError {
    match error {
        mh_store::StoreError::NotFound(_) => {
            ApiError::not_found(format!("device {device:?} not found on this endpoint"))
        }
        other => other.into(),
    }
}

#[utoipa::path(delete, path = "/endpoints/{id}/devices/{deviceid}", tag = "devices", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("deviceid" = String, Path)),
    responses(
        (status = 204, description = "Deleted; its tokens stop working at once"),
        (status = 404, description = "Unknown device or endpoint", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, device)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = endpoint_id(&id)?;
    state.gateway.owned_endpoint(id, caller.account).await?;
    state
        .store
        .delete_device(id, &device)
        .await
        .map_err(|e| device_not_found(e, &device))?;
    state.gateway.invalidate_device(id, &device);
    Ok(StatusCode::NO_CONTENT)
}

async fn set_disabled(
    state: &AppState,
    caller: Caller,
    id: &str,
    device: &str,
    disabled: bool,
) -> ApiResult<axum::Json<DeviceView>> {
    let id = endpoint_id(id)?;
    state.gateway.owned_endpoint(id, caller.account).await?;
    let updated = state
        .store
        .set_device_disabled(id, device, disabled)
        .await
        .map_err(|e| device_not_found(e, device))?;
    state.gateway.invalidate_device(id, device);
    Ok(axum::Json(updated.into()))
}

#[utoipa::path(post, path = "/endpoints/{id}/devices/{deviceid}/disable", tag = "devices", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("deviceid" = String, Path)),
    responses(
        (status = 200, description = "Disabled: its token is refused until it is enabled", body = DeviceView),
        (status = 404, description = "Unknown device or endpoint", body = ErrorBody),
    ))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, device)): Path<(String, String)>,
) -> ApiResult<axum::Json<DeviceView>> {
    set_disabled(&state, caller, &id, &device, true).await
}

#[utoipa::path(post, path = "/endpoints/{id}/devices/{deviceid}/enable", tag = "devices", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("deviceid" = String, Path)),
    responses(
        (status = 200, description = "Enabled again", body = DeviceView),
        (status = 404, description = "Unknown device or endpoint", body = ErrorBody),
    ))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, device)): Path<(String, String)>,
) -> ApiResult<axum::Json<DeviceView>> {
    set_disabled(&state, caller, &id, &device, false).await
}
