//! What processing a batch (or a tick) produced, before the runner makes it durable.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mh_log::Envelope;
use uuid::Uuid;

use crate::trigger::{Scope, Trigger, TriggerError};

/// A message a handler pushed, addressed by its output subject.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub subject: String,
    pub properties: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub body: Bytes,
    /// Empty: inherits the key of the batch's last message.
    pub partition_key: String,
}

/// Everything one unit of work produced.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub outputs: Vec<Output>,
    /// Messages for endpoint inboxes (the endpoint router).
    pub deliveries: Vec<(Uuid, Envelope)>,
    /// `(level, text)` lines for the channel's log stream.
    pub logs: Vec<(&'static str, String)>,
}

impl Effects {
    pub fn log(&mut self, level: &'static str, text: impl Into<String>) {
        self.logs.push((level, text.into()));
    }
}

/// A failed unit of work: why, and what the handler logged on the way.
#[derive(Debug)]
pub(crate) struct Fault {
    pub message: String,
    pub logs: Vec<(&'static str, String)>,
}

impl Fault {
    pub fn new(message: impl Into<String>) -> Self {
        Fault {
            message: message.into(),
            logs: Vec::new(),
        }
    }
}

/// How often a handler may report that its trigger does not apply to messages.
const EVALUATION_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// A compiled trigger with what it can see, and the rate limit of its evaluation reports.
pub(crate) struct Matcher {
    trigger: Trigger,
    channel: String,
    environment: String,
    variables: BTreeMap<String, String>,
    last_report: Option<Instant>,
    unreported: u64,
}

impl Matcher {
    pub fn new(
        trigger: Trigger,
        channel: String,
        environment: String,
        variables: BTreeMap<String, String>,
    ) -> Self {
        Matcher {
            trigger,
            channel,
            environment,
            variables,
            last_report: None,
            unreported: 0,
        }
    }

    pub fn expression(&self) -> &str {
        self.trigger.expression()
    }

    /// The message as the trigger saw it when the trigger matches: its JSON body, or its body as
    /// text when that is not JSON (so `true` matches every message). A message the trigger
    /// cannot be evaluated on (a missing field, a type mismatch) does not match; that is
    /// reported to the channel's log at most once a minute, with a count of the others.
    pub fn matches(
        &mut self,
        message: &Envelope,
        effects: &mut Effects,
    ) -> Option<serde_json::Value> {
        let body =
            serde_json::from_slice::<serde_json::Value>(&message.body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&message.body).into_owned())
            });
        let scope = Scope {
            channel: &self.channel,
            environment: &self.environment,
            variables: &self.variables,
        };
        match self.trigger.evaluate(&body, &scope) {
            Ok(matched) => matched.then_some(body),
            Err(error) => {
                self.report(&error, effects);
                None
            }
        }
    }

    fn report(&mut self, error: &TriggerError, effects: &mut Effects) {
        let due = self
            .last_report
            .is_none_or(|at| at.elapsed() >= EVALUATION_REPORT_INTERVAL);
        if !due {
            self.unreported += 1;
            return;
        }
        let others = match std::mem::take(&mut self.unreported) {
            0 => String::new(),
            n => format!(" ({n} more such messages since the last report)"),
        };
        effects.log(
            "warn",
            format!("{error}; the message counts as not matching{others}"),
        );
        self.last_report = Some(Instant::now());
    }
}

/// Reads a dotted path (`Device.Site`) in a JSON value.
pub(crate) fn json_path<'v>(
    value: &'v serde_json::Value,
    path: &str,
) -> Option<&'v serde_json::Value> {
    path.split('.')
        .try_fold(value, |value, name| value.get(name))
}
