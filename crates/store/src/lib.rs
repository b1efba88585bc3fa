//! The metadata store: accounts, credentials, tokens, environments (and, as the platform grows,
//! every other control-plane record).
//!
//! Each concept has its own narrow trait so that callers depend on what they use, and so that a
//! second implementation (PostgreSQL, for multi-node deployments) can be written against the same
//! contract. The traits speak in plain records and unix-second timestamps, never in SQL dialects.
//! [`SqliteStore`] is the embedded implementation used by `mh serve` on a data directory.

mod channels;
mod endpoints;
mod error;
mod fabric;
mod handlers;
mod model;
mod sqlite;
mod variables;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

pub use channels::{Channel, ChannelStore};
pub use endpoints::{
    Device, DeviceAdmission, Direction, Endpoint, EndpointStore, Registration, Route,
};
pub use error::{Result, StoreError};
pub use fabric::{Deployment, FabricStore, HandlerConfiguration, OutputRoute};
pub use handlers::{
    HandlerDefinition, HandlerStore, HandlerVersion, Review, VersionInsert, VersionStatus,
};
pub use model::{Account, AccountKind, Client, Environment, RefreshToken};
pub use sqlite::SqliteStore;
pub use variables::{ScopeType, Variable, VariableStore};

/// Name of the environment that exists on every installation.
pub const DEFAULT_ENVIRONMENT: &str = "local";

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account together with its first client credential, atomically.
    /// A taken name answers [`StoreError::Conflict`].
    async fn create_account(&self, account: &Account, first_client: &Client) -> Result<()>;
    async fn account(&self, id: Uuid) -> Result<Option<Account>>;
    async fn account_by_name(&self, name: &str) -> Result<Option<Account>>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;

    async fn create_client(&self, client: &Client) -> Result<()>;
    async fn client(&self, client_id: Uuid) -> Result<Option<Client>>;
    /// Revokes a client and every refresh token it holds. Revoking twice is not an error.
    async fn revoke_client(&self, client_id: Uuid, at: OffsetDateTime) -> Result<()>;
    /// Ids of every revoked client; the server keeps them in memory so bearer checks stay local.
    async fn revoked_clients(&self) -> Result<Vec<Uuid>>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()>;
    async fn refresh_token(&self, id: Uuid) -> Result<Option<RefreshToken>>;
    /// Revokes `old` and stores `replacement` in one transaction, so a refresh token can be
    /// redeemed once only. Answers `false` (and stores nothing) when `old` was already revoked.
    async fn rotate_refresh_token(
        &self,
        old: Uuid,
        replacement: &RefreshToken,
        at: OffsetDateTime,
    ) -> Result<bool>;
}

#[async_trait]
pub trait EnvironmentStore: Send + Sync {
    /// Creates the environment when missing and returns it either way.
    async fn ensure_environment(&self, name: &str) -> Result<Environment>;
    async fn list_environments(&self) -> Result<Vec<Environment>>;
    async fn environment(&self, id: Uuid) -> Result<Option<Environment>>;
}

/// Everything the platform keeps about its control plane.
#[async_trait]
pub trait MetadataStore:
    AccountStore
    + TokenStore
    + EnvironmentStore
    + ChannelStore
    + EndpointStore
    + HandlerStore
    + FabricStore
    + VariableStore
{
    /// Flushes and closes the store; called on graceful shutdown.
    async fn close(&self);
}
