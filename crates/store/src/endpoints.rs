//! Endpoints (secured gates for external systems), their authorized routes, and their devices.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// Which way messages flow on a route, seen from the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the endpoint into the channel.
    In,
    /// From the channel out to the endpoint.
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            _ => None,
        }
    }
}

/// How devices may register themselves behind an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Anyone knowing the endpoint id may register a new device id.
    Open,
    /// The device proves it holds a key derived from the endpoint's enrollment key.
    Key,
    Disabled,
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Open => "open",
            Registration::Key => "key",
            Registration::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Registration::Open),
            "key" => Some(Registration::Key),
            "disabled" => Some(Registration::Disabled),
            _ => None,
        }
    }
}

/// An authorized route: the endpoint may send into (`In`) or receive from (`Out`) the channel in
/// that environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub channel_id: Uuid,
    pub environment_id: Uuid,
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    /// Lowercase protocol names enabled for ingress, e.g. `http`.
    pub protocols_in: Vec<String>,
    pub protocols_out: Vec<String>,
    pub routes: Vec<Route>,
    /// Origins allowed by CORS; empty means no browser access.
    pub allowed_origins: Vec<String>,
    pub registration: Registration,
    /// Which generation of derived keys is valid; rotation increments it.
    pub key_version: i64,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl Endpoint {
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A device behind an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub endpoint_id: Uuid,
    pub device_id: String,
    /// Generation of the only device token that is valid; bumped on every issue.
    pub token_generation: i64,
    pub disabled: bool,
    pub registered_at: OffsetDateTime,
    pub refreshed_at: OffsetDateTime,
}

/// Outcome of a first registration attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceAdmission {
    /// The device is new and now registered (generation 1).
    Created(Device),
    /// A device with that id exists already; nothing changed.
    Exists(Device),
    /// The endpoint has as many devices as it may have.
    LimitReached,
}

#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// Creates the endpoints and their routes in one transaction.
    async fn create_endpoints(&self, endpoints: &[Endpoint]) -> Result<()>;
    async fn endpoint(&self, id: Uuid) -> Result<Option<Endpoint>>;
    async fn endpoints_of(&self, account: Uuid) -> Result<Vec<Endpoint>>;
    /// Increments the key version and returns the new one.
    async fn rotate_endpoint_keys(&self, id: Uuid) -> Result<i64>;
    /// Deletes the endpoint with its routes and devices.
    async fn delete_endpoint(&self, id: Uuid) -> Result<()>;

    async fn device(&self, endpoint: Uuid, device_id: &str) -> Result<Option<Device>>;
    async fn devices_of(&self, endpoint: Uuid) -> Result<Vec<Device>>;
    /// Registers a new device unless it exists or the endpoint already has `max_devices`; the
    /// count and the insert happen in one statement so concurrent registrations cannot overshoot.
    async fn admit_device(
        &self,
        endpoint: Uuid,
        device_id: &str,
        max_devices: u32,
        at: OffsetDateTime,
    ) -> Result<DeviceAdmission>;
    /// Moves the token generation from `current` to `current + 1`; answers `None` when the
    /// device is gone or its generation moved meanwhile (a concurrent refresh won).
    async fn renew_device_token(
        &self,
        endpoint: Uuid,
        device_id: &str,
        current: i64,
        at: OffsetDateTime,
    ) -> Result<Option<Device>>;
    async fn set_device_disabled(
        &self,
        endpoint: Uuid,
        device_id: &str,
        disabled: bool,
    ) -> Result<Device>;
    async fn delete_device(&self, endpoint: Uuid, device_id: &str) -> Result<()>;
}
