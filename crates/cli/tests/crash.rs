//! Durability over `kill -9`: clients ingest numbered messages (and direct messages to a device)
//! while the server is killed and restarted several times. Every acknowledged message must be
//! there afterwards, and retries with the same message id must not duplicate anything.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Server;
use serde_json::{json, Value};

/// Every fifth number is also sent to the device's inbox.
const DIRECT_EVERY: u64 = 5;
const SENDERS: usize = 4;

#[derive(Clone)]
struct Target {
    url: String,
    endpoint: String,
    signature: String,
    owner: String,
}

#[derive(Default)]
struct Outcome {
    acked: BTreeSet<u64>,
    direct_acked: BTreeSet<u64>,
    /// Attempted but not acknowledged: retried later with the same message id.
    unacked: BTreeSet<u64>,
    direct_unacked: BTreeSet<u64>,
}

async fn send_numbered(http: &reqwest::Client, target: &Target, n: u64) -> bool {
    http.post(format!(
        "{}/endpoints/{}/messages",
        target.url, target.endpoint
    ))
    .header("authorization", &target.signature)
    .header("content-type", "application/json")
    .header("x-mh-message-id", format!("n-{n}"))
    .body(json!({ "n": n }).to_string())
    .timeout(Duration::from_secs(5))
    .send()
    .await
    .is_ok_and(|r| r.status().is_success())
}

async fn send_direct(http: &reqwest::Client, target: &Target, n: u64) -> bool {
    http.post(format!(
        "{}/endpoints/{}/inbox",
        target.url, target.endpoint
    ))
    .header("authorization", &target.owner)
    .header("x-mh-device", "dev")
    .header("x-mh-message-id", format!("d-{n}"))
    .header("content-type", "application/json")
    .body(json!({ "d": n }).to_string())
    .timeout(Duration::from_secs(5))
    .send()
    .await
    .is_ok_and(|r| r.status().is_success())
}

/// Sends new numbers until `stop`, from several concurrent senders so that commits are grouped.
async fn ingest(target: Target, next: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Outcome {
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (target, next, stop) = (target.clone(), next.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut outcome = Outcome::default();
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if send_numbered(&http, &target, n).await {
                    outcome.acked.insert(n);
                } else {
                    outcome.unacked.insert(n);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if n % DIRECT_EVERY == 0 {
                    if send_direct(&http, &target, n).await {
                        outcome.direct_acked.insert(n);
                    } else {
                        outcome.direct_unacked.insert(n);
                    }
                }
            }
            outcome
        }));
    }
    let mut total = Outcome::default();
    for sender in senders {
        let outcome = sender.await.unwrap();
        total.acked.extend(outcome.acked);
        total.direct_acked.extend(outcome.direct_acked);
        total.unacked.extend(outcome.unacked);
        total.direct_unacked.extend(outcome.direct_unacked);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_messages_survive_kill_9_and_retries_do_not_duplicate() {
    let mut server = Server::start(&[]);
    let credentials = server.create_account("acme", &[]);
    let owner = server.bearer(&credentials).await;
    let (status, _) = server
        .post_json("/channels", &owner, json!({"name": "crash"}))
        .await;
    assert_eq!(status, 201);
    let (status, endpoints) = server
        .post_json(
            "/endpoints/assign",
            &owner,
            json!({"name": "crash", "routes": [{"channel": "crash", "environment": "local", "direction": "in"}]}),
        )
        .await;
    assert_eq!(status, 201, "{endpoints}");
    let endpoint = endpoints[0]["identifier"].as_str().unwrap().to_string();
    let signature = endpoints[0]["signatures"]["inbound"]
        .as_str()
        .unwrap()
        .to_string();
    let registered = server
        .request(
            "POST",
            &format!("/devices/register/{endpoint}/dev"),
            &[],
            "",
        )
        .await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    let device = format!(
        "Bearer {}",
        registered.body["access_token"].as_str().unwrap()
    );

    let next = Arc::new(AtomicU64::new(0));
    let mut total = Outcome::default();
    for round in 0..4 {
        let target = Target {
            url: server.url.clone(),
            endpoint: endpoint.clone(),
            signature: signature.clone(),
            owner: owner.clone(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let running = tokio::spawn(ingest(target, next.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(600 + 200 * round)).await;
        if round < 3 {
            // Killed while the senders are mid-request.
            server = tokio::task::spawn_blocking(move || server.restart_after_kill())
                .await
                .unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let outcome = running.await.unwrap();
        total.acked.extend(outcome.acked);
        total.direct_acked.extend(outcome.direct_acked);
        total.unacked.extend(outcome.unacked);
        total.direct_unacked.extend(outcome.direct_unacked);
    }
    assert!(
        total.acked.len() > 100,
        "too little traffic: {}",
        total.acked.len()
    );

    // A client retries what it did not see acknowledged, with the same message ids.
    let http = reqwest::Client::new();
    let target = Target {
        url: server.url.clone(),
        endpoint: endpoint.clone(),
        signature,
        owner: owner.clone(),
    };
    for n in std::mem::take(&mut total.unacked) {
        assert!(send_numbered(&http, &target, n).await, "retry of {n}");
        total.acked.insert(n);
    }
    for n in std::mem::take(&mut total.direct_unacked) {
        assert!(send_direct(&http, &target, n).await, "retry of direct {n}");
        total.direct_acked.insert(n);
    }

    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = "/channels/crash/messages?max=1000".to_string();
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let (status, page) = server.get(&path, &owner).await;
        assert_eq!(status, 200, "{page}");
        let messages = page["messages"].as_array().unwrap();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let body: Value = serde_json::from_str(message["body"].as_str().unwrap()).unwrap();
            *seen.entry(body["n"].as_u64().unwrap()).or_default() += 1;
        }
        after = messages.last().unwrap()["id"].as_str().map(str::to_string);
    }
    let missing: Vec<_> = total
        .acked
        .iter()
        .filter(|n| !seen.contains_key(n))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let doubled: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
    assert!(doubled.is_empty(), "stored twice: {doubled:?}");

    let mut inbox = BTreeSet::new();
    loop {
        let answer = server
            .request(
                "GET",
                &format!("/endpoints/{endpoint}/messages?max=1000"),
                &[("authorization", &device)],
                "",
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let messages = answer.body["messages"].as_array().unwrap().clone();
        if messages.is_empty() {
            break;
        }
        for delivery in messages {
            let body: Value =
                serde_json::from_str(delivery["message"]["body"].as_str().unwrap()).unwrap();
            inbox.insert(body["d"].as_u64().unwrap());
        }
    }
    let lost: Vec<_> = total.direct_acked.difference(&inbox).collect();
    assert!(
        lost.is_empty(),
        "acknowledged direct messages lost: {lost:?}"
    );
}
