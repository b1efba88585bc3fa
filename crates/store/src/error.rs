use thiserror::Error;

/// Everything a metadata store operation can fail with.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; the text names the rule in user terms.
    #[error("{0}")]
    Conflict(String),
    /// The referenced record does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The store could not be opened at the given location.
    #[error("cannot open the metadata store at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot apply metadata migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("metadata store failure: {0}")]
    Database(#[from] sqlx::Error),
    /// A write queued for group commit failed; the text is the underlying failure.
    #[error("metadata write failed: {0}")]
    Write(String),
    #[error("the metadata store is closed")]
    Closed,
    /// A stored value could not be decoded; the store is corrupt or written by a newer version.
    #[error("corrupt metadata record: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
