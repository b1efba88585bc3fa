//! Test harness: runs the real `mh` binary on an ephemeral port with a temporary data directory
//! and talks HTTP to it.
#![allow(dead_code)] // Each test file uses a different part of the harness.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

pub const SCOPE: &str = "http://api.messagehandler.net/";

pub fn mh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mh"))
}

/// A running `mh serve`. Killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    extra_args: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
    // Keeps the temporary directory alive as long as the server.
    _dir: Option<Arc<tempfile::TempDir>>,
    pub http: reqwest::Client,
}

/// Credentials as printed by `mh admin account create`.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub account: String,
    pub client_id: String,
    pub client_secret: String,
}

impl Server {
    /// Starts a server on a new temporary data directory with extra `mh serve` flags.
    pub fn start(extra_args: &[&str]) -> Server {
        let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
        let data_dir = dir.path().join("data");
        Self::spawn(
            data_dir,
            extra_args.iter().map(|s| s.to_string()).collect(),
            Some(dir),
        )
    }

    fn spawn(
        data_dir: PathBuf,
        extra_args: Vec<String>,
        dir: Option<Arc<tempfile::TempDir>>,
    ) -> Server {
        let mut child = mh()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--data-dir",
            ])
            .arg(&data_dir)
            .args(&extra_args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mh serve");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    if event["message"] == "listening" {
                        let _ = address_tx
                            .send(event["address"].as_str().unwrap_or_default().to_string());
                    }
                }
                lines.lock().unwrap().push(line);
            }
        });
        let address = match address_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "mh serve did not start; its log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Server {
            child,
            url: format!("http://{address}"),
            data_dir,
            extra_args,
            log,
            _dir: dir,
            http: reqwest::Client::new(),
        }
    }

    /// Kills the server with SIGKILL and starts it again on the same data directory and flags.
    pub fn restart_after_kill(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let data_dir = self.data_dir.clone();
        let args = std::mem::take(&mut self.extra_args);
        let dir = self._dir.take();
        Self::spawn(data_dir, args, dir)
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status success.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Runs `mh admin ARGS --data-dir DIR`, returning its JSON output (panics when it fails).
    pub fn admin(&self, args: &[&str]) -> Value {
        admin(&self.data_dir, args)
    }

    pub fn create_account(&self, name: &str, flags: &[&str]) -> Credentials {
        let mut args = vec!["account", "create", name];
        args.extend_from_slice(flags);
        let out = self.admin(&args);
        Credentials {
            account: out["account"].as_str().unwrap().to_string(),
            client_id: out["client_id"].as_str().unwrap().to_string(),
            client_secret: out["client_secret"].as_str().unwrap().to_string(),
        }
    }

    /// `POST /authorize` with a JSON body; returns status and body.
    pub async fn authorize_json(&self, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
        let response = self
            .http
            .post(self.url("/authorize"))
            .json(&body)
            .send()
            .await
            .expect("POST /authorize");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.json().await.expect("JSON body"), headers)
    }

    /// A fresh access token for the credentials (client credentials grant).
    pub async fn token(&self, credentials: &Credentials) -> String {
        let (status, body, _) = self
            .authorize_json(json!({
                "grant_type": "client_credentials",
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
                "scope": SCOPE,
            }))
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// A bearer header value in the seed's form: base64 of the access token.
    pub async fn bearer(&self, credentials: &Credentials) -> String {
        bearer(&self.token(credentials).await)
    }

    /// GET with a bearer value; returns status and JSON body (Null when the body is not JSON).
    pub async fn get(&self, path: &str, bearer: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .header("Authorization", bearer)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST a JSON body with a bearer value; returns status and JSON body.
    pub async fn post_json(&self, path: &str, bearer: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("Authorization", bearer)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn bearer(access_token: &str) -> String {
    format!(
        "Bearer {}",
        base64::engine::general_purpose::STANDARD.encode(access_token)
    )
}

/// Runs `mh admin ARGS --data-dir DIR` and parses its JSON output.
pub fn admin(data_dir: &Path, args: &[&str]) -> Value {
    let output = mh()
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run mh admin");
    assert!(
        output.status.success(),
        "mh admin {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("mh admin prints JSON")
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// An HTTP answer with its status, headers and JSON body (Null when the body is not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Server {
    /// Any request: method, path, headers, body; for routes that the helpers above do not cover.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method.parse().expect("HTTP method"), self.url(path))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }
}

/// Asserts an error answer: status, `error` code and a part of the `message`.
pub fn assert_error(answer: &Answer, status: u16, code: &str, message_part: &str) {
    assert_json_error(answer.status, &answer.body, status, code, message_part);
}

/// [`assert_error`] for a status and body taken apart.
pub fn assert_json_error(
    status: u16,
    body: &Value,
    expected_status: u16,
    code: &str,
    message_part: &str,
) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(message_part),
        "message {message:?} lacks {message_part:?}"
    );
}

impl Server {
    /// Creates a handler definition called `name` and returns its identifier.
    pub async fn create_definition(&self, bearer: &str, name: &str) -> String {
        let (status, body) = self
            .post_json(
                "/handlers/definitions",
                bearer,
                json!({"name": name, "description": "test handler"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["identifier"].as_str().unwrap().to_string()
    }

    /// Runs a client command of `mh` against this server as `credentials`, configured through the
    /// environment alone, as a CI job would be (`config` names a credentials file that is unused).
    pub fn mh_client(
        &self,
        credentials: &Credentials,
        config: &Path,
        args: &[&str],
    ) -> std::process::Output {
        mh().args(args)
            .env("MH_CLIENT_CONFIG", config)
            .env("MH_API_URL", &self.url)
            .env("MH_CLIENT_ID", &credentials.client_id)
            .env("MH_CLIENT_SECRET", &credentials.client_secret)
            .output()
            .expect("run mh")
    }
}

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One target directory for every build of the example handlers, under the workspace's, so that
/// a test run after the first only relinks what changed.
pub fn examples_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("examples-wasm")
}

/// Builds `examples/handlers/<name>` with `mh package build` into `zip`; answers the command's
/// JSON summary. Needs the wasm32-wasip2 target.
pub fn build_example(name: &str, zip: &Path) -> Value {
    let output = mh()
        .args(["package", "build"])
        .arg(workspace().join("examples/handlers").join(name))
        .arg("--output")
        .arg(zip)
        .env("CARGO_TARGET_DIR", examples_target())
        .output()
        .expect("run mh package build");
    assert!(
        output.status.success(),
        "mh package build {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("summary JSON")
}

/// A component of the single world in `wit`, from the core module `module` makes for it.
pub fn component(
    wit: &str,
    module: impl FnOnce(&wit_parser::Resolve, wit_parser::WorldId) -> Vec<u8>,
) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("handler.wit", wit).expect("WIT");
    let world = resolve.select_world(&[package], None).expect("one world");
    let mut module = module(&resolve, world);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("component metadata");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("component")
}

/// A zip file of `entries` (name, content), deflated.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).expect("zip entry");
        writer.write_all(content).expect("zip write");
    }
    writer.finish().expect("zip finish").into_inner()
}

/// A package of the fabric's test guest (`crates/fabric/tests/guest.wat`: per message, `t` traps,
/// `l` loops, `m` hogs memory, `o` floods outputs, `e` fails; anything else is echoed to the
/// subject `echo`), named `name`.
pub fn guest_package(name: &str) -> Vec<u8> {
    let component = component(include_str!("../../../../wit/handler.wit"), |_, _| {
        wat::parse_str(include_str!("../../../fabric/tests/guest.wat")).expect("WAT")
    });
    let manifest = format!(
        "name = \"{name}\"\nruntime = \"wasm-component\"\nruntime_version = \"1.0.0\"\ncomponent = \"handler.wasm\"\noutput_subjects = [\"echo\"]\n"
    );
    zip_of(&[
        ("handler.toml", manifest.as_bytes()),
        ("handler.wasm", &component),
    ])
}
