//! The processes a benchmark drives: `mh serve` on a temporary data directory, the baseline
//! server, and load generators; plus what the kernel says about their CPU time and memory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::load::LoadResult;

/// A child process killed when dropped.
pub struct Process {
    child: Child,
    pub url: String,
    _data_dir: Option<tempfile::TempDir>,
}

impl Process {
    /// Data directory of an `mh serve` process.
    pub fn data_dir(&self) -> Option<&Path> {
        self._data_dir.as_ref().map(|d| d.path())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds the process has used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .context("reading /proc/PID/stat (Linux only)")?;
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let after_name = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| -> anyhow::Result<f64> {
            Ok(fields.get(i).context("short /proc stat")?.parse::<f64>()?)
        };
        // SAFETY: sysconf only reads a system constant.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Ok((ticks(11)? + ticks(12)?) / per_second.max(1.0))
    }

    /// (current RSS, peak RSS) in MiB.
    pub fn memory_mib(&self) -> anyhow::Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .context("reading /proc/PID/status (Linux only)")?;
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `mh` binary: next to this one (both are built into the same target directory) unless given.
pub fn mh_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let me = std::env::current_exe()?;
    let sibling = me.with_file_name("mh");
    if sibling.exists() {
        Ok(sibling)
    } else {
        bail!("cannot find the mh binary next to {}; build it (cargo build --release --bin mh) or pass --mh", me.display())
    }
}

/// Starts `mh serve` on a new temporary data directory and a free loopback port.
pub fn start_mh(mh: &Path, extra: &[&str]) -> anyhow::Result<(Process, Duration)> {
    let data_dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut child = Command::new(mh)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(data_dir.path())
        .args(extra)
        .env("RUST_LOG", "warn,mh_server=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", mh.display()))?;
    let stderr = child.stderr.take().context("stderr is piped")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if event["message"] == "listening" {
                let _ = tx.send(event["address"].as_str().unwrap_or_default().to_string());
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(30))
        .context("mh serve did not report its address")?;
    let process = Process {
        child,
        url: format!("http://{address}"),
        _data_dir: Some(data_dir),
    };
    let ready = wait_healthy(&process.url, Duration::from_secs(30))?;
    Ok((process, started.elapsed().max(ready)))
}

/// Polls `GET /health` until it answers 200; returns how long that took from now.
pub fn wait_healthy(url: &str, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let address = url.trim_start_matches("http://");
    while started.elapsed() < limit {
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            use std::io::{Read, Write};
            let request =
                format!("GET /health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut answer).is_ok()
                && answer.starts_with("HTTP/1.1 200")
            {
                return Ok(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    bail!("{url} did not become healthy within {limit:?}")
}

/// Starts the baseline server (this binary, `baseline-server`).
pub fn start_baseline() -> anyhow::Result<Process> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["baseline-server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout is piped")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let process = Process {
        child,
        url: format!("http://{}", line.trim()),
        _data_dir: None,
    };
    wait_healthy(&process.url, Duration::from_secs(10))?;
    Ok(process)
}

/// One request shape for the load generator.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<String>,
    pub body: Vec<u8>,
}

/// Runs the load generator process against `spec` and returns what it measured.
pub fn generate_load(
    spec: &RequestSpec,
    seconds: f64,
    concurrency: usize,
    rate: Option<f64>,
) -> anyhow::Result<LoadResult> {
    let body_file = tempfile::NamedTempFile::new()?;
    std::fs::write(body_file.path(), &spec.body)?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["load", "--url", &spec.url, "--method", spec.method])
        .arg("--body-file")
        .arg(body_file.path())
        .args([
            "--seconds",
            &seconds.to_string(),
            "--concurrency",
            &concurrency.to_string(),
        ]);
    for header in &spec.headers {
        command.args(["--header", header]);
    }
    if let Some(rate) = rate {
        command.args(["--rate", &rate.to_string()]);
    }
    let output = command.stderr(Stdio::inherit()).output()?;
    if !output.status.success() {
        bail!("the load generator failed");
    }
    serde_json::from_slice(&output.stdout).context("load generator output")
}
