//! [`MemoryLockStore`]: locks in a DashMap, expiries in a sharded deadline index, one sweeper.
//!
//! The deadline index is lazy: a lock is indexed once, when it is created, at its deadline
//! then. A refresh (or a new lock id on a live lock) only moves the deadline in the map — it
//! never moves a deadline earlier — and the sweeper, when the indexed deadline comes, either
//! removes the lock (it did expire) or indexes it again at its current deadline. So a refresh
//! costs no index work, and an unlock removes its one index entry.
//!
//! Lock ordering: an operation holds the DashMap shard of its file while it updates the
//! deadline index (shard → index). The sweeper takes an index shard alone, releases it, then
//! handles each candidate through the map (map shard → index when it reschedules), so the
//! two never wait on each other in opposite orders. Each entry names its one live index entry
//! by `index_gen`: anything else the sweeper finds for the key is stale and dropped.

use crate::{Clock, ExpiryEvent, LockError, LockSettings, LockStore, SweepObserver};
use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use wopi::lock::{self as rules, LockAction, LockConflict, LockId};

const INDEX_SHARDS: usize = 16;

/// Hands out generation numbers without a shared counter on the hot path: each thread takes a
/// block of 2^32 numbers from `NEXT_BLOCK` once, then counts locally.
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static LOCAL_GEN: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

fn next_generation() -> u64 {
    LOCAL_GEN.with(|cell| {
        let (mut next, mut end) = cell.get();
        if next == end {
            next = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) << 32;
            end = next + (1 << 32);
        }
        cell.set((next + 1, end));
        next
    })
}

#[derive(Debug)]
struct Entry {
    lock_id: Box<str>,
    /// When it expires: min(last set/refresh + ttl, created + max_age). Only ever grows.
    deadline: u64,
    created: u64,
    /// The deadline and generation of this lock's one live index entry.
    indexed: (u64, u64),
}

type IndexKey = (u64, u64, Arc<str>);

#[derive(Debug)]
struct Inner {
    map: DashMap<Arc<str>, Entry>,
    index: Vec<Mutex<BTreeSet<IndexKey>>>,
    /// The deadline the sweeper sleeps until (u64::MAX when idle); earlier ones wake it.
    sleeping_until: AtomicU64,
    wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
    settings: LockSettings,
    events: mpsc::UnboundedSender<ExpiryEvent>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Lets the sweeper notice the store is gone and stop.
        self.wake.notify_one();
    }
}

/// The default lock store: in-process, for one gateway instance.
#[derive(Debug, Clone)]
pub struct MemoryLockStore {
    inner: Arc<Inner>,
}

fn index_shard(file: &str) -> usize {
    // FNV-1a: cheap and good enough to spread file ids over 16 shards.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in file.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % INDEX_SHARDS as u64) as usize
}

impl MemoryLockStore {
    /// A store and the receiver of its expiry events. No sweeper runs until [`Self::spawn_sweeper`].
    pub fn new(
        settings: LockSettings,
        clock: Arc<dyn Clock>,
    ) -> (Self, mpsc::UnboundedReceiver<ExpiryEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let inner = Inner {
            map: DashMap::new(),
            index: (0..INDEX_SHARDS)
                .map(|_| Mutex::new(BTreeSet::new()))
                .collect(),
            sleeping_until: AtomicU64::new(u64::MAX),
            wake: Arc::new(Notify::new()),
            clock,
            settings,
            events,
        };
        (
            MemoryLockStore {
                inner: Arc::new(inner),
            },
            rx,
        )
    }

    /// Starts the sweeper task; it stops when the last handle to the store is dropped.
    pub fn spawn_sweeper(
        &self,
        observer: Option<Arc<dyn SweepObserver>>,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.clone();
        tokio::spawn(sweeper(weak, wake, observer))
    }

    /// Runs one sweep now (all expired locks, in batches); returns how many were removed.
    pub fn sweep_now(&self) -> usize {
        let now = self.inner.clock.now_ms();
        let mut total = 0;
        loop {
            let (removed, more, _) = self.inner.sweep_batch(now);
            total += removed;
            if !more {
                return total;
            }
        }
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Applies `rule` to the file's live lock; on Set the lock becomes `new_id`.
    fn update(
        &self,
        file: &str,
        new_id: Option<&str>,
        rule: impl Fn(Option<&str>) -> Result<LockAction, LockConflict>,
    ) -> Result<(), LockError> {
        let inner = &*self.inner;
        let now = self.now();
        loop {
            if let Some(mut e) = inner.map.get_mut(file) {
                if e.deadline <= now {
                    // Expired but not swept yet: it is no lock. Remove it here (and publish
                    // its expiry, once: the sweeper's compare-and-remove will miss it).
                    let key = e.key().clone();
                    drop(e);
                    inner.expire_if(&key, None);
                    continue;
                }
                let action = rule(Some(&e.lock_id))?;
                match action {
                    LockAction::Set | LockAction::Refresh => {
                        if action == LockAction::Set {
                            e.lock_id = new_id.unwrap_or_default().into();
                            e.created = now;
                        }
                        // Later than before: the index entry stays, the sweeper reschedules.
                        e.deadline = inner.deadline(now, e.created).max(e.deadline);
                    }
                    LockAction::Remove => {
                        let key = e.key().clone();
                        let indexed = e.indexed;
                        drop(e);
                        if inner
                            .map
                            .remove_if(&key, |_, v| v.indexed == indexed)
                            .is_some()
                        {
                            inner.unindex(&key, indexed);
                        }
                    }
                    LockAction::None => {}
                }
                return Ok(());
            }
            let action = rule(None)?;
            if action != LockAction::Set {
                return Ok(());
            }
            let key: Arc<str> = Arc::from(file);
            match inner.map.entry(key.clone()) {
                MapEntry::Occupied(_) => continue, // raced with another writer: decide again
                MapEntry::Vacant(v) => {
                    let deadline = inner.deadline(now, now);
                    let indexed = (deadline, next_generation());
                    v.insert(Entry {
                        lock_id: new_id.unwrap_or_default().into(),
                        deadline,
                        created: now,
                        indexed,
                    });
                    inner.index_insert(&key, indexed);
                    return Ok(());
                }
            }
        }
    }

    fn current(&self, file: &str) -> Option<String> {
        let now = self.now();
        self.inner
            .map
            .get(file)
            .filter(|e| e.deadline > now)
            .map(|e| e.lock_id.to_string())
    }
}

impl Inner {
    fn deadline(&self, now: u64, created: u64) -> u64 {
        let by_ttl = now.saturating_add(self.settings.ttl.as_millis() as u64);
        match self.settings.max_age {
            Some(max) => by_ttl.min(created.saturating_add(max.as_millis() as u64)),
            None => by_ttl,
        }
    }

    fn index_insert(&self, key: &Arc<str>, (deadline, generation): (u64, u64)) {
        let mut index = self.index[index_shard(key)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        index.insert((deadline, generation, key.clone()));
        drop(index);
        if deadline < self.sleeping_until.load(Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    fn unindex(&self, key: &Arc<str>, old: (u64, u64)) {
        let mut index = self.index[index_shard(key)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        index.remove(&(old.0, old.1, key.clone()));
    }

    /// Removes the file's lock if it expired — with `indexed`, only when that index entry
    /// is the lock's own (else it is stale), and then a lock that did not expire is indexed
    /// again at its current deadline — and publishes the expiry. Returns whether it removed
    /// something.
    fn expire_if(&self, key: &Arc<str>, indexed: Option<(u64, u64)>) -> bool {
        let now = self.clock.now_ms();
        let removed = self.map.remove_if(key, |_, e| {
            e.deadline <= now && indexed.is_none_or(|i| i == e.indexed)
        });
        let Some((_, e)) = removed else {
            if let Some(i) = indexed {
                // Refreshed since it was indexed: index it at its deadline now.
                if let Some(mut e) = self.map.get_mut(key) {
                    if e.indexed == i && e.deadline > now {
                        e.indexed = (e.deadline, i.1);
                        self.index_insert(key, e.indexed);
                    }
                }
            }
            return false;
        };
        if indexed.is_none() {
            self.unindex(key, e.indexed);
        }
        tracing::debug!(lock_age_ms = now.saturating_sub(e.created), "lock expired");
        // A closed receiver only means nobody listens for expiries.
        let _ = self.events.send(ExpiryEvent {
            file_id: key.to_string(),
            lock_id: e.lock_id.into_string(),
        });
        true
    }

    /// Handles up to `sweep_batch` due index entries (removing the expired locks,
    /// rescheduling refreshed ones, dropping stale entries); returns (removed, whether more
    /// may be due — a shard gave its whole share —, next deadline).
    fn sweep_batch(&self, now: u64) -> (usize, bool, Option<u64>) {
        let per_shard = self.settings.sweep_batch.div_ceil(INDEX_SHARDS).max(1);
        let mut removed = 0;
        let mut more = false;
        let mut next: Option<u64> = None;
        for shard in &self.index {
            let mut due = Vec::new();
            {
                let mut index = shard.lock().unwrap_or_else(|p| p.into_inner());
                while due.len() < per_shard {
                    match index.first() {
                        Some((d, _, _)) if *d <= now => due.extend(index.pop_first()),
                        _ => break,
                    }
                }
                if let Some((d, _, _)) = index.first() {
                    next = Some(next.map_or(*d, |n| n.min(*d)));
                }
            }
            more |= due.len() >= per_shard;
            for (deadline, generation, key) in due {
                if self.expire_if(&key, Some((deadline, generation))) {
                    removed += 1;
                }
            }
        }
        (removed, more, next)
    }
}

async fn sweeper(weak: Weak<Inner>, wake: Arc<Notify>, observer: Option<Arc<dyn SweepObserver>>) {
    loop {
        let (sleep_ms, interval) = {
            let Some(inner) = weak.upgrade() else { return };
            let started = tokio::time::Instant::now();
            let now = inner.clock.now_ms();
            let (removed, more, next) = inner.sweep_batch(now);
            if let Some(o) = &observer {
                o.on_sweep(removed, started.elapsed());
            }
            if more {
                drop(inner);
                tokio::task::yield_now().await;
                continue;
            }
            let interval = inner.settings.sweep_interval.as_millis() as u64;
            let until = next.unwrap_or(u64::MAX);
            inner.sleeping_until.store(until, Ordering::Relaxed);
            (until.saturating_sub(now), interval)
        };
        // Sleep until the next deadline, but never longer than the interval: the clock may be
        // adjusted (or manual in tests) and an earlier deadline wakes us through `wake`.
        let sleep = Duration::from_millis(sleep_ms.clamp(1, interval.max(1)));
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = wake.notified() => {}
        }
    }
}

// === impl LockStore for MemoryLockStore ===

#[async_trait]
impl LockStore for MemoryLockStore {
    async fn lock(&self, file_id: &str, lock_id: &LockId) -> Result<(), LockError> {
        self.update(file_id, Some(lock_id.as_str()), |cur| {
            rules::lock(cur, lock_id.as_str())
        })
    }

    async fn get(&self, file_id: &str) -> Result<Option<String>, LockError> {
        Ok(self.current(file_id))
    }

    async fn refresh(&self, file_id: &str, lock_id: &LockId) -> Result<(), LockError> {
        self.update(file_id, None, |cur| rules::refresh(cur, lock_id.as_str()))
    }

    async fn unlock(&self, file_id: &str, lock_id: &LockId) -> Result<(), LockError> {
        self.update(file_id, None, |cur| rules::unlock(cur, lock_id.as_str()))
    }

    async fn unlock_and_relock(
        &self,
        file_id: &str,
        old: &str,
        new: &LockId,
    ) -> Result<(), LockError> {
        self.update(file_id, Some(new.as_str()), |cur| {
            rules::unlock_and_relock(cur, old)
        })
    }

    async fn check_put(
        &self,
        file_id: &str,
        lock_id: Option<&str>,
        size: Option<u64>,
    ) -> Result<(), LockError> {
        rules::put_file(self.current(file_id).as_deref(), lock_id, size)?;
        Ok(())
    }

    async fn check_modify(&self, file_id: &str, lock_id: Option<&str>) -> Result<(), LockError> {
        rules::modify_unlocked_or_matching(self.current(file_id).as_deref(), lock_id)?;
        Ok(())
    }

    async fn held(&self) -> Result<usize, LockError> {
        Ok(self.inner.map.len())
    }

    async fn sweep_now(&self) -> Result<usize, LockError> {
        Ok(MemoryLockStore::sweep_now(self))
    }
}

#[cfg(test)]
mod tests;
