//! Shared access signatures in the familiar form
//! `SharedAccessSignature sr=<resource>&sig=<base64 HMAC-SHA256>&se=<expiry>&skn=<key name>`.
//!
//! As in Azure Service Bus and IoT Hub, the signed text is `urlencode(sr) + "\n" + se`, so any
//! client library that builds those signatures can build ours with the key it is given.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::Mac;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::keys::mac;

/// The scheme word that starts a SAS `Authorization` value.
pub const SCHEME: &str = "SharedAccessSignature";

/// Everything but the unreserved characters of RFC 3986 is encoded, like .NET's `WebUtility`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

fn signature(key: &[u8], resource: &str, expiry: i64) -> Vec<u8> {
    let mut mac = mac(key);
    mac.update(encode(resource).as_bytes());
    mac.update(b"\n");
    mac.update(expiry.to_string().as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A signature for `resource` valid until `expiry` (unix seconds), signed with `key` named
/// `key_name`.
pub fn sign(resource: &str, key_name: &str, key: &[u8], expiry: i64) -> String {
    let sig = STANDARD.encode(signature(key, resource, expiry));
    format!(
        "{SCHEME} sr={}&sig={}&se={expiry}&skn={}",
        encode(resource),
        encode(&sig),
        encode(key_name)
    )
}

/// A parsed, not yet verified signature.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented {
    pub resource: String,
    pub signature: Vec<u8>,
    pub expiry: i64,
    pub key_name: String,
}

/// Why a signature was refused; the texts are shown to callers.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    #[error("the shared access signature is malformed: {0}")]
    Malformed(&'static str),
    #[error("the shared access signature has expired")]
    Expired,
    #[error("the shared access signature is not for this endpoint")]
    WrongResource,
    #[error("the shared access signature uses key {0:?}, which does not allow this direction")]
    WrongKey(String),
    #[error("the shared access signature is invalid (wrong key, or the keys were rotated)")]
    BadSignature,
}

/// Parses the credentials after the `SharedAccessSignature` scheme word (fields in any order).
pub fn parse(credentials: &str) -> Result<Presented, SasError> {
    let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
    for pair in credentials.trim().split('&') {
        let (name, value) = pair
            .split_once('=')
            .ok_or(SasError::Malformed("every field must be name=value"))?;
        let value = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| SasError::Malformed("a field is not UTF-8 after URL decoding"))?
            .into_owned();
        let slot = match name {
            "sr" => &mut sr,
            "sig" => &mut sig,
            "se" => &mut se,
            "skn" => &mut skn,
            _ => continue,
        };
        *slot = Some(value);
    }
    let signature = STANDARD
        .decode(sig.ok_or(SasError::Malformed("sig is missing"))?)
        .map_err(|_| SasError::Malformed("sig is not base64"))?;
    let expiry = se
        .ok_or(SasError::Malformed("se is missing"))?
        .parse()
        .map_err(|_| SasError::Malformed("se is not a number of seconds"))?;
    Ok(Presented {
        resource: sr.ok_or(SasError::Malformed("sr is missing"))?,
        signature,
        expiry,
        key_name: skn.ok_or(SasError::Malformed("skn is missing"))?,
    })
}

impl Presented {
    /// Checks the signature against `key` (constant time), the expiry against `now` and that the
    /// resource ends with `resource_suffix` (the host part may differ behind proxies).
    pub fn verify(
        &self,
        key_name: &str,
        key: &[u8],
        resource_suffix: &str,
        now: i64,
    ) -> Result<(), SasError> {
        if self.key_name != key_name {
            return Err(SasError::WrongKey(self.key_name.clone()));
        }
        if !self
            .resource
            .trim_end_matches('/')
            .ends_with(resource_suffix)
        {
            return Err(SasError::WrongResource);
        }
        let mut mac = mac(key);
        mac.update(encode(&self.resource).as_bytes());
        mac.update(b"\n");
        mac.update(self.expiry.to_string().as_bytes());
        mac.verify_slice(&self.signature)
            .map_err(|_| SasError::BadSignature)?;
        // Checked after the signature so that a forged expiry is reported as forged.
        if self.expiry <= now {
            return Err(SasError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip_and_detect_tampering() {
        let key = [9u8; 32];
        let resource = "http://localhost:8080/endpoints/abc";
        let text = sign(resource, "inbound", &key, 2_000);
        let credentials = text.strip_prefix("SharedAccessSignature ").unwrap();
        let presented = parse(credentials).unwrap();
        assert_eq!(presented.resource, resource);
        assert_eq!(
            presented.verify("inbound", &key, "/endpoints/abc", 1_000),
            Ok(())
        );
        assert_eq!(
            presented.verify("inbound", &key, "/endpoints/abc", 2_000),
            Err(SasError::Expired)
        );
        assert_eq!(
            presented.verify("inbound", &[1u8; 32], "/endpoints/abc", 1_000),
            Err(SasError::BadSignature)
        );
        assert_eq!(
            presented.verify("outbound", &key, "/endpoints/abc", 1_000),
            Err(SasError::WrongKey("inbound".into()))
        );
        assert_eq!(
            presented.verify("inbound", &key, "/endpoints/xyz", 1_000),
            Err(SasError::WrongResource)
        );
        let forged = credentials.replace("se=2000", "se=9000");
        assert_eq!(
            parse(&forged)
                .unwrap()
                .verify("inbound", &key, "/endpoints/abc", 1_000),
            Err(SasError::BadSignature)
        );
    }

    #[test]
    fn malformed_signatures_are_refused() {
        assert!(matches!(
            parse("sr=x&se=1&skn=a"),
            Err(SasError::Malformed(_))
        ));
        assert!(matches!(parse("garbage"), Err(SasError::Malformed(_))));
        assert!(matches!(
            parse("sr=x&sig=AAAA&se=soon&skn=a"),
            Err(SasError::Malformed(_))
        ));
    }
}
