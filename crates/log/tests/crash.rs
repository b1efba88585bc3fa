//! Kill -9 in the middle of writing: everything acknowledged must be there afterwards.
//!
//! The test re-runs its own binary as the writer (the `crash_child` test, active only when
//! `MH_LOG_CRASH_DIR` is set), reads the writer's acknowledgements from its stdout, kills it with
//! SIGKILL at a random moment, and repeats; then it opens the log and checks.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mh_log::{EmbeddedLog, Envelope, Inboxes, LogOptions, MessageLog, StreamId};
use uuid::Uuid;

const STREAM: StreamId = StreamId {
    channel: Uuid::from_u128(1),
    environment: Uuid::from_u128(2),
};
const INBOX: Uuid = Uuid::from_u128(3);

fn numbered(n: u64) -> Envelope {
    Envelope {
        partition_key: "crash".into(),
        idempotency_key: Some(n.to_string()),
        body: Bytes::from(n.to_string()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(dir) = std::env::var("MH_LOG_CRASH_DIR") else {
        return;
    };
    let start: u64 = std::env::var("MH_LOG_CRASH_START")
        .unwrap()
        .parse()
        .unwrap();
    let log = EmbeddedLog::open(dir.as_ref(), LogOptions::default()).unwrap();
    // Several writers at once, so kills land inside shared group commits.
    let mut tasks = Vec::new();
    for w in 0..4u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = start + w * 100_000;
            loop {
                let batch: Vec<_> = (n..n + 10).map(numbered).collect();
                log.append(STREAM, batch).await.unwrap();
                log.enqueue(INBOX, vec![numbered(n)]).await.unwrap();
                let mut out = std::io::stdout().lock();
                writeln!(out, "ack {n} 10").unwrap();
                out.flush().unwrap();
                n += 10;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked = BTreeSet::new();
    let mut acked_inbox = BTreeSet::new();
    for round in 0..4u64 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("MH_LOG_CRASH_DIR", dir.path())
            .env("MH_LOG_CRASH_START", (round * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let kill_after = Duration::from_millis(200 + 150 * round);
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.push(line);
            }
            lines
        });
        let started = Instant::now();
        std::thread::sleep(kill_after);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        assert!(
            started.elapsed() >= kill_after,
            "the writer must still be running when killed"
        );
        for line in lines {
            let mut parts = line.split_whitespace();
            if parts.next() != Some("ack") {
                continue;
            }
            let n: u64 = parts.next().unwrap().parse().unwrap();
            let count: u64 = parts.next().unwrap().parse().unwrap();
            acked.extend(n..n + count);
            acked_inbox.insert(n);
        }
    }
    assert!(!acked.is_empty(), "the writer acknowledged nothing");
    eprintln!(
        "{} stream and {} inbox messages acknowledged across 4 kills",
        acked.len(),
        acked_inbox.len()
    );

    let log = EmbeddedLog::open(dir.path(), LogOptions::default()).unwrap();
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let page = log
            .read(STREAM, after, 10_000, Duration::ZERO)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        stored.extend(page.iter().map(|m| {
            String::from_utf8(m.body.to_vec())
                .unwrap()
                .parse::<u64>()
                .unwrap()
        }));
    }
    let unique: BTreeSet<u64> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "no message is stored twice");
    let missing: Vec<_> = acked.difference(&unique).take(5).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");

    let mut in_inbox = BTreeSet::new();
    loop {
        let got = log
            .receive(INBOX, None, 10_000, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        for d in got {
            in_inbox.insert(
                String::from_utf8(d.message.body.to_vec())
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
        }
    }
    let missing: Vec<_> = acked_inbox.difference(&in_inbox).take(5).collect();
    assert!(
        missing.is_empty(),
        "acknowledged inbox messages lost: {missing:?}"
    );
}
