//! The host side of the handler contract (`wit/handler.wit`): runs handler components in a
//! sandbox.
//!
//! - [`HandlerEngine`] (one per process) owns the wasmtime engine with the component model, a
//!   background thread that advances the epoch every [`EPOCH_TICK`] (execution-time limits), and a
//!   cache of compiled components keyed by the package's SHA-256, so each accepted version is
//!   compiled once and then pre-instantiated ([`HandlerComponent`]). Optionally the compiled
//!   artifacts are also written to a directory (`<data-dir>/compiled/<sha256>.cwasm`) and loaded
//!   from there after a restart.
//! - [`HandlerInstance`] is one running handler: [`init`](HandlerInstance::init) with its
//!   configuration, then batches ([`handle`](HandlerInstance::handle) followed by
//!   [`complete`](HandlerInstance::complete)) and [`tick`](HandlerInstance::tick)s. Each call
//!   answers an [`Outcome`]: the output messages the guest pushed (subjects checked against the
//!   manifest's output subjects) and its log lines, for the channel's log stream.
//! - State: the guest's `state` writes are staged in the instance and applied to its
//!   [`HandlerState`] only when the unit of work that made them succeeds: a batch when `complete`
//!   succeeds, otherwise the `init` or `tick` call itself. A failed batch leaves no trace in the
//!   state, so when the runtime writes the batch's checkpoint right after `complete` (or the
//!   durable implementation writes both in one transaction through [`HandlerState::apply`]),
//!   state and checkpoint never disagree.
//! - Sandbox: guests get WASI preview 2 (what `wasm32-wasip2` programs import) with nothing
//!   granted: no preopened directories, no network, no environment or arguments, stdin closed,
//!   stdout and stderr discarded. Clocks and random numbers work.
//! - Faults: a trap, a call running past [`Limits::call_time`], a memory growth past
//!   [`Limits::memory_bytes`], too many (or too large) outputs in one batch, an undeclared output
//!   subject, too much state written in one batch, a failing state store or an `Err` from the guest end the call with
//!   [`HostError::Fault`], whose [`FaultKind`] says which. The faulted wasm instance is dropped
//!   with its staged state; the next call instantiates a fresh one from the template and runs the
//!   guest's `init` again with the same configuration. Nothing of one instance is shared with
//!   another, so a fault never reaches the process or another handler.
//!
//! The calls are synchronous and CPU-bound (at most [`Limits::call_time`] each): the async
//! runtime drives instances from blocking threads.

mod engine;
mod instance;
mod state;

use std::fmt;
use std::time::Duration;

pub use bindings::messagehandler::handler::types::{LogLevel, Message, OutputMessage};
pub use engine::{HandlerComponent, HandlerEngine, EPOCH_TICK};
pub use instance::{HandlerInstance, InstanceSetup};
pub use state::{HandlerState, MemoryState, StateWrites};

mod bindings {
    // Every import may trap: a failing state store must fail the batch rather than answer the
    // guest with a made-up value.
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "handler",
        imports: { default: trappable },
        // Messages are compared in the runtime's and this crate's tests.
        additional_derives: [PartialEq, Eq],
    });
}

/// The one error type of the host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The wasmtime engine could not be configured.
    #[error("the handler engine cannot start: {0}")]
    Engine(String),
    /// The component does not compile or does not link against what the host provides.
    #[error("the handler component cannot be loaded: {0}")]
    Component(String),
    /// The state store failed (returned by [`HandlerState`] implementations).
    #[error("the handler state store failed: {0}")]
    State(String),
    /// A call into the guest failed; the batch (or tick, or init) failed with it.
    #[error("{0}")]
    Fault(HandlerFault),
}

/// Why a call into a handler failed, with the log lines the guest wrote before it did (they
/// explain the fault more often than not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerFault {
    pub kind: FaultKind,
    pub message: String,
    pub logs: Vec<LogLine>,
}

impl fmt::Display for HandlerFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handler fault ({}): {}", self.kind, self.message)
    }
}

/// The kinds of [`HandlerFault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The instance could not be created (missing import, initial memory over the limit, a
    /// trapping start function) or `init` was never called.
    Instantiate,
    /// The guest trapped (`unreachable`, a Rust panic, out-of-bounds access, stack overflow).
    Trap,
    /// The call ran longer than [`Limits::call_time`].
    Timeout,
    /// The guest tried to grow its memory past [`Limits::memory_bytes`].
    Memory,
    /// The batch pushed more than [`Limits::outputs_per_batch`] messages or
    /// [`Limits::output_bytes_per_batch`] bytes.
    OutputLimit,
    /// The guest pushed to a subject its manifest does not declare.
    UndeclaredSubject,
    /// The state store failed.
    State,
    /// The batch wrote more than [`Limits::state_bytes_per_batch`] bytes of state.
    StateLimit,
    /// The guest answered `Err(message)`.
    Guest,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Instantiate => "instantiation failed",
            FaultKind::Trap => "trap",
            FaultKind::Timeout => "time limit",
            FaultKind::Memory => "memory limit",
            FaultKind::OutputLimit => "output limit",
            FaultKind::UndeclaredSubject => "undeclared output subject",
            FaultKind::State => "state store",
            FaultKind::StateLimit => "state limit",
            FaultKind::Guest => "handler error",
        })
    }
}

/// One line the guest logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub text: String,
}

/// What a successful call produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Pushed outputs, in order. Outputs of `handle` belong to the open batch: the runtime emits
    /// them only once `complete` succeeds.
    pub outputs: Vec<OutputMessage>,
    pub logs: Vec<LogLine>,
}

/// Limits of one handler instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory, bytes.
    pub memory_bytes: usize,
    /// Longest a single call (init, handle, tick, complete) may run, measured in [`EPOCH_TICK`]s.
    pub call_time: Duration,
    /// Most outputs one batch (its `handle` and `complete`, or one `tick` or `init`) may push.
    pub outputs_per_batch: usize,
    /// Most bytes (bodies, properties, subjects and keys) one batch may push.
    pub output_bytes_per_batch: usize,
    /// Most bytes (keys and values) of state one batch may write.
    pub state_bytes_per_batch: usize,
    /// Most log lines kept per call; the rest are counted in one closing warning.
    pub log_lines_per_call: usize,
    /// Longest log line kept, bytes; longer ones are cut.
    pub log_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            call_time: Duration::from_secs(2),
            outputs_per_batch: 1000,
            output_bytes_per_batch: 16 << 20,
            state_bytes_per_batch: 16 << 20,
            log_lines_per_call: 100,
            log_line_bytes: 4096,
        }
    }
}
