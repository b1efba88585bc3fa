//! Records the store keeps. They carry no behaviour; validation lives with the code that creates them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Personal,
    Organization,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Personal => "personal",
            AccountKind::Organization => "organization",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "personal" => Some(AccountKind::Personal),
            "organization" => Some(AccountKind::Organization),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub kind: AccountKind,
    pub reviewer: bool,
    pub created_at: OffsetDateTime,
}

/// A client credential. Only the SHA-256 of the secret is ever stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: Uuid,
    pub account_id: Uuid,
    pub secret_hash: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A refresh token. Its value carries `id` (time-ordered, so new tokens append to the table) and
/// a secret of which only the SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub id: Uuid,
    pub secret_hash: Vec<u8>,
    pub client_id: Uuid,
    pub account_id: Uuid,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: Uuid,
    pub name: String,
}
