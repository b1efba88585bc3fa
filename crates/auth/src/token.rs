//! Access tokens as Simple Web Tokens (SWT): form-encoded claims followed by
//! `&HMACSHA256=<base64 signature over everything before it>`, the format the original platform
//! issued (`token_type` = [`SWT_TOKEN_TYPE`]).
//!
//! Written by hand because no maintained crate implements SWT; the format is a few lines of
//! form encoding around an HMAC, which `hmac`/`sha2` and `form_urlencoded` provide.

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;
use uuid::Uuid;

use crate::keys::KeyRing;
use crate::revocation::RevocationList;

type HmacSha256 = Hmac<Sha256>;

pub const SWT_TOKEN_TYPE: &str = "http://schemas.xmlsoap.org/ws/2009/11/swt-token-profile-1.0";

const SIGNATURE_MARKER: &str = "&HMACSHA256=";

/// Why a presented access token was refused. The texts are shown to API callers.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the access token is malformed: {0}")]
    Malformed(&'static str),
    #[error(
        "the access token was signed by an unknown key; request a new token at POST /authorize"
    )]
    UnknownKey,
    #[error("the access token signature is invalid")]
    BadSignature,
    #[error("the access token was issued for another audience or issuer")]
    WrongAudience,
    #[error("the access token has expired; request a new one at POST /authorize")]
    Expired,
    #[error("the access token belongs to a revoked client")]
    RevokedClient,
}

/// What a verified token says about its bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub account: Uuid,
    pub client_id: Uuid,
    /// Unix seconds.
    pub expires_on: i64,
}

/// Issues and verifies access tokens. Cheap to share; keys and revocations can be swapped while
/// requests are verified.
pub struct TokenService {
    keys: ArcSwap<KeyRing>,
    revoked: Arc<RevocationList>,
    issuer: String,
    audience: String,
}

impl TokenService {
    pub fn new(
        keys: KeyRing,
        revoked: Arc<RevocationList>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        TokenService {
            keys: ArcSwap::from_pointee(keys),
            revoked,
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    /// Installs a reloaded key ring (after `mh admin keys rotate`).
    pub fn replace_keys(&self, keys: KeyRing) {
        self.keys.store(Arc::new(keys));
    }

    pub fn current_key_id(&self) -> String {
        self.keys.load().current().id.clone()
    }

    pub fn revocations(&self) -> &RevocationList {
        &self.revoked
    }

    /// A token for `account` obtained through `client_id`, valid until `expires_on` (unix seconds).
    pub fn issue(&self, account: Uuid, client_id: Uuid, expires_on: i64) -> String {
        let keys = self.keys.load();
        let key = keys.current();
        let mut claims = form_urlencoded::Serializer::new(String::with_capacity(256));
        claims
            .append_pair("Issuer", &self.issuer)
            .append_pair("Audience", &self.audience)
            .append_pair("ExpiresOn", &expires_on.to_string())
            .append_pair("Account", &account.to_string())
            .append_pair("ClientId", &client_id.to_string())
            .append_pair("KeyId", &key.id);
        let mut token = claims.finish();
        let signature =
            STANDARD.encode(sign(key.secret(), token.as_bytes()).finalize().into_bytes());
        token.push_str(SIGNATURE_MARKER);
        token.extend(form_urlencoded::byte_serialize(signature.as_bytes()));
        token
    }

    /// Checks signature, audience, issuer, expiry (against `now`, unix seconds) and revocation.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let split = token
            .rfind(SIGNATURE_MARKER)
            .ok_or(TokenError::Malformed("it carries no HMACSHA256 signature"))?;
        let (signed, signature) = (&token[..split], &token[split + SIGNATURE_MARKER.len()..]);

        let mut issuer = None;
        let mut audience = None;
        let mut expires_on = None;
        let mut account = None;
        let mut client_id = None;
        let mut key_id = None;
        for (name, value) in form_urlencoded::parse(signed.as_bytes()) {
            let slot = match name.as_ref() {
                "Issuer" => &mut issuer,
                "Audience" => &mut audience,
                "ExpiresOn" => &mut expires_on,
                "Account" => &mut account,
                "ClientId" => &mut client_id,
                "KeyId" => &mut key_id,
                _ => continue,
            };
            *slot = Some(value);
        }

        let key_id = key_id.ok_or(TokenError::Malformed("the KeyId claim is missing"))?;
        let keys = self.keys.load();
        let key = keys.get(&key_id).ok_or(TokenError::UnknownKey)?;
        let signature: Vec<u8> = percent_encoding::percent_decode(signature.as_bytes()).collect();
        let signature = STANDARD
            .decode(&signature)
            .map_err(|_| TokenError::Malformed("the signature is not base64"))?;
        sign(key.secret(), signed.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;

        if issuer.as_deref() != Some(self.issuer.as_str())
            || audience.as_deref() != Some(self.audience.as_str())
        {
            return Err(TokenError::WrongAudience);
        }
        let expires_on: i64 =
            expires_on
                .and_then(|v| v.parse().ok())
                .ok_or(TokenError::Malformed(
                    "the ExpiresOn claim is missing or not a number",
                ))?;
        if expires_on <= now {
            return Err(TokenError::Expired);
        }
        let account =
            account
                .and_then(|v| Uuid::parse_str(&v).ok())
                .ok_or(TokenError::Malformed(
                    "the Account claim is missing or not a UUID",
                ))?;
        let client_id =
            client_id
                .and_then(|v| Uuid::parse_str(&v).ok())
                .ok_or(TokenError::Malformed(
                    "the ClientId claim is missing or not a UUID",
                ))?;
        if self.revoked.is_revoked(&client_id) {
            return Err(TokenError::RevokedClient);
        }
        Ok(Claims {
            account,
            client_id,
            expires_on,
        })
    }
}

fn sign(key: &[u8], data: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(data);
    mac
}

/// The token inside an `Authorization: Bearer` value. The seed sends `base64(access_token)`;
/// OAuth2 libraries send the token itself. A raw SWT always contains the signature marker, which
/// base64 text never does, so the two cannot be confused.
pub fn decode_bearer(value: &str) -> Option<Cow<'_, str>> {
    let value = value.trim();
    if value.contains("HMACSHA256=") {
        return Some(Cow::Borrowed(value));
    }
    let bytes = STANDARD
        .decode(value)
        .or_else(|_| URL_SAFE.decode(value))
        .or_else(|_| URL_SAFE_NO_PAD.decode(value))
        .ok()?;
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> (tempfile::TempDir, TokenService) {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyRing::load_or_create(dir.path()).unwrap();
        let service =
            TokenService::new(keys, Arc::default(), "mh", "http://api.messagehandler.net/");
        (dir, service)
    }

    #[test]
    fn issued_tokens_verify_and_carry_their_claims() {
        let (_dir, service) = service();
        let (account, client) = (Uuid::new_v4(), Uuid::new_v4());
        let token = service.issue(account, client, 2_000);
        assert!(token.contains("ExpiresOn=2000"));
        assert!(token.contains("&HMACSHA256="));
        let claims = service.verify(&token, 1_000).unwrap();
        assert_eq!(claims.account, account);
        assert_eq!(claims.client_id, client);
        assert_eq!(service.verify(&token, 2_000), Err(TokenError::Expired));
    }

    #[test]
    fn tampering_is_detected() {
        let (_dir, service) = service();
        let token = service.issue(Uuid::new_v4(), Uuid::new_v4(), 2_000);
        let forged = token.replace("ExpiresOn=2000", "ExpiresOn=9000");
        assert_eq!(
            service.verify(&forged, 1_000),
            Err(TokenError::BadSignature)
        );
        assert!(matches!(
            service.verify("Issuer=x", 0),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn revoked_clients_are_refused() {
        let (_dir, service) = service();
        let client = Uuid::new_v4();
        let token = service.issue(Uuid::new_v4(), client, 2_000);
        service.revocations().insert(client);
        assert_eq!(
            service.verify(&token, 1_000),
            Err(TokenError::RevokedClient)
        );
    }

    #[test]
    fn bearer_values_are_accepted_raw_and_base64() {
        let (_dir, service) = service();
        let token = service.issue(Uuid::new_v4(), Uuid::new_v4(), 2_000);
        assert_eq!(decode_bearer(&token).unwrap(), token);
        assert_eq!(decode_bearer(&STANDARD.encode(&token)).unwrap(), token);
        assert!(decode_bearer("%%%").is_none());
    }
}
