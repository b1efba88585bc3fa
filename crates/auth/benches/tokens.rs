//! Token issuance and bearer verification, against a bare HMAC-SHA256 of a token-sized input as
//! the baseline (the cryptographic floor of both operations).
//!
//! `cargo bench -p mh-auth --bench tokens` prints one line per case: operations per second, time
//! per operation and the ratio to the baseline, all measured in this one process.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use mh_auth::{decode_bearer, KeyRing, RevocationList, TokenService};
use sha2::Sha256;
use uuid::Uuid;

/// Runs `operation` repeatedly for about `budget` and returns seconds per operation.
fn measure(budget: Duration, mut operation: impl FnMut()) -> f64 {
    // Warm up caches and branch predictors.
    for _ in 0..1_000 {
        operation();
    }
    let started = Instant::now();
    let mut count: u64 = 0;
    while started.elapsed() < budget {
        for _ in 0..1_000 {
            operation();
        }
        count += 1_000;
    }
    started.elapsed().as_secs_f64() / count as f64
}

fn report(name: &str, seconds: f64, baseline: f64) {
    println!(
        "{name:<28} {:>12.0} ops/s {:>9.3} µs/op {:>7.2}x baseline",
        1.0 / seconds,
        seconds * 1e6,
        seconds / baseline
    );
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("MH_BENCH_MILLIS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000),
    );
    let dir = std::env::temp_dir().join(format!("mh-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let keys = KeyRing::load_or_create(&dir).expect("key ring");
    let revoked = Arc::new(RevocationList::default());
    // A realistic revocation list: lookups must stay O(1).
    revoked.replace((0..1_000).map(|_| Uuid::new_v4()));
    let service = TokenService::new(
        keys,
        revoked,
        "messagehandler",
        "http://api.messagehandler.net/",
    );
    let (account, client) = (Uuid::new_v4(), Uuid::new_v4());
    let expires = 4_000_000_000;
    let token = service.issue(account, client, expires);
    let bearer_value = base64::engine::general_purpose::STANDARD.encode(&token);

    let mac = Hmac::<Sha256>::new_from_slice(&[7u8; 32]).expect("any key length");
    let baseline = measure(budget, || {
        let mut m = mac.clone();
        m.update(black_box(token.as_bytes()));
        black_box(m.finalize());
    });

    println!(
        "machine: {} logical CPUs; budget {budget:?} per case",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    report("baseline hmac-sha256", baseline, baseline);
    let issue = measure(budget, || {
        black_box(service.issue(black_box(account), client, expires));
    });
    report("issue token", issue, baseline);
    let verify = measure(budget, || {
        black_box(service.verify(black_box(&token), 1_000)).ok();
    });
    report("verify token", verify, baseline);
    let bearer = measure(budget, || {
        let decoded = decode_bearer(black_box(&bearer_value));
        black_box(decoded.map(|t| service.verify(&t, 1_000).is_ok()));
    });
    report("decode base64 + verify", bearer, baseline);
    let _ = std::fs::remove_dir_all(&dir);
}
