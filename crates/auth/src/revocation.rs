use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use uuid::Uuid;

/// The set of revoked client ids, read on every bearer check without a lock and replaced whole
/// when the server reloads it from the store.
#[derive(Default)]
pub struct RevocationList {
    revoked: ArcSwap<HashSet<Uuid>>,
}

impl RevocationList {
    pub fn is_revoked(&self, client_id: &Uuid) -> bool {
        self.revoked.load().contains(client_id)
    }

    pub fn replace(&self, clients: impl IntoIterator<Item = Uuid>) {
        self.revoked.store(Arc::new(clients.into_iter().collect()));
    }

    pub fn insert(&self, client_id: Uuid) {
        self.revoked.rcu(|current| {
            let mut next = HashSet::clone(current);
            next.insert(client_id);
            next
        });
    }
}
