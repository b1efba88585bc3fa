//! One running handler: its wasm instance, the imports it calls, and fault handling.

use std::collections::{BTreeSet, HashMap};
use std::mem;

use wasmtime::component::ResourceTable;
use wasmtime::{
    Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap, WasmBacktrace,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::messagehandler::handler::{host, state, types};
use super::bindings::{Handler, HandlerPre};
use super::state::StateWrites;
use super::{
    FaultKind, HandlerFault, HandlerState, HostError, Limits, LogLevel, LogLine, Message, Outcome,
    OutputMessage, EPOCH_TICK,
};

/// What an instance is given when it is created.
pub struct InstanceSetup {
    /// The output subjects the package's manifest declares; `push` accepts only these.
    pub output_subjects: BTreeSet<String>,
    /// The variables visible to the handler (channel, environment and account scopes already
    /// merged by the caller).
    pub variables: HashMap<String, String>,
    /// Where the handler's state is committed.
    pub state: Box<dyn HandlerState>,
    pub limits: Limits,
}

/// One handler of a deployed channel. Drive it from one thread at a time (`&mut self`); separate
/// instances share nothing and run in parallel.
pub struct HandlerInstance {
    engine: Engine,
    pre: HandlerPre<Host>,
    /// The configuration `init` was given; `None` until it is called.
    configuration: Option<Vec<(String, String)>>,
    /// The wasm instance, or `None` after a fault (or before `init`).
    live: Option<Live>,
    /// The host data while no wasm instance holds it.
    idle: Option<Host>,
    /// Whether `handle` has opened a batch that `complete` has not closed.
    in_batch: bool,
}

struct Live {
    store: Store<Host>,
    bindings: Handler,
}

impl HandlerInstance {
    pub(super) fn new(engine: Engine, pre: HandlerPre<Host>, setup: InstanceSetup) -> Self {
        HandlerInstance {
            engine,
            pre,
            configuration: None,
            live: None,
            idle: Some(Host::new(setup)),
            in_batch: false,
        }
    }

    /// Creates a fresh wasm instance and calls the guest's `init` with `configuration`, which is
    /// kept for the instances that replace faulted ones. Its state writes are applied when it
    /// succeeds.
    pub fn init(&mut self, configuration: Vec<(String, String)>) -> Result<Outcome, HostError> {
        self.discard();
        self.configuration = Some(configuration);
        let mut outcome = Outcome::default();
        self.ensure_live(&mut outcome)?;
        Ok(outcome)
    }

    /// Hands a batch to the guest. Opens the batch if none is open: its state writes stay staged,
    /// and its outputs counted against the batch limits, until [`complete`](Self::complete).
    pub fn handle(&mut self, batch: &[Message]) -> Result<Outcome, HostError> {
        self.open_batch();
        let mut outcome = Outcome::default();
        self.ensure_live(&mut outcome)?;
        self.call(&mut outcome, |bindings, store| {
            bindings.call_handle(store, batch)
        })?;
        Ok(outcome)
    }

    /// Gives the guest the time. Outside a batch it is a unit of work of its own (state applied
    /// on success); inside one its writes and outputs join the batch.
    pub fn tick(&mut self, now_ms: u64) -> Result<Outcome, HostError> {
        let unit_of_its_own = !self.in_batch;
        if unit_of_its_own {
            self.reset_unit();
        }
        let mut outcome = Outcome::default();
        self.ensure_live(&mut outcome)?;
        self.call(&mut outcome, |bindings, store| {
            bindings.call_tick(store, now_ms)
        })?;
        if unit_of_its_own {
            self.commit()?;
        }
        Ok(outcome)
    }

    /// Ends the open batch: the guest flushes, then the batch's state writes are applied. The
    /// runtime writes the batch's checkpoint (and emits its outputs) after this succeeds.
    pub fn complete(&mut self) -> Result<Outcome, HostError> {
        self.open_batch();
        let mut outcome = Outcome::default();
        self.ensure_live(&mut outcome)?;
        self.call(&mut outcome, |bindings, store| {
            bindings.call_complete(store)
        })?;
        self.commit()?;
        Ok(outcome)
    }

    fn open_batch(&mut self) {
        if !self.in_batch {
            self.reset_unit();
            self.in_batch = true;
        }
    }

    fn host(&mut self) -> Option<&mut Host> {
        match &mut self.live {
            Some(live) => Some(live.store.data_mut()),
            None => self.idle.as_mut(),
        }
    }

    fn reset_unit(&mut self) {
        if let Some(host) = self.host() {
            host.clear_unit();
        }
    }

    /// Applies the staged writes of a successful unit of work and closes the batch.
    fn commit(&mut self) -> Result<(), HostError> {
        self.in_batch = false;
        let Some(host) = self.host() else {
            return Ok(());
        };
        let writes = mem::take(&mut host.staged);
        if let Err(e) = host.state.apply(&writes) {
            self.discard();
            return Err(fault(FaultKind::State, e.to_string(), Vec::new()));
        }
        Ok(())
    }

    /// Drops the wasm instance (and the staged writes and open batch with it), keeping the host
    /// data for the next instance.
    fn discard(&mut self) {
        if let Some(live) = self.live.take() {
            let mut host = live.store.into_data();
            host.clear_unit();
            self.idle = Some(host);
        }
        self.in_batch = false;
    }

    /// Instantiates from the template and runs the guest's `init` unless an instance is live.
    /// What that `init` logs or pushes goes into `outcome`.
    fn ensure_live(&mut self, outcome: &mut Outcome) -> Result<(), HostError> {
        if self.live.is_some() {
            return Ok(());
        }
        let Some(configuration) = self.configuration.clone() else {
            return Err(fault(
                FaultKind::Instantiate,
                "init was not called".into(),
                Vec::new(),
            ));
        };
        let Some(mut host) = self.idle.take() else {
            return Err(fault(
                FaultKind::Instantiate,
                // Unreachable: every path that takes the host data out of a store puts it back.
                "the instance lost its host data".into(),
                Vec::new(),
            ));
        };
        host.wasi = sandbox();
        host.table = ResourceTable::new();
        let limits = host.limits.clone();
        let mut store = Store::new(&self.engine, host);
        store.limiter(|host| &mut host.limiter);
        store.set_epoch_deadline(deadline_ticks(&limits));
        let bindings = match self.pre.instantiate(&mut store) {
            Ok(bindings) => bindings,
            Err(e) => {
                let mut host = store.into_data();
                let memory_exceeded = mem::take(&mut host.limiter.memory_exceeded);
                let logs = mem::take(&mut host.logs);
                host.clear_unit();
                self.idle = Some(host);
                self.in_batch = false;
                let (kind, message) =
                    classify(&e, memory_exceeded, &limits, FaultKind::Instantiate);
                return Err(fault(kind, message, logs));
            }
        };
        self.live = Some(Live { store, bindings });
        let in_batch = self.in_batch;
        // A re-instantiated guest's init is not part of the batch it runs for: its writes are
        // applied on their own, and its outputs do not count against the batch's limits.
        self.reset_unit();
        self.call(outcome, |bindings, store| {
            bindings.call_init(store, &configuration)
        })?;
        self.commit()?;
        self.reset_unit();
        self.in_batch = in_batch;
        Ok(())
    }

    /// Runs one export with the time limit, moves what the guest pushed and logged into
    /// `outcome`, and turns a failure into a fault, discarding the instance.
    fn call<F>(&mut self, outcome: &mut Outcome, export: F) -> Result<(), HostError>
    where
        F: FnOnce(&Handler, &mut Store<Host>) -> wasmtime::Result<Result<(), String>>,
    {
        let Some(live) = self.live.as_mut() else {
            return Err(fault(
                FaultKind::Instantiate,
                "no instance is running".into(),
                Vec::new(),
            ));
        };
        let limits = live.store.data().limits.clone();
        live.store.set_epoch_deadline(deadline_ticks(&limits));
        let result = export(&live.bindings, &mut live.store);

        let host = live.store.data_mut();
        outcome.logs.append(&mut host.logs);
        let dropped = mem::take(&mut host.dropped_logs);
        if dropped > 0 {
            outcome.logs.push(LogLine {
                level: LogLevel::Warn,
                text: format!("{dropped} more log lines of this call were dropped"),
            });
        }
        let outputs = mem::take(&mut host.outputs);
        let breach = host.breach.take();
        let memory_exceeded = mem::take(&mut host.limiter.memory_exceeded);
        let failure = match (breach, result) {
            // A breach fails the batch even when the guest ignored the `Err` that `push` gave it.
            (Some(breach), _) => Some(breach),
            (None, Ok(Ok(()))) => None,
            (None, Ok(Err(message))) if memory_exceeded => Some((
                FaultKind::Memory,
                format!("{} (after a memory growth past the limit)", message),
            )),
            (None, Ok(Err(message))) => Some((FaultKind::Guest, message)),
            (None, Err(e)) => Some(classify(&e, memory_exceeded, &limits, FaultKind::Trap)),
        };
        match failure {
            None => {
                outcome.outputs.extend(outputs);
                Ok(())
            }
            Some((kind, message)) => {
                self.discard();
                Err(fault(kind, message, mem::take(&mut outcome.logs)))
            }
        }
    }
}

fn fault(kind: FaultKind, message: String, logs: Vec<LogLine>) -> HostError {
    HostError::Fault(HandlerFault {
        kind,
        message,
        logs,
    })
}

/// The kind and message of a failed call or instantiation; `otherwise` is the kind of errors
/// that are neither a memory breach nor a timeout.
fn classify(
    error: &wasmtime::Error,
    memory_exceeded: bool,
    limits: &Limits,
    otherwise: FaultKind,
) -> (FaultKind, String) {
    if memory_exceeded {
        return (
            FaultKind::Memory,
            format!(
                "the handler tried to grow its memory past its limit of {} bytes",
                limits.memory_bytes
            ),
        );
    }
    let trap = error.downcast_ref::<Trap>();
    if trap == Some(&Trap::Interrupt) {
        return (
            FaultKind::Timeout,
            format!(
                "the call ran longer than its limit of {} ms",
                limits.call_time.as_millis()
            ),
        );
    }
    // One line for the channel's log stream: the trap first, then where it happened.
    let one_line = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = match (trap, error.downcast_ref::<WasmBacktrace>()) {
        (Some(trap), Some(backtrace)) => {
            let backtrace = one_line(backtrace.to_string());
            let backtrace = backtrace.trim_start_matches("error while executing at ");
            format!("{trap} ({backtrace})")
        }
        _ => one_line(format!("{error:#}")),
    };
    (otherwise, message)
}

/// Epoch ticks for one call: rounded up, plus one because the first tick may come at once.
fn deadline_ticks(limits: &Limits) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    let ticks = limits.call_time.as_nanos().div_ceil(tick);
    u64::try_from(ticks).unwrap_or(u64::MAX - 1) + 1
}

/// WASI with nothing granted (the builder's defaults, with the network spelled out): no
/// preopens, no environment, no arguments, stdin closed, stdout and stderr discarded.
fn sandbox() -> WasiCtx {
    WasiCtxBuilder::new()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

/// The data of a handler's store: WASI, limits, and what the imports collect during a call.
pub(crate) struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    limits: Limits,
    output_subjects: BTreeSet<String>,
    variables: HashMap<String, String>,
    state: Box<dyn HandlerState>,
    /// State writes of the current unit of work.
    staged: StateWrites,
    /// Bytes written to `staged` in this unit (overwrites counted again: a cheap upper bound).
    staged_bytes: usize,
    /// Outputs of the current call, and counts for the current unit.
    outputs: Vec<OutputMessage>,
    outputs_pushed: usize,
    output_bytes: usize,
    /// Log lines of the current call and how many were dropped.
    logs: Vec<LogLine>,
    dropped_logs: usize,
    /// A limit or rule the guest broke during the current call.
    breach: Option<(FaultKind, String)>,
}

impl Host {
    fn new(setup: InstanceSetup) -> Self {
        Host {
            wasi: sandbox(),
            table: ResourceTable::new(),
            limiter: Limiter::new(&setup.limits),
            limits: setup.limits,
            output_subjects: setup.output_subjects,
            variables: setup.variables,
            state: setup.state,
            staged: StateWrites::new(),
            staged_bytes: 0,
            outputs: Vec::new(),
            outputs_pushed: 0,
            output_bytes: 0,
            logs: Vec::new(),
            dropped_logs: 0,
            breach: None,
        }
    }

    /// Forgets everything of the current unit of work and call.
    fn clear_unit(&mut self) {
        self.staged.clear();
        self.staged_bytes = 0;
        self.outputs.clear();
        self.outputs_pushed = 0;
        self.output_bytes = 0;
        self.logs.clear();
        self.dropped_logs = 0;
        self.breach = None;
        self.limiter.memory_exceeded = false;
    }

    /// Records a breach and returns the message the guest gets from the import.
    fn breach(&mut self, kind: FaultKind, message: String) -> String {
        self.breach.get_or_insert((kind, message.clone()));
        message
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for Host {}

impl host::Host for Host {
    fn push(&mut self, message: OutputMessage) -> wasmtime::Result<Result<(), String>> {
        if let Some((_, earlier)) = &self.breach {
            return Ok(Err(earlier.clone()));
        }
        if !self.output_subjects.contains(&message.subject) {
            let declared = self
                .output_subjects
                .iter()
                .map(|subject| format!("{subject:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Ok(Err(self.breach(
                FaultKind::UndeclaredSubject,
                format!(
                    "pushed to the subject {:?}, which the manifest does not declare (declared: [{declared}])",
                    message.subject
                ),
            )));
        }
        if self.outputs_pushed >= self.limits.outputs_per_batch {
            let limit = self.limits.outputs_per_batch;
            return Ok(Err(self.breach(
                FaultKind::OutputLimit,
                format!("pushed more than {limit} outputs in one batch"),
            )));
        }
        let size = message.subject.len()
            + message.content_type.len()
            + message.body.len()
            + message.partition_key.len()
            + message
                .properties
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>();
        if self.output_bytes.saturating_add(size) > self.limits.output_bytes_per_batch {
            let limit = self.limits.output_bytes_per_batch;
            return Ok(Err(self.breach(
                FaultKind::OutputLimit,
                format!("pushed more than {limit} bytes of outputs in one batch"),
            )));
        }
        self.outputs_pushed += 1;
        self.output_bytes += size;
        self.outputs.push(message);
        Ok(Ok(()))
    }

    fn log(&mut self, level: LogLevel, mut text: String) -> wasmtime::Result<()> {
        if self.logs.len() >= self.limits.log_lines_per_call {
            self.dropped_logs += 1;
            return Ok(());
        }
        if text.len() > self.limits.log_line_bytes {
            let mut end = self.limits.log_line_bytes;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        self.logs.push(LogLine { level, text });
        Ok(())
    }

    fn variable(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.variables.get(&name).cloned())
    }
}

impl state::Host for Host {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        if let Some(staged) = self.staged.get(&key) {
            return Ok(staged.clone());
        }
        match self.state.get(&key) {
            Ok(value) => Ok(value),
            Err(e) => {
                // Trapping (rather than answering `none`) keeps the guest from acting on state it
                // could not read; the batch is retried.
                let message = self.breach(FaultKind::State, e.to_string());
                Err(wasmtime::Error::msg(message))
            }
        }
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<()> {
        self.stage(key, Some(value))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.stage(key, None)
    }
}

impl Host {
    /// Stages a state write, trapping when the unit's writes pass the state limit: the host keeps
    /// them in its own memory, outside the guest's memory limit.
    fn stage(&mut self, key: String, value: Option<Vec<u8>>) -> wasmtime::Result<()> {
        let size = key.len() + value.as_ref().map_or(0, Vec::len);
        self.staged_bytes = self.staged_bytes.saturating_add(size);
        if self.staged_bytes > self.limits.state_bytes_per_batch {
            let limit = self.limits.state_bytes_per_batch;
            let message = self.breach(
                FaultKind::StateLimit,
                format!("wrote more than {limit} bytes of state in one batch"),
            );
            return Err(wasmtime::Error::msg(message));
        }
        self.staged.insert(key, value);
        Ok(())
    }
}

/// The store's resource limiter: wasmtime's [`StoreLimits`], noting when a memory growth was
/// refused so that the fault names the memory limit rather than the trap that follows.
struct Limiter {
    inner: StoreLimits,
    memory_exceeded: bool,
}

impl Limiter {
    fn new(limits: &Limits) -> Self {
        Limiter {
            inner: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .build(),
            memory_exceeded: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.memory_exceeded = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
