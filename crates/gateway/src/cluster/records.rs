//! Records: get, put and delete, by namespace and id, and the listing of a namespace.

use super::backends::{Backend, Value, decode, hex_id};
use super::{Keep, Shared, SharedError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

impl Shared {
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
}
