//! Group commit for refresh tokens: every token the endpoint issues stores one, and SQLite admits
//! one writer at a time, so concurrent inserts from pooled connections would queue on the
//! database lock and wake each other up. One task takes whatever inserts are waiting and commits
//! them in a single transaction instead.

use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::{RefreshToken, Result, StoreError};

/// Most inserts committed together: bounds the latency one statement adds, and keeps its 7 bound
/// values per row far below SQLite's limit of 32766.
const MAX_BATCH: usize = 512;

type Pending = (RefreshToken, oneshot::Sender<Result<(), String>>);

#[derive(Clone)]
pub(super) struct RefreshWriter {
    queue: mpsc::Sender<Pending>,
}

impl RefreshWriter {
    pub(super) fn start(pool: SqlitePool) -> Self {
        let (queue, receiver) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(commit_batches(pool, receiver));
        RefreshWriter { queue }
    }

    /// Returns once the token is committed.
    pub(super) async fn insert(&self, token: RefreshToken) -> Result<()> {
        let (reply, committed) = oneshot::channel();
        self.queue
            .send((token, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        committed
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Write)
    }
}

async fn commit_batches(pool: SqlitePool, mut receiver: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcome = commit(&pool, &batch).await.map_err(|e| e.to_string());
        for (_, reply) in batch.drain(..) {
            // A caller that gave up waiting does not need the answer.
            let _ = reply.send(outcome.clone());
        }
    }
}

/// One multi-row INSERT: sqlx runs every statement on the connection's worker thread, so one
/// statement per batch also means one thread hand-off per batch.
async fn commit(pool: &SqlitePool, batch: &[Pending]) -> Result<()> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO refresh_tokens (id, secret_hash, client_id, account_id, created_at, expires_at, revoked_at) ",
    );
    insert.push_values(batch, |mut row, (token, _)| {
        row.push_bind(token.id.to_string())
            .push_bind(token.secret_hash.clone())
            .push_bind(token.client_id.to_string())
            .push_bind(token.account_id.to_string())
            .push_bind(token.created_at.unix_timestamp())
            .push_bind(token.expires_at.unix_timestamp())
            .push_bind(token.revoked_at.map(time::OffsetDateTime::unix_timestamp));
    });
    insert.build().execute(pool).await?;
    Ok(())
}
