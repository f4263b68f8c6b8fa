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

mod conn;
mod sentinel;

pub use conn::RedisConn;
pub use sentinel::{ask_sentinel, ask_sentinels};

use redis::{ErrorKind, RedisError};
use std::path::PathBuf;
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
    pub(crate) fn client(&self, at: Option<(&str, u16)>) -> Result<redis::Client, String> {
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
    pub(crate) fn sentinel_client(&self, sentinel: &str) -> Result<redis::Client, String> {
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

pub(crate) fn bracket(host: &str) -> String {
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
