//! The example handlers in `examples/handlers/`: `mh package build` turns each into a package the
//! server validates and stores, and their own unit tests pass. Needs the wasm32-wasip2 target
//! (`rustup target add wasm32-wasip2`).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{build_example, examples_target, mh, workspace, Server};
use serde_json::Value;

const EXAMPLES: [&str; 2] = ["average-in-period", "filter"];

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

struct Built {
    name: &'static str,
    zip: Vec<u8>,
    summary: Value,
}

/// Builds both examples with `mh package build`, once per test process.
fn packages() -> &'static [Built] {
    static BUILT: OnceLock<Vec<Built>> = OnceLock::new();
    BUILT.get_or_init(|| {
        // Each process writes its own zips: test processes may run side by side.
        let out = tempfile::tempdir().unwrap();
        EXAMPLES
            .iter()
            .map(|&name| {
                let zip = out.path().join(format!("{name}.zip"));
                let summary = build_example(name, &zip);
                Built {
                    name,
                    zip: std::fs::read(&zip).unwrap(),
                    summary,
                }
            })
            .collect()
    })
}

#[test]
fn examples_build_into_valid_packages() {
    for built in packages() {
        let package = mh_package::validate_package(
            &built.zip,
            &mh_package::Limits::default(),
            &mh_package::Validator::new().unwrap(),
        )
        .unwrap();
        assert_eq!(package.manifest.name, built.name);
        assert_eq!(package.manifest.component, "handler.wasm");
        assert_eq!(built.summary["name"], built.name);
        assert_eq!(built.summary["version"], "1.0.0");
        assert_eq!(built.summary["size"], built.zip.len());
        // The component is the release build of the crate, not a stale copy.
        let source = built.summary["componentSource"].as_str().unwrap();
        assert!(source.contains("wasm32-wasip2/release"), "{source}");
        assert_eq!(std::fs::read(source).unwrap(), package.component);
    }
    let average = mh_package::read_package(&packages()[0].zip, &Default::default()).unwrap();
    let fields: Vec<_> = average
        .manifest
        .configuration
        .iter()
        .map(|field| (field.name.as_str(), field.field_type.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("MeasurementType", "string"),
            ("DurationInSeconds", "number"),
            ("OutputSubject", "string")
        ]
    );
}

#[tokio::test]
async fn example_packages_upload_and_are_validated_by_the_server() {
    let packages = packages();
    let config = tempfile::tempdir().unwrap();
    let unused = config.path().join("credentials.toml");
    for (flags, status) in [
        (&[][..], "Pending"),
        (&["--review", "auto"][..], "Accepted"),
    ] {
        let server = Server::start(flags);
        let dev = server.create_account("dev", &[]);
        let bearer = server.bearer(&dev).await;
        for built in packages {
            let id = server.create_definition(&bearer, built.name).await;
            let zip = config.path().join(format!("{}.zip", built.name));
            std::fs::write(&zip, &built.zip).unwrap();
            let pushed = stdout_json(&server.mh_client(
                &dev,
                &unused,
                &["package", "push", &id, "1.0.0", zip.to_str().unwrap()],
            ));
            assert_eq!(pushed["status"], status, "{pushed}");
            assert_eq!(pushed["name"], built.name, "{pushed}");
        }
    }
}

#[test]
fn build_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let fails = |args: &[&std::ffi::OsStr], rustc: Option<&Path>| {
        let mut command = mh();
        command.args(["package", "build"]).args(args);
        if let Some(rustc) = rustc {
            command.env("RUSTC", rustc);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let message = fails(&[dir.path().as_os_str()], None);
    assert!(message.contains("handler.toml"), "{message}");

    std::fs::write(
        dir.path().join("handler.toml"),
        std::fs::read(workspace().join("examples/handlers/filter/handler.toml")).unwrap(),
    )
    .unwrap();
    // A rustc whose wasm32-wasip2 library directory does not exist, as without the target.
    let rustc = dir.path().join("rustc");
    std::fs::write(&rustc, "#!/bin/sh\necho /nonexistent/wasm32-wasip2/lib\n").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&rustc)
        .status()
        .unwrap();
    let message = fails(&[dir.path().as_os_str()], Some(&rustc));
    assert!(
        message.contains("run rustup target add wasm32-wasip2"),
        "{message}"
    );
    let message = fails(&[dir.path().as_os_str()], None);
    assert!(message.contains("has no Cargo.toml"), "{message}");
}

/// The examples' own unit tests (the averaging window, the filter's matching) run on the host.
#[test]
fn example_unit_tests_pass() {
    // --release shares the proc macros already built for the wasm builds.
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["test", "--release", "--manifest-path"])
        .arg(workspace().join("examples/handlers/Cargo.toml"))
        .arg("--target-dir")
        .arg(examples_target())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
