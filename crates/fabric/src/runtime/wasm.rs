//! WebAssembly handlers in the runtime: the host's [`HandlerInstance`] driven from blocking
//! threads, with its state kept in the log next to the handler's checkpoint.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use mh_log::{Envelope, HandlerStates, StreamId};

use super::effects::{Effects, Fault, Output};
use crate::host::{
    HandlerInstance, HandlerState, HostError, LogLevel, LogLine, Message, Outcome, StateWrites,
};

/// State writes of successful units of work that are not yet committed with a checkpoint.
pub(crate) type PendingWrites = Arc<Mutex<StateWrites>>;

fn lock(pending: &PendingWrites) -> MutexGuard<'_, StateWrites> {
    // Every operation leaves the map whole, so a panic elsewhere cannot leave it half-written.
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A handler's state: committed values in the log ([`HandlerStates`]), overlaid with the writes
/// of units of work that succeeded since the last commit. The runner commits those together
/// with the checkpoint of the batch that made them, so that after a crash both or neither are
/// there.
pub(crate) struct DurableState {
    states: Arc<dyn HandlerStates>,
    stream: StreamId,
    consumer: String,
    pending: PendingWrites,
}

impl DurableState {
    pub fn new(
        states: Arc<dyn HandlerStates>,
        stream: StreamId,
        consumer: String,
        pending: PendingWrites,
    ) -> Self {
        DurableState {
            states,
            stream,
            consumer,
            pending,
        }
    }
}

impl HandlerState for DurableState {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        if let Some(staged) = lock(&self.pending).get(key) {
            return Ok(staged.clone());
        }
        self.states
            .state(self.stream, &self.consumer, key)
            .map_err(|e| HostError::State(e.to_string()))
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), HostError> {
        lock(&self.pending).insert(key.to_string(), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), HostError> {
        lock(&self.pending).insert(key.to_string(), None);
        Ok(())
    }

    fn apply(&mut self, writes: &StateWrites) -> Result<(), HostError> {
        let mut pending = lock(&self.pending);
        for (key, value) in writes {
            pending.insert(key.clone(), value.clone());
        }
        Ok(())
    }
}

/// Takes the writes to commit with the next checkpoint.
pub(crate) fn take_pending(pending: &PendingWrites) -> Vec<(String, Option<Vec<u8>>)> {
    std::mem::take(&mut *lock(pending)).into_iter().collect()
}

/// Forgets uncommitted writes: the runner goes back to the last checkpoint and does the work
/// again.
pub(crate) fn drop_pending(pending: &PendingWrites) {
    lock(pending).clear();
}

pub(crate) struct WasmProcessor {
    /// `None` only while a call runs on a blocking thread (or after that thread panicked).
    instance: Option<HandlerInstance>,
    configuration: Vec<(String, String)>,
}

impl WasmProcessor {
    pub fn new(instance: HandlerInstance, configuration: Vec<(String, String)>) -> Self {
        WasmProcessor {
            instance: Some(instance),
            configuration,
        }
    }

    /// Runs the guest's `init`; a failure is reported, and the host runs `init` again before the
    /// next call.
    pub async fn init(&mut self) -> Result<Effects, Fault> {
        let configuration = self.configuration.clone();
        self.run(move |instance| instance.init(configuration)).await
    }

    /// `handle` then `complete`: one batch.
    pub async fn handle(&mut self, batch: &[Envelope]) -> Result<Effects, Fault> {
        let messages: Vec<Message> = batch.iter().map(to_message).collect();
        self.run(move |instance| {
            let mut handled = instance.handle(&messages)?;
            let completed = instance.complete()?;
            handled.outputs.extend(completed.outputs);
            handled.logs.extend(completed.logs);
            Ok(handled)
        })
        .await
    }

    pub async fn tick(&mut self, now_ms: u64) -> Result<Effects, Fault> {
        self.run(move |instance| instance.tick(now_ms)).await
    }

    /// Drops the guest's in-memory state; the next call starts a fresh instance with `init`.
    pub async fn reset(&mut self) {
        let configuration = self.configuration.clone();
        // A failing init is reported again by the next call, which retries it.
        let _ = self.run(move |instance| instance.init(configuration)).await;
    }

    async fn run<F>(&mut self, call: F) -> Result<Effects, Fault>
    where
        F: FnOnce(&mut HandlerInstance) -> Result<Outcome, HostError> + Send + 'static,
    {
        let Some(mut instance) = self.instance.take() else {
            return Err(Fault::new(
                "the handler instance was lost after an internal failure; redeploy the channel",
            ));
        };
        // Guest calls are CPU-bound for up to the call time limit: off the async workers.
        let joined = tokio::task::spawn_blocking(move || {
            let result = call(&mut instance);
            (instance, result)
        })
        .await;
        let (instance, result) = joined
            .map_err(|e| Fault::new(format!("the handler call failed inside the host: {e}")))?;
        self.instance = Some(instance);
        match result {
            Ok(outcome) => Ok(effects_of(outcome)),
            Err(HostError::Fault(fault)) => Err(Fault {
                message: fault.to_string(),
                logs: fault.logs.into_iter().map(log_of).collect(),
            }),
            Err(other) => Err(Fault::new(other.to_string())),
        }
    }
}

fn to_message(envelope: &Envelope) -> Message {
    Message {
        id: envelope.id.to_string(),
        subject: envelope.subject.clone().unwrap_or_default(),
        properties: envelope
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        content_type: envelope.content_type.clone().unwrap_or_default(),
        body: envelope.body.to_vec(),
        partition_key: envelope.partition_key.clone(),
    }
}

fn log_of(line: LogLine) -> (&'static str, String) {
    let level = match line.level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    (level, line.text)
}

fn effects_of(outcome: Outcome) -> Effects {
    Effects {
        outputs: outcome
            .outputs
            .into_iter()
            .map(|output| Output {
                subject: output.subject,
                properties: output.properties.into_iter().collect::<BTreeMap<_, _>>(),
                content_type: Some(output.content_type).filter(|c| !c.is_empty()),
                body: Bytes::from(output.body),
                partition_key: output.partition_key,
            })
            .collect(),
        deliveries: Vec::new(),
        logs: outcome.logs.into_iter().map(log_of).collect(),
    }
}
