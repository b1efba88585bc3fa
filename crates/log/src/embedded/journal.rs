//! Channel log streams and stream dead letters: capped lists in `meta`.
//!
//! Both are append-only lists keyed `prefix id` (see `keys`), with a cap on how many entries
//! they keep. Trimming must not cost a scan per append, so each list's entry count is stored
//! next to it (`keys::list_count`, written in the same batch as every change of the list), and
//! the writer remembers where the oldest kept entry is: dropping `n` entries is then a seek and
//! `n` steps, never a walk over the tombstones of entries dropped before.
//!
//! Appends of one group are collected here and written in one go just before the batch
//! commits ([`Lists::flush`]): the trim scan reads the engine, which cannot see the uncommitted
//! batch, so the entries of the group are handled in memory (a group that overfills a list
//! never writes its oldest entries at all), and a list's count key is written once per batch
//! (the same key twice in one batch has no defined winner, see `writer`).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::time::Duration;

use async_trait::async_trait;
use fjall::{Keyspace, OwnedWriteBatch};
use tokio::time::Instant;
use uuid::Uuid;

use super::writer::Op;
use super::{keys, EmbeddedLog};
use crate::envelope::codec;
use crate::{ChannelJournal, LogEntry, LogError, Result, StreamDeadLetter, StreamId};

/// What the writer knows of a list it touched.
struct Known {
    /// Entries on disk (after the last flush).
    count: u64,
    /// A key at or below the oldest kept entry, when known; trimming starts here.
    oldest: Option<Vec<u8>>,
}

/// Entries appended to one list during the current group.
struct Appended {
    max: usize,
    entries: Vec<(Uuid, Vec<u8>)>,
}

/// The writer's bookkeeping of the capped lists.
#[derive(Default)]
pub struct Lists {
    known: HashMap<Vec<u8>, Known>,
    /// Keyed by list prefix; written by the next [`Lists::flush`].
    appended: BTreeMap<Vec<u8>, Appended>,
}

impl Lists {
    /// Queues `value` as entry `id` of the list under `prefix`, which keeps at most `max`.
    pub fn push(&mut self, prefix: Vec<u8>, max: usize, id: Uuid, value: Vec<u8>) {
        let appended = self.appended.entry(prefix).or_insert_with(|| Appended {
            max,
            entries: Vec::new(),
        });
        appended.entries.push((id, value));
    }

    /// Writes the queued entries into `batch` and trims their lists to their caps. Call right
    /// before `batch` commits, so the counts and trim positions it records describe the
    /// engine once that batch is in.
    pub fn flush(&mut self, meta: &Keyspace, batch: &mut OwnedWriteBatch) -> Result<()> {
        for (prefix, Appended { max, entries }) in std::mem::take(&mut self.appended) {
            let known = match self.known.entry(prefix.clone()) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(Known {
                    count: load_count(meta, &prefix)?,
                    oldest: None,
                }),
            };
            // Entries that would be trimmed at once are not written at all.
            let kept = &entries[entries.len().saturating_sub(max)..];
            let max = max as u64;
            let excess = (known.count + kept.len() as u64)
                .saturating_sub(max)
                .min(known.count);
            if excess > 0 {
                let start = known.oldest.take().unwrap_or_else(|| prefix.clone());
                let end = entry_key(&prefix, Uuid::max());
                let mut removed = 0;
                for kv in meta.range(start..=end) {
                    let key = kv.key()?;
                    if removed == excess {
                        known.oldest = Some(key.to_vec());
                        break;
                    }
                    batch.remove(meta, key);
                    removed += 1;
                }
                // Fewer found than counted would mean a damaged count; nothing older is left
                // either way.
                known.count = if removed == excess {
                    known.count - removed
                } else {
                    0
                };
                if known.oldest.is_none() {
                    known.oldest = kept.first().map(|(id, _)| entry_key(&prefix, *id));
                }
            }
            known.count += kept.len() as u64;
            let skip = entries.len() - kept.len();
            for (id, value) in entries.into_iter().skip(skip) {
                batch.insert(meta, entry_key(&prefix, id), value);
            }
            batch.insert(
                meta,
                keys::list_count(&prefix),
                known.count.to_be_bytes().to_vec(),
            );
        }
        Ok(())
    }

    /// Forgets every list whose prefix starts with `prefix` (their keys were just deleted).
    pub fn forget_under(&mut self, prefix: &[u8]) {
        self.known.retain(|k, _| !k.starts_with(prefix));
    }
}

fn entry_key(prefix: &[u8], id: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 16);
    k.extend_from_slice(prefix);
    k.extend_from_slice(id.as_bytes());
    k
}

fn load_count(meta: &Keyspace, prefix: &[u8]) -> Result<u64> {
    match meta.get(keys::list_count(prefix))? {
        Some(v) => {
            let b: [u8; 8] = v[..]
                .try_into()
                .map_err(|_| LogError::Corrupt("list count"))?;
            Ok(u64::from_be_bytes(b))
        }
        None => Ok(0),
    }
}

/// Removes the channel's log stream and the dead letters of all its streams.
pub fn purge_channel(meta: &Keyspace, batch: &mut OwnedWriteBatch, channel: Uuid) -> Result<()> {
    for list in [
        keys::log_prefix(channel),
        keys::dead_channel_prefix(channel),
    ] {
        for kv in meta.prefix(&list) {
            batch.remove(meta, kv.key()?);
        }
        for kv in meta.prefix(keys::list_count(&list)) {
            batch.remove(meta, kv.key()?);
        }
    }
    Ok(())
}

/// The lower bound of a read strictly after `after` in the list under `prefix`.
fn after_bound(prefix: Vec<u8>, after: Option<Uuid>) -> Bound<Vec<u8>> {
    match after {
        Some(a) => Bound::Excluded(entry_key(&prefix, a)),
        None => Bound::Included(prefix),
    }
}

/// Up to `max` log entries of `channel` with `after < id <= head`, in order.
fn read_log_range(
    meta: &Keyspace,
    channel: Uuid,
    after: Option<Uuid>,
    head: Uuid,
    max: usize,
) -> Result<Vec<LogEntry>> {
    let start = after_bound(keys::log_prefix(channel), after);
    let end = Bound::Included(keys::log_entry(channel, head));
    let mut out = Vec::with_capacity(max.min(1024));
    for kv in meta.range((start, end)).take(max) {
        let (k, v) = kv.into_inner()?;
        let id = keys::trailing_id(&k).ok_or(LogError::Corrupt("log entry key"))?;
        out.push(codec::decode_log_entry(id, &v)?);
    }
    Ok(out)
}

#[async_trait]
impl ChannelJournal for EmbeddedLog {
    async fn append_logs(&self, channel: Uuid, entries: Vec<LogEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.call(|reply| Op::AppendLogs {
            channel,
            entries,
            reply,
        })
        .await
    }

    async fn read_logs(
        &self,
        channel: Uuid,
        after: Option<Uuid>,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<LogEntry>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        let state = self.shared.channel_log(channel)?;
        let mut head_rx = state.subscribe();
        loop {
            let head = *head_rx.borrow_and_update();
            if let Some(head) = head.filter(|h| after.is_none_or(|a| *h > a)) {
                let out = read_log_range(&self.shared.ks.meta, channel, after, head, max)?;
                // Empty only when a purge is on its way: wait for what comes next.
                if !out.is_empty() {
                    return Ok(out);
                }
            }
            match tokio::time::timeout_at(deadline, head_rx.changed()).await {
                Ok(Ok(())) => continue,
                // Timed out, or the log was dropped: nothing new.
                Ok(Err(_)) | Err(_) => return Ok(Vec::new()),
            }
        }
    }

    async fn append_dead_letter(&self, stream: StreamId, letter: StreamDeadLetter) -> Result<Uuid> {
        self.call(|reply| Op::AppendDeadLetter {
            stream,
            letter: Box::new(letter),
            reply,
        })
        .await
    }

    async fn read_dead_letters(
        &self,
        stream: StreamId,
        after: Option<Uuid>,
        max: usize,
    ) -> Result<Vec<StreamDeadLetter>> {
        let meta = &self.shared.ks.meta;
        let start = after_bound(keys::dead_prefix(&stream), after);
        let end = Bound::Included(keys::stream_dead_letter(&stream, Uuid::max()));
        let mut out = Vec::with_capacity(max.min(1024));
        for kv in meta.range((start, end)).take(max) {
            let (k, v) = kv.into_inner()?;
            let id = keys::trailing_id(&k).ok_or(LogError::Corrupt("dead letter key"))?;
            out.push(codec::decode_stream_dead_letter(id, &v)?);
        }
        Ok(out)
    }

    async fn purge_channel(&self, channel: Uuid) -> Result<()> {
        self.call(|reply| Op::PurgeChannel { channel, reply }).await
    }
}
