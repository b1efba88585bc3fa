//! Throughput of durable appends (ignored by default: run it in release with
//! `cargo test -p mh-log --release --test throughput -- --ignored --nocapture`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use mh_log::{EmbeddedLog, Envelope, Inboxes, LogOptions, MessageLog, StreamId};
use uuid::Uuid;

fn small(i: usize) -> Envelope {
    Envelope {
        endpoint: Some(Uuid::from_u128(7)),
        partition_key: "device-0001".into(),
        content_type: Some("application/json".into()),
        body: Bytes::from(format!("{{\"temperature\":{},\"seq\":{i}}}", i % 100)),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run in release"]
async fn append_and_enqueue_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), LogOptions::default()).unwrap();
    let stream = StreamId::new(Uuid::from_u128(1), Uuid::from_u128(2));
    for (what, batch, writers, total) in [
        ("append", 1000, 8, 400_000),
        ("append", 1, 64, 50_000),
        ("enqueue", 100, 8, 100_000),
    ] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..writers {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for b in 0..total / writers / batch {
                    let messages: Vec<_> = (0..batch).map(|i| small(b * batch + i)).collect();
                    if what == "append" {
                        log.append(stream, messages).await.unwrap();
                    } else {
                        log.enqueue(Uuid::from_u128(9), messages).await.unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{what}: batches of {batch}, {writers} writers: {:.0} msg/s",
            total as f64 / secs
        );
    }
    let started = Instant::now();
    let mut after = None;
    let mut n = 0;
    loop {
        let page = log
            .read(stream, after, 10_000, Duration::ZERO)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        n += page.len();
    }
    println!(
        "read: {n} messages, {:.0} msg/s",
        n as f64 / started.elapsed().as_secs_f64()
    );
}
