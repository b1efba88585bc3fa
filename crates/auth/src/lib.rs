//! Credentials of MessageHandler: how secrets are made and checked, how access tokens are signed
//! and verified, and which clients are revoked.
//!
//! Nothing here knows about HTTP or storage engines: the API crate turns these results into
//! responses, the store keeps the hashes.

mod keys;
mod refresh;
mod revocation;
pub mod secret;
mod token;

pub use keys::{KeyError, KeyRing, SigningKey, KEYS_FILE};
pub use refresh::{issue_refresh_token, parse_refresh_token, IssuedRefreshToken};
pub use revocation::RevocationList;
pub use token::{decode_bearer, Claims, TokenError, TokenService, SWT_TOKEN_TYPE};
