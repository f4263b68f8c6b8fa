//! [`MemoryLockStore`]: locks in a sharded hash table, expiries on a coarse timer wheel, one
//! sweeper.
//!
//! The table: 64 shards, each one mutex over a `hashbrown::HashTable` of entries and that
//! shard's wheel, so an operation takes one lock and there is no lock ordering to keep. An
//! entry is 40 bytes in the table plus one allocation holding the file id and the lock id side
//! by side (no second allocation per key, no reference count).
//!
//! The wheel: each lock is filed under the bucket of its deadline (buckets `tick` ms wide:
//! the TTL / 1024, within 50 ms – 1 s), and a bucket holds only the 64-bit hashes of its
//! files' ids and a count of the live entries filed there. Filing is lazy: a lock is filed
//! once, when it is created; a refresh only moves its deadline in the table (deadlines never
//! move earlier), and when the bucket comes due the sweeper finds the lock alive and files it
//! again under the bucket of its deadline then. Unlock removes the entry and counts it out of
//! its bucket; the hash it leaves is stale (the sweeper skips a hash that no entry filed in
//! that bucket answers), a bucket left with no live entry is emptied, and one whose stale
//! hashes outnumber its live ones is compacted, so lock churn never grows the wheel.
//!
//! A lock expires exactly at its deadline for every operation (an expired entry is no lock:
//! the next operation on the file removes it and publishes its expiry); the sweeper removes
//! the others when their bucket comes due — at most one tick after their deadline — and
//! `sweep_now` removes every expired one.

use crate::{Clock, ExpiryEvent, LockError, LockSettings, LockStore, SweepObserver};
use async_trait::async_trait;
use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use wopi::lock::{self as rules, LockAction, LockConflict, LockId};

const SHARDS: usize = 64;

/// Most filed hashes the sweeper handles per hold of a shard's lock.
const HOLD: usize = 4;

/// A bucket holding this many hashes, more than twice its live entries, is compacted.
const COMPACT_FROM: usize = 32;

/// The shard of a hash, from bits the table does not probe with (hashbrown takes the position
/// from the low bits and the tag from the top 7).
fn shard_of(hash: u64) -> usize {
    (hash >> 40) as usize & (SHARDS - 1)
}

#[derive(Debug)]
struct Entry {
    /// The file id, then the lock id.
    text: Box<str>,
    file_len: u32,
    /// The wheel bucket this entry is filed under.
    filed: u32,
    /// When it expires: min(last set/refresh + ttl, created + max_age). Only ever grows.
    deadline: u64,
    created: u64,
}

impl Entry {
    fn new(file: &str, lock_id: &str, filed: u32, deadline: u64, created: u64) -> Self {
        Entry {
            text: [file, lock_id].concat().into_boxed_str(),
            // A file id is part of a request target: far below 4 GiB.
            file_len: u32::try_from(file.len()).unwrap_or(u32::MAX),
            filed,
            deadline,
            created,
        }
    }

    fn file(&self) -> &str {
        &self.text[..self.file_len as usize]
    }

    fn lock_id(&self) -> &str {
        &self.text[self.file_len as usize..]
    }

    fn set_lock_id(&mut self, lock_id: &str) {
        self.text = [self.file(), lock_id].concat().into_boxed_str();
    }
}

/// The hashes filed under one deadline bucket, and how many live entries are filed there.
#[derive(Debug, Default)]
struct Bucket {
    hashes: Vec<u64>,
    live: usize,
}

#[derive(Debug, Default)]
struct Shard {
    table: HashTable<Entry>,
    wheel: BTreeMap<u32, Bucket>,
}

/// One shard on its own cache line, so two cores working on neighbouring shards do not
/// contend on one line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(Mutex<Shard>);

impl Padded {
    /// The shard, even after a panic under its lock (every update leaves it consistent).
    fn lock(&self) -> MutexGuard<'_, Shard> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug)]
struct Inner {
    shards: Box<[Padded]>,
    hasher: DefaultHashBuilder,
    /// The width of a wheel bucket, ms.
    tick: u64,
    /// Bucket numbers count from this one (the store's start), so that they fit 32 bits:
    /// 136 years of buckets at the WOPI TTL's 1 s tick, 6.8 years at the shortest (50 ms).
    epoch: u64,
    /// When the sweeper wakes next (u64::MAX when idle); earlier buckets wake it.
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

impl MemoryLockStore {
    /// A store and the receiver of its expiry events. No sweeper runs until [`Self::spawn_sweeper`].
    pub fn new(
        settings: LockSettings,
        clock: Arc<dyn Clock>,
    ) -> (Self, mpsc::UnboundedReceiver<ExpiryEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let ttl_ms = settings.ttl.as_millis() as u64;
        let tick = (ttl_ms / 1024).clamp(50, 1000);
        let inner = Inner {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            hasher: DefaultHashBuilder::default(),
            tick,
            epoch: clock.now_ms() / tick,
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

    /// Removes every expired lock now (in batches), publishing their expiries; returns how
    /// many were removed.
    pub fn sweep_now(&self) -> usize {
        let now = self.inner.clock.now_ms();
        let mut total = 0;
        loop {
            let (removed, more, _) = self.inner.sweep(now, true);
            total += removed;
            if !more {
                return total;
            }
        }
    }

    /// Applies `rule` to the file's live lock; on Set the lock becomes `new_id`.
    fn update(
        &self,
        file: &str,
        new_id: Option<&str>,
        rule: impl Fn(Option<&str>) -> Result<LockAction, LockConflict>,
    ) -> Result<(), LockError> {
        let inner = &*self.inner;
        let now = inner.clock.now_ms();
        let hash = inner.hash(file);
        let mut expired = None;
        let result = {
            let mut shard = inner.shard(hash);
            inner.apply(&mut shard, hash, file, now, new_id, rule, &mut expired)
        };
        if let Some(e) = expired {
            inner.publish(e, now);
        }
        result
    }

    fn current(&self, file: &str) -> Option<String> {
        let inner = &*self.inner;
        let now = inner.clock.now_ms();
        let hash = inner.hash(file);
        let shard = inner.shard(hash);
        shard
            .table
            .find(hash, |e| e.file() == file)
            .filter(|e| e.deadline > now)
            .map(|e| e.lock_id().to_owned())
    }
}

impl Inner {
    fn hash(&self, file: &str) -> u64 {
        self.hasher.hash_one(file)
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        self.shards[shard_of(hash)].lock()
    }

    fn deadline(&self, now: u64, created: u64) -> u64 {
        let by_ttl = now.saturating_add(self.settings.ttl.as_millis() as u64);
        match self.settings.max_age {
            Some(max) => by_ttl.min(created.saturating_add(max.as_millis() as u64)),
            None => by_ttl,
        }
    }

    /// The bucket of a deadline: bucket `b` holds the deadlines in ((b-1)·tick, b·tick].
    fn bucket(&self, deadline: u64) -> u32 {
        let b = deadline.div_ceil(self.tick).saturating_sub(self.epoch);
        u32::try_from(b).unwrap_or(u32::MAX)
    }

    /// When every lock filed under `bucket` has expired or been refreshed.
    fn due_at(&self, bucket: u32) -> u64 {
        (self.epoch + u64::from(bucket)).saturating_mul(self.tick)
    }

    /// Does `e` answer the hash `hash` filed under `bucket`?
    fn filed_as(&self, e: &Entry, hash: u64, bucket: u32) -> bool {
        e.filed == bucket && self.hash(e.file()) == hash
    }

    /// The rule's decision on one file, under its shard's lock. An expired entry is removed
    /// first (and handed back in `expired`, to be published once the shard is released).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        shard: &mut Shard,
        hash: u64,
        file: &str,
        now: u64,
        new_id: Option<&str>,
        rule: impl Fn(Option<&str>) -> Result<LockAction, LockConflict>,
        expired: &mut Option<Entry>,
    ) -> Result<(), LockError> {
        let Shard { table, wheel } = shard;
        let hasher = |e: &Entry| self.hash(e.file());
        if let Ok(found) = table.find_entry(hash, |e| e.file() == file) {
            if found.get().deadline > now {
                let mut found = found;
                let e = found.get_mut();
                match rule(Some(e.lock_id()))? {
                    LockAction::Set => {
                        e.set_lock_id(new_id.unwrap_or_default());
                        e.created = now;
                        e.deadline = self.deadline(now, now).max(e.deadline);
                    }
                    LockAction::Refresh => {
                        // Later than before: it stays filed where it is; the sweeper refiles it.
                        e.deadline = self.deadline(now, e.created).max(e.deadline);
                    }
                    LockAction::Remove => {
                        let (e, _) = found.remove();
                        self.unfile(table, wheel, e.filed);
                    }
                    LockAction::None => {}
                }
                return Ok(());
            }
            // Expired but not swept yet: it is no lock.
            let (e, _) = found.remove();
            self.unfile(table, wheel, e.filed);
            *expired = Some(e);
        }
        if rule(None)? != LockAction::Set {
            return Ok(());
        }
        let deadline = self.deadline(now, now);
        let bucket = self.bucket(deadline);
        let entry = Entry::new(file, new_id.unwrap_or_default(), bucket, deadline, now);
        table.insert_unique(hash, entry, hasher);
        file_under(wheel, bucket, hash);
        let due = self.due_at(bucket);
        if due < self.sleeping_until.load(Ordering::Relaxed) {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// An entry filed under `bucket` left it (removed, or filed elsewhere).
    fn unfile(&self, table: &HashTable<Entry>, wheel: &mut BTreeMap<u32, Bucket>, bucket: u32) {
        let Some(b) = wheel.get_mut(&bucket) else {
            return;
        };
        b.live = b.live.saturating_sub(1);
        if b.live == 0 {
            // Every hash left is stale; the bucket itself goes when the sweeper reaches it.
            b.hashes.clear();
        } else if b.hashes.len() >= COMPACT_FROM && b.hashes.len() > 2 * b.live {
            // Keep the hashes a live entry answers, once each (a file unlocked and locked
            // again within one bucket is filed twice).
            b.hashes
                .retain(|&h| table.find(h, |e| self.filed_as(e, h, bucket)).is_some());
            b.hashes.sort_unstable();
            b.hashes.dedup();
            if b.hashes.len() < b.live {
                // Two files with one 64-bit hash in one bucket: list the bucket from the table.
                b.hashes = table
                    .iter()
                    .filter(|e| e.filed == bucket)
                    .map(|e| self.hash(e.file()))
                    .collect();
            }
        }
    }

    fn publish(&self, e: Entry, now: u64) {
        tracing::debug!(lock_age_ms = now.saturating_sub(e.created), "lock expired");
        // A closed receiver only means nobody listens for expiries.
        let _ = self.events.send(ExpiryEvent {
            file_id: e.file().to_owned(),
            lock_id: e.lock_id().to_owned(),
        });
    }

    /// The periodic sweeper's batch: due buckets only.
    fn sweep_batch(&self, now: u64) -> (usize, bool, Option<u64>) {
        self.sweep(now, false)
    }

    /// Handles up to `sweep_batch` filed hashes over the shards (removing the expired locks,
    /// refiling refreshed ones, dropping stale hashes) from the buckets that are due — with
    /// `exact`, also the bucket holding `now`, whole, so that every expired lock goes. Returns
    /// (removed, whether more may be due — a shard used its whole share —, when the earliest
    /// bucket left comes due).
    fn sweep(&self, now: u64, exact: bool) -> (usize, bool, Option<u64>) {
        let per_shard = self.settings.sweep_batch.div_ceil(SHARDS).max(1);
        let mut removed = 0;
        let mut more = false;
        let mut next: Option<u64> = None;
        let mut gone = Vec::new();
        for padded in &self.shards {
            // The shard's share, a few hashes per hold of its lock: a request waiting for
            // the lock waits for at most `HOLD` of them.
            let mut share = per_shard;
            loop {
                let hold = share.min(HOLD);
                let (left, first) = {
                    let mut shard = padded.lock();
                    let left = self.sweep_shard(&mut shard, now, exact, hold, &mut gone);
                    (left, shard.wheel.keys().next().copied())
                };
                removed += gone.len();
                for e in gone.drain(..) {
                    self.publish(e, now);
                }
                share -= hold;
                if !left || share == 0 {
                    more |= left;
                    if let Some(b) = first {
                        let due = self.due_at(b);
                        next = Some(next.map_or(due, |n| n.min(due)));
                    }
                    break;
                }
            }
        }
        (removed, more, next)
    }

    /// One shard's part of [`Self::sweep`]; true when it used its whole `budget` and a due
    /// bucket is left.
    fn sweep_shard(
        &self,
        shard: &mut Shard,
        now: u64,
        exact: bool,
        mut budget: usize,
        gone: &mut Vec<Entry>,
    ) -> bool {
        let Shard { table, wheel } = shard;
        let mut stay = Vec::new();
        while budget > 0 {
            let Some(mut first) = wheel.first_entry() else {
                break;
            };
            let b = *first.key();
            let due = self.due_at(b) <= now;
            // The bucket holding `now` has some expired locks and some live ones.
            let partly = !due && exact && self.due_at(b.saturating_sub(1)) < now;
            if !due && !partly {
                break;
            }
            let hashes = &mut first.get_mut().hashes;
            let take = if due {
                budget.min(hashes.len())
            } else {
                hashes.len()
            };
            let batch = hashes.split_off(hashes.len() - take);
            budget = budget.saturating_sub(take);
            let mut left = 0;
            for h in batch {
                let Ok(found) = table.find_entry(h, |e| self.filed_as(e, h, b)) else {
                    continue; // stale: unlocked, or already refiled
                };
                if found.get().deadline <= now {
                    let (e, _) = found.remove();
                    gone.push(e);
                    left += 1;
                    continue;
                }
                let mut found = found;
                let nb = self.bucket(found.get().deadline);
                if nb == b {
                    stay.push(h); // not yet: only in the bucket holding `now`
                } else {
                    found.get_mut().filed = nb;
                    left += 1;
                    file_under(wheel, nb, h);
                }
            }
            let Some(bucket) = wheel.get_mut(&b) else {
                break;
            };
            bucket.live = bucket.live.saturating_sub(left);
            bucket.hashes.append(&mut stay);
            if bucket.hashes.is_empty() {
                wheel.remove(&b);
            }
            if partly {
                break; // the buckets after it are not due
            }
        }
        budget == 0 && wheel.keys().next().is_some_and(|&b| self.due_at(b) <= now)
    }
}

fn file_under(wheel: &mut BTreeMap<u32, Bucket>, bucket: u32, hash: u64) {
    let b = wheel.entry(bucket).or_default();
    b.hashes.push(hash);
    b.live += 1;
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
        // Sleep until the next bucket is due, but never longer than the interval: the clock
        // may be adjusted (or manual in tests) and an earlier bucket wakes us through `wake`.
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
        Ok(self.inner.shards.iter().map(|s| s.lock().table.len()).sum())
    }

    async fn sweep_now(&self) -> Result<usize, LockError> {
        Ok(MemoryLockStore::sweep_now(self))
    }
}

#[cfg(test)]
mod tests;
