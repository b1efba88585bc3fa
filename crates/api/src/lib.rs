//! The control plane's HTTP surface: routes per resource, the bearer extractor, the single error
//! mapping, and the OpenAPI document generated from the route code.

pub mod accounts;
mod authenticate;
mod error;
pub mod extract;
mod limit;
mod middleware;
mod routes;
mod state;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use authenticate::Caller;
pub use error::{ApiError, ApiResult, ErrorBody};
pub use limit::{AuthorizeLimiter, Rate};
pub use state::{ApiConfig, AppState, MetricsRenderer};

#[derive(OpenApi)]
#[openapi(
    info(title = "MessageHandler API", description = "Control plane of MessageHandler. Every error body is `{\"error\", \"message\"}`."),
    paths(
        routes::authorize::authorize,
        routes::accounts::me,
        routes::system::health,
        routes::system::metrics,
        routes::system::openapi,
        routes::environments::list,
        routes::environments::show,
        routes::environments::create,
        routes::channels::create,
        routes::channels::list,
        routes::channels::show,
        routes::channels::tail,
        routes::endpoints::assign,
        routes::endpoints::quick,
        routes::endpoints::list,
        routes::endpoints::show,
        routes::endpoints::rotate,
        routes::endpoints::delete,
        routes::devices::register,
        routes::devices::list,
        routes::devices::delete,
        routes::devices::disable,
        routes::devices::enable,
        routes::messages::send,
        routes::messages::receive,
        routes::messages::complete,
        routes::messages::complete_many,
        routes::messages::abandon,
        routes::messages::dead_letters,
        routes::messages::direct,
        routes::handlers::create_definition,
        routes::handlers::list_definitions,
        routes::handlers::show_definition,
        routes::handlers::update_definition,
        routes::handlers::show_version,
        routes::handlers::upload_package,
        routes::handlers::download_package,
        routes::handlers::activate,
        routes::handlers::pending_reviews,
        routes::handlers::review,
        routes::channel_handlers::create,
        routes::channel_handlers::list,
        routes::channel_handlers::show,
        routes::channel_handlers::replace,
        routes::channel_handlers::delete,
        routes::deployments::deploy,
        routes::deployments::list,
        routes::deployments::undeploy,
        routes::deployments::environment_handlers,
        routes::deployments::environment_handler,
        routes::variables::list,
        routes::variables::list_of,
        routes::variables::upsert,
        routes::variables::delete,
        routes::variables::grants,
        routes::variables::grant,
        routes::variables::revoke,
        routes::gallery::handlers,
        routes::channel_logs::logs,
        routes::channel_logs::dead_letters,
    ),
    modifiers(&BearerScheme),
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Authorization: Bearer base64(access_token), or the raw access token",
                    ))
                    .build(),
            ),
        );
    }
}

/// The whole HTTP application. Serve it with connect info (`SocketAddr`) so that per-address
/// limits work.
pub fn router(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    Router::new()
        .route("/authorize", post(routes::authorize::authorize))
        .route("/accounts/me", get(routes::accounts::me))
        .route("/health", get(routes::system::health))
        .route("/metrics", get(routes::system::metrics))
        .route("/openapi.json", get(routes::system::openapi))
        .merge(routes::handlers::routes(state.config.upload_limit))
        .merge(routes::gateway::routes(&state))
        .merge(routes::channel_handlers::routes())
        .merge(routes::deployments::routes())
        .merge(routes::variables::routes())
        .merge(routes::gallery::routes())
        .merge(routes::channel_logs::routes())
        .fallback(middleware::unknown_route)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            middleware::time_limit,
        ))
        .merge(routes::gateway::long_poll_routes(&state))
        .merge(routes::channel_logs::long_poll_routes(&state))
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .with_state(state)
}
