//! Write MessageHandler handlers in Rust.
//!
//! A handler is a type that implements [`Handler`], exported with [`export_handler!`]; the crate
//! is built as a `cdylib` for `wasm32-wasip2`, which makes a WebAssembly component of the world
//! `messagehandler:handler@1.0.0` (`wit/handler.wit`). The bindings are generated here, so a
//! handler never sees them:
//!
//! ```no_run
//! use messagehandler_sdk::{export_handler, log, push_json, Config, Handler, Message};
//! use serde_json::json;
//!
//! struct Echo {
//!     subject: String,
//! }
//!
//! impl Handler for Echo {
//!     fn init(config: Config) -> Result<Self, String> {
//!         Ok(Echo { subject: config.get("OutputSubject").unwrap_or("Echo").to_string() })
//!     }
//!
//!     fn handle(&mut self, batch: Vec<Message>) -> Result<(), String> {
//!         for message in batch {
//!             log::debug(&format!("echoing {}", message.id));
//!             push_json(&self.subject, &json!({"Echo": message.text()?}))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_handler!(Echo);
//! ```
//!
//! The host functions ([`push`], [`log`], [`variable`], [`state`]) only work inside a component
//! run by MessageHandler; on other targets they panic. The rest ([`Message`], [`Config`],
//! [`Output`]) is plain Rust and can be unit-tested anywhere.

use std::cell::RefCell;
use std::str::FromStr;
use std::thread::LocalKey;

use serde::de::DeserializeOwned;
use serde::Serialize;

#[doc(hidden)]
pub mod __bindings {
    // The path is relative to this crate's manifest: the workspace keeps the one copy of the
    // contract in `wit/`, shared with the host and the package validator.
    wit_bindgen::generate!({
        path: "../../wit",
        world: "handler",
        pub_export_macro: true,
        export_macro_name: "__export_handler_world",
    });
}

use __bindings::messagehandler::handler::{host, state as wit_state, types};

/// The JSON content type, used by [`push_json`] and recognised by [`Message::json`].
pub const JSON: &str = "application/json";

/// A handler: configured once, then fed batches of messages and the time.
///
/// Every method may fail with a message; a failure fails the current batch, which the host
/// retries and eventually dead-letters, without harming other handlers.
pub trait Handler: Sized + 'static {
    /// Builds the handler from its configuration values; an error marks the handler `Faulted`.
    fn init(config: Config) -> Result<Self, String>;

    /// Processes a batch of messages, in order within each partition key.
    fn handle(&mut self, batch: Vec<Message>) -> Result<(), String>;

    /// The current time in milliseconds since the unix epoch, given regularly so that windows
    /// close and timeouts fire when no messages arrive.
    fn tick(&mut self, now_ms: u64) -> Result<(), String> {
        let _ = now_ms;
        Ok(())
    }

    /// The batch is done: flush buffered output. The checkpoint is written after this succeeds.
    fn complete(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// One input message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Unique identifier (a UUID in text form).
    pub id: String,
    /// Output subject of the handler that produced it; empty for messages from the gateway.
    pub subject: String,
    /// Header-like name/value pairs (`x-mh-*` routing headers, user properties).
    pub properties: Vec<(String, String)>,
    /// MIME type of `body`.
    pub content_type: String,
    /// The content, uninterpreted.
    pub body: Vec<u8>,
    /// Ordering key; empty when the sender gave none.
    pub partition_key: String,
}

impl Message {
    /// The body parsed as JSON into `T` (a struct, or `serde_json::Value` for anything).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("message {} is not the expected JSON: {e}", self.id))
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.body)
            .map_err(|_| format!("message {} is not UTF-8 text", self.id))
    }

    /// The value of the first property called `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the content type says JSON (`application/json`, with or without parameters).
    pub fn is_json(&self) -> bool {
        self.content_type
            .split(';')
            .next()
            .is_some_and(|kind| kind.trim().eq_ignore_ascii_case(JSON))
    }
}

impl From<types::Message> for Message {
    fn from(message: types::Message) -> Self {
        Message {
            id: message.id,
            subject: message.subject,
            properties: message.properties,
            content_type: message.content_type,
            body: message.body,
            partition_key: message.partition_key,
        }
    }
}

/// The configuration values of the handler in its channel, as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    values: Vec<(String, String)>,
}

impl Config {
    pub fn new(values: Vec<(String, String)>) -> Self {
        Config { values }
    }

    /// The value of field `name`. Field names are unique regardless of case (the manifest rule),
    /// so the lookup ignores case too.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of field `name`, or an error naming the missing field.
    pub fn require(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("configuration field {name} is missing"))
    }

    /// The value of field `name` parsed as `T` (a number, a boolean, …); missing or unparsable
    /// values are errors that name the field.
    pub fn parse<T: FromStr>(&self, name: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        let text = self.require(name)?;
        text.trim()
            .parse()
            .map_err(|e| format!("configuration field {name} = {text:?} is invalid: {e}"))
    }

    /// Every name/value pair, in the order the host gave them.
    pub fn values(&self) -> &[(String, String)] {
        &self.values
    }
}

/// A message to emit with [`push`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// One of the output subjects the manifest declares.
    pub subject: String,
    pub properties: Vec<(String, String)>,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Ordering key; empty inherits the key of the message being handled.
    pub partition_key: String,
}

impl Output {
    /// A JSON output on `subject`.
    pub fn json<T: Serialize + ?Sized>(subject: &str, value: &T) -> Result<Output, String> {
        let body =
            serde_json::to_vec(value).map_err(|e| format!("cannot encode output JSON: {e}"))?;
        Ok(Output {
            subject: subject.to_string(),
            content_type: JSON.to_string(),
            body,
            ..Output::default()
        })
    }

    /// An unchanged copy of `message` on `subject` (properties, content type, body and key).
    pub fn forward(subject: &str, message: &Message) -> Output {
        Output {
            subject: subject.to_string(),
            properties: message.properties.clone(),
            content_type: message.content_type.clone(),
            body: message.body.clone(),
            partition_key: message.partition_key.clone(),
        }
    }
}

/// Emits `output`. Fails when the handler exceeds its output limit per batch or names a subject
/// its manifest does not declare; return the error to fail the batch.
pub fn push(output: Output) -> Result<(), String> {
    host::push(&types::OutputMessage {
        subject: output.subject,
        properties: output.properties,
        content_type: output.content_type,
        body: output.body,
        partition_key: output.partition_key,
    })
}

/// Emits `value` as a JSON message on `subject`.
pub fn push_json<T: Serialize + ?Sized>(subject: &str, value: &T) -> Result<(), String> {
    push(Output::json(subject, value)?)
}

/// Looks up a variable visible to this handler (channel, environment, then account scope).
pub fn variable(name: &str) -> Option<String> {
    host::variable(name)
}

/// Lines in the channel's log stream, tagged with the handler.
pub mod log {
    use super::host;
    use super::types::LogLevel;

    pub fn trace(text: &str) {
        host::log(LogLevel::Trace, text);
    }

    pub fn debug(text: &str) {
        host::log(LogLevel::Debug, text);
    }

    pub fn info(text: &str) {
        host::log(LogLevel::Info, text);
    }

    pub fn warn(text: &str) {
        host::log(LogLevel::Warn, text);
    }

    pub fn error(text: &str) {
        host::log(LogLevel::Error, text);
    }
}

/// The handler's key-value state. It survives restarts, and writes become durable together with
/// the checkpoint of the batch that made them, so keep here what must outlive an instance (open
/// windows, counters) rather than in the handler's fields.
pub mod state {
    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use super::wit_state;

    pub fn get(key: &str) -> Option<Vec<u8>> {
        wit_state::get(key)
    }

    pub fn set(key: &str, value: &[u8]) {
        wit_state::set(key, value);
    }

    /// Removing a missing key is not an error.
    pub fn delete(key: &str) {
        wit_state::delete(key);
    }

    /// The value under `key` parsed as JSON; `Ok(None)` when there is none.
    pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, String> {
        get(key)
            .map(|bytes| super::decode_state(key, &bytes))
            .transpose()
    }

    /// Stores `value` as JSON under `key`.
    pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), String> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| format!("cannot encode state {key:?} as JSON: {e}"))?;
        set(key, &bytes);
        Ok(())
    }
}

fn decode_state<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes)
        .map_err(|e| format!("state {key:?} is not the expected JSON: {e}"))
}

/// Exports a [`Handler`] type as the component's `init`, `handle`, `tick` and `complete`.
///
/// The world exports free functions, so the instance lives in a thread-local slot (a component
/// instance is single-threaded) created by `init`.
#[macro_export]
macro_rules! export_handler {
    ($handler:ty) => {
        const _: () = {
            ::std::thread_local! {
                static INSTANCE: ::std::cell::RefCell<::std::option::Option<$handler>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            struct Exports;

            impl $crate::__bindings::Guest for Exports {
                fn init(
                    configuration: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__runtime::init(&INSTANCE, configuration)
                }

                fn handle(
                    batch: ::std::vec::Vec<$crate::__bindings::Message>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__runtime::handle(&INSTANCE, batch)
                }

                fn tick(now: u64) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__runtime::with(&INSTANCE, |handler| {
                        $crate::Handler::tick(handler, now)
                    })
                }

                fn complete() -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__runtime::with(&INSTANCE, $crate::Handler::complete)
                }
            }

    $crate::__bindings::__export_handler_world!(Exports with_types_in $crate::__bindings);
        };
    };
}

/// What [`export_handler!`] expands to calls; not part of the API.
#[doc(hidden)]
pub mod __runtime {
    use super::*;

    pub type Slot<H> = LocalKey<RefCell<Option<H>>>;

    /// Builds the handler and keeps it; a second `init` replaces the first instance.
    pub fn init<H: Handler>(
        slot: &'static Slot<H>,
        configuration: Vec<(String, String)>,
    ) -> Result<(), String> {
        let handler = H::init(Config::new(configuration))?;
        slot.with(|cell| {
            let mut instance = cell
                .try_borrow_mut()
                .map_err(|_| "init was called while the handler was running".to_string())?;
            *instance = Some(handler);
            Ok(())
        })
    }

    pub fn handle<H: Handler>(
        slot: &'static Slot<H>,
        batch: Vec<types::Message>,
    ) -> Result<(), String> {
        let batch = batch.into_iter().map(Message::from).collect();
        with(slot, |handler: &mut H| handler.handle(batch))
    }

    /// Runs `call` on the instance; errors (instead of trapping) when there is none yet.
    pub fn with<H: Handler>(
        slot: &'static Slot<H>,
        call: impl FnOnce(&mut H) -> Result<(), String>,
    ) -> Result<(), String> {
        slot.with(|cell| {
            let mut instance = cell
                .try_borrow_mut()
                .map_err(|_| "the handler was called while it was running".to_string())?;
            match instance.as_mut() {
                Some(handler) => call(handler),
                None => Err("the handler is not initialized: init must succeed first".into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn message(content_type: &str, body: &str) -> Message {
        Message {
            id: "m1".into(),
            content_type: content_type.into(),
            body: body.as_bytes().to_vec(),
            properties: vec![("site".into(), "north".into())],
            ..Message::default()
        }
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Measurement {
        amount: f64,
        unit: String,
    }

    #[test]
    fn message_json_and_text() {
        let m = message(
            "application/json; charset=utf-8",
            r#"{"Amount":21.5,"Unit":"C"}"#,
        );
        assert!(m.is_json());
        assert_eq!(
            m.json::<Measurement>().unwrap(),
            Measurement {
                amount: 21.5,
                unit: "C".into()
            }
        );
        assert_eq!(m.property("site"), Some("north"));
        assert_eq!(m.property("other"), None);
        let bad = message("text/plain", "not json");
        assert!(!bad.is_json());
        assert_eq!(bad.text().unwrap(), "not json");
        let error = bad.json::<Measurement>().unwrap_err();
        assert!(error.contains("message m1"), "{error}");
    }

    #[test]
    fn config_lookup_and_parse() {
        let config = Config::new(vec![
            ("MeasurementType".into(), "Temperature".into()),
            ("DurationInSeconds".into(), " 60 ".into()),
            ("Ratio".into(), "x".into()),
        ]);
        assert_eq!(config.get("measurementtype"), Some("Temperature"));
        assert_eq!(config.parse::<f64>("DurationInSeconds").unwrap(), 60.0);
        assert_eq!(config.parse::<u64>("DurationInSeconds").unwrap(), 60);
        let error = config.parse::<f64>("Ratio").unwrap_err();
        assert!(error.contains("Ratio = \"x\" is invalid"), "{error}");
        let error = config.require("Missing").unwrap_err();
        assert_eq!(error, "configuration field Missing is missing");
    }

    #[test]
    fn outputs() {
        let output = Output::json("Average", &serde_json::json!({"Amount": 2})).unwrap();
        assert_eq!(output.subject, "Average");
        assert_eq!(output.content_type, JSON);
        assert_eq!(output.body, br#"{"Amount":2}"#);
        let m = message("text/plain", "hi");
        let forwarded = Output::forward("Out", &m);
        assert_eq!(forwarded.body, m.body);
        assert_eq!(forwarded.properties, m.properties);
        assert_eq!(forwarded.subject, "Out");
    }

    #[test]
    fn state_json_decoding_names_the_key() {
        assert_eq!(decode_state::<u32>("n", b"7").unwrap(), 7);
        let error = decode_state::<u32>("n", b"{").unwrap_err();
        assert!(error.contains("state \"n\""), "{error}");
    }

    struct Counter {
        seen: usize,
        step: usize,
    }

    impl Handler for Counter {
        fn init(config: Config) -> Result<Self, String> {
            Ok(Counter {
                seen: 0,
                step: config.parse("Step")?,
            })
        }

        fn handle(&mut self, batch: Vec<Message>) -> Result<(), String> {
            self.seen += batch.len() * self.step;
            Ok(())
        }
    }

    thread_local! {
        static COUNTER: RefCell<Option<Counter>> = const { RefCell::new(None) };
    }

    #[test]
    fn runtime_keeps_the_instance() {
        let before = __runtime::with(&COUNTER, |_| Ok(())).unwrap_err();
        assert!(before.contains("not initialized"), "{before}");
        let error = __runtime::init(&COUNTER, vec![]).unwrap_err();
        assert!(error.contains("Step"), "{error}");
        __runtime::init(&COUNTER, vec![("Step".into(), "2".into())]).unwrap();
        let batch = vec![
            types::Message {
                id: "a".into(),
                subject: String::new(),
                properties: vec![],
                content_type: JSON.into(),
                body: b"{}".to_vec(),
                partition_key: String::new(),
            };
            3
        ];
        __runtime::handle(&COUNTER, batch).unwrap();
        __runtime::with(&COUNTER, |counter| {
            assert_eq!(counter.seen, 6);
            Ok(())
        })
        .unwrap();
        __runtime::with(&COUNTER, Handler::complete).unwrap();
    }
}
