//! The end-to-end load of the fabric scenarios, run as its own process (`mh-bench pipeline …`) so
//! that its CPU use never counts against the server: producers ingest JSON array batches into an
//! endpoint with a device token, consumers receive what the channel's handler put into that
//! endpoint's inbox and complete it in batches.
//!
//! Every message carries its send time `t` (unix microseconds) in its body; a consumer computes
//! the latency from it at receipt, so the figure is ingest to inbox receipt. Two modes:
//!
//! - **as fast as possible**: producers send back to back, but never more than `--window`
//!   messages that should come out are on their way (ingested, not yet received). The figure is
//!   the rate at which messages reach the consumers once steady.
//! - **fixed rate** (`--rate`): each batch has an intended send time and is stamped with it, not
//!   with the time it actually left, so a server that stalls shows up in the latencies instead
//!   of silently slowing the producers down (coordinated omission).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use hyper::Method;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::http::Http;
use crate::load::ensure_loopback;

#[derive(Args, Clone, Debug)]
pub struct PipelineArgs {
    /// Server base URL (loopback only).
    #[arg(long)]
    pub url: String,
    /// Endpoint that ingests and whose inbox the handler fills.
    #[arg(long)]
    pub endpoint: String,
    /// Device token of that endpoint: it sends and it receives.
    #[arg(long)]
    pub token: String,
    /// Messages per ingest request (a JSON array).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Every Nth message has `"kind":"drop"` and must not come out; 0: none.
    #[arg(long, default_value_t = 10)]
    pub drop_every: u64,
    /// Seconds the producers run.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Seconds at the start whose rates and latencies do not count.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Concurrent ingest connections.
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// Concurrent receivers.
    #[arg(long, default_value_t = 4)]
    pub consumers: usize,
    /// Ingested messages per second (fixed-rate mode); unset: as fast as the window allows.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Most messages that should come out and have not yet (as-fast-as-possible mode).
    #[arg(long, default_value_t = 50_000)]
    pub window: usize,
    /// Longest wait for the last messages after the producers stop, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
}

/// What one run measured; printed as JSON on the child's standard output.
#[derive(Debug, Serialize, Deserialize)]
pub struct PipelineResult {
    /// Messages ingest acknowledged, and how many of them the handler should pass on.
    pub ingested: u64,
    pub expected: u64,
    /// Messages the consumers received (all of the run, warm-up and drain included).
    pub received: u64,
    /// Deliveries that were not their message's first, and `drop` messages that came out.
    pub redelivered: u64,
    pub unexpected: u64,
    pub ingest_errors: u64,
    /// Receive requests that brought messages, and those that came back empty: full receives
    /// (near 1000 messages each) mean the inbox has a backlog, that the consumers are the limit.
    pub receives: u64,
    pub empty_receives: u64,
    /// Messages received per second between the end of the warm-up and the producers' end.
    pub received_per_second: f64,
    /// Messages ingested per second over the same span.
    pub ingested_per_second: f64,
    pub steady_seconds: f64,
    /// Latencies of the messages sent after the warm-up.
    pub latency_samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Seconds from the producers' end until the last expected message came (or the drain limit).
    pub drain_seconds: f64,
}

struct Shared {
    http: Http,
    args: PipelineArgs,
    started: Instant,
    /// Unix microseconds at `started`; stamps are this plus monotonic time since `started`.
    wall_start: u64,
    /// Stamps from here on are measured.
    measure_from: u64,
    next_n: AtomicU64,
    ingested: AtomicU64,
    expected: AtomicU64,
    received: AtomicU64,
    redelivered: AtomicU64,
    unexpected: AtomicU64,
    ingest_errors: AtomicU64,
    receives: AtomicU64,
    empty_receives: AtomicU64,
    /// Longest latency (µs) since the last progress line.
    worst: AtomicU64,
    producing: AtomicBool,
    drain_until: OnceLock<Instant>,
    window: Semaphore,
}

impl Shared {
    fn stamp(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.started).as_micros();
        self.wall_start + u64::try_from(since).unwrap_or(u64::MAX / 2)
    }

    fn is_drop(&self, n: u64) -> bool {
        self.args.drop_every > 0 && n % self.args.drop_every == self.args.drop_every - 1
    }
}

#[derive(Deserialize)]
struct Deliveries {
    messages: Vec<Delivery>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    lock_token: String,
    delivery_count: u32,
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    body: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Complete<'a> {
    lock_tokens: &'a [String],
}

/// The `t` stamp of a message body this generator wrote (`…,"t":1234}`).
fn stamp_of(body: &str) -> Option<u64> {
    let start = body.rfind("\"t\":")? + 4;
    let digits = &body[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| anyhow::anyhow!("histogram: {e}"))
}

pub async fn run(args: PipelineArgs) -> anyhow::Result<PipelineResult> {
    ensure_loopback(&args.url)?;
    anyhow::ensure!(
        (1..=1000).contains(&args.batch),
        "--batch must be 1 to 1000"
    );
    let wall_start = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros())?;
    let warmup = Duration::from_secs_f64(args.warmup.min(args.seconds * 0.5).max(0.0));
    let duration = Duration::from_secs_f64(args.seconds);
    let shared = Arc::new(Shared {
        http: Http::new(&args.url),
        started: Instant::now(),
        wall_start,
        measure_from: wall_start + u64::try_from(warmup.as_micros())?,
        next_n: AtomicU64::new(0),
        ingested: AtomicU64::new(0),
        expected: AtomicU64::new(0),
        received: AtomicU64::new(0),
        redelivered: AtomicU64::new(0),
        unexpected: AtomicU64::new(0),
        ingest_errors: AtomicU64::new(0),
        receives: AtomicU64::new(0),
        empty_receives: AtomicU64::new(0),
        worst: AtomicU64::new(0),
        producing: AtomicBool::new(true),
        drain_until: OnceLock::new(),
        window: Semaphore::new(args.window.max(args.batch)),
        args,
    });
    let started = shared.started;
    let deadline = started + duration;

    let consumers: Vec<_> = (0..shared.args.consumers.max(1))
        .map(|_| tokio::spawn(consume(shared.clone())))
        .collect();
    let producers: Vec<_> = (0..shared.args.producers.max(1))
        .map(|worker| tokio::spawn(produce(shared.clone(), worker, deadline)))
        .collect();

    // Progress once a second, and the counters at the end of the warm-up and of the run.
    let mut steady_start = None;
    let mut last = (0u64, 0u64);
    let mut second = 1u32;
    loop {
        let tick = started + Duration::from_secs(u64::from(second));
        let next = [tick, deadline, started + warmup]
            .into_iter()
            .filter(|t| *t > Instant::now())
            .min();
        let Some(next) = next else { break };
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        let counts = (
            shared.ingested.load(Ordering::Relaxed),
            shared.received.load(Ordering::Relaxed),
        );
        if steady_start.is_none() && now >= started + warmup {
            steady_start = Some((now, counts));
        }
        if now >= tick {
            eprintln!(
                "[mh-bench]   {second:>3} s: ingested {:>9}/s, received {:>9}/s, slowest {:>7.1} ms",
                counts.0 - last.0,
                counts.1 - last.1,
                shared.worst.swap(0, Ordering::Relaxed) as f64 / 1000.0
            );
            last = counts;
            second += 1;
        }
        if now >= deadline {
            break;
        }
    }
    let steady_end = (
        Instant::now(),
        (
            shared.ingested.load(Ordering::Relaxed),
            shared.received.load(Ordering::Relaxed),
        ),
    );
    for producer in producers {
        producer.await.context("producer panicked")??;
    }
    let produced_at = Instant::now();
    shared.producing.store(false, Ordering::Relaxed);
    let _ = shared
        .drain_until
        .set(produced_at + Duration::from_secs_f64(shared.args.drain));
    // The window may hold producers back no longer.
    shared.window.close();

    let mut total = histogram()?;
    let mut finished_at = produced_at;
    for consumer in consumers {
        let (histogram, last_receipt) = consumer.await.context("consumer panicked")??;
        total
            .add(&histogram)
            .map_err(|e| anyhow::anyhow!("histogram: {e}"))?;
        finished_at = finished_at.max(last_receipt);
    }
    let (steady_at, steady_counts) = steady_start.unwrap_or((started, (0, 0)));
    let steady_seconds = (steady_end.0 - steady_at).as_secs_f64().max(1e-3);
    let ms = |q: f64| total.value_at_quantile(q) as f64 / 1000.0;
    Ok(PipelineResult {
        ingested: shared.ingested.load(Ordering::Relaxed),
        expected: shared.expected.load(Ordering::Relaxed),
        received: shared.received.load(Ordering::Relaxed),
        redelivered: shared.redelivered.load(Ordering::Relaxed),
        unexpected: shared.unexpected.load(Ordering::Relaxed),
        ingest_errors: shared.ingest_errors.load(Ordering::Relaxed),
        receives: shared.receives.load(Ordering::Relaxed),
        empty_receives: shared.empty_receives.load(Ordering::Relaxed),
        received_per_second: (steady_end.1 .1 - steady_counts.1) as f64 / steady_seconds,
        ingested_per_second: (steady_end.1 .0 - steady_counts.0) as f64 / steady_seconds,
        steady_seconds,
        latency_samples: total.len(),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: total.max() as f64 / 1000.0,
        drain_seconds: finished_at
            .saturating_duration_since(produced_at)
            .as_secs_f64(),
    })
}

async fn produce(shared: Arc<Shared>, worker: usize, deadline: Instant) -> anyhow::Result<()> {
    let args = &shared.args;
    let path = format!("/endpoints/{}/messages", args.endpoint);
    let authorization = format!("Bearer {}", args.token);
    let headers = [
        ("Authorization", authorization.as_str()),
        ("Content-Type", "application/json"),
    ];
    let batch = args.batch as u64;
    // Each producer sends every `interval` in fixed-rate mode, spread over one interval so that
    // they do not fire in lock step.
    let interval = args.rate.map(|rate| {
        Duration::from_secs_f64(args.producers.max(1) as f64 * batch as f64 / rate.max(1.0))
    });
    let mut intended =
        interval.map(|every| shared.started + every.mul_f64(worker as f64 / args.producers as f64));
    loop {
        let at = match (&mut intended, interval) {
            (Some(next), Some(every)) => {
                if *next >= deadline {
                    return Ok(());
                }
                tokio::time::sleep_until((*next).into()).await;
                let at = *next;
                *next += every;
                at
            }
            _ => Instant::now(),
        };
        if at >= deadline {
            return Ok(());
        }
        let first = shared.next_n.fetch_add(batch, Ordering::Relaxed);
        let pass = (first..first + batch)
            .filter(|n| !shared.is_drop(*n))
            .count();
        if args.rate.is_none() && pass > 0 {
            let permits = u32::try_from(pass)?;
            match tokio::time::timeout_at(deadline.into(), shared.window.acquire_many(permits))
                .await
            {
                Ok(Ok(permit)) => permit.forget(),
                // The run ended while the window was full.
                Ok(Err(_)) | Err(_) => return Ok(()),
            }
        }
        let stamp = match args.rate {
            Some(_) => shared.stamp(at),
            None => shared.stamp(Instant::now()),
        };
        let mut body = Vec::with_capacity(args.batch * 48 + 2);
        body.push(b'[');
        for n in first..first + batch {
            if n > first {
                body.push(b',');
            }
            let kind = if shared.is_drop(n) { "drop" } else { "pass" };
            body.extend_from_slice(
                format!(r#"{{"kind":"{kind}","n":{n},"t":{stamp}}}"#).as_bytes(),
            );
        }
        body.push(b']');
        let sent = shared.http.raw(Method::POST, &path, &headers, body).await;
        if matches!(sent, Ok((status, _)) if (200..300).contains(&status)) {
            shared.ingested.fetch_add(batch, Ordering::Relaxed);
            shared.expected.fetch_add(pass as u64, Ordering::Relaxed);
        } else {
            if shared.ingest_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("[mh-bench]   an ingest request failed: {sent:?}");
            }
            if args.rate.is_none() {
                shared.window.add_permits(pass);
            }
        }
    }
}

/// Receives and completes until the producers are done and every expected message came, or the
/// drain limit passes. Answers the latencies and the time of the last receipt.
async fn consume(shared: Arc<Shared>) -> anyhow::Result<(Histogram<u64>, Instant)> {
    let args = &shared.args;
    let receive = format!("/endpoints/{}/messages?max=1000&wait=1", args.endpoint);
    let complete = format!("/endpoints/{}/messages/complete", args.endpoint);
    let authorization = format!("Bearer {}", args.token);
    let mut latencies = histogram()?;
    let mut last_receipt = shared.started;
    loop {
        if !shared.producing.load(Ordering::Relaxed) {
            let all =
                shared.received.load(Ordering::Relaxed) >= shared.expected.load(Ordering::Relaxed);
            let late = shared
                .drain_until
                .get()
                .is_some_and(|until| Instant::now() >= *until);
            if all || late {
                return Ok((latencies, last_receipt));
            }
        }
        let (status, bytes) = shared
            .http
            .raw(
                Method::GET,
                &receive,
                &[("Authorization", &authorization)],
                Vec::new(),
            )
            .await?;
        anyhow::ensure!(
            status == 200,
            "receive answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let deliveries: Deliveries = serde_json::from_slice(&bytes).context("receive answer")?;
        if deliveries.messages.is_empty() {
            shared.empty_receives.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        shared.receives.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        last_receipt = now;
        let now = shared.stamp(now);
        let count = deliveries.messages.len();
        let mut worst = 0;
        let mut tokens = Vec::with_capacity(count);
        for delivery in deliveries.messages {
            if delivery.delivery_count > 1 {
                shared.redelivered.fetch_add(1, Ordering::Relaxed);
            }
            let body = delivery.message.body.unwrap_or_default();
            if body.contains(r#""kind":"drop""#) {
                shared.unexpected.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(sent) = stamp_of(&body).filter(|t| *t >= shared.measure_from) {
                let latency = now.saturating_sub(sent).max(1);
                latencies.saturating_record(latency);
                worst = worst.max(latency);
            }
            tokens.push(delivery.lock_token);
        }
        shared.worst.fetch_max(worst, Ordering::Relaxed);
        shared.received.fetch_add(count as u64, Ordering::Relaxed);
        shared.window.add_permits(count);
        let (status, answer) = shared
            .http
            .raw(
                Method::POST,
                &complete,
                &[
                    ("Authorization", &authorization),
                    ("Content-Type", "application/json"),
                ],
                serde_json::to_vec(&Complete {
                    lock_tokens: &tokens,
                })?,
            )
            .await?;
        anyhow::ensure!(
            status == 200,
            "complete answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::stamp_of;

    #[test]
    fn stamps_are_read_back() {
        assert_eq!(
            stamp_of(r#"{"kind":"pass","n":7,"t":1733333333123456}"#),
            Some(1_733_333_333_123_456)
        );
        assert_eq!(stamp_of(r#"{"kind":"pass"}"#), None);
    }
}
