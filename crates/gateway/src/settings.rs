//! Typed, validated settings. The binary turns TOML into these; the gateway never sees TOML.

use crate::access::{AllowList, RouteGroup};
use docs_api::Secret;
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default values, each named once (the example TOML test checks them).
pub mod defaults {
    /// `server.listen`
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// `server.admin_listen`
    pub const ADMIN_LISTEN: &str = "127.0.0.1:9090";
    /// `server.public_url`
    pub const PUBLIC_URL: &str = "http://127.0.0.1:8080";
    /// `server.data_dir`
    pub const DATA_DIR: &str = "./wopi-gateway-data";
    /// `server.header_read_timeout_seconds`
    pub const HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
    /// `server.idle_timeout_seconds`
    pub const IDLE_TIMEOUT_SECONDS: u64 = 120;
    /// `server.request_timeout_seconds`
    pub const REQUEST_TIMEOUT_SECONDS: u64 = 600;
    /// `server.shutdown_grace_seconds`
    pub const SHUTDOWN_GRACE_SECONDS: u64 = 30;
    /// `server.max_concurrent_requests`
    pub const MAX_CONCURRENT_REQUESTS: usize = 10_000;
    /// `server.max_connections` when unset: derived from the descriptor limit (`0` in the file).
    pub const MAX_CONNECTIONS_AUTO: usize = 0;
    /// `server.max_head_bytes`
    pub const MAX_HEAD_BYTES: usize = 64 * 1024;
    /// `server.max_headers`
    pub const MAX_HEADERS: usize = 100;
    /// `server.body_idle_timeout_seconds`
    pub const BODY_IDLE_TIMEOUT_SECONDS: u64 = 30;
    /// `server.connection_threads` when unset: one per core (`-1` in the file).
    pub const CONNECTION_THREADS_PER_CORE: i64 = -1;
    /// The most `server.connection_threads` (one per core is capped there too).
    pub const MAX_CONNECTION_THREADS: usize = 64;
    /// `server.log_format`
    pub const LOG_FORMAT: &str = "human";
    /// `server.body_limit_bytes.wopi` (PutFile bodies).
    pub const BODY_LIMIT_WOPI: u64 = 1024 * 1024 * 1024;
    /// `server.body_limit_bytes.integrator`
    pub const BODY_LIMIT_INTEGRATOR: u64 = 1024 * 1024;
    /// `server.body_limit_bytes.docs`
    pub const BODY_LIMIT_DOCS: u64 = 1024 * 1024;
    /// `server.body_limit_bytes.hosting` (convert-to uploads; action forms have their own 1 MiB cap)
    pub const BODY_LIMIT_HOSTING: u64 = 100 * 1024 * 1024;
    /// `server.body_limit_bytes.proxy`
    pub const BODY_LIMIT_PROXY: u64 = 1024 * 1024 * 1024;
    /// `locks.store`
    pub const LOCK_STORE: &str = "memory";
    /// `locks.ttl_seconds` (WOPI: 30 minutes)
    pub const LOCK_TTL_SECONDS: u64 = 1800;
    /// `locks.sweep_interval_ms`
    pub const SWEEP_INTERVAL_MS: u64 = 1000;
    /// `locks.max_lock_age_seconds` (0 = off)
    pub const MAX_LOCK_AGE_SECONDS: u64 = 0;
    /// `locks.redis_url`
    pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";
    /// `locks.redis_prefix`
    pub const REDIS_PREFIX: &str = "wopi-gateway:";
    /// `cluster.key_prefix`
    pub const CLUSTER_KEY_PREFIX: &str = "wopi-gateway:";
    /// `cluster.redis_min_replicas_acked` (0: no `WAIT`)
    pub const CLUSTER_REDIS_MIN_REPLICAS_ACKED: u32 = 0;
    /// `cluster.redis_replication_timeout_ms`
    pub const CLUSTER_REDIS_REPLICATION_TIMEOUT_MS: u64 = 1000;
    /// `cluster.lease_seconds`: how long a dead instance's work (a delivery attempt, a
    /// RefreshLock cadence) stays claimed before another instance takes it over.
    pub const CLUSTER_LEASE_SECONDS: u64 = 15;
    /// `content.store`
    pub const CONTENT_STORE: &str = "fs";
    /// `content.s3.region`
    pub const S3_REGION: &str = "us-east-1";
    /// `host_face.discovery_refresh_seconds`
    pub const DISCOVERY_REFRESH_SECONDS: u64 = 3600;
    /// `host_face.proof`
    pub const PROOF: &str = "required";
    /// `host_face.proof_future_skew_seconds`
    pub const PROOF_FUTURE_SKEW_SECONDS: u64 = 300;
    /// `host_face.access_token_ttl_seconds` (WOPI recommends about 10 hours)
    pub const ACCESS_TOKEN_TTL_SECONDS: u64 = 36_000;
    /// `host_face.download_url_ttl_seconds`
    pub const DOWNLOAD_URL_TTL_SECONDS: u64 = 3600;
    /// `host_face.delivery_max_backoff_seconds`
    pub const DELIVERY_MAX_BACKOFF_SECONDS: u64 = 300;
    /// `host_face.integrator.jwt_header`
    pub const JWT_HEADER: &str = "Authorization";
    /// `docs.url`
    pub const DOCS_URL: &str = "http://127.0.0.1:8000";
    /// `docs.healthcheck_interval_seconds` (0 = off)
    pub const DOCS_HEALTHCHECK_INTERVAL_SECONDS: u64 = 10;
    /// `docs.tunnel_idle_timeout_seconds`
    pub const DOCS_TUNNEL_IDLE_TIMEOUT_SECONDS: u64 = 600;
    /// `client_face.lock_refresh_seconds`
    pub const LOCK_REFRESH_SECONDS: u64 = 600;
    /// `client_face.convert_actions`
    pub const CONVERT_ACTIONS: bool = true;
    /// `client_face.conversion_timeout_seconds`
    pub const CONVERSION_TIMEOUT_SECONDS: u64 = 300;
    /// `client_face.convert_to_max_concurrent`
    pub const CONVERT_TO_MAX_CONCURRENT: usize = 4;
    /// `client_face.send_authorization_header`
    pub const SEND_AUTHORIZATION_HEADER: bool = false;
    /// `upstream.connect_timeout_seconds`
    pub const UPSTREAM_CONNECT_TIMEOUT_SECONDS: u64 = 10;
    /// `upstream.request_timeout_seconds`
    pub const UPSTREAM_REQUEST_TIMEOUT_SECONDS: u64 = 120;
}

/// Everything the gateway runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[server]`
    pub server: ServerSettings,
    /// `[access]`
    pub access: AccessSettings,
    /// `[locks]`
    pub locks: LockStoreSettings,
    /// `[host_face]`
    pub host_face: HostFaceSettings,
    /// `[docs]`
    pub docs: DocsSettings,
    /// `[upstream]`
    pub upstream: UpstreamSettings,
    /// `[client_face]`
    pub client_face: ClientFaceSettings,
    /// `[cluster]`
    pub cluster: ClusterSettings,
    /// `[content]`
    pub content: ContentSettings,
}

/// `[cluster]`: several instances sharing state.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// How to reach Redis (`redis_url` or `redis_sentinels`, TLS, credentials, replication):
    /// `None` runs one instance with state in memory and data_dir.
    pub redis: Option<locks::RedisSettings>,
    /// `key_prefix` of every shared key.
    pub key_prefix: String,
    /// `instance_id` (default: hostname-pid), in logs and metrics.
    pub instance_id: String,
    /// `lease_seconds`: how long a dead instance's claims last.
    pub lease: Duration,
}

/// `[content]`: where file content lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentSettings {
    /// `store = "fs"`: one directory (`dir`, default `<data_dir>/content`).
    Fs {
        /// `content.dir`; `None` = `<data_dir>/content`.
        dir: Option<PathBuf>,
    },
    /// `store = "s3"`: an S3-compatible bucket.
    S3(S3Settings),
}

/// `[content.s3]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `endpoint`, e.g. `http://minio:9000`.
    pub endpoint: String,
    /// `bucket`
    pub bucket: String,
    /// `region`
    pub region: String,
    /// `access_key_id`
    pub access_key_id: String,
    /// The secret read from `secret_access_key_file`.
    pub secret_access_key: String,
    /// `path_style`: `endpoint/bucket/key` rather than `bucket.endpoint/key`.
    pub path_style: bool,
}

impl Settings {
    /// The content directory of `store = "fs"`.
    pub fn content_dir(&self) -> Option<PathBuf> {
        match &self.content {
            ContentSettings::Fs { dir } => Some(
                dir.clone()
                    .unwrap_or_else(|| self.server.data_dir.join("content")),
            ),
            ContentSettings::S3(_) => None,
        }
    }
}

/// `hostname-pid`, the default `cluster.instance_id`.
pub fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".into());
    format!("{host}-{}", std::process::id())
}

/// `[client_face]`
#[derive(Debug, Clone)]
pub struct ClientFaceSettings {
    /// PEM private key signing requests to WOPI hosts; generated into data_dir when `None`.
    pub proof_key_file: Option<PathBuf>,
    /// The previous key, published as "old" for rotation.
    pub proof_key_old_file: Option<PathBuf>,
    /// WOPISrc must be under one of these (SSRF guard); empty refuses all.
    pub allowed_wopi_origins: Vec<String>,
    /// RefreshLock period while anyone edits.
    pub lock_refresh: Duration,
    /// Per-host customization, first match on the WOPISrc origin.
    pub profiles: Vec<Profile>,
    /// Publish `convert` actions (convert-and-edit of formats Docs cannot edit natively).
    pub convert_actions: bool,
    /// Longest wait for one conversion by ONLYOFFICE Docs' `/converter`.
    pub conversion_timeout: Duration,
    /// `convert-to` requests converted at once; more are refused with 503.
    pub convert_to_max_concurrent: usize,
    /// Also send the access token as `Authorization: Bearer …` on every call to a host.
    pub send_authorization_header: bool,
}

/// `[[client_face.profile]]`: how documents of one WOPI host open in ONLYOFFICE Docs.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// WOPISrc origin (or prefix) this profile applies to.
    pub match_origin: String,
    /// `editorConfig.coEditing.mode`: "fast" or "strict".
    pub co_editing_mode: Option<String>,
    /// `editorConfig.coEditing.change`.
    pub co_editing_change: Option<bool>,
    /// `document.permissions.chat`.
    pub chat: Option<bool>,
    /// `customization.about`.
    pub about: Option<bool>,
    /// `customization.uiTheme`.
    pub ui_theme: Option<String>,
    /// `customization.compactToolbar`.
    pub compact_toolbar: Option<bool>,
    /// `customization.forcesave` (Save button → status 6).
    pub forcesave: Option<bool>,
    /// `forcesave_interval_seconds`: while an edit session of this profile is live, a
    /// `forcesave` command goes to Docs' command service this often (zero: never).
    pub forcesave_interval: Duration,
    /// `customization.logo.image`.
    pub logo_image: Option<String>,
    /// `customization.logo.url`.
    pub logo_url: Option<String>,
    /// `customization.customer.name`.
    pub customer_name: Option<String>,
    /// `customization.customer.www`.
    pub customer_www: Option<String>,
    /// `editorConfig.plugins.autostart`.
    pub plugins_autostart: Vec<String>,
    /// `editorConfig.plugins.pluginsData`.
    pub plugins_data: Vec<String>,
    /// `editorConfig.templates`: `[{title, image, url}]`.
    pub templates: Vec<serde_json::Value>,
    /// Anything else, deep-merged into `editorConfig.customization` last.
    pub customization: serde_json::Map<String, serde_json::Value>,
}

/// Output format of logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Public listener.
    pub listen: SocketAddr,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin_listen: SocketAddr,
    /// How browsers and external clients reach the gateway; proofs are checked against URLs
    /// rebuilt from it (or from `internal_url`, whichever the client signed).
    pub public_url: PublicUrl,
    /// How servers (ONLYOFFICE Docs, WOPI clients and hosts, integrators) reach the gateway:
    /// the base of document.url, callbackUrl, download URLs and the host face's WOPISrc.
    /// Defaults to `public_url`.
    pub internal_url: PublicUrl,
    /// Generated state, spool, keys.
    pub data_dir: PathBuf,
    /// TLS on the public listener.
    pub tls: Option<TlsSettings>,
    /// Time allowed to receive request headers.
    pub header_read_timeout: Duration,
    /// Idle keep-alive connections are closed after this.
    pub idle_timeout: Duration,
    /// Whole-request deadline (handlers; streamed bodies included).
    pub request_timeout: Duration,
    /// How long in-flight requests may finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Requests served at once; more are shed with 503.
    pub max_concurrent_requests: usize,
    /// Connections the public listener keeps open at once; at the cap it stops accepting
    /// until one closes (the admin listener and open connections go on). Derived from the
    /// descriptor limit when 0 ([`max_connections_auto`]).
    pub max_connections: usize,
    /// The largest request head accepted (431 above; 414 when the request line alone is).
    pub max_head_bytes: usize,
    /// The most header fields a request may have (431 above).
    pub max_headers: usize,
    /// A request body that moves no byte for this long ends with 408.
    pub body_idle_timeout: Duration,
    /// Threads that each serve the public listener's connections on a runtime of their own
    /// (a connection stays on one thread from accept to close); 0 serves them on the shared
    /// multi-thread runtime.
    pub connection_threads: usize,
    /// Per route group body limit in bytes (413 above).
    pub body_limits: [u64; RouteGroup::COUNT],
    /// Log format.
    pub log_format: LogFormat,
    /// Bearer token the admin listener requires on every route but `/metrics`, `/healthz`
    /// and `/readyz` (required when `admin_listen` is not a loopback address).
    pub admin_token: Option<Secret>,
}

/// A base URL split into the parts proof checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`, default port dropped, lower-case.
    pub authority: String,
    /// Path prefix without trailing slash (`""` at the root).
    pub path: String,
}

impl PublicUrl {
    /// Parses an absolute http(s) URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        let scheme = uri
            .scheme_str()
            .ok_or("must be absolute (http:// or https://)")?
            .to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err("scheme must be http or https".into());
        }
        let auth = uri.authority().ok_or("must have a host")?;
        let host = auth.host().to_ascii_lowercase();
        let default_port = if scheme == "https" { 443 } else { 80 };
        let authority = match auth.port_u16() {
            Some(p) if p != default_port => format!("{host}:{p}"),
            _ => host,
        };
        if uri.query().is_some() {
            return Err("must not have a query".into());
        }
        let path = uri.path().trim_end_matches('/').to_owned();
        Ok(PublicUrl {
            scheme,
            authority,
            path,
        })
    }

    /// `scheme://authority` + path prefix.
    pub fn base(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path)
    }

    /// Whether a request's `Host` (or `:authority`) names this URL's authority.
    pub fn has_authority(&self, host: &str) -> bool {
        let default_port = if self.scheme == "https" {
            ":443"
        } else {
            ":80"
        };
        let host = host.to_ascii_lowercase();
        let host = host.strip_suffix(default_port).unwrap_or(&host);
        host == self.authority
    }

    /// `scheme://authority` only.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// `[server.tls]`
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// `[access]`
#[derive(Debug, Clone, Default)]
pub struct AccessSettings {
    /// Peers whose `X-Forwarded-For`/`Forwarded` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// One allowlist per route group.
    pub allow: [AllowList; RouteGroup::COUNT],
}

/// Which lock store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockStoreKind {
    /// In-process DashMap.
    Memory,
    /// Shared Redis.
    Redis {
        /// `locks.redis_url`, or `[cluster]`'s connection settings.
        redis: Box<locks::RedisSettings>,
        /// Key prefix.
        prefix: String,
    },
}

/// `[locks]`
#[derive(Debug, Clone)]
pub struct LockStoreSettings {
    /// The store.
    pub kind: LockStoreKind,
    /// Store settings (TTL, max age, sweep).
    pub store: locks::LockSettings,
}

/// Whether the host face checks proofs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofMode {
    /// Every WOPI request must carry a valid proof.
    Required,
    /// No checks (test setups only; logged loudly).
    Off,
}

/// `[host_face]`
#[derive(Debug, Clone)]
pub struct HostFaceSettings {
    /// WOPI clients' discovery URLs.
    pub discovery_urls: Vec<String>,
    /// How often discovery is re-fetched.
    pub discovery_refresh: Duration,
    /// Proof checks.
    pub proof: ProofMode,
    /// Tolerated future skew of `X-WOPI-TimeStamp`.
    pub proof_future_skew: Duration,
    /// Secret for the gateway's access tokens.
    pub access_token_secret: Option<Secret>,
    /// File holding it (generated into data_dir when both are empty).
    pub access_token_secret_file: Option<PathBuf>,
    /// Lifetime of access tokens.
    pub access_token_ttl: Duration,
    /// Lifetime of the download URLs sent in callbacks.
    pub download_url_ttl: Duration,
    /// Longest wait between delivery attempts.
    pub delivery_max_backoff: Duration,
    /// A session that holds no lock ends after this long without a WOPI request.
    pub session_idle_timeout: Duration,
    /// An editor whose access token made no WOPI request for this long, while other
    /// editors stay, is taken to have left (status 1, disconnect); `None`: never.
    pub editor_idle_timeout: Option<Duration>,
    /// Integrators (Docs API storages).
    pub integrators: Vec<Integrator>,
}

/// `[[host_face.integrator]]`
#[derive(Debug, Clone)]
pub struct Integrator {
    /// Name used in `?integrator=`.
    pub name: String,
    /// The JWT secret it shares with its Docs server.
    pub jwt_secret: Secret,
    /// Header carrying request tokens.
    pub jwt_header: String,
    /// document.url and callbackUrl must be under one of these.
    pub allowed_origins: Vec<String>,
    /// Deliver every PutFile at once as status 6.
    pub forcesave: bool,
    /// What a session gets when a WOPI client cannot state a restriction of the config.
    pub unenforceable: Unenforceable,
    /// Where Save As (PutRelativeFile), RenameFile and DeleteFile are POSTed (`None`: those
    /// operations answer 501).
    pub actions_url: Option<String>,
}

/// `host_face.integrator.unenforceable`: what happens when a WOPI client cannot state a
/// restriction of the integrator's config that viewing enforces (review, comment or fill
/// forms only). A restriction viewing does not enforce (copy, print, download, chat) is
/// refused either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unenforceable {
    /// Open for viewing only.
    #[default]
    View,
    /// Refuse the session (403).
    Refuse,
}

/// `[docs]`
#[derive(Debug, Clone)]
pub struct DocsSettings {
    /// Upstream ONLYOFFICE Docs as the gateway reaches it.
    pub url: String,
    /// How browsers reach Docs through the gateway (default: `server.public_url`).
    pub public_url: Option<PublicUrl>,
    /// Docs' JWT secret (configs, document.url requests, callbacks).
    pub jwt_secret: Option<Secret>,
    /// Header carrying Docs' request tokens.
    pub jwt_header: String,
    /// Extra CA certificates (PEM) trusted for an https upstream.
    pub ca_file: Option<PathBuf>,
    /// How often `/healthcheck` of the upstream is probed for `/readyz`; `None` = never.
    pub healthcheck_interval: Option<Duration>,
    /// A proxied WebSocket (or other upgraded connection) idle this long is closed.
    pub tunnel_idle_timeout: Duration,
}

/// `[upstream]`: outgoing HTTP.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (headers of the answer).
    pub request_timeout: Duration,
}

impl Settings {
    /// How browsers reach ONLYOFFICE Docs' assets (api.js, favicons): `docs.public_url`, else
    /// through the gateway's proxy at `server.public_url`.
    pub fn docs_public_base(&self) -> String {
        self.docs
            .public_url
            .as_ref()
            .map_or_else(|| self.server.public_url.base(), PublicUrl::base)
    }
}

impl Default for Settings {
    fn default() -> Self {
        use defaults::*;
        #[allow(clippy::expect_used)]
        Settings {
            server: ServerSettings {
                listen: LISTEN.parse().expect("default listen address is valid"),
                admin_listen: ADMIN_LISTEN
                    .parse()
                    .expect("default admin address is valid"),
                public_url: PublicUrl::parse(PUBLIC_URL).expect("default public URL is valid"),
                internal_url: PublicUrl::parse(PUBLIC_URL).expect("default public URL is valid"),
                data_dir: PathBuf::from(DATA_DIR),
                tls: None,
                header_read_timeout: Duration::from_secs(HEADER_READ_TIMEOUT_SECONDS),
                idle_timeout: Duration::from_secs(IDLE_TIMEOUT_SECONDS),
                request_timeout: Duration::from_secs(REQUEST_TIMEOUT_SECONDS),
                shutdown_grace: Duration::from_secs(SHUTDOWN_GRACE_SECONDS),
                max_concurrent_requests: MAX_CONCURRENT_REQUESTS,
                max_connections: MAX_CONNECTIONS_AUTO,
                max_head_bytes: MAX_HEAD_BYTES,
                max_headers: MAX_HEADERS,
                body_idle_timeout: Duration::from_secs(BODY_IDLE_TIMEOUT_SECONDS),
                connection_threads: cores().min(MAX_CONNECTION_THREADS),
                body_limits: [
                    BODY_LIMIT_WOPI,
                    BODY_LIMIT_INTEGRATOR,
                    BODY_LIMIT_DOCS,
                    BODY_LIMIT_HOSTING,
                    BODY_LIMIT_PROXY,
                ],
                log_format: LogFormat::Human,
                admin_token: None,
            },
            access: AccessSettings::default(),
            locks: LockStoreSettings {
                kind: LockStoreKind::Memory,
                store: locks::LockSettings {
                    ttl: Duration::from_secs(LOCK_TTL_SECONDS),
                    max_age: None,
                    sweep_interval: Duration::from_millis(SWEEP_INTERVAL_MS),
                    sweep_batch: 1024,
                },
            },
            host_face: HostFaceSettings {
                discovery_urls: Vec::new(),
                discovery_refresh: Duration::from_secs(DISCOVERY_REFRESH_SECONDS),
                proof: ProofMode::Required,
                proof_future_skew: Duration::from_secs(PROOF_FUTURE_SKEW_SECONDS),
                access_token_secret: None,
                access_token_secret_file: None,
                access_token_ttl: Duration::from_secs(ACCESS_TOKEN_TTL_SECONDS),
                download_url_ttl: Duration::from_secs(DOWNLOAD_URL_TTL_SECONDS),
                delivery_max_backoff: Duration::from_secs(DELIVERY_MAX_BACKOFF_SECONDS),
                session_idle_timeout: Duration::from_secs(LOCK_TTL_SECONDS),
                editor_idle_timeout: None,
                integrators: Vec::new(),
            },
            docs: DocsSettings {
                url: DOCS_URL.into(),
                public_url: None,
                jwt_secret: None,
                jwt_header: JWT_HEADER.into(),
                ca_file: None,
                healthcheck_interval: Some(Duration::from_secs(DOCS_HEALTHCHECK_INTERVAL_SECONDS)),
                tunnel_idle_timeout: Duration::from_secs(DOCS_TUNNEL_IDLE_TIMEOUT_SECONDS),
            },
            upstream: UpstreamSettings {
                connect_timeout: Duration::from_secs(UPSTREAM_CONNECT_TIMEOUT_SECONDS),
                request_timeout: Duration::from_secs(UPSTREAM_REQUEST_TIMEOUT_SECONDS),
            },
            client_face: ClientFaceSettings {
                proof_key_file: None,
                proof_key_old_file: None,
                allowed_wopi_origins: Vec::new(),
                lock_refresh: Duration::from_secs(LOCK_REFRESH_SECONDS),
                profiles: Vec::new(),
                convert_actions: CONVERT_ACTIONS,
                conversion_timeout: Duration::from_secs(CONVERSION_TIMEOUT_SECONDS),
                convert_to_max_concurrent: CONVERT_TO_MAX_CONCURRENT,
                send_authorization_header: SEND_AUTHORIZATION_HEADER,
            },
            cluster: ClusterSettings {
                redis: None,
                key_prefix: CLUSTER_KEY_PREFIX.into(),
                instance_id: default_instance_id(),
                lease: Duration::from_secs(CLUSTER_LEASE_SECONDS),
            },
            content: ContentSettings::Fs { dir: None },
        }
    }
}

/// The cores this process may run on (one when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `server.max_connections = 0`: the process's open-file limit less the room the gateway
/// needs besides client connections — one upstream connection per proxied request, Redis,
/// content files, the admin listener, logs — kept as an eighth of the limit and at least 256;
/// 10,000 where the limit cannot be read.
pub fn max_connections_auto() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        });
    match soft {
        Some(n) => n.saturating_sub((n / 8).max(256)).max(16),
        None => 10_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls() {
        let u = PublicUrl::parse("HTTPS://GW.Example.com:443/base/").unwrap();
        assert_eq!(u.base(), "https://gw.example.com/base");
        assert_eq!(
            PublicUrl::parse("http://h:8080").unwrap().origin(),
            "http://h:8080"
        );
        assert!(PublicUrl::parse("ftp://h").is_err());
        assert!(PublicUrl::parse("/relative").is_err());
        assert!(PublicUrl::parse("http://h/?q=1").is_err());
    }
}
