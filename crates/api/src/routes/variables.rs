//! Variables: named values scoped to the caller's account, one of its channels, or an environment,
//! that configuration values use through `{{ variables.Name }}`; and the grants that let another
//! account read them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::Router;
use mh_store::{ScopeType, Variable};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::channels::resolve_channel;
use super::environments::resolve_environment;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::state::AppState;

/// Most characters of a variable's name.
const MAX_NAME: usize = 100;
/// Longest value, bytes (as long as a configuration value may be).
const MAX_VALUE: usize = 16 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/variables", get(list))
        .route("/variables/grants", get(grants))
        .route("/variables/grants/{accountid}", put(grant).delete(revoke))
        .route("/variables/{accountid}", get(list_of))
        .route(
            "/variables/{scopeType}/{scopeId}/{name}",
            put(upsert).delete(delete),
        )
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariableView {
    /// The owning account.
    account: Uuid,
    /// The account, channel or environment identifier.
    scope_identifier: Uuid,
    /// `account`, `channel` or `environment`.
    scope_type: String,
    name: String,
    value: String,
    /// `{scopeType}/{scopeIdentifier}/{name}`.
    full_name: String,
}

impl From<Variable> for VariableView {
    fn from(variable: Variable) -> Self {
        let scope_type = variable.scope_type.as_str().to_string();
        VariableView {
            account: variable.account_id,
            scope_identifier: variable.scope_id,
            full_name: format!("{scope_type}/{}/{}", variable.scope_id, variable.name),
            scope_type,
            name: variable.name,
            value: variable.value,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct VariableValue {
    /// At most 16 KiB.
    value: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantView {
    /// An account that may read your variables.
    account: Uuid,
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

fn validate_name(name: &str) -> ApiResult<()> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if name.is_empty() || name.len() > MAX_NAME || !valid_chars {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!(
                "variable name {name:?} is invalid: use 1 to {MAX_NAME} letters, digits, '_', '.' and '-'"
            ),
        ));
    }
    Ok(())
}

/// The scope a path names, as stored: the scope must be the caller's (account, channel) or
/// visible to it (environment). Channels and environments may be named or identified.
async fn resolve_scope(
    state: &AppState,
    caller: Caller,
    scope_type: &str,
    scope_id: &str,
) -> ApiResult<(ScopeType, Uuid)> {
    let scope = ScopeType::parse(scope_type).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_scope_type",
            format!("{scope_type:?} is not a scope type: use account, channel or environment"),
        )
    })?;
    let id = match scope {
        ScopeType::Account => {
            let own = match Uuid::parse_str(scope_id) {
                Ok(id) => id == caller.account,
                Err(_) => state
                    .store
                    .account(caller.account)
                    .await?
                    .is_some_and(|a| a.name == scope_id),
            };
            if !own {
                return Err(forbidden(format!(
                    "account {scope_id} is not yours: account variables can be set only on your own account ({})",
                    caller.account
                )));
            }
            caller.account
        }
        ScopeType::Channel => resolve_channel(state, caller.account, scope_id).await?.id,
        ScopeType::Environment => {
            resolve_environment(state, caller.account, scope_id)
                .await?
                .id
        }
    };
    Ok((scope, id))
}

#[utoipa::path(get, path = "/variables", tag = "variables", security(("bearer" = [])),
    responses((status = 200, description = "The caller's variables, by scope type, scope and name", body = [VariableView])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<VariableView>>> {
    let variables = state.store.variables_of(caller.account).await?;
    Ok(axum::Json(
        variables.into_iter().map(VariableView::from).collect(),
    ))
}

#[utoipa::path(get, path = "/variables/{accountid}", tag = "variables", security(("bearer" = [])),
    params(("accountid" = Uuid, Path, description = "Account identifier")),
    responses(
        (status = 200, description = "The account's variables", body = [VariableView]),
        (status = 403, description = "The account has not granted you access (or does not exist)", body = ErrorBody),
    ))]
pub async fn list_of(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
) -> ApiResult<axum::Json<Vec<VariableView>>> {
    let refused = || {
        forbidden(format!(
            "account {account} has not granted you access to its variables"
        ))
    };
    let owner = Uuid::parse_str(&account).map_err(|_| refused())?;
    if owner != caller.account
        && !state
            .store
            .variable_access_granted(owner, caller.account)
            .await?
    {
        return Err(refused());
    }
    let variables = state.store.variables_of(owner).await?;
    Ok(axum::Json(
        variables.into_iter().map(VariableView::from).collect(),
    ))
}

#[utoipa::path(put, path = "/variables/{scopeType}/{scopeId}/{name}", tag = "variables", security(("bearer" = [])),
    params(
        ("scopeType" = String, Path, description = "`account`, `channel` or `environment` (any case)"),
        ("scopeId" = String, Path, description = "Your account's identifier; a channel's or environment's identifier or name"),
        ("name" = String, Path, description = "1-100 letters, digits, `_`, `.` and `-`"),
    ),
    request_body = VariableValue,
    responses(
        (status = 200, description = "Created or replaced", body = VariableView),
        (status = 400, description = "Invalid scope type, name or value", body = ErrorBody),
        (status = 403, description = "Another account's scope", body = ErrorBody),
        (status = 404, description = "Unknown channel or environment", body = ErrorBody),
    ))]
pub async fn upsert(
    State(state): State<AppState>,
    caller: Caller,
    Path((scope_type, scope_id, name)): Path<(String, String, String)>,
    Json(request): Json<VariableValue>,
) -> ApiResult<axum::Json<VariableView>> {
    let (scope_type, scope_id) = resolve_scope(&state, caller, &scope_type, &scope_id).await?;
    validate_name(&name)?;
    if request.value.len() > MAX_VALUE {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!(
                "the value is {} bytes long; at most {MAX_VALUE} are allowed",
                request.value.len()
            ),
        ));
    }
    let variable = Variable {
        account_id: caller.account,
        scope_type,
        scope_id,
        name,
        value: request.value,
        updated_at: OffsetDateTime::now_utc(),
    };
    state.store.put_variable(&variable).await?;
    Ok(axum::Json(variable.into()))
}

#[utoipa::path(delete, path = "/variables/{scopeType}/{scopeId}/{name}", tag = "variables", security(("bearer" = [])),
    params(
        ("scopeType" = String, Path, description = "`account`, `channel` or `environment` (any case)"),
        ("scopeId" = String, Path, description = "Your account's identifier; a channel's or environment's identifier or name"),
        ("name" = String, Path, description = "The variable's name"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid scope type", body = ErrorBody),
        (status = 403, description = "Another account's scope", body = ErrorBody),
        (status = 404, description = "No such variable, channel or environment", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((scope_type, scope_id, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (scope, id) = resolve_scope(&state, caller, &scope_type, &scope_id).await?;
    if !state
        .store
        .delete_variable(caller.account, scope, id, &name)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "no variable {}/{id}/{name}",
            scope.as_str()
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/variables/grants", tag = "variables", security(("bearer" = [])),
    responses((status = 200, description = "The accounts that may read your variables, oldest grant first", body = [GrantView])))]
pub async fn grants(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<GrantView>>> {
    let grantees = state.store.variable_grantees(caller.account).await?;
    Ok(axum::Json(
        grantees
            .into_iter()
            .map(|account| GrantView { account })
            .collect(),
    ))
}

/// The other account a grant path names.
fn grantee(caller: Caller, account: &str) -> ApiResult<Uuid> {
    let id = Uuid::parse_str(account).map_err(|_| {
        ApiError::bad_request(
            "invalid_account",
            format!("{account:?} is not an account identifier"),
        )
    })?;
    if id == caller.account {
        return Err(ApiError::bad_request(
            "invalid_account",
            "you always have access to your own variables",
        ));
    }
    Ok(id)
}

#[utoipa::path(put, path = "/variables/grants/{accountid}", tag = "variables", security(("bearer" = [])),
    params(("accountid" = Uuid, Path, description = "The account to let read your variables")),
    responses(
        (status = 204, description = "Granted (granting twice is not an error)"),
        (status = 400, description = "Not an account identifier, or your own", body = ErrorBody),
        (status = 404, description = "Unknown account", body = ErrorBody),
    ))]
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
) -> ApiResult<StatusCode> {
    let grantee = grantee(caller, &account)?;
    if state.store.account(grantee).await?.is_none() {
        return Err(ApiError::not_found(format!("no account {grantee}")));
    }
    state
        .store
        .grant_variable_access(caller.account, grantee, OffsetDateTime::now_utc())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/variables/grants/{accountid}", tag = "variables", security(("bearer" = [])),
    params(("accountid" = Uuid, Path, description = "An account you granted access to")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Not an account identifier, or your own", body = ErrorBody),
        (status = 404, description = "No grant to that account", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
) -> ApiResult<StatusCode> {
    let grantee = grantee(caller, &account)?;
    if !state
        .store
        .revoke_variable_access(caller.account, grantee)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "account {grantee} has no access to your variables"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}
