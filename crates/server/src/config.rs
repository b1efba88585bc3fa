//! `mh serve` settings. Each one comes from, in order of precedence: a command-line flag, its
//! `MH_*` environment variable, the TOML file given with `--config`, the built-in default.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use mh_api::Rate;
use serde::Deserialize;

use crate::ServerError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Who decides on uploaded handler versions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewMode {
    /// A reviewer account accepts or rejects each version.
    #[default]
    Manual,
    /// Every valid upload is accepted at once (single-operator installations).
    Auto,
}

/// Every setting is optional here so that the layers can be merged; [`ServeOptions::resolve`]
/// fills in the defaults.
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeOptions {
    /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port.
    #[arg(long, env = "MH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory, created on first start [default: ./mh-data].
    #[arg(long, env = "MH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// URL clients reach this server at, used in the URIs it hands out [default: http://LISTEN].
    #[arg(long, env = "MH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Log line format.
    #[arg(long, env = "MH_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// The API scope `POST /authorize` grants [default: http://api.messagehandler.net/].
    #[arg(long, env = "MH_SCOPE")]
    pub scope: Option<String>,
    /// Access-token lifetime in seconds [default: 3600].
    #[arg(long, env = "MH_TOKEN_LIFETIME")]
    pub token_lifetime: Option<u64>,
    /// Refresh-token lifetime in seconds [default: 7776000, 90 days].
    #[arg(long, env = "MH_REFRESH_TOKEN_LIFETIME")]
    pub refresh_token_lifetime: Option<u64>,
    /// Largest request body, in bytes, on routes without their own limit [default: 65536].
    #[arg(long, env = "MH_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Seconds a request may take before it is answered with 503 [default: 30].
    #[arg(long, env = "MH_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,
    /// Token requests per second allowed from one client address [default: 100].
    #[arg(long, env = "MH_AUTHORIZE_RATE")]
    pub authorize_rate: Option<NonZeroU32>,
    /// Burst of token requests allowed from one client address [default: 200].
    #[arg(long, env = "MH_AUTHORIZE_BURST")]
    pub authorize_burst: Option<NonZeroU32>,
    /// Token requests per second allowed for one client id [default: 10].
    #[arg(long, env = "MH_CLIENT_AUTHORIZE_RATE")]
    pub client_authorize_rate: Option<NonZeroU32>,
    /// Burst of token requests allowed for one client id [default: 20].
    #[arg(long, env = "MH_CLIENT_AUTHORIZE_BURST")]
    pub client_authorize_burst: Option<NonZeroU32>,
    /// Most devices one endpoint may have [default: 10000].
    #[arg(long, env = "MH_MAX_DEVICES_PER_ENDPOINT")]
    pub max_devices_per_endpoint: Option<u32>,
    /// Device-token lifetime in seconds [default: 2592000, 30 days].
    #[arg(long, env = "MH_DEVICE_TOKEN_LIFETIME")]
    pub device_token_lifetime: Option<u64>,
    /// Seconds a received inbox message stays locked (invisible to others) [default: 30].
    #[arg(long, env = "MH_LOCK_DURATION")]
    pub lock_duration: Option<u64>,
    /// Deliveries of an inbox message before it moves to the dead-letter inbox [default: 10].
    #[arg(long, env = "MH_MAX_DELIVERIES")]
    pub max_deliveries: Option<u32>,
    /// Longest long poll (`wait`) in seconds on egress and channel tails [default: 60].
    #[arg(long, env = "MH_MAX_WAIT")]
    pub max_wait: Option<u64>,
    /// Device registrations per second allowed from one client address; bursts of twice that
    /// [default: 20].
    #[arg(long, env = "MH_REGISTRATION_RATE")]
    pub registration_rate: Option<NonZeroU32>,
    /// Device registrations per second allowed on one endpoint; bursts of twice that
    /// [default: 100].
    #[arg(long, env = "MH_ENDPOINT_REGISTRATION_RATE")]
    pub endpoint_registration_rate: Option<NonZeroU32>,
    /// Largest handler package upload, in bytes [default: 33554432, 32 MiB].
    #[arg(long, env = "MH_UPLOAD_LIMIT")]
    pub upload_limit: Option<usize>,
    /// Most zip entries a handler package may hold [default: 1000].
    #[arg(long, env = "MH_PACKAGE_MAX_ENTRIES")]
    pub package_max_entries: Option<usize>,
    /// Most bytes a handler package may unpack to [default: 134217728, 128 MiB].
    #[arg(long, env = "MH_PACKAGE_MAX_UNCOMPRESSED")]
    pub package_max_uncompressed: Option<u64>,
    /// Who accepts uploaded handler versions: a reviewer account, or the server on upload.
    #[arg(long, env = "MH_REVIEW", value_enum)]
    pub review: Option<ReviewMode>,
    /// Tries of a message that a handler keeps failing on before it moves to the channel's
    /// dead letters [default: 3].
    #[arg(long, env = "MH_HANDLER_ATTEMPTS")]
    pub handler_attempts: Option<u32>,
    /// Milliseconds between the first and second try of a failing message; doubles after each
    /// further try [default: 100].
    #[arg(long, env = "MH_HANDLER_RETRY_BACKOFF_MS")]
    pub handler_retry_backoff_ms: Option<u64>,
    /// Most messages a handler gets in one batch [default: 500].
    #[arg(long, env = "MH_HANDLER_BATCH_SIZE")]
    pub handler_batch_size: Option<usize>,
    /// Largest memory of one WebAssembly handler, in MiB [default: 64].
    #[arg(long, env = "MH_HANDLER_MEMORY_MIB")]
    pub handler_memory_mib: Option<usize>,
    /// Longest one call into a WebAssembly handler may run, in milliseconds [default: 2000].
    #[arg(long, env = "MH_HANDLER_TIME_LIMIT_MS")]
    pub handler_time_limit_ms: Option<u64>,
    /// Most handler hops a message may make before it is dead-lettered (loop protection)
    /// [default: 16].
    #[arg(long, env = "MH_MAX_HOPS")]
    pub max_hops: Option<u32>,
}

/// Settings with every default applied.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    pub scope: String,
    pub token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub authorize_per_ip: Rate,
    pub authorize_per_client: Rate,
    pub max_devices_per_endpoint: u32,
    pub device_token_lifetime: Duration,
    pub lock_duration: Duration,
    pub max_deliveries: u32,
    pub max_wait: Duration,
    pub registration_per_ip: Rate,
    pub registration_per_endpoint: Rate,
    pub upload_limit: usize,
    pub package_limits: mh_package::Limits,
    pub review: ReviewMode,
    pub fabric: mh_fabric::FabricConfig,
}

pub const DEFAULT_SCOPE: &str = "http://api.messagehandler.net/";
pub const DEFAULT_DATA_DIR: &str = "./mh-data";

fn rate(value: Option<NonZeroU32>, default: u32) -> NonZeroU32 {
    value.unwrap_or_else(|| NonZeroU32::new(default).unwrap_or(NonZeroU32::MIN))
}

/// A rate whose burst is twice the sustained rate.
fn doubled_burst(per_second: NonZeroU32) -> Rate {
    Rate {
        per_second,
        burst: per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1)),
    }
}

impl ServeOptions {
    /// Reads a TOML file whose keys are the flag names with `_` for `-` (e.g. `data_dir`).
    pub fn from_file(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ServerError::ConfigInvalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Takes every setting of `self` that is set, and the rest from `lower`.
    pub fn or(self, lower: ServeOptions) -> ServeOptions {
        ServeOptions {
            listen: self.listen.or(lower.listen),
            data_dir: self.data_dir.or(lower.data_dir),
            public_url: self.public_url.or(lower.public_url),
            log_format: self.log_format.or(lower.log_format),
            scope: self.scope.or(lower.scope),
            token_lifetime: self.token_lifetime.or(lower.token_lifetime),
            refresh_token_lifetime: self.refresh_token_lifetime.or(lower.refresh_token_lifetime),
            body_limit: self.body_limit.or(lower.body_limit),
            request_timeout: self.request_timeout.or(lower.request_timeout),
            authorize_rate: self.authorize_rate.or(lower.authorize_rate),
            authorize_burst: self.authorize_burst.or(lower.authorize_burst),
            client_authorize_rate: self.client_authorize_rate.or(lower.client_authorize_rate),
            client_authorize_burst: self.client_authorize_burst.or(lower.client_authorize_burst),
            max_devices_per_endpoint: self
                .max_devices_per_endpoint
                .or(lower.max_devices_per_endpoint),
            device_token_lifetime: self.device_token_lifetime.or(lower.device_token_lifetime),
            lock_duration: self.lock_duration.or(lower.lock_duration),
            max_deliveries: self.max_deliveries.or(lower.max_deliveries),
            max_wait: self.max_wait.or(lower.max_wait),
            registration_rate: self.registration_rate.or(lower.registration_rate),
            endpoint_registration_rate: self
                .endpoint_registration_rate
                .or(lower.endpoint_registration_rate),
            upload_limit: self.upload_limit.or(lower.upload_limit),
            package_max_entries: self.package_max_entries.or(lower.package_max_entries),
            package_max_uncompressed: self
                .package_max_uncompressed
                .or(lower.package_max_uncompressed),
            review: self.review.or(lower.review),
            handler_attempts: self.handler_attempts.or(lower.handler_attempts),
            handler_retry_backoff_ms: self
                .handler_retry_backoff_ms
                .or(lower.handler_retry_backoff_ms),
            handler_batch_size: self.handler_batch_size.or(lower.handler_batch_size),
            handler_memory_mib: self.handler_memory_mib.or(lower.handler_memory_mib),
            handler_time_limit_ms: self.handler_time_limit_ms.or(lower.handler_time_limit_ms),
            max_hops: self.max_hops.or(lower.max_hops),
        }
    }

    pub fn resolve(self) -> Result<ServeConfig, ServerError> {
        let token_lifetime = self.token_lifetime.unwrap_or(3600);
        if token_lifetime == 0 {
            return Err(ServerError::Setting(
                "token_lifetime must be at least 1 second".into(),
            ));
        }
        let package_limits = mh_package::Limits {
            max_entries: self.package_max_entries.unwrap_or(1000),
            max_uncompressed: self.package_max_uncompressed.unwrap_or(128 * 1024 * 1024),
        };
        let fabric_defaults = mh_fabric::FabricConfig::default();
        let fabric = mh_fabric::FabricConfig {
            batch_size: self
                .handler_batch_size
                .unwrap_or(fabric_defaults.batch_size)
                .clamp(1, 10_000),
            max_attempts: self
                .handler_attempts
                .unwrap_or(fabric_defaults.max_attempts)
                .max(1),
            retry_backoff: self
                .handler_retry_backoff_ms
                .map_or(fabric_defaults.retry_backoff, Duration::from_millis),
            max_hops: self.max_hops.unwrap_or(fabric_defaults.max_hops).max(1),
            limits: mh_fabric::host::Limits {
                memory_bytes: self
                    .handler_memory_mib
                    .map_or(fabric_defaults.limits.memory_bytes, |mib| {
                        mib.max(1).saturating_mul(1 << 20)
                    }),
                call_time: self
                    .handler_time_limit_ms
                    .map_or(fabric_defaults.limits.call_time, |ms| {
                        Duration::from_millis(ms.max(10))
                    }),
                ..fabric_defaults.limits.clone()
            },
            package_limits,
            ..fabric_defaults
        };
        Ok(ServeConfig {
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: self
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            public_url: self.public_url.map(|u| u.trim_end_matches('/').to_string()),
            log_format: self.log_format.unwrap_or_default(),
            scope: self.scope.unwrap_or_else(|| DEFAULT_SCOPE.to_string()),
            token_lifetime: Duration::from_secs(token_lifetime),
            refresh_token_lifetime: Duration::from_secs(
                self.refresh_token_lifetime.unwrap_or(90 * 24 * 3600),
            ),
            body_limit: self.body_limit.unwrap_or(64 * 1024),
            request_timeout: Duration::from_secs(self.request_timeout.unwrap_or(30).max(1)),
            authorize_per_ip: Rate {
                per_second: rate(self.authorize_rate, 100),
                burst: rate(self.authorize_burst, 200),
            },
            authorize_per_client: Rate {
                per_second: rate(self.client_authorize_rate, 10),
                burst: rate(self.client_authorize_burst, 20),
            },
            max_devices_per_endpoint: self.max_devices_per_endpoint.unwrap_or(10_000),
            device_token_lifetime: Duration::from_secs(
                self.device_token_lifetime.unwrap_or(30 * 24 * 3600).max(1),
            ),
            lock_duration: Duration::from_secs(self.lock_duration.unwrap_or(30).max(1)),
            max_deliveries: self.max_deliveries.unwrap_or(10).max(1),
            max_wait: Duration::from_secs(self.max_wait.unwrap_or(60)),
            registration_per_ip: doubled_burst(rate(self.registration_rate, 20)),
            registration_per_endpoint: doubled_burst(rate(self.endpoint_registration_rate, 100)),
            upload_limit: self.upload_limit.unwrap_or(32 * 1024 * 1024),
            package_limits,
            review: self.review.unwrap_or_default(),
            fabric,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let file: ServeOptions =
            toml::from_str("listen = \"127.0.0.1:9000\"\ntoken_lifetime = 60\n").unwrap();
        let flags = ServeOptions {
            token_lifetime: Some(5),
            ..ServeOptions::default()
        };
        let config = flags.or(file).resolve().unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.token_lifetime, Duration::from_secs(5));
        assert_eq!(config.scope, DEFAULT_SCOPE);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    }

    #[test]
    fn package_settings_have_defaults_and_come_from_the_file() {
        let defaults = ServeOptions::default().resolve().unwrap();
        assert_eq!(defaults.upload_limit, 32 * 1024 * 1024);
        assert_eq!(defaults.package_limits.max_entries, 1000);
        assert_eq!(defaults.review, ReviewMode::Manual);
        let file: ServeOptions = toml::from_str(
            "review = \"auto\"\nupload_limit = 1024\npackage_max_uncompressed = 10\n",
        )
        .unwrap();
        let config = file.resolve().unwrap();
        assert_eq!(config.review, ReviewMode::Auto);
        assert_eq!(config.upload_limit, 1024);
        assert_eq!(config.package_limits.max_uncompressed, 10);
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let error = toml::from_str::<ServeOptions>("lisen = \"x\"").unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
    }
}
