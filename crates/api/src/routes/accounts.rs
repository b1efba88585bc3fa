use axum::extract::State;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    identifier: Uuid,
    name: String,
    /// `personal` or `organization`.
    kind: String,
    reviewer: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
}

#[utoipa::path(
    get,
    path = "/accounts/me",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The calling account", body = AccountView),
        (status = 401, description = "Missing or invalid access token", body = ErrorBody),
    )
)]
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<AccountView>> {
    let account = state.store.account(caller.account).await?.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the account of this access token no longer exists",
        )
    })?;
    Ok(axum::Json(AccountView {
        identifier: account.id,
        name: account.name,
        kind: account.kind.as_str().to_string(),
        reviewer: account.reviewer,
        created_at: account.created_at,
    }))
}
