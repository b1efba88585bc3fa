//! Handler definitions and versions on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::{conflict_on_unique, optional_timestamp, timestamp, uuid_column, SqliteStore};
use crate::{
    HandlerDefinition, HandlerStore, HandlerVersion, Result, Review, StoreError, VersionInsert,
    VersionStatus,
};

/// Definitions with the written form of their active version.
const DEFINITION_SELECT: &str = "SELECT d.*, v.version AS active_version
     FROM handler_definitions d
     LEFT JOIN handler_versions v
       ON v.definition_id = d.id AND v.version_key = d.active_version_key";

fn definition_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<HandlerDefinition> {
    Ok(HandlerDefinition {
        id: uuid_column(row, "id")?,
        account_id: uuid_column(row, "account_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        active_version: row.try_get("active_version")?,
        public: row.try_get("public")?,
        created_at: timestamp(row.try_get("created_at")?)?,
    })
}

fn version_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<HandlerVersion> {
    let status: String = row.try_get("status")?;
    let size: i64 = row.try_get("package_size")?;
    let reviewed_at = optional_timestamp(row, "reviewed_at")?;
    let reviewer: Option<String> = row.try_get("reviewed_by")?;
    let reviewer = reviewer
        .map(|text| {
            Uuid::parse_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("reviewed_by {text:?}: {e}")))
        })
        .transpose()?;
    let comment: Option<String> = row.try_get("review_comment")?;
    Ok(HandlerVersion {
        definition_id: uuid_column(row, "definition_id")?,
        version: row.try_get("version")?,
        version_key: row.try_get("version_key")?,
        status: VersionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("version status {status:?}")))?,
        package_digest: row.try_get("package_digest")?,
        package_size: u64::try_from(size)
            .map_err(|_| StoreError::Corrupt(format!("package size {size}")))?,
        manifest: row.try_get("manifest")?,
        uploaded_by: uuid_column(row, "uploaded_by")?,
        uploaded_at: timestamp(row.try_get("uploaded_at")?)?,
        review: reviewed_at.map(|at| Review {
            reviewer,
            at,
            comment: comment.unwrap_or_default(),
        }),
    })
}

#[async_trait]
impl HandlerStore for SqliteStore {
    async fn create_definition(&self, definition: &HandlerDefinition) -> Result<()> {
        sqlx::query(
            "INSERT INTO handler_definitions (id, account_id, name, description, active_version_key, public, created_at)
             VALUES (?, ?, ?, ?, NULL, ?, ?)",
        )
        .bind(definition.id.to_string())
        .bind(definition.account_id.to_string())
        .bind(&definition.name)
        .bind(&definition.description)
        .bind(definition.public)
        .bind(definition.created_at.unix_timestamp())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!(
                    "a handler definition named {:?} already exists",
                    definition.name
                )
            })
        })?;
        Ok(())
    }

    async fn definition(&self, id: Uuid) -> Result<Option<HandlerDefinition>> {
        sqlx::query(&format!("{DEFINITION_SELECT} WHERE d.id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(definition_from_row)
            .transpose()
    }

    async fn definitions_of(&self, account: Uuid) -> Result<Vec<HandlerDefinition>> {
        sqlx::query(&format!(
            "{DEFINITION_SELECT} WHERE d.account_id = ? ORDER BY d.name"
        ))
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(definition_from_row)
        .collect()
    }

    async fn set_definition_public(&self, id: Uuid, public: bool) -> Result<bool> {
        let updated = sqlx::query("UPDATE handler_definitions SET public = ? WHERE id = ?")
            .bind(public)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn public_definitions(&self) -> Result<Vec<HandlerDefinition>> {
        // Names are unique per account only; the id keeps equal names in a stable order.
        sqlx::query(&format!(
            "{DEFINITION_SELECT} WHERE d.public = TRUE ORDER BY d.name, d.id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(definition_from_row)
        .collect()
    }

    async fn insert_version(&self, version: &HandlerVersion) -> Result<VersionInsert> {
        // One statement, so SQLite's write lock makes the "higher than every version" check and
        // the insert atomic; the primary key settles concurrent uploads of an equal version.
        let inserted = sqlx::query(
            "INSERT INTO handler_versions (definition_id, version_key, version, status, package_digest,
                 package_size, manifest, uploaded_by, uploaded_at, reviewed_by, reviewed_at, review_comment)
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
             WHERE NOT EXISTS (
                 SELECT 1 FROM handler_versions WHERE definition_id = ? AND version_key >= ?)",
        )
        .bind(version.definition_id.to_string())
        .bind(&version.version_key)
        .bind(&version.version)
        .bind(version.status.as_str())
        .bind(&version.package_digest)
        .bind(i64::try_from(version.package_size).unwrap_or(i64::MAX))
        .bind(&version.manifest)
        .bind(version.uploaded_by.to_string())
        .bind(version.uploaded_at.unix_timestamp())
        .bind(
            version
                .review
                .as_ref()
                .and_then(|r| r.reviewer)
                .map(|id| id.to_string()),
        )
        .bind(version.review.as_ref().map(|r| r.at.unix_timestamp()))
        .bind(version.review.as_ref().map(|r| r.comment.clone()))
        .bind(version.definition_id.to_string())
        .bind(&version.version_key)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(result) if result.rows_affected() == 1 => return Ok(VersionInsert::Inserted),
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Ok(VersionInsert::Exists)
            }
            Err(e) => return Err(e.into()),
        }
        match self.highest_version(version.definition_id).await? {
            Some(highest) if highest.version_key == version.version_key => {
                Ok(VersionInsert::Exists)
            }
            Some(highest) => Ok(VersionInsert::NotIncreasing {
                highest: highest.version,
            }),
            None => Err(StoreError::Corrupt(
                "a version insert was refused although the definition has no versions".into(),
            )),
        }
    }

    async fn version(&self, definition: Uuid, version_key: &str) -> Result<Option<HandlerVersion>> {
        sqlx::query("SELECT * FROM handler_versions WHERE definition_id = ? AND version_key = ?")
            .bind(definition.to_string())
            .bind(version_key)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(version_from_row)
            .transpose()
    }

    async fn versions_of(&self, definition: Uuid) -> Result<Vec<HandlerVersion>> {
        sqlx::query("SELECT * FROM handler_versions WHERE definition_id = ? ORDER BY version_key")
            .bind(definition.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(version_from_row)
            .collect()
    }

    async fn highest_version(&self, definition: Uuid) -> Result<Option<HandlerVersion>> {
        sqlx::query(
            "SELECT * FROM handler_versions WHERE definition_id = ?
             ORDER BY version_key DESC LIMIT 1",
        )
        .bind(definition.to_string())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(version_from_row)
        .transpose()
    }

    async fn pending_versions(&self) -> Result<Vec<HandlerVersion>> {
        // Timestamps are in seconds; the rowid keeps uploads of the same second in upload order.
        sqlx::query(
            "SELECT * FROM handler_versions WHERE status = 'Pending'
             ORDER BY uploaded_at, rowid",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_from_row)
        .collect()
    }

    async fn review_version(
        &self,
        definition: Uuid,
        version_key: &str,
        status: VersionStatus,
        review: &Review,
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE handler_versions
             SET status = ?, reviewed_by = ?, reviewed_at = ?, review_comment = ?
             WHERE definition_id = ? AND version_key = ? AND status = 'Pending'",
        )
        .bind(status.as_str())
        .bind(review.reviewer.map(|id| id.to_string()))
        .bind(review.at.unix_timestamp())
        .bind(&review.comment)
        .bind(definition.to_string())
        .bind(version_key)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn activate_version(&self, definition: Uuid, version_key: &str) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE handler_definitions SET active_version_key = ?
             WHERE id = ? AND EXISTS (
                 SELECT 1 FROM handler_versions
                 WHERE definition_id = ? AND version_key = ? AND status = 'Accepted')",
        )
        .bind(version_key)
        .bind(definition.to_string())
        .bind(definition.to_string())
        .bind(version_key)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn package_in_use(&self, digest: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM handler_versions WHERE package_digest = ?) AS used",
        )
        .bind(digest)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("used")?)
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn version(definition: Uuid, text: &str, key: &str) -> HandlerVersion {
        HandlerVersion {
            definition_id: definition,
            version: text.into(),
            version_key: key.into(),
            status: VersionStatus::Pending,
            package_digest: "d".repeat(64),
            package_size: 10,
            manifest: "{}".into(),
            uploaded_by: Uuid::new_v4(),
            uploaded_at: OffsetDateTime::now_utc(),
            review: None,
        }
    }

    #[tokio::test]
    async fn versions_only_go_up_and_reviews_are_final() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let account = crate::Account {
            id: Uuid::new_v4(),
            name: "dev".into(),
            kind: crate::AccountKind::Personal,
            reviewer: false,
            created_at: OffsetDateTime::now_utc(),
        };
        let client = crate::Client {
            client_id: Uuid::new_v4(),
            account_id: account.id,
            secret_hash: vec![0; 32],
            created_at: account.created_at,
            revoked_at: None,
        };
        crate::AccountStore::create_account(&store, &account, &client)
            .await
            .unwrap();
        let definition = HandlerDefinition {
            id: Uuid::new_v4(),
            account_id: account.id,
            name: "avg".into(),
            description: String::new(),
            active_version: None,
            public: false,
            created_at: OffsetDateTime::now_utc(),
        };
        store.create_definition(&definition).await.unwrap();
        assert!(matches!(
            store
                .create_definition(&HandlerDefinition {
                    id: Uuid::new_v4(),
                    ..definition.clone()
                })
                .await,
            Err(StoreError::Conflict(_))
        ));

        let id = definition.id;
        assert_eq!(
            store
                .insert_version(&version(id, "1.0", "1.0"))
                .await
                .unwrap(),
            VersionInsert::Inserted
        );
        assert_eq!(
            store
                .insert_version(&version(id, "1.0.0", "1.0"))
                .await
                .unwrap(),
            VersionInsert::Exists
        );
        assert_eq!(
            store
                .insert_version(&version(id, "2", "2.0"))
                .await
                .unwrap(),
            VersionInsert::Inserted
        );
        assert_eq!(
            store
                .insert_version(&version(id, "1.5", "1.5"))
                .await
                .unwrap(),
            VersionInsert::NotIncreasing {
                highest: "2".into()
            }
        );
        assert!(!store.activate_version(id, "2.0").await.unwrap());
        let review = Review {
            reviewer: Some(Uuid::new_v4()),
            at: OffsetDateTime::now_utc(),
            comment: "ok".into(),
        };
        assert!(store
            .review_version(id, "2.0", VersionStatus::Accepted, &review)
            .await
            .unwrap());
        assert!(!store
            .review_version(id, "2.0", VersionStatus::Rejected, &review)
            .await
            .unwrap());
        assert!(store.activate_version(id, "2.0").await.unwrap());
        assert_eq!(
            store
                .definition(id)
                .await
                .unwrap()
                .unwrap()
                .active_version
                .as_deref(),
            Some("2")
        );
        let pending = store.pending_versions().await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].version, "1.0");
        assert!(store.package_in_use(&"d".repeat(64)).await.unwrap());
        assert!(!store.package_in_use("e").await.unwrap());
    }

    #[tokio::test]
    async fn public_definitions_span_accounts_in_name_order() {
        use crate::sqlite::test_support::{account, open_store};

        let (_dir, store) = open_store().await;
        let alice = account(&store, "alice").await;
        let bob = account(&store, "bob").await;
        let definition = |owner, name: &str, public| HandlerDefinition {
            id: Uuid::new_v4(),
            account_id: owner,
            name: name.into(),
            description: String::new(),
            active_version: None,
            public,
            created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        };
        let zeta = definition(alice, "zeta", true);
        let hidden = definition(alice, "hidden", false);
        let beta = definition(bob, "beta", false);
        for d in [&zeta, &hidden, &beta] {
            store.create_definition(d).await.unwrap();
        }
        assert_eq!(store.definition(zeta.id).await.unwrap(), Some(zeta.clone()));
        assert_eq!(
            store.public_definitions().await.unwrap(),
            vec![zeta.clone()]
        );

        assert!(store.set_definition_public(beta.id, true).await.unwrap());
        let beta = HandlerDefinition {
            public: true,
            ..beta
        };
        assert_eq!(
            store.public_definitions().await.unwrap(),
            [beta.clone(), zeta.clone()]
        );
        assert!(store.set_definition_public(zeta.id, false).await.unwrap());
        // Setting the current value again still finds the definition.
        assert!(store.set_definition_public(zeta.id, false).await.unwrap());
        assert_eq!(
            store.public_definitions().await.unwrap(),
            vec![beta.clone()]
        );
        assert!(!store.definition(zeta.id).await.unwrap().unwrap().public);
        assert!(!store
            .set_definition_public(Uuid::new_v4(), true)
            .await
            .unwrap());
        // The owner's listing shows the flag too.
        let of_bob = store.definitions_of(bob).await.unwrap();
        assert_eq!(of_bob, [beta]);
    }
}
