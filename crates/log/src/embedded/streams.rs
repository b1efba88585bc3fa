//! Stream heads and the read path.
//!
//! A stream is stored as one value per appended group (`keys::stream_batch`), each value a run
//! of length-prefixed records. Storing groups rather than single messages is what makes batch
//! ingest cheap: one engine insert per request instead of one per message (measured ~3-6x, see
//! the module docs of `embedded`). A read seeks to the group holding `after` and walks forward.

use tokio::sync::watch;
use uuid::Uuid;

use super::keys;
use crate::envelope::codec::Reader;
use crate::{Envelope, Result, StreamId};

/// The durable head of a stream: the last id a reader may see. Readers long-poll on it.
pub struct StreamState {
    head: watch::Sender<Option<Uuid>>,
}

impl StreamState {
    pub fn new(head: Option<Uuid>) -> Self {
        StreamState {
            head: watch::Sender::new(head),
        }
    }

    pub fn publish(&self, head: Uuid) {
        self.head.send_replace(Some(head));
    }

    pub fn subscribe(&self) -> watch::Receiver<Option<Uuid>> {
        self.head.subscribe()
    }

    /// Back to empty (the channel log was purged).
    pub fn reset(&self) {
        self.head.send_replace(None);
    }

    /// Whether a reader is waiting on it.
    pub fn is_watched(&self) -> bool {
        self.head.receiver_count() > 0
    }
}

/// The last id stored in `stream`, read from its last group.
pub fn load_head(ks: &fjall::Keyspace, stream: &StreamId) -> Result<Option<Uuid>> {
    let Some(last) = ks.prefix(stream.key()).next_back() else {
        return Ok(None);
    };
    let (_, value) = last.into_inner()?;
    let mut r = Reader::new(bytes::Bytes::copy_from_slice(&value));
    let mut head = None;
    while !r.is_empty() {
        let len = r.length()?;
        head = Some(r.peek_id()?);
        r.skip(len)?;
    }
    Ok(head)
}

/// Up to `max` messages of `stream` with `after < id <= head`, in order.
pub fn read_range(
    ks: &fjall::Keyspace,
    stream: &StreamId,
    after: Option<Uuid>,
    head: Uuid,
    max: usize,
) -> Result<Vec<Envelope>> {
    let end = keys::stream_batch(stream, Uuid::max());
    // The group holding `after` starts at or before it: the last key <= (stream, after).
    let start = match after {
        Some(a) => match ks
            .range(keys::stream_batch(stream, Uuid::nil())..=keys::stream_batch(stream, a))
            .next_back()
        {
            Some(kv) => kv.key()?.to_vec(),
            None => keys::stream_batch(stream, Uuid::nil()),
        },
        None => keys::stream_batch(stream, Uuid::nil()),
    };
    let mut out = Vec::with_capacity(max.min(1024));
    for kv in ks.range(start..=end) {
        let (_, value) = kv.into_inner()?;
        // One copy per group; bodies are then zero-copy slices of it.
        let mut r = Reader::new(bytes::Bytes::copy_from_slice(&value));
        while !r.is_empty() {
            let len = r.length()?;
            let id = r.peek_id()?;
            if id > head {
                return Ok(out);
            }
            if after.is_some_and(|a| id <= a) {
                r.skip(len)?;
                continue;
            }
            out.push(r.envelope()?);
            if out.len() >= max {
                return Ok(out);
            }
        }
    }
    Ok(out)
}
