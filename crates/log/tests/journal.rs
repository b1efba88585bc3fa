//! Channel journal (log streams, stream dead letters) and handler state of the embedded log,
//! on a real engine in a temp dir.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mh_log::{
    ChannelJournal, EmbeddedLog, Envelope, HandlerStates, LogEntry, LogError, LogOptions,
    MessageLog, StreamDeadLetter, StreamId,
};
use uuid::Uuid;

const NO_WAIT: Duration = Duration::ZERO;

fn open(dir: &tempfile::TempDir) -> EmbeddedLog {
    EmbeddedLog::open(dir.path(), LogOptions::default()).unwrap()
}

fn open_capped(dir: &tempfile::TempDir, logs: usize, dead: usize) -> EmbeddedLog {
    EmbeddedLog::open(
        dir.path(),
        LogOptions {
            max_log_entries_per_channel: logs,
            max_dead_letters_per_stream: dead,
            ..Default::default()
        },
    )
    .unwrap()
}

fn line(text: &str) -> LogEntry {
    LogEntry {
        id: Uuid::nil(),
        at: 0,
        environment: Uuid::from_u128(7),
        handler: None,
        level: "info".into(),
        text: text.into(),
    }
}

fn texts(entries: &[LogEntry]) -> Vec<String> {
    entries.iter().map(|e| e.text.clone()).collect()
}

fn letter(reason: &str) -> StreamDeadLetter {
    StreamDeadLetter {
        id: Uuid::nil(),
        handler: Uuid::from_u128(9),
        reason: reason.into(),
        attempts: 3,
        dead_lettered_at: 0,
        message: Envelope {
            id: Uuid::new_v4(),
            partition_key: "p".into(),
            body: Bytes::from_static(b"body"),
            ..Default::default()
        },
    }
}

fn reasons(letters: &[StreamDeadLetter]) -> Vec<String> {
    letters.iter().map(|l| l.reason.clone()).collect()
}

fn stream() -> StreamId {
    StreamId::new(Uuid::new_v4(), Uuid::new_v4())
}

fn numbered(prefix: &str, n: std::ops::Range<usize>) -> Vec<String> {
    n.map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn logs_append_then_read_in_order_with_paging() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let channel = Uuid::new_v4();
    let handler = Uuid::new_v4();
    let full = LogEntry {
        handler: Some(handler),
        level: "error".into(),
        at: 1234,
        text: "boom ✓".into(),
        ..line("")
    };
    let odd_level = LogEntry {
        level: "notice".into(),
        ..line("b")
    };
    log.append_logs(channel, vec![full.clone(), odd_level])
        .await
        .unwrap();
    log.append_logs(channel, vec![line("c")]).await.unwrap();

    let all = log.read_logs(channel, None, 10, NO_WAIT).await.unwrap();
    assert_eq!(texts(&all), ["boom ✓", "b", "c"]);
    assert!(all[0].id < all[1].id && all[1].id < all[2].id);
    assert_eq!(all[0].id.get_version_num(), 7);
    assert_eq!(
        all[0],
        LogEntry {
            id: all[0].id,
            ..full
        }
    );
    assert_eq!(all[1].level, "notice");
    assert_eq!(all[1].handler, None);
    assert!(
        all[1].at > 0,
        "the log stamps entries that came without a time"
    );

    let page = log
        .read_logs(channel, Some(all[0].id), 1, NO_WAIT)
        .await
        .unwrap();
    assert_eq!(texts(&page), ["b"]);
    let page = log
        .read_logs(channel, Some(all[1].id), 10, NO_WAIT)
        .await
        .unwrap();
    assert_eq!(texts(&page), ["c"]);
    assert!(log
        .read_logs(channel, Some(all[2].id), 10, NO_WAIT)
        .await
        .unwrap()
        .is_empty());
    assert!(log
        .read_logs(Uuid::new_v4(), None, 10, NO_WAIT)
        .await
        .unwrap()
        .is_empty());
    // Nothing to append is no error.
    log.append_logs(channel, Vec::new()).await.unwrap();
}

#[tokio::test]
async fn logs_long_poll_wakes_on_append_and_times_out_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let channel = Uuid::new_v4();
    log.append_logs(channel, vec![line("old")]).await.unwrap();
    let old = log.read_logs(channel, None, 10, NO_WAIT).await.unwrap();

    let started = Instant::now();
    let empty = log
        .read_logs(channel, Some(old[0].id), 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(empty.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(190));

    let reader = {
        let log = log.clone();
        let after = old[0].id;
        tokio::spawn(async move {
            log.read_logs(channel, Some(after), 10, Duration::from_secs(10))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    log.append_logs(channel, vec![line("new")]).await.unwrap();
    let got = reader.await.unwrap().unwrap();
    assert_eq!(texts(&got), ["new"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn logs_keep_only_the_newest_entries_per_channel() {
    let dir = tempfile::tempdir().unwrap();
    let channel = Uuid::new_v4();
    let other = Uuid::new_v4();
    let log = open_capped(&dir, 5, 100);
    for i in 0..8 {
        log.append_logs(channel, vec![line(&format!("a{i}"))])
            .await
            .unwrap();
    }
    log.append_logs(other, vec![line("x")]).await.unwrap();
    let kept = log.read_logs(channel, None, 100, NO_WAIT).await.unwrap();
    assert_eq!(texts(&kept), numbered("a", 3..8));

    // One append larger than the cap keeps its own newest entries.
    let big: Vec<_> = (0..12).map(|i| line(&format!("b{i}"))).collect();
    log.append_logs(channel, big).await.unwrap();
    let kept = log.read_logs(channel, None, 100, NO_WAIT).await.unwrap();
    assert_eq!(texts(&kept), numbered("b", 7..12));
    // A reader behind the trimmed part resumes at the oldest kept entry.
    let behind = log
        .read_logs(channel, Some(Uuid::nil()), 2, NO_WAIT)
        .await
        .unwrap();
    assert_eq!(texts(&behind), ["b7", "b8"]);

    // Concurrent appends share groups; the cap holds across them and across a reopen.
    let mut tasks = Vec::new();
    for t in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                log.append_logs(channel, vec![line(&format!("c{t}-{i}"))])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kept = log.read_logs(channel, None, 100, NO_WAIT).await.unwrap();
    assert_eq!(kept.len(), 5);
    assert!(kept.iter().all(|e| e.text.starts_with('c')));
    log.close().await.unwrap();

    let log = open_capped(&dir, 5, 100);
    log.append_logs(channel, vec![line("d0"), line("d1")])
        .await
        .unwrap();
    let kept = log.read_logs(channel, None, 100, NO_WAIT).await.unwrap();
    assert_eq!(kept.len(), 5);
    assert_eq!(texts(&kept[3..]), ["d0", "d1"]);
    let others = log.read_logs(other, None, 100, NO_WAIT).await.unwrap();
    assert_eq!(texts(&others), ["x"]);
}

#[tokio::test]
async fn logs_survive_reopen_and_ids_keep_increasing() {
    let dir = tempfile::tempdir().unwrap();
    let channel = Uuid::new_v4();
    let log = open(&dir);
    log.append_logs(channel, vec![line("a"), line("b")])
        .await
        .unwrap();
    log.close().await.unwrap();

    let log = open(&dir);
    let before = log.read_logs(channel, None, 10, NO_WAIT).await.unwrap();
    assert_eq!(texts(&before), ["a", "b"]);
    log.append_logs(channel, vec![line("c")]).await.unwrap();
    let after = log
        .read_logs(channel, Some(before[1].id), 10, NO_WAIT)
        .await
        .unwrap();
    assert_eq!(texts(&after), ["c"]);
    assert!(after[0].id > before[1].id);
}

#[tokio::test]
async fn dead_letters_append_then_read_with_paging() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let s = stream();
    let mut full = letter("trap");
    full.dead_lettered_at = 42;
    full.message.properties.insert("k".into(), "v".into());
    full.message.hops = 4;
    let a = log.append_dead_letter(s, full.clone()).await.unwrap();
    let b = log.append_dead_letter(s, letter("hops")).await.unwrap();
    let c = log.append_dead_letter(s, letter("timeout")).await.unwrap();
    assert!(a < b && b < c);
    assert_eq!(a.get_version_num(), 7);

    let all = log.read_dead_letters(s, None, 10).await.unwrap();
    assert_eq!(reasons(&all), ["trap", "hops", "timeout"]);
    assert_eq!(all[0], StreamDeadLetter { id: a, ..full });
    assert_eq!(all[1].id, b);
    assert!(all[1].dead_lettered_at > 0);
    assert_eq!(all[1].attempts, 3);

    let page = log.read_dead_letters(s, Some(a), 1).await.unwrap();
    assert_eq!(reasons(&page), ["hops"]);
    assert!(log
        .read_dead_letters(s, Some(c), 10)
        .await
        .unwrap()
        .is_empty());
    // Another environment of the same channel is another stream.
    let sibling = StreamId::new(s.channel, Uuid::new_v4());
    assert!(log
        .read_dead_letters(sibling, None, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn dead_letters_keep_only_the_newest_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = stream();
    let sibling = StreamId::new(s.channel, Uuid::new_v4());
    let log = open_capped(&dir, 100, 3);
    for i in 0..5 {
        log.append_dead_letter(s, letter(&format!("r{i}")))
            .await
            .unwrap();
    }
    log.append_dead_letter(sibling, letter("s0")).await.unwrap();
    let kept = log.read_dead_letters(s, None, 100).await.unwrap();
    assert_eq!(reasons(&kept), numbered("r", 2..5));
    log.close().await.unwrap();

    let log = open_capped(&dir, 100, 3);
    let kept = log.read_dead_letters(s, None, 100).await.unwrap();
    assert_eq!(reasons(&kept), numbered("r", 2..5));
    log.append_dead_letter(s, letter("r5")).await.unwrap();
    let kept = log.read_dead_letters(s, None, 100).await.unwrap();
    assert_eq!(reasons(&kept), numbered("r", 3..6));
    let siblings = log.read_dead_letters(sibling, None, 100).await.unwrap();
    assert_eq!(reasons(&siblings), ["s0"]);
}

#[tokio::test]
async fn purge_channel_removes_its_logs_and_dead_letters_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_capped(&dir, 3, 3);
    let channel = Uuid::new_v4();
    let s1 = StreamId::new(channel, Uuid::new_v4());
    let s2 = StreamId::new(channel, Uuid::new_v4());
    let other = stream();
    for i in 0..4 {
        log.append_logs(channel, vec![line(&format!("l{i}"))])
            .await
            .unwrap();
        log.append_dead_letter(s1, letter(&format!("d{i}")))
            .await
            .unwrap();
    }
    log.append_dead_letter(s2, letter("e")).await.unwrap();
    log.append_logs(other.channel, vec![line("keep")])
        .await
        .unwrap();
    log.append_dead_letter(other, letter("keep")).await.unwrap();
    // Messages and checkpoints are not the journal's to delete.
    let ids = log.append(s1, vec![Envelope::default()]).await.unwrap();
    log.set_checkpoint(s1, "h", ids[0]).await.unwrap();

    log.purge_channel(channel).await.unwrap();
    assert!(log
        .read_logs(channel, None, 10, NO_WAIT)
        .await
        .unwrap()
        .is_empty());
    assert!(log
        .read_dead_letters(s1, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(log
        .read_dead_letters(s2, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(log.read(s1, None, 10, NO_WAIT).await.unwrap().len(), 1);
    assert_eq!(log.checkpoint(s1, "h").await.unwrap(), Some(ids[0]));

    // The channel starts over: a waiting reader sees new lines, the caps count afresh.
    let reader = {
        let log = log.clone();
        tokio::spawn(async move {
            log.read_logs(channel, None, 10, Duration::from_secs(10))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    log.append_logs(channel, vec![line("n0"), line("n1")])
        .await
        .unwrap();
    assert_eq!(texts(&reader.await.unwrap().unwrap()), ["n0", "n1"]);
    log.append_dead_letter(s1, letter("f0")).await.unwrap();
    log.close().await.unwrap();

    let log = open_capped(&dir, 3, 3);
    let lines = log.read_logs(channel, None, 10, NO_WAIT).await.unwrap();
    assert_eq!(texts(&lines), ["n0", "n1"]);
    log.append_logs(channel, vec![line("n2")]).await.unwrap();
    let lines = log.read_logs(channel, None, 10, NO_WAIT).await.unwrap();
    assert_eq!(texts(&lines), ["n0", "n1", "n2"]);
    let letters = log.read_dead_letters(s1, None, 10).await.unwrap();
    assert_eq!(reasons(&letters), ["f0"]);
    let kept = log
        .read_logs(other.channel, None, 10, NO_WAIT)
        .await
        .unwrap();
    assert_eq!(texts(&kept), ["keep"]);
    let kept = log.read_dead_letters(other, None, 10).await.unwrap();
    assert_eq!(reasons(&kept), ["keep"]);
}

fn set(key: &str, value: &str) -> (String, Option<Vec<u8>>) {
    (key.into(), Some(value.as_bytes().to_vec()))
}

fn delete(key: &str) -> (String, Option<Vec<u8>>) {
    (key.into(), None)
}

fn value(log: &EmbeddedLog, s: StreamId, consumer: &str, key: &str) -> Option<String> {
    log.state(s, consumer, key)
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

#[tokio::test]
async fn state_commits_with_the_checkpoint_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = stream();
    let log = open(&dir);
    let ids = log
        .append(s, vec![Envelope::default(), Envelope::default()])
        .await
        .unwrap();
    assert_eq!(value(&log, s, "h", "count"), None);
    log.commit(s, "h", Some(ids[0]), vec![set("count", "1"), set("x", "a")])
        .await
        .unwrap();
    log.commit(s, "h", Some(ids[1]), vec![set("count", "2")])
        .await
        .unwrap();
    log.close().await.unwrap();

    let log = open(&dir);
    assert_eq!(log.checkpoint(s, "h").await.unwrap(), Some(ids[1]));
    assert_eq!(value(&log, s, "h", "count").as_deref(), Some("2"));
    assert_eq!(value(&log, s, "h", "x").as_deref(), Some("a"));
}

#[tokio::test]
async fn state_deletes_last_write_wins_and_position_is_optional() {
    let dir = tempfile::tempdir().unwrap();
    let s = stream();
    let log = open(&dir);
    let id = log.append(s, vec![Envelope::default()]).await.unwrap()[0];
    log.commit(s, "h", Some(id), vec![set("a", "1"), set("b", "1")])
        .await
        .unwrap();
    // No position: state only, the checkpoint stays.
    log.commit(
        s,
        "h",
        None,
        vec![delete("a"), set("b", "2"), set("b", "3"), set("c", "")],
    )
    .await
    .unwrap();
    assert_eq!(log.checkpoint(s, "h").await.unwrap(), Some(id));
    assert_eq!(value(&log, s, "h", "a"), None);
    assert_eq!(value(&log, s, "h", "b").as_deref(), Some("3"));
    assert_eq!(value(&log, s, "h", "c").as_deref(), Some(""));
    // A set and a delete of one key in one commit: the last one wins either way.
    log.commit(s, "h", None, vec![set("b", "4"), delete("b")])
        .await
        .unwrap();
    assert_eq!(value(&log, s, "h", "b"), None);
    // Nothing to do is no error.
    log.commit(s, "h", None, Vec::new()).await.unwrap();
    // set_checkpoint and commit move the same checkpoint.
    let next = log.append(s, vec![Envelope::default()]).await.unwrap()[0];
    log.set_checkpoint(s, "h", next).await.unwrap();
    log.commit(s, "h", None, vec![set("d", "1")]).await.unwrap();
    assert_eq!(log.checkpoint(s, "h").await.unwrap(), Some(next));
}

#[tokio::test]
async fn state_of_consumers_and_streams_is_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let s1 = stream();
    let s2 = StreamId::new(s1.channel, Uuid::new_v4());
    log.commit(s1, "a", None, vec![set("k", "a1")])
        .await
        .unwrap();
    // "ab" extends "a" byte-wise; "b" with key "k" against "a" with key "bk".
    log.commit(s1, "ab", None, vec![set("k", "ab1")])
        .await
        .unwrap();
    log.commit(s1, "a", None, vec![set("bk", "a-bk")])
        .await
        .unwrap();
    log.commit(s2, "a", None, vec![set("k", "a2")])
        .await
        .unwrap();
    assert_eq!(value(&log, s1, "a", "k").as_deref(), Some("a1"));
    assert_eq!(value(&log, s1, "ab", "k").as_deref(), Some("ab1"));
    assert_eq!(value(&log, s1, "a", "bk").as_deref(), Some("a-bk"));
    assert_eq!(value(&log, s1, "ab", ""), None);
    assert_eq!(value(&log, s2, "a", "k").as_deref(), Some("a2"));
    assert_eq!(value(&log, s2, "ab", "k"), None);
}

#[tokio::test]
async fn forget_consumer_removes_its_checkpoint_and_state_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let s = stream();
    let other_stream = StreamId::new(s.channel, Uuid::new_v4());
    let id = log.append(s, vec![Envelope::default()]).await.unwrap()[0];
    log.commit(s, "a", Some(id), vec![set("k1", "1"), set("k2", "2")])
        .await
        .unwrap();
    log.commit(s, "ab", Some(id), vec![set("k1", "keep")])
        .await
        .unwrap();
    log.commit(other_stream, "a", None, vec![set("k1", "keep")])
        .await
        .unwrap();

    log.forget_consumer(s, "a").await.unwrap();
    assert_eq!(log.checkpoint(s, "a").await.unwrap(), None);
    assert_eq!(value(&log, s, "a", "k1"), None);
    assert_eq!(value(&log, s, "a", "k2"), None);
    assert_eq!(log.checkpoint(s, "ab").await.unwrap(), Some(id));
    assert_eq!(value(&log, s, "ab", "k1").as_deref(), Some("keep"));
    assert_eq!(
        value(&log, other_stream, "a", "k1").as_deref(),
        Some("keep")
    );
    // Forgetting what is not there is fine; the name can be used again.
    log.forget_consumer(s, "nobody").await.unwrap();
    log.commit(s, "a", None, vec![set("k1", "new")])
        .await
        .unwrap();
    log.close().await.unwrap();

    let log = open(&dir);
    assert_eq!(log.checkpoint(s, "a").await.unwrap(), None);
    assert_eq!(value(&log, s, "a", "k1").as_deref(), Some("new"));
    assert_eq!(value(&log, s, "a", "k2"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_forgets_and_appends_stay_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_capped(&dir, 10, 10);
    let s = stream();
    let ids = log
        .append(s, (0..50).map(|_| Envelope::default()).collect())
        .await
        .unwrap();
    // Many writers at once, so that the same checkpoint and state keys meet in one group.
    let mut tasks = Vec::new();
    for t in 0..4 {
        let log = log.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let own = format!("own{t}");
            for (i, id) in ids.iter().enumerate() {
                let n = i.to_string();
                // Sent back to back, so they usually share a group: the later one must win.
                let (first, second) = tokio::join!(
                    log.commit(s, &own, Some(ids[0]), vec![set("n", "stale")]),
                    log.commit(s, &own, Some(*id), vec![set("n", &n)]),
                );
                first.unwrap();
                second.unwrap();
                log.commit(s, "shared", None, vec![set(&format!("t{t}"), &n)])
                    .await
                    .unwrap();
                log.append_logs(s.channel, vec![line(&format!("t{t}-{i}"))])
                    .await
                    .unwrap();
                if i % 10 == 0 {
                    log.forget_consumer(s, &format!("gone{t}")).await.unwrap();
                    log.append_dead_letter(s, letter(&n)).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let last = ids.last().copied();
    for t in 0..4 {
        assert_eq!(log.checkpoint(s, &format!("own{t}")).await.unwrap(), last);
        assert_eq!(
            value(&log, s, &format!("own{t}"), "n").as_deref(),
            Some("49")
        );
        assert_eq!(
            value(&log, s, "shared", &format!("t{t}")).as_deref(),
            Some("49")
        );
    }
    let lines = log.read_logs(s.channel, None, 100, NO_WAIT).await.unwrap();
    assert_eq!(lines.len(), 10);
    assert!(lines.windows(2).all(|w| w[0].id < w[1].id));
    let letters = log.read_dead_letters(s, None, 100).await.unwrap();
    assert_eq!(letters.len(), 10);
    log.close().await.unwrap();

    let log = open_capped(&dir, 10, 10);
    let reopened = log.read_logs(s.channel, None, 100, NO_WAIT).await.unwrap();
    assert_eq!(reopened, lines);
}

#[tokio::test]
async fn oversized_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let s = stream();
    let long = "x".repeat(70_000);
    assert!(matches!(
        log.commit(s, &long, None, vec![set("k", "v")]).await,
        Err(LogError::Invalid(_))
    ));
    assert!(matches!(
        log.commit(s, "h", None, vec![set(&long, "v")]).await,
        Err(LogError::Invalid(_))
    ));
    assert!(matches!(
        log.state(s, "h", &long),
        Err(LogError::Invalid(_))
    ));
    assert!(matches!(
        log.set_checkpoint(s, &long, Uuid::nil()).await,
        Err(LogError::Invalid(_))
    ));
    // The writer is still there.
    log.commit(s, "h", None, vec![set("k", "v")]).await.unwrap();
    assert_eq!(value(&log, s, "h", "k").as_deref(), Some("v"));
}
