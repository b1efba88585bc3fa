//! Issue 3 over real HTTP: handler definitions, package uploads and every rule they are checked
//! against, reviews, activation, and the client commands a build server uses.

mod common;

use std::io::{Cursor, Write};
use std::path::Path;
use std::process::Output;

use common::{assert_error, assert_json_error, mh, zip_of, Answer, Credentials, Server};
use serde_json::{json, Value};
use wit_parser::{LiftLowerAbi, ManglingAndAbi};
use zip::write::SimpleFileOptions;
use zip::ZipWriter;

const MANIFEST: &str = r#"
name = "average-in-period"
description = "Averages a measurement over a window"
runtime = "wasm-component"
runtime_version = "1.0.0"
component = "handler.wasm"
output_subjects = ["Average"]

[[configuration]]
name = "MeasurementType"
type = "string"
required = true
description = "Which measurements to average"

[[configuration]]
name = "DurationInSeconds"
type = "integer"
default = 60

[[configuration]]
name = "OutputSubject"
type = "string"
output_subject = true
default = "Average"
"#;

/// A real component of the handler world (or of `wit`, a variant of it), built from WIT: a core
/// module with the world's shape, wrapped by the component encoder.
fn component_for(wit: &str) -> Vec<u8> {
    common::component(wit, |resolve, world| {
        wit_component::dummy_module(resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync))
    })
}

fn handler_component() -> Vec<u8> {
    component_for(mh_package::HANDLER_WIT)
}

fn valid_package() -> Vec<u8> {
    zip_of(&[
        ("handler.toml", MANIFEST.as_bytes()),
        ("handler.wasm", &handler_component()),
    ])
}

async fn upload(
    server: &Server,
    bearer: &str,
    definition: &str,
    version: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = server
        .http
        .post(server.url(&format!(
            "/handlers/definitions/{definition}/{version}/package"
        )))
        .header("Authorization", bearer)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn push(
    server: &Server,
    bearer: &str,
    definition: &str,
    version: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    upload(server, bearer, definition, version, "application/zip", body).await
}

/// Files under the blob store, whatever their address.
fn blob_count(data_dir: &Path) -> usize {
    let root = data_dir.join("blobs").join("sha256");
    let Ok(shards) = std::fs::read_dir(root) else {
        return 0;
    };
    shards
        .map(|shard| std::fs::read_dir(shard.unwrap().path()).unwrap().count())
        .sum()
}

/// Runs a client command of `mh` as `credentials`, with the environment a CI job would set.
fn mh_client(server: &Server, credentials: &Credentials, config: &Path, args: &[&str]) -> Output {
    mh().args(args)
        .env("MH_CLIENT_CONFIG", config)
        .env("MH_API_URL", &server.url)
        .env("MH_CLIENT_ID", &credentials.client_id)
        .env("MH_CLIENT_SECRET", &credentials.client_secret)
        .output()
        .unwrap()
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "mh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn create_push_review_activate_through_the_cli() {
    let server = Server::start(&[]);
    let dev = server.create_account("dev", &[]);
    let reviewer = server.create_account("reviewer", &["--reviewer"]);
    let outsider = server.create_account("outsider", &[]);
    let dir = tempfile::tempdir().unwrap();

    // `mh login` stores the credentials privately; later commands need nothing else.
    let config = dir.path().join("config").join("credentials.toml");
    let login = mh()
        .args(["login", "--url", &server.url, "--client-id", &dev.client_id])
        .args(["--client-secret", &dev.client_secret])
        .env("MH_CLIENT_CONFIG", &config)
        .output()
        .unwrap();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let as_dev = |args: &[&str]| {
        mh().args(args)
            .env("MH_CLIENT_CONFIG", &config)
            .env_remove("MH_API_URL")
            .env_remove("MH_CLIENT_ID")
            .env_remove("MH_CLIENT_SECRET")
            .output()
            .unwrap()
    };

    let created = stdout_json(&as_dev(&[
        "definitions",
        "create",
        "average-in-period",
        "--description",
        "Averages a measurement",
    ]));
    let id = created["identifier"].as_str().unwrap().to_string();
    assert_eq!(created["versions"], json!([]));
    assert_eq!(created["activeVersion"], Value::Null);

    // A directory is zipped on the fly.
    let package_dir = dir.path().join("package");
    std::fs::create_dir(&package_dir).unwrap();
    std::fs::write(package_dir.join("handler.toml"), MANIFEST).unwrap();
    std::fs::write(package_dir.join("handler.wasm"), handler_component()).unwrap();
    let pushed = as_dev(&[
        "package",
        "push",
        &id,
        "1.0.0.0",
        package_dir.to_str().unwrap(),
    ]);
    let version = stdout_json(&pushed);
    assert_eq!(version["status"], "Pending");
    assert!(String::from_utf8_lossy(&pushed.stderr).contains("uploading"));

    // A build must fail visibly when it uploads a version twice.
    let again = as_dev(&["package", "push", &id, "1.0", package_dir.to_str().unwrap()]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("error: version 1.0 was already uploaded")
            && stderr.contains("(409 version_exists)"),
        "{stderr}"
    );

    // A zip file works as well, and a second reviewer-visible version appears.
    let zip_path = dir.path().join("package.zip");
    std::fs::write(&zip_path, valid_package()).unwrap();
    stdout_json(&as_dev(&[
        "package",
        "push",
        &id,
        "1.1",
        zip_path.to_str().unwrap(),
    ]));

    // Activation waits for a review.
    let early = as_dev(&["definitions", "activate", &id, "1.0.0.0"]);
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("(409 version_not_accepted)"));

    // The reviewer works from the environment alone, as a CI job would.
    let unused_config = dir.path().join("none.toml");
    let pending = stdout_json(&mh_client(
        &server,
        &reviewer,
        &unused_config,
        &["review", "list"],
    ));
    let pending: Vec<&str> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(pending, ["1.0.0.0", "1.1"], "oldest first");
    let accepted = stdout_json(&mh_client(
        &server,
        &reviewer,
        &unused_config,
        &[
            "review",
            "accept",
            &id,
            "1.0.0.0",
            "--comment",
            "looks good",
        ],
    ));
    assert_eq!(accepted["status"], "Accepted");
    assert_eq!(accepted["review"]["comment"], "looks good");
    let rejected = stdout_json(&mh_client(
        &server,
        &reviewer,
        &unused_config,
        &["review", "reject", &id, "1.1", "--comment", "no"],
    ));
    assert_eq!(rejected["status"], "Rejected");
    // Decisions are final.
    let twice = mh_client(
        &server,
        &reviewer,
        &unused_config,
        &["review", "accept", &id, "1.1"],
    );
    assert!(String::from_utf8_lossy(&twice.stderr).contains(
        "version 1.1 is already Rejected; review decisions are final (409 already_reviewed)"
    ));
    // A non-reviewer cannot review.
    let denied = mh_client(&server, &outsider, &unused_config, &["review", "list"]);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr)
        .contains("only reviewer accounts can review handler versions (403 forbidden)"));

    let rejected_activation = as_dev(&["definitions", "activate", &id, "1.1"]);
    assert!(String::from_utf8_lossy(&rejected_activation.stderr)
        .contains("version 1.1 is Rejected; only Accepted versions can be activated (409 version_not_accepted)"));
    let activated = stdout_json(&as_dev(&["definitions", "activate", &id, "1.0.0.0"]));
    assert_eq!(activated["activeVersion"], "1.0.0.0");

    // The listing: one entry per version, in the original platform's shape.
    let listing = stdout_json(&as_dev(&["definitions", "list"]));
    let entries = listing.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let entry = &entries[0];
    for field in [
        "identifier",
        "name",
        "description",
        "version",
        "runtime",
        "runtimeVersion",
        "owner",
        "package",
        "status",
        "configuration",
    ] {
        assert!(
            entry.get(field).is_some(),
            "listing entry lacks {field}: {entry}"
        );
    }
    assert_eq!(entry["identifier"], id.as_str());
    assert_eq!(entry["name"], "average-in-period");
    assert_eq!(entry["description"], "Averages a measurement");
    assert_eq!(entry["version"], "1.0.0.0");
    assert_eq!(entry["runtime"], "wasm-component");
    assert_eq!(entry["runtimeVersion"], "1.0.0");
    assert_eq!(entry["status"], "Accepted");
    assert_eq!(entry["active"], true);
    assert_eq!(
        entry["package"],
        format!("/handlers/definitions/{id}/1.0.0.0/package")
    );
    assert_eq!(
        entry["configuration"][1],
        json!({
            "version": "1.0.0.0",
            "name": "DurationInSeconds",
            "fieldType": "integer",
            "isOutputSubject": false,
            "required": false,
            "default": "60",
            "description": "",
        })
    );
    assert_eq!(entry["configuration"][2]["isOutputSubject"], true);
    assert_eq!(entry["configuration"][0]["required"], true);
    assert_eq!(entries[1]["status"], "Rejected");

    // The package can be fetched by its owner and by reviewers, by nobody else.
    let me = server.bearer(&dev).await;
    let owner_me: Value = server.get("/accounts/me", &me).await.1;
    assert_eq!(entry["owner"], owner_me["identifier"]);
    for (who, expected) in [(&dev, 200), (&reviewer, 200), (&outsider, 404)] {
        let bearer = server.bearer(who).await;
        let response = server
            .http
            .get(server.url(&format!("/handlers/definitions/{id}/1.0.0.0/package")))
            .header("Authorization", bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{}", who.account);
        if expected == 200 {
            assert_eq!(response.headers()["content-type"], "application/zip");
            let bytes = response.bytes().await.unwrap();
            let package = mh_package::read_package(&bytes, &mh_package::Limits::default()).unwrap();
            assert_eq!(package.component, handler_component());
        }
    }
}

#[tokio::test]
async fn versions_only_go_up_and_are_never_overwritten() {
    let server = Server::start(&[]);
    let dev = server.create_account("dev", &[]);
    let bearer = server.bearer(&dev).await;
    let id = server.create_definition(&bearer, "versions").await;
    let package = valid_package();

    let (status, body) = push(&server, &bearer, &id, "1.0", package.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "Pending");
    assert_eq!(body["version"], "1.0");

    let (status, body) = push(&server, &bearer, &id, "1.0.0.0", package.clone()).await;
    assert_json_error(
        status,
        &body,
        409,
        "version_exists",
        "version 1.0.0.0 was already uploaded",
    );
    let (status, body) = push(&server, &bearer, &id, "0.9", package.clone()).await;
    assert_json_error(
        status,
        &body,
        409,
        "version_not_increasing",
        "current highest version 1.0",
    );

    let (status, body) = push(&server, &bearer, &id, "1.0.0.10", package.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = push(&server, &bearer, &id, "1.0.0.9", package.clone()).await;
    assert_json_error(
        status,
        &body,
        409,
        "version_not_increasing",
        "version 1.0.0.9 is not higher than the current highest version 1.0.0.10",
    );

    for bad in ["abc", "1.2.3.4.5", "1..2", "-1"] {
        let (status, body) = push(&server, &bearer, &id, bad, package.clone()).await;
        assert_json_error(
            status,
            &body,
            400,
            "invalid_version",
            "1 to 4 dot-separated non-negative integers",
        );
    }

    let (status, body) = server
        .get(&format!("/handlers/definitions/{id}/1.0.0.10"), &bearer)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], "1.0.0.10");
    let (status, body) = server
        .get(&format!("/handlers/definitions/{id}/1.0.0.0"), &bearer)
        .await;
    assert_eq!(
        (status, &body["version"]),
        (200, &json!("1.0")),
        "1.0 == 1.0.0.0"
    );
    let (status, body) = server
        .get(&format!("/handlers/definitions/{id}/7.0"), &bearer)
        .await;
    assert_json_error(status, &body, 404, "not_found", "has no version 7.0");

    let (_, definition) = server
        .get(&format!("/handlers/definitions/{id}"), &bearer)
        .await;
    let versions: Vec<&str> = definition["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.0", "1.0.0.10"]);
    // Both versions share one content-addressed blob.
    assert_eq!(blob_count(&server.data_dir), 1);

    // Names are unique per account.
    let (status, body) = server
        .post_json(
            "/handlers/definitions",
            &bearer,
            json!({"name": "versions"}),
        )
        .await;
    assert_json_error(
        status,
        &body,
        409,
        "conflict",
        "a handler definition named \"versions\" already exists",
    );
    let (status, body) = server
        .post_json("/handlers/definitions", &bearer, json!({"name": "  "}))
        .await;
    assert_json_error(status, &body, 400, "invalid_name", "1 to 100 characters");
}

#[tokio::test]
async fn every_bad_upload_is_rejected_with_its_reason_and_leaves_nothing_behind() {
    let server = Server::start(&[
        "--upload-limit",
        "2000000",
        "--package-max-entries",
        "20",
        "--package-max-uncompressed",
        "1048576",
    ]);
    let dev = server.create_account("dev", &[]);
    let bearer = server.bearer(&dev).await;
    let id = server.create_definition(&bearer, "rules").await;
    let component = handler_component();

    let (status, body) = upload(
        &server,
        &bearer,
        &id,
        "1.0",
        "application/json",
        valid_package(),
    )
    .await;
    assert_json_error(
        status,
        &body,
        415,
        "unsupported_media_type",
        "Content-Type: application/zip",
    );

    let oversized = vec![7u8; 2_100_000];
    let (status, body) = push(&server, &bearer, &id, "1.0", oversized).await;
    assert_json_error(
        status,
        &body,
        413,
        "body_too_large",
        "larger than this route accepts",
    );

    let (status, body) = push(
        &server,
        &bearer,
        &id,
        "1.0",
        b"definitely not a zip".to_vec(),
    )
    .await;
    assert_json_error(
        status,
        &body,
        400,
        "invalid_package",
        "not a valid zip archive",
    );

    let traversal = zip_of(&[
        ("handler.toml", MANIFEST.as_bytes()),
        ("../../etc/cron.d/evil", b"x"),
    ]);
    let (status, body) = push(&server, &bearer, &id, "1.0", traversal).await;
    assert_json_error(
        status,
        &body,
        400,
        "invalid_package",
        "zip entry \"../../etc/cron.d/evil\" is not allowed: '..' path components are not allowed",
    );

    let absolute = zip_of(&[("/etc/passwd", b"x")]);
    let (status, body) = push(&server, &bearer, &id, "1.0", absolute).await;
    assert_json_error(
        status,
        &body,
        400,
        "invalid_package",
        "absolute paths are not allowed",
    );

    let symlink = {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .start_file("handler.toml", SimpleFileOptions::default())
            .unwrap();
        writer.write_all(MANIFEST.as_bytes()).unwrap();
        writer
            .add_symlink("handler.wasm", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        writer.finish().unwrap().into_inner()
    };
    let (status, body) = push(&server, &bearer, &id, "1.0", symlink).await;
    assert_json_error(
        status,
        &body,
        400,
        "invalid_package",
        "zip entry \"handler.wasm\" is not allowed: symbolic links are not allowed",
    );

    let names: Vec<String> = (0..25).map(|i| format!("file{i}.txt")).collect();
    let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let (status, body) = push(&server, &bearer, &id, "1.0", zip_of(&many)).await;
    assert_json_error(
        status,
        &body,
        400,
        "invalid_package",
        "more than 20 zip entries",
    );

    // A real zip bomb: 200 MiB of zeros deflate to a few hundred KiB.
    let zeros = vec![0u8; 200 * 1024 * 1024];
    let bomb = zip_of(&[
        ("handler.toml", MANIFEST.as_bytes()),
        ("handler.wasm", &zeros),
    ]);
    drop(zeros);
    assert!(bomb.len() < 1_000_000, "the bomb is {} bytes", bomb.len());
    let (status, body) = push(&server, &bearer, &id, "1.0", bomb.clone()).await;
    assert_json_error(
        status,
        &body,
        400,
        "invalid_package",
        "unpacks to more than 1048576 bytes",
    );
    // The same bomb with headers that lie about its size: only counting inflated bytes finds it.
    let lying = lie_about_sizes(bomb, 1000);
    let (status, body) = push(&server, &bearer, &id, "1.0", lying).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_package", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("unpacks to more than 1048576 bytes")
            || message.contains("larger than its declared uncompressed size"),
        "{message}"
    );

    let (status, body) = push(
        &server,
        &bearer,
        &id,
        "1.0",
        zip_of(&[("handler.wasm", &component)]),
    )
    .await;
    assert_json_error(
        status,
        &body,
        422,
        "invalid_manifest",
        "no handler.toml manifest at its root",
    );

    let bad_manifest = MANIFEST.replace("runtime = \"wasm-component\"", "runtime = \"docker\"");
    let (status, body) = push(
        &server,
        &bearer,
        &id,
        "1.0",
        zip_of(&[
            ("handler.toml", bad_manifest.as_bytes()),
            ("handler.wasm", &component),
        ]),
    )
    .await;
    assert_json_error(
        status,
        &body,
        422,
        "invalid_manifest",
        "handler.toml is invalid: runtime \"docker\" is not supported",
    );

    let (status, body) = push(
        &server,
        &bearer,
        &id,
        "1.0",
        zip_of(&[("handler.toml", MANIFEST.as_bytes())]),
    )
    .await;
    assert_json_error(
        status,
        &body,
        422,
        "invalid_component",
        "the component \"handler.wasm\" named by handler.toml is not in the package",
    );

    let garbage = zip_of(&[
        ("handler.toml", MANIFEST.as_bytes()),
        ("handler.wasm", b"\0asm garbage"),
    ]);
    let (status, body) = push(&server, &bearer, &id, "1.0", garbage).await;
    assert_json_error(
        status,
        &body,
        422,
        "invalid_component",
        "does not compile as a WebAssembly component",
    );

    let without_tick = component_for(
        &mh_package::HANDLER_WIT.replace("export tick: func(now: u64) -> result<_, string>;", ""),
    );
    let (status, body) = push(
        &server,
        &bearer,
        &id,
        "1.0",
        zip_of(&[
            ("handler.toml", MANIFEST.as_bytes()),
            ("handler.wasm", &without_tick),
        ]),
    )
    .await;
    assert_json_error(
        status,
        &body,
        422,
        "invalid_component",
        "does not export \"tick\" of the messagehandler:handler world",
    );

    // Nothing of the rejected uploads was kept: no version, no blob.
    let (_, definition) = server
        .get(&format!("/handlers/definitions/{id}"), &bearer)
        .await;
    assert_eq!(definition["versions"], json!([]));
    assert_eq!(blob_count(&server.data_dir), 0);

    // And the definition still takes a good package as 1.0.
    let (status, body) = push(&server, &bearer, &id, "1.0", valid_package()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(blob_count(&server.data_dir), 1);
}

/// Rewrites the uncompressed size in every local and central header to `size`.
fn lie_about_sizes(mut zip: Vec<u8>, size: u32) -> Vec<u8> {
    let mut at = 0;
    while at + 30 <= zip.len() {
        let signature = u32::from_le_bytes(zip[at..at + 4].try_into().unwrap());
        let offset = match signature {
            0x0403_4b50 => Some(22),
            0x0201_4b50 => Some(24),
            _ => None,
        };
        if let Some(offset) = offset {
            zip[at + offset..at + offset + 4].copy_from_slice(&size.to_le_bytes());
        }
        at += 1;
    }
    zip
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_of_one_version_have_exactly_one_winner() {
    let server = Server::start(&[]);
    let dev = server.create_account("dev", &[]);
    let bearer = server.bearer(&dev).await;
    let id = server.create_definition(&bearer, "race").await;
    let package = valid_package();

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, bearer, body) = (server.http.clone(), bearer.clone(), package.clone());
            let url = server.url(&format!("/handlers/definitions/{id}/2.0/package"));
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .header("Authorization", bearer)
                    .header("Content-Type", "application/zip")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let winners = results.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(winners, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(status, _)| *status != 200) {
        assert_json_error(
            *status,
            body,
            409,
            "version_exists",
            "version 2.0 was already uploaded",
        );
    }
    let (_, definition) = server
        .get(&format!("/handlers/definitions/{id}"), &bearer)
        .await;
    assert_eq!(definition["versions"].as_array().unwrap().len(), 1);
    assert_eq!(blob_count(&server.data_dir), 1);
}

#[tokio::test]
async fn accounts_see_only_their_own_definitions_and_reviews_have_rules() {
    let server = Server::start(&[]);
    let alice = server.create_account("alice", &[]);
    let bob = server.create_account("bob", &[]);
    let reviewer = server.create_account("reviewer", &["--reviewer"]);
    let alice_bearer = server.bearer(&alice).await;
    let bob_bearer = server.bearer(&bob).await;
    let reviewer_bearer = server.bearer(&reviewer).await;
    let id = server.create_definition(&alice_bearer, "private").await;
    let (status, _) = push(&server, &alice_bearer, &id, "1.0", valid_package()).await;
    assert_eq!(status, 200);

    // Bob sees none of it and cannot touch it: 404 everywhere, as if it did not exist.
    let missing = format!("no handler definition {id}");
    let (status, body) = server
        .get(&format!("/handlers/definitions/{id}"), &bob_bearer)
        .await;
    assert_json_error(status, &body, 404, "not_found", &missing);
    let (status, body) = server
        .get(&format!("/handlers/definitions/{id}/1.0"), &bob_bearer)
        .await;
    assert_json_error(status, &body, 404, "not_found", &missing);
    let (status, body) = push(&server, &bob_bearer, &id, "2.0", valid_package()).await;
    assert_json_error(status, &body, 404, "not_found", &missing);
    let (status, body) = server
        .post_json(
            &format!("/handlers/definitions/{id}/activate"),
            &bob_bearer,
            json!({"version": "1.0"}),
        )
        .await;
    assert_json_error(status, &body, 404, "not_found", &missing);
    let (status, body) = server.get("/handlers/definitions", &bob_bearer).await;
    assert_eq!((status, body), (200, json!([])));
    let (status, body) = server
        .get("/handlers/definitions/not-a-uuid", &bob_bearer)
        .await;
    assert_json_error(
        status,
        &body,
        404,
        "not_found",
        "no handler definition not-a-uuid",
    );

    // Only reviewers review.
    let (status, body) = server.get("/reviews", &bob_bearer).await;
    assert_json_error(status, &body, 403, "forbidden", "only reviewer accounts");
    let (status, body) = server
        .post_json(
            &format!("/handlers/definitions/{id}/1.0/review"),
            &bob_bearer,
            json!({"decision": "accept"}),
        )
        .await;
    assert_json_error(status, &body, 403, "forbidden", "only reviewer accounts");

    // A reviewer cannot review their own account's package.
    let own = server.create_definition(&reviewer_bearer, "mine").await;
    let (status, _) = push(&server, &reviewer_bearer, &own, "1.0", valid_package()).await;
    assert_eq!(status, 200);
    let (status, body) = server
        .post_json(
            &format!("/handlers/definitions/{own}/1.0/review"),
            &reviewer_bearer,
            json!({"decision": "accept"}),
        )
        .await;
    assert_json_error(
        status,
        &body,
        403,
        "forbidden",
        "cannot review a package of their own account",
    );

    let (status, body) = server.get("/reviews", &reviewer_bearer).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(body[0]["identifier"], id.as_str());
    let (status, body) = server
        .post_json(
            &format!("/handlers/definitions/{id}/1.0/review"),
            &reviewer_bearer,
            json!({"decision": "maybe"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = server
        .post_json(
            &format!("/handlers/definitions/{id}/1.0/review"),
            &reviewer_bearer,
            json!({"decision": "accept", "comment": "fine"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "Accepted");
    let (_, me) = server.get("/accounts/me", &reviewer_bearer).await;
    assert_eq!(body["review"]["reviewer"], me["identifier"]);
    assert!(body["review"]["reviewedAt"].is_string());
    // Recorded and visible on the version to its owner.
    let (_, version) = server
        .get(&format!("/handlers/definitions/{id}/1.0"), &alice_bearer)
        .await;
    assert_eq!(version["review"]["comment"], "fine");
}

#[tokio::test]
async fn review_auto_accepts_on_upload() {
    let server = Server::start(&["--review", "auto"]);
    let dev = server.create_account("dev", &[]);
    let bearer = server.bearer(&dev).await;
    let id = server.create_definition(&bearer, "auto").await;
    let (status, body) = push(&server, &bearer, &id, "1.0", valid_package()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "Accepted");
    assert_eq!(body["review"]["reviewer"], Value::Null);
    let (status, body) = server
        .post_json(
            &format!("/handlers/definitions/{id}/activate"),
            &bearer,
            json!({"version": "1.0.0"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["activeVersion"], "1.0");
}

/// `PATCH /handlers/{id}` with a JSON body.
async fn patch_definition(server: &Server, bearer: &str, id: &str, body: Value) -> Answer {
    server
        .request(
            "PATCH",
            &format!("/handlers/{id}"),
            &[
                ("Authorization", bearer),
                ("Content-Type", "application/json"),
            ],
            body.to_string(),
        )
        .await
}

#[tokio::test]
async fn only_the_owner_makes_a_definition_public() {
    let server = Server::start(&[]);
    let alice = server.create_account("alice", &[]);
    let bob = server.create_account("bob", &[]);
    let alice_bearer = server.bearer(&alice).await;
    let bob_bearer = server.bearer(&bob).await;

    // Private unless the creator says otherwise.
    let id = server.create_definition(&alice_bearer, "shared").await;
    let (status, body) = server
        .get(&format!("/handlers/definitions/{id}"), &alice_bearer)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["public"], false);
    let (status, body) = server
        .post_json(
            "/handlers/definitions",
            &alice_bearer,
            json!({"name": "open", "public": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["public"], true);

    let answer = patch_definition(&server, &alice_bearer, &id, json!({"public": true})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["identifier"], id.as_str());
    assert_eq!(answer.body["name"], "shared");
    assert_eq!(answer.body["public"], true);
    assert_eq!(answer.body["versions"], json!([]));
    let (_, body) = server
        .get(&format!("/handlers/definitions/{id}"), &alice_bearer)
        .await;
    assert_eq!(body["public"], true);

    // Someone else's definition answers 404 as if it did not exist, body or no body.
    let missing = format!("no handler definition {id}");
    for body in [json!({"public": false}), json!({})] {
        let answer = patch_definition(&server, &bob_bearer, &id, body).await;
        assert_error(&answer, 404, "not_found", &missing);
    }
    let answer =
        patch_definition(&server, &bob_bearer, "not-a-uuid", json!({"public": true})).await;
    assert_error(
        &answer,
        404,
        "not_found",
        "no handler definition not-a-uuid",
    );
    let (_, body) = server
        .get(&format!("/handlers/definitions/{id}"), &alice_bearer)
        .await;
    assert_eq!(body["public"], true, "bob changed nothing");

    // The body must say what to set.
    for body in [
        json!({}),
        json!({"public": null}),
        json!({"description": "other"}),
    ] {
        let answer = patch_definition(&server, &alice_bearer, &id, body).await;
        assert_error(
            &answer,
            400,
            "invalid_body",
            "the body must set \"public\" to true or false",
        );
    }
    let answer = patch_definition(&server, &alice_bearer, &id, json!({"public": "yes"})).await;
    assert_error(&answer, 422, "invalid_body", "expected a boolean");

    let answer = patch_definition(&server, &alice_bearer, &id, json!({"public": false})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["public"], false);
    let (_, body) = server
        .get(&format!("/handlers/definitions/{id}"), &alice_bearer)
        .await;
    assert_eq!(body["public"], false);
}

#[tokio::test]
async fn the_openapi_document_lists_the_handler_routes() {
    let server = Server::start(&[]);
    let response = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    let document: Value = response.json().await.unwrap();
    for path in [
        "/handlers/definitions",
        "/handlers/definitions/{definitionid}",
        "/handlers/definitions/{definitionid}/{version}",
        "/handlers/definitions/{definitionid}/{version}/package",
        "/handlers/definitions/{definitionid}/{version}/review",
        "/handlers/definitions/{definitionid}/activate",
        "/handlers/{definitionid}",
        "/reviews",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path} missing");
    }
}
