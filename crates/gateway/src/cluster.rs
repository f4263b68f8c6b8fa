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

use backends::{Backend, EXTEND, Local, PUT_IF_LEASED, RELEASE, RedisBackend, Value, unhex_id};
use dashmap::DashMap;
use locks::{RedisConn, RedisSettings};
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

mod backends;
mod leases;
mod records;
#[cfg(test)]
mod tests;

pub(crate) use leases::SharedGuard;

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
}
