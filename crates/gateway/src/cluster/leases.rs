//! Leases ("exactly one instance works on this") and the per-record mutex built on them.

use super::backends::{Backend, Value};
use super::{Keep, Shared, SharedError};
use std::sync::Arc;
use std::time::Duration;

impl Shared {
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
