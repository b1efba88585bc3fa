//! Scenarios through the HTTP gateway: single-message ingest with a device token, batch ingest,
//! and messages going into an endpoint inbox and out to a consumer that completes them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;
use hyper::Method;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::http::Http;
use crate::process::{generate_load, Process, RequestSpec};
use crate::scenarios::{create_account, Row, Settings, SMALL_MESSAGE, UNLIMITED};

/// A server with an account, a channel, an endpoint routed into and out of it, and one device.
pub struct Gateway {
    pub server: Process,
    pub endpoint: String,
    pub device_token: String,
    pub account_token: String,
}

pub fn set_up(settings: &Settings, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Gateway> {
    set_up_with(settings, runtime, &[])
}

/// [`set_up`] on a server started with `extra` flags besides [`UNLIMITED`].
pub fn set_up_with(
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    extra: &[&str],
) -> anyhow::Result<Gateway> {
    let mut flags = UNLIMITED.to_vec();
    flags.extend_from_slice(extra);
    let (server, _) = settings.start_mh(&flags)?;
    let (client_id, client_secret) = create_account(settings, &server, "bench")?;
    let http = Http::new(&server.url);
    let (endpoint, device_token, account_token) = runtime.block_on(async {
        let (status, token) = http
            .call(
                Method::POST,
                "/authorize",
                &[("Content-Type", "application/json")],
                serde_json::to_vec(&json!({
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": client_secret,
                }))?,
            )
            .await?;
        anyhow::ensure!(status == 200, "authorize answered {status}: {token}");
        let account_token = token["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        http.json(
            Method::POST,
            "/channels",
            &account_token,
            &json!({"name": "bench", "description": "benchmark"}),
        )
        .await?;
        let endpoints = http
            .json(
                Method::POST,
                "/endpoints/assign",
                &account_token,
                &json!({
                    "count": 1,
                    "name": "bench-{0}",
                    "routes": [
                        {"channel": "bench", "environment": "local", "direction": "in"},
                        {"channel": "bench", "environment": "local", "direction": "out"},
                    ],
                }),
            )
            .await?;
        let endpoint = endpoints[0]["identifier"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (status, device) = http
            .call(
                Method::POST,
                &format!("/devices/register/{endpoint}/bench-device"),
                &[
                    ("Accept", "application/json"),
                    ("Content-Type", "application/json"),
                ],
                Vec::new(),
            )
            .await?;
        anyhow::ensure!(
            status == 200,
            "device registration answered {status}: {device}"
        );
        let device_token = device["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        anyhow::Ok((endpoint, device_token, account_token))
    })?;
    Ok(Gateway {
        server,
        endpoint,
        device_token,
        account_token,
    })
}

fn ingest_spec(gateway: &Gateway, body: Vec<u8>) -> RequestSpec {
    RequestSpec {
        method: "POST",
        url: format!(
            "{}/endpoints/{}/messages",
            gateway.server.url, gateway.endpoint
        ),
        headers: vec![
            "Content-Type: application/json".into(),
            format!("Authorization: Bearer {}", gateway.device_token),
        ],
        body,
    }
}

pub fn single_ingest(
    settings: &Settings,
    gateway: &Gateway,
    baseline_rate: Option<f64>,
) -> anyhow::Result<Row> {
    let cpu_before = gateway.server.cpu_seconds()?;
    let load = generate_load(
        &ingest_spec(gateway, SMALL_MESSAGE.to_vec()),
        settings.seconds,
        settings.concurrency,
        None,
    )?;
    crate::scenarios::check_errors("single ingest", &load)?;
    let mut row = crate::scenarios::row_from_load(
        "ingest 1 msg, device token",
        "msg/s",
        &load,
        1.0,
        &gateway.server,
        cpu_before,
    )?;
    row.ratio = baseline_rate.map(|baseline| row.rate / baseline);
    row.target = ">= 0.60 x baseline";
    row.met = row.ratio.map(|ratio| ratio >= 0.60);
    Ok(row)
}

/// Messages per batch request in the batch scenario.
const BATCH: usize = 1000;

pub fn batch_ingest(
    settings: &Settings,
    gateway: &Gateway,
    baseline_rate: Option<f64>,
) -> anyhow::Result<Row> {
    let mut body = Vec::with_capacity(BATCH * (SMALL_MESSAGE.len() + 1) + 2);
    body.push(b'[');
    for i in 0..BATCH {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(SMALL_MESSAGE);
    }
    body.push(b']');
    let cpu_before = gateway.server.cpu_seconds()?;
    // Fewer connections: each request already carries a thousand messages.
    let concurrency = settings.concurrency.clamp(1, 8);
    let load = generate_load(
        &ingest_spec(gateway, body),
        settings.seconds,
        concurrency,
        None,
    )?;
    crate::scenarios::check_errors("batch ingest", &load)?;
    let mut row = crate::scenarios::row_from_load(
        "ingest batches of 1000",
        "msg/s",
        &load,
        BATCH as f64,
        &gateway.server,
        cpu_before,
    )?;
    row.ratio = baseline_rate.map(|baseline| row.rate / baseline);
    row.target = ">= 1000000 msg/s";
    row.met = Some(row.rate >= 1_000_000.0);
    Ok(row)
}

/// Producer: the load generator putting messages into the endpoint inbox. Consumer: receivers in
/// this process taking them with the device token and completing each one. Latency is from the
/// message's enqueue time to its receipt.
pub fn inbox_round_trip(
    settings: &Settings,
    gateway: &Gateway,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Row> {
    let producer = RequestSpec {
        method: "POST",
        url: format!(
            "{}/endpoints/{}/inbox",
            gateway.server.url, gateway.endpoint
        ),
        headers: vec![
            "Content-Type: application/json".into(),
            format!("Authorization: Bearer {}", gateway.account_token),
        ],
        body: SMALL_MESSAGE.to_vec(),
    };
    let http = Http::new(&gateway.server.url);
    let done_producing = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 600_000, 3)
            .map_err(|e| anyhow::anyhow!("histogram: {e}"))?,
    ));
    let started = Instant::now();
    let cpu_before = gateway.server.cpu_seconds()?;
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let (http, done, completed, latencies) = (
                http.clone(),
                done_producing.clone(),
                completed.clone(),
                latencies.clone(),
            );
            let path = format!("/endpoints/{}/messages?max=100&wait=1", gateway.endpoint);
            let authorization = format!("Bearer {}", gateway.device_token);
            let complete = format!("/endpoints/{}/messages/complete", gateway.endpoint);
            runtime.spawn(async move {
                let mut idle_polls = 0;
                loop {
                    let (status, answer) = http
                        .call(
                            Method::GET,
                            &path,
                            &[("Authorization", &authorization)],
                            Vec::new(),
                        )
                        .await?;
                    anyhow::ensure!(status == 200, "receive answered {status}: {answer}");
                    let deliveries = answer["messages"].as_array().cloned().unwrap_or_default();
                    if deliveries.is_empty() {
                        idle_polls += 1;
                        if done.load(Ordering::Relaxed) && idle_polls >= 2 {
                            return anyhow::Ok(());
                        }
                        continue;
                    }
                    idle_polls = 0;
                    let now = OffsetDateTime::now_utc();
                    let mut tokens = Vec::with_capacity(deliveries.len());
                    for delivery in &deliveries {
                        record_latency(&latencies, delivery, now);
                        tokens.push(delivery["lockToken"].clone());
                    }
                    let (status, answer) = http
                        .call(
                            Method::POST,
                            &complete,
                            &[
                                ("Authorization", &authorization),
                                ("Content-Type", "application/json"),
                            ],
                            serde_json::to_vec(&json!({ "lockTokens": tokens }))?,
                        )
                        .await?;
                    anyhow::ensure!(status == 200, "complete answered {status}: {answer}");
                    let done = answer["completed"].as_array().map_or(0, Vec::len);
                    completed.fetch_add(done as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let load = generate_load(
        &producer,
        settings.seconds,
        settings.concurrency.clamp(1, 16),
        None,
    )?;
    done_producing.store(true, Ordering::Relaxed);
    for consumer in consumers {
        runtime.block_on(consumer)??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let handled = completed.load(Ordering::Relaxed) as f64;
    anyhow::ensure!(handled > 0.0, "the consumer received nothing");
    let cpu = gateway.server.cpu_seconds()? - cpu_before;
    let histogram = latencies
        .lock()
        .map_err(|_| anyhow::anyhow!("latency histogram poisoned"))?;
    let ms = |q: f64| histogram.value_at_quantile(q) as f64;
    Ok(Row {
        scenario: "inbox: send, receive, complete",
        rate: handled / elapsed,
        unit: "msg/s",
        p50_ms: Some(ms(0.5)),
        p99_ms: Some(ms(0.99)),
        p999_ms: Some(ms(0.999)),
        cpu_s_per_million: Some(cpu / handled * 1e6),
        peak_rss_mib: Some(gateway.server.memory_mib()?.1),
        ratio: None,
        target: format_target(load.requests, handled),
        met: None,
        detail: None,
    })
}

/// Every acknowledged message must come out again; anything else is a bug worth showing.
fn format_target(sent: u64, received: f64) -> &'static str {
    if received as u64 >= sent {
        "all sent messages received"
    } else {
        "SOME SENT MESSAGES NOT RECEIVED"
    }
}

fn record_latency(latencies: &Mutex<Histogram<u64>>, delivery: &Value, now: OffsetDateTime) {
    let enqueued = delivery["message"]["enqueuedAt"].as_str().and_then(|t| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    });
    if let (Some(enqueued), Ok(mut histogram)) = (enqueued, latencies.lock()) {
        let millis = (now - enqueued).whole_milliseconds().max(1);
        histogram.saturating_record(u64::try_from(millis).unwrap_or(u64::MAX));
    }
}
