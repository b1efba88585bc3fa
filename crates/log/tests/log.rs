//! The embedded log against its trait contracts, on a real engine in a temp dir.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mh_log::{EmbeddedLog, Envelope, Inboxes, LogError, LogOptions, MessageLog, StreamId};
use uuid::Uuid;

fn open(dir: &tempfile::TempDir) -> EmbeddedLog {
    EmbeddedLog::open(dir.path(), LogOptions::default()).unwrap()
}

fn msg(body: &str) -> Envelope {
    Envelope {
        partition_key: "p".into(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        ..Default::default()
    }
}

fn keyed(body: &str, key: &str) -> Envelope {
    Envelope {
        idempotency_key: Some(key.into()),
        ..msg(body)
    }
}

fn to_device(body: &str, device: &str) -> Envelope {
    Envelope {
        device: Some(device.into()),
        ..msg(body)
    }
}

fn stream() -> StreamId {
    StreamId::new(Uuid::new_v4(), Uuid::new_v4())
}

fn bodies(messages: &[Envelope]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect()
}

const NO_WAIT: Duration = Duration::ZERO;
const LOCK: Duration = Duration::from_secs(30);

#[tokio::test]
async fn append_then_read_in_order_with_paging() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let s = stream();
    let mut full = msg("a");
    full.properties.insert("k".into(), "v".into());
    full.content_type = Some("text/plain".into());
    full.subject = Some("out".into());
    full.endpoint = Some(Uuid::new_v4());
    full.device = Some("dev-1".into());
    full.hops = 3;
    let ids1 = log.append(s, vec![full.clone(), msg("b")]).await.unwrap();
    let ids2 = log.append(s, vec![msg("c")]).await.unwrap();
    assert!(ids1[0] < ids1[1] && ids1[1] < ids2[0]);
    assert_eq!(ids1[0].get_version_num(), 7);

    let all = log.read(s, None, 10, NO_WAIT).await.unwrap();
    assert_eq!(bodies(&all), ["a", "b", "c"]);
    let first = &all[0];
    assert_eq!(first.id, ids1[0]);
    assert_eq!(first.channel, Some(s.channel));
    assert_eq!(first.environment, Some(s.environment));
    assert!(first.enqueued_at > 0);
    assert_eq!(first.properties, full.properties);
    assert_eq!(first.content_type, full.content_type);
    assert_eq!(first.subject, full.subject);
    assert_eq!(first.endpoint, full.endpoint);
    assert_eq!(first.device, full.device);
    assert_eq!(first.hops, 3);

    // Paging: `after` is exclusive, `max` caps, across group boundaries.
    let page = log.read(s, Some(ids1[0]), 1, NO_WAIT).await.unwrap();
    assert_eq!(bodies(&page), ["b"]);
    let page = log.read(s, Some(ids1[1]), 10, NO_WAIT).await.unwrap();
    assert_eq!(bodies(&page), ["c"]);
    assert!(log
        .read(s, Some(ids2[0]), 10, NO_WAIT)
        .await
        .unwrap()
        .is_empty());
    // Another stream is separate.
    assert!(log
        .read(stream(), None, 10, NO_WAIT)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn long_poll_wakes_on_append_and_times_out_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let s = stream();

    let started = Instant::now();
    let empty = log
        .read(s, None, 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(empty.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(190));

    let reader = {
        let log = log.clone();
        tokio::spawn(async move { log.read(s, None, 10, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    log.append(s, vec![msg("x")]).await.unwrap();
    let got = reader.await.unwrap().unwrap();
    assert_eq!(bodies(&got), ["x"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn checkpoints_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = stream();
    let log = open(&dir);
    assert_eq!(log.checkpoint(s, "h1").await.unwrap(), None);
    let ids = log.append(s, vec![msg("a"), msg("b")]).await.unwrap();
    log.set_checkpoint(s, "h1", ids[0]).await.unwrap();
    log.set_checkpoint(s, "h1", ids[1]).await.unwrap();
    log.set_checkpoint(s, "h2", ids[0]).await.unwrap();
    log.close().await.unwrap();

    let log = open(&dir);
    assert_eq!(log.checkpoint(s, "h1").await.unwrap(), Some(ids[1]));
    assert_eq!(log.checkpoint(s, "h2").await.unwrap(), Some(ids[0]));
    // The stream survived too, and new ids keep increasing.
    let all = log.read(s, None, 10, NO_WAIT).await.unwrap();
    assert_eq!(bodies(&all), ["a", "b"]);
    let next = log.append(s, vec![msg("c")]).await.unwrap();
    assert!(next[0] > ids[1]);
}

#[tokio::test]
async fn idempotency_key_stores_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = stream();
    let log = open(&dir);
    let first = log
        .append(s, vec![keyed("a", "k1"), keyed("b", "k2")])
        .await
        .unwrap();
    // Same key twice in one request, and again in a retry.
    let again = log
        .append(
            s,
            vec![keyed("a", "k1"), keyed("c", "k3"), keyed("c", "k3")],
        )
        .await
        .unwrap();
    assert_eq!(again[0], first[0]);
    assert_eq!(again[1], again[2]);
    log.close().await.unwrap();

    // And after a restart.
    let log = open(&dir);
    let retry = log.append(s, vec![keyed("b", "k2")]).await.unwrap();
    assert_eq!(retry[0], first[1]);
    let all = log.read(s, None, 10, NO_WAIT).await.unwrap();
    assert_eq!(bodies(&all), ["a", "b", "c"]);
    // Keys are per stream.
    let other = log.append(stream(), vec![keyed("a", "k1")]).await.unwrap();
    assert_ne!(other[0], first[0]);

    let inbox = Uuid::new_v4();
    let a = log.enqueue(inbox, vec![keyed("a", "k1")]).await.unwrap();
    let b = log.enqueue(inbox, vec![keyed("a", "k1")]).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(
        log.receive(inbox, None, 10, LOCK, NO_WAIT)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn inbox_receive_lock_complete_abandon() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let inbox = Uuid::new_v4();
    let ids = log.enqueue(inbox, vec![msg("a"), msg("b")]).await.unwrap();

    let got = log.receive(inbox, None, 1, LOCK, NO_WAIT).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message.id, ids[0]);
    assert_eq!(got[0].delivery_count, 1);
    assert!(got[0].locked_until > 0);
    assert!(got[0].lock_token.len() >= 32);

    // Locked messages are invisible; the next receiver gets the next one.
    let second = log.receive(inbox, None, 10, LOCK, NO_WAIT).await.unwrap();
    assert_eq!(bodies(&[second[0].message.clone()]), ["b"]);
    assert_eq!(second.len(), 1);

    // Tokens are bound to their inbox.
    let other = Uuid::new_v4();
    assert!(matches!(
        log.complete(other, &got[0].lock_token).await,
        Err(LogError::LockLost)
    ));

    log.complete(inbox, &got[0].lock_token).await.unwrap();
    assert!(matches!(
        log.complete(inbox, &got[0].lock_token).await,
        Err(LogError::LockLost)
    ));
    log.abandon(inbox, &second[0].lock_token).await.unwrap();
    let again = log.receive(inbox, None, 10, LOCK, NO_WAIT).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message.id, ids[1]);
    assert_eq!(again[0].delivery_count, 2);
    assert_ne!(again[0].lock_token, second[0].lock_token);
    log.complete(inbox, &again[0].lock_token).await.unwrap();
    assert!(log
        .receive(inbox, None, 10, LOCK, NO_WAIT)
        .await
        .unwrap()
        .is_empty());

    // Long poll: woken by an enqueue.
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move {
            log.receive(inbox, None, 10, LOCK, Duration::from_secs(10))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    log.enqueue(inbox, vec![msg("late")]).await.unwrap();
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(bodies(&[got[0].message.clone()]), ["late"]);
}

#[tokio::test]
async fn expired_lock_redelivers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let inbox = Uuid::new_v4();
    log.enqueue(inbox, vec![msg("a")]).await.unwrap();
    let short = Duration::from_millis(100);
    let first = log.receive(inbox, None, 10, short, NO_WAIT).await.unwrap();
    assert_eq!(first.len(), 1);
    // A long poll wakes up when the lock expires.
    let started = Instant::now();
    let again = log
        .receive(inbox, None, 10, LOCK, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(again[0].delivery_count, 2);
    // The expired token no longer works.
    assert!(matches!(
        log.complete(inbox, &first[0].lock_token).await,
        Err(LogError::LockLost)
    ));
    log.complete(inbox, &again[0].lock_token).await.unwrap();
}

#[tokio::test]
async fn dead_letter_after_max_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(
        dir.path(),
        LogOptions {
            max_delivery_count: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let inbox = Uuid::new_v4();
    let ids = log
        .enqueue(inbox, vec![msg("poison"), msg("ok")])
        .await
        .unwrap();
    for n in 1..=3 {
        let got = log.receive(inbox, None, 1, LOCK, NO_WAIT).await.unwrap();
        assert_eq!(got[0].message.id, ids[0]);
        assert_eq!(got[0].delivery_count, n);
        log.abandon(inbox, &got[0].lock_token).await.unwrap();
    }
    let dead = log.dead_letters(inbox, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.id, ids[0]);
    assert_eq!(dead[0].delivery_count, 3);
    assert_eq!(dead[0].reason, "MaxDeliveryCountExceeded");
    let rest = log.receive(inbox, None, 10, LOCK, NO_WAIT).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].message.id, ids[1]);

    // By lock expiry too, and it survives a reopen.
    let inbox2 = Uuid::new_v4();
    log.enqueue(inbox2, vec![msg("slow")]).await.unwrap();
    for _ in 0..3 {
        let got = log
            .receive(
                inbox2,
                None,
                1,
                Duration::from_millis(20),
                Duration::from_secs(2),
            )
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert_eq!(log.dead_letters(inbox2, 10).await.unwrap().len(), 1);
    log.close().await.unwrap();
    let log = open(&dir);
    assert_eq!(log.dead_letters(inbox2, 10).await.unwrap().len(), 1);
    assert!(log
        .receive(inbox2, None, 10, LOCK, NO_WAIT)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn device_targeting() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let inbox = Uuid::new_v4();
    log.enqueue(
        inbox,
        vec![to_device("for-a", "a"), msg("any"), to_device("for-b", "b")],
    )
    .await
    .unwrap();
    // No device: only untargeted messages.
    let none = log.receive(inbox, None, 10, LOCK, NO_WAIT).await.unwrap();
    assert_eq!(bodies(&[none[0].message.clone()]), ["any"]);
    assert_eq!(none.len(), 1);
    log.abandon(inbox, &none[0].lock_token).await.unwrap();
    // Device a: its own and untargeted, in order; never b's.
    let a = log
        .receive(inbox, Some("a"), 10, LOCK, NO_WAIT)
        .await
        .unwrap();
    let got: Vec<_> = a.iter().map(|d| d.message.clone()).collect();
    assert_eq!(bodies(&got), ["for-a", "any"]);
    let b = log
        .receive(inbox, Some("b"), 10, LOCK, NO_WAIT)
        .await
        .unwrap();
    let got: Vec<_> = b.iter().map(|d| d.message.clone()).collect();
    assert_eq!(bodies(&got), ["for-b"]);
    assert!(log
        .receive(inbox, Some("c"), 10, LOCK, NO_WAIT)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn reopen_keeps_inboxes_and_releases_locks() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Uuid::new_v4();
    let log = open(&dir);
    let ids = log
        .enqueue(inbox, vec![msg("a"), to_device("b", "dev"), msg("c")])
        .await
        .unwrap();
    let locked = log.receive(inbox, None, 1, LOCK, NO_WAIT).await.unwrap();
    assert_eq!(locked[0].message.id, ids[0]);
    let done = log.receive(inbox, None, 1, LOCK, NO_WAIT).await.unwrap();
    log.complete(inbox, &done[0].lock_token).await.unwrap();
    log.close().await.unwrap();

    let log = open(&dir);
    // The outstanding lock is gone: "a" is visible again, its delivery counted.
    let got = log
        .receive(inbox, Some("dev"), 10, LOCK, NO_WAIT)
        .await
        .unwrap();
    let ids_got: Vec<_> = got.iter().map(|d| d.message.id).collect();
    assert_eq!(ids_got, [ids[0], ids[1]]);
    assert_eq!(got[0].delivery_count, 2);
    assert!(matches!(
        log.complete(inbox, &locked[0].lock_token).await,
        Err(LogError::LockLost)
    ));
    // New ids stay above the old ones.
    let next = log.enqueue(inbox, vec![msg("d")]).await.unwrap();
    assert!(next[0] > ids[2]);
}

#[tokio::test]
async fn purge_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(
        dir.path(),
        LogOptions {
            max_delivery_count: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let inbox = Uuid::new_v4();
    log.enqueue(inbox, vec![msg("a"), keyed("b", "k")])
        .await
        .unwrap();
    let got = log.receive(inbox, None, 1, LOCK, NO_WAIT).await.unwrap();
    log.abandon(inbox, &got[0].lock_token).await.unwrap();
    assert_eq!(log.dead_letters(inbox, 10).await.unwrap().len(), 1);
    log.purge(inbox).await.unwrap();
    assert!(log
        .receive(inbox, None, 10, LOCK, NO_WAIT)
        .await
        .unwrap()
        .is_empty());
    assert!(log.dead_letters(inbox, 10).await.unwrap().is_empty());
    // The idempotency key went with it.
    let again = log.enqueue(inbox, vec![keyed("b", "k")]).await.unwrap();
    let got = log.receive(inbox, None, 10, LOCK, NO_WAIT).await.unwrap();
    assert_eq!(got[0].message.id, again[0]);
    log.close().await.unwrap();
    let log = open(&dir);
    assert_eq!(
        log.receive(inbox, None, 10, LOCK, NO_WAIT)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let s = stream();
    let log = Arc::new(open(&dir));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                let batch = (0..10).map(|j| msg(&format!("{t}-{i}-{j}"))).collect();
                ids.extend(log.append(s, batch).await.unwrap());
            }
            ids
        }));
    }
    let mut all_ids = Vec::new();
    for t in tasks {
        all_ids.extend(t.await.unwrap());
    }
    assert_eq!(all_ids.len(), 16 * 20 * 10);
    let log = Arc::try_unwrap(log).ok().unwrap();
    log.close().await.unwrap();

    let log = open(&dir);
    let mut read = Vec::new();
    let mut after = None;
    loop {
        let page = log.read(s, after, 500, NO_WAIT).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        read.extend(page);
    }
    let read_ids: Vec<_> = read.iter().map(|m| m.id).collect();
    let mut sorted = read_ids.clone();
    sorted.sort();
    assert_eq!(read_ids, sorted, "reads come in id order");
    all_ids.sort();
    assert_eq!(read_ids, all_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_messages_stay_gone_after_reopen() {
    // Receives (delivery counts, not waited for) and completions of the same messages land in
    // the same commit groups; the completion must win.
    let dir = tempfile::tempdir().unwrap();
    let inbox = Uuid::new_v4();
    let s = stream();
    let log = open(&dir);
    log.enqueue(inbox, (0..200).map(|i| msg(&i.to_string())).collect())
        .await
        .unwrap();
    let ids = log.append(s, vec![msg("a"), msg("b")]).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let got = log.receive(inbox, None, 5, LOCK, NO_WAIT).await.unwrap();
                if got.is_empty() {
                    break;
                }
                for d in got {
                    log.complete(inbox, &d.lock_token).await.unwrap();
                }
            }
        }));
    }
    let setters: Vec<_> = (0..8)
        .map(|i| {
            let log = log.clone();
            let position = ids[i % 2];
            tokio::spawn(async move { log.set_checkpoint(s, "c", position).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    for t in setters {
        t.await.unwrap().unwrap();
    }
    log.set_checkpoint(s, "c", ids[1]).await.unwrap();
    log.close().await.unwrap();
    let log = open(&dir);
    assert!(log
        .receive(inbox, None, 10, LOCK, NO_WAIT)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(log.checkpoint(s, "c").await.unwrap(), Some(ids[1]));
}
