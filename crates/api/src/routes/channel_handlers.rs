//! Handler configurations: handlers placed in a channel, with their configuration values, input
//! subjects and output subject routes. The fabric checks every write (definition, version,
//! values, triggers, routes), so a mistake is reported when it is made, not when messages flow.
//!
//! Changes apply to running deployments when the channel is deployed again, except a deletion,
//! which restarts the channel's deployments without the handler at once.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use mh_fabric::{HandlerRequest, RouteRequest};
use mh_store::{Channel, HandlerConfiguration, OutputRoute};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::channels::resolve_channel;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels/{id}/handlers", get(list).post(create))
        .route(
            "/channels/{id}/handlers/{hcid}",
            get(show).put(replace).delete(delete),
        )
}

/// A handler configuration as a client writes it (POST creates, PUT replaces all of it).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandlerConfigurationRequest {
    /// Identifier or name of a definition: your own, a public one, or a built-in
    /// (`Generate Alert`, `Forward to endpoint`, `Webhook`).
    definition: String,
    /// An accepted version [default: the definition's active version].
    version: Option<String>,
    /// Unique in the channel; 1-100 characters [default: the definition's name].
    name: Option<String>,
    /// Configuration values by field name, as JSON strings (`"60"`) or native JSON (`60`).
    /// Values may hold `{{ variables.Name }}` placeholders, filled at deployment.
    #[serde(default)]
    #[schema(value_type = Object)]
    configuration: serde_json::Map<String, serde_json::Value>,
    /// Only messages with these subjects reach the handler [default: every message].
    #[serde(default)]
    input_subjects: Vec<String>,
    /// Where outputs with a subject go besides the channel itself.
    #[serde(default)]
    output_subject_routes: BTreeMap<String, RouteBody>,
}

/// Exactly one of `channel` and `endpoint`.
#[derive(Deserialize, ToSchema)]
pub struct RouteBody {
    /// Identifier or name of one of your channels.
    channel: Option<String>,
    /// Identifier of one of your endpoints.
    endpoint: Option<String>,
}

impl From<HandlerConfigurationRequest> for HandlerRequest {
    fn from(request: HandlerConfigurationRequest) -> Self {
        HandlerRequest {
            definition: request.definition,
            version: request.version,
            name: request.name,
            configuration: request.configuration,
            input_subjects: request.input_subjects,
            output_subject_routes: request
                .output_subject_routes
                .into_iter()
                .map(|(subject, route)| {
                    (
                        subject,
                        RouteRequest {
                            channel: route.channel,
                            endpoint: route.endpoint,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Where outputs with one subject are routed: `{"channel": id}` or `{"endpoint": id}`.
#[derive(Serialize, ToSchema)]
pub struct OutputRouteView {
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<Uuid>,
}

impl From<&OutputRoute> for OutputRouteView {
    fn from(route: &OutputRoute) -> Self {
        match *route {
            OutputRoute::Channel(id) => OutputRouteView {
                channel: Some(id),
                endpoint: None,
            },
            OutputRoute::Endpoint(id) => OutputRouteView {
                channel: None,
                endpoint: Some(id),
            },
        }
    }
}

pub(crate) fn route_views(
    routes: &BTreeMap<String, OutputRoute>,
) -> BTreeMap<String, OutputRouteView> {
    routes
        .iter()
        .map(|(subject, route)| (subject.clone(), OutputRouteView::from(route)))
        .collect()
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandlerConfigurationView {
    handler_configuration_id: Uuid,
    channel_id: Uuid,
    /// The definition's identifier (a built-in's fixed one for built-ins).
    handler_description_id: Uuid,
    definition_name: String,
    name: String,
    version: String,
    /// The values set, as text (placeholders unfilled); fields left out take their defaults.
    configuration: BTreeMap<String, String>,
    input_subjects: Vec<String>,
    output_subject_routes: BTreeMap<String, OutputRouteView>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
}

async fn view(
    state: &AppState,
    configuration: HandlerConfiguration,
) -> ApiResult<HandlerConfigurationView> {
    let description = state.fabric.describe(&configuration).await?;
    Ok(HandlerConfigurationView {
        handler_configuration_id: configuration.id,
        channel_id: configuration.channel_id,
        handler_description_id: configuration.definition_id,
        definition_name: description.definition_name,
        output_subject_routes: route_views(&configuration.output_routes),
        name: configuration.name,
        version: configuration.version,
        configuration: configuration.values,
        input_subjects: configuration.input_subjects,
        created_at: configuration.created_at,
        updated_at: configuration.updated_at,
    })
}

fn no_such_handler(channel: &Channel, reference: &str) -> ApiError {
    ApiError::not_found(format!(
        "channel {} has no handler configuration {reference:?}",
        channel.name
    ))
}

/// The handler configuration `reference` of `channel`; another channel's is not found.
async fn resolve_configuration(
    state: &AppState,
    channel: &Channel,
    reference: &str,
) -> ApiResult<HandlerConfiguration> {
    let found = match Uuid::parse_str(reference) {
        Ok(id) => state
            .store
            .handler_configuration(id)
            .await?
            .filter(|c| c.channel_id == channel.id),
        Err(_) => None,
    };
    found.ok_or_else(|| no_such_handler(channel, reference))
}

#[utoipa::path(post, path = "/channels/{id}/handlers", tag = "handler configurations", security(("bearer" = [])),
    params(("id" = String, Path, description = "Channel identifier or name")),
    request_body = HandlerConfigurationRequest,
    responses(
        (status = 201, description = "Created", body = HandlerConfigurationView),
        (status = 400, description = "Invalid configuration, trigger, subject or route (the message says which)", body = ErrorBody),
        (status = 404, description = "Unknown channel, or a definition or version you may not use", body = ErrorBody),
        (status = 409, description = "The channel already has a handler with that name, or the version is not accepted", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<HandlerConfigurationRequest>,
) -> ApiResult<(StatusCode, axum::Json<HandlerConfigurationView>)> {
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let configuration = state
        .fabric
        .configure(caller.account, &channel, request.into(), None)
        .await?;
    state
        .store
        .insert_handler_configuration(&configuration)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(view(&state, configuration).await?),
    ))
}

#[utoipa::path(get, path = "/channels/{id}/handlers", tag = "handler configurations", security(("bearer" = [])),
    params(("id" = String, Path, description = "Channel identifier or name")),
    responses(
        (status = 200, description = "The channel's handlers in creation order", body = [HandlerConfigurationView]),
        (status = 404, description = "Unknown channel", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<HandlerConfigurationView>>> {
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let configurations = state.store.handler_configurations_of(channel.id).await?;
    let mut views = Vec::with_capacity(configurations.len());
    for configuration in configurations {
        views.push(view(&state, configuration).await?);
    }
    Ok(axum::Json(views))
}

#[utoipa::path(get, path = "/channels/{id}/handlers/{hcid}", tag = "handler configurations", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Channel identifier or name"),
        ("hcid" = Uuid, Path, description = "Handler configuration identifier"),
    ),
    responses(
        (status = 200, description = "The handler configuration", body = HandlerConfigurationView),
        (status = 404, description = "Unknown channel, or no such handler in it", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, hcid)): Path<(String, String)>,
) -> ApiResult<axum::Json<HandlerConfigurationView>> {
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let configuration = resolve_configuration(&state, &channel, &hcid).await?;
    Ok(axum::Json(view(&state, configuration).await?))
}

#[utoipa::path(put, path = "/channels/{id}/handlers/{hcid}", tag = "handler configurations", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Channel identifier or name"),
        ("hcid" = Uuid, Path, description = "Handler configuration identifier"),
    ),
    request_body = HandlerConfigurationRequest,
    responses(
        (status = 200, description = "Replaced; running deployments pick it up when the channel is deployed again", body = HandlerConfigurationView),
        (status = 400, description = "Invalid configuration, trigger, subject or route", body = ErrorBody),
        (status = 404, description = "Unknown channel or handler, or a definition you may not use", body = ErrorBody),
        (status = 409, description = "Another handler of the channel has that name", body = ErrorBody),
    ))]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, hcid)): Path<(String, String)>,
    Json(request): Json<HandlerConfigurationRequest>,
) -> ApiResult<axum::Json<HandlerConfigurationView>> {
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let existing = resolve_configuration(&state, &channel, &hcid).await?;
    let configuration = state
        .fabric
        .configure(caller.account, &channel, request.into(), Some(&existing))
        .await?;
    if !state
        .store
        .update_handler_configuration(&configuration)
        .await?
    {
        return Err(no_such_handler(&channel, &hcid));
    }
    Ok(axum::Json(view(&state, configuration).await?))
}

#[utoipa::path(delete, path = "/channels/{id}/handlers/{hcid}", tag = "handler configurations", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Channel identifier or name"),
        ("hcid" = Uuid, Path, description = "Handler configuration identifier"),
    ),
    responses(
        (status = 204, description = "Deleted; the channel's deployments continue without it"),
        (status = 404, description = "Unknown channel, or no such handler in it", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, hcid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let configuration = resolve_configuration(&state, &channel, &hcid).await?;
    if !state
        .store
        .delete_handler_configuration(configuration.id)
        .await?
    {
        return Err(no_such_handler(&channel, &hcid));
    }
    state
        .fabric
        .handler_removed(&channel, configuration.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
