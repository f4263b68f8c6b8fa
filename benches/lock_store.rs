//! Guards the lock table on the host face's hot path: a lock/refresh/unlock mix on 2 threads
//! for `MemoryLockStore` against a plain `DashMap` doing the same inserts/removes, and a
//! `Mutex<HashMap>` baseline, in the same run. Goals: ≥ 0.8× the plain map, ≥ 1M ops/s.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dashmap::DashMap;
use futures_util::FutureExt as _;
use locks::{LockSettings, LockStore, ManualClock, MemoryLockStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wopi::lock::LockId;

const THREADS: usize = 2;
const FILES_PER_THREAD: usize = 4096;

/// Runs `per_op(thread, i)` for `iters` operations split over 2 threads; the wall time.
fn run(iters: u64, per_op: impl Fn(usize, u64) + Sync) -> Duration {
    let per_thread = iters / THREADS as u64 + 1;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let f = &per_op;
            s.spawn(move || {
                for i in 0..per_thread {
                    f(t, i);
                }
            });
        }
    });
    start.elapsed()
}

fn names() -> Vec<Vec<String>> {
    (0..THREADS)
        .map(|t| {
            (0..FILES_PER_THREAD)
                .map(|i| format!("file-{t}-{i:05}"))
                .collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let names = names();
    let id =
        LockId::parse("{\"S\":\"0136ad16-9725-43c3-9ea0-5e01d2dbc162\",\"E\":2}").expect("lock id");
    let mut g = c.benchmark_group("lock_mix_2_threads");
    g.throughput(Throughput::Elements(1));
    // Each file cycles Lock → RefreshLock → Unlock (every op succeeds).
    g.bench_function("memory_lock_store", |b| {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let (store, _rx) = MemoryLockStore::new(LockSettings::default(), clock);
        b.iter_custom(|iters| {
            run(iters, |t, i| {
                let f = &names[t][(i / 3) as usize % FILES_PER_THREAD];
                let r = match i % 3 {
                    0 => store.lock(f, &id).now_or_never(),
                    1 => store.refresh(f, &id).now_or_never(),
                    _ => store.unlock(f, &id).now_or_never(),
                };
                debug_assert!(matches!(r, Some(Ok(()))));
            })
        });
    });
    g.bench_function("plain_dashmap", |b| {
        let map: DashMap<String, (String, u64)> = DashMap::new();
        b.iter_custom(|iters| {
            run(iters, |t, i| {
                let f = &names[t][(i / 3) as usize % FILES_PER_THREAD];
                match i % 3 {
                    0 => {
                        map.insert(f.clone(), (id.as_str().to_owned(), i));
                    }
                    1 => {
                        if let Some(mut e) = map.get_mut(f.as_str()) {
                            e.1 = i;
                        }
                    }
                    _ => {
                        map.remove(f.as_str());
                    }
                }
            })
        });
    });
    g.bench_function("mutex_hashmap", |b| {
        let map: Mutex<HashMap<String, (String, u64)>> = Mutex::new(HashMap::new());
        b.iter_custom(|iters| {
            run(iters, |t, i| {
                let f = &names[t][(i / 3) as usize % FILES_PER_THREAD];
                let mut m = map.lock().expect("poisoned");
                match i % 3 {
                    0 => {
                        m.insert(f.clone(), (id.as_str().to_owned(), i));
                    }
                    1 => {
                        if let Some(e) = m.get_mut(f.as_str()) {
                            e.1 = i;
                        }
                    }
                    _ => {
                        m.remove(f.as_str());
                    }
                }
            })
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
