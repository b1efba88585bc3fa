//! Endpoints, routes and devices on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{optional_timestamp, timestamp, uuid_column, SqliteStore};
use crate::{
    Device, DeviceAdmission, Direction, Endpoint, EndpointStore, Registration, Result, Route,
    StoreError,
};

fn split_list(text: &str, separator: char) -> Vec<String> {
    text.split(separator)
        .filter(|part| !part.is_empty())
        .map(str::to_string)
        .collect()
}

fn endpoint_from_row(row: &sqlx::sqlite::SqliteRow, routes: Vec<Route>) -> Result<Endpoint> {
    let registration: String = row.try_get("registration")?;
    let protocols_in: String = row.try_get("protocols_in")?;
    let protocols_out: String = row.try_get("protocols_out")?;
    let origins: String = row.try_get("allowed_origins")?;
    Ok(Endpoint {
        id: uuid_column(row, "id")?,
        account_id: uuid_column(row, "account_id")?,
        name: row.try_get("name")?,
        protocols_in: split_list(&protocols_in, ','),
        protocols_out: split_list(&protocols_out, ','),
        routes,
        allowed_origins: split_list(&origins, '\n'),
        registration: Registration::parse(&registration)
            .ok_or_else(|| StoreError::Corrupt(format!("registration {registration:?}")))?,
        key_version: row.try_get("key_version")?,
        expires_at: optional_timestamp(row, "expires_at")?,
        created_at: timestamp(row.try_get("created_at")?)?,
    })
}

fn route_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Route> {
    let direction: String = row.try_get("direction")?;
    Ok(Route {
        channel_id: uuid_column(row, "channel_id")?,
        environment_id: uuid_column(row, "environment_id")?,
        direction: Direction::parse(&direction)
            .ok_or_else(|| StoreError::Corrupt(format!("route direction {direction:?}")))?,
    })
}

fn device_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Device> {
    Ok(Device {
        endpoint_id: uuid_column(row, "endpoint_id")?,
        device_id: row.try_get("device_id")?,
        token_generation: row.try_get("token_generation")?,
        disabled: row.try_get("disabled")?,
        registered_at: timestamp(row.try_get("registered_at")?)?,
        refreshed_at: timestamp(row.try_get("refreshed_at")?)?,
    })
}

impl SqliteStore {
    async fn routes_of(&self, endpoint: Uuid) -> Result<Vec<Route>> {
        sqlx::query(
            "SELECT * FROM endpoint_routes WHERE endpoint_id = ? ORDER BY direction, channel_id, environment_id",
        )
        .bind(endpoint.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(route_from_row)
        .collect()
    }
}

#[async_trait]
impl EndpointStore for SqliteStore {
    async fn create_endpoints(&self, endpoints: &[Endpoint]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for endpoint in endpoints {
            sqlx::query(
                "INSERT INTO endpoints (id, account_id, name, protocols_in, protocols_out, allowed_origins,
                     registration, key_version, expires_at, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(endpoint.id.to_string())
            .bind(endpoint.account_id.to_string())
            .bind(&endpoint.name)
            .bind(endpoint.protocols_in.join(","))
            .bind(endpoint.protocols_out.join(","))
            .bind(endpoint.allowed_origins.join("\n"))
            .bind(endpoint.registration.as_str())
            .bind(endpoint.key_version)
            .bind(endpoint.expires_at.map(OffsetDateTime::unix_timestamp))
            .bind(endpoint.created_at.unix_timestamp())
            .execute(&mut *tx)
            .await?;
            for route in &endpoint.routes {
                sqlx::query(
                    "INSERT INTO endpoint_routes (endpoint_id, channel_id, environment_id, direction)
                     VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(endpoint.id.to_string())
                .bind(route.channel_id.to_string())
                .bind(route.environment_id.to_string())
                .bind(route.direction.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn endpoint(&self, id: Uuid) -> Result<Option<Endpoint>> {
        let row = sqlx::query("SELECT * FROM endpoints WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(endpoint_from_row(&row, self.routes_of(id).await?)?)),
            None => Ok(None),
        }
    }

    async fn endpoints_of(&self, account: Uuid) -> Result<Vec<Endpoint>> {
        let rows = sqlx::query("SELECT * FROM endpoints WHERE account_id = ? ORDER BY name, id")
            .bind(account.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut endpoints = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = uuid_column(row, "id")?;
            endpoints.push(endpoint_from_row(row, self.routes_of(id).await?)?);
        }
        Ok(endpoints)
    }

    async fn rotate_endpoint_keys(&self, id: Uuid) -> Result<i64> {
        let row = sqlx::query(
            "UPDATE endpoints SET key_version = key_version + 1 WHERE id = ? RETURNING key_version",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("endpoint"))?;
        Ok(row.try_get("key_version")?)
    }

    async fn delete_endpoint(&self, id: Uuid) -> Result<()> {
        let deleted = sqlx::query("DELETE FROM endpoints WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound("endpoint"));
        }
        Ok(())
    }

    async fn device(&self, endpoint: Uuid, device_id: &str) -> Result<Option<Device>> {
        sqlx::query("SELECT * FROM devices WHERE endpoint_id = ? AND device_id = ?")
            .bind(endpoint.to_string())
            .bind(device_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(device_from_row)
            .transpose()
    }

    async fn devices_of(&self, endpoint: Uuid) -> Result<Vec<Device>> {
        sqlx::query("SELECT * FROM devices WHERE endpoint_id = ? ORDER BY device_id")
            .bind(endpoint.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(device_from_row)
            .collect()
    }

    async fn admit_device(
        &self,
        endpoint: Uuid,
        device_id: &str,
        max_devices: u32,
        at: OffsetDateTime,
    ) -> Result<DeviceAdmission> {
        let inserted = sqlx::query(
            "INSERT INTO devices (endpoint_id, device_id, token_generation, disabled, registered_at, refreshed_at)
             SELECT ?1, ?2, 1, FALSE, ?3, ?3
             WHERE (SELECT COUNT(*) FROM devices WHERE endpoint_id = ?1) < ?4
             ON CONFLICT (endpoint_id, device_id) DO NOTHING
             RETURNING *",
        )
        .bind(endpoint.to_string())
        .bind(device_id)
        .bind(at.unix_timestamp())
        .bind(i64::from(max_devices))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok(DeviceAdmission::Created(device_from_row(&row)?));
        }
        match self.device(endpoint, device_id).await? {
            Some(device) => Ok(DeviceAdmission::Exists(device)),
            None => Ok(DeviceAdmission::LimitReached),
        }
    }

    async fn renew_device_token(
        &self,
        endpoint: Uuid,
        device_id: &str,
        current: i64,
        at: OffsetDateTime,
    ) -> Result<Option<Device>> {
        sqlx::query(
            "UPDATE devices SET token_generation = token_generation + 1, refreshed_at = ?
             WHERE endpoint_id = ? AND device_id = ? AND token_generation = ?
             RETURNING *",
        )
        .bind(at.unix_timestamp())
        .bind(endpoint.to_string())
        .bind(device_id)
        .bind(current)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(device_from_row)
        .transpose()
    }

    async fn set_device_disabled(
        &self,
        endpoint: Uuid,
        device_id: &str,
        disabled: bool,
    ) -> Result<Device> {
        let row = sqlx::query(
            "UPDATE devices SET disabled = ? WHERE endpoint_id = ? AND device_id = ? RETURNING *",
        )
        .bind(disabled)
        .bind(endpoint.to_string())
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("device"))?;
        device_from_row(&row)
    }

    async fn delete_device(&self, endpoint: Uuid, device_id: &str) -> Result<()> {
        let deleted = sqlx::query("DELETE FROM devices WHERE endpoint_id = ? AND device_id = ?")
            .bind(endpoint.to_string())
            .bind(device_id)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound("device"));
        }
        Ok(())
    }
}
