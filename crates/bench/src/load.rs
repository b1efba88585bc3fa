//! The load generator, run as its own process (`mh-bench load …`) so that its CPU use never counts
//! against the server under test, and so that a scenario and its baseline face the very same
//! client. Keep-alive hyper connections, a fixed number of concurrent workers, latencies in an HDR
//! histogram.
//!
//! In fixed-rate mode each request has an intended start time and its latency is measured from
//! that time, not from when it was actually sent: a stalled server then shows up in the tail
//! instead of silently slowing the generator down (coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

#[derive(Args, Clone, Debug)]
pub struct LoadArgs {
    /// Target URL (loopback only).
    #[arg(long)]
    pub url: String,
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Extra header, `Name: value`; repeatable.
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// File whose bytes are the request body.
    #[arg(long)]
    pub body_file: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Requests per second for the whole generator; unset means as fast as possible.
    #[arg(long)]
    pub rate: Option<f64>,
}

/// What one load run measured; printed as JSON on the generator's standard output.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

/// Only loopback addresses may receive benchmark traffic.
pub fn ensure_loopback(url: &str) -> anyhow::Result<()> {
    let uri: hyper::Uri = url.parse().context("invalid --url")?;
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        loopback,
        "benchmark traffic may only target loopback addresses, not {url}"
    );
    Ok(())
}

pub async fn run(args: LoadArgs) -> anyhow::Result<LoadResult> {
    ensure_loopback(&args.url)?;
    let method = Method::from_bytes(args.method.as_bytes()).context("invalid --method")?;
    let body = match &args.body_file {
        Some(path) => {
            Bytes::from(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => Bytes::new(),
    };
    let headers: Vec<(String, String)> = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("header {h:?} is not 'Name: value'"))
        })
        .collect::<anyhow::Result<_>>()?;
    let uri: hyper::Uri = args.url.parse().context("invalid --url")?;

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build_http();
    let duration = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let errors = Arc::new(AtomicU64::new(0));
    // Each worker sends every `interval` in fixed-rate mode.
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(args.concurrency as f64 / rate.max(0.001)));

    let mut workers = Vec::with_capacity(args.concurrency);
    for worker in 0..args.concurrency {
        let client = client.clone();
        let (method, uri, body, headers, errors) = (
            method.clone(),
            uri.clone(),
            body.clone(),
            headers.clone(),
            errors.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .map_err(|e| anyhow::anyhow!("histogram: {e}"))?;
            let mut intended = interval.map(|every| {
                // Spread the workers over one interval so that they do not fire in lock step.
                started + every.mul_f64(worker as f64 / args.concurrency as f64)
            });
            while started.elapsed() < duration {
                let begin = match (&mut intended, interval) {
                    (Some(next), Some(every)) => {
                        tokio::time::sleep_until((*next).into()).await;
                        let at = *next;
                        *next += every;
                        at
                    }
                    _ => Instant::now(),
                };
                let mut request = Request::builder().method(method.clone()).uri(uri.clone());
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                let request = request.body(Full::new(body.clone()))?;
                let ok = match client.request(request).await {
                    Ok(response) => {
                        let success = response.status().is_success();
                        success && response.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                };
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                let micros = u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX);
                histogram.saturating_record(micros.max(1));
            }
            anyhow::Ok(histogram)
        }));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| anyhow::anyhow!("histogram: {e}"))?;
    for worker in workers {
        let histogram = worker.await.context("load worker panicked")??;
        total
            .add(&histogram)
            .map_err(|e| anyhow::anyhow!("histogram: {e}"))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let ms = |q: f64| total.value_at_quantile(q) as f64 / 1000.0;
    Ok(LoadResult {
        requests: total.len(),
        errors: errors.load(Ordering::Relaxed),
        seconds,
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
    })
}
