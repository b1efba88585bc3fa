//! Embedded implementation on SQLite.
//!
//! sqlx rather than rusqlite: its pool is async (no blocking of the tokio workers), its embedded
//! migrations are applied at start, and the PostgreSQL implementation will use the same crate,
//! so both stores share one style of query code and one error type.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Client, EnvironmentStore, MetadataStore, Result, StoreError, DEFAULT_ENVIRONMENT};

mod accounts;
mod channels;
mod endpoints;
mod fabric;
mod handlers;
mod refresh_writer;
#[cfg(test)]
mod test_support;
mod variables;

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "metadata.db";

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Clients by id. Credentials never change and revocations reach it through
    /// `revoked_clients()`, which the server polls every second, so the token endpoint does not
    /// query the database for every request.
    clients: Arc<RwLock<HashMap<Uuid, Client>>>,
    refresh_tokens: refresh_writer::RefreshWriter,
}

impl SqliteStore {
    /// Opens (creating when missing) the store in `data_dir`, applies migrations and makes sure the
    /// default environment exists. Safe to call from several processes at once: the CLI's admin
    /// commands open the same file while `mh serve` runs.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(DATABASE_FILE);
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL survives a crash or kill of the process (commits are in the log
            // before they are acknowledged); only an OS crash or power cut can lose the last
            // commits. FULL would fsync every commit and cap the token endpoint, which stores a
            // refresh token per issued token, at the disk's sync rate.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Another process (the admin CLI) may hold the write lock for a moment.
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let store = SqliteStore {
            refresh_tokens: refresh_writer::RefreshWriter::start(pool.clone()),
            pool,
            clients: Arc::default(),
        };
        store.ensure_environment(DEFAULT_ENVIRONMENT).await?;
        Ok(store)
    }
}

pub(crate) fn timestamp(seconds: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {seconds}: {e}")))
}

pub(crate) fn uuid_column(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<Uuid> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt(format!("{column} {text:?}: {e}")))
}

pub(crate) fn optional_timestamp(
    row: &sqlx::sqlite::SqliteRow,
    column: &str,
) -> Result<Option<OffsetDateTime>> {
    let value: Option<i64> = row.try_get(column)?;
    value.map(timestamp).transpose()
}

/// Turns a unique-constraint violation into a [`StoreError::Conflict`] with the given text.
pub(crate) fn conflict_on_unique(
    error: sqlx::Error,
    message: impl FnOnce() -> String,
) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Database(error),
    }
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn close(&self) {
        self.pool.close().await;
    }
}
