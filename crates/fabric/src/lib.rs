//! The fabric: the processing plane that runs deployed channels.
//!
//! - [`trigger`]: the CEL expressions built-in handlers decide with.
//! - [`host`]: runs handler components (WebAssembly, `wit/handler.wit`) in a sandbox.
//! - [`builtins`]: Generate Alert, Forward to endpoint and Webhook, native.
//! - [`Fabric`]: checks handler configurations as they are written ([`HandlerRequest`]), and
//!   deploys channels: one runner per handler and environment, reading the channel's stream from
//!   its own checkpoint, at-least-once, with retries, dead letters and a hop limit.

pub mod builtins;
mod configure;
mod control;
mod error;
pub mod host;
mod runtime;
pub mod template;
pub mod trigger;

pub use control::{GalleryEntry, HandlerDescription, HandlerRequest, RouteRequest};
pub use error::{ErrorKind, FabricError, Result};
pub use runtime::{Fabric, FabricConfig, FabricParts, HandlerStatus, RunState};
