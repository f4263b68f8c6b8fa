//! [`RedisLockStore`]: the lock table in Redis, for several gateway instances.
//!
//! Each lock is a hash `{prefix}lock:{file}` with `id`, `deadline` and `created` (Unix ms from
//! the injected clock), kept alive by `PX` for its lifetime plus a grace period; a sorted set
//! `{prefix}deadlines` holds every file by deadline. Operations read the lock, decide with the
//! rule functions of [`wopi::lock`], then write with a compare-and-set script that succeeds
//! only if the lock is still exactly what was read (else they decide again). Expiry is claimed
//! by a script that removes the lock only if its deadline passed: whichever instance's sweeper
//! (or operation) claims it publishes the one expiry event.
//!
//! Fails closed: every Redis error or timeout is [`LockError::Unavailable`], never a success.

use crate::redis_conn::{RedisConn, RedisSettings};
use crate::{Clock, ExpiryEvent, LockError, LockSettings, LockStore, SweepObserver};
use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use wopi::lock::{self as rules, LockAction, LockConflict, LockId};

/// How long a lock key outlives its deadline, so the sweeper can still read its id.
const GRACE_MS: u64 = 3_600_000;
/// Compare-and-set attempts before giving up under extreme contention.
const MAX_ATTEMPTS: usize = 64;

const SET_IF: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'id', 'deadline')
if ARGV[1] == '' then
  if cur[1] then return 0 end
else
  if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
end
redis.call('HSET', KEYS[1], 'id', ARGV[3], 'deadline', ARGV[4], 'created', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[7])
return 1
";

const DEL_IF: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'id', 'deadline')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
";

const CLAIM: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'id', 'deadline')
if not cur[2] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
if tonumber(cur[2]) > tonumber(ARGV[2]) then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return cur[1]
";

struct Scripts {
    set_if: Script,
    del_if: Script,
    claim: Script,
}

/// A lock store shared by every gateway instance that points at the same Redis and prefix.
#[derive(Clone)]
pub struct RedisLockStore {
    conn: RedisConn,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
    clock: Arc<dyn Clock>,
    settings: LockSettings,
    events: mpsc::UnboundedSender<ExpiryEvent>,
}

impl std::fmt::Debug for RedisLockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLockStore")
            .field("prefix", &self.prefix)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Current {
    id: String,
    deadline: String,
    created: u64,
}

fn unavailable(e: redis::RedisError) -> LockError {
    LockError::Unavailable(e.to_string())
}

impl RedisLockStore {
    /// Connects (failing if Redis cannot be reached within `timeout`) and returns the store
    /// and the receiver of expiry events this instance claims.
    pub async fn connect(
        redis: &RedisSettings,
        prefix: &str,
        settings: LockSettings,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> Result<(Self, mpsc::UnboundedReceiver<ExpiryEvent>), LockError> {
        let conn = RedisConn::connect(redis, timeout)
            .await
            .map_err(LockError::Unavailable)?;
        let (events, rx) = mpsc::unbounded_channel();
        let scripts = Scripts {
            set_if: Script::new(SET_IF),
            del_if: Script::new(DEL_IF),
            claim: Script::new(CLAIM),
        };
        let store = RedisLockStore {
            conn,
            prefix: prefix.into(),
            scripts: Arc::new(scripts),
            clock,
            settings,
            events,
        };
        Ok((store, rx))
    }

    fn key(&self, file: &str) -> String {
        format!("{}lock:{file}", self.prefix)
    }

    fn zset(&self) -> String {
        format!("{}deadlines", self.prefix)
    }

    fn deadline(&self, now: u64, created: u64) -> u64 {
        let by_ttl = now + self.settings.ttl.as_millis() as u64;
        match self.settings.max_age {
            Some(max) => by_ttl.min(created + max.as_millis() as u64),
            None => by_ttl,
        }
    }

    /// Reads the file's lock; an expired one is claimed (publishing its expiry) and reads as none.
    async fn read(&self, file: &str, now: u64) -> Result<Option<Current>, LockError> {
        let mut conn = self.conn.clone();
        let (id, deadline, created): (Option<String>, Option<String>, Option<u64>) =
            redis::cmd("HMGET")
                .arg(self.key(file))
                .arg("id")
                .arg("deadline")
                .arg("created")
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
        match (id, deadline) {
            (Some(id), Some(deadline)) => {
                let d: u64 = deadline.parse().unwrap_or(0);
                if d <= now {
                    self.claim(file, now).await?;
                    Ok(None)
                } else {
                    Ok(Some(Current {
                        id,
                        deadline,
                        created: created.unwrap_or(now),
                    }))
                }
            }
            _ => Ok(None),
        }
    }

    async fn claim(&self, file: &str, now: u64) -> Result<bool, LockError> {
        let mut conn = self.conn.clone();
        let id: Option<String> = self
            .scripts
            .claim
            .key(self.key(file))
            .key(self.zset())
            .arg(file)
            .arg(now)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if let Some(lock_id) = id {
            let _ = self.events.send(ExpiryEvent {
                file_id: file.to_owned(),
                lock_id,
            });
            return Ok(true);
        }
        Ok(false)
    }

    async fn update(
        &self,
        file: &str,
        new_id: Option<&str>,
        rule: impl Fn(Option<&str>) -> Result<LockAction, LockConflict>,
    ) -> Result<(), LockError> {
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now_ms();
            let cur = self.read(file, now).await?;
            let action = rule(cur.as_ref().map(|c| c.id.as_str()))?;
            // Pinned: the write and its WAIT go to the same primary.
            let mut conn = self.conn.pin().map_err(unavailable)?;
            let done: i64 = match action {
                LockAction::None => return Ok(()),
                LockAction::Set | LockAction::Refresh => {
                    let (id, created) = match (&cur, action) {
                        (Some(c), LockAction::Refresh) => (c.id.clone(), c.created),
                        _ => (new_id.unwrap_or_default().to_owned(), now),
                    };
                    let deadline = self.deadline(now, created);
                    self.scripts
                        .set_if
                        .key(self.key(file))
                        .key(self.zset())
                        .arg(cur.as_ref().map_or("", |c| c.id.as_str()))
                        .arg(cur.as_ref().map_or("", |c| c.deadline.as_str()))
                        .arg(id)
                        .arg(deadline)
                        .arg(created)
                        .arg(deadline.saturating_sub(now) + GRACE_MS)
                        .arg(file)
                        .invoke_async(&mut conn)
                        .await
                        .map_err(unavailable)?
                }
                LockAction::Remove => {
                    let Some(c) = &cur else { return Ok(()) };
                    self.scripts
                        .del_if
                        .key(self.key(file))
                        .key(self.zset())
                        .arg(&c.id)
                        .arg(&c.deadline)
                        .arg(file)
                        .invoke_async(&mut conn)
                        .await
                        .map_err(unavailable)?
                }
            };
            if done == 1 {
                // With cluster.redis_min_replicas_acked, a lock survives a failover.
                conn.wait_replicas().await.map_err(LockError::Unavailable)?;
                return Ok(());
            }
        }
        Err(LockError::Unavailable(format!(
            "lock on one file contended beyond {MAX_ATTEMPTS} attempts"
        )))
    }

    /// Claims up to `sweep_batch` expired locks; returns how many this instance claimed.
    pub async fn sweep_once(&self) -> Result<usize, LockError> {
        let now = self.clock.now_ms();
        let mut conn = self.conn.clone();
        let due: Vec<String> = conn
            .zrangebyscore_limit(
                self.zset(),
                "-inf",
                now,
                0,
                self.settings.sweep_batch as isize,
            )
            .await
            .map_err(unavailable)?;
        let mut claimed = 0;
        for file in due {
            if self.claim(&file, now).await? {
                claimed += 1;
            }
        }
        Ok(claimed)
    }

    /// Starts this instance's sweeper: polls the deadline index every `sweep_interval`.
    pub fn spawn_sweeper(
        &self,
        observer: Option<Arc<dyn SweepObserver>>,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(store.settings.sweep_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let started = tokio::time::Instant::now();
                match store.sweep_once().await {
                    Ok(n) => {
                        if let Some(o) = &observer {
                            o.on_sweep(n, started.elapsed());
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "lock sweeper could not reach Redis"),
                }
            }
        })
    }
}

// === impl LockStore for RedisLockStore ===

#[async_trait]
impl LockStore for RedisLockStore {
    async fn lock(&self, file_id: &str, lock_id: &LockId) -> Result<(), LockError> {
        self.update(file_id, Some(lock_id.as_str()), |cur| {
            rules::lock(cur, lock_id.as_str())
        })
        .await
    }

    async fn get(&self, file_id: &str) -> Result<Option<String>, LockError> {
        Ok(self.read(file_id, self.clock.now_ms()).await?.map(|c| c.id))
    }

    async fn refresh(&self, file_id: &str, lock_id: &LockId) -> Result<(), LockError> {
        self.update(file_id, None, |cur| rules::refresh(cur, lock_id.as_str()))
            .await
    }

    async fn unlock(&self, file_id: &str, lock_id: &LockId) -> Result<(), LockError> {
        self.update(file_id, None, |cur| rules::unlock(cur, lock_id.as_str()))
            .await
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
        .await
    }

    async fn check_put(
        &self,
        file_id: &str,
        lock_id: Option<&str>,
        size: Option<u64>,
    ) -> Result<(), LockError> {
        let cur = self.get(file_id).await?;
        rules::put_file(cur.as_deref(), lock_id, size)?;
        Ok(())
    }

    async fn check_modify(&self, file_id: &str, lock_id: Option<&str>) -> Result<(), LockError> {
        let cur = self.get(file_id).await?;
        rules::modify_unlocked_or_matching(cur.as_deref(), lock_id)?;
        Ok(())
    }

    async fn held(&self) -> Result<usize, LockError> {
        let mut conn = self.conn.clone();
        conn.zcard(self.zset()).await.map_err(unavailable)
    }

    async fn sweep_now(&self) -> Result<usize, LockError> {
        let mut total = 0;
        loop {
            let n = self.sweep_once().await?;
            total += n;
            if n < self.settings.sweep_batch {
                return Ok(total);
            }
        }
    }
}
