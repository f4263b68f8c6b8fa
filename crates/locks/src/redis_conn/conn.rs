//! [`RedisConn`]: the connection every user of Redis shares, following the primary.

use super::sentinel::ask_sentinels;
use super::{RedisSettings, SENTINEL_POLL, bracket, describe_error, redact_url};
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

/// A reconnecting connection to Redis (the primary, with sentinels), cheap to clone; every
/// command goes through it ([`ConnectionLike`]).
#[derive(Clone)]
pub struct RedisConn {
    inner: Arc<Inner>,
    /// Set by [`RedisConn::pin`]: the commands go to this connection even if the primary
    /// changes meanwhile (a write and its `WAIT`).
    pinned: Option<ConnectionManager>,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConn")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Current {
    manager: ConnectionManager,
    /// `host:port` of the primary (sentinels) or the URL (redacted).
    addr: String,
}

struct Inner {
    settings: RedisSettings,
    timeout: Duration,
    current: RwLock<Option<Current>>,
    /// One discovery at a time.
    discovering: tokio::sync::Mutex<()>,
    /// Why the last discovery found no primary.
    last_error: Mutex<Option<String>>,
}

/// A Redis error of this module's own.
fn error(what: &'static str, detail: String) -> RedisError {
    RedisError::from((ErrorKind::MasterDown, what, detail))
}

/// What a failover explains: the node is no longer the primary, or cannot be reached.
fn primary_lost(e: &RedisError) -> bool {
    e.kind() == ErrorKind::ReadOnly
        || e.kind() == ErrorKind::MasterDown
        || e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
}

/// Connects to one server: a reconnecting connection whose connects and answers time out
/// after `timeout` (one retry), failing unless the server answers within `timeout` now.
async fn manager(client: redis::Client, timeout: Duration) -> Result<ConnectionManager, String> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(timeout)
        .set_number_of_retries(1);
    tokio::time::timeout(timeout, client.get_connection_manager_with_config(config))
        .await
        .map_err(|_| format!("no answer from Redis within {timeout:?}"))?
        .map_err(|e| describe_error(&e))
}

impl RedisConn {
    /// Connects (to the primary the sentinels name, with sentinels), failing unless Redis
    /// answers within `timeout`. With sentinels, a task keeps asking them while the
    /// connection lives.
    pub async fn connect(settings: &RedisSettings, timeout: Duration) -> Result<Self, String> {
        let inner = Arc::new(Inner {
            settings: settings.clone(),
            timeout,
            current: RwLock::new(None),
            discovering: tokio::sync::Mutex::new(()),
            last_error: Mutex::new(None),
        });
        let conn = RedisConn {
            inner,
            pinned: None,
        };
        if settings.sentinels.is_empty() {
            let m = manager(settings.client(None)?, timeout).await?;
            conn.set_current(Some(Current {
                manager: m,
                addr: redact_url(&settings.url),
            }));
        } else {
            conn.discover().await?;
            let weak = Arc::downgrade(&conn.inner);
            tokio::spawn(watch_sentinels(weak));
        }
        Ok(conn)
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &RedisSettings {
        &self.inner.settings
    }

    /// Where it is connected now (`host:port` of the primary with sentinels).
    pub fn primary(&self) -> Option<String> {
        self.read_current(|c| c.map(|c| c.addr.clone()))
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut c = self.clone();
        let _: String = redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }

    /// This connection, bound to the current primary until dropped.
    pub fn pin(&self) -> Result<RedisConn, RedisError> {
        Ok(RedisConn {
            inner: self.inner.clone(),
            pinned: Some(self.current_manager()?),
        })
    }

    /// Waits until `min_replicas_acked` replicas hold the writes made so far on this
    /// connection (use a [`RedisConn::pin`]ned one); an error names Redis replication.
    pub async fn wait_replicas(&mut self) -> Result<(), String> {
        let s = &self.inner.settings;
        if s.min_replicas_acked == 0 {
            return Ok(());
        }
        let (n, ms) = (
            s.min_replicas_acked,
            s.replication_timeout.as_millis().max(1) as u64,
        );
        let acked: Result<u64, RedisError> =
            redis::cmd("WAIT").arg(n).arg(ms).query_async(self).await;
        match acked {
            Ok(a) if a >= u64::from(n) => Ok(()),
            Ok(a) => Err(format!(
                "Redis replication: {a} of the {n} replicas required (cluster.redis_min_replicas_acked) acknowledged the write within {ms} ms"
            )),
            Err(e) => Err(format!("Redis replication: WAIT failed: {e}")),
        }
    }

    fn read_current<T>(&self, f: impl FnOnce(Option<&Current>) -> T) -> T {
        match self.inner.current.read() {
            Ok(g) => f(g.as_ref()),
            Err(p) => f(p.into_inner().as_ref()),
        }
    }

    fn set_current(&self, c: Option<Current>) {
        match self.inner.current.write() {
            Ok(mut g) => *g = c,
            Err(p) => *p.into_inner() = c,
        }
    }

    fn current_manager(&self) -> Result<ConnectionManager, RedisError> {
        if let Some(m) = &self.pinned {
            return Ok(m.clone());
        }
        if let Some(m) = self.read_current(|c| c.map(|c| c.manager.clone())) {
            return Ok(m);
        }
        self.rediscover("no primary known");
        let why = self
            .inner
            .last_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "the sentinels are being asked".into());
        Err(error(
            "no Redis primary known",
            format!("{}: {why}", self.inner.settings.describe()),
        ))
    }

    /// After an error a failover explains, asks the sentinels again (in the background).
    fn on_error(&self, e: &RedisError) {
        if self.inner.settings.sentinels.is_empty() || !primary_lost(e) {
            return;
        }
        if e.kind() == ErrorKind::ReadOnly {
            tracing::warn!(
                primary = self.primary().unwrap_or_default(),
                "Redis answered READONLY: the primary was demoted; asking the sentinels for the new one"
            );
            // A replica must not serve reads as if it were the primary.
            self.set_current(None);
        }
        self.rediscover("a command failed");
    }

    fn rediscover(&self, why: &'static str) {
        if self.inner.settings.sentinels.is_empty() {
            return;
        }
        let me = RedisConn {
            inner: self.inner.clone(),
            pinned: None,
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = me.discover().await {
                    tracing::warn!(reason = why, error = %e, "no Redis primary known");
                }
            });
        }
    }

    /// Asks the sentinels for the primary and connects to it if it changed.
    async fn discover(&self) -> Result<(), String> {
        let Ok(_one) = self.inner.discovering.try_lock() else {
            return Ok(());
        };
        let r = self.discover_now().await;
        if let Ok(mut last) = self.inner.last_error.lock() {
            *last = r.as_ref().err().cloned();
        }
        r
    }

    async fn discover_now(&self) -> Result<(), String> {
        let s = &self.inner.settings;
        let (host, port) = ask_sentinels(s, self.inner.timeout).await?;
        let addr = format!("{}:{port}", bracket(&host));
        if self.read_current(|c| c.is_some_and(|c| c.addr == addr)) {
            return Ok(());
        }
        let mut m = manager(s.client(Some((&host, port)))?, self.inner.timeout)
            .await
            .map_err(|e| format!("primary {addr} named by the sentinels: {e}"))?;
        let role: Vec<Value> = redis::cmd("ROLE")
            .query_async(&mut m)
            .await
            .map_err(|e| format!("primary {addr}: ROLE: {e}"))?;
        let is_master = matches!(role.first(), Some(Value::BulkString(b)) if b == b"master")
            || matches!(role.first(), Some(Value::SimpleString(t)) if t == "master");
        if !is_master {
            return Err(format!(
                "{addr}, named primary by the sentinels, is not a primary (yet); a failover is under way"
            ));
        }
        let before = self.primary();
        self.set_current(Some(Current {
            manager: m,
            addr: addr.clone(),
        }));
        match before {
            Some(b) => tracing::warn!(from = b, to = addr, "Redis primary changed (sentinels)"),
            None => tracing::info!(primary = addr, "Redis primary (sentinels)"),
        }
        Ok(())
    }
}

/// Whether an answer is (or holds) `READONLY`: server errors arrive as values, and become
/// errors only when the caller converts them.
fn readonly(v: &Value) -> bool {
    match v {
        Value::ServerError(e) => e.code() == "READONLY",
        Value::Array(items) => items
            .iter()
            .any(|i| matches!(i, Value::ServerError(e) if e.code() == "READONLY")),
        _ => false,
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut m = self.current_manager()?;
            let r = m.req_packed_command(cmd).await;
            match &r {
                Err(e) => self.on_error(e),
                Ok(v) if readonly(v) => {
                    self.on_error(&RedisError::from((ErrorKind::ReadOnly, "READONLY")))
                }
                Ok(_) => {}
            }
            r
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut m = self.current_manager()?;
            let r = m.req_packed_commands(cmd, offset, count).await;
            match &r {
                Err(e) => self.on_error(e),
                Ok(vs) if vs.iter().any(readonly) => {
                    self.on_error(&RedisError::from((ErrorKind::ReadOnly, "READONLY")));
                }
                Ok(_) => {}
            }
            r
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// Asks the sentinels every `sentinel_poll` while the connection lives.
async fn watch_sentinels(inner: Weak<Inner>) {
    let every = match inner.upgrade().map(|i| i.settings.sentinel_poll) {
        Some(d) if !d.is_zero() => d,
        _ => SENTINEL_POLL,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else { return };
        let conn = RedisConn {
            inner,
            pinned: None,
        };
        if let Err(e) = conn.discover().await {
            tracing::warn!(error = %e, "no Redis primary known");
        }
    }
}
