//! The durable message log of MessageHandler.
//!
//! Two transport traits carry every message that the gateway acknowledges and the fabric moves,
//! two more keep what the fabric needs beside them:
//!
//! - [`MessageLog`]: one append-only **stream** per channel and environment ([`StreamId`]),
//!   read in order by position (the message id) with long polling, plus named consumer
//!   **checkpoints** (the fabric's per-handler progress).
//! - [`Inboxes`]: one **work queue** per endpoint: competing receivers lock messages for a
//!   visibility timeout, complete or abandon them, and a message delivered too often moves to the
//!   inbox's dead-letter list.
//! - [`ChannelJournal`]: what a channel keeps besides its messages: one capped **log stream**
//!   per channel (handler logs and faults, long-polled like a stream) and one capped
//!   **dead-letter list** per stream.
//! - [`HandlerStates`]: each handler's durable key-value **state**, committed in one atomic
//!   write with its checkpoint, so state and progress agree after a crash.
//!
//! [`MessageLog`] and [`Inboxes`] are shaped so that NATS JetStream can implement them later
//! without changing callers: a stream maps to a JetStream stream (subject per channel+environment, ids kept in a header,
//! `read` to an ordered ephemeral consumer starting after a sequence), a checkpoint to a durable
//! consumer's ack floor, an inbox to a work-queue stream with an explicit-ack pull consumer
//! (`lock` = `AckWait`, `max_delivery_count` = `MaxDeliver`, `complete` = `Ack`, `abandon` = `Nak`,
//! device targeting = a filter subject per device), dead letters to an advisory-fed stream, and
//! the idempotency key to `Nats-Msg-Id` deduplication.
//!
//! [`EmbeddedLog`] is the implementation for one machine: a crash-safe store in the data
//! directory (`<data_dir>/log/`), see [`embedded`] for the engine choice and the group commit.

pub mod embedded;
mod envelope;
mod error;
mod ids;

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

pub use embedded::{EmbeddedLog, LogOptions};
pub use envelope::{DeadLetter, Delivery, Envelope, LogEntry, StreamDeadLetter, StreamId};
pub use error::{LogError, Result};

/// Append-only streams, one per channel and environment.
///
/// Positions are message ids: UUIDv7 assigned by the log, strictly increasing within a stream,
/// so a reader resumes with "after the last id I saw". A reader never sees a message before it
/// is durable, and never sees a later id before an earlier one of the same stream.
#[async_trait]
pub trait MessageLog: Send + Sync {
    /// Appends `messages` to `stream` in order and returns their ids, one per input message.
    ///
    /// Durable when it returns: concurrent appends share one commit and one fsync (group commit).
    /// The log assigns `id`, fills `channel`/`environment` from `stream`, and sets `enqueued_at`
    /// when the caller left it 0. A message whose [`Envelope::idempotency_key`] was already
    /// appended to this stream is not stored again; its original id is returned instead, so a
    /// client that retries after a crash creates no duplicate.
    async fn append(&self, stream: StreamId, messages: Vec<Envelope>) -> Result<Vec<Uuid>>;

    /// Reads up to `max` messages of `stream` in order, strictly after `after` (`None`: from the
    /// beginning). When there are none, waits up to `wait` for an append to arrive (long poll);
    /// an empty result means nothing arrived in time. Reading consumes nothing.
    async fn read(
        &self,
        stream: StreamId,
        after: Option<Uuid>,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Envelope>>;

    /// The position `consumer` last stored for `stream`, if any.
    async fn checkpoint(&self, stream: StreamId, consumer: &str) -> Result<Option<Uuid>>;

    /// Stores `position` as `consumer`'s checkpoint on `stream`; durable when it returns.
    async fn set_checkpoint(&self, stream: StreamId, consumer: &str, position: Uuid) -> Result<()>;
}

/// Durable work queues, one per endpoint (the inbox id is the endpoint id).
///
/// Delivery is at least once: a received message stays invisible while its lock lasts, comes
/// back when the lock expires or is abandoned, and after `max_delivery_count` deliveries without
/// completion moves to the inbox's dead-letter list.
#[async_trait]
pub trait Inboxes: Send + Sync {
    /// Puts `messages` into `inbox` and returns their ids (assigned by the log, like
    /// [`MessageLog::append`], including idempotency-key deduplication per inbox while the
    /// first copy is still in the inbox). Durable when it returns.
    async fn enqueue(&self, inbox: Uuid, messages: Vec<Envelope>) -> Result<Vec<Uuid>>;

    /// Receives up to `max` visible messages, oldest first, and locks each for `lock`.
    ///
    /// A message whose [`Envelope::device`] is `Some(d)` goes only to a receiver with
    /// `device == Some(d)`; a message without a device goes to any receiver. When nothing is
    /// visible, waits up to `wait` for an enqueue or an expiring lock (long poll).
    async fn receive(
        &self,
        inbox: Uuid,
        device: Option<&str>,
        max: usize,
        lock: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>>;

    /// Removes the locked message for good. [`LogError::LockLost`] when the token is unknown to
    /// this inbox or its lock expired. Durable when it returns.
    async fn complete(&self, inbox: Uuid, lock_token: &str) -> Result<()>;

    /// Releases the lock so the message is visible again at once (or dead-lettered when it has
    /// used up its deliveries). [`LogError::LockLost`] as for [`Inboxes::complete`].
    async fn abandon(&self, inbox: Uuid, lock_token: &str) -> Result<()>;

    /// Up to `max` dead-lettered messages of `inbox`, oldest first.
    async fn dead_letters(&self, inbox: Uuid, max: usize) -> Result<Vec<DeadLetter>>;

    /// Deletes the inbox with everything in it (its endpoint was deleted). Durable when it
    /// returns; receivers waiting on it get an empty result.
    async fn purge(&self, inbox: Uuid) -> Result<()>;
}

/// What a channel keeps besides its messages: its log stream and its dead letters.
///
/// Both are capped ([`LogOptions::max_log_entries_per_channel`],
/// [`LogOptions::max_dead_letters_per_stream`]): the oldest entries go first.
#[async_trait]
pub trait ChannelJournal: Send + Sync {
    /// Appends to the channel's log stream (one stream per channel, all environments),
    /// assigning ids (and `at` when 0). Durable when it returns (may share a commit with
    /// others).
    async fn append_logs(&self, channel: Uuid, entries: Vec<LogEntry>) -> Result<()>;

    /// Up to `max` entries strictly after `after` (`None`: from the oldest kept), oldest first;
    /// when there are none, waits up to `wait` for an append (long poll, like
    /// [`MessageLog::read`]). An empty result means nothing arrived in time.
    async fn read_logs(
        &self,
        channel: Uuid,
        after: Option<Uuid>,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<LogEntry>>;

    /// Appends a dead letter to the stream's dead-letter list (assigning its id, and
    /// `dead_lettered_at` when 0); returns its id. Durable when it returns.
    async fn append_dead_letter(&self, stream: StreamId, letter: StreamDeadLetter) -> Result<Uuid>;

    /// Up to `max` dead letters of the stream strictly after `after`, oldest first (no waiting).
    async fn read_dead_letters(
        &self,
        stream: StreamId,
        after: Option<Uuid>,
        max: usize,
    ) -> Result<Vec<StreamDeadLetter>>;

    /// Deletes the channel's log stream and the dead letters of all its streams (channel
    /// deleted). Optional to call. Durable when it returns.
    async fn purge_channel(&self, channel: Uuid) -> Result<()>;
}

/// Each handler's durable key-value state, committed atomically with its checkpoint so that
/// state and progress never disagree after a crash. `consumer` is the same name used with
/// [`MessageLog::checkpoint`] / [`MessageLog::set_checkpoint`].
///
/// Limits: `consumer` at most 1024 bytes, a state key at most 32 KiB
/// ([`LogError::Invalid`] beyond).
#[async_trait]
pub trait HandlerStates: Send + Sync {
    /// The committed value of `key` (synchronous: it is called from blocking threads while a
    /// WebAssembly handler runs; a point read).
    fn state(&self, stream: StreamId, consumer: &str, key: &str) -> Result<Option<Vec<u8>>>;

    /// In ONE atomic, durable write: sets the consumer's checkpoint to `position` when `Some`
    /// (the same value [`MessageLog::checkpoint`] then returns) and applies `writes`
    /// (`Some` = set, `None` = delete; the last write of a key wins). Durable when it returns;
    /// may share a group commit / fsync with concurrent writers.
    async fn commit(
        &self,
        stream: StreamId,
        consumer: &str,
        position: Option<Uuid>,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<()>;

    /// Removes the consumer's checkpoint and all its state (its handler was deleted). Durable
    /// when it returns.
    async fn forget_consumer(&self, stream: StreamId, consumer: &str) -> Result<()>;
}
