//! Channels and account-owned environments on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{conflict_on_unique, timestamp, uuid_column, SqliteStore};
use crate::{Channel, ChannelStore, Environment, Result};

fn channel_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Channel> {
    Ok(Channel {
        id: uuid_column(row, "id")?,
        account_id: uuid_column(row, "account_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: timestamp(row.try_get("created_at")?)?,
    })
}

#[async_trait]
impl ChannelStore for SqliteStore {
    async fn create_channel(&self, channel: &Channel) -> Result<()> {
        sqlx::query(
            "INSERT INTO channels (id, account_id, name, description, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(channel.id.to_string())
        .bind(channel.account_id.to_string())
        .bind(&channel.name)
        .bind(&channel.description)
        .bind(channel.created_at.unix_timestamp())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!("a channel named {:?} already exists", channel.name)
            })
        })?;
        Ok(())
    }

    async fn channel(&self, id: Uuid) -> Result<Option<Channel>> {
        sqlx::query("SELECT * FROM channels WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(channel_from_row)
            .transpose()
    }

    async fn channel_by_name(&self, account: Uuid, name: &str) -> Result<Option<Channel>> {
        sqlx::query("SELECT * FROM channels WHERE account_id = ? AND name = ?")
            .bind(account.to_string())
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(channel_from_row)
            .transpose()
    }

    async fn channels_of(&self, account: Uuid) -> Result<Vec<Channel>> {
        sqlx::query("SELECT * FROM channels WHERE account_id = ? ORDER BY name")
            .bind(account.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(channel_from_row)
            .collect()
    }

    async fn create_environment(&self, account: Uuid, name: &str) -> Result<Environment> {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO environments (id, name, created_at, account_id) VALUES (?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(OffsetDateTime::now_utc().unix_timestamp())
        .bind(account.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!("the environment name {name:?} is taken; choose another")
            })
        })?;
        Ok(Environment {
            id,
            name: name.to_string(),
        })
    }

    async fn environments_visible_to(&self, account: Uuid) -> Result<Vec<Environment>> {
        sqlx::query(
            "SELECT id, name FROM environments WHERE account_id IS NULL OR account_id = ? ORDER BY name",
        )
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(Environment {
                id: uuid_column(row, "id")?,
                name: row.try_get("name")?,
            })
        })
        .collect()
    }
}
