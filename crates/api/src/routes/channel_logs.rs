//! What a channel's handlers leave besides their outputs: the channel's log stream (handler log
//! lines, faults, deployments; a long poll) and each stream's dead letters.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use mh_log::{LogEntry, StreamDeadLetter, StreamId};
use mh_store::DEFAULT_ENVIRONMENT;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::channels::resolve_channel;
use super::environments::resolve_environment;
use super::messages::{rfc3339_millis, MessageView};
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
use crate::middleware::time_limit;
use crate::state::AppState;

/// Largest page of log entries or dead letters.
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// The dead letters, under the general request time limit.
pub fn routes() -> Router<AppState> {
    Router::new().route("/channels/{id}/deadletters", get(dead_letters))
}

/// The log long poll: merged outside the general time limit, which would cut a legitimate wait,
/// and bounded instead by the longest allowed wait plus the general limit.
pub fn long_poll_routes(state: &AppState) -> Router<AppState> {
    let bound: Duration = state.gateway.config().max_wait + state.config.request_timeout;
    Router::new().route(
        "/channels/{id}/logs",
        get(logs).layer(axum::middleware::from_fn_with_state(bound, time_limit)),
    )
}

fn page_size(max: Option<usize>) -> ApiResult<usize> {
    match max {
        None => Ok(DEFAULT_PAGE),
        Some(max) if (1..=MAX_PAGE).contains(&max) => Ok(max),
        Some(max) => Err(ApiError::bad_request(
            "invalid_max",
            format!("max must be between 1 and {MAX_PAGE}, not {max}"),
        )),
    }
}

#[derive(Deserialize, IntoParams)]
pub struct LogQuery {
    /// Only entries after this entry id.
    after: Option<Uuid>,
    /// At most this many entries (1-1000) [default: 100].
    max: Option<usize>,
    /// Seconds to wait for an entry when there is none yet, up to the server's `--max-wait`
    /// [default: 0].
    wait: Option<u64>,
    /// Only entries of this environment (identifier or name) [default: all].
    environment: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LogEntryView {
    id: Uuid,
    /// RFC 3339 with milliseconds.
    at: String,
    /// The environment whose run wrote it.
    environment: Uuid,
    /// The handler configuration that wrote it; null for the runtime (deployments, start
    /// failures).
    handler: Option<Uuid>,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    level: String,
    text: String,
}

impl From<LogEntry> for LogEntryView {
    fn from(entry: LogEntry) -> Self {
        LogEntryView {
            id: entry.id,
            at: rfc3339_millis(entry.at),
            environment: entry.environment,
            handler: entry.handler,
            level: entry.level,
            text: entry.text,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LogPage {
    /// Oldest first; empty when none arrived in time. Pass the last id as `after` to continue.
    entries: Vec<LogEntryView>,
}

#[utoipa::path(get, path = "/channels/{id}/logs", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path, description = "Channel identifier or name"), LogQuery),
    responses(
        (status = 200, description = "Log entries of the channel's deployments, oldest first", body = LogPage),
        (status = 400, description = "max out of range", body = ErrorBody),
        (status = 404, description = "Unknown channel or environment", body = ErrorBody),
    ))]
pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> ApiResult<axum::Json<LogPage>> {
    let max = page_size(query.max)?;
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let environment = match &query.environment {
        Some(reference) => Some(
            resolve_environment(&state, caller.account, reference)
                .await?
                .id,
        ),
        None => None,
    };
    let wait = Duration::from_secs(query.wait.unwrap_or(0)).min(state.gateway.config().max_wait);
    let deadline = Instant::now() + wait;
    let mut after = query.after;
    loop {
        let page = state
            .journal
            .read_logs(
                channel.id,
                after,
                max,
                deadline.saturating_duration_since(Instant::now()),
            )
            .await
            .map_err(|e| ApiError::internal(format!("the channel log failed: {e}")))?;
        let Some(last) = page.last().map(|e| e.id) else {
            return Ok(axum::Json(LogPage {
                entries: Vec::new(),
            }));
        };
        let entries: Vec<LogEntryView> = page
            .into_iter()
            .filter(|e| environment.is_none_or(|id| e.environment == id))
            .map(LogEntryView::from)
            .collect();
        // Entries of other environments only: keep reading (and waiting) past them.
        if !entries.is_empty() || Instant::now() >= deadline {
            return Ok(axum::Json(LogPage { entries }));
        }
        after = Some(last);
    }
}

#[derive(Deserialize, IntoParams)]
pub struct StreamDeadLetterQuery {
    /// Identifier or name [default: local].
    environment: Option<String>,
    /// Only dead letters after this one.
    after: Option<Uuid>,
    /// At most this many (1-1000) [default: 100].
    max: Option<usize>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamDeadLetterView {
    id: Uuid,
    /// The handler configuration that gave up on the message.
    handler: Uuid,
    reason: String,
    /// How many times processing was attempted.
    attempts: u32,
    /// RFC 3339 with milliseconds.
    dead_lettered_at: String,
    /// The message as the handler got it.
    message: MessageView,
}

impl From<&StreamDeadLetter> for StreamDeadLetterView {
    fn from(letter: &StreamDeadLetter) -> Self {
        StreamDeadLetterView {
            id: letter.id,
            handler: letter.handler,
            reason: letter.reason.clone(),
            attempts: letter.attempts,
            dead_lettered_at: rfc3339_millis(letter.dead_lettered_at),
            message: MessageView::from(&letter.message),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamDeadLetterList {
    /// Oldest first.
    dead_letters: Vec<StreamDeadLetterView>,
}

#[utoipa::path(get, path = "/channels/{id}/deadletters", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path, description = "Channel identifier or name"), StreamDeadLetterQuery),
    responses(
        (status = 200, description = "Messages the channel's handlers gave up on in the environment", body = StreamDeadLetterList),
        (status = 400, description = "max out of range", body = ErrorBody),
        (status = 404, description = "Unknown channel or environment", body = ErrorBody),
    ))]
pub async fn dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<StreamDeadLetterQuery>,
) -> ApiResult<axum::Json<StreamDeadLetterList>> {
    let max = page_size(query.max)?;
    let channel = resolve_channel(&state, caller.account, &id).await?;
    let environment = resolve_environment(
        &state,
        caller.account,
        query.environment.as_deref().unwrap_or(DEFAULT_ENVIRONMENT),
    )
    .await?;
    let letters = state
        .journal
        .read_dead_letters(StreamId::new(channel.id, environment.id), query.after, max)
        .await
        .map_err(|e| ApiError::internal(format!("the dead letters are unreadable: {e}")))?;
    Ok(axum::Json(StreamDeadLetterList {
        dead_letters: letters.iter().map(StreamDeadLetterView::from).collect(),
    }))
}
