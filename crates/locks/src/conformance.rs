//! The conformance suite every [`LockStore`] must pass, against a [`ManualClock`].
//!
//! It panics on the first violation (it is test support, shipped in the crate so that the
//! memory store's and the Redis store's tests run the very same checks).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::{ExpiryEvent, LockError, LockStore, ManualClock};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;
use wopi::lock::LockId;

/// What a run needs: a fresh store (TTL 1800 s, no max age), its clock and its events.
pub struct Harness {
    pub store: Arc<dyn LockStore>,
    pub clock: Arc<ManualClock>,
    pub events: UnboundedReceiver<ExpiryEvent>,
    /// A prefix making this run's file ids unique (stores may be shared, e.g. one Redis).
    pub prefix: String,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

const TTL_MS: u64 = 1_800_000;

fn id(s: &str) -> LockId {
    LockId::parse(s).unwrap()
}

fn conflict_lock(r: Result<(), LockError>) -> String {
    match r {
        Err(LockError::Conflict(c)) => c.current,
        other => panic!("expected a lock conflict, got {other:?}"),
    }
}

impl Harness {
    fn f(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Every row of the decision table (WOPI Lock, RefreshLock, Unlock, UnlockAndRelock, PutFile).
    pub async fn decision_table(&mut self) {
        let s = &self.store;
        let f = self.f("table");
        assert_eq!(s.get(&f).await.unwrap(), None);
        assert_eq!(conflict_lock(s.refresh(&f, &id("A")).await), "");
        assert_eq!(conflict_lock(s.unlock(&f, &id("A")).await), "");
        assert_eq!(
            conflict_lock(s.unlock_and_relock(&f, "A", &id("B")).await),
            ""
        );
        s.check_put(&f, None, Some(0)).await.unwrap();
        assert_eq!(conflict_lock(s.check_put(&f, None, Some(10)).await), "");
        assert_eq!(
            conflict_lock(s.check_put(&f, Some("A"), Some(10)).await),
            ""
        );
        s.check_modify(&f, None).await.unwrap();

        s.lock(&f, &id("A")).await.unwrap();
        assert_eq!(s.get(&f).await.unwrap().as_deref(), Some("A"));
        s.lock(&f, &id("A")).await.unwrap(); // same id: refresh
        assert_eq!(conflict_lock(s.lock(&f, &id("B")).await), "A");
        assert_eq!(conflict_lock(s.lock(&f, &id("a")).await), "A"); // exact comparison
        s.refresh(&f, &id("A")).await.unwrap();
        assert_eq!(conflict_lock(s.refresh(&f, &id("B")).await), "A");
        s.check_put(&f, Some("A"), Some(10)).await.unwrap();
        assert_eq!(
            conflict_lock(s.check_put(&f, Some("B"), Some(10)).await),
            "A"
        );
        assert_eq!(conflict_lock(s.check_put(&f, None, Some(0)).await), "A");
        s.check_modify(&f, Some("A")).await.unwrap();
        assert_eq!(conflict_lock(s.check_modify(&f, Some("")).await), "A");
        assert_eq!(conflict_lock(s.unlock(&f, &id("B")).await), "A");
        assert_eq!(
            conflict_lock(s.unlock_and_relock(&f, "B", &id("C")).await),
            "A"
        );
        s.unlock_and_relock(&f, "A", &id("C")).await.unwrap();
        assert_eq!(s.get(&f).await.unwrap().as_deref(), Some("C"));
        s.unlock(&f, &id("C")).await.unwrap();
        assert_eq!(s.get(&f).await.unwrap(), None);
        let long = "L".repeat(1024);
        s.lock(&f, &id(&long)).await.unwrap();
        assert_eq!(s.get(&f).await.unwrap().as_deref(), Some(long.as_str()));
        s.unlock(&f, &id(&long)).await.unwrap();
    }

    /// Expiry at exactly the TTL; refresh restarts it; an expired lock is no lock; one event each.
    pub async fn expiry(&mut self) {
        let f = self.f("exp");
        let g = self.f("exp2");
        self.store.lock(&f, &id("A")).await.unwrap();
        self.store.lock(&g, &id("G")).await.unwrap();
        self.clock.advance(TTL_MS - 1);
        assert_eq!(self.store.get(&f).await.unwrap().as_deref(), Some("A"));
        self.store.refresh(&g, &id("G")).await.unwrap();
        self.clock.advance(1);
        assert_eq!(
            self.store.get(&f).await.unwrap(),
            None,
            "expired exactly at ttl"
        );
        assert_eq!(
            self.store.get(&g).await.unwrap().as_deref(),
            Some("G"),
            "refreshed lock lives on"
        );
        assert_eq!(conflict_lock(self.store.unlock(&f, &id("A")).await), "");
        self.store.sweep_now().await.unwrap();
        self.store.sweep_now().await.unwrap();
        let ev = self.drain();
        assert_eq!(
            ev,
            vec![ExpiryEvent {
                file_id: f.clone(),
                lock_id: "A".into()
            }]
        );
        // Lock over an expired, unswept lock: allowed, and the old expiry is published once.
        self.store.lock(&f, &id("B")).await.unwrap();
        self.clock.advance(TTL_MS);
        self.store.lock(&f, &id("C")).await.unwrap();
        self.store.sweep_now().await.unwrap();
        let ev: Vec<_> = self
            .drain()
            .into_iter()
            .filter(|e| e.file_id == f)
            .collect();
        assert_eq!(
            ev,
            vec![ExpiryEvent {
                file_id: f.clone(),
                lock_id: "B".into()
            }]
        );
        self.store.unlock(&f, &id("C")).await.unwrap();
        self.clock.advance(TTL_MS);
        self.store.sweep_now().await.unwrap();
        let ev: Vec<_> = self
            .drain()
            .into_iter()
            .filter(|e| e.file_id == f)
            .collect();
        assert!(ev.is_empty(), "an unlocked file publishes no expiry");
        let _ = self.store.sweep_now().await;
        self.drain();
    }

    /// Many tasks lock the same file with different ids: exactly one wins.
    pub async fn one_winner(&mut self) {
        let f = self.f("race");
        let mut tasks = Vec::new();
        for i in 0..32 {
            let s = self.store.clone();
            let f = f.clone();
            tasks.push(tokio::spawn(async move {
                s.lock(&f, &id(&format!("L{i}"))).await.is_ok()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1);
    }

    /// A pseudo-random sequence of operations and clock moves against a plain model.
    pub async fn against_model(&mut self, seed: u64, steps: usize) {
        let mut rng = seed | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut model: HashMap<String, (String, u64)> = HashMap::new();
        let ids = ["A", "B", "C"];
        for _ in 0..steps {
            let file = self.f(&format!("m{}", next(3)));
            let lock = ids[next(3) as usize];
            let now = crate::Clock::now_ms(&*self.clock);
            let live = model
                .get(&file)
                .filter(|(_, d)| *d > now)
                .map(|(l, _)| l.clone());
            match next(6) {
                0 => {
                    let r = self.store.lock(&file, &id(lock)).await;
                    match live.as_deref() {
                        None => {
                            r.unwrap();
                            model.insert(file, (lock.into(), now + TTL_MS));
                        }
                        Some(l) if l == lock => {
                            r.unwrap();
                            model.insert(file, (lock.into(), now + TTL_MS));
                        }
                        Some(l) => assert_eq!(conflict_lock(r), l),
                    }
                }
                1 => {
                    let r = self.store.refresh(&file, &id(lock)).await;
                    match live.as_deref() {
                        Some(l) if l == lock => {
                            r.unwrap();
                            model.insert(file, (lock.into(), now + TTL_MS));
                        }
                        other => assert_eq!(conflict_lock(r), other.unwrap_or("")),
                    }
                }
                2 => {
                    let r = self.store.unlock(&file, &id(lock)).await;
                    match live.as_deref() {
                        Some(l) if l == lock => {
                            r.unwrap();
                            model.remove(&file);
                        }
                        other => assert_eq!(conflict_lock(r), other.unwrap_or("")),
                    }
                }
                3 => {
                    let new = ids[next(3) as usize];
                    let r = self.store.unlock_and_relock(&file, lock, &id(new)).await;
                    match live.as_deref() {
                        Some(l) if l == lock => {
                            r.unwrap();
                            model.insert(file, (new.into(), now + TTL_MS));
                        }
                        other => assert_eq!(conflict_lock(r), other.unwrap_or("")),
                    }
                }
                4 => assert_eq!(self.store.get(&file).await.unwrap(), live),
                _ => self.clock.advance(next(TTL_MS / 2)),
            }
        }
        let _ = self.store.sweep_now().await;
        self.drain();
    }

    fn drain(&mut self) -> Vec<ExpiryEvent> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }
}
