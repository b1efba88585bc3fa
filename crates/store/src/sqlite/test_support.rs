//! Records the SQLite tests build on.

use time::OffsetDateTime;
use uuid::Uuid;

use super::SqliteStore;
use crate::{Account, AccountKind, AccountStore, Channel, ChannelStore, Client};

/// A fresh store in a temporary directory, which lives as long as the returned guard.
pub(crate) async fn open_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (dir, store)
}

/// A new account called `name`, with one client.
pub(crate) async fn account(store: &SqliteStore, name: &str) -> Uuid {
    let account = Account {
        id: Uuid::new_v4(),
        name: name.into(),
        kind: AccountKind::Personal,
        reviewer: false,
        created_at: OffsetDateTime::now_utc(),
    };
    let client = Client {
        client_id: Uuid::new_v4(),
        account_id: account.id,
        secret_hash: vec![0; 32],
        created_at: account.created_at,
        revoked_at: None,
    };
    store.create_account(&account, &client).await.unwrap();
    account.id
}

/// A new channel of `account` called `name`.
pub(crate) async fn channel(store: &SqliteStore, account: Uuid, name: &str) -> Uuid {
    let channel = Channel {
        id: Uuid::new_v4(),
        account_id: account,
        name: name.into(),
        description: String::new(),
        created_at: OffsetDateTime::now_utc(),
    };
    store.create_channel(&channel).await.unwrap();
    channel.id
}
