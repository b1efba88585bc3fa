//! The scenarios. Each returns one row of the report; a scenario whose figure is a throughput also
//! gets the ratio to the baseline measured earlier in the same run.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use serde::Serialize;

use crate::load::LoadResult;
use crate::process::{generate_load, start_baseline, start_mh, Process, RequestSpec};

/// One line of the report.
#[derive(Debug, Serialize)]
pub struct Row {
    pub scenario: &'static str,
    pub rate: f64,
    pub unit: &'static str,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    /// Server CPU seconds per million requests (or messages).
    pub cpu_s_per_million: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    /// Figure divided by the baseline's (throughputs) — `None` where no baseline applies.
    pub ratio: Option<f64>,
    /// The brief's target for this figure, and whether this run met it.
    pub target: &'static str,
    pub met: Option<bool>,
    /// More of what the scenario measured, printed under the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct Settings {
    pub seconds: f64,
    pub concurrency: usize,
    pub mh: std::path::PathBuf,
    /// Extra flags for every `mh serve` the suite starts (`--serve-arg`).
    pub serve_args: Vec<String>,
}

impl Settings {
    /// Starts `mh serve` with the scenario's flags, then the user's `--serve-arg`s.
    pub fn start_mh(&self, extra: &[&str]) -> anyhow::Result<(Process, Duration)> {
        let mut flags = extra.to_vec();
        flags.extend(self.serve_args.iter().map(String::as_str));
        start_mh(&self.mh, &flags)
    }
}

/// A small telemetry message, the same bytes for every scenario and the baseline.
pub const SMALL_MESSAGE: &[u8] = br#"{"MeasurementType":"Temperature","Amount":21.5,"Unit":"C"}"#;

/// Limits raised so that the benchmark measures the server, not its abuse protection.
pub const UNLIMITED: [&str; 12] = [
    "--authorize-rate",
    "1000000000",
    "--authorize-burst",
    "1000000000",
    "--client-authorize-rate",
    "1000000000",
    "--client-authorize-burst",
    "1000000000",
    "--registration-rate",
    "1000000",
    "--endpoint-registration-rate",
    "1000000",
];

pub fn row_from_load(
    scenario: &'static str,
    unit: &'static str,
    load: &LoadResult,
    messages_per_request: f64,
    server: &Process,
    cpu_before: f64,
) -> anyhow::Result<Row> {
    let handled = (load.requests - load.errors) as f64 * messages_per_request;
    let cpu = server.cpu_seconds()? - cpu_before;
    Ok(Row {
        scenario,
        rate: handled / load.seconds,
        unit,
        p50_ms: Some(load.p50_ms),
        p99_ms: Some(load.p99_ms),
        p999_ms: Some(load.p999_ms),
        cpu_s_per_million: (handled > 0.0).then(|| cpu / handled * 1e6),
        peak_rss_mib: Some(server.memory_mib()?.1),
        ratio: None,
        target: "",
        met: None,
        detail: None,
    })
}

pub fn check_errors(scenario: &str, load: &LoadResult) -> anyhow::Result<()> {
    // A few failures under saturation are reported; a scenario that mostly fails measures nothing.
    anyhow::ensure!(
        load.errors * 10 <= load.requests.max(1),
        "{scenario}: {} of {} requests failed; the figures would be meaningless",
        load.errors,
        load.requests
    );
    Ok(())
}

pub fn baseline(settings: &Settings) -> anyhow::Result<Row> {
    let server = start_baseline()?;
    let cpu_before = server.cpu_seconds()?;
    let spec = RequestSpec {
        method: "POST",
        url: format!("{}/ingest", server.url),
        headers: vec!["Content-Type: application/json".into()],
        body: SMALL_MESSAGE.to_vec(),
    };
    let load = generate_load(&spec, settings.seconds, settings.concurrency, None)?;
    check_errors("baseline", &load)?;
    let mut row = row_from_load(
        "baseline (bare hyper)",
        "req/s",
        &load,
        1.0,
        &server,
        cpu_before,
    )?;
    row.ratio = Some(1.0);
    Ok(row)
}

/// Creates an account on the server's data directory with the real admin CLI.
pub fn create_account(
    settings: &Settings,
    server: &Process,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let data_dir = server.data_dir().context("server has no data directory")?;
    let output = Command::new(&settings.mh)
        .args(["admin", "account", "create", name, "--data-dir"])
        .arg(data_dir)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "mh admin account create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let field = |name: &str| {
        created[name]
            .as_str()
            .map(str::to_string)
            .context("admin output")
    };
    Ok((field("client_id")?, field("client_secret")?))
}

pub fn authorize(settings: &Settings, baseline_rate: Option<f64>) -> anyhow::Result<Row> {
    let (server, _) = settings.start_mh(&UNLIMITED)?;
    let (client_id, client_secret) = create_account(settings, &server, "bench")?;
    let body = serde_json::json!({
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": "http://api.messagehandler.net/",
    });
    let spec = RequestSpec {
        method: "POST",
        url: format!("{}/authorize", server.url),
        headers: vec!["Content-Type: application/json".into()],
        body: serde_json::to_vec(&body)?,
    };
    let cpu_before = server.cpu_seconds()?;
    let load = generate_load(&spec, settings.seconds, settings.concurrency, None)?;
    check_errors("authorize", &load)?;
    let mut row = row_from_load(
        "POST /authorize",
        "tokens/s",
        &load,
        1.0,
        &server,
        cpu_before,
    )?;
    row.ratio = baseline_rate.map(|baseline| row.rate / baseline);
    row.target = ">= 20000 tokens/s";
    row.met = Some(row.rate >= 20_000.0);
    Ok(row)
}

/// Bearer verification in this process, on the same code the server runs.
pub fn bearer_verification(settings: &Settings) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let keys = mh_auth::KeyRing::load_or_create(dir.path())?;
    let revoked = Arc::new(mh_auth::RevocationList::default());
    let service = mh_auth::TokenService::new(
        keys,
        revoked,
        "messagehandler",
        "http://api.messagehandler.net/",
    );
    let token = service.issue(uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), i64::MAX / 2);
    let header = base64::engine::general_purpose::STANDARD.encode(&token);
    let budget = Duration::from_secs_f64(settings.seconds.min(3.0));
    let started = Instant::now();
    let mut count: u64 = 0;
    while started.elapsed() < budget {
        for _ in 0..1000 {
            let decoded =
                mh_auth::decode_bearer(std::hint::black_box(&header)).context("decode")?;
            std::hint::black_box(service.verify(&decoded, 0).is_ok());
        }
        count += 1000;
    }
    let micros = started.elapsed().as_secs_f64() * 1e6 / count as f64;
    Ok(Row {
        scenario: "bearer verification",
        rate: 1e6 / micros,
        unit: "verifies/s",
        p50_ms: Some(micros / 1000.0),
        p99_ms: None,
        p999_ms: None,
        cpu_s_per_million: Some(micros),
        peak_rss_mib: None,
        ratio: None,
        target: "< 5 µs per verify",
        met: Some(micros < 5.0),
        detail: None,
    })
}

/// Time from process start to a healthy `/health` on an empty data directory, and idle memory.
pub fn startup_and_idle(settings: &Settings, runs: usize) -> anyhow::Result<(Row, Row)> {
    let mut startups = Vec::with_capacity(runs);
    let mut idle = 0.0;
    for run in 0..runs {
        let (server, ready) = settings.start_mh(&[])?;
        startups.push(ready.as_secs_f64() * 1000.0);
        if run == 0 {
            std::thread::sleep(Duration::from_secs(1));
            idle = server.memory_mib()?.0;
        }
    }
    startups.sort_by(f64::total_cmp);
    let median = startups[startups.len() / 2];
    let worst = startups[startups.len() - 1];
    let startup = Row {
        scenario: "start to healthy",
        rate: median,
        unit: "ms",
        p50_ms: Some(median),
        p99_ms: Some(worst),
        p999_ms: None,
        cpu_s_per_million: None,
        peak_rss_mib: None,
        ratio: None,
        target: "< 300 ms",
        met: Some(median < 300.0),
        detail: None,
    };
    let memory = Row {
        scenario: "idle RSS",
        rate: idle,
        unit: "MiB",
        p50_ms: None,
        p99_ms: None,
        p999_ms: None,
        cpu_s_per_million: None,
        peak_rss_mib: Some(idle),
        ratio: None,
        target: "< 40 MiB",
        met: Some(idle < 40.0),
        detail: None,
    };
    Ok((startup, memory))
}
