//! The two places the shared state lives: memory (and `<data_dir>/state`) for one instance,
//! Redis for several; the Lua scripts of the leases; record ids as file names.

use dashmap::DashMap;
use locks::RedisConn;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone)]
pub(super) enum Backend {
    Local(Arc<Local>),
    Redis(Arc<RedisBackend>),
}

pub(super) struct Value {
    pub(super) bytes: Arc<[u8]>,
    /// Unix ms; `None` = no expiry.
    pub(super) expires: Option<u64>,
    /// `bytes` decoded by `Shared::get_json_memo`, kept until the value changes.
    pub(super) decoded: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
}

impl Value {
    pub(super) fn new(bytes: Arc<[u8]>, expires: Option<u64>) -> Self {
        Value {
            bytes,
            expires,
            decoded: std::sync::OnceLock::new(),
        }
    }
}

pub(super) struct Local {
    /// (namespace, id) → value.
    pub(super) values: DashMap<(&'static str, String), Value>,
    /// Where `Keep::Durable` values are written (`<data_dir>/state/<ns>/<hex id>`).
    pub(super) dir: Option<PathBuf>,
    /// Per-record async mutexes.
    pub(super) mutexes: DashMap<(&'static str, String), Arc<tokio::sync::Mutex<()>>>,
    /// Writes of expiring values since the last purge of expired ones.
    pub(super) expiring_writes: std::sync::atomic::AtomicU64,
}

/// Expired values (and leases) are purged from memory every this many expiring writes.
pub(super) const PURGE_EVERY: u64 = 4096;

pub(super) struct RedisBackend {
    pub(super) conn: RedisConn,
    pub(super) prefix: String,
    pub(super) put_if: redis::Script,
    pub(super) release: redis::Script,
    pub(super) extend: redis::Script,
}

/// Writes or deletes a record only while the caller still holds a lease.
/// KEYS: lease, record, index. ARGV: owner, "put"|"del", id, value.
pub(super) const PUT_IF_LEASED: &str = r"
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

pub(super) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

pub(super) const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// A record's JSON; an undecodable one is logged and reads as missing.
pub(super) fn decode<T: DeserializeOwned>(ns: &str, id: &str, bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(namespace = ns, id, error = %e, "unreadable shared record; ignored");
            None
        }
    }
}

pub(super) fn hex_id(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex_id(name: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..name.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(name.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl Local {
    /// Drops expired values every [`PURGE_EVERY`] expiring writes, so memory holds what is
    /// live (Redis expires its keys itself).
    pub(super) fn purge_now_and_then(&self, now: u64) {
        use std::sync::atomic::Ordering;
        if self.expiring_writes.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            self.values.retain(|_, v| v.expires.is_none_or(|e| e > now));
        }
    }
}

impl RedisBackend {
    pub(super) fn key(&self, ns: &str, id: &str) -> String {
        format!("{}{ns}:{id}", self.prefix)
    }
    pub(super) fn index(&self, ns: &str) -> String {
        format!("{}{ns}", self.prefix)
    }
}
