//! Key layouts of the keyspaces. All integers and ids are big-endian so that byte order is
//! position order; UUIDv7 bytes already sort by time.

use uuid::Uuid;

use crate::StreamId;

/// `stream[32] first_id[16]`: one value per appended group of messages of one stream.
pub fn stream_batch(stream: &StreamId, first: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(48);
    k.extend_from_slice(&stream.key());
    k.extend_from_slice(first.as_bytes());
    k
}

/// `stream[32] consumer`: a consumer's checkpoint.
pub fn checkpoint(stream: &StreamId, consumer: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + consumer.len());
    k.extend_from_slice(&stream.key());
    k.extend_from_slice(consumer.as_bytes());
    k
}

/// `'s' stream[32] key` or `'i' inbox[16] key`: the id stored under an idempotency key.
pub fn dedup_stream(stream: &StreamId, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(33 + key.len());
    k.push(b's');
    k.extend_from_slice(&stream.key());
    k.extend_from_slice(key.as_bytes());
    k
}

pub fn dedup_inbox_prefix(inbox: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(b'i');
    k.extend_from_slice(inbox.as_bytes());
    k
}

pub fn dedup_inbox(inbox: Uuid, key: &str) -> Vec<u8> {
    let mut k = dedup_inbox_prefix(inbox);
    k.extend_from_slice(key.as_bytes());
    k
}

/// `inbox[16] id[16]`: a message in an inbox (and its metadata, and its dead letter).
pub fn inbox_message(inbox: Uuid, id: Uuid) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(inbox.as_bytes());
    k[16..].copy_from_slice(id.as_bytes());
    k
}

/// Splits an `inbox_message` key.
pub fn split_inbox_message(k: &[u8]) -> Option<(Uuid, Uuid)> {
    let inbox = Uuid::from_slice(k.get(..16)?).ok()?;
    let id = Uuid::from_slice(k.get(16..32)?).ok()?;
    Some((inbox, id))
}

/// Where the writer keeps the largest id it ever assigned (the id generator's floor).
pub const LAST_ID: &[u8] = b"last_id";
