//! Handler configurations and deployments on SQLite.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use super::{timestamp, uuid_column, SqliteStore};
use crate::{Deployment, FabricStore, HandlerConfiguration, OutputRoute, Result, StoreError};

/// The stored form of an [`OutputRoute`]: `{"channel": id}` or `{"endpoint": id}`. Kept apart
/// from the public type so that the column format is decided here and nowhere else.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredRoute {
    Channel(Uuid),
    Endpoint(Uuid),
}

impl From<OutputRoute> for StoredRoute {
    fn from(route: OutputRoute) -> Self {
        match route {
            OutputRoute::Channel(id) => StoredRoute::Channel(id),
            OutputRoute::Endpoint(id) => StoredRoute::Endpoint(id),
        }
    }
}

impl From<StoredRoute> for OutputRoute {
    fn from(route: StoredRoute) -> Self {
        match route {
            StoredRoute::Channel(id) => OutputRoute::Channel(id),
            StoredRoute::Endpoint(id) => OutputRoute::Endpoint(id),
        }
    }
}

/// The JSON columns of a configuration, encoded.
struct Encoded {
    values: String,
    input_subjects: String,
    output_routes: String,
}

fn to_json<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<String> {
    // Maps of strings and uuids always encode; a failure would be a bug, reported, not a panic.
    serde_json::to_string(value)
        .map_err(|e| StoreError::Write(format!("cannot encode the handler's {what}: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(
    row: &sqlx::sqlite::SqliteRow,
    column: &str,
) -> Result<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{column} {text:?}: {e}")))
}

fn encode(configuration: &HandlerConfiguration) -> Result<Encoded> {
    let routes: BTreeMap<&str, StoredRoute> = configuration
        .output_routes
        .iter()
        .map(|(subject, route)| (subject.as_str(), StoredRoute::from(*route)))
        .collect();
    Ok(Encoded {
        values: to_json("configuration values", &configuration.values)?,
        input_subjects: to_json("input subjects", &configuration.input_subjects)?,
        output_routes: to_json("output routes", &routes)?,
    })
}

fn configuration_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<HandlerConfiguration> {
    let routes: BTreeMap<String, StoredRoute> = from_json(row, "output_routes")?;
    Ok(HandlerConfiguration {
        id: uuid_column(row, "id")?,
        channel_id: uuid_column(row, "channel_id")?,
        definition_id: uuid_column(row, "definition_id")?,
        version: row.try_get("version")?,
        name: row.try_get("name")?,
        values: from_json(row, "configuration_values")?,
        input_subjects: from_json(row, "input_subjects")?,
        output_routes: routes
            .into_iter()
            .map(|(subject, route)| (subject, route.into()))
            .collect(),
        created_at: timestamp(row.try_get("created_at")?)?,
        updated_at: timestamp(row.try_get("updated_at")?)?,
    })
}

fn deployment_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Deployment> {
    Ok(Deployment {
        channel_id: uuid_column(row, "channel_id")?,
        environment_id: uuid_column(row, "environment_id")?,
        deployed_at: timestamp(row.try_get("deployed_at")?)?,
    })
}

/// A unique violation is a handler name the channel already uses; a foreign-key violation a
/// missing channel.
fn configuration_write_error(error: sqlx::Error, name: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("the channel already has a handler named {name:?}"))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound("channel")
        }
        _ => StoreError::Database(error),
    }
}

#[async_trait]
impl FabricStore for SqliteStore {
    async fn insert_handler_configuration(
        &self,
        configuration: &HandlerConfiguration,
    ) -> Result<()> {
        let encoded = encode(configuration)?;
        sqlx::query(
            "INSERT INTO handler_configurations (id, channel_id, definition_id, version, name,
                 configuration_values, input_subjects, output_routes, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(configuration.id.to_string())
        .bind(configuration.channel_id.to_string())
        .bind(configuration.definition_id.to_string())
        .bind(&configuration.version)
        .bind(&configuration.name)
        .bind(encoded.values)
        .bind(encoded.input_subjects)
        .bind(encoded.output_routes)
        .bind(configuration.created_at.unix_timestamp())
        .bind(configuration.updated_at.unix_timestamp())
        .execute(&self.pool)
        .await
        .map_err(|e| configuration_write_error(e, &configuration.name))?;
        Ok(())
    }

    async fn handler_configuration(&self, id: Uuid) -> Result<Option<HandlerConfiguration>> {
        sqlx::query("SELECT * FROM handler_configurations WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(configuration_from_row)
            .transpose()
    }

    async fn handler_configurations_of(&self, channel: Uuid) -> Result<Vec<HandlerConfiguration>> {
        sqlx::query(
            "SELECT * FROM handler_configurations WHERE channel_id = ? ORDER BY creation_order",
        )
        .bind(channel.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(configuration_from_row)
        .collect()
    }

    async fn update_handler_configuration(
        &self,
        configuration: &HandlerConfiguration,
    ) -> Result<bool> {
        let encoded = encode(configuration)?;
        let updated = sqlx::query(
            "UPDATE handler_configurations
             SET definition_id = ?, version = ?, name = ?, configuration_values = ?,
                 input_subjects = ?, output_routes = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(configuration.definition_id.to_string())
        .bind(&configuration.version)
        .bind(&configuration.name)
        .bind(encoded.values)
        .bind(encoded.input_subjects)
        .bind(encoded.output_routes)
        .bind(configuration.updated_at.unix_timestamp())
        .bind(configuration.id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| configuration_write_error(e, &configuration.name))?;
        Ok(updated.rows_affected() == 1)
    }

    async fn delete_handler_configuration(&self, id: Uuid) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM handler_configurations WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn upsert_deployment(&self, deployment: &Deployment) -> Result<()> {
        sqlx::query(
            "INSERT INTO deployments (channel_id, environment_id, deployed_at) VALUES (?, ?, ?)
             ON CONFLICT (channel_id, environment_id) DO UPDATE SET deployed_at = excluded.deployed_at",
        )
        .bind(deployment.channel_id.to_string())
        .bind(deployment.environment_id.to_string())
        .bind(deployment.deployed_at.unix_timestamp())
        .execute(&self.pool)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NotFound("channel or environment")
            }
            _ => StoreError::Database(error),
        })?;
        Ok(())
    }

    async fn delete_deployment(&self, channel: Uuid, environment: Uuid) -> Result<bool> {
        let deleted =
            sqlx::query("DELETE FROM deployments WHERE channel_id = ? AND environment_id = ?")
                .bind(channel.to_string())
                .bind(environment.to_string())
                .execute(&self.pool)
                .await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn deployments(&self) -> Result<Vec<Deployment>> {
        sqlx::query("SELECT * FROM deployments ORDER BY channel_id, environment_id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(deployment_from_row)
            .collect()
    }

    async fn deployments_of_channel(&self, channel: Uuid) -> Result<Vec<Deployment>> {
        sqlx::query("SELECT * FROM deployments WHERE channel_id = ? ORDER BY environment_id")
            .bind(channel.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(deployment_from_row)
            .collect()
    }

    async fn deployments_in_environment(&self, environment: Uuid) -> Result<Vec<Deployment>> {
        sqlx::query("SELECT * FROM deployments WHERE environment_id = ? ORDER BY channel_id")
            .bind(environment.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(deployment_from_row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::sqlite::test_support::{account, channel, open_store};
    use crate::{ChannelStore, EnvironmentStore, ScopeType, Variable, VariableStore};

    /// Whole seconds, as the store keeps them.
    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
    }

    fn configuration(channel: Uuid, name: &str) -> HandlerConfiguration {
        HandlerConfiguration {
            id: Uuid::new_v4(),
            channel_id: channel,
            definition_id: Uuid::new_v4(),
            version: "1.0.0".into(),
            name: name.into(),
            values: BTreeMap::from([
                ("MeasurementType".to_string(), "temperature".to_string()),
                (
                    "Threshold".to_string(),
                    "{{ variables.Threshold }}".to_string(),
                ),
            ]),
            input_subjects: vec!["Reading".into(), "Calibration".into()],
            output_routes: BTreeMap::from([
                ("Average".to_string(), OutputRoute::Channel(Uuid::new_v4())),
                ("Alarm".to_string(), OutputRoute::Endpoint(Uuid::new_v4())),
            ]),
            created_at: at(0),
            updated_at: at(0),
        }
    }

    #[tokio::test]
    async fn configurations_round_trip_in_creation_order_and_update_in_place() {
        let (_dir, store) = open_store().await;
        let owner = account(&store, "dev").await;
        let flow = channel(&store, owner, "flow").await;

        // Inserted in the same second and not in name order: creation order is insertion order.
        let first = configuration(flow, "zeta");
        let second = HandlerConfiguration {
            input_subjects: Vec::new(),
            output_routes: BTreeMap::new(),
            values: BTreeMap::new(),
            ..configuration(flow, "alpha")
        };
        let third = configuration(flow, "mid");
        for configuration in [&first, &second, &third] {
            store
                .insert_handler_configuration(configuration)
                .await
                .unwrap();
        }
        assert_eq!(
            store.handler_configuration(first.id).await.unwrap(),
            Some(first.clone())
        );
        assert_eq!(
            store.handler_configuration(second.id).await.unwrap(),
            Some(second.clone())
        );
        assert_eq!(
            store.handler_configuration(Uuid::new_v4()).await.unwrap(),
            None
        );
        let names: Vec<String> = store
            .handler_configurations_of(flow)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["zeta", "alpha", "mid"]);
        assert!(store
            .handler_configurations_of(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty());

        // The JSON columns have a documented shape.
        let row = sqlx::query(
            "SELECT configuration_values, input_subjects, output_routes
             FROM handler_configurations WHERE id = ?",
        )
        .bind(first.id.to_string())
        .fetch_one(&store.pool)
        .await
        .unwrap();
        let routes: serde_json::Value =
            serde_json::from_str(&row.get::<String, _>("output_routes")).unwrap();
        let OutputRoute::Endpoint(alarm) = first.output_routes["Alarm"] else {
            panic!("the fixture routes Alarm to an endpoint");
        };
        assert_eq!(routes["Alarm"], serde_json::json!({"endpoint": alarm}));
        assert_eq!(
            row.get::<String, _>("input_subjects"),
            r#"["Reading","Calibration"]"#
        );
        assert_eq!(
            row.get::<String, _>("configuration_values"),
            r#"{"MeasurementType":"temperature","Threshold":"{{ variables.Threshold }}"}"#
        );

        // An update replaces everything but the id, the channel and the creation time, and keeps
        // the handler's place in the order.
        let other = channel(&store, owner, "other").await;
        let changed = HandlerConfiguration {
            channel_id: other,
            definition_id: Uuid::new_v4(),
            version: "2.0.0".into(),
            name: "renamed".into(),
            values: BTreeMap::from([("A".to_string(), "1".to_string())]),
            input_subjects: vec!["Other".into()],
            output_routes: BTreeMap::from([("X".to_string(), OutputRoute::Channel(other))]),
            created_at: at(50),
            updated_at: at(100),
            ..first.clone()
        };
        assert!(store.update_handler_configuration(&changed).await.unwrap());
        let stored = store
            .handler_configuration(first.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored,
            HandlerConfiguration {
                channel_id: flow,
                created_at: at(0),
                ..changed.clone()
            }
        );
        let names: Vec<String> = store
            .handler_configurations_of(flow)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["renamed", "alpha", "mid"]);
        assert!(store
            .handler_configurations_of(other)
            .await
            .unwrap()
            .is_empty());
        assert!(!store
            .update_handler_configuration(&configuration(flow, "ghost"))
            .await
            .unwrap());

        assert!(store.delete_handler_configuration(second.id).await.unwrap());
        assert!(!store.delete_handler_configuration(second.id).await.unwrap());
        assert_eq!(store.handler_configuration(second.id).await.unwrap(), None);
        // A handler added after a deletion still comes last.
        store
            .insert_handler_configuration(&configuration(flow, "last"))
            .await
            .unwrap();
        let names: Vec<String> = store
            .handler_configurations_of(flow)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["renamed", "mid", "last"]);
    }

    #[tokio::test]
    async fn handler_names_are_unique_per_channel() {
        let (_dir, store) = open_store().await;
        let owner = account(&store, "dev").await;
        let flow = channel(&store, owner, "flow").await;
        let other = channel(&store, owner, "other").await;
        let avg = configuration(flow, "avg");
        store.insert_handler_configuration(&avg).await.unwrap();

        let clash = store
            .insert_handler_configuration(&configuration(flow, "avg"))
            .await;
        assert!(
            matches!(&clash, Err(StoreError::Conflict(m)) if m == "the channel already has a handler named \"avg\""),
            "{clash:?}"
        );
        // Another channel may use the name.
        store
            .insert_handler_configuration(&configuration(other, "avg"))
            .await
            .unwrap();

        // Renaming onto a sibling's name clashes too; keeping one's own name does not.
        let max = configuration(flow, "max");
        store.insert_handler_configuration(&max).await.unwrap();
        let renamed = store
            .update_handler_configuration(&HandlerConfiguration {
                name: "avg".into(),
                ..max.clone()
            })
            .await;
        assert!(
            matches!(&renamed, Err(StoreError::Conflict(_))),
            "{renamed:?}"
        );
        assert!(store
            .update_handler_configuration(&HandlerConfiguration {
                version: "1.1.0".into(),
                ..max.clone()
            })
            .await
            .unwrap());
        assert_eq!(
            store
                .handler_configuration(max.id)
                .await
                .unwrap()
                .unwrap()
                .name,
            "max"
        );

        let orphan = store
            .insert_handler_configuration(&configuration(Uuid::new_v4(), "x"))
            .await;
        assert!(
            matches!(orphan, Err(StoreError::NotFound("channel"))),
            "{orphan:?}"
        );
    }

    #[tokio::test]
    async fn deployments_are_upserted_listed_and_deleted() {
        let (_dir, store) = open_store().await;
        let owner = account(&store, "dev").await;
        let mut channels = [
            channel(&store, owner, "a").await,
            channel(&store, owner, "b").await,
        ];
        channels.sort();
        let [first, second] = channels;
        let local = store
            .ensure_environment(crate::DEFAULT_ENVIRONMENT)
            .await
            .unwrap()
            .id;
        let staging = store.create_environment(owner, "staging").await.unwrap().id;

        let deployment = |channel, environment, seconds| Deployment {
            channel_id: channel,
            environment_id: environment,
            deployed_at: at(seconds),
        };
        store
            .upsert_deployment(&deployment(first, local, 1))
            .await
            .unwrap();
        store
            .upsert_deployment(&deployment(second, local, 2))
            .await
            .unwrap();
        store
            .upsert_deployment(&deployment(first, staging, 3))
            .await
            .unwrap();
        // Deploying again refreshes the time and adds no row.
        store
            .upsert_deployment(&deployment(first, local, 10))
            .await
            .unwrap();

        let mut everything = vec![
            deployment(first, local, 10),
            deployment(first, staging, 3),
            deployment(second, local, 2),
        ];
        everything.sort_by_key(|d| (d.channel_id, d.environment_id));
        assert_eq!(store.deployments().await.unwrap(), everything);
        let mut of_first = vec![deployment(first, local, 10), deployment(first, staging, 3)];
        of_first.sort_by_key(|d| d.environment_id);
        assert_eq!(store.deployments_of_channel(first).await.unwrap(), of_first);
        assert_eq!(
            store.deployments_in_environment(local).await.unwrap(),
            [deployment(first, local, 10), deployment(second, local, 2)]
        );
        assert_eq!(
            store.deployments_in_environment(staging).await.unwrap(),
            [deployment(first, staging, 3)]
        );

        assert!(store.delete_deployment(first, local).await.unwrap());
        assert!(!store.delete_deployment(first, local).await.unwrap());
        assert_eq!(
            store.deployments_of_channel(first).await.unwrap(),
            [deployment(first, staging, 3)]
        );

        for missing in [
            deployment(Uuid::new_v4(), local, 1),
            deployment(first, Uuid::new_v4(), 1),
        ] {
            let refused = store.upsert_deployment(&missing).await;
            assert!(
                matches!(refused, Err(StoreError::NotFound("channel or environment"))),
                "{refused:?}"
            );
        }
    }

    /// Channels and environments cannot be deleted through the store's traits yet; the schema
    /// still has to clean up after them when they are, so this deletes them with SQL.
    #[tokio::test]
    async fn deleting_a_channel_or_environment_takes_what_belongs_to_it() {
        let (_dir, store) = open_store().await;
        let owner = account(&store, "dev").await;
        let doomed = channel(&store, owner, "doomed").await;
        let kept = channel(&store, owner, "kept").await;
        let staging = store.create_environment(owner, "staging").await.unwrap().id;
        let prod = store.create_environment(owner, "prod").await.unwrap().id;
        for channel in [doomed, kept] {
            store
                .insert_handler_configuration(&configuration(channel, "avg"))
                .await
                .unwrap();
            for environment in [staging, prod] {
                store
                    .upsert_deployment(&Deployment {
                        channel_id: channel,
                        environment_id: environment,
                        deployed_at: at(0),
                    })
                    .await
                    .unwrap();
            }
        }
        let variable = |scope_type, scope_id| Variable {
            account_id: owner,
            scope_type,
            scope_id,
            name: "X".into(),
            value: "1".into(),
            updated_at: at(0),
        };
        for v in [
            variable(ScopeType::Account, owner),
            variable(ScopeType::Channel, doomed),
            variable(ScopeType::Channel, kept),
            variable(ScopeType::Environment, staging),
            variable(ScopeType::Environment, prod),
        ] {
            store.put_variable(&v).await.unwrap();
        }

        sqlx::query("DELETE FROM channels WHERE id = ?")
            .bind(doomed.to_string())
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(store
            .handler_configurations_of(doomed)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store.handler_configurations_of(kept).await.unwrap().len(),
            1
        );
        assert!(store
            .deployments_of_channel(doomed)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.deployments_of_channel(kept).await.unwrap().len(), 2);

        sqlx::query("DELETE FROM environments WHERE id = ?")
            .bind(staging.to_string())
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(store
            .deployments_in_environment(staging)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store.deployments().await.unwrap(),
            [Deployment {
                channel_id: kept,
                environment_id: prod,
                deployed_at: at(0),
            }]
        );

        let scopes: Vec<(ScopeType, Uuid)> = store
            .variables_of(owner)
            .await
            .unwrap()
            .into_iter()
            .map(|v| (v.scope_type, v.scope_id))
            .collect();
        assert_eq!(
            scopes,
            [
                (ScopeType::Account, owner),
                (ScopeType::Channel, kept),
                (ScopeType::Environment, prod),
            ]
        );

        // And an account takes all of it.
        sqlx::query("DELETE FROM accounts WHERE id = ?")
            .bind(owner.to_string())
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(store.variables_of(owner).await.unwrap().is_empty());
        assert!(store.deployments().await.unwrap().is_empty());
        assert!(store
            .handler_configurations_of(kept)
            .await
            .unwrap()
            .is_empty());
    }
}
