//! Deployments (a channel running in an environment) and what runs in an environment: the
//! caller's deployed handlers, each in the original platform's flat shape with its live status.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;
use mh_fabric::RunState;
use mh_store::{Channel, Environment, HandlerConfiguration, DEFAULT_ENVIRONMENT};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::channel_handlers::{route_views, OutputRouteView};
use super::channels::resolve_channel;
use super::environments::resolve_environment;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels/{id}/deployments", get(list).post(deploy))
        .route("/channels/{id}/deployments/{environment}", delete(undeploy))
        .route("/environments/{id}/handlers", get(environment_handlers))
        .route(
            "/environments/{id}/handlers/{hcid}",
            get(environment_handler),
        )
}

#[derive(Deserialize, ToSchema, Default)]
pub struct DeployRequest {
    /// Identifier or name of an environment you can use [default: local].
    environment: Option<String>,
}

/// A handler running in an environment, flat as the original platform showed it: every
/// configuration value (defaults included) is a string property of its own next to the fixed
/// ones below; where a value's name equals a fixed property's, the fixed property is shown.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentHandlerView {
    channel_id: Uuid,
    /// The definition's identifier.
    handler_description_id: Uuid,
    handler_configuration_id: Uuid,
    name: String,
    version: String,
    input_subjects: Vec<String>,
    output_subject_routes: BTreeMap<String, OutputRouteView>,
    /// `Operational` or `Faulted`.
    state: String,
    /// The most recent failure, kept after the handler recovers.
    last_error: Option<String>,
    /// Messages handled successfully since the deployment (re)started.
    processed: u64,
    /// Messages moved to the dead letters since the deployment (re)started.
    dead_lettered: u64,
    /// Configuration values by field name.
    #[serde(flatten)]
    values: BTreeMap<String, String>,
}

/// Property names of [`EnvironmentHandlerView`] that configuration values cannot take.
const FIXED_PROPERTIES: [&str; 11] = [
    "channelId",
    "handlerDescriptionId",
    "handlerConfigurationId",
    "name",
    "version",
    "inputSubjects",
    "outputSubjectRoutes",
    "state",
    "lastError",
    "processed",
    "deadLettered",
];

pub(crate) async fn environment_handler_view(
    state: &AppState,
    environment: Uuid,
    configuration: HandlerConfiguration,
) -> ApiResult<EnvironmentHandlerView> {
    let mut values = state.fabric.describe(&configuration).await?.values;
    values.retain(|name, _| !FIXED_PROPERTIES.contains(&name.as_str()));
    let status = state.fabric.status(environment, configuration.id);
    let (run_state, last_error, processed, dead_lettered) = match status {
        Some(status) => (
            status.state,
            status.last_error,
            status.processed,
            status.dead_lettered,
        ),
        // Deployed, but its runner has not reported yet.
        None => (RunState::Operational, None, 0, 0),
    };
    Ok(EnvironmentHandlerView {
        channel_id: configuration.channel_id,
        handler_description_id: configuration.definition_id,
        handler_configuration_id: configuration.id,
        output_subject_routes: route_views(&configuration.output_routes),
        name: configuration.name,
        version: configuration.version,
        input_subjects: configuration.input_subjects,
        state: run_state.as_str().to_string(),
        last_error,
        processed,
        dead_lettered,
        values,
    })
}

async fn channel_handler_views(
    state: &AppState,
    channel: &Channel,
    environment: Uuid,
) -> ApiResult<Vec<EnvironmentHandlerView>> {
    let configurations = state.store.handler_configurations_of(channel.id).await?;
    let mut views = Vec::with_capacity(configurations.len());
    for configuration in configurations {
        views.push(environment_handler_view(state, environment, configuration).await?);
    }
    Ok(views)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentResult {
    channel_id: Uuid,
    environment_id: Uuid,
    /// The environment's name.
    environment: String,
    handlers: Vec<EnvironmentHandlerView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    channel_id: Uuid,
    environment_id: Uuid,
    /// The environment's name.
    environment: String,
    /// When it was last (re)deployed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    deployed_at: OffsetDateTime,
}

fn parse_deploy_request(body: &[u8]) -> ApiResult<DeployRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DeployRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the request body is not a valid deployment request: {e}"),
        )
    })
}

#[utoipa::path(post, path = "/channels/{id}/deployments", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Channel identifier or name")),
    request_body(content = DeployRequest, description = "Optional; an empty body deploys to local"),
    responses(
        (status = 200, description = "Deployed (or redeployed with the current configuration)", body = DeploymentResult),
        (status = 400, description = "A handler cannot run as configured (e.g. a variable it uses is missing)", body = ErrorBody),
        (status = 404, description = "Unknown channel or environment", body = ErrorBody),
    ))]
pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<axum::Json<DeploymentResult>> {
    let request = parse_deploy_request(&body)?;
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let environment = resolve_environment(
        &state,
        caller.account,
        request
            .environment
            .as_deref()
            .unwrap_or(DEFAULT_ENVIRONMENT),
    )
    .await?;
    state.fabric.deploy(&channel, &environment).await?;
    let handlers = channel_handler_views(&state, &channel, environment.id).await?;
    Ok(axum::Json(DeploymentResult {
        channel_id: channel.id,
        environment_id: environment.id,
        environment: environment.name,
        handlers,
    }))
}

#[utoipa::path(get, path = "/channels/{id}/deployments", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Channel identifier or name")),
    responses(
        (status = 200, description = "Where the channel is deployed", body = [DeploymentView]),
        (status = 404, description = "Unknown channel", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<DeploymentView>>> {
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let deployments = state.store.deployments_of_channel(channel.id).await?;
    let mut views = Vec::with_capacity(deployments.len());
    for deployment in deployments {
        let name = state
            .store
            .environment(deployment.environment_id)
            .await?
            .map(|e| e.name)
            .unwrap_or_default();
        views.push(DeploymentView {
            channel_id: deployment.channel_id,
            environment_id: deployment.environment_id,
            environment: name,
            deployed_at: deployment.deployed_at,
        });
    }
    Ok(axum::Json(views))
}

#[utoipa::path(delete, path = "/channels/{id}/deployments/{environment}", tag = "deployments", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Channel identifier or name"),
        ("environment" = String, Path, description = "Environment identifier or name"),
    ),
    responses(
        (status = 204, description = "Stopped and removed"),
        (status = 404, description = "Unknown channel or environment, or not deployed there", body = ErrorBody),
    ))]
pub async fn undeploy(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, environment)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let environment = resolve_environment(&state, caller.account, &environment).await?;
    if !state.fabric.undeploy(channel.id, environment.id).await? {
        return Err(ApiError::not_found(format!(
            "channel {} is not deployed in environment {}",
            channel.name, environment.name
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's channels deployed in the environment.
async fn deployed_channels(
    state: &AppState,
    account: Uuid,
    environment: &Environment,
) -> ApiResult<Vec<Channel>> {
    let mut channels = Vec::new();
    for deployment in state
        .store
        .deployments_in_environment(environment.id)
        .await?
    {
        if let Some(channel) = state
            .store
            .channel(deployment.channel_id)
            .await?
            .filter(|c| c.account_id == account)
        {
            channels.push(channel);
        }
    }
    Ok(channels)
}

#[utoipa::path(get, path = "/environments/{id}/handlers", tag = "deployments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Environment identifier or name")),
    responses(
        (status = 200, description = "The handlers of your channels deployed in the environment", body = [EnvironmentHandlerView]),
        (status = 404, description = "Unknown environment", body = ErrorBody),
    ))]
pub async fn environment_handlers(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<EnvironmentHandlerView>>> {
    let environment = resolve_environment(&state, caller.account, &id).await?;
    let mut views = Vec::new();
    for channel in deployed_channels(&state, caller.account, &environment).await? {
        views.extend(channel_handler_views(&state, &channel, environment.id).await?);
    }
    Ok(axum::Json(views))
}

#[utoipa::path(get, path = "/environments/{id}/handlers/{hcid}", tag = "deployments", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Environment identifier or name"),
        ("hcid" = Uuid, Path, description = "Handler configuration identifier"),
    ),
    responses(
        (status = 200, description = "The handler as it runs in the environment", body = EnvironmentHandlerView),
        (status = 404, description = "Unknown environment, or no such handler of yours deployed there", body = ErrorBody),
    ))]
pub async fn environment_handler(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, hcid)): Path<(String, String)>,
) -> ApiResult<axum::Json<EnvironmentHandlerView>> {
    let environment = resolve_environment(&state, caller.account, &id).await?;
    let not_found = || {
        ApiError::not_found(format!(
            "no handler {hcid:?} of yours is deployed in environment {}",
            environment.name
        ))
    };
    let handler = Uuid::parse_str(&hcid).map_err(|_| not_found())?;
    let configuration = state
        .store
        .handler_configuration(handler)
        .await?
        .ok_or_else(not_found)?;
    let channel = state
        .store
        .channel(configuration.channel_id)
        .await?
        .filter(|c| c.account_id == caller.account)
        .ok_or_else(not_found)?;
    let deployed = state
        .store
        .deployments_of_channel(channel.id)
        .await?
        .iter()
        .any(|d| d.environment_id == environment.id);
    if !deployed {
        return Err(not_found());
    }
    Ok(axum::Json(
        environment_handler_view(&state, environment.id, configuration).await?,
    ))
}
