//! What the API shows about a running handler.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::now_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Its last unit of work succeeded (or it has not failed yet).
    Operational,
    /// Its last unit of work failed; `last_error` says why.
    Faulted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Operational => "Operational",
            RunState::Faulted => "Faulted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerStatus {
    pub state: RunState,
    /// The most recent failure, kept after the handler recovers.
    pub last_error: Option<String>,
    /// Unix milliseconds of `last_error`.
    pub last_error_at: Option<i64>,
    /// Messages handled successfully since the deployment started.
    pub processed: u64,
    /// Messages (and outputs) moved to the dead letters since the deployment started.
    pub dead_lettered: u64,
}

#[derive(Debug)]
pub(crate) struct StatusCell(Mutex<HandlerStatus>);

impl StatusCell {
    pub fn new() -> Self {
        StatusCell(Mutex::new(HandlerStatus {
            state: RunState::Operational,
            last_error: None,
            last_error_at: None,
            processed: 0,
            dead_lettered: 0,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, HandlerStatus> {
        // Each update is a few plain assignments: nothing can be left half-done by a panic.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> HandlerStatus {
        self.lock().clone()
    }

    pub fn succeeded(&self, messages: usize) {
        let mut status = self.lock();
        status.state = RunState::Operational;
        status.processed += messages as u64;
    }

    pub fn faulted(&self, error: &str) {
        let mut status = self.lock();
        status.state = RunState::Faulted;
        status.last_error = Some(error.to_string());
        status.last_error_at = Some(now_ms());
    }

    pub fn dead_lettered(&self) {
        self.lock().dead_lettered += 1;
    }
}
