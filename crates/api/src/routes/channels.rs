//! Channels and the channel tail, which shows what reaches a channel's stream without consuming
//! it. The handlers placed in channels are in `channel_handlers`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use mh_store::{Channel, DEFAULT_ENVIRONMENT};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::environments::{resolve_environment, validate_name};
use super::messages::{MessageList, MessageView};
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Query};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    identifier: Uuid,
    name: String,
    description: String,
}

impl From<Channel> for ChannelView {
    fn from(channel: Channel) -> Self {
        ChannelView {
            identifier: channel.id,
            name: channel.name,
            description: channel.description,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewChannel {
    /// 1-64 letters, digits, `-`, `_` and `.`; unique per account.
    name: String,
    #[serde(default)]
    description: String,
}

/// The caller's channel named or identified by `reference`; someone else's is not found.
pub(crate) async fn resolve_channel(
    state: &AppState,
    account: Uuid,
    reference: &str,
) -> ApiResult<Channel> {
    let found = match Uuid::parse_str(reference) {
        Ok(id) => state
            .store
            .channel(id)
            .await?
            .filter(|c| c.account_id == account),
        Err(_) => state.store.channel_by_name(account, reference).await?,
    };
    found.ok_or_else(|| {
        ApiError::not_found(format!("no channel named or identified by {reference:?}"))
    })
}

#[utoipa::path(post, path = "/channels", tag = "channels", security(("bearer" = [])),
    request_body = NewChannel,
    responses(
        (status = 201, description = "Created", body = ChannelView),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 409, description = "The caller already has a channel with that name", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<NewChannel>,
) -> ApiResult<(StatusCode, axum::Json<ChannelView>)> {
    validate_name("channel", &request.name)?;
    if request.description.len() > 4096 {
        return Err(ApiError::bad_request(
            "invalid_description",
            "the description is longer than 4096 bytes",
        ));
    }
    let channel = Channel {
        id: Uuid::new_v4(),
        account_id: caller.account,
        name: request.name,
        description: request.description,
        created_at: OffsetDateTime::now_utc(),
    };
    state.store.create_channel(&channel).await?;
    Ok((StatusCode::CREATED, axum::Json(channel.into())))
}

#[utoipa::path(get, path = "/channels", tag = "channels", security(("bearer" = [])),
    responses((status = 200, description = "The caller's channels", body = [ChannelView])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<ChannelView>>> {
    let channels = state.store.channels_of(caller.account).await?;
    Ok(axum::Json(
        channels.into_iter().map(ChannelView::from).collect(),
    ))
}

#[utoipa::path(get, path = "/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path, description = "Identifier or name")),
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        (status = 404, description = "Unknown, or someone else's", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ChannelView>> {
    Ok(axum::Json(
        resolve_channel(&state, caller.account, &id).await?.into(),
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct TailQuery {
    /// Identifier or name [default: local].
    environment: Option<String>,
    /// Only messages after this message id.
    after: Option<Uuid>,
    /// At most this many messages (1-1000) [default: 100].
    max: Option<usize>,
    /// Seconds to wait for a message when there is none yet [default: 0].
    wait: Option<u64>,
}

#[utoipa::path(get, path = "/channels/{id}/messages", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path, description = "Identifier or name"), TailQuery),
    responses(
        (status = 200, description = "Messages in stream order; empty when none arrived in time", body = MessageList),
        (status = 404, description = "Unknown channel or environment", body = ErrorBody),
    ))]
pub async fn tail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<TailQuery>,
) -> ApiResult<axum::Json<MessageList>> {
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let environment = resolve_environment(
        &state,
        caller.account,
        query.environment.as_deref().unwrap_or(DEFAULT_ENVIRONMENT),
    )
    .await?;
    let messages = state
        .gateway
        .tail(
            mh_log::StreamId::new(channel.id, environment.id),
            query.after,
            query.max.unwrap_or(100),
            Duration::from_secs(query.wait.unwrap_or(0)),
        )
        .await?;
    Ok(axum::Json(MessageList {
        messages: messages.iter().map(MessageView::from).collect(),
    }))
}
