//! Memory and latency of the lock table at scale (not criterion: one run, printed figures).
//! Holds 1M live locks and reports RSS; then measures the p99 latency of `get` on live keys
//! while the sweeper removes 1M expired locks, against the p99 without a sweep.
//! Goals: RSS ≤ 256 MiB for 1M locks; p99 during the sweep ≤ 1.2× p99 without.
//! Run: `cargo bench --bench lock_memory`.

use futures_util::FutureExt as _;
use locks::{LockSettings, LockStore, ManualClock, MemoryLockStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use wopi::lock::LockId;

/// The gateway's allocator (crates/wopi-gateway/main.rs), so the figure is the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const N: usize = 1_000_000;
const SAMPLES: usize = 400_000;

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn p99_get(store: &MemoryLockStore, keys: &[String]) -> f64 {
    let mut lat = Vec::with_capacity(SAMPLES);
    let mut x: u64 = 88172645463325252;
    for _ in 0..SAMPLES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = &keys[(x % keys.len() as u64) as usize];
        let t = Instant::now();
        let r = store.get(k).now_or_never();
        lat.push(t.elapsed().as_nanos() as u64);
        assert!(matches!(r, Some(Ok(Some(_)))));
    }
    lat.sort_unstable();
    lat[lat.len() * 99 / 100] as f64
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return; // `cargo test --benches` smoke mode
    }
    let id =
        LockId::parse("{\"S\":\"0136ad16-9725-43c3-9ea0-5e01d2dbc162\",\"E\":2}").expect("lock id");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let (store, mut rx) = MemoryLockStore::new(
        LockSettings {
            sweep_batch: 1024,
            ..Default::default()
        },
        clock.clone(),
    );
    let base = rss_mib();
    let live: Vec<String> = (0..N).map(|i| format!("live-file-{i:08}")).collect();
    for k in &live {
        store
            .lock(k, &id)
            .now_or_never()
            .expect("sync")
            .expect("lock");
    }
    let with_1m = rss_mib();
    println!(
        "rss_1m_live_locks_mib={:.1} (process {:.1} MiB before, {:.1} after)",
        with_1m - base,
        base,
        with_1m
    );

    // 1M more locks that will be expired when the clock moves; the live ones get refreshed.
    let dead: Vec<String> = (0..N).map(|i| format!("dead-file-{i:08}")).collect();
    for k in &dead {
        store
            .lock(k, &id)
            .now_or_never()
            .expect("sync")
            .expect("lock");
    }
    clock.advance(1_000_000);
    for k in &live {
        store
            .refresh(k, &id)
            .now_or_never()
            .expect("sync")
            .expect("refresh");
    }
    clock.advance(800_000); // dead: 1800 s old → expired; live: 800 s since refresh
    let quiet = p99_get(&store, &live);
    let sweeping = Arc::new(AtomicBool::new(true));
    let s2 = store.clone();
    let flag = sweeping.clone();
    let sweeper = std::thread::spawn(move || {
        let t = Instant::now();
        let n = s2.sweep_now();
        flag.store(false, Ordering::SeqCst);
        (n, t.elapsed())
    });
    let mut during = Vec::new();
    while sweeping.load(Ordering::SeqCst) {
        during.push(p99_get(&store, &live));
    }
    let (removed, took) = sweeper.join().expect("sweeper");
    let mut expired = 0;
    while rx.try_recv().is_ok() {
        expired += 1;
    }
    let worst = during.iter().copied().fold(0.0, f64::max);
    let median_during = {
        let mut d = during.clone();
        d.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        d.get(d.len() / 2).copied().unwrap_or(quiet)
    };
    println!(
        "sweep_removed={removed} expiry_events={expired} sweep_seconds={:.3}",
        took.as_secs_f64()
    );
    println!(
        "get_p99_ns_quiet={quiet:.0} get_p99_ns_during_sweep_median={median_during:.0} worst={worst:.0} rounds={}",
        during.len()
    );
    println!("ratio_p99_during_over_quiet={:.2}", median_during / quiet);
}
