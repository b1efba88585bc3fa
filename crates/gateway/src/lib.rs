//! The gateway plane's core, independent of any wire protocol: endpoint keys and shared access
//! signatures, device registration and device tokens, the in-memory credential cache that keeps
//! verification off the database, and moving messages between protocol adapters and the durable
//! log (ingress into channel streams, egress from endpoint inboxes).
//!
//! The HTTP adapter (routes in `mh-api`) parses requests and calls [`Gateway`]; a WebSocket or
//! MQTT adapter will call the same methods.

mod cache;
pub mod device_token;
mod error;
pub mod keys;
mod messaging;
mod registration;
pub mod sas;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;
use mh_auth::TokenService;
use mh_log::{Inboxes, MessageLog};
use mh_store::{Direction, MetadataStore};
use time::OffsetDateTime;
use uuid::Uuid;

pub use cache::{EndpointEntry, ResolvedRoute};
pub use error::{ErrorKind, GatewayError, Result};
pub use keys::{enrollment_proof, GatewaySecret, KeyPurpose, GATEWAY_SECRET_FILE};
pub use messaging::{IngestReceipt, RouteReceipt, RouteSelector};
pub use registration::{validate_device_id, IssuedDeviceToken, RegistrationRequest};

use cache::{Cache, DeviceState};
use registration::RegistrationLimiter;

/// SAS key names (`skn`) of the two directions.
pub const INBOUND_KEY_NAME: &str = "inbound";
pub const OUTBOUND_KEY_NAME: &str = "outbound";

/// Largest message (or batch request) the gateway accepts.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Base URL of the server as clients reach it; resource URIs start with it.
    pub public_url: String,
    pub max_devices_per_endpoint: u32,
    pub device_token_lifetime: Duration,
    /// How long a received inbox message stays invisible to other receivers.
    pub lock_duration: Duration,
    /// Upper bound of a long poll (`wait`), so that requests end in reasonable time.
    pub max_wait: Duration,
    pub registration_per_endpoint: Quota,
    pub registration_per_ip: Quota,
}

/// Who is acting on an endpoint's data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Holder of the endpoint's shared access signature for that direction.
    Signature,
    /// A registered device, with its own token.
    Device(String),
    /// The account that owns the endpoint, with its access token.
    Owner,
}

impl Principal {
    pub fn device(&self) -> Option<&str> {
        match self {
            Principal::Device(id) => Some(id),
            _ => None,
        }
    }
}

/// The gateway of one node. Shared by every adapter; cheap to reach through an `Arc`.
pub struct Gateway {
    store: Arc<dyn MetadataStore>,
    log: Arc<dyn MessageLog>,
    inboxes: Arc<dyn Inboxes>,
    tokens: Arc<TokenService>,
    secret: GatewaySecret,
    cache: Cache,
    limiter: RegistrationLimiter,
    config: GatewayConfig,
}

fn now_seconds() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Gateway {
    pub fn new(
        store: Arc<dyn MetadataStore>,
        log: Arc<dyn MessageLog>,
        inboxes: Arc<dyn Inboxes>,
        tokens: Arc<TokenService>,
        secret: GatewaySecret,
        config: GatewayConfig,
    ) -> Self {
        Gateway {
            store,
            log,
            inboxes,
            tokens,
            secret,
            cache: Cache::default(),
            limiter: RegistrationLimiter::new(
                config.registration_per_endpoint,
                config.registration_per_ip,
            ),
            config,
        }
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    pub fn log(&self) -> &dyn MessageLog {
        self.log.as_ref()
    }

    pub fn inboxes(&self) -> &dyn Inboxes {
        self.inboxes.as_ref()
    }

    /// The resource URI of an endpoint, which its signatures are issued for.
    pub fn resource_uri(&self, endpoint: Uuid) -> String {
        format!("{}/endpoints/{endpoint}", self.config.public_url)
    }

    /// The HTTP message URI of an endpoint, split as the quick-create answer shows it.
    pub fn message_path(endpoint: Uuid) -> String {
        format!("/endpoints/{endpoint}/messages")
    }

    /// The endpoint with keys and routes, from memory when possible. Unknown → `NotFound`.
    pub async fn endpoint(&self, id: Uuid) -> Result<Arc<EndpointEntry>> {
        if let Some(entry) = self.cache.endpoint(id) {
            return Ok(entry);
        }
        let epoch = self.cache.epoch();
        let endpoint = self
            .store
            .endpoint(id)
            .await?
            .ok_or_else(|| endpoint_not_found(id))?;
        let environments = self
            .store
            .environments_visible_to(endpoint.account_id)
            .await?;
        let mut routes = Vec::with_capacity(endpoint.routes.len());
        for route in &endpoint.routes {
            let (Some(channel), Some(environment)) = (
                self.store.channel(route.channel_id).await?,
                environments.iter().find(|e| e.id == route.environment_id),
            ) else {
                continue;
            };
            routes.push(ResolvedRoute {
                channel: channel.id,
                channel_name: channel.name,
                environment: environment.id,
                environment_name: environment.name.clone(),
                direction: route.direction,
            });
        }
        let version = endpoint.key_version;
        let entry = Arc::new(EndpointEntry {
            inbound_key: self.secret.derive(KeyPurpose::Inbound, id, version),
            outbound_key: self.secret.derive(KeyPurpose::Outbound, id, version),
            enrollment_key: self.secret.derive(KeyPurpose::Enrollment, id, version),
            device_token_key: self.secret.derive(KeyPurpose::DeviceTokens, id, 0),
            endpoint,
            routes,
        });
        self.cache.insert_endpoint(entry.clone(), epoch);
        Ok(entry)
    }

    /// The endpoint when it exists, has not expired, and is usable on the data plane.
    pub async fn live_endpoint(&self, id: Uuid) -> Result<Arc<EndpointEntry>> {
        let entry = self.endpoint(id).await?;
        if entry.endpoint.is_expired(OffsetDateTime::now_utc()) {
            return Err(GatewayError::not_found(format!(
                "endpoint {id} has expired"
            )));
        }
        Ok(entry)
    }

    /// The endpoint when `account` owns it; someone else's answers `NotFound` like an unknown one.
    pub async fn owned_endpoint(&self, id: Uuid, account: Uuid) -> Result<Arc<EndpointEntry>> {
        let entry = self.endpoint(id).await?;
        if entry.endpoint.account_id != account {
            return Err(endpoint_not_found(id));
        }
        Ok(entry)
    }

    /// Must be called after an endpoint's keys, routes or existence changed.
    pub fn invalidate_endpoint(&self, id: Uuid) {
        self.cache.invalidate_endpoint(id);
    }

    /// Must be called after a device was deleted, disabled, enabled or got a new token.
    pub fn invalidate_device(&self, endpoint: Uuid, device: &str) {
        self.cache.invalidate_device(endpoint, device);
    }

    /// The shared access signature of `direction`, valid until `expiry` (unix seconds).
    pub fn signature(&self, entry: &EndpointEntry, direction: Direction, expiry: i64) -> String {
        let (name, key) = match direction {
            Direction::In => (INBOUND_KEY_NAME, &entry.inbound_key),
            Direction::Out => (OUTBOUND_KEY_NAME, &entry.outbound_key),
        };
        sas::sign(&self.resource_uri(entry.endpoint.id), name, key, expiry)
    }

    /// The endpoint's enrollment key (base64), shown to its owner only.
    pub fn enrollment_key(&self, entry: &EndpointEntry) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(entry.enrollment_key)
    }

    /// Checks the `Authorization` value of a data-plane request on `entry` for `direction`.
    pub async fn authenticate(
        &self,
        entry: &EndpointEntry,
        authorization: Option<&str>,
        direction: Direction,
    ) -> Result<Principal> {
        let value = authorization.ok_or_else(|| {
            GatewayError::unauthorized(
                "credentials are required: send Authorization: SharedAccessSignature ..., Bearer <device token> or Bearer <access token>",
            )
        })?;
        let (scheme, credentials) = value.trim().split_once(' ').ok_or_else(|| {
            GatewayError::unauthorized(
                "the Authorization header must be 'SharedAccessSignature ...' or 'Bearer <token>'",
            )
        })?;
        let now = now_seconds();
        if scheme == sas::SCHEME {
            let presented =
                sas::parse(credentials).map_err(|e| GatewayError::unauthorized(e.to_string()))?;
            let (name, key) = match direction {
                Direction::In => (INBOUND_KEY_NAME, &entry.inbound_key),
                Direction::Out => (OUTBOUND_KEY_NAME, &entry.outbound_key),
            };
            presented
                .verify(name, key, &format!("/endpoints/{}", entry.endpoint.id), now)
                .map_err(|e| GatewayError::unauthorized(e.to_string()))?;
            return Ok(Principal::Signature);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(GatewayError::unauthorized(format!(
                "the Authorization scheme must be SharedAccessSignature or Bearer, not {scheme}"
            )));
        }
        if let Some(token) = device_token::from_bearer(credentials) {
            let device = self.verify_device_token(entry, &token, now).await?;
            return Ok(Principal::Device(device));
        }
        let token = mh_auth::decode_bearer(credentials).ok_or_else(|| {
            GatewayError::unauthorized(
                "the bearer value is neither a token nor its base64 encoding",
            )
        })?;
        let claims = self
            .tokens
            .verify(&token, now)
            .map_err(|e| GatewayError::unauthorized(e.to_string()))?;
        if claims.account != entry.endpoint.account_id {
            // Someone else's endpoint looks like an unknown one.
            return Err(endpoint_not_found(entry.endpoint.id));
        }
        Ok(Principal::Owner)
    }

    /// Verifies a device token for `entry` and answers the device id.
    pub(crate) async fn verify_device_token(
        &self,
        entry: &EndpointEntry,
        token: &str,
        now: i64,
    ) -> Result<String> {
        let (claims, payload, signature) = device_token::peek(token)
            .ok_or_else(|| GatewayError::unauthorized("the device token is malformed"))?;
        if claims.endpoint != entry.endpoint.id
            || !device_token::verify(&entry.device_token_key, &payload, &signature)
        {
            return Err(GatewayError::unauthorized(
                "the device token is invalid or belongs to another endpoint",
            ));
        }
        if claims.expires_at <= now {
            return Err(GatewayError::unauthorized(
                "the device token has expired; register the device again",
            ));
        }
        match self.device_state(entry.endpoint.id, &claims.device).await? {
            None => Err(GatewayError::unauthorized(
                "the device token belongs to a device that no longer exists",
            )),
            Some(state) if state.disabled => Err(GatewayError::forbidden(
                "device_disabled",
                format!("device {:?} is disabled", claims.device),
            )),
            Some(state) if state.generation != claims.generation => Err(
                GatewayError::unauthorized("the device token was replaced by a newer one"),
            ),
            Some(_) => Ok(claims.device),
        }
    }

    async fn device_state(&self, endpoint: Uuid, device: &str) -> Result<Option<DeviceState>> {
        if let Some(state) = self.cache.device(endpoint, device) {
            return Ok(state);
        }
        let epoch = self.cache.epoch();
        let state = self
            .store
            .device(endpoint, device)
            .await?
            .map(|d| DeviceState {
                generation: d.token_generation,
                disabled: d.disabled,
            });
        self.cache.insert_device(endpoint, device, state, epoch);
        Ok(state)
    }

    /// Registration attempts are limited per client address before anything else is looked at.
    pub fn check_registration_rate(&self, ip: IpAddr) -> Result<()> {
        self.limiter.check_ip(ip)
    }

    /// Forgets idle rate-limiter keys; run periodically.
    pub fn forget_idle(&self) {
        self.limiter.forget_idle();
    }
}

pub(crate) fn endpoint_not_found(id: Uuid) -> GatewayError {
    GatewayError::not_found(format!("endpoint {id} not found"))
}
