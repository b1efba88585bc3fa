//! The per-handler key-value state behind the guest's `state` interface.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::HostError;

/// Writes staged by one unit of work, by key: `Some(value)` sets, `None` deletes. Only the last
/// write to a key counts.
pub type StateWrites = BTreeMap<String, Option<Vec<u8>>>;

/// Where a handler's state lives. The host reads through it while a call runs and writes to it
/// only when a unit of work has succeeded (see the module documentation).
pub trait HandlerState: Send {
    /// The committed value under `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError>;
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), HostError>;
    /// Removes `key`; a missing key is not an error.
    fn delete(&mut self, key: &str) -> Result<(), HostError>;

    /// Applies the writes of a successful unit of work. The default applies them one by one;
    /// durable implementations override it to write them in one transaction, together with the
    /// consumer checkpoint, so that a crash keeps either both or neither.
    fn apply(&mut self, writes: &StateWrites) -> Result<(), HostError> {
        for (key, value) in writes {
            match value {
                Some(value) => self.set(key, value)?,
                None => self.delete(key)?,
            }
        }
        Ok(())
    }
}

/// State in memory, for tests and for handlers whose state need not survive a restart. Clones
/// share the entries, so a test keeps one to look at what an instance committed.
#[derive(Debug, Clone, Default)]
pub struct MemoryState {
    entries: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl MemoryState {
    /// A copy of the committed entries.
    pub fn entries(&self) -> HashMap<String, Vec<u8>> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<u8>>> {
        // The map is consistent after every single operation, so a panic elsewhere while the
        // lock was held leaves nothing half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HandlerState for MemoryState {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self.lock().get(key).cloned())
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), HostError> {
        self.lock().insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), HostError> {
        self.lock().remove(key);
        Ok(())
    }
}
