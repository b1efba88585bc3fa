//! The fabric: the processing plane that runs deployed channels.
//!
//! This crate grows with the fabric issue; today it holds the trigger language that built-in
//! handlers (Generate Alert, Forward to endpoint, Webhook) use to decide whether they act, and the
//! [`host`] that runs handler components (WebAssembly, `wit/handler.wit`) in a sandbox.

pub mod host;
pub mod trigger;
