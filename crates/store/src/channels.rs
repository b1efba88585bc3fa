//! Channels, and the environments an account can deploy them to.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Environment, Result};

/// A named flow of messages owned by one account. Handlers inside channels come with the fabric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: Uuid,
    pub account_id: Uuid,
    /// Unique per account.
    pub name: String,
    pub description: String,
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// A name the account already uses answers [`crate::StoreError::Conflict`].
    async fn create_channel(&self, channel: &Channel) -> Result<()>;
    async fn channel(&self, id: Uuid) -> Result<Option<Channel>>;
    async fn channel_by_name(&self, account: Uuid, name: &str) -> Result<Option<Channel>>;
    async fn channels_of(&self, account: Uuid) -> Result<Vec<Channel>>;

    /// Creates an environment owned by `account`. Environment names are one namespace per
    /// installation (they name places: regions, clusters), so a taken name is a conflict.
    async fn create_environment(&self, account: Uuid, name: &str) -> Result<Environment>;
    /// The shared environments (such as `local`) and those the account created.
    async fn environments_visible_to(&self, account: Uuid) -> Result<Vec<Environment>>;
}
