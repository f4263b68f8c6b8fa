use super::*;
use crate::conformance::Harness;
use crate::{ManualClock, SweepObserver};
use proptest::prelude::*;
use std::sync::atomic::AtomicUsize;

fn store(
    settings: LockSettings,
) -> (
    MemoryLockStore,
    Arc<ManualClock>,
    mpsc::UnboundedReceiver<ExpiryEvent>,
) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let (s, rx) = MemoryLockStore::new(settings, clock.clone());
    (s, clock, rx)
}

/// Every expiry event published so far.
fn drain(rx: &mut mpsc::UnboundedReceiver<ExpiryEvent>) -> Vec<ExpiryEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// Hashes on the wheel, stale ones included.
fn filed_hashes(s: &MemoryLockStore) -> usize {
    s.inner
        .shards
        .iter()
        .map(|p| {
            let shard = p.lock();
            shard.wheel.values().map(|b| b.hashes.len()).sum::<usize>()
        })
        .sum()
}

fn harness() -> Harness {
    let (s, clock, events) = store(LockSettings::default());
    Harness {
        store: Arc::new(s),
        clock,
        events,
        prefix: String::new(),
    }
}

fn id(s: &str) -> LockId {
    LockId::parse(s).unwrap()
}

#[tokio::test]
async fn conformance_decision_table() {
    harness().decision_table().await;
}

#[tokio::test]
async fn conformance_expiry() {
    harness().expiry().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_one_winner() {
    harness().one_winner().await;
}

#[tokio::test]
async fn conformance_against_model() {
    for seed in 1..20 {
        harness().against_model(seed * 7919, 400).await;
    }
}

#[derive(Debug, Default)]
struct Count(AtomicUsize);
impl SweepObserver for Count {
    fn on_sweep(&self, removed: usize, _: Duration) {
        self.0.fetch_add(removed, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn sweeper_task_expires_and_publishes_once() {
    let settings = LockSettings {
        sweep_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let (s, clock, mut rx) = store(settings);
    let observed = Arc::new(Count::default());
    let handle = s.spawn_sweeper(Some(observed.clone()));
    for i in 0..3000 {
        s.lock(&format!("f{i}"), &id("L")).await.unwrap();
    }
    clock.advance(1_800_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(drain(&mut rx).len(), 3000);
    assert_eq!(observed.0.load(Ordering::SeqCst), 3000);
    assert_eq!(s.held().await.unwrap(), 0);
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        handle.is_finished(),
        "sweeper stops when the store is dropped"
    );
}

#[tokio::test]
async fn refresh_racing_the_sweeper_never_loses_the_lock() {
    let (s, clock, _rx) = store(LockSettings::default());
    for round in 0..200u64 {
        let f = format!("r{round}");
        s.lock(&f, &id("L")).await.unwrap();
        clock.advance(1_799_999);
        let s2 = s.clone();
        let f2 = f.clone();
        let refresher = tokio::spawn(async move { s2.refresh(&f2, &id("L")).await });
        let sweeper = {
            let s3 = s.clone();
            tokio::spawn(async move { s3.sweep_now() })
        };
        refresher.await.unwrap().unwrap();
        sweeper.await.unwrap();
        assert_eq!(s.get(&f).await.unwrap().as_deref(), Some("L"));
        s.unlock(&f, &id("L")).await.unwrap();
    }
}

#[tokio::test]
async fn forced_eviction_after_max_age() {
    let settings = LockSettings {
        max_age: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    let (s, clock, mut rx) = store(settings);
    s.lock("f", &id("L")).await.unwrap();
    for _ in 0..5 {
        clock.advance(600_000);
        s.refresh("f", &id("L")).await.unwrap();
    }
    clock.advance(600_000); // 60 minutes since the lock was set
    assert_eq!(s.get("f").await.unwrap(), None);
    assert_eq!(s.sweep_now(), 1);
    assert_eq!(rx.try_recv().unwrap().lock_id, "L");
}

#[tokio::test]
async fn sweeps_in_bounded_batches() {
    let settings = LockSettings {
        sweep_batch: 64,
        ..Default::default()
    };
    let (s, clock, _rx) = store(settings);
    for i in 0..1000 {
        s.lock(&format!("f{i}"), &id("L")).await.unwrap();
    }
    clock.advance(1_800_000);
    let (removed, _, _) = s.inner.sweep_batch(clock.now_ms());
    assert!(removed <= 64, "one batch removed {removed}");
    assert_eq!(s.sweep_now() + removed, 1000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_sequences_match_the_model(seed in any::<u64>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(harness().against_model(seed, 200));
    }
}

#[tokio::test]
async fn a_refreshed_lock_is_rescheduled_not_expired_and_unlock_leaves_no_index_entry() {
    let settings = LockSettings {
        ttl: Duration::from_secs(10),
        ..LockSettings::default()
    };
    let (s, clock, mut rx) = store(settings);
    let a = id("A");
    s.lock("f", &a).await.unwrap();
    clock.advance(6_000);
    s.refresh("f", &a).await.unwrap(); // deadline 10 s → 16 s; the index still says 10 s
    clock.advance(5_000); // t = 11 s: the indexed deadline has passed
    assert_eq!(s.sweep_now(), 0, "refreshed: rescheduled, not expired");
    assert_eq!(s.get("f").await.unwrap().as_deref(), Some("A"));
    assert!(rx.try_recv().is_err());
    clock.advance(5_000); // t = 16 s: the real deadline
    assert_eq!(s.sweep_now(), 1);
    assert_eq!(rx.try_recv().unwrap().file_id, "f");
    assert!(rx.try_recv().is_err(), "one expiry event");
    // Lock and unlock many times: the index keeps nothing behind.
    for _ in 0..100 {
        s.lock("g", &a).await.unwrap();
        s.refresh("g", &a).await.unwrap();
        s.unlock("g", &a).await.unwrap();
    }
    assert_eq!(filed_hashes(&s), 0);
    assert_eq!(s.held().await.unwrap(), 0);
}

#[tokio::test]
async fn sweep_now_removes_every_expired_lock_behind_refreshed_ones() {
    let settings = LockSettings {
        ttl: Duration::from_secs(10),
        sweep_batch: 16,
        ..LockSettings::default()
    };
    let (s, clock, mut rx) = store(settings);
    let a = id("A");
    // Refreshed locks indexed first (lower generations), expired ones after them.
    for i in 0..200 {
        s.lock(&format!("live-{i}"), &a).await.unwrap();
    }
    for i in 0..200 {
        s.lock(&format!("dead-{i}"), &a).await.unwrap();
    }
    clock.advance(5_000);
    for i in 0..200 {
        s.refresh(&format!("live-{i}"), &a).await.unwrap();
    }
    clock.advance(5_000);
    assert_eq!(
        s.sweep_now(),
        200,
        "every expired lock, past many rescheduled ones"
    );
    assert_eq!(s.held().await.unwrap(), 200);
    assert_eq!(drain(&mut rx).len(), 200);
}

#[tokio::test]
async fn lock_churn_beside_live_locks_does_not_grow_the_wheel() {
    let (s, clock, mut rx) = store(LockSettings::default());
    let a = id("A");
    // Live locks in every shard, filed in the bucket the churn goes to.
    for i in 0..1000 {
        s.lock(&format!("held-{i}"), &a).await.unwrap();
    }
    for _ in 0..20_000 {
        s.lock("churn", &a).await.unwrap();
        s.unlock("churn", &a).await.unwrap();
        s.unlock_and_relock("nothing", "A", &a).await.unwrap_err();
    }
    let filed = filed_hashes(&s);
    assert!(
        filed <= 1000 + 2 * 32,
        "{filed} hashes filed for 1000 live locks"
    );
    assert_eq!(s.held().await.unwrap(), 1000);
    clock.advance(1_800_000);
    assert_eq!(s.sweep_now(), 1000);
    assert_eq!(filed_hashes(&s), 0, "swept buckets leave the wheel");
    let events = drain(&mut rx);
    assert_eq!(events.len(), 1000);
    for e in events {
        assert!(e.file_id.starts_with("held-"), "{e:?}");
        assert_eq!(e.lock_id, "A");
    }
}

#[tokio::test]
async fn the_sweeper_removes_a_lock_within_one_tick_of_its_deadline() {
    // TTL 100 s: 97 ms buckets. A deadline that falls inside a bucket.
    let settings = LockSettings {
        ttl: Duration::from_secs(100),
        ..LockSettings::default()
    };
    let (s, clock, mut rx) = store(settings);
    let a = id("A");
    clock.advance(3);
    s.lock("f", &a).await.unwrap(); // deadline 1_100_003
    clock.advance(100_000);
    assert_eq!(s.get("f").await.unwrap(), None, "expired at its deadline");
    let (removed, _, next) = s.inner.sweep_batch(clock.now_ms());
    assert_eq!(removed, 0, "its bucket is not due yet");
    let next = next.expect("a bucket left");
    assert!(
        next > clock.now_ms() && next - clock.now_ms() <= 97,
        "due at {next}"
    );
    clock.advance(next - clock.now_ms());
    assert_eq!(s.inner.sweep_batch(clock.now_ms()).0, 1);
    assert_eq!(rx.try_recv().unwrap().file_id, "f");
    assert_eq!(s.sweep_now(), 0);
}

#[tokio::test]
async fn a_new_lock_id_on_a_live_lock_is_one_entry_with_the_new_id() {
    let (s, clock, mut rx) = store(LockSettings::default());
    s.lock("f", &id("A")).await.unwrap();
    s.unlock_and_relock("f", "A", &id("a-much-longer-lock-id-than-before"))
        .await
        .unwrap();
    assert_eq!(
        s.get("f").await.unwrap().as_deref(),
        Some("a-much-longer-lock-id-than-before")
    );
    assert_eq!(s.held().await.unwrap(), 1);
    clock.advance(1_800_000);
    assert_eq!(s.sweep_now(), 1);
    let e = rx.try_recv().unwrap();
    assert_eq!(
        (e.file_id.as_str(), e.lock_id.as_str()),
        ("f", "a-much-longer-lock-id-than-before")
    );
}

#[test]
fn an_entry_is_40_bytes_in_the_table() {
    // S5 (1 M live locks in 256 MiB) counts on it: the table holds entries inline.
    assert_eq!(std::mem::size_of::<Entry>(), 40);
}
