//! Handler packages: what an upload must be before it becomes a handler version.
//!
//! A package is a zip with `handler.toml` ([`Manifest`]) at its root and the WebAssembly component
//! the manifest names. [`read_package`] checks the archive (names, symlinks, entry count, inflated
//! size) and the manifest; [`Validator`] compiles the component and checks it against the handler
//! world in `wit/handler.wit`. [`Version`] holds the versioning rules.

mod archive;
mod component;
mod error;
mod manifest;
mod version;

pub use archive::{read_package, zip_directory, Limits, Package};
pub use component::Validator;
pub use error::{PackageError, Result};
pub use manifest::{
    ConfigurationField, FieldType, Manifest, MANIFEST_FILE, RUNTIME_WASM_COMPONENT, WORLD_MAJOR,
};
pub use version::Version;

/// The handler world's WIT, for tools and tests that build components against it.
pub const HANDLER_WIT: &str = include_str!("../../../wit/handler.wit");

/// Reads and fully validates an upload: archive, manifest, then the component.
pub fn validate_package(bytes: &[u8], limits: &Limits, validator: &Validator) -> Result<Package> {
    let package = read_package(bytes, limits)?;
    validator.validate(&package.manifest.component, &package.component)?;
    Ok(package)
}
