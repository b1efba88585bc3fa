//! Route tables of environments, channels, endpoints, devices and the HTTP gateway adapter.

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

use super::{channels, devices, endpoints, environments, messages};
use crate::middleware::time_limit;
use crate::state::AppState;

/// Every route of this module except the long polls, under the general request time limit.
pub fn routes(state: &AppState) -> Router<AppState> {
    let message_limit = DefaultBodyLimit::max(mh_gateway::MAX_MESSAGE_BYTES);
    let data_plane = Router::new()
        .route(
            "/endpoints/{id}/messages",
            post(messages::send)
                .layer(message_limit)
                .options(messages::preflight),
        )
        .route(
            "/endpoints/{id}/messages/complete",
            post(messages::complete_many).options(messages::preflight),
        )
        .route(
            "/endpoints/{id}/messages/{lock_token}/complete",
            post(messages::complete).options(messages::preflight),
        )
        .route(
            "/endpoints/{id}/messages/{lock_token}/abandon",
            post(messages::abandon).options(messages::preflight),
        )
        .route(
            "/endpoints/{id}/deadletter",
            get(messages::dead_letters).options(messages::preflight),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            messages::cors,
        ));
    Router::new()
        .route(
            "/environments",
            get(environments::list).post(environments::create),
        )
        .route("/environments/{id}", get(environments::show))
        .route("/channels", get(channels::list).post(channels::create))
        .route("/channels/{id}", get(channels::show))
        .route("/endpoints", get(endpoints::list).post(endpoints::quick))
        .route("/endpoints/assign", post(endpoints::assign))
        .route(
            "/endpoints/{id}",
            get(endpoints::show).delete(endpoints::delete),
        )
        .route("/endpoints/{id}/keys/rotate", post(endpoints::rotate))
        .route(
            "/endpoints/{id}/inbox",
            post(messages::direct).layer(message_limit),
        )
        .route(
            "/devices/register/{endpointid}/{deviceid}",
            post(devices::register),
        )
        .route("/endpoints/{id}/devices", get(devices::list))
        .route(
            "/endpoints/{id}/devices/{deviceid}",
            delete(devices::delete),
        )
        .route(
            "/endpoints/{id}/devices/{deviceid}/disable",
            post(devices::disable),
        )
        .route(
            "/endpoints/{id}/devices/{deviceid}/enable",
            post(devices::enable),
        )
        .merge(data_plane)
}

/// The long polls (egress receive, channel tail). They are merged outside the general time
/// limit, which would cut a legitimate wait, and bounded instead by the longest allowed wait
/// plus the general limit.
pub fn long_poll_routes(state: &AppState) -> Router<AppState> {
    let bound: Duration = state.gateway.config().max_wait + state.config.request_timeout;
    let limit = axum::middleware::from_fn_with_state(bound, time_limit);
    Router::new()
        .route(
            "/endpoints/{id}/messages",
            get(messages::receive).layer(limit.clone()),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            messages::cors,
        ))
        .route("/channels/{id}/messages", get(channels::tail).layer(limit))
}
