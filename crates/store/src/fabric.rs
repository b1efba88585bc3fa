//! The fabric's records: handlers placed in channels (configurations) and channels running in
//! environments (deployments).

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// Where a handler's output with a given subject is forwarded (besides its own channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputRoute {
    Channel(Uuid),
    Endpoint(Uuid),
}

/// One handler placed in a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerConfiguration {
    pub id: Uuid,
    pub channel_id: Uuid,
    /// A stored definition, or a built-in handler's fixed id (built-ins are not rows in
    /// handler_definitions: NO foreign key on this column).
    pub definition_id: Uuid,
    /// Normalised version text, e.g. "1.0.0".
    pub version: String,
    /// Unique per channel.
    pub name: String,
    /// Configuration values as text (templates like `{{ variables.X }}` kept unresolved).
    /// Ordered by name.
    pub values: BTreeMap<String, String>,
    /// Empty: every message of the channel.
    pub input_subjects: Vec<String>,
    pub output_routes: BTreeMap<String, OutputRoute>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A channel running in an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub channel_id: Uuid,
    pub environment_id: Uuid,
    pub deployed_at: OffsetDateTime,
}

#[async_trait]
pub trait FabricStore: Send + Sync {
    /// A name the channel already uses answers [`crate::StoreError::Conflict`]; a missing channel
    /// answers [`crate::StoreError::NotFound`].
    async fn insert_handler_configuration(
        &self,
        configuration: &HandlerConfiguration,
    ) -> Result<()>;
    async fn handler_configuration(&self, id: Uuid) -> Result<Option<HandlerConfiguration>>;
    /// The channel's handlers in creation order.
    async fn handler_configurations_of(&self, channel: Uuid) -> Result<Vec<HandlerConfiguration>>;
    /// Replaces everything but id, channel_id and created_at; `false` when missing; a name the
    /// channel's other handlers use answers [`crate::StoreError::Conflict`].
    async fn update_handler_configuration(
        &self,
        configuration: &HandlerConfiguration,
    ) -> Result<bool>;
    async fn delete_handler_configuration(&self, id: Uuid) -> Result<bool>;

    /// Creates or refreshes (deployed_at) the deployment. A missing channel or environment
    /// answers [`crate::StoreError::NotFound`].
    async fn upsert_deployment(&self, deployment: &Deployment) -> Result<()>;
    async fn delete_deployment(&self, channel: Uuid, environment: Uuid) -> Result<bool>;
    /// Every deployment (the runtime starts them all at boot), by channel then environment.
    async fn deployments(&self) -> Result<Vec<Deployment>>;
    /// The channel's deployments, by environment id.
    async fn deployments_of_channel(&self, channel: Uuid) -> Result<Vec<Deployment>>;
    /// The deployments in the environment, by channel id.
    async fn deployments_in_environment(&self, environment: Uuid) -> Result<Vec<Deployment>>;
}
