//! Environments: the places channels run. `local` is shared by every account; environments
//! created through the API belong to their creator.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use mh_store::Environment;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct EnvironmentView {
    identifier: Uuid,
    name: String,
}

impl From<Environment> for EnvironmentView {
    fn from(environment: Environment) -> Self {
        EnvironmentView {
            identifier: environment.id,
            name: environment.name,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewEnvironment {
    /// 1-64 letters, digits, `-` and `_`.
    name: String,
}

/// The environment named or identified by `reference`, among those the account may use.
pub(crate) async fn resolve_environment(
    state: &AppState,
    account: Uuid,
    reference: &str,
) -> ApiResult<Environment> {
    let visible = state.store.environments_visible_to(account).await?;
    let id = Uuid::parse_str(reference).ok();
    visible
        .into_iter()
        .find(|e| Some(e.id) == id || e.name == reference)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no environment named or identified by {reference:?}"
            ))
        })
}

/// Names of channels and environments: they appear in headers and paths, and must not look like
/// identifiers (references accept either).
pub(crate) fn validate_name(kind: &str, name: &str) -> ApiResult<()> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !(1..=64).contains(&name.len()) || !valid_chars || Uuid::parse_str(name).is_ok() {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("{kind} name {name:?} is invalid: use 1 to 64 letters, digits, '-', '_' and '.', not shaped like a UUID"),
        ));
    }
    Ok(())
}

#[utoipa::path(get, path = "/environments", tag = "environments", security(("bearer" = [])),
    responses(
        (status = 200, description = "Environments the caller can deploy to", body = [EnvironmentView]),
        (status = 401, description = "Missing or invalid access token", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<EnvironmentView>>> {
    let environments = state.store.environments_visible_to(caller.account).await?;
    Ok(axum::Json(
        environments
            .into_iter()
            .map(EnvironmentView::from)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/environments/{id}", tag = "environments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Identifier or name")),
    responses(
        (status = 200, description = "The environment", body = EnvironmentView),
        (status = 404, description = "Unknown, or not visible to the caller", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<EnvironmentView>> {
    let environment = resolve_environment(&state, caller.account, &id).await?;
    Ok(axum::Json(environment.into()))
}

#[utoipa::path(post, path = "/environments", tag = "environments", security(("bearer" = [])),
    request_body = NewEnvironment,
    responses(
        (status = 201, description = "Created; owned by the caller", body = EnvironmentView),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<NewEnvironment>,
) -> ApiResult<(StatusCode, axum::Json<EnvironmentView>)> {
    validate_name("environment", &request.name)?;
    let environment = state
        .store
        .create_environment(caller.account, &request.name)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(environment.into())))
}
