//! Variables: named values that handler configurations refer to (`{{ variables.X }}`), scoped to
//! an account, one of its channels or an environment, and the grants that let another account
//! read them.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeType {
    Account,
    Channel,
    Environment,
}

impl ScopeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeType::Account => "account",
            ScopeType::Channel => "channel",
            ScopeType::Environment => "environment",
        }
    }

    /// Case-insensitive.
    pub fn parse(text: &str) -> Option<Self> {
        [
            ScopeType::Account,
            ScopeType::Channel,
            ScopeType::Environment,
        ]
        .into_iter()
        .find(|scope| scope.as_str().eq_ignore_ascii_case(text))
    }
}

/// A named value scoped to an account, one of its channels, or an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The owning account.
    pub account_id: Uuid,
    pub scope_type: ScopeType,
    /// The account id for [`ScopeType::Account`], else the channel or environment id.
    pub scope_id: Uuid,
    pub name: String,
    pub value: String,
    pub updated_at: OffsetDateTime,
}

#[async_trait]
pub trait VariableStore: Send + Sync {
    /// Creates or replaces the variable (key: account_id, scope_type, scope_id, name). A missing
    /// account answers [`crate::StoreError::NotFound`].
    async fn put_variable(&self, variable: &Variable) -> Result<()>;
    async fn delete_variable(
        &self,
        account: Uuid,
        scope_type: ScopeType,
        scope_id: Uuid,
        name: &str,
    ) -> Result<bool>;
    /// All of the account's variables, ordered by scope type, scope id, name.
    async fn variables_of(&self, account: Uuid) -> Result<Vec<Variable>>;

    /// Lets `grantee` read `owner`'s variables. Granting twice is not an error (the first grant's
    /// time is kept). A missing account answers [`crate::StoreError::NotFound`].
    async fn grant_variable_access(
        &self,
        owner: Uuid,
        grantee: Uuid,
        at: OffsetDateTime,
    ) -> Result<()>;
    async fn revoke_variable_access(&self, owner: Uuid, grantee: Uuid) -> Result<bool>;
    async fn variable_access_granted(&self, owner: Uuid, grantee: Uuid) -> Result<bool>;
    /// The accounts `owner` granted access to, oldest grant first.
    async fn variable_grantees(&self, owner: Uuid) -> Result<Vec<Uuid>>;
}
