//! One MessageHandler node: everything `mh serve` does between reading its settings and exiting.

mod config;
mod upkeep;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;
use mh_api::{ApiConfig, AppState, AuthorizeLimiter};
use mh_auth::{KeyRing, RevocationList, TokenService};
use mh_blobs::FsBlobStore;
use mh_package::Validator;
use mh_store::{AccountStore, MetadataStore, SqliteStore};
use thiserror::Error;
use tokio::net::TcpListener;

pub use config::{
    LogFormat, ReviewMode, ServeConfig, ServeOptions, DEFAULT_DATA_DIR, DEFAULT_SCOPE,
};

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot read the configuration file {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the configuration file {path} is invalid: {reason}")]
    ConfigInvalid { path: PathBuf, reason: String },
    #[error("invalid setting: {0}")]
    Setting(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] mh_store::StoreError),
    #[error(transparent)]
    Keys(#[from] mh_auth::KeyError),
    #[error(transparent)]
    Package(#[from] mh_package::PackageError),
    #[error("cannot open the message log: {0}")]
    Log(#[from] mh_log::LogError),
    #[error("cannot start the gateway: {0}")]
    Gateway(#[from] mh_gateway::GatewayError),
    #[error("cannot start the fabric: {0}")]
    Fabric(#[from] mh_fabric::FabricError),
    #[error("server failure: {0}")]
    Io(#[from] std::io::Error),
}

/// Token issuer when no public URL is configured.
const DEFAULT_ISSUER: &str = "messagehandler";

/// Creates the data directory (owner-only: it holds keys and credentials) when it is missing.
pub fn prepare_data_dir(path: &std::path::Path) -> Result<(), ServerError> {
    let error = |source| ServerError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).map_err(error)?;
        if metadata.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(error)?;
        }
    }
    Ok(())
}

/// Runs the node until `shutdown` completes, then lets in-flight requests finish and closes the
/// stores.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    prepare_data_dir(&config.data_dir)?;
    let store = Arc::new(SqliteStore::open(&config.data_dir).await?);
    let keys = KeyRing::load_or_create(&config.data_dir)?;
    let revocations = Arc::new(RevocationList::default());
    revocations.replace(store.revoked_clients().await?);
    let log_dir = config.data_dir.clone();
    let log_options = mh_log::LogOptions {
        max_delivery_count: config.max_deliveries,
        ..Default::default()
    };
    // Opening recovers after a crash and may read for a while: keep it off the async workers.
    let log = tokio::task::spawn_blocking(move || mh_log::EmbeddedLog::open(&log_dir, log_options))
        .await
        .map_err(|e| ServerError::Io(std::io::Error::other(e)))??;
    let gateway_secret = mh_gateway::GatewaySecret::load_or_create(&config.data_dir)?;

    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Listen {
                address: config.listen,
                source,
            })?;
    let address = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));

    // The issuer must not change when only the listening port does (tests and `--listen :0`),
    // or every outstanding token would die on restart.
    let issuer = config
        .public_url
        .clone()
        .unwrap_or_else(|| DEFAULT_ISSUER.to_string());
    let tokens = Arc::new(TokenService::new(
        keys,
        revocations,
        issuer,
        config.scope.clone(),
    ));
    let limiter = Arc::new(AuthorizeLimiter::new(
        config.authorize_per_ip,
        config.authorize_per_client,
    ));
    let metrics = install_metrics_recorder();
    let gateway = Arc::new(mh_gateway::Gateway::new(
        store.clone(),
        Arc::new(log.clone()),
        Arc::new(log.clone()),
        tokens.clone(),
        gateway_secret,
        mh_gateway::GatewayConfig {
            public_url: public_url.clone(),
            max_devices_per_endpoint: config.max_devices_per_endpoint,
            device_token_lifetime: config.device_token_lifetime,
            lock_duration: config.lock_duration,
            max_wait: config.max_wait,
            registration_per_endpoint: config.registration_per_endpoint.quota(),
            registration_per_ip: config.registration_per_ip.quota(),
        },
    ));
    let blobs: Arc<dyn mh_blobs::BlobStore> =
        Arc::new(FsBlobStore::new(config.data_dir.join("blobs")));
    let shared_log = Arc::new(log.clone());
    let fabric = Arc::new(mh_fabric::Fabric::new(
        mh_fabric::FabricParts {
            store: store.clone(),
            log: shared_log.clone(),
            inboxes: shared_log.clone(),
            journal: shared_log.clone(),
            states: shared_log,
            blobs: blobs.clone(),
        },
        mh_fabric::FabricConfig {
            compiled_dir: Some(config.data_dir.join("compiled")),
            ..config.fabric.clone()
        },
    )?);
    fabric.start().await?;
    let state = AppState {
        store: store.clone(),
        tokens: tokens.clone(),
        config: Arc::new(ApiConfig {
            scope: config.scope.clone(),
            access_token_lifetime: config.token_lifetime,
            refresh_token_lifetime: config.refresh_token_lifetime,
            body_limit: config.body_limit,
            request_timeout: config.request_timeout,
            upload_limit: config.upload_limit,
            package_limits: config.package_limits,
            auto_review: config.review == ReviewMode::Auto,
        }),
        limiter: limiter.clone(),
        metrics,
        blobs,
        validator: Arc::new(Validator::new()?),
        gateway: gateway.clone(),
        fabric: fabric.clone(),
        journal: Arc::new(log.clone()),
    };

    let upkeep = tokio::spawn(upkeep::run(
        store.clone(),
        tokens,
        limiter,
        gateway,
        config.data_dir.clone(),
    ));
    tracing::info!(
        %address,
        url = %public_url,
        data_dir = %config.data_dir.display(),
        "listening"
    );
    let app = mh_api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    upkeep.abort();
    fabric.shutdown().await;
    // Everything acknowledged is already durable; closing lets the writer finish cleanly.
    if let Err(error) = log.close().await {
        tracing::warn!(%error, "cannot close the message log cleanly");
    }
    store.close().await;
    tracing::info!("stopped");
    served.map_err(ServerError::Io)
}

/// The process-wide Prometheus recorder. Installing twice (several servers in one test process)
/// keeps the first recorder and serves an empty text from the others.
fn install_metrics_recorder() -> mh_api::MetricsRenderer {
    match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Arc::new(move || handle.render()),
        Err(error) => {
            tracing::warn!(%error, "metrics recorder already installed; /metrics of this server is empty");
            Arc::new(String::new)
        }
    }
}
