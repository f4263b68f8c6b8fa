//! How the gateway reaches Redis: one settings type ([`RedisSettings`]) and one connection
//! ([`RedisConn`]) for every user of Redis (the lock store, the shared state), so they connect,
//! authenticate, fail and recover alike.
//!
//! - `rediss://` is TLS (rustls), verified against the system's roots or, with `ca_file`, that
//!   file's CAs; `client_cert_file`/`client_key_file` add mutual TLS.
//! - `username`/`password` authenticate (AUTH); a password is never logged: [`redact_url`].
//! - With `sentinels`, the primary is what the sentinels name (`SENTINEL
//!   get-master-addr-by-name`). They are asked again every [`SENTINEL_POLL`] and whenever a
//!   command fails for a reason a failover explains (`READONLY` from a demoted primary, a lost
//!   connection); the command that failed is answered with its error, never retried in a
//!   loop. While no primary is known, every command fails with "no Redis primary known".
//! - `min_replicas_acked > 0`: [`RedisConn::wait_replicas`] waits (`WAIT n timeout`) until
//!   that many replicas have the writes made so far on the connection.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

/// How often the sentinels are asked which node is the primary.
pub const SENTINEL_POLL: Duration = Duration::from_secs(1);

/// Everything needed to reach Redis.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://`, `rediss://` (TLS) or `redis+unix://`; empty with `sentinels`.
    pub url: String,
    /// ACL user (AUTH username password); `None` = the URL's, or `default`.
    pub username: Option<String>,
    /// Password (from a file or a variable); `None` = the URL's, if any.
    pub password: Option<String>,
    /// Extra CA certificates (PEM) that verify the servers' certificates.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub client_key_file: Option<PathBuf>,
    /// Sentinels (`host:port`) naming the primary; empty = `url` is the server.
    pub sentinels: Vec<String>,
    /// The master name the sentinels monitor.
    pub master_name: String,
    /// Password of the sentinels (`requirepass` in sentinel.conf), if any.
    pub sentinel_password: Option<String>,
    /// TLS to the sentinels and the primary they name (with `sentinels`).
    pub sentinel_tls: bool,
    /// Replicas that must hold a write before it is acknowledged (`WAIT`); 0 = none.
    pub min_replicas_acked: u32,
    /// How long `WAIT` waits.
    pub replication_timeout: Duration,
    /// How often the sentinels are asked besides after errors ([`SENTINEL_POLL`]; zero means
    /// that too).
    pub sentinel_poll: Duration,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "REDACTED"))
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("sentinel_tls", &self.sentinel_tls)
            .field("min_replicas_acked", &self.min_replicas_acked)
            .finish_non_exhaustive()
    }
}

impl RedisSettings {
    /// The server at `url`, nothing else set.
    pub fn from_url(url: &str) -> Self {
        RedisSettings {
            url: url.to_owned(),
            replication_timeout: Duration::from_secs(1),
            sentinel_poll: SENTINEL_POLL,
            ..Default::default()
        }
    }

    /// Whether the connections use TLS.
    pub fn tls(&self) -> bool {
        if self.sentinels.is_empty() {
            self.url.starts_with("rediss://")
        } else {
            self.sentinel_tls
        }
    }

    /// Where the gateway looks for the primary, for logs and messages (no password).
    pub fn describe(&self) -> String {
        if self.sentinels.is_empty() {
            redact_url(&self.url)
        } else {
            format!(
                "master `{}` of sentinels {}",
                self.master_name,
                self.sentinels.join(", ")
            )
        }
    }

    /// The certificates of `ca_file`, `client_cert_file` and `client_key_file`, read now.
    fn certificates(&self) -> Result<Option<redis::TlsCertificates>, String> {
        if self.ca_file.is_none() && self.client_cert_file.is_none() {
            return Ok(None);
        }
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let root_cert = match &self.ca_file {
            None => None,
            Some(ca) => {
                // The CA file adds to the system's roots (redis would use it instead).
                let mut pem = read(ca)?;
                for cert in rustls_native_roots() {
                    pem.extend_from_slice(&cert);
                }
                Some(pem)
            }
        };
        let client_tls = match (&self.client_cert_file, &self.client_key_file) {
            (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
                client_cert: read(c)?,
                client_key: read(k)?,
            }),
            _ => None,
        };
        Ok(Some(redis::TlsCertificates {
            client_tls,
            root_cert,
        }))
    }

    /// A client for the server at `url`, or at `host:port` (a primary named by the sentinels).
    fn client(&self, at: Option<(&str, u16)>) -> Result<redis::Client, String> {
        let url = match at {
            None => self.url.clone(),
            Some((host, port)) => {
                let scheme = if self.sentinel_tls { "rediss" } else { "redis" };
                format!("{scheme}://{}:{port}/", bracket(host))
            }
        };
        self.client_for(&url, self.username.clone(), self.password.clone())
    }

    /// A client for one sentinel.
    fn sentinel_client(&self, sentinel: &str) -> Result<redis::Client, String> {
        let scheme = if self.sentinel_tls { "rediss" } else { "redis" };
        self.client_for(
            &format!("{scheme}://{sentinel}/"),
            None,
            self.sentinel_password.clone(),
        )
    }

    fn client_for(
        &self,
        url: &str,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<redis::Client, String> {
        let mut info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(|e| format!("{}: {e}", redact_url(url)))?;
        if username.is_some() {
            info.redis.username = username;
        }
        if password.is_some() {
            info.redis.password = password;
        }
        let tls = matches!(info.addr, redis::ConnectionAddr::TcpTls { .. });
        match self.certificates()? {
            Some(certs) if tls => redis::Client::build_with_tls(info, certs),
            _ => redis::Client::open(info),
        }
        .map_err(|e| e.to_string())
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The system's root certificates as PEM (those that cannot be read are left out).
fn rustls_native_roots() -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let found = rustls_native_certs::load_native_certs();
    found
        .certs
        .iter()
        // Only what a root store takes (redis refuses the whole file otherwise).
        .filter(|der| rustls::RootCertStore::empty().add((*der).clone()).is_ok())
        .map(|der| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
            for line in b64.as_bytes().chunks(64) {
                pem.extend_from_slice(line);
                pem.push(b'\n');
            }
            pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
            pem
        })
        .collect()
}

/// `url` with its password replaced by `REDACTED` (user info and `pass=`/`password=` query).
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..end].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "REDACTED");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k == "pass" || k == "password" => format!("{k}=REDACTED"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// Whether `url` carries a password (in its user info or a `pass=` query).
pub fn url_has_password(url: &str) -> bool {
    redact_url(url) != url
}

/// What a PEM file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemKind {
    /// One or more certificates.
    Certificates,
    /// A private key.
    PrivateKey,
}

/// Checks that `path` is readable (`Err(Ok(io))`) and holds `kind` (`Err(Err(why))`).
pub fn check_pem(
    path: &std::path::Path,
    kind: PemKind,
) -> Result<(), Result<std::io::Error, String>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bytes = std::fs::read(path).map_err(Ok)?;
    match kind {
        PemKind::Certificates => {
            let certs = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Err(format!("{}: not PEM certificates: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Err(format!(
                    "{}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                )));
            }
            Ok(())
        }
        PemKind::PrivateKey => PrivateKeyDer::from_pem_slice(&bytes)
            .map(|_| ())
            .map_err(|e| Err(format!("{}: no PEM private key: {e}", path.display()))),
    }
}

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

/// A connection error in words that name the stage that failed.
pub fn describe_error(e: &RedisError) -> String {
    let text = e.to_string();
    if e.kind() == ErrorKind::AuthenticationFailed || text.contains("WRONGPASS") {
        format!("AUTH refused (wrong username or password): {text}")
    } else if text.contains("invalid peer certificate") || text.contains("certificate") {
        format!("TLS: {text}")
    } else {
        text
    }
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

/// The primary's address as the first sentinel that knows it says.
pub async fn ask_sentinels(s: &RedisSettings, timeout: Duration) -> Result<(String, u16), String> {
    let mut errors = Vec::new();
    for sentinel in &s.sentinels {
        match ask_sentinel(s, sentinel, timeout).await {
            Ok(Some(addr)) => return Ok(addr),
            Ok(None) => errors.push(format!(
                "{sentinel}: does not know master `{}`",
                s.master_name
            )),
            Err(e) => errors.push(format!("{sentinel}: {e}")),
        }
    }
    Err(format!(
        "no sentinel named the primary ({})",
        errors.join("; ")
    ))
}

/// One sentinel's answer to `SENTINEL get-master-addr-by-name` (`None`: unknown master).
pub async fn ask_sentinel(
    s: &RedisSettings,
    sentinel: &str,
    timeout: Duration,
) -> Result<Option<(String, u16)>, String> {
    let client = s.sentinel_client(sentinel)?;
    let ask = async {
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| describe_error(&e))?;
        let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&s.master_name)
            .query_async(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        Ok(addr)
    };
    tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("rediss://gw:s3cr3t@redis:6380/0"),
            "rediss://gw:REDACTED@redis:6380/0"
        );
        assert_eq!(redact_url("redis://:pw@h/"), "redis://:REDACTED@h/");
        assert_eq!(redact_url("redis://user@h/"), "redis://user@h/");
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=x"),
            "redis+unix:///run/redis.sock?db=1&pass=REDACTED"
        );
        assert!(url_has_password("redis://:pw@h/"));
        assert!(!url_has_password("redis://h:6379/"));
        let s = RedisSettings {
            password: Some("hunter2".into()),
            ..RedisSettings::from_url("redis://:inline@h/")
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("inline"),
            "{shown}"
        );
    }
}
