use std::path::PathBuf;

use thiserror::Error;

/// Everything that can be wrong with a handler package or a version string.
///
/// The variants say which part of the upload is at fault so that the API can answer with the
/// right status: the archive itself (`400`) or what it contains (`422`).
#[derive(Debug, Error)]
pub enum PackageError {
    #[error(
        "{text:?} is not a version: use 1 to 4 dot-separated non-negative integers, e.g. 1.0.0.0"
    )]
    InvalidVersion { text: String },
    #[error("the package is not a valid zip archive: {0}")]
    NotAZip(String),
    #[error("zip entry {name:?} is not allowed: {reason}")]
    UnsafeEntry { name: String, reason: &'static str },
    #[error("the package has more than {limit} zip entries")]
    TooManyEntries { limit: usize },
    #[error("the package unpacks to more than {limit} bytes (a zip bomb?)")]
    TooLarge { limit: u64 },
    #[error("the package has no handler.toml manifest at its root")]
    MissingManifest,
    #[error("handler.toml is invalid: {0}")]
    InvalidManifest(String),
    #[error("the component {path:?} named by handler.toml is not in the package")]
    MissingComponent { path: String },
    #[error("the component {path:?} is not a valid handler: {reason}")]
    InvalidComponent { path: String, reason: String },
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = PackageError> = std::result::Result<T, E>;
