//! Accounts, clients, refresh tokens and environments on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{conflict_on_unique, optional_timestamp, timestamp, uuid_column, SqliteStore};
use crate::{
    Account, AccountKind, AccountStore, Client, Environment, EnvironmentStore, RefreshToken,
    Result, StoreError, TokenStore,
};

fn account_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Account> {
    let kind: String = row.try_get("kind")?;
    Ok(Account {
        id: uuid_column(row, "id")?,
        name: row.try_get("name")?,
        kind: AccountKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("account kind {kind:?}")))?,
        reviewer: row.try_get("reviewer")?,
        created_at: timestamp(row.try_get("created_at")?)?,
    })
}

fn client_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Client> {
    Ok(Client {
        client_id: uuid_column(row, "client_id")?,
        account_id: uuid_column(row, "account_id")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: timestamp(row.try_get("created_at")?)?,
        revoked_at: optional_timestamp(row, "revoked_at")?,
    })
}

fn refresh_token_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RefreshToken> {
    Ok(RefreshToken {
        id: uuid_column(row, "id")?,
        secret_hash: row.try_get("secret_hash")?,
        client_id: uuid_column(row, "client_id")?,
        account_id: uuid_column(row, "account_id")?,
        created_at: timestamp(row.try_get("created_at")?)?,
        expires_at: timestamp(row.try_get("expires_at")?)?,
        revoked_at: optional_timestamp(row, "revoked_at")?,
    })
}

fn environment_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Environment> {
    Ok(Environment {
        id: uuid_column(row, "id")?,
        name: row.try_get("name")?,
    })
}

async fn insert_client<'e, E>(executor: E, client: &Client) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO clients (client_id, account_id, secret_hash, created_at, revoked_at)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(client.client_id.to_string())
    .bind(client.account_id.to_string())
    .bind(&client.secret_hash)
    .bind(client.created_at.unix_timestamp())
    .bind(client.revoked_at.map(OffsetDateTime::unix_timestamp))
    .execute(executor)
    .await?;
    Ok(())
}

async fn insert_refresh_token<'e, E>(executor: E, token: &RefreshToken) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO refresh_tokens (id, secret_hash, client_id, account_id, created_at, expires_at, revoked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(token.id.to_string())
    .bind(&token.secret_hash)
    .bind(token.client_id.to_string())
    .bind(token.account_id.to_string())
    .bind(token.created_at.unix_timestamp())
    .bind(token.expires_at.unix_timestamp())
    .bind(token.revoked_at.map(OffsetDateTime::unix_timestamp))
    .execute(executor)
    .await?;
    Ok(())
}

impl SqliteStore {
    fn cached_client(&self, client_id: &Uuid) -> Option<Client> {
        // A poisoned lock only means another request panicked mid-update; the map is still sound.
        let cache = self
            .clients
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.get(client_id).cloned()
    }

    fn update_cache(&self, change: impl FnOnce(&mut std::collections::HashMap<Uuid, Client>)) {
        let mut cache = self
            .clients
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut cache);
    }

    fn mark_revoked(&self, client_ids: &[Uuid], at: OffsetDateTime) {
        self.update_cache(|cache| {
            for id in client_ids {
                if let Some(client) = cache.get_mut(id) {
                    client.revoked_at.get_or_insert(at);
                }
            }
        });
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, account: &Account, first_client: &Client) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (id, name, kind, reviewer, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(account.id.to_string())
        .bind(&account.name)
        .bind(account.kind.as_str())
        .bind(account.reviewer)
        .bind(account.created_at.unix_timestamp())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!("an account named {:?} already exists", account.name)
            })
        })?;
        insert_client(&mut *tx, first_client).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn account(&self, id: Uuid) -> Result<Option<Account>> {
        sqlx::query("SELECT * FROM accounts WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    async fn account_by_name(&self, name: &str) -> Result<Option<Account>> {
        sqlx::query("SELECT * FROM accounts WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        sqlx::query("SELECT * FROM accounts ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(account_from_row)
            .collect()
    }

    async fn create_client(&self, client: &Client) -> Result<()> {
        insert_client(&self.pool, client).await
    }

    async fn client(&self, client_id: Uuid) -> Result<Option<Client>> {
        if let Some(client) = self.cached_client(&client_id) {
            return Ok(Some(client));
        }
        let client = sqlx::query("SELECT * FROM clients WHERE client_id = ?")
            .bind(client_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(client_from_row)
            .transpose()?;
        if let Some(client) = &client {
            self.update_cache(|cache| {
                cache.insert(client.client_id, client.clone());
            });
        }
        Ok(client)
    }

    async fn revoke_client(&self, client_id: Uuid, at: OffsetDateTime) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE clients SET revoked_at = COALESCE(revoked_at, ?) WHERE client_id = ?",
        )
        .bind(at.unix_timestamp())
        .bind(client_id.to_string())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound("client"));
        }
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE client_id = ?",
        )
        .bind(at.unix_timestamp())
        .bind(client_id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.mark_revoked(&[client_id], at);
        Ok(())
    }

    async fn revoked_clients(&self) -> Result<Vec<Uuid>> {
        let revoked = sqlx::query("SELECT client_id FROM clients WHERE revoked_at IS NOT NULL")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| uuid_column(row, "client_id"))
            .collect::<Result<Vec<_>>>()?;
        // Revocations made by another process (the admin CLI) reach the cache here.
        self.mark_revoked(&revoked, OffsetDateTime::now_utc());
        Ok(revoked)
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        self.refresh_tokens.insert(token.clone()).await
    }

    async fn refresh_token(&self, id: Uuid) -> Result<Option<RefreshToken>> {
        sqlx::query("SELECT * FROM refresh_tokens WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(refresh_token_from_row)
            .transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old: Uuid,
        replacement: &RefreshToken,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let revoked = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(at.unix_timestamp())
        .bind(old.to_string())
        .execute(&mut *tx)
        .await?;
        if revoked.rows_affected() == 0 {
            return Ok(false);
        }
        insert_refresh_token(&mut *tx, replacement).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl EnvironmentStore for SqliteStore {
    async fn ensure_environment(&self, name: &str) -> Result<Environment> {
        sqlx::query("INSERT INTO environments (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(Uuid::new_v4().to_string())
            .bind(name)
            .bind(OffsetDateTime::now_utc().unix_timestamp())
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT * FROM environments WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        environment_from_row(&row)
    }

    async fn list_environments(&self) -> Result<Vec<Environment>> {
        sqlx::query("SELECT * FROM environments ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(environment_from_row)
            .collect()
    }

    async fn environment(&self, id: Uuid) -> Result<Option<Environment>> {
        sqlx::query("SELECT * FROM environments WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(environment_from_row)
            .transpose()
    }
}
