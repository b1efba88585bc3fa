//! Variables and variable-access grants on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{timestamp, uuid_column, SqliteStore};
use crate::{Result, ScopeType, StoreError, Variable, VariableStore};

fn variable_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Variable> {
    let scope_type: String = row.try_get("scope_type")?;
    Ok(Variable {
        account_id: uuid_column(row, "account_id")?,
        scope_type: ScopeType::parse(&scope_type)
            .ok_or_else(|| StoreError::Corrupt(format!("variable scope type {scope_type:?}")))?,
        scope_id: uuid_column(row, "scope_id")?,
        name: row.try_get("name")?,
        value: row.try_get("value")?,
        updated_at: timestamp(row.try_get("updated_at")?)?,
    })
}

/// A foreign-key violation on these tables is a missing account.
fn missing_account(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound("account")
        }
        _ => StoreError::Database(error),
    }
}

#[async_trait]
impl VariableStore for SqliteStore {
    async fn put_variable(&self, variable: &Variable) -> Result<()> {
        sqlx::query(
            "INSERT INTO variables (account_id, scope_type, scope_id, name, value, updated_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (account_id, scope_type, scope_id, name)
             DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(variable.account_id.to_string())
        .bind(variable.scope_type.as_str())
        .bind(variable.scope_id.to_string())
        .bind(&variable.name)
        .bind(&variable.value)
        .bind(variable.updated_at.unix_timestamp())
        .execute(&self.pool)
        .await
        .map_err(missing_account)?;
        Ok(())
    }

    async fn delete_variable(
        &self,
        account: Uuid,
        scope_type: ScopeType,
        scope_id: Uuid,
        name: &str,
    ) -> Result<bool> {
        let deleted = sqlx::query(
            "DELETE FROM variables
             WHERE account_id = ? AND scope_type = ? AND scope_id = ? AND name = ?",
        )
        .bind(account.to_string())
        .bind(scope_type.as_str())
        .bind(scope_id.to_string())
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn variables_of(&self, account: Uuid) -> Result<Vec<Variable>> {
        // The scope type names sort as the enum does: account, channel, environment.
        sqlx::query(
            "SELECT * FROM variables WHERE account_id = ? ORDER BY scope_type, scope_id, name",
        )
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(variable_from_row)
        .collect()
    }

    async fn grant_variable_access(
        &self,
        owner: Uuid,
        grantee: Uuid,
        at: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO variable_grants (owner_id, grantee_id, granted_at) VALUES (?, ?, ?)
             ON CONFLICT (owner_id, grantee_id) DO NOTHING",
        )
        .bind(owner.to_string())
        .bind(grantee.to_string())
        .bind(at.unix_timestamp())
        .execute(&self.pool)
        .await
        .map_err(missing_account)?;
        Ok(())
    }

    async fn revoke_variable_access(&self, owner: Uuid, grantee: Uuid) -> Result<bool> {
        let deleted =
            sqlx::query("DELETE FROM variable_grants WHERE owner_id = ? AND grantee_id = ?")
                .bind(owner.to_string())
                .bind(grantee.to_string())
                .execute(&self.pool)
                .await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn variable_access_granted(&self, owner: Uuid, grantee: Uuid) -> Result<bool> {
        let row = sqlx::query(
            "SELECT EXISTS (
                 SELECT 1 FROM variable_grants WHERE owner_id = ? AND grantee_id = ?) AS granted",
        )
        .bind(owner.to_string())
        .bind(grantee.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("granted")?)
    }

    async fn variable_grantees(&self, owner: Uuid) -> Result<Vec<Uuid>> {
        sqlx::query(
            "SELECT grantee_id FROM variable_grants WHERE owner_id = ?
             ORDER BY granted_at, grantee_id",
        )
        .bind(owner.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| uuid_column(row, "grantee_id"))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::test_support::{account, channel, open_store};

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
    }

    #[test]
    fn scope_types_parse_case_insensitively() {
        for scope in [
            ScopeType::Account,
            ScopeType::Channel,
            ScopeType::Environment,
        ] {
            assert_eq!(ScopeType::parse(scope.as_str()), Some(scope));
            assert_eq!(
                ScopeType::parse(&scope.as_str().to_uppercase()),
                Some(scope)
            );
        }
        assert_eq!(ScopeType::parse("Channel"), Some(ScopeType::Channel));
        assert_eq!(ScopeType::parse("device"), None);
        assert_eq!(ScopeType::parse(""), None);
    }

    #[tokio::test]
    async fn variables_are_replaced_deleted_and_listed_in_order() {
        let (_dir, store) = open_store().await;
        let owner = account(&store, "dev").await;
        let neighbour = account(&store, "neighbour").await;
        let mut channels = [
            channel(&store, owner, "a").await,
            channel(&store, owner, "b").await,
        ];
        channels.sort();
        let [low, high] = channels;
        let environment = Uuid::new_v4();
        let variable = |scope_type, scope_id, name: &str, value: &str, seconds| Variable {
            account_id: owner,
            scope_type,
            scope_id,
            name: name.into(),
            value: value.into(),
            updated_at: at(seconds),
        };
        // Written out of order, with one key written twice.
        let writes = [
            variable(ScopeType::Environment, environment, "Region", "eu", 1),
            variable(ScopeType::Channel, high, "B", "1", 2),
            variable(ScopeType::Channel, low, "Z", "1", 3),
            variable(ScopeType::Channel, low, "A", "1", 4),
            variable(ScopeType::Account, owner, "Threshold", "10", 5),
            variable(ScopeType::Account, owner, "Threshold", "20", 6),
        ];
        for v in &writes {
            store.put_variable(v).await.unwrap();
        }
        store
            .put_variable(&Variable {
                account_id: neighbour,
                ..variable(ScopeType::Account, neighbour, "Threshold", "99", 7)
            })
            .await
            .unwrap();

        let expected = vec![
            variable(ScopeType::Account, owner, "Threshold", "20", 6),
            variable(ScopeType::Channel, low, "A", "1", 4),
            variable(ScopeType::Channel, low, "Z", "1", 3),
            variable(ScopeType::Channel, high, "B", "1", 2),
            variable(ScopeType::Environment, environment, "Region", "eu", 1),
        ];
        assert_eq!(store.variables_of(owner).await.unwrap(), expected);
        assert_eq!(store.variables_of(neighbour).await.unwrap().len(), 1);
        assert!(store.variables_of(Uuid::new_v4()).await.unwrap().is_empty());

        // The whole key must match: same name, other scope is another variable.
        assert!(!store
            .delete_variable(owner, ScopeType::Channel, high, "A")
            .await
            .unwrap());
        assert!(!store
            .delete_variable(owner, ScopeType::Environment, low, "A")
            .await
            .unwrap());
        assert!(store
            .delete_variable(owner, ScopeType::Channel, low, "A")
            .await
            .unwrap());
        assert!(!store
            .delete_variable(owner, ScopeType::Channel, low, "A")
            .await
            .unwrap());
        assert_eq!(store.variables_of(owner).await.unwrap().len(), 4);

        let orphan = store
            .put_variable(&Variable {
                account_id: Uuid::nil(),
                ..variable(ScopeType::Account, Uuid::nil(), "X", "1", 0)
            })
            .await;
        assert!(
            matches!(orphan, Err(StoreError::NotFound("account"))),
            "{orphan:?}"
        );
        // An account-wide variable is scoped by the account's own id.
        let misplaced = store
            .put_variable(&variable(ScopeType::Account, low, "X", "1", 0))
            .await;
        assert!(
            matches!(misplaced, Err(StoreError::Database(_))),
            "{misplaced:?}"
        );
    }

    #[tokio::test]
    async fn grants_are_idempotent_directed_and_revocable() {
        let (_dir, store) = open_store().await;
        let owner = account(&store, "owner").await;
        let first = account(&store, "first").await;
        let second = account(&store, "second").await;

        assert!(!store.variable_access_granted(owner, first).await.unwrap());
        store
            .grant_variable_access(owner, second, at(1))
            .await
            .unwrap();
        store
            .grant_variable_access(owner, first, at(2))
            .await
            .unwrap();
        // Granting again changes nothing, not even the order.
        store
            .grant_variable_access(owner, second, at(3))
            .await
            .unwrap();
        assert_eq!(
            store.variable_grantees(owner).await.unwrap(),
            [second, first]
        );
        assert!(store.variable_access_granted(owner, first).await.unwrap());
        // A grant goes one way.
        assert!(!store.variable_access_granted(first, owner).await.unwrap());
        assert!(store.variable_grantees(first).await.unwrap().is_empty());

        assert!(store.revoke_variable_access(owner, second).await.unwrap());
        assert!(!store.revoke_variable_access(owner, second).await.unwrap());
        assert!(!store.variable_access_granted(owner, second).await.unwrap());
        assert_eq!(store.variable_grantees(owner).await.unwrap(), [first]);

        let refused = store
            .grant_variable_access(owner, Uuid::new_v4(), at(4))
            .await;
        assert!(
            matches!(refused, Err(StoreError::NotFound("account"))),
            "{refused:?}"
        );

        // A grant ends with either account.
        sqlx::query("DELETE FROM accounts WHERE id = ?")
            .bind(first.to_string())
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(store.variable_grantees(owner).await.unwrap().is_empty());
    }
}
