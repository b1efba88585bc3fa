//! Background work of a running node: picking up what the admin CLI changed in the data directory
//! (revoked clients, rotated signing keys) and trimming rate-limiter state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mh_api::AuthorizeLimiter;
use mh_auth::{KeyRing, TokenService};
use mh_store::MetadataStore;

/// How soon a revocation or key rotation made by another process takes effect here.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(
    store: Arc<dyn MetadataStore>,
    tokens: Arc<TokenService>,
    limiter: Arc<AuthorizeLimiter>,
    gateway: Arc<mh_gateway::Gateway>,
    data_dir: PathBuf,
) {
    let keys_path = KeyRing::path(&data_dir);
    let mut keys_modified = modified(&keys_path);
    let mut ticks = tokio::time::interval(RELOAD_INTERVAL);
    let mut rounds: u64 = 0;
    loop {
        ticks.tick().await;
        rounds += 1;
        match store.revoked_clients().await {
            Ok(revoked) => tokens.revocations().replace(revoked),
            Err(error) => tracing::warn!(%error, "cannot reload revoked clients"),
        }
        let now_modified = modified(&keys_path);
        if now_modified != keys_modified {
            match KeyRing::load_or_create(&data_dir) {
                Ok(keys) => {
                    tokens.replace_keys(keys);
                    keys_modified = now_modified;
                    tracing::info!(key = %tokens.current_key_id(), "signing keys reloaded");
                }
                Err(error) => tracing::warn!(%error, "cannot reload signing keys"),
            }
        }
        if rounds.is_multiple_of(60) {
            limiter.forget_idle();
            gateway.forget_idle();
        }
    }
}

/// Modification time and size: a rotation within the file system's timestamp granularity still
/// changes the size.
fn modified(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}
