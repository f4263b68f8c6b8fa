//! State every instance shares: one instance keeps it in memory (and, for what must survive a
//! restart, in `<data_dir>/state`); several instances keep it in Redis (`cluster.redis_url` or `cluster.redis_sentinels`).
//!
//! The model is small on purpose: records (JSON) in namespaces, listed through an index;
//! short-lived values with a time to live; *leases* (a key held by one owner token until it
//! expires or is released) for "exactly one instance works on this"; and a mutex per record
//! built on a lease, so the operations on one file or one editor are serialised across the
//! whole cluster as they are inside one process. Every failure is [`SharedError`] (the
//! request answers 503 naming Redis, Redis replication or the local state directory), never
//! a silent local fallback.

use dashmap::DashMap;
use locks::{RedisConn, RedisSettings};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The shared state failed: `service` names what (Redis, Redis replication, the local state
/// directory of one instance), `detail` how. Answered 503 naming `service`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} unavailable: {detail}")]
pub(crate) struct SharedError {
    /// "Redis", "Redis replication", "local state" or "shared state" (a record stayed busy).
    pub(crate) service: &'static str,
    /// What failed.
    pub(crate) detail: String,
}

impl SharedError {
    /// Redis could not be reached or answered an error.
    pub(crate) fn redis(detail: impl Into<String>) -> Self {
        SharedError {
            service: "Redis",
            detail: detail.into(),
        }
    }

    /// Too few replicas acknowledged a write (`cluster.redis_min_replicas_acked`).
    pub(crate) fn replication(detail: impl Into<String>) -> Self {
        SharedError {
            service: "Redis replication",
            detail: detail.into(),
        }
    }

    /// One instance's state directory (`<data_dir>/state`) failed.
    pub(crate) fn local(dir: &std::path::Path, e: impl std::fmt::Display) -> Self {
        SharedError {
            service: "local state",
            detail: format!("(data_dir {}) {e}", dir.display()),
        }
    }

    /// A record stayed busy, or could not be encoded.
    pub(crate) fn other(detail: impl Into<String>) -> Self {
        SharedError {
            service: "shared state",
            detail: detail.into(),
        }
    }
}

impl From<redis::RedisError> for SharedError {
    fn from(e: redis::RedisError) -> Self {
        SharedError::redis(locks::redis_conn::describe_error(&e))
    }
}

/// How long a value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Listed in its namespace, kept until deleted; one instance also writes it to disk.
    Durable,
    /// Listed in its namespace, kept until deleted; one instance keeps it in memory only.
    Listed,
    /// As [`Keep::Listed`], and several instances wait for `cluster.redis_min_replicas_acked`
    /// replicas (a client-face editor state holding a save about to be acknowledged).
    ListedAcked,
    /// Not listed; gone after the duration.
    For(Duration),
}

/// The shared state. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Shared {
    backend: Backend,
    /// This instance (`cluster.instance_id`).
    pub(crate) instance: Arc<str>,
    clock: Arc<dyn crate::clock::Clock>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("clustered", &self.is_clustered())
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Backend {
    Local(Arc<Local>),
    Redis(Arc<RedisBackend>),
}

struct Value {
    bytes: Arc<[u8]>,
    /// Unix ms; `None` = no expiry.
    expires: Option<u64>,
    /// `bytes` decoded by [`Shared::get_json_memo`], kept until the value changes.
    decoded: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
}

impl Value {
    fn new(bytes: Arc<[u8]>, expires: Option<u64>) -> Self {
        Value {
            bytes,
            expires,
            decoded: std::sync::OnceLock::new(),
        }
    }
}

struct Local {
    /// (namespace, id) → value.
    values: DashMap<(&'static str, String), Value>,
    /// Where [`Keep::Durable`] values are written (`<data_dir>/state/<ns>/<hex id>`).
    dir: Option<PathBuf>,
    /// Per-record async mutexes.
    mutexes: DashMap<(&'static str, String), Arc<tokio::sync::Mutex<()>>>,
    /// Writes of expiring values since the last purge of expired ones.
    expiring_writes: std::sync::atomic::AtomicU64,
}

/// Expired values (and leases) are purged from memory every this many expiring writes.
const PURGE_EVERY: u64 = 4096;

struct RedisBackend {
    conn: RedisConn,
    prefix: String,
    put_if: redis::Script,
    release: redis::Script,
    extend: redis::Script,
}

/// Writes or deletes a record only while the caller still holds a lease.
/// KEYS: lease, record, index. ARGV: owner, "put"|"del", id, value.
const PUT_IF_LEASED: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'del' then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[3])
else
  redis.call('SET', KEYS[2], ARGV[4])
  redis.call('SADD', KEYS[3], ARGV[3])
end
return 1
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// A record's JSON; an undecodable one is logged and reads as missing.
fn decode<T: DeserializeOwned>(ns: &str, id: &str, bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(namespace = ns, id, error = %e, "unreadable shared record; ignored");
            None
        }
    }
}

fn hex_id(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex_id(name: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..name.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(name.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl Shared {
    /// One instance: memory, durable values under `dir`.
    pub(crate) fn local(
        dir: Option<PathBuf>,
        instance: &str,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> std::io::Result<Self> {
        let local = Local {
            values: DashMap::new(),
            dir: dir.clone(),
            mutexes: DashMap::new(),
            expiring_writes: std::sync::atomic::AtomicU64::new(0),
        };
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
            for ns in std::fs::read_dir(dir)? {
                let ns = ns?;
                if !ns.file_type()?.is_dir() {
                    continue;
                }
                let Some(name) = ns.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let ns_static: &'static str = Box::leak(name.into_boxed_str());
                for f in std::fs::read_dir(ns.path())? {
                    let f = f?;
                    let fname = f.file_name().to_string_lossy().into_owned();
                    if fname.starts_with(".tmp") {
                        let _ = std::fs::remove_file(f.path());
                        continue;
                    }
                    let Some(id) = unhex_id(&fname) else {
                        continue;
                    };
                    let bytes = std::fs::read(f.path())?;
                    local
                        .values
                        .insert((ns_static, id), Value::new(bytes.into(), None));
                }
            }
        }
        Ok(Shared {
            backend: Backend::Local(Arc::new(local)),
            instance: instance.into(),
            clock,
        })
    }

    /// Several instances: Redis as `redis` says, keys under `prefix`. Fails when Redis does
    /// not answer within `timeout`.
    pub(crate) async fn redis(
        redis: &RedisSettings,
        prefix: &str,
        instance: &str,
        clock: Arc<dyn crate::clock::Clock>,
        timeout: Duration,
    ) -> Result<Self, SharedError> {
        let conn = RedisConn::connect(redis, timeout)
            .await
            .map_err(SharedError::redis)?;
        Ok(Shared {
            backend: Backend::Redis(Arc::new(RedisBackend {
                conn,
                prefix: prefix.to_owned(),
                put_if: redis::Script::new(PUT_IF_LEASED),
                release: redis::Script::new(RELEASE),
                extend: redis::Script::new(EXTEND),
            })),
            instance: instance.into(),
            clock,
        })
    }

    /// Whether the state is in Redis.
    pub(crate) fn is_clustered(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Answers when Redis does (readiness).
    pub(crate) async fn ping(&self) -> Result<(), SharedError> {
        match &self.backend {
            Backend::Local(_) => Ok(()),
            Backend::Redis(r) => Ok(r.conn.ping().await?),
        }
    }

    /// The raw value of a record.
    pub(crate) async fn get(
        &self,
        ns: &'static str,
        id: &str,
    ) -> Result<Option<Arc<[u8]>>, SharedError> {
        match &self.backend {
            Backend::Local(l) => {
                let now = self.now();
                Ok(l.values
                    .get(&(ns, id.to_owned()))
                    .filter(|v| v.expires.is_none_or(|e| e > now))
                    .map(|v| v.bytes.clone()))
            }
            Backend::Redis(r) => {
                let mut c = r.conn.clone();
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(r.key(ns, id))
                    .query_async(&mut c)
                    .await?;
                Ok(v.map(Into::into))
            }
        }
    }

    /// A record, decoded; an undecodable one is logged and reads as missing.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        ns: &'static str,
        id: &str,
    ) -> Result<Option<T>, SharedError> {
        Ok(self
            .get(ns, id)
            .await?
            .and_then(|bytes| decode(ns, id, &bytes)))
    }

    /// A record, decoded, as [`Self::get_json`]; for one instance (the memory state) the
    /// decoded value is kept beside the bytes until they change, so rereading an unchanged
    /// record (a file's state on every WOPI call) costs a clone instead of a JSON decode.
    pub(crate) async fn get_json_memo<T>(
        &self,
        ns: &'static str,
        id: &str,
    ) -> Result<Option<T>, SharedError>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let Backend::Local(l) = &self.backend else {
            return self.get_json(ns, id).await;
        };
        let now = self.now();
        let Some(v) = l.values.get(&(ns, id.to_owned())) else {
            return Ok(None);
        };
        if v.expires.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        if let Some(t) = v.decoded.get().and_then(|d| d.downcast_ref::<T>()) {
            return Ok(Some(t.clone()));
        }
        let t = decode::<T>(ns, id, &v.bytes);
        if let Some(t) = &t {
            let _ = v.decoded.set(Arc::new(t.clone()));
        }
        Ok(t)
    }

    /// Writes a Unix-ms time stamp that expires after `ttl`.
    pub(crate) async fn put_stamp(
        &self,
        ns: &'static str,
        id: &str,
        ms: u64,
        ttl: Duration,
    ) -> Result<(), SharedError> {
        self.put(ns, id, ms.to_string().into_bytes(), Keep::For(ttl))
            .await
    }

    /// A time stamp written by [`Self::put_stamp`], if there (an unreadable one reads as none).
    pub(crate) async fn get_stamp(
        &self,
        ns: &'static str,
        id: &str,
    ) -> Result<Option<u64>, SharedError> {
        Ok(self
            .get(ns, id)
            .await?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()))
    }

    /// Writes a record.
    pub(crate) async fn put(
        &self,
        ns: &'static str,
        id: &str,
        bytes: Vec<u8>,
        keep: Keep,
    ) -> Result<(), SharedError> {
        match &self.backend {
            Backend::Local(l) => {
                if let (Keep::Durable, Some(dir)) = (keep, &l.dir) {
                    let ns_dir = dir.join(ns);
                    tokio::fs::create_dir_all(&ns_dir)
                        .await
                        .map_err(|e| SharedError::local(dir, e))?;
                    crate::spool::write_atomic(&ns_dir.join(hex_id(id)), &bytes)
                        .await
                        .map_err(|e| SharedError::local(dir, e))?;
                }
                let expires = match keep {
                    Keep::For(d) => Some(self.now() + d.as_millis() as u64),
                    _ => None,
                };
                if expires.is_some() {
                    l.purge_now_and_then(self.now());
                }
                l.values
                    .insert((ns, id.to_owned()), Value::new(bytes.into(), expires));
                Ok(())
            }
            Backend::Redis(r) => {
                let mut c = r.conn.clone();
                match keep {
                    Keep::For(d) => {
                        let () = redis::cmd("SET")
                            .arg(r.key(ns, id))
                            .arg(bytes)
                            .arg("PX")
                            .arg(d.as_millis().max(1) as u64)
                            .query_async(&mut c)
                            .await?;
                    }
                    Keep::Durable | Keep::Listed | Keep::ListedAcked => {
                        // Pinned: the write and its WAIT go to the same primary.
                        let mut c = r.conn.pin()?;
                        let () = redis::pipe()
                            .atomic()
                            .cmd("SET")
                            .arg(r.key(ns, id))
                            .arg(bytes)
                            .ignore()
                            .cmd("SADD")
                            .arg(r.index(ns))
                            .arg(id)
                            .ignore()
                            .query_async(&mut c)
                            .await?;
                        if matches!(keep, Keep::Durable | Keep::ListedAcked) {
                            // What must survive (a file state after PutFile, a delivery, an
                            // editor state): on enough replicas before it is acknowledged.
                            c.wait_replicas().await.map_err(SharedError::replication)?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Writes a record as JSON.
    pub(crate) async fn put_json<T: Serialize>(
        &self,
        ns: &'static str,
        id: &str,
        value: &T,
        keep: Keep,
    ) -> Result<(), SharedError> {
        let bytes = serde_json::to_vec(value).map_err(|e| SharedError::other(e.to_string()))?;
        self.put(ns, id, bytes, keep).await
    }

    /// Deletes a record (no error when missing).
    pub(crate) async fn delete(&self, ns: &'static str, id: &str) -> Result<(), SharedError> {
        match &self.backend {
            Backend::Local(l) => {
                if l.values.remove(&(ns, id.to_owned())).is_some() {
                    if let Some(dir) = &l.dir {
                        let path = dir.join(ns).join(hex_id(id));
                        match tokio::fs::remove_file(&path).await {
                            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                                return Err(SharedError::local(dir, e));
                            }
                            _ => {}
                        }
                    }
                }
                Ok(())
            }
            Backend::Redis(r) => {
                let mut c = r.conn.clone();
                let () = redis::pipe()
                    .atomic()
                    .cmd("DEL")
                    .arg(r.key(ns, id))
                    .ignore()
                    .cmd("SREM")
                    .arg(r.index(ns))
                    .arg(id)
                    .ignore()
                    .query_async(&mut c)
                    .await?;
                Ok(())
            }
        }
    }

    /// The ids of a namespace's listed records.
    pub(crate) async fn ids(&self, ns: &'static str) -> Result<Vec<String>, SharedError> {
        match &self.backend {
            Backend::Local(l) => Ok(l
                .values
                .iter()
                .filter(|e| e.key().0 == ns && e.value().expires.is_none())
                .map(|e| e.key().1.clone())
                .collect()),
            Backend::Redis(r) => {
                let mut c = r.conn.clone();
                Ok(redis::cmd("SMEMBERS")
                    .arg(r.index(ns))
                    .query_async(&mut c)
                    .await?)
            }
        }
    }

    /// Every listed record of a namespace, decoded (id order).
    pub(crate) async fn all_json<T: DeserializeOwned>(
        &self,
        ns: &'static str,
    ) -> Result<Vec<(String, T)>, SharedError> {
        let mut ids = self.ids(ns).await?;
        ids.sort();
        let values: Vec<Option<Vec<u8>>> = match &self.backend {
            Backend::Local(l) => ids
                .iter()
                .map(|id| l.values.get(&(ns, id.clone())).map(|v| v.bytes.to_vec()))
                .collect(),
            Backend::Redis(r) if !ids.is_empty() => {
                let mut c = r.conn.clone();
                let keys: Vec<String> = ids.iter().map(|id| r.key(ns, id)).collect();
                redis::cmd("MGET").arg(keys).query_async(&mut c).await?
            }
            Backend::Redis(_) => Vec::new(),
        };
        Ok(ids
            .into_iter()
            .zip(values)
            .filter_map(|(id, v)| {
                let t = decode(ns, &id, &v?)?;
                Some((id, t))
            })
            .collect())
    }

    /// Takes (or, when `owner` already holds it, extends) the lease `ns`/`id` for `ttl`.
    pub(crate) async fn lease(
        &self,
        ns: &'static str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, SharedError> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        match &self.backend {
            Backend::Local(l) => {
                let now = self.now();
                let mut entry = l
                    .values
                    .entry((ns, id.to_owned()))
                    .or_insert_with(|| Value::new(Arc::from(owner.as_bytes()), Some(0)));
                let free = entry.expires.is_some_and(|e| e <= now);
                if free || &*entry.bytes == owner.as_bytes() {
                    *entry = Value::new(Arc::from(owner.as_bytes()), Some(now + ttl_ms));
                    Ok(true)
                } else {
                    Ok(false)
                }
            }
            Backend::Redis(r) => {
                let mut c = r.conn.clone();
                let key = r.key(ns, id);
                let set: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut c)
                    .await?;
                if set.is_some() {
                    return Ok(true);
                }
                let extended: i64 = r
                    .extend
                    .key(&key)
                    .arg(owner)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await?;
                Ok(extended == 1)
            }
        }
    }

    /// Gives a lease back (only if `owner` still holds it).
    pub(crate) async fn release(
        &self,
        ns: &'static str,
        id: &str,
        owner: &str,
    ) -> Result<(), SharedError> {
        match &self.backend {
            Backend::Local(l) => {
                l.values
                    .remove_if(&(ns, id.to_owned()), |_, v| &*v.bytes == owner.as_bytes());
                Ok(())
            }
            Backend::Redis(r) => {
                let mut c = r.conn.clone();
                let _: i64 = r
                    .release
                    .key(r.key(ns, id))
                    .arg(owner)
                    .invoke_async(&mut c)
                    .await?;
                Ok(())
            }
        }
    }

    /// Writes (`Some`) or deletes (`None`) a listed record only while `owner` holds the lease
    /// `lease_ns`/`id`; `false` when the lease was lost.
    pub(crate) async fn put_if_leased(
        &self,
        lease_ns: &'static str,
        owner: &str,
        ns: &'static str,
        id: &str,
        value: Option<Vec<u8>>,
    ) -> Result<bool, SharedError> {
        match &self.backend {
            Backend::Local(l) => {
                let now = self.now();
                let held = l.values.get(&(lease_ns, id.to_owned())).is_some_and(|v| {
                    &*v.bytes == owner.as_bytes() && v.expires.is_some_and(|e| e > now)
                });
                if !held {
                    return Ok(false);
                }
                match value {
                    Some(v) => self.put(ns, id, v, Keep::Durable).await?,
                    None => self.delete(ns, id).await?,
                }
                Ok(true)
            }
            Backend::Redis(r) => {
                let mut c = r.conn.pin()?;
                let writes = value.is_some();
                let mut inv = r.put_if.prepare_invoke();
                inv.key(r.key(lease_ns, id))
                    .key(r.key(ns, id))
                    .key(r.index(ns))
                    .arg(owner)
                    .arg(if value.is_some() { "put" } else { "del" })
                    .arg(id)
                    .arg(value.unwrap_or_default());
                let done: i64 = inv.invoke_async(&mut c).await?;
                if done == 1 && writes {
                    c.wait_replicas().await.map_err(SharedError::replication)?;
                }
                Ok(done == 1)
            }
        }
    }

    /// Serialises work on one record across the cluster: waits up to `wait` for the mutex.
    pub(crate) async fn mutex(
        &self,
        ns: &'static str,
        id: &str,
        wait: Duration,
    ) -> Result<SharedGuard, SharedError> {
        match &self.backend {
            Backend::Local(l) => {
                let m = l.mutexes.entry((ns, id.to_owned())).or_default().clone();
                let guard = tokio::time::timeout(wait, m.lock_owned())
                    .await
                    .map_err(|_| {
                        SharedError::other(format!("{ns} {id} stayed busy for {wait:?}"))
                    })?;
                Ok(SharedGuard {
                    inner: GuardInner::Local(guard),
                })
            }
            Backend::Redis(_) => {
                let owner =
                    crate::random::hex::<12>().map_err(|e| SharedError::other(e.to_string()))?;
                let ttl = MUTEX_TTL;
                let deadline = tokio::time::Instant::now() + wait;
                let mut pause = Duration::from_millis(2);
                while !self.lease(ns, id, &owner, ttl).await? {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(SharedError::other(format!(
                            "{ns} {id} stayed busy for {wait:?}"
                        )));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                // Held for as long as the work takes: extended until the guard goes.
                let keeper = {
                    let me = self.clone();
                    let (id, owner) = (id.to_owned(), owner.clone());
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(ttl / 3).await;
                            if !matches!(me.lease(ns, &id, &owner, ttl).await, Ok(true)) {
                                tracing::warn!(
                                    namespace = ns,
                                    id,
                                    "lost a shared mutex while holding it"
                                );
                            }
                        }
                    })
                };
                Ok(SharedGuard {
                    inner: GuardInner::Redis {
                        shared: self.clone(),
                        ns,
                        id: id.to_owned(),
                        owner,
                        keeper,
                    },
                })
            }
        }
    }
}

/// How long a Redis mutex outlives a dead holder.
const MUTEX_TTL: Duration = Duration::from_secs(10);

impl Local {
    /// Drops expired values every [`PURGE_EVERY`] expiring writes, so memory holds what is
    /// live (Redis expires its keys itself).
    fn purge_now_and_then(&self, now: u64) {
        use std::sync::atomic::Ordering;
        if self.expiring_writes.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            self.values.retain(|_, v| v.expires.is_none_or(|e| e > now));
        }
    }
}

impl RedisBackend {
    fn key(&self, ns: &str, id: &str) -> String {
        format!("{}{ns}:{id}", self.prefix)
    }
    fn index(&self, ns: &str) -> String {
        format!("{}{ns}", self.prefix)
    }
}

/// A held mutex of [`Shared::mutex`]; released on drop.
pub(crate) struct SharedGuard {
    inner: GuardInner,
}

impl std::fmt::Debug for SharedGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedGuard")
    }
}

enum GuardInner {
    Local(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>),
    Redis {
        shared: Shared,
        ns: &'static str,
        id: String,
        owner: String,
        keeper: tokio::task::JoinHandle<()>,
    },
    Released,
}

impl Drop for SharedGuard {
    fn drop(&mut self) {
        if let GuardInner::Redis {
            shared,
            ns,
            id,
            owner,
            keeper,
        } = std::mem::replace(&mut self.inner, GuardInner::Released)
        {
            keeper.abort();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = shared.release(ns, &id, &owner).await {
                        tracing::warn!(namespace = ns, id, error = %e, "cannot release a shared mutex; it expires by itself");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Shared {
        Shared::local(None, "t", Arc::new(locks::SystemClock)).unwrap()
    }

    #[test]
    fn ids_round_trip_through_file_names() {
        for id in ["a", "ä/..\\x", ""] {
            assert_eq!(unhex_id(&hex_id(id)).as_deref(), Some(id));
        }
        assert_eq!(unhex_id("zz"), None);
    }

    #[tokio::test]
    async fn records_leases_and_mutexes() {
        let s = local();
        s.put_json("file", "a", &1u32, Keep::Durable).await.unwrap();
        s.put_json("file", "b", &2u32, Keep::Listed).await.unwrap();
        s.put_json("file", "c", &3u32, Keep::For(Duration::from_secs(60)))
            .await
            .unwrap();
        let all: Vec<(String, u32)> = s.all_json("file").await.unwrap();
        assert_eq!(
            all,
            vec![("a".into(), 1), ("b".into(), 2)],
            "Keep::For is not listed"
        );
        assert_eq!(s.get_json::<u32>("file", "c").await.unwrap(), Some(3));
        s.delete("file", "a").await.unwrap();
        assert_eq!(s.get_json::<u32>("file", "a").await.unwrap(), None);

        assert!(
            s.lease("l", "x", "me", Duration::from_secs(5))
                .await
                .unwrap()
        );
        assert!(
            !s.lease("l", "x", "you", Duration::from_secs(5))
                .await
                .unwrap()
        );
        assert!(
            s.lease("l", "x", "me", Duration::from_secs(5))
                .await
                .unwrap(),
            "extends"
        );
        assert!(
            !s.put_if_leased("l", "you", "d", "x", Some(b"1".to_vec()))
                .await
                .unwrap()
        );
        assert!(
            s.put_if_leased("l", "me", "d", "x", Some(b"1".to_vec()))
                .await
                .unwrap()
        );
        s.release("l", "x", "you").await.unwrap();
        assert!(
            !s.lease("l", "x", "you", Duration::from_secs(5))
                .await
                .unwrap()
        );
        s.release("l", "x", "me").await.unwrap();
        assert!(
            s.lease("l", "x", "you", Duration::from_secs(5))
                .await
                .unwrap()
        );

        let g = s.mutex("m", "f", Duration::from_secs(1)).await.unwrap();
        assert!(s.mutex("m", "f", Duration::from_millis(20)).await.is_err());
        drop(g);
        assert!(s.mutex("m", "f", Duration::from_millis(20)).await.is_ok());
    }

    #[tokio::test]
    async fn memoised_reads_follow_every_change() {
        let clock = Arc::new(locks::ManualClock::new(1_000));
        let s = Shared::local(None, "t", clock.clone()).unwrap();
        assert_eq!(s.get_json_memo::<String>("file", "a").await.unwrap(), None);
        s.put_json("file", "a", &"one", Keep::Listed).await.unwrap();
        for _ in 0..2 {
            // The second read is served from the memo.
            assert_eq!(
                s.get_json_memo::<String>("file", "a").await.unwrap(),
                Some("one".to_owned())
            );
        }
        // Another type reading the same bytes decodes them itself.
        s.put_json("file", "a", &7u32, Keep::Listed).await.unwrap();
        assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), Some(7));
        assert_eq!(s.get_json_memo::<u64>("file", "a").await.unwrap(), Some(7));
        assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), Some(7));
        // A rewrite, an expiry and a deletion are seen at once.
        s.put_json("file", "a", &8u32, Keep::For(Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), Some(8));
        clock.advance(2_000);
        assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), None);
        s.put_json("file", "a", &9u32, Keep::Listed).await.unwrap();
        assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), Some(9));
        s.delete("file", "a").await.unwrap();
        assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), None);
        // Undecodable bytes read as missing, as with get_json.
        s.put("file", "b", b"{".to_vec(), Keep::Listed)
            .await
            .unwrap();
        assert_eq!(s.get_json_memo::<u32>("file", "b").await.unwrap(), None);
    }

    #[tokio::test]
    async fn expired_values_leave_memory() {
        let clock = Arc::new(locks::ManualClock::new(1_000));
        let s = Shared::local(None, "t", clock.clone()).unwrap();
        // The purge comes with the PURGE_EVERY-th expiring write: the last one below.
        for i in 0..PURGE_EVERY - 1 {
            s.put(
                "finished",
                &i.to_string(),
                Vec::new(),
                Keep::For(Duration::from_secs(1)),
            )
            .await
            .unwrap();
        }
        s.put_json("file", "kept", &1u32, Keep::Listed)
            .await
            .unwrap();
        clock.advance(5_000);
        s.put(
            "finished",
            "last",
            Vec::new(),
            Keep::For(Duration::from_secs(1)),
        )
        .await
        .unwrap();
        let Backend::Local(l) = &s.backend else {
            unreachable!()
        };
        let total = l.values.len();
        assert!(total < 10, "{total} values left after the purge");
        assert_eq!(s.get_json::<u32>("file", "kept").await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn durable_records_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("shared-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let clock: Arc<dyn crate::clock::Clock> = Arc::new(locks::SystemClock);
        let s = Shared::local(Some(dir.clone()), "t", clock.clone()).unwrap();
        s.put_json("delivery", "1/x", &"kept", Keep::Durable)
            .await
            .unwrap();
        s.put_json("delivery", "2", &"memory", Keep::Listed)
            .await
            .unwrap();
        s.put_json("delivery", "3", &"gone", Keep::Durable)
            .await
            .unwrap();
        s.delete("delivery", "3").await.unwrap();
        let again = Shared::local(Some(dir.clone()), "t", clock).unwrap();
        let all: Vec<(String, String)> = again.all_json("delivery").await.unwrap();
        assert_eq!(all, vec![("1/x".into(), "kept".into())]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
