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
    /// Largest package upload, in bytes (the upload route's own body limit).
    pub upload_limit: usize,
    /// What an uploaded package may unpack to.
    pub package_limits: mh_package::Limits,
    /// `--review auto`: uploads are accepted at once, for single-operator installations.
    pub auto_review: bool,
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
    /// Endpoint keys, device tokens, the credential cache and the message log.
    pub gateway: Arc<mh_gateway::Gateway>,
    /// Content-addressed storage of handler packages.
    pub blobs: Arc<dyn mh_blobs::BlobStore>,
    /// Compiles uploaded components and checks them against the handler world.
    pub validator: Arc<mh_package::Validator>,
    /// Checks handler configurations, runs deployed channels.
    pub fabric: Arc<mh_fabric::Fabric>,
    /// Each channel's log stream and dead letters, as the fabric writes them.
    pub journal: Arc<dyn mh_log::ChannelJournal>,
}
