//! The single writer: group commit.
//!
//! Every mutation goes through one OS thread. It takes whatever requests queued up while it was
//! busy (up to [`MAX_GROUP`]), writes them as one atomic engine batch, fsyncs once, and only
//! then publishes the effects (stream heads, inbox visibility) and answers the callers. Under
//! load the queue fills during each fsync, so the cost of an fsync is shared by all of them;
//! idle, a lone request pays one fsync and waits for nothing else.
//!
//! Channel log entries and stream dead letters are not put into the batch as they come: they
//! are collected per list and written, with their list's trimming, just before each (partial)
//! batch commits (`journal::Lists::flush`). Handler state goes into the same batch as its
//! checkpoint, so a group never splits the two.
//!
//! One writer also makes ids trivially monotonic (one generator, commit order = id order) and
//! keeps readers honest: they never see past a stream's published head, i.e. never a message
//! that is not yet durable, and never a later id before an earlier one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fjall::{OwnedWriteBatch, PersistMode};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::journal::{self, Lists};
use super::streams::StreamState;
use super::{keys, Shared};
use crate::envelope::codec;
use crate::ids::{now_ms, IdGenerator};
use crate::{Envelope, LogEntry, LogError, Result, StreamDeadLetter, StreamId};

/// Most requests committed together; bounds the latency one group adds to its first request.
const MAX_GROUP: usize = 1024;
/// Longest accepted idempotency key, bytes.
const MAX_IDEMPOTENCY_KEY: usize = 1024;

pub type Reply<T> = oneshot::Sender<Result<T>>;

/// A request to the writer.
pub enum Op {
    Append {
        stream: StreamId,
        messages: Vec<Envelope>,
        reply: Reply<Vec<Uuid>>,
    },
    SetCheckpoint {
        stream: StreamId,
        consumer: String,
        position: Uuid,
        reply: Reply<()>,
    },
    Enqueue {
        inbox: Uuid,
        messages: Vec<Envelope>,
        reply: Reply<Vec<Uuid>>,
    },
    /// Persist new delivery counts. Not waited for: losing one in a crash only gives a message
    /// one more delivery, which at-least-once allows.
    Counts {
        inbox: Uuid,
        counts: Vec<(Uuid, u32, Option<String>)>,
    },
    Complete {
        inbox: Uuid,
        id: Uuid,
        reply: Option<Reply<()>>,
    },
    DeadLetter {
        inbox: Uuid,
        id: Uuid,
        delivery_count: u32,
        reason: String,
        reply: Option<Reply<()>>,
    },
    Purge {
        inbox: Uuid,
        reply: Reply<()>,
    },
    AppendLogs {
        channel: Uuid,
        entries: Vec<LogEntry>,
        reply: Reply<()>,
    },
    AppendDeadLetter {
        stream: StreamId,
        letter: Box<StreamDeadLetter>,
        reply: Reply<Uuid>,
    },
    PurgeChannel {
        channel: Uuid,
        reply: Reply<()>,
    },
    /// A checkpoint and state writes (`meta` keys, each at most once) in one atomic write.
    CommitState {
        stream: StreamId,
        consumer: String,
        position: Option<Uuid>,
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        reply: Reply<()>,
    },
    ForgetConsumer {
        stream: StreamId,
        consumer: String,
        reply: Reply<()>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What becomes visible once a group is durable, applied in request order.
enum Effect {
    StreamHead(Arc<StreamState>, Uuid),
    InboxInsert(Uuid, Vec<(Uuid, Option<String>)>),
    InboxPurged(Uuid),
    ChannelPurged(Uuid),
}

/// An answer held back until the group is durable.
enum Pending {
    Ids(Reply<Vec<Uuid>>, Vec<Uuid>),
    Id(Reply<Uuid>, Uuid),
    Unit(Reply<()>),
}

impl Pending {
    fn fail(self, err: LogError) {
        match self {
            Pending::Ids(reply, _) => {
                let _ = reply.send(Err(err));
            }
            Pending::Id(reply, _) => {
                let _ = reply.send(Err(err));
            }
            Pending::Unit(reply) => {
                let _ = reply.send(Err(err));
            }
        }
    }

    fn succeed(self) {
        match self {
            Pending::Ids(reply, ids) => {
                let _ = reply.send(Ok(ids));
            }
            Pending::Id(reply, id) => {
                let _ = reply.send(Ok(id));
            }
            Pending::Unit(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }
}

pub fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Op>, floor: Uuid) {
    let mut writer = Writer {
        ids: IdGenerator::new(floor),
        shared,
        lists: Lists::default(),
    };
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut shutdown = None;
    while let Some(op) = rx.blocking_recv() {
        group.push(op);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        let (ok, stop) = writer.commit_group(&mut group);
        if let Some(stop) = stop {
            shutdown = Some(stop);
            break;
        }
        if !ok {
            // After a failed commit or fsync the engine's state is unknown (and fjall poisons
            // itself); refusing further writes is the only honest answer.
            break;
        }
    }
    // Fail whatever is still queued rather than leaving callers waiting forever.
    rx.close();
    while let Ok(op) = rx.try_recv() {
        fail(op, || LogError::Closed);
    }
    drop(writer);
    if let Some(reply) = shutdown {
        let _ = reply.send(());
    }
}

fn fail(op: Op, err: impl Fn() -> LogError) {
    match op {
        Op::Append { reply, .. } | Op::Enqueue { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Op::SetCheckpoint { reply, .. }
        | Op::Purge { reply, .. }
        | Op::AppendLogs { reply, .. }
        | Op::PurgeChannel { reply, .. }
        | Op::CommitState { reply, .. }
        | Op::ForgetConsumer { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Op::AppendDeadLetter { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Op::Complete { reply, .. } | Op::DeadLetter { reply, .. } => {
            if let Some(reply) = reply {
                let _ = reply.send(Err(err()));
            }
        }
        Op::Counts { .. } => {}
        Op::Shutdown { reply } => {
            let _ = reply.send(());
        }
    }
}

struct Writer {
    ids: IdGenerator,
    shared: Arc<Shared>,
    lists: Lists,
}

impl Writer {
    /// Commits `batch` as it stands (no fsync: the group's final persist covers it) and leaves
    /// a fresh one, for ops that must scan the engine with the group's earlier writes in it,
    /// or keep a key from appearing twice in one batch. Queued list entries go in with it.
    fn commit_part(&mut self, batch: &mut OwnedWriteBatch) -> Result<()> {
        self.lists.flush(&self.shared.ks.meta, batch)?;
        let earlier = std::mem::replace(batch, self.shared.db.batch());
        earlier.commit().map_err(LogError::from)
    }

    /// Commits `group` (drained); returns whether the engine is still healthy, and the
    /// shutdown reply when the group asked to stop.
    fn commit_group(&mut self, group: &mut Vec<Op>) -> (bool, Option<oneshot::Sender<()>>) {
        let shared = Arc::clone(&self.shared);
        let mut batch = shared.db.batch();
        let mut effects = Vec::new();
        let mut pending = Vec::new();
        // Idempotency keys claimed earlier in this group, not yet readable from the engine.
        let mut claimed: HashMap<Vec<u8>, Uuid> = HashMap::new();
        let first_id = self.ids.last();
        let mut shutdown = None;
        let mut result = Ok(());
        // Keys written so far in `batch`. All items of one engine batch share one sequence
        // number, so the same key twice in a batch (a checkpoint moved twice, a delivery count
        // then a completion) has no defined winner: commit the batch so far (no fsync) first.
        let mut touched: HashSet<Vec<u8>> = HashSet::new();
        for op in group.drain(..) {
            if result.is_err() {
                fail(op, || LogError::Closed);
                continue;
            }
            let keys = op_keys(&op);
            if keys.iter().any(|k| touched.contains(k)) {
                touched.clear();
                if let Err(e) = self.commit_part(&mut batch) {
                    result = Err(e);
                    fail(op, || LogError::Closed);
                    continue;
                }
            }
            touched.extend(keys);
            match op {
                Op::Append {
                    stream,
                    messages,
                    reply,
                } => match self.append(&mut batch, &mut claimed, stream, messages) {
                    Ok((ids, head)) => {
                        if let Some(head) = head {
                            effects.push(Effect::StreamHead(head.0, head.1));
                        }
                        pending.push(Pending::Ids(reply, ids));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Op::SetCheckpoint {
                    stream,
                    consumer,
                    position,
                    reply,
                } => {
                    batch.insert(
                        &shared.ks.checkpoints,
                        keys::checkpoint(&stream, &consumer),
                        position.as_bytes().to_vec(),
                    );
                    pending.push(Pending::Unit(reply));
                }
                Op::Enqueue {
                    inbox,
                    messages,
                    reply,
                } => match self.enqueue(&mut batch, &mut claimed, inbox, messages) {
                    Ok((ids, added)) => {
                        effects.push(Effect::InboxInsert(inbox, added));
                        pending.push(Pending::Ids(reply, ids));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Op::Counts { inbox, counts } => {
                    for (id, count, device) in counts {
                        batch.insert(
                            &shared.ks.inbox_meta,
                            keys::inbox_message(inbox, id).to_vec(),
                            encode_meta(count, device.as_deref()),
                        );
                    }
                }
                Op::Complete { inbox, id, reply } => {
                    let key = keys::inbox_message(inbox, id);
                    batch.remove(&shared.ks.inbox, key.to_vec());
                    batch.remove(&shared.ks.inbox_meta, key.to_vec());
                    pending.extend(reply.map(Pending::Unit));
                }
                Op::DeadLetter {
                    inbox,
                    id,
                    delivery_count,
                    reason,
                    reply,
                } => {
                    let key = keys::inbox_message(inbox, id);
                    match shared.ks.inbox.get(key) {
                        Ok(Some(record)) => {
                            let mut value = Vec::with_capacity(record.len() + reason.len() + 16);
                            value.extend_from_slice(&now_ms().to_le_bytes());
                            codec::put_varint(&mut value, u64::from(delivery_count));
                            codec::put_varint(&mut value, reason.len() as u64);
                            value.extend_from_slice(reason.as_bytes());
                            value.extend_from_slice(&record);
                            batch.insert(&shared.ks.dead, key.to_vec(), value);
                            batch.remove(&shared.ks.inbox, key.to_vec());
                            batch.remove(&shared.ks.inbox_meta, key.to_vec());
                        }
                        // Purged meanwhile: nothing left to move.
                        Ok(None) => {}
                        Err(e) => result = Err(LogError::from(e)),
                    }
                    pending.extend(reply.map(Pending::Unit));
                }
                Op::Purge { inbox, reply } => {
                    // The scan below must see this group's earlier writes (an enqueue just
                    // before the purge), so commit them first; the fsync below covers both.
                    touched.clear();
                    result = self
                        .commit_part(&mut batch)
                        .and_then(|()| purge(&shared, &mut batch, inbox));
                    effects.push(Effect::InboxPurged(inbox));
                    pending.push(Pending::Unit(reply));
                }
                Op::AppendLogs {
                    channel,
                    entries,
                    reply,
                } => match self.append_logs(channel, entries) {
                    Ok(head) => {
                        effects.extend(head.map(|(state, id)| Effect::StreamHead(state, id)));
                        pending.push(Pending::Unit(reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Op::AppendDeadLetter {
                    stream,
                    mut letter,
                    reply,
                } => {
                    letter.id = self.ids.next();
                    if letter.dead_lettered_at == 0 {
                        letter.dead_lettered_at = now_ms();
                    }
                    let mut value = Vec::with_capacity(
                        codec::encoded_len_hint(&letter.message) + letter.reason.len() + 40,
                    );
                    codec::encode_stream_dead_letter(&letter, &mut value);
                    self.lists.push(
                        keys::dead_prefix(&stream),
                        shared.options.max_dead_letters_per_stream,
                        letter.id,
                        value,
                    );
                    pending.push(Pending::Id(reply, letter.id));
                }
                Op::PurgeChannel { channel, reply } => {
                    // Scans: earlier writes of the group must be in the engine, and the
                    // deletions stand alone so that later writes of the group (a count key)
                    // do not meet them in one batch.
                    touched.clear();
                    result = self
                        .commit_part(&mut batch)
                        .and_then(|()| journal::purge_channel(&shared.ks.meta, &mut batch, channel))
                        .and_then(|()| self.commit_part(&mut batch));
                    self.lists.forget_under(&keys::log_prefix(channel));
                    self.lists.forget_under(&keys::dead_channel_prefix(channel));
                    effects.push(Effect::ChannelPurged(channel));
                    pending.push(Pending::Unit(reply));
                }
                Op::CommitState {
                    stream,
                    consumer,
                    position,
                    writes,
                    reply,
                } => {
                    if let Some(position) = position {
                        batch.insert(
                            &shared.ks.checkpoints,
                            keys::checkpoint(&stream, &consumer),
                            position.as_bytes().to_vec(),
                        );
                    }
                    for (key, value) in writes {
                        match value {
                            Some(v) => batch.insert(&shared.ks.meta, key, v),
                            None => batch.remove(&shared.ks.meta, key),
                        }
                    }
                    pending.push(Pending::Unit(reply));
                }
                Op::ForgetConsumer {
                    stream,
                    consumer,
                    reply,
                } => {
                    // Like a purge: scan with the group's earlier writes in, then stand alone.
                    touched.clear();
                    result = self
                        .commit_part(&mut batch)
                        .and_then(|()| forget_consumer(&shared, &mut batch, &stream, &consumer))
                        .and_then(|()| self.commit_part(&mut batch));
                    pending.push(Pending::Unit(reply));
                }
                Op::Shutdown { reply } => shutdown = Some(reply),
            }
        }
        let result = result.and_then(|()| self.lists.flush(&shared.ks.meta, &mut batch));
        if self.ids.last() != first_id {
            batch.insert(
                &shared.ks.meta,
                keys::LAST_ID,
                self.ids.last().as_bytes().to_vec(),
            );
        }
        let result = result
            .and_then(|()| batch.commit().map_err(LogError::from))
            .and_then(|()| {
                shared
                    .db
                    .persist(PersistMode::SyncAll)
                    .map_err(LogError::from)
            });
        if let Err(e) = result {
            tracing::error!(error = %e, "message log commit failed; the log stops accepting writes");
            let msg = e.to_string();
            for p in pending {
                p.fail(LogError::Storage(msg.clone().into()));
            }
            return (false, shutdown);
        }
        for effect in effects {
            match effect {
                Effect::StreamHead(state, head) => state.publish(head),
                Effect::InboxInsert(inbox, added) => shared.inbox_insert(inbox, added),
                Effect::InboxPurged(inbox) => shared.inbox_purged(inbox),
                Effect::ChannelPurged(channel) => shared.channel_log_purged(channel),
            }
        }
        for p in pending {
            p.succeed();
        }
        (true, shutdown)
    }

    /// Looks up an idempotency key: the id it was first stored under, if any.
    fn deduplicate(&self, claimed: &HashMap<Vec<u8>, Uuid>, key: &[u8]) -> Result<Option<Uuid>> {
        if let Some(id) = claimed.get(key) {
            return Ok(Some(*id));
        }
        match self.shared.ks.dedup.get(key)? {
            Some(v) => Ok(Some(
                Uuid::from_slice(&v).map_err(|_| LogError::Corrupt("dedup entry"))?,
            )),
            None => Ok(None),
        }
    }

    /// Stamps a message with a new id (and time), or returns the id of its first copy.
    fn admit(
        &mut self,
        batch: &mut OwnedWriteBatch,
        claimed: &mut HashMap<Vec<u8>, Uuid>,
        dedup_key: Option<Vec<u8>>,
        message: &mut Envelope,
        now: i64,
    ) -> Result<Option<Uuid>> {
        if let Some(key) = &dedup_key {
            if let Some(first) = self.deduplicate(claimed, key)? {
                return Ok(Some(first));
            }
        }
        message.id = self.ids.next();
        if message.enqueued_at == 0 {
            message.enqueued_at = now;
        }
        if let Some(key) = dedup_key {
            batch.insert(
                &self.shared.ks.dedup,
                key.clone(),
                message.id.as_bytes().to_vec(),
            );
            claimed.insert(key, message.id);
        }
        Ok(None)
    }

    #[allow(clippy::type_complexity)]
    fn append(
        &mut self,
        batch: &mut OwnedWriteBatch,
        claimed: &mut HashMap<Vec<u8>, Uuid>,
        stream: StreamId,
        mut messages: Vec<Envelope>,
    ) -> Result<(Vec<Uuid>, Option<(Arc<StreamState>, Uuid)>)> {
        check_keys(&messages)?;
        let state = self.shared.stream(stream)?;
        let now = now_ms();
        let mut ids = Vec::with_capacity(messages.len());
        let hint: usize = messages.iter().map(codec::encoded_len_hint).sum();
        let mut value = Vec::with_capacity(hint + 3 * messages.len());
        let mut record = Vec::new();
        let mut first = None;
        let mut last = None;
        for message in &mut messages {
            let dedup_key = message
                .idempotency_key
                .as_deref()
                .map(|k| keys::dedup_stream(&stream, k));
            if let Some(existing) = self.admit(batch, claimed, dedup_key, message, now)? {
                ids.push(existing);
                continue;
            }
            message.channel = Some(stream.channel);
            message.environment = Some(stream.environment);
            record.clear();
            codec::encode(message, &mut record);
            codec::put_varint(&mut value, record.len() as u64);
            value.extend_from_slice(&record);
            first.get_or_insert(message.id);
            last = Some(message.id);
            ids.push(message.id);
        }
        let (Some(first), Some(last)) = (first, last) else {
            return Ok((ids, None));
        };
        batch.insert(
            &self.shared.ks.streams,
            keys::stream_batch(&stream, first),
            value,
        );
        Ok((ids, Some((state, last))))
    }

    /// Stamps log entries and queues them for the next flush; returns the head to publish
    /// once durable (none when the list keeps nothing).
    fn append_logs(
        &mut self,
        channel: Uuid,
        entries: Vec<LogEntry>,
    ) -> Result<Option<(Arc<StreamState>, Uuid)>> {
        // Before anything is written, so a head loaded from disk never includes this append.
        let state = self.shared.channel_log(channel)?;
        let max = self.shared.options.max_log_entries_per_channel;
        let now = now_ms();
        let prefix = keys::log_prefix(channel);
        let mut last = None;
        for mut entry in entries {
            entry.id = self.ids.next();
            if entry.at == 0 {
                entry.at = now;
            }
            let mut value = Vec::with_capacity(entry.text.len() + entry.level.len() + 48);
            codec::encode_log_entry(&entry, &mut value);
            self.lists.push(prefix.clone(), max, entry.id, value);
            last = Some(entry.id);
        }
        Ok(last.filter(|_| max > 0).map(|id| (state, id)))
    }

    #[allow(clippy::type_complexity)]
    fn enqueue(
        &mut self,
        batch: &mut OwnedWriteBatch,
        claimed: &mut HashMap<Vec<u8>, Uuid>,
        inbox: Uuid,
        mut messages: Vec<Envelope>,
    ) -> Result<(Vec<Uuid>, Vec<(Uuid, Option<String>)>)> {
        check_keys(&messages)?;
        let now = now_ms();
        let mut ids = Vec::with_capacity(messages.len());
        let mut added = Vec::with_capacity(messages.len());
        for mut message in messages.drain(..) {
            let dedup_key = message
                .idempotency_key
                .as_deref()
                .map(|k| keys::dedup_inbox(inbox, k));
            if let Some(existing) = self.admit(batch, claimed, dedup_key, &mut message, now)? {
                ids.push(existing);
                continue;
            }
            let key = keys::inbox_message(inbox, message.id);
            let mut record = Vec::with_capacity(codec::encoded_len_hint(&message));
            codec::encode(&message, &mut record);
            batch.insert(&self.shared.ks.inbox, key.to_vec(), record);
            batch.insert(
                &self.shared.ks.inbox_meta,
                key.to_vec(),
                encode_meta(0, message.device.as_deref()),
            );
            ids.push(message.id);
            added.push((message.id, message.device));
        }
        Ok((ids, added))
    }
}

/// The keys an op rewrites or deletes that another op of the same group may touch too.
fn op_keys(op: &Op) -> Vec<Vec<u8>> {
    let tagged = |tag: u8, key: &[u8]| {
        let mut k = Vec::with_capacity(key.len() + 1);
        k.push(tag);
        k.extend_from_slice(key);
        k
    };
    match op {
        Op::SetCheckpoint {
            stream, consumer, ..
        } => vec![tagged(b'c', &keys::checkpoint(stream, consumer))],
        Op::CommitState {
            stream,
            consumer,
            position,
            writes,
            ..
        } => position
            .map(|_| tagged(b'c', &keys::checkpoint(stream, consumer)))
            .into_iter()
            .chain(writes.iter().map(|(k, _)| tagged(b's', k)))
            .collect(),
        Op::Counts { inbox, counts } => counts
            .iter()
            .map(|(id, _, _)| tagged(b'm', &keys::inbox_message(*inbox, *id)))
            .collect(),
        Op::Complete { inbox, id, .. } | Op::DeadLetter { inbox, id, .. } => {
            vec![tagged(b'm', &keys::inbox_message(*inbox, *id))]
        }
        // New ids never collide (list entries and counts are written once per batch by the
        // flush); purges and forgets commit what came before them anyway.
        Op::Append { .. }
        | Op::Enqueue { .. }
        | Op::Purge { .. }
        | Op::AppendLogs { .. }
        | Op::AppendDeadLetter { .. }
        | Op::PurgeChannel { .. }
        | Op::ForgetConsumer { .. }
        | Op::Shutdown { .. } => Vec::new(),
    }
}

fn check_keys(messages: &[Envelope]) -> Result<()> {
    for m in messages {
        if m.idempotency_key
            .as_ref()
            .is_some_and(|k| k.len() > MAX_IDEMPOTENCY_KEY)
        {
            return Err(LogError::Invalid(format!(
                "idempotency key longer than {MAX_IDEMPOTENCY_KEY} bytes"
            )));
        }
    }
    Ok(())
}

/// Removes every key of `inbox` (messages, metadata, dead letters, idempotency keys).
fn purge(shared: &Shared, batch: &mut OwnedWriteBatch, inbox: Uuid) -> Result<()> {
    for ks in [&shared.ks.inbox, &shared.ks.inbox_meta, &shared.ks.dead] {
        for kv in ks.prefix(inbox.as_bytes()) {
            batch.remove(ks, kv.key()?);
        }
    }
    for kv in shared.ks.dedup.prefix(keys::dedup_inbox_prefix(inbox)) {
        batch.remove(&shared.ks.dedup, kv.key()?);
    }
    Ok(())
}

/// Removes the consumer's checkpoint and every state key of it.
fn forget_consumer(
    shared: &Shared,
    batch: &mut OwnedWriteBatch,
    stream: &StreamId,
    consumer: &str,
) -> Result<()> {
    batch.remove(&shared.ks.checkpoints, keys::checkpoint(stream, consumer));
    for kv in shared.ks.meta.prefix(keys::state_prefix(stream, consumer)?) {
        batch.remove(&shared.ks.meta, kv.key()?);
    }
    Ok(())
}

/// Inbox metadata value: `delivery_count[varint]`, then the device id when targeted.
pub fn encode_meta(count: u32, device: Option<&str>) -> Vec<u8> {
    let mut v = Vec::with_capacity(6 + device.map_or(0, str::len));
    codec::put_varint(&mut v, u64::from(count));
    if let Some(d) = device {
        v.extend_from_slice(d.as_bytes());
    }
    v
}

/// Inverse of [`encode_meta`].
pub fn decode_meta(v: &[u8]) -> Result<(u32, Option<String>)> {
    let mut r = codec::Reader::new(bytes::Bytes::copy_from_slice(v));
    let count = r.u32()?;
    let rest = r.rest();
    let device = if rest.is_empty() {
        None
    } else {
        Some(String::from_utf8(rest.to_vec()).map_err(|_| LogError::Corrupt("device id"))?)
    };
    Ok((count, device))
}
