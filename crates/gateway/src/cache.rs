//! What the hot path needs about endpoints and devices, kept in memory.
//!
//! Verifying a signature or a device token must not cost a database round trip, so endpoints
//! (with their derived keys and resolved routes) and device states are loaded on first use and
//! kept until something changes them. Every change goes through this process (the control
//! plane calls the `invalidate_*` methods after writing), so entries never go stale. A load that
//! raced with an invalidation is not inserted: each invalidation bumps an epoch, and a loader
//! inserts only when the epoch it started under is still current.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use mh_store::{Direction, Endpoint};
use uuid::Uuid;

/// An authorized route with the names callers may use for its channel and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRoute {
    pub channel: Uuid,
    pub channel_name: String,
    pub environment: Uuid,
    pub environment_name: String,
    pub direction: Direction,
}

/// An endpoint as the gateway uses it.
pub struct EndpointEntry {
    pub endpoint: Endpoint,
    pub routes: Vec<ResolvedRoute>,
    pub(crate) inbound_key: [u8; 32],
    pub(crate) outbound_key: [u8; 32],
    pub(crate) enrollment_key: [u8; 32],
    pub(crate) device_token_key: [u8; 32],
}

/// The part of a device the hot path checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceState {
    pub generation: i64,
    pub disabled: bool,
}

#[derive(Default)]
pub(crate) struct Cache {
    endpoints: RwLock<HashMap<Uuid, Arc<EndpointEntry>>>,
    /// Per endpoint, per device id; `None` remembers that the device does not exist.
    devices: RwLock<HashMap<Uuid, HashMap<String, Option<DeviceState>>>>,
    epoch: AtomicU64,
}

impl Cache {
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn endpoint(&self, id: Uuid) -> Option<Arc<EndpointEntry>> {
        self.endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    pub fn insert_endpoint(&self, entry: Arc<EndpointEntry>, loaded_at_epoch: u64) {
        let mut endpoints = self
            .endpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if self.epoch() == loaded_at_epoch {
            endpoints.insert(entry.endpoint.id, entry);
        }
    }

    /// `Some(None)`: known not to exist; `None`: not cached.
    pub fn device(&self, endpoint: Uuid, device: &str) -> Option<Option<DeviceState>> {
        self.devices
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&endpoint)
            .and_then(|devices| devices.get(device).copied())
    }

    pub fn insert_device(
        &self,
        endpoint: Uuid,
        device: &str,
        state: Option<DeviceState>,
        loaded_at_epoch: u64,
    ) {
        let mut devices = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        if self.epoch() == loaded_at_epoch {
            devices
                .entry(endpoint)
                .or_default()
                .insert(device.to_string(), state);
        }
    }

    /// Forgets the endpoint and all its devices.
    pub fn invalidate_endpoint(&self, id: Uuid) {
        let mut endpoints = self
            .endpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut devices = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        endpoints.remove(&id);
        devices.remove(&id);
    }

    pub fn invalidate_device(&self, endpoint: Uuid, device: &str) {
        let mut devices = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(of_endpoint) = devices.get_mut(&endpoint) {
            of_endpoint.remove(device);
        }
    }
}
