//! `mh package build DIR`: builds a handler crate for `wasm32-wasip2` and packages the component
//! with its `handler.toml`, checked exactly as the server will check the upload.

use std::io::{BufRead, BufReader, Cursor, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context};
use mh_package::{Limits, Manifest, Validator, MANIFEST_FILE};
use serde::Deserialize;
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

const TARGET: &str = "wasm32-wasip2";

#[derive(clap::Args)]
pub struct BuildCommand {
    /// The handler's crate: a directory with Cargo.toml and handler.toml.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where to write the zip; default `<name>-<version>.zip` in the current directory (the
    /// manifest's name, the crate's version).
    #[arg(long)]
    output: Option<PathBuf>,
}

pub async fn run(command: BuildCommand) -> anyhow::Result<()> {
    // Cargo and the component compiler block for a long time; keep them off the async workers.
    let summary = tokio::task::spawn_blocking(move || build(&command)).await??;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// `cargo` as the caller runs it: the one that started us (`CARGO`, set by cargo itself) or the
/// one on the path.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn build(command: &BuildCommand) -> anyhow::Result<Value> {
    let dir = &command.dir;
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    // The manifest is checked before the (slow) build, so a typo fails at once.
    let manifest =
        Manifest::parse(&text).map_err(|e| anyhow!("{}: {e}", manifest_path.display()))?;
    check_component_path(&manifest.component)?;
    check_target_installed(dir)?;
    let package = cargo_package(dir)?;

    eprintln!(
        "building {} {} for {TARGET} (cargo build --release)",
        package.name, package.version
    );
    let wasm = cargo_build(dir, &package.manifest_path)?;
    let component =
        std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;

    let zip = zip_package(&text, &manifest.component, &component)?;
    eprintln!("validating the package as the server does");
    let validator = Validator::new()?;
    mh_package::validate_package(&zip, &Limits::default(), &validator)?;

    let output = command.output.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}-{}.zip",
            file_name_safe(&manifest.name),
            package.version
        ))
    });
    std::fs::write(&output, &zip).with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!("wrote {} ({} bytes)", output.display(), zip.len());
    Ok(json!({
        "package": output,
        "name": manifest.name,
        "version": package.version,
        "component": manifest.component,
        "componentSource": wasm,
        "size": zip.len(),
    }))
}

/// The component is written under this name in the zip; the server refuses names that could
/// escape a directory, and so do we, before building.
fn check_component_path(path: &str) -> anyhow::Result<()> {
    let normal = Path::new(path)
        .components()
        .all(|part| matches!(part, Component::Normal(_)));
    if !normal || path.contains('\\') {
        bail!("the manifest's component {path:?} must be a relative path inside the package");
    }
    Ok(())
}

/// `average-in-period` stays as it is; characters a file name should not hold become `-`.
fn file_name_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<CargoPackage>,
}

#[derive(Deserialize)]
struct CargoPackage {
    name: String,
    version: String,
    manifest_path: PathBuf,
}

/// The crate in `dir`, as cargo sees it (the version may be inherited from a workspace).
fn cargo_package(dir: &Path) -> anyhow::Result<CargoPackage> {
    let cargo_toml = dir.join("Cargo.toml");
    if !cargo_toml.is_file() {
        bail!("{} is not a crate: it has no Cargo.toml", dir.display());
    }
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .arg("--manifest-path")
        .arg(&cargo_toml)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo: is Rust installed (https://rustup.rs)?")?;
    if !output.status.success() {
        bail!("cargo metadata failed for {}", cargo_toml.display());
    }
    let metadata: Metadata =
        serde_json::from_slice(&output.stdout).context("cargo metadata printed unexpected JSON")?;
    let wanted = cargo_toml
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", cargo_toml.display()))?;
    metadata
        .packages
        .into_iter()
        // Compared canonically: cargo may spell the path through a symbolic link.
        .find(|package| {
            package
                .manifest_path
                .canonicalize()
                .is_ok_and(|path| path == wanted)
        })
        .ok_or_else(|| anyhow!("cargo does not list a package for {}", cargo_toml.display()))
}

/// rustup installs each target's standard library in its own directory; without it, cargo fails
/// with a wall of "can't find crate for `core`" errors, so say what to do instead.
fn check_target_installed(dir: &Path) -> anyhow::Result<()> {
    // Run from `dir` so that a rust-toolchain file there picks the toolchain cargo will use.
    let output = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "target-libdir", "--target", TARGET])
        .current_dir(dir)
        .output()
        .context("cannot run rustc: is Rust installed (https://rustup.rs)?")?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let installed = output.status.success()
        && std::fs::read_dir(&libdir).is_ok_and(|mut entries| entries.next().is_some());
    if !installed {
        bail!("the {TARGET} target is not installed: run rustup target add {TARGET}");
    }
    Ok(())
}

/// Runs the build with cargo's progress on our stderr and returns the `.wasm` it produced for
/// the crate (its cdylib), read from cargo's machine-readable artifact messages.
fn cargo_build(dir: &Path, manifest_path: &Path) -> anyhow::Result<PathBuf> {
    let mut child = cargo()
        .args(["build", "--release", "--target", TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run cargo: is Rust installed (https://rustup.rs)?")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("cargo's output is not readable"))?;
    let mut found = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read cargo's output")?;
        if let Some(path) = wasm_artifact(&line, manifest_path) {
            found = Some(path);
        }
    }
    let status = child.wait().context("cargo did not finish")?;
    if !status.success() {
        bail!(
            "cargo build --release --target {TARGET} failed in {}",
            dir.display()
        );
    }
    found.ok_or_else(|| {
        anyhow!(
            "the build produced no .wasm: the crate needs `crate-type = [\"cdylib\"]` under [lib]"
        )
    })
}

#[derive(Deserialize)]
struct Artifact {
    reason: String,
    #[serde(default)]
    manifest_path: PathBuf,
    #[serde(default)]
    filenames: Vec<PathBuf>,
}

/// The `.wasm` file in a `compiler-artifact` message of the crate at `manifest_path`.
fn wasm_artifact(line: &str, manifest_path: &Path) -> Option<PathBuf> {
    let artifact: Artifact = serde_json::from_str(line).ok()?;
    if artifact.reason != "compiler-artifact" || artifact.manifest_path != manifest_path {
        return None;
    }
    artifact
        .filenames
        .into_iter()
        .find(|file| file.extension().is_some_and(|ext| ext == "wasm"))
}

/// The package: the manifest exactly as written and the component under the name it gives.
fn zip_package(manifest: &str, component_name: &str, component: &[u8]) -> anyhow::Result<Vec<u8>> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    writer.start_file(MANIFEST_FILE, options)?;
    writer.write_all(manifest.as_bytes())?;
    writer.start_file(component_name, options)?;
    writer.write_all(component)?;
    Ok(writer.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_paths_stay_inside_the_package() {
        assert!(check_component_path("handler.wasm").is_ok());
        assert!(check_component_path("bin/handler.wasm").is_ok());
        for bad in [
            "../handler.wasm",
            "/handler.wasm",
            "./handler.wasm",
            "a\\..\\b.wasm",
        ] {
            assert!(check_component_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn artifacts_are_picked_by_crate_and_extension() {
        let manifest = Path::new("/src/filter/Cargo.toml");
        let line = json!({
            "reason": "compiler-artifact",
            "manifest_path": "/src/filter/Cargo.toml",
            "filenames": ["/t/release/libfilter.rlib", "/t/release/filter.wasm"],
        })
        .to_string();
        assert_eq!(
            wasm_artifact(&line, manifest),
            Some(PathBuf::from("/t/release/filter.wasm"))
        );
        assert_eq!(
            wasm_artifact(&line, Path::new("/src/other/Cargo.toml")),
            None
        );
        assert_eq!(
            wasm_artifact("{\"reason\":\"build-finished\"}", manifest),
            None
        );
        assert_eq!(wasm_artifact("not json", manifest), None);
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name_safe("average-in-period"), "average-in-period");
        assert_eq!(file_name_safe("a b/c"), "a-b-c");
    }
}
