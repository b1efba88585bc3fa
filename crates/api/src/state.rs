use std::sync::Arc;
use std::time::Duration;

use mh_auth::TokenService;
use mh_store::MetadataStore;

use crate::limit::AuthorizeLimiter;

/// Settings of the control plane that requests depend on.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// The only scope `POST /authorize` grants; also the token audience.
    pub scope: String,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    /// Upper bound of a request body on routes without a larger limit of their own.
    pub body_limit: usize,
    pub request_timeout: Duration,
}

/// Renders the Prometheus exposition text; provided by the process that installed the recorder.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn MetadataStore>,
    pub tokens: Arc<TokenService>,
    pub config: Arc<ApiConfig>,
    pub limiter: Arc<AuthorizeLimiter>,
    pub metrics: MetricsRenderer,
}
