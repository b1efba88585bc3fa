//! Handler definitions, their immutable versions, and the review of each version.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// A named piece of processing logic owned by one account; its code comes with its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerDefinition {
    pub id: Uuid,
    pub account_id: Uuid,
    /// Unique per account.
    pub name: String,
    pub description: String,
    /// The version (as written) used when a handler is added without one; only an accepted one.
    pub active_version: Option<String>,
    /// Visible to every account, not only to its owner (see [`HandlerStore::public_definitions`]).
    pub public: bool,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionStatus {
    Pending,
    Accepted,
    Rejected,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Pending => "Pending",
            VersionStatus::Accepted => "Accepted",
            VersionStatus::Rejected => "Rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Pending" => Some(VersionStatus::Pending),
            "Accepted" => Some(VersionStatus::Accepted),
            "Rejected" => Some(VersionStatus::Rejected),
            _ => None,
        }
    }
}

/// A reviewer's decision on a version; final once recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The reviewing account; `None` when the server accepted on upload (`--review auto`).
    pub reviewer: Option<Uuid>,
    pub at: OffsetDateTime,
    pub comment: String,
}

/// One uploaded version of a definition. Never overwritten; only its status changes, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerVersion {
    pub definition_id: Uuid,
    /// As written by the uploader, normalised (`1.0.0.0`).
    pub version: String,
    /// Orders like the version and is equal for equal versions (see `mh_package::Version`).
    pub version_key: String,
    pub status: VersionStatus,
    /// SHA-256 (hex) of the package zip in the blob store.
    pub package_digest: String,
    pub package_size: u64,
    /// The package's validated manifest, as JSON.
    pub manifest: String,
    /// Client id that uploaded it.
    pub uploaded_by: Uuid,
    pub uploaded_at: OffsetDateTime,
    pub review: Option<Review>,
}

/// What became of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionInsert {
    Inserted,
    /// An equal version exists already (it is never overwritten).
    Exists,
    /// A higher version exists; uploads must go up.
    NotIncreasing {
        highest: String,
    },
}

#[async_trait]
pub trait HandlerStore: Send + Sync {
    /// A name the account already uses answers [`crate::StoreError::Conflict`].
    async fn create_definition(&self, definition: &HandlerDefinition) -> Result<()>;
    async fn definition(&self, id: Uuid) -> Result<Option<HandlerDefinition>>;
    async fn definitions_of(&self, account: Uuid) -> Result<Vec<HandlerDefinition>>;
    /// Sets whether the definition is public; answers `false` when it is missing.
    async fn set_definition_public(&self, id: Uuid, public: bool) -> Result<bool>;
    /// Every public definition of every account, by name.
    async fn public_definitions(&self) -> Result<Vec<HandlerDefinition>>;

    /// Stores the version if it is higher than every version of its definition, atomically: of
    /// concurrent uploads of one version exactly one is inserted.
    async fn insert_version(&self, version: &HandlerVersion) -> Result<VersionInsert>;
    async fn version(&self, definition: Uuid, version_key: &str) -> Result<Option<HandlerVersion>>;
    /// The definition's versions, lowest first.
    async fn versions_of(&self, definition: Uuid) -> Result<Vec<HandlerVersion>>;
    /// The highest version of the definition, if any.
    async fn highest_version(&self, definition: Uuid) -> Result<Option<HandlerVersion>>;
    /// Versions waiting for review across all accounts, oldest upload first.
    async fn pending_versions(&self) -> Result<Vec<HandlerVersion>>;
    /// Records the decision if the version is still pending; answers whether it was.
    async fn review_version(
        &self,
        definition: Uuid,
        version_key: &str,
        status: VersionStatus,
        review: &Review,
    ) -> Result<bool>;
    /// Makes an accepted version the active one; answers `false` (and changes nothing) when the
    /// version is missing or not accepted.
    async fn activate_version(&self, definition: Uuid, version_key: &str) -> Result<bool>;
    /// Whether any version refers to the package with this digest.
    async fn package_in_use(&self, digest: &str) -> Result<bool>;
}
