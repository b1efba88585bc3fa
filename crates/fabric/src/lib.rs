//! The fabric: the processing plane that runs deployed channels.
//!
//! This crate grows with the fabric issue; today it holds the trigger language that built-in
//! handlers (Generate Alert, Forward to endpoint, Webhook) use to decide whether they act.

pub mod trigger;
