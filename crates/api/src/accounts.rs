//! Creating accounts and client credentials: used by the admin CLI today, by account routes later.

use mh_auth::secret;
use mh_store::{Account, AccountKind, Client, MetadataStore, StoreError};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::ApiError;

/// A credential as shown once to its owner; the secret is never retrievable again.
#[derive(Debug, Serialize)]
pub struct IssuedCredentials {
    pub account: String,
    pub client_id: String,
    pub client_secret: String,
}

/// Account names: 3-64 characters of lowercase letters, digits and `-`.
pub fn validate_account_name(name: &str) -> Result<(), ApiError> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(3..=64).contains(&name.len()) || !valid_chars {
        return Err(ApiError::bad_request(
            "invalid_account_name",
            format!("account name {name:?} is invalid: use 3 to 64 characters of lowercase letters, digits and '-'"),
        ));
    }
    Ok(())
}

fn new_client(account_id: Uuid, now: OffsetDateTime) -> (Client, String) {
    let secret = secret::generate();
    let client = Client {
        client_id: Uuid::new_v4(),
        account_id,
        secret_hash: secret::hash(&secret).to_vec(),
        created_at: now,
        revoked_at: None,
    };
    (client, secret)
}

pub async fn create_account(
    store: &dyn MetadataStore,
    name: &str,
    kind: AccountKind,
    reviewer: bool,
) -> Result<IssuedCredentials, ApiError> {
    validate_account_name(name)?;
    let now = OffsetDateTime::now_utc();
    let account = Account {
        id: Uuid::new_v4(),
        name: name.to_string(),
        kind,
        reviewer,
        created_at: now,
    };
    let (client, secret) = new_client(account.id, now);
    store.create_account(&account, &client).await?;
    Ok(IssuedCredentials {
        account: account.name,
        client_id: client.client_id.to_string(),
        client_secret: secret,
    })
}

/// Looks an account up by name or identifier.
pub async fn find_account(store: &dyn MetadataStore, reference: &str) -> Result<Account, ApiError> {
    let found = match Uuid::parse_str(reference) {
        Ok(id) => store.account(id).await?,
        Err(_) => store.account_by_name(reference).await?,
    };
    found.ok_or_else(|| {
        ApiError::not_found(format!("no account named or identified by {reference:?}"))
    })
}

pub async fn create_client(
    store: &dyn MetadataStore,
    account: &str,
) -> Result<IssuedCredentials, ApiError> {
    let account = find_account(store, account).await?;
    let (client, secret) = new_client(account.id, OffsetDateTime::now_utc());
    store.create_client(&client).await?;
    Ok(IssuedCredentials {
        account: account.name,
        client_id: client.client_id.to_string(),
        client_secret: secret,
    })
}

pub async fn revoke_client(store: &dyn MetadataStore, client_id: &str) -> Result<(), ApiError> {
    let id = Uuid::parse_str(client_id).map_err(|_| {
        ApiError::bad_request(
            "invalid_client_id",
            format!("{client_id:?} is not a client id (a UUID)"),
        )
    })?;
    store
        .revoke_client(id, OffsetDateTime::now_utc())
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::not_found(format!("no client with id {client_id}"))
            }
            other => other.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_follow_the_rules() {
        for good in ["abc", "acme-corp", "a1-2", &"x".repeat(64)] {
            assert!(validate_account_name(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "Acme",
            "acme_corp",
            "acme corp",
            "",
            &"x".repeat(65),
            "été",
        ] {
            let error = validate_account_name(bad).unwrap_err();
            assert!(error.message().contains("3 to 64"), "{bad}");
        }
    }
}
