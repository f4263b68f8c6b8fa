//! WOPI lock stores.
//!
//! A [`LockStore`] keeps one lock per file id with the exact WOPI semantics of
//! [`wopi::lock`]: exact string comparison, a 30-minute expiry restarted by Lock with the
//! same id, RefreshLock and UnlockAndRelock, and an expired lock that behaves exactly like no
//! lock. Every expiry is published once as an [`ExpiryEvent`], because the host face must
//! send the final save callback when the last editor's lock runs out.
//!
//! # Layout
//! - [`clock`]: the only way this crate reads time ([`SystemClock`], [`ManualClock`] for tests).
//! - [`memory`]: [`MemoryLockStore`], a sharded hash table with a coarse timer wheel and one
//!   sweeper task.
//! - [`redis_store`]: [`RedisLockStore`], the same trait over Redis for several instances.
//! - `conformance` (feature `conformance`, and in this crate's tests): the suite every store
//!   must pass.

pub mod clock;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod memory;
pub mod redis_conn;
pub mod redis_store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use memory::MemoryLockStore;
pub use redis_conn::{RedisConn, RedisSettings};
pub use redis_store::RedisLockStore;

use async_trait::async_trait;
use std::fmt;
use std::time::Duration;
use wopi::lock::{LockConflict, LockId};

/// A lock that expired (or was force-evicted) and was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryEvent {
    /// The file whose lock ran out.
    pub file_id: String,
    /// The lock id it had.
    pub lock_id: String,
}

/// Settings shared by every store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSettings {
    /// Lock lifetime after it was set or refreshed (WOPI: 30 minutes).
    pub ttl: Duration,
    /// Longest total age of one lock id, however often refreshed; `None` = no limit.
    pub max_age: Option<Duration>,
    /// Redis: how often the sweeper polls the deadline index. Memory: the longest sleep.
    pub sweep_interval: Duration,
    /// Most locks removed in one sweeper batch before it yields.
    pub sweep_batch: usize,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings {
            ttl: Duration::from_secs(1800),
            max_age: None,
            sweep_interval: Duration::from_millis(1000),
            sweep_batch: 1024,
        }
    }
}

/// Why a lock operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// The WOPI rules refuse it: 409 with the current lock.
    Conflict(LockConflict),
    /// The store cannot be reached (Redis down): 503, never a silent success.
    Unavailable(String),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Conflict(c) => write!(f, "lock conflict: {c}"),
            LockError::Unavailable(e) => write!(f, "lock store unavailable: {e}"),
        }
    }
}

impl std::error::Error for LockError {}

impl From<LockConflict> for LockError {
    fn from(c: LockConflict) -> Self {
        LockError::Conflict(c)
    }
}

/// Observes the sweeper (the gateway turns this into metrics).
pub trait SweepObserver: Send + Sync + fmt::Debug {
    /// One sweep ran, removing `removed` locks in `elapsed`.
    fn on_sweep(&self, removed: usize, elapsed: Duration);
}

/// A store of WOPI locks, one per file id.
#[async_trait]
pub trait LockStore: Send + Sync + fmt::Debug {
    /// Lock: set when unlocked, refresh when the same id holds it, else conflict.
    async fn lock(&self, file_id: &str, lock_id: &LockId) -> Result<(), LockError>;
    /// GetLock: the current lock id, `None` when unlocked or expired.
    async fn get(&self, file_id: &str) -> Result<Option<String>, LockError>;
    /// RefreshLock: restart the expiry of the lock held with this id.
    async fn refresh(&self, file_id: &str, lock_id: &LockId) -> Result<(), LockError>;
    /// Unlock: remove the lock held with this id.
    async fn unlock(&self, file_id: &str, lock_id: &LockId) -> Result<(), LockError>;
    /// UnlockAndRelock: atomically replace `old` with `new`.
    async fn unlock_and_relock(
        &self,
        file_id: &str,
        old: &str,
        new: &LockId,
    ) -> Result<(), LockError>;
    /// PutFile: may a write with this lock id (or none) go ahead on a file of `size` bytes?
    async fn check_put(
        &self,
        file_id: &str,
        lock_id: Option<&str>,
        size: Option<u64>,
    ) -> Result<(), LockError>;
    /// RenameFile/DeleteFile: unlocked, or locked with this id.
    async fn check_modify(&self, file_id: &str, lock_id: Option<&str>) -> Result<(), LockError>;
    /// Live locks held (approximate while the sweeper runs).
    async fn held(&self) -> Result<usize, LockError>;
    /// Removes every expired lock now, publishing their expiries; returns how many.
    async fn sweep_now(&self) -> Result<usize, LockError>;
}
