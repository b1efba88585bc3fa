//! The fabric scenarios: messages ingested into a channel, processed by a deployed handler (the
//! `filter` example as a WebAssembly component, or the built-in *Forward to endpoint*) and put
//! into an endpoint's inbox, where consumers receive and complete them. The load comes from the
//! pipeline process (`pipeline.rs`): first as fast as possible within a bounded window (the
//! sustained end-to-end rate), then at half that rate with fixed send times (the latencies).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hyper::Method;
use serde_json::{json, Value};

use crate::gateway::{set_up_with, Gateway};
use crate::http::Http;
use crate::pipeline::PipelineResult;
use crate::progress;
use crate::scenarios::{Row, Settings};

/// The handler a fabric scenario places in its channel.
pub enum Handler {
    /// The `filter` example's package (a zip).
    Filter(Vec<u8>),
    /// The built-in *Forward to endpoint* with a CEL trigger.
    Forward,
}

/// Messages per ingest request when the rate is the figure, and when the latency is.
const MAX_BATCH: usize = 1000;
const LATENCY_BATCH: usize = 100;
/// Most messages on their way from ingest to the inbox in the as-fast-as-possible run.
const WINDOW: usize = 50_000;
/// Every tenth message has `"kind":"drop"`: the handler must keep it out of the inbox.
const DROP_EVERY: u64 = 10;
/// The brief's targets.
const TARGET_RATE: f64 = 200_000.0;
const TARGET_P99_MS: f64 = 20.0;

/// The workspace this binary was built from (the filter example lives there).
fn workspace() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    path.canonicalize().unwrap_or(path)
}

/// The filter example's package: the file `explicit` names, else built with `mh package build`
/// into `<target>/examples-wasm` as the tests build it (cargo makes the second build a no-op).
/// `None`, after a printed note, when it cannot be built (no wasm32-wasip2 target, no sources).
pub fn filter_package(
    settings: &Settings,
    explicit: Option<&Path>,
) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(path) = explicit {
        let zip = std::fs::read(path)
            .with_context(|| format!("reading --filter-package {}", path.display()))?;
        return Ok(Some(zip));
    }
    let source = workspace().join("examples/handlers/filter");
    if !source.join("handler.toml").exists() {
        progress(&format!(
            "NOTE: skipping the WASM filter scenario: no filter example at {} (pass --filter-package ZIP)",
            source.display()
        ));
        return Ok(None);
    }
    // Absolute: cargo runs in the example's directory, where a relative path would mean another.
    let target = match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_relative() => std::env::current_dir()?.join(dir),
        Some(dir) => dir,
        None => workspace().join("target"),
    }
    .join("examples-wasm");
    progress(&format!(
        "fabric: building the filter example (mh package build, cached in {})",
        target.display()
    ));
    let out = tempfile::tempdir()?;
    let zip = out.path().join("filter.zip");
    let output = Command::new(&settings.mh)
        .args(["package", "build"])
        .arg(&source)
        .arg("--output")
        .arg(&zip)
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} package build", settings.mh.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        progress(&format!(
            "NOTE: skipping the WASM filter scenario: the filter example did not build (is the wasm32-wasip2 target installed? rustup target add wasm32-wasip2): {}",
            tail.join(" | ")
        ));
        return Ok(None);
    }
    Ok(Some(std::fs::read(&zip)?))
}

/// Sets a server up with the handler deployed, runs both loads and answers the row.
/// `reference_rate`: the batch-ingest rate of this run, which the end-to-end rate is compared with.
pub fn scenario(
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    handler: &Handler,
    reference_rate: Option<f64>,
) -> anyhow::Result<Row> {
    let (name, label) = match handler {
        Handler::Filter(_) => ("fabric: ingest -> WASM filter -> inbox", "WASM filter"),
        Handler::Forward => (
            "fabric: ingest -> built-in trigger -> inbox",
            "Forward to endpoint",
        ),
    };
    progress(&format!(
        "fabric ({label}): setting up a channel with the handler deployed, an endpoint and a device"
    ));
    let gateway = set_up_with(settings, runtime, &["--review", "auto"])?;
    runtime.block_on(deploy(&gateway, handler))?;
    runtime.block_on(prime(&gateway))?;

    let warmup = (settings.seconds * 0.2).min(2.0);
    progress(&format!(
        "fabric ({label}): as fast as possible, batches of {MAX_BATCH}, at most {WINDOW} messages in flight"
    ));
    let cpu_before = gateway.server.cpu_seconds()?;
    let max = pipeline(
        &gateway,
        &[
            ("--batch", MAX_BATCH.to_string()),
            ("--window", WINDOW.to_string()),
            ("--producers", "4".into()),
            ("--seconds", settings.seconds.to_string()),
            ("--warmup", warmup.to_string()),
        ],
    )?;
    let max_cpu = gateway.server.cpu_seconds()? - cpu_before;
    check(label, &max)?;
    progress(&format!(
        "fabric ({label}): sustained {:.0} msg/s received ({:.0}/s ingested), p50 {:.1} ms, p99 {:.1} ms",
        max.received_per_second, max.ingested_per_second, max.p50_ms, max.p99_ms
    ));

    // Half the sustained rate at the inbox, in ingested messages (some are dropped on the way).
    let pass_fraction = 1.0 - 1.0 / DROP_EVERY as f64;
    let half = max.received_per_second / pass_fraction / 2.0;
    progress(&format!(
        "fabric ({label}): fixed rate of {half:.0} msg/s ingested (half), batches of {LATENCY_BATCH}"
    ));
    let cpu_before = gateway.server.cpu_seconds()?;
    let fixed = pipeline(
        &gateway,
        &[
            ("--batch", LATENCY_BATCH.to_string()),
            ("--rate", half.max(1.0).to_string()),
            ("--producers", "16".into()),
            ("--seconds", settings.seconds.to_string()),
            ("--warmup", warmup.to_string()),
        ],
    )?;
    let fixed_cpu = gateway.server.cpu_seconds()? - cpu_before;
    check(label, &fixed)?;

    let complete = max.received >= max.expected && fixed.received >= fixed.expected;
    let clean = complete && max.unexpected + fixed.unexpected == 0;
    let has_latency = fixed.latency_samples > 0;
    let per_million = |cpu: f64, count: u64| (count > 0).then(|| cpu / count as f64 * 1e6);
    let rate = max.received_per_second;
    let p99_met = has_latency && fixed.p99_ms < TARGET_P99_MS;
    let detail = format!(
        "as fast as possible: {:.0} msg/s received, {:.0} msg/s ingested (1 in {DROP_EVERY} dropped by the handler), \
         p50 {:.1} ms, p99 {:.1} ms, server CPU {:.1} s/M received; \
         fixed {:.0} msg/s ingested: {:.0} msg/s received, p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.1} ms \
         ({} samples), server CPU {:.1} s/M received; \
         {:.0} and {:.0} messages per receive; \
         expected/received {}/{} and {}/{}, redelivered {}, dropped messages delivered {}, ingest errors {}",
        max.received_per_second,
        max.ingested_per_second,
        max.p50_ms,
        max.p99_ms,
        per_million(max_cpu, max.received).unwrap_or(f64::NAN),
        fixed.ingested_per_second,
        fixed.received_per_second,
        fixed.p50_ms,
        fixed.p99_ms,
        fixed.p999_ms,
        fixed.max_ms,
        fixed.latency_samples,
        per_million(fixed_cpu, fixed.received).unwrap_or(f64::NAN),
        max.received as f64 / max.receives.max(1) as f64,
        fixed.received as f64 / fixed.receives.max(1) as f64,
        max.expected,
        max.received,
        fixed.expected,
        fixed.received,
        max.redelivered + fixed.redelivered,
        max.unexpected + fixed.unexpected,
        max.ingest_errors + fixed.ingest_errors,
    );
    if !clean {
        progress(&format!(
            "WARNING: fabric ({label}): not every expected message came out exactly as sent: {detail}"
        ));
    }
    Ok(Row {
        scenario: name,
        rate,
        unit: "msg/s",
        p50_ms: has_latency.then_some(fixed.p50_ms),
        p99_ms: has_latency.then_some(fixed.p99_ms),
        p999_ms: has_latency.then_some(fixed.p999_ms),
        cpu_s_per_million: per_million(max_cpu, max.received),
        peak_rss_mib: Some(gateway.server.memory_mib()?.1),
        ratio: reference_rate.map(|reference| rate / reference),
        target: if clean {
            ">= 200000 msg/s, p99 < 20 ms at half"
        } else {
            "MESSAGES LOST OR LEAKED"
        },
        met: Some(clean && rate >= TARGET_RATE && p99_met),
        detail: Some(detail),
    })
}

/// A run that moved nothing measures nothing: that is a broken harness or server.
fn check(label: &str, result: &PipelineResult) -> anyhow::Result<()> {
    anyhow::ensure!(
        result.received > 0,
        "fabric ({label}): the consumers received nothing ({} ingested, {} ingest errors)",
        result.ingested,
        result.ingest_errors
    );
    Ok(())
}

/// Places the handler in the setup's channel (`bench`) and deploys the channel in `local`.
async fn deploy(gateway: &Gateway, handler: &Handler) -> anyhow::Result<()> {
    let http = Http::new(&gateway.server.url);
    let token = &gateway.account_token;
    let endpoint = &gateway.endpoint;
    let request = match handler {
        Handler::Filter(zip) => {
            let definition = http
                .json(
                    Method::POST,
                    "/handlers/definitions",
                    token,
                    &json!({"name": "bench-filter", "description": "the filter example, benchmarked"}),
                )
                .await?;
            let id = definition["identifier"]
                .as_str()
                .context("definition identifier")?
                .to_string();
            let authorization = format!("Bearer {token}");
            let (status, answer) = http
                .call(
                    Method::POST,
                    &format!("/handlers/definitions/{id}/1.0.0/package"),
                    &[
                        ("Authorization", &authorization),
                        ("Content-Type", "application/zip"),
                    ],
                    zip.clone(),
                )
                .await?;
            anyhow::ensure!(
                matches!(status, 200 | 201),
                "package upload answered {status}: {answer}"
            );
            http.json(
                Method::POST,
                &format!("/handlers/definitions/{id}/activate"),
                token,
                &json!({"version": "1.0.0"}),
            )
            .await?;
            json!({
                "definition": id,
                "configuration": {"Field": "kind", "Equals": "pass"},
                "inputSubjects": [""],
                "outputSubjectRoutes": {"Filtered": {"endpoint": endpoint}},
            })
        }
        Handler::Forward => json!({
            "definition": "Forward to endpoint",
            "configuration": {"Trigger": "msg.kind == \"pass\"", "Endpoint": endpoint},
            "inputSubjects": [""],
        }),
    };
    http.json(Method::POST, "/channels/bench/handlers", token, &request)
        .await?;
    http.json(
        Method::POST,
        "/channels/bench/deployments",
        token,
        &json!({"environment": "local"}),
    )
    .await?;
    Ok(())
}

/// Sends one message through and waits for it: the handler runs before the clock starts, and a
/// setup that delivers nothing fails here with the handler's status rather than as a zero.
async fn prime(gateway: &Gateway) -> anyhow::Result<()> {
    let http = Http::new(&gateway.server.url);
    let device = format!("Bearer {}", gateway.device_token);
    let endpoint = &gateway.endpoint;
    let (status, answer) = http
        .call(
            Method::POST,
            &format!("/endpoints/{endpoint}/messages"),
            &[
                ("Authorization", &device),
                ("Content-Type", "application/json"),
            ],
            br#"[{"kind":"drop","n":-2,"t":0},{"kind":"pass","n":-1,"t":0}]"#.to_vec(),
        )
        .await?;
    anyhow::ensure!(status == 200, "ingest answered {status}: {answer}");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let (status, answer) = http
            .call(
                Method::GET,
                &format!("/endpoints/{endpoint}/messages?max=10&wait=1"),
                &[("Authorization", &device)],
                Vec::new(),
            )
            .await?;
        anyhow::ensure!(status == 200, "receive answered {status}: {answer}");
        let deliveries = answer["messages"].as_array().cloned().unwrap_or_default();
        if deliveries.is_empty() {
            continue;
        }
        let tokens: Vec<Value> = deliveries.iter().map(|d| d["lockToken"].clone()).collect();
        let (status, answer) = http
            .call(
                Method::POST,
                &format!("/endpoints/{endpoint}/messages/complete"),
                &[
                    ("Authorization", &device),
                    ("Content-Type", "application/json"),
                ],
                serde_json::to_vec(&json!({ "lockTokens": tokens }))?,
            )
            .await?;
        anyhow::ensure!(status == 200, "complete answered {status}: {answer}");
        let bodies: Vec<&str> = deliveries
            .iter()
            .filter_map(|d| d["message"]["body"].as_str())
            .collect();
        anyhow::ensure!(
            bodies.iter().all(|b| b.contains(r#""kind":"pass""#)),
            "the handler passed on a message it should have dropped: {bodies:?}"
        );
        return Ok(());
    }
    let handlers = http
        .json(
            Method::GET,
            "/environments/local/handlers",
            &gateway.account_token,
            &Value::Null,
        )
        .await
        .unwrap_or_default();
    bail!("the deployed handler delivered nothing within 60 s; its status: {handlers}")
}

/// Runs the pipeline process against the setup's endpoint and answers what it measured.
fn pipeline(gateway: &Gateway, options: &[(&str, String)]) -> anyhow::Result<PipelineResult> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("pipeline")
        .args(["--url", &gateway.server.url])
        .args(["--endpoint", &gateway.endpoint])
        .args(["--token", &gateway.device_token])
        .args(["--drop-every", &DROP_EVERY.to_string()])
        .args(["--drain", "30"]);
    for (flag, value) in options {
        command.args([*flag, value.as_str()]);
    }
    let output = command.stderr(Stdio::inherit()).output()?;
    if !output.status.success() {
        bail!("the pipeline load generator failed");
    }
    serde_json::from_slice(&output.stdout).context("pipeline output")
}
