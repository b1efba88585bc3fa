//! The in-memory visibility index of one inbox.
//!
//! The truth is on disk (messages and their delivery counts); what only lives here are the
//! locks, which is what the trait promises: after a restart every message is visible again.
//! Rebuilt at open from the metadata keyspace, which is small (count + device per message),
//! so opening does not read message bodies.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use uuid::Uuid;

use crate::{LogError, Result};

/// One inbox: its index and the waiters of long polls.
#[derive(Default)]
pub struct Inbox {
    state: Mutex<InboxState>,
    /// Woken when a message becomes visible (enqueue, abandon) or the inbox is purged.
    pub notify: Notify,
}

impl Inbox {
    pub fn lock(&self) -> MutexGuard<'_, InboxState> {
        // A panic while holding the lock leaves the index consistent enough: every mutation
        // below completes its bookkeeping before anything that could panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Entry {
    device: Option<String>,
    delivery_count: u32,
    /// `(token, locked_until)` while locked.
    lock: Option<(String, i64)>,
}

/// A message handed out by [`InboxState::take`].
pub struct Taken {
    pub id: Uuid,
    pub device: Option<String>,
    pub delivery_count: u32,
    pub token: String,
    pub locked_until: i64,
}

/// A message that used up its deliveries: `(id, delivery_count)`.
pub type Dead = (Uuid, u32);

#[derive(Default)]
pub struct InboxState {
    entries: HashMap<Uuid, Entry>,
    /// Visible messages for any receiver, in id (= enqueue) order.
    untargeted: BTreeSet<Uuid>,
    /// Visible messages addressed to one device.
    targeted: HashMap<String, BTreeSet<Uuid>>,
    locks: HashMap<String, Uuid>,
    expiries: BTreeSet<(i64, Uuid)>,
    /// Set when the inbox was purged: holders of this instance stop using it.
    pub purged: bool,
}

impl InboxState {
    /// Adds a visible message (enqueued, or found at open).
    pub fn insert(&mut self, id: Uuid, device: Option<String>, delivery_count: u32) {
        self.entries.insert(
            id,
            Entry {
                device: device.clone(),
                delivery_count,
                lock: None,
            },
        );
        self.show(id, device);
    }

    fn show(&mut self, id: Uuid, device: Option<String>) {
        match device {
            Some(d) => {
                self.targeted.entry(d).or_default().insert(id);
            }
            None => {
                self.untargeted.insert(id);
            }
        }
    }

    fn hide(&mut self, id: Uuid, device: Option<&str>) {
        match device {
            Some(d) => {
                if let Some(set) = self.targeted.get_mut(d) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.targeted.remove(d);
                    }
                }
            }
            None => {
                self.untargeted.remove(&id);
            }
        }
    }

    /// Releases expired locks: the messages become visible again, or dead when they used up
    /// `max_deliveries`.
    pub fn sweep(&mut self, now: i64, max_deliveries: u32) -> Vec<Dead> {
        let mut dead = Vec::new();
        while let Some(&(until, id)) = self.expiries.first() {
            if until > now {
                break;
            }
            self.expiries.pop_first();
            if let Some(d) = self.release(id, max_deliveries) {
                dead.push(d);
            }
        }
        dead
    }

    /// Unlocks `id` (its expiry entry already removed); returns it when it is now dead.
    fn release(&mut self, id: Uuid, max_deliveries: u32) -> Option<Dead> {
        let entry = self.entries.get_mut(&id)?;
        if let Some((token, _)) = entry.lock.take() {
            self.locks.remove(&token);
        }
        if entry.delivery_count >= max_deliveries {
            let count = entry.delivery_count;
            self.entries.remove(&id);
            return Some((id, count));
        }
        let device = entry.device.clone();
        self.show(id, device);
        None
    }

    /// Locks up to `max` visible messages for `device`, oldest first. Messages that already
    /// used up their deliveries (possible after a restart) come back as dead instead.
    pub fn take(
        &mut self,
        device: Option<&str>,
        max: usize,
        locked_until: i64,
        max_deliveries: u32,
    ) -> (Vec<Taken>, Vec<Dead>) {
        let mut candidates: Vec<Uuid> = self.untargeted.iter().take(max).copied().collect();
        if let Some(set) = device.and_then(|d| self.targeted.get(d)) {
            candidates.extend(set.iter().take(max));
            candidates.sort_unstable();
            candidates.truncate(max);
        }
        let mut taken = Vec::with_capacity(candidates.len());
        let mut dead = Vec::new();
        for id in candidates {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            let device = entry.device.clone();
            if entry.delivery_count >= max_deliveries {
                let count = entry.delivery_count;
                self.entries.remove(&id);
                self.hide(id, device.as_deref());
                dead.push((id, count));
                continue;
            }
            entry.delivery_count += 1;
            let token = new_token();
            entry.lock = Some((token.clone(), locked_until));
            let delivery_count = entry.delivery_count;
            self.hide(id, device.as_deref());
            self.locks.insert(token.clone(), id);
            self.expiries.insert((locked_until, id));
            taken.push(Taken {
                id,
                device,
                delivery_count,
                token,
                locked_until,
            });
        }
        (taken, dead)
    }

    /// The id locked by `token`, when the lock still holds at `now`.
    fn locked(&self, token: &str, now: i64) -> Result<(Uuid, i64)> {
        let id = *self.locks.get(token).ok_or(LogError::LockLost)?;
        let until = self
            .entries
            .get(&id)
            .and_then(|e| e.lock.as_ref())
            .map(|(_, until)| *until)
            .ok_or(LogError::LockLost)?;
        if until <= now {
            return Err(LogError::LockLost);
        }
        Ok((id, until))
    }

    /// Removes the message locked by `token`.
    pub fn complete(&mut self, token: &str, now: i64) -> Result<Uuid> {
        let (id, until) = self.locked(token, now)?;
        self.locks.remove(token);
        self.expiries.remove(&(until, id));
        self.entries.remove(&id);
        Ok(id)
    }

    /// Makes the message locked by `token` visible again; returns it when it is dead instead.
    pub fn abandon(&mut self, token: &str, now: i64, max_deliveries: u32) -> Result<Option<Dead>> {
        let (id, until) = self.locked(token, now)?;
        self.expiries.remove(&(until, id));
        Ok(self.release(id, max_deliveries))
    }

    /// Forgets a message whose record is gone from disk.
    pub fn forget(&mut self, id: Uuid) {
        if let Some(entry) = self.entries.remove(&id) {
            if let Some((token, until)) = entry.lock {
                self.locks.remove(&token);
                self.expiries.remove(&(until, id));
            }
            self.hide(id, entry.device.as_deref());
        }
    }

    /// When the next lock expires (unix ms), for long polls to wake up then.
    pub fn next_expiry(&self) -> Option<i64> {
        self.expiries.first().map(|(until, _)| *until)
    }
}

/// 128 random bits from the thread-local CSPRNG, hex: unguessable, URL-safe. Tokens are looked
/// up in the inbox's own table, which binds them to the inbox.
fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}
