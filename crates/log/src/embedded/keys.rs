//! Key layouts of the keyspaces. All integers and ids are big-endian so that byte order is
//! position order; UUIDv7 bytes already sort by time.

use uuid::Uuid;

use crate::{LogError, Result, StreamId};

/// `streams`: `stream[32] first_id[16]`: one value per appended group of messages of one stream.
pub fn stream_batch(stream: &StreamId, first: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(48);
    k.extend_from_slice(&stream.key());
    k.extend_from_slice(first.as_bytes());
    k
}

/// `checkpoints`: `stream[32] consumer`: a consumer's checkpoint.
pub fn checkpoint(stream: &StreamId, consumer: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + consumer.len());
    k.extend_from_slice(&stream.key());
    k.extend_from_slice(consumer.as_bytes());
    k
}

/// `dedup`: `'s' stream[32] key` or `'i' inbox[16] key`: the id stored under an idempotency key.
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

/// `inbox`, `inbox_meta`, `dead`: `inbox[16] id[16]`: a message in an inbox (and its metadata,
/// and its dead letter).
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

/// `meta`: where the writer keeps the largest id it ever assigned (the id generator's floor).
pub const LAST_ID: &[u8] = b"last_id";

// The rest of `meta` is tagged records. Tags are upper-case letters, so no tagged key can be
// `LAST_ID` (which starts with `l`), and each tag's prefix scans see only their own kind.
// Keys in the other keyspaces start with arbitrary uuid bytes, which is why these records are
// not kept there: a prefix scan of one kind could run into another.

/// Tag of channel log entries.
const LOG: u8 = b'L';
/// Tag of stream dead letters.
const DEAD: u8 = b'D';
/// Tag of handler state.
const STATE: u8 = b'S';
/// Tag of the entry count of a capped list (log stream or dead-letter list).
const COUNT: u8 = b'N';

/// Longest consumer name, bytes; keeps state keys under the engine's 64 KiB key limit.
pub const MAX_CONSUMER: usize = 1024;
/// Longest handler state key, bytes.
pub const MAX_STATE_KEY: usize = 32 * 1024;

/// `'L' channel[16]`: the channel's log stream, one key per entry below it.
pub fn log_prefix(channel: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(LOG);
    k.extend_from_slice(channel.as_bytes());
    k
}

/// `'L' channel[16] id[16]`: one log entry.
pub fn log_entry(channel: Uuid, id: Uuid) -> Vec<u8> {
    let mut k = log_prefix(channel);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `'D' channel[16]`: the dead letters of all streams of a channel.
pub fn dead_channel_prefix(channel: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(DEAD);
    k.extend_from_slice(channel.as_bytes());
    k
}

/// `'D' stream[32]`: the stream's dead-letter list, one key per letter below it.
pub fn dead_prefix(stream: &StreamId) -> Vec<u8> {
    let mut k = Vec::with_capacity(49);
    k.push(DEAD);
    k.extend_from_slice(&stream.key());
    k
}

/// `'D' stream[32] id[16]`: one stream dead letter.
pub fn stream_dead_letter(stream: &StreamId, id: Uuid) -> Vec<u8> {
    let mut k = dead_prefix(stream);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `'N' list`: how many entries the capped list under prefix `list` holds (`u64` BE), written
/// in the same batch as every change of the list so that trimming never has to count.
pub fn list_count(list: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + list.len());
    k.push(COUNT);
    k.extend_from_slice(list);
    k
}

/// Refuses consumer names that would not fit a storage key (the engine panics on those).
pub fn check_consumer(consumer: &str) -> Result<()> {
    if consumer.len() > MAX_CONSUMER {
        return Err(LogError::Invalid(format!(
            "consumer name longer than {MAX_CONSUMER} bytes"
        )));
    }
    Ok(())
}

/// `'S' stream[32] consumer_len[u16 BE] consumer`: all state of one consumer. The length
/// keeps consumer `a` from owning the keys of consumer `ab`.
pub fn state_prefix(stream: &StreamId, consumer: &str) -> Result<Vec<u8>> {
    check_consumer(consumer)?;
    let len = u16::try_from(consumer.len())
        .map_err(|_| LogError::Invalid("consumer name too long".into()))?;
    let mut k = Vec::with_capacity(35 + consumer.len());
    k.push(STATE);
    k.extend_from_slice(&stream.key());
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(consumer.as_bytes());
    Ok(k)
}

/// `'S' stream[32] consumer_len[u16 BE] consumer key`: one state value.
pub fn state(stream: &StreamId, consumer: &str, key: &str) -> Result<Vec<u8>> {
    if key.len() > MAX_STATE_KEY {
        return Err(LogError::Invalid(format!(
            "state key longer than {MAX_STATE_KEY} bytes"
        )));
    }
    let mut k = state_prefix(stream, consumer)?;
    k.extend_from_slice(key.as_bytes());
    Ok(k)
}

/// The id at the end of a log-entry or dead-letter key.
pub fn trailing_id(k: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(k.get(k.len().checked_sub(16)?..)?).ok()
}
