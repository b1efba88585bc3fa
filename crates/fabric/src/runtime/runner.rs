//! One handler of one deployed channel: reads the channel's stream from its checkpoint, runs the
//! handler on batches, makes the results durable, then moves its checkpoint.
//!
//! At-least-once: outputs, inbox deliveries and dead letters are written before the checkpoint
//! (together with the handler's state) moves past the batch, so a crash in between repeats the
//! batch rather than losing it. Order per partition key holds because a handler reads its stream
//! in order and finishes a batch before it reads the next.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use mh_log::{Envelope, LogEntry, StreamDeadLetter, StreamId};
use mh_store::OutputRoute;
use tokio::sync::watch;
use uuid::Uuid;

use super::effects::{Effects, Fault};
use super::status::StatusCell;
use super::{now_ms, Processor, Shared};
use crate::error::Result;

pub(crate) struct Runner {
    pub shared: Arc<Shared>,
    pub stream: StreamId,
    pub handler: Uuid,
    pub consumer: String,
    /// `None`: every message of the channel. The empty subject stands for messages that no
    /// handler produced (those from endpoints).
    pub input_subjects: Option<HashSet<String>>,
    pub routes: BTreeMap<String, OutputRoute>,
    pub processor: Processor,
    pub status: Arc<StatusCell>,
    pub position: Option<Uuid>,
    /// Since when `position` is ahead of the stored checkpoint by messages the handler skipped.
    /// Skipped messages are skipped again after a crash, so that write can wait and be shared.
    pub unsaved_since: Option<Instant>,
}

/// Longest a checkpoint past skipped messages stays unwritten.
const SKIP_CHECKPOINT_DELAY: Duration = Duration::from_millis(250);

impl Runner {
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        if let Err(fault) = self.processor.init().await {
            self.report_fault("the handler could not start", &fault)
                .await;
        }
        let interval = self.shared.config.tick_interval;
        let mut next_tick = Instant::now() + interval;
        loop {
            if *stop.borrow() {
                break;
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            let read = tokio::select! {
                read = self.shared.parts.log.read(self.stream, self.position, self.shared.config.batch_size, wait) => read,
                _ = stop.changed() => break,
            };
            let stepped = match read {
                Ok(batch) if !batch.is_empty() => self.step(batch).await,
                Ok(_) => self.save_position().await,
                Err(error) => Err(error.into()),
            };
            if let Err(error) = stepped {
                self.recover(&error.message, &mut stop).await;
                continue;
            }
            if self.processor.ticks() && Instant::now() >= next_tick {
                if let Err(error) = self.tick().await {
                    self.recover(&error.message, &mut stop).await;
                }
                next_tick = Instant::now() + interval;
            }
        }
        if let Err(error) = self.save_position().await {
            tracing::warn!(handler = %self.handler, error = %error.message, "the checkpoint past skipped messages was not saved; they will be skipped again");
        }
    }

    /// Writes a checkpoint that only skipped messages moved.
    async fn save_position(&mut self) -> Result<()> {
        if let (Some(_), Some(position)) = (self.unsaved_since, self.position) {
            self.shared
                .parts
                .states
                .commit(self.stream, &self.consumer, Some(position), Vec::new())
                .await?;
            self.unsaved_since = None;
        }
        Ok(())
    }

    /// Processes one batch read from the stream and commits the checkpoint past it.
    async fn step(&mut self, batch: Vec<Envelope>) -> Result<()> {
        let Some(last) = batch.last().map(|m| m.id) else {
            return Ok(());
        };
        let relevant: Vec<Envelope> = match &self.input_subjects {
            None => batch,
            Some(subjects) => batch
                .into_iter()
                .filter(|m| subjects.contains(m.subject.as_deref().unwrap_or("")))
                .collect(),
        };
        if relevant.is_empty() {
            self.position = Some(last);
            let since = *self.unsaved_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= SKIP_CHECKPOINT_DELAY {
                self.save_position().await?;
            }
            return Ok(());
        }
        self.process(&relevant).await?;
        let writes = self.processor.take_writes();
        self.shared
            .parts
            .states
            .commit(self.stream, &self.consumer, Some(last), writes)
            .await?;
        self.position = Some(last);
        self.unsaved_since = None;
        Ok(())
    }

    /// Runs the batch; when it fails, runs its messages one by one so that only the ones that
    /// keep failing are dead-lettered.
    async fn process(&mut self, batch: &[Envelope]) -> Result<()> {
        match self.processor.handle(batch).await {
            Ok(effects) => {
                self.emit(effects, batch).await?;
                self.status.succeeded(batch.len());
                Ok(())
            }
            Err(fault) => {
                self.report_fault(
                    &format!("a batch of {} message(s) failed", batch.len()),
                    &fault,
                )
                .await;
                match batch {
                    [single] => self.settle(single, 1, fault).await,
                    _ => {
                        for message in batch {
                            self.retry(message).await?;
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    /// Tries one message until it succeeds or has failed `max_attempts` times.
    async fn retry(&mut self, message: &Envelope) -> Result<()> {
        match self.processor.handle(std::slice::from_ref(message)).await {
            Ok(effects) => {
                self.emit(effects, std::slice::from_ref(message)).await?;
                self.status.succeeded(1);
                Ok(())
            }
            Err(fault) => {
                self.report_fault(&format!("message {} failed", message.id), &fault)
                    .await;
                self.settle(message, 1, fault).await
            }
        }
    }

    /// Continues retrying a message that has failed `failed` times, with growing pauses, and
    /// dead-letters it once it has failed `max_attempts` times.
    async fn settle(
        &mut self,
        message: &Envelope,
        mut failed: u32,
        mut fault: Fault,
    ) -> Result<()> {
        let config = &self.shared.config;
        let (max_attempts, backoff) = (config.max_attempts.max(1), config.retry_backoff);
        while failed < max_attempts {
            tokio::time::sleep(backoff.saturating_mul(1 << (failed - 1).min(6))).await;
            match self.processor.handle(std::slice::from_ref(message)).await {
                Ok(effects) => {
                    self.emit(effects, std::slice::from_ref(message)).await?;
                    self.status.succeeded(1);
                    return Ok(());
                }
                Err(next) => {
                    failed += 1;
                    self.report_fault(
                        &format!(
                            "message {} failed (attempt {failed} of {max_attempts})",
                            message.id
                        ),
                        &next,
                    )
                    .await;
                    fault = next;
                }
            }
        }
        self.dead_letter(message.clone(), failed, fault.message)
            .await
    }

    async fn tick(&mut self) -> Result<()> {
        let now = u64::try_from(now_ms()).unwrap_or(0);
        match self.processor.tick(now).await {
            Ok(effects) => {
                self.emit(effects, &[]).await?;
                let writes = self.processor.take_writes();
                if !writes.is_empty() {
                    self.shared
                        .parts
                        .states
                        .commit(self.stream, &self.consumer, None, writes)
                        .await?;
                }
            }
            Err(fault) => self.report_fault("a tick failed", &fault).await,
        }
        Ok(())
    }

    /// Makes a unit of work's results durable: its log lines, its outputs (in the channel's own
    /// stream and along the output subject routes) and its inbox deliveries. `inputs` are the
    /// messages it handled (none for a tick): the outputs go one hop further than the furthest.
    async fn emit(&mut self, effects: Effects, inputs: &[Envelope]) -> Result<()> {
        let Effects {
            outputs,
            deliveries,
            logs,
        } = effects;
        self.write_logs(logs).await;
        let hops = inputs.iter().map(|m| m.hops).max().unwrap_or(0) + 1;
        let inherited_key = inputs
            .last()
            .map(|m| m.partition_key.clone())
            .unwrap_or_default();
        // The writes of one unit of work are independent of each other: issued together they
        // share the log's group commits instead of waiting for one fsync each.
        let shared = self.shared.clone();
        let environment = self.stream.environment;
        let mut writes: Vec<BoxFuture<'_, Result<()>>> = Vec::new();
        let mut append = |stream: StreamId, envelopes: Vec<Envelope>| {
            let shared = shared.clone();
            writes.push(Box::pin(async move {
                shared.parts.log.append(stream, envelopes).await?;
                Ok(())
            }));
        };
        let mut enqueues: HashMap<Uuid, Vec<Envelope>> = HashMap::new();
        if !outputs.is_empty() {
            let envelopes: Vec<Envelope> = outputs
                .into_iter()
                .map(|output| Envelope {
                    subject: Some(output.subject),
                    properties: output.properties,
                    content_type: output.content_type,
                    partition_key: if output.partition_key.is_empty() {
                        inherited_key.clone()
                    } else {
                        output.partition_key
                    },
                    hops,
                    body: output.body,
                    ..Envelope::default()
                })
                .collect();
            if hops > self.shared.config.max_hops {
                let reason = format!(
                    "hop limit exceeded: the message would be its {hops}th hop, over the limit of {}; a handler probably reacts to its own output (narrow its input subjects)",
                    self.shared.config.max_hops
                );
                for envelope in envelopes {
                    self.dead_letter(envelope, 0, reason.clone()).await?;
                }
                return self.enqueue_all(deliveries, enqueues).await;
            }
            // Few routes per handler: a list beats a map here.
            let mut to_channels: Vec<(Uuid, Vec<Envelope>)> = Vec::new();
            for envelope in &envelopes {
                let subject = envelope.subject.as_deref().unwrap_or("");
                match self.routes.get(subject) {
                    Some(OutputRoute::Channel(channel)) => {
                        match to_channels.iter_mut().find(|(c, _)| c == channel) {
                            Some((_, list)) => list.push(envelope.clone()),
                            None => to_channels.push((*channel, vec![envelope.clone()])),
                        }
                    }
                    Some(OutputRoute::Endpoint(endpoint)) => {
                        let mut routed = envelope.clone();
                        routed.endpoint = Some(*endpoint);
                        enqueues.entry(*endpoint).or_default().push(routed);
                    }
                    None => {}
                }
            }
            append(self.stream, envelopes);
            for (channel, envelopes) in to_channels {
                append(StreamId::new(channel, environment), envelopes);
            }
        }
        for (endpoint, envelope) in deliveries {
            enqueues.entry(endpoint).or_default().push(envelope);
        }
        for (endpoint, envelopes) in enqueues {
            let shared = self.shared.clone();
            writes.push(Box::pin(async move {
                shared.parts.inboxes.enqueue(endpoint, envelopes).await?;
                Ok(())
            }));
        }
        futures_util::future::try_join_all(writes).await?;
        Ok(())
    }

    /// Inbox deliveries of a unit of work whose outputs were dead-lettered.
    async fn enqueue_all(
        &mut self,
        deliveries: Vec<(Uuid, Envelope)>,
        mut enqueues: HashMap<Uuid, Vec<Envelope>>,
    ) -> Result<()> {
        for (endpoint, envelope) in deliveries {
            enqueues.entry(endpoint).or_default().push(envelope);
        }
        for (endpoint, envelopes) in enqueues {
            self.shared
                .parts
                .inboxes
                .enqueue(endpoint, envelopes)
                .await?;
        }
        Ok(())
    }

    async fn dead_letter(
        &mut self,
        message: Envelope,
        attempts: u32,
        reason: String,
    ) -> Result<()> {
        let id = message.id;
        self.shared
            .parts
            .journal
            .append_dead_letter(
                self.stream,
                StreamDeadLetter {
                    id: Uuid::nil(),
                    handler: self.handler,
                    reason: reason.clone(),
                    attempts,
                    dead_lettered_at: now_ms(),
                    message,
                },
            )
            .await?;
        self.status.dead_lettered();
        let what = if id.is_nil() {
            "an output message".to_string()
        } else {
            format!("message {id}")
        };
        self.write_logs(vec![(
            "error",
            format!("{what} was moved to the channel's dead letters: {reason}"),
        )])
        .await;
        Ok(())
    }

    async fn report_fault(&mut self, what: &str, fault: &Fault) {
        self.status.faulted(&fault.message);
        let mut lines = fault.logs.clone();
        lines.push(("error", format!("{what}: {}", fault.message)));
        self.write_logs(lines).await;
    }

    /// The log or an inbox failed: go back to the last checkpoint and try again shortly. The
    /// handler's uncommitted state is dropped with the work that made it.
    async fn recover(&mut self, message: &str, stop: &mut watch::Receiver<bool>) {
        tracing::error!(handler = %self.handler, channel = %self.stream.channel, error = message, "handler runner failed; retrying from the last checkpoint");
        self.status.faulted(message);
        self.processor.rollback().await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => {}
        }
    }

    async fn write_logs(&mut self, lines: Vec<(&'static str, String)>) {
        write_logs(&self.shared, self.stream, self.handler, lines).await;
    }
}

/// Writes lines to the channel's log stream. A failing log stream must not stop processing: the
/// lines go to the process log instead. (A free function: the runner holds a wasm instance,
/// which is `Send` but not `Sync`, so no `&Runner` may live across an await.)
async fn write_logs(
    shared: &Shared,
    stream: StreamId,
    handler: Uuid,
    lines: Vec<(&'static str, String)>,
) {
    {
        if lines.is_empty() {
            return;
        }
        let at = now_ms();
        let entries: Vec<LogEntry> = lines
            .into_iter()
            .map(|(level, text)| LogEntry {
                id: Uuid::nil(),
                at,
                environment: stream.environment,
                handler: Some(handler),
                level: level.to_string(),
                text,
            })
            .collect();
        if let Err(error) = shared
            .parts
            .journal
            .append_logs(stream.channel, entries.clone())
            .await
        {
            for entry in entries {
                tracing::warn!(%handler, level = entry.level, text = entry.text, %error, "channel log unavailable");
            }
        }
    }
}
