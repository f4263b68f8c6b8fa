//! TOML → [`Settings`]: deserialise into [`raw::RawConfig`] (unknown keys rejected), then
//! validate into typed settings. Every error names the dotted key and says what is wrong.

mod raw;

use gateway::settings::{
    self, ContentSettings, LockStoreKind, LogFormat, ProofMode, PublicUrl, S3Settings, Settings,
    defaults,
};
use gateway::{AllowList, RouteGroup};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration error: the dotted key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// `server.listen`, `host_face.integrator[0].jwt_secret`, …
    pub(crate) key: String,
    /// What is wrong and how to fix it.
    pub(crate) reason: String,
    /// A file the settings name cannot be read on this machine: the value may be right
    /// where the gateway runs (a secret mounted only inside the container).
    pub(crate) unreadable: bool,
}

impl ConfigError {
    /// The exit code of `check-config` and `serve`: 66 (EX_NOINPUT) for a file that cannot be
    /// read here, 64 (EX_USAGE) for a wrong value.
    pub(crate) fn exit_code(&self) -> u8 {
        if self.unreadable { 66 } else { 64 }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)?;
        if self.unreadable {
            f.write_str(
                " (hint: the file or variable may exist only where the gateway runs, e.g. inside its \
                 container or as a mounted secret; run check-config there, or supply it, to check the value)",
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        reason: reason.into(),
        unreadable: false,
    }
}

/// A named file that cannot be read on this machine.
fn unreadable(key: impl Into<String>, path: &Path, e: &std::io::Error) -> ConfigError {
    ConfigError {
        key: key.into(),
        reason: format!("cannot read {} on this machine: {e}", path.display()),
        unreadable: true,
    }
}

/// The shortest JWT secret accepted (HS256 wants at least its 256-bit output).
const MIN_SECRET_BYTES: usize = 32;

/// How to make a good secret, for error messages.
const GENERATE_HINT: &str = "generate one with `openssl rand -hex 32`";

/// Parses TOML text. `base` resolves relative paths (the config file's folder).
pub(crate) fn parse_str(text: &str, base: &Path) -> Result<Settings, ConfigError> {
    let de = toml::Deserializer::new(text);
    let raw: raw::RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().to_owned();
        let location = inner.span().map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        });
        let key = match message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
        {
            Some(field) if path == "." => field.to_owned(),
            Some(field) if path == field || path.ends_with(&format!(".{field}")) => path,
            Some(field) => format!("{path}.{field}"),
            None if path == "." => "(top level)".to_owned(),
            None => path,
        };
        invalid(key, format!("{message}{}", location.unwrap_or_default()))
    })?;
    validate(raw, base)
}

/// Reads and parses a file.
pub(crate) fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid("(file)", format!("cannot read {}: {e}", path.display())))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_str(&text, &base)
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() { p } else { base.join(p) }
}

fn positive(key: &str, v: u64) -> Result<u64, ConfigError> {
    if v == 0 {
        Err(invalid(key, "must be greater than 0"))
    } else {
        Ok(v)
    }
}

fn url(key: &str, v: &str) -> Result<String, ConfigError> {
    PublicUrl::parse(v).map_err(|e| invalid(key, format!("`{v}`: {e}")))?;
    Ok(v.trim_end_matches('/').to_owned())
}

/// An absolute http(s) URL the gateway POSTs to (a query is allowed).
fn hook_url(key: &str, v: &str) -> Result<String, ConfigError> {
    let uri: http::Uri = v
        .parse()
        .map_err(|e| invalid(key, format!("`{v}`: not a URL: {e}")))?;
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http" | "https") => {}
        _ => {
            return Err(invalid(
                key,
                format!("`{v}`: must be an absolute http:// or https:// URL"),
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(key, format!("`{v}`: must have a host")));
    }
    Ok(v.to_owned())
}

/// Where a secret comes from: inline, a file, or an environment variable (one of them).
struct SecretSource {
    inline: Option<String>,
    file: Option<String>,
    env: Option<String>,
}

fn secret(
    key: &str,
    src: SecretSource,
    base: &Path,
) -> Result<Option<docs_api::Secret>, ConfigError> {
    let set = |v: Option<String>| v.filter(|s| !s.is_empty());
    let value = match (set(src.inline), set(src.file), set(src.env)) {
        (None, None, None) => return Ok(None),
        (Some(s), None, None) => s,
        (None, Some(f), None) => {
            let path = resolve(base, &f);
            std::fs::read_to_string(&path)
                .map_err(|e| unreadable(format!("{key}_file"), &path, &e))?
                .trim()
                .to_owned()
        }
        (None, None, Some(var)) => match std::env::var(&var) {
            Ok(v) => v.trim().to_owned(),
            Err(_) => {
                return Err(ConfigError {
                    key: format!("{key}_env"),
                    reason: format!("the environment variable `{var}` is not set on this machine"),
                    unreadable: true,
                });
            }
        },
        _ => {
            return Err(invalid(
                key,
                format!("set one of {key}, {key}_file and {key}_env, not several"),
            ));
        }
    };
    check_secret_value(key, &value)?;
    Ok(Some(docs_api::Secret::new(value)))
}

/// Refuses placeholders and secrets shorter than [`MIN_SECRET_BYTES`].
fn check_secret_value(key: &str, value: &str) -> Result<(), ConfigError> {
    if [
        "secret",
        "changeme",
        "change-me",
        "password",
        "jwt_secret",
        "my_jwt_secret",
    ]
    .iter()
    .any(|d| value.eq_ignore_ascii_case(d))
    {
        return Err(invalid(
            key,
            format!("is a well-known placeholder; {GENERATE_HINT}"),
        ));
    }
    if value.len() < MIN_SECRET_BYTES {
        return Err(invalid(
            key,
            format!(
                "is {} bytes; secrets must be at least {MIN_SECRET_BYTES} bytes ({GENERATE_HINT})",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn validate(raw: raw::RawConfig, base: &Path) -> Result<Settings, ConfigError> {
    let mut s = Settings::default();
    server_section(&mut s, raw.server, base)?;
    access_section(&mut s, raw.access)?;
    cluster_section(&mut s, raw.cluster, base)?;
    content_section(&mut s, raw.content, base)?;
    locks_section(&mut s, raw.locks)?;
    host_face_section(&mut s, raw.host_face, base)?;
    docs_section(&mut s, raw.docs, base)?;
    upstream_section(&mut s, raw.upstream)?;
    client_face_section(&mut s, raw.client_face, base)?;
    cluster_needs(&s)?;
    Ok(s)
}

/// `[server]`: listeners, URLs, data_dir, timeouts, limits, TLS, the admin token.
fn server_section(s: &mut Settings, r: raw::RawServer, base: &Path) -> Result<(), ConfigError> {
    if let Some(v) = r.listen {
        s.server.listen = v
            .parse()
            .map_err(|_| invalid("server.listen", format!("`{v}` is not IP:PORT")))?;
    }
    if let Some(v) = r.admin_listen {
        s.server.admin_listen = v
            .parse()
            .map_err(|_| invalid("server.admin_listen", format!("`{v}` is not IP:PORT")))?;
    }
    if let Some(v) = r.public_url {
        s.server.public_url = PublicUrl::parse(&v)
            .map_err(|e| invalid("server.public_url", format!("`{v}`: {e}")))?;
    }
    s.server.internal_url = match r.internal_url.filter(|v| !v.is_empty()) {
        Some(v) => PublicUrl::parse(&v)
            .map_err(|e| invalid("server.internal_url", format!("`{v}`: {e}")))?,
        None => s.server.public_url.clone(),
    };
    if let Some(v) = r.data_dir {
        s.server.data_dir = resolve(base, &v);
    }
    if let Some(v) = r.header_read_timeout_seconds {
        s.server.header_read_timeout =
            Duration::from_secs(positive("server.header_read_timeout_seconds", v)?);
    }
    if let Some(v) = r.idle_timeout_seconds {
        s.server.idle_timeout = Duration::from_secs(positive("server.idle_timeout_seconds", v)?);
    }
    if let Some(v) = r.request_timeout_seconds {
        s.server.request_timeout =
            Duration::from_secs(positive("server.request_timeout_seconds", v)?);
    }
    if let Some(v) = r.shutdown_grace_seconds {
        s.server.shutdown_grace = Duration::from_secs(v);
    }
    if let Some(v) = r.max_concurrent_requests {
        s.server.max_concurrent_requests =
            positive("server.max_concurrent_requests", v as u64)? as usize;
    }
    if let Some(v) = r.max_connections {
        s.server.max_connections = v;
    }
    if let Some(v) = r.max_head_bytes {
        if !(1024..=1024 * 1024).contains(&v) {
            return Err(invalid(
                "server.max_head_bytes",
                format!("{v}: use 1024 to 1048576"),
            ));
        }
        s.server.max_head_bytes = v;
    }
    if let Some(v) = r.max_headers {
        if !(1..=1000).contains(&v) {
            return Err(invalid("server.max_headers", format!("{v}: use 1 to 1000")));
        }
        s.server.max_headers = v;
    }
    if let Some(v) = r.body_idle_timeout_seconds {
        s.server.body_idle_timeout =
            Duration::from_secs(positive("server.body_idle_timeout_seconds", v)?);
    }
    if let Some(v) = r.connection_threads {
        s.server.connection_threads = match v {
            -1 => settings::cores().min(defaults::MAX_CONNECTION_THREADS),
            0.. if v as usize <= defaults::MAX_CONNECTION_THREADS => v as usize,
            _ => {
                return Err(invalid(
                    "server.connection_threads",
                    format!(
                        "{v}: use -1 (one per core), 0 (off) or up to {}",
                        defaults::MAX_CONNECTION_THREADS
                    ),
                ));
            }
        };
    }
    if let Some(v) = r.log_format {
        s.server.log_format = match v.as_str() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "server.log_format",
                    format!("`{other}` is neither \"human\" nor \"json\""),
                ));
            }
        };
    }
    if let Some(tls) = r.tls {
        let cert = tls.cert_file.filter(|s| !s.is_empty()).ok_or_else(|| {
            invalid(
                "server.tls.cert_file",
                "is required when [server.tls] is present",
            )
        })?;
        let key = tls.key_file.filter(|s| !s.is_empty()).ok_or_else(|| {
            invalid(
                "server.tls.key_file",
                "is required when [server.tls] is present",
            )
        })?;
        s.server.tls = Some(settings::TlsSettings {
            cert_file: resolve(base, &cert),
            key_file: resolve(base, &key),
        });
    }
    if let Some(tls) = &s.server.tls {
        // The same loading serve does: files readable, PEM well-formed, key matching the cert.
        for (key, path) in [
            ("server.tls.cert_file", &tls.cert_file),
            ("server.tls.key_file", &tls.key_file),
        ] {
            if let Err(e) = std::fs::metadata(path) {
                return Err(unreadable(key, path, &e));
            }
        }
        gateway::CertResolver::load(tls).map_err(|e| invalid("server.tls", e))?;
    }
    let (public, admin) = (s.server.listen, s.server.admin_listen);
    if public.port() != 0
        && public.port() == admin.port()
        && (public.ip() == admin.ip()
            || public.ip().is_unspecified()
            || admin.ip().is_unspecified())
    {
        return Err(invalid(
            "server.admin_listen",
            format!(
                "`{admin}` collides with server.listen `{public}`: give the admin listener its own port"
            ),
        ));
    }
    if s.server.data_dir.exists() && !s.server.data_dir.is_dir() {
        return Err(invalid(
            "server.data_dir",
            format!(
                "{} exists and is not a directory",
                s.server.data_dir.display()
            ),
        ));
    }
    s.server.admin_token = match r.admin_token_file.filter(|f| !f.is_empty()) {
        Some(f) => {
            let path = resolve(base, &f);
            let token = std::fs::read_to_string(&path)
                .map_err(|e| unreadable("server.admin_token_file", &path, &e))?;
            let token = token.trim();
            check_secret_value("server.admin_token_file", token)?;
            Some(docs_api::Secret::new(token.to_owned()))
        }
        None if !admin.ip().is_loopback() => {
            return Err(invalid(
                "server.admin_token_file",
                format!(
                    "is required when server.admin_listen (`{admin}`) is not a loopback address: \
                     its delivery retry/discard endpoints would be open to the network; \
                     {GENERATE_HINT} into a file readable only by the gateway"
                ),
            ));
        }
        None => None,
    };
    if let Some(b) = r.body_limit_bytes {
        for (group, v) in [
            (RouteGroup::Wopi, b.wopi),
            (RouteGroup::Integrator, b.integrator),
            (RouteGroup::Docs, b.docs),
            (RouteGroup::Hosting, b.hosting),
            (RouteGroup::Proxy, b.proxy),
        ] {
            if let Some(v) = v {
                s.server.body_limits[group.index()] =
                    positive(&format!("server.body_limit_bytes.{group}"), v)?;
            }
        }
    }
    if s.server.tls.is_none()
        && s.server.public_url.scheme == "https"
        && !s.server.listen.ip().is_loopback()
    {
        tracing::debug!(
            "public_url is https without [server.tls]: assuming a TLS-terminating proxy in front"
        );
    }

    Ok(())
}

/// `[access]`: trusted proxies and one allowlist per route group.
fn access_section(s: &mut Settings, a: raw::RawAccess) -> Result<(), ConfigError> {
    for (i, p) in a.trusted_proxies.iter().enumerate() {
        s.access.trusted_proxies.push(
            AllowList::parse_entry(p)
                .map_err(|e| invalid(format!("access.trusted_proxies[{i}]"), e))?,
        );
    }
    let allow = a.allow;
    for (group, list) in [
        (RouteGroup::Wopi, allow.wopi),
        (RouteGroup::Integrator, allow.integrator),
        (RouteGroup::Docs, allow.docs),
        (RouteGroup::Hosting, allow.hosting),
        (RouteGroup::Proxy, allow.proxy),
    ] {
        let mut nets = Vec::new();
        for (i, e) in list.iter().enumerate() {
            nets.push(
                AllowList::parse_entry(e)
                    .map_err(|err| invalid(format!("access.allow.{group}[{i}]"), err))?,
            );
        }
        s.access.allow[group.index()] = AllowList::new(nets);
    }

    Ok(())
}

/// `[locks]`: the lock store and its timings.
fn locks_section(s: &mut Settings, l: raw::RawLocks) -> Result<(), ConfigError> {
    if let Some(v) = l.ttl_seconds {
        s.locks.store.ttl =
            Duration::from_secs(positive("locks.ttl_seconds", v).map_err(|_| {
                invalid(
                    "locks.ttl_seconds",
                    "must be > 0; WOPI locks expire after 1800 by default",
                )
            })?);
    }
    if let Some(v) = l.sweep_interval_ms {
        s.locks.store.sweep_interval =
            Duration::from_millis(positive("locks.sweep_interval_ms", v)?);
    }
    if let Some(v) = l.max_lock_age_seconds {
        s.locks.store.max_age = (v > 0).then(|| Duration::from_secs(v));
        if v > 0 && Duration::from_secs(v) < s.locks.store.ttl {
            return Err(invalid(
                "locks.max_lock_age_seconds",
                "must be 0 (off) or at least locks.ttl_seconds",
            ));
        }
    }
    let cluster = s.cluster.redis.clone();
    // locks.redis_url names another server; TLS and credentials stay [cluster]'s.
    let redis = match (l.redis_url.filter(|u| !u.is_empty()), &cluster) {
        (Some(_), Some(c)) if !c.sentinels.is_empty() => {
            return Err(invalid(
                "locks.redis_url",
                "must be unset with cluster.redis_sentinels: the locks live on the primary the sentinels name",
            ));
        }
        (Some(url), Some(c)) => locks::RedisSettings { url, ..c.clone() },
        (Some(url), None) => locks::RedisSettings::from_url(&url),
        (None, Some(c)) => c.clone(),
        (None, None) => locks::RedisSettings::from_url(defaults::REDIS_URL),
    };
    let prefix = l
        .redis_prefix
        .unwrap_or_else(|| defaults::REDIS_PREFIX.to_owned());
    // In a cluster the locks are shared too: redis unless said otherwise (and memory is refused).
    let store_default = if cluster.is_some() {
        "redis"
    } else {
        defaults::LOCK_STORE
    };
    s.locks.kind = match l.store.as_deref().unwrap_or(store_default) {
        "memory" if cluster.is_some() => {
            return Err(invalid(
                "locks.store",
                "is \"memory\" but [cluster] names a Redis: every instance must see the same locks; use store = \"redis\" (locks.redis_url defaults to cluster.redis_url)",
            ));
        }
        "memory" => LockStoreKind::Memory,
        "redis" => {
            if redis.sentinels.is_empty() {
                redis_url_valid("locks.redis_url", &redis.url)?;
            }
            LockStoreKind::Redis {
                redis: Box::new(redis),
                prefix,
            }
        }
        other => {
            return Err(invalid(
                "locks.store",
                format!("`{other}` is neither \"memory\" nor \"redis\""),
            ));
        }
    };

    Ok(())
}

fn redis_url_valid(key: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("redis://")
        || url.starts_with("rediss://")
        || url.starts_with("redis+unix://")
    {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!(
                "`{}` must start with redis:// (or rediss://, redis+unix://)",
                locks::redis_conn::redact_url(url)
            ),
        ))
    }
}

/// `[cluster]`: Redis shared by every instance.
fn cluster_section(s: &mut Settings, c: raw::RawCluster, base: &Path) -> Result<(), ConfigError> {
    s.cluster.redis = redis_settings(&c, base)?;
    if let Some(p) = c.key_prefix {
        if p.is_empty() {
            return Err(invalid(
                "cluster.key_prefix",
                "must not be empty: it keeps the gateway's keys apart from others in the same Redis",
            ));
        }
        s.cluster.key_prefix = p;
    }
    if let Some(id) = c.instance_id.filter(|i| !i.is_empty()) {
        if !id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return Err(invalid(
                "cluster.instance_id",
                format!("`{id}`: use letters, digits, `-`, `_` and `.`"),
            ));
        }
        s.cluster.instance_id = id;
    }
    if let Some(v) = c.lease_seconds {
        s.cluster.lease = Duration::from_secs(positive("cluster.lease_seconds", v)?);
    }
    Ok(())
}

/// A password from `{key}_file` or `{key}_env` (one of them), trimmed, not empty.
fn password(
    key: &str,
    file: Option<String>,
    env: Option<String>,
    base: &Path,
) -> Result<Option<String>, ConfigError> {
    let set = |v: Option<String>| v.filter(|s| !s.is_empty());
    let value = match (set(file), set(env)) {
        (None, None) => return Ok(None),
        (Some(f), None) => {
            let path = resolve(base, &f);
            let v = std::fs::read_to_string(&path)
                .map_err(|e| unreadable(format!("{key}_file"), &path, &e))?;
            (format!("{key}_file"), v.trim().to_owned())
        }
        (None, Some(var)) => match std::env::var(&var) {
            Ok(v) => (format!("{key}_env"), v.trim().to_owned()),
            Err(_) => {
                return Err(ConfigError {
                    key: format!("{key}_env"),
                    reason: format!("the environment variable `{var}` is not set on this machine"),
                    unreadable: true,
                });
            }
        },
        (Some(_), Some(_)) => {
            return Err(invalid(
                format!("{key}_file"),
                format!("set one of {key}_file and {key}_env, not both"),
            ));
        }
    };
    if value.1.is_empty() {
        return Err(invalid(value.0, "is empty"));
    }
    Ok(Some(value.1))
}

/// `[cluster]`'s connection keys: `None` without `redis_url` and `redis_sentinels`.
fn redis_settings(
    c: &raw::RawCluster,
    base: &Path,
) -> Result<Option<locks::RedisSettings>, ConfigError> {
    let url = c.redis_url.clone().filter(|u| !u.is_empty());
    let sentinels = c.redis_sentinels.clone();
    let master_name = c.redis_master_name.clone().filter(|m| !m.is_empty());
    if url.is_none() && sentinels.is_empty() {
        let given = |v: &Option<String>| v.as_ref().is_some_and(|v| !v.is_empty());
        for (key, set) in [
            ("cluster.redis_master_name", master_name.is_some()),
            ("cluster.redis_username", given(&c.redis_username)),
            ("cluster.redis_password_file", given(&c.redis_password_file)),
            ("cluster.redis_password_env", given(&c.redis_password_env)),
            ("cluster.redis_ca_file", given(&c.redis_ca_file)),
            (
                "cluster.redis_client_cert_file",
                given(&c.redis_client_cert_file),
            ),
            (
                "cluster.redis_client_key_file",
                given(&c.redis_client_key_file),
            ),
        ] {
            if set {
                return Err(invalid(
                    key,
                    "is set but neither cluster.redis_url nor cluster.redis_sentinels is",
                ));
            }
        }
        return Ok(None);
    }
    let mut r = locks::RedisSettings::from_url(url.as_deref().unwrap_or_default());
    if let Some(url) = &url {
        if !sentinels.is_empty() {
            return Err(invalid(
                "cluster.redis_sentinels",
                "set either cluster.redis_url (one server) or cluster.redis_sentinels (the primary the sentinels name), not both",
            ));
        }
        redis_url_valid("cluster.redis_url", url)?;
    } else {
        for (i, sentinel) in sentinels.iter().enumerate() {
            let ok = sentinel
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(invalid(
                    format!("cluster.redis_sentinels[{i}]"),
                    format!("`{sentinel}` is not host:port (e.g. \"10.0.0.5:26379\")"),
                ));
            }
        }
        r.master_name = master_name.ok_or_else(|| {
            invalid(
                "cluster.redis_master_name",
                "is required with cluster.redis_sentinels: the name the sentinels monitor (`sentinel monitor NAME …`, often \"mymaster\")",
            )
        })?;
        r.sentinels = sentinels;
        r.sentinel_tls = c.redis_sentinel_tls.unwrap_or(false);
        r.sentinel_password = password(
            "cluster.redis_sentinel_password",
            c.redis_sentinel_password_file.clone(),
            c.redis_sentinel_password_env.clone(),
            base,
        )?;
    }
    r.username = c.redis_username.clone().filter(|u| !u.is_empty());
    r.password = password(
        "cluster.redis_password",
        c.redis_password_file.clone(),
        c.redis_password_env.clone(),
        base,
    )?;
    if r.password.is_some() && locks::redis_conn::url_has_password(&r.url) {
        return Err(invalid(
            if c.redis_password_file
                .as_ref()
                .is_some_and(|f| !f.is_empty())
            {
                "cluster.redis_password_file"
            } else {
                "cluster.redis_password_env"
            },
            "the password is also in cluster.redis_url: keep it in one place (the file or variable; remove it from the URL)",
        ));
    }
    let file = |v: &Option<String>| {
        v.clone()
            .filter(|f| !f.is_empty())
            .map(|f| resolve(base, &f))
    };
    r.ca_file = file(&c.redis_ca_file);
    r.client_cert_file = file(&c.redis_client_cert_file);
    r.client_key_file = file(&c.redis_client_key_file);
    if r.client_cert_file.is_some() != r.client_key_file.is_some() {
        return Err(invalid(
            if r.client_cert_file.is_some() {
                "cluster.redis_client_key_file"
            } else {
                "cluster.redis_client_cert_file"
            },
            "mutual TLS needs both cluster.redis_client_cert_file and cluster.redis_client_key_file",
        ));
    }
    use locks::redis_conn::PemKind;
    for (key, path, kind) in [
        ("cluster.redis_ca_file", &r.ca_file, PemKind::Certificates),
        (
            "cluster.redis_client_cert_file",
            &r.client_cert_file,
            PemKind::Certificates,
        ),
        (
            "cluster.redis_client_key_file",
            &r.client_key_file,
            PemKind::PrivateKey,
        ),
    ] {
        let Some(path) = path else { continue };
        if !r.tls() {
            return Err(invalid(
                key,
                if r.sentinels.is_empty() {
                    "is set but cluster.redis_url is not rediss:// (TLS)"
                } else {
                    "is set but cluster.redis_sentinel_tls is false"
                },
            ));
        }
        match locks::redis_conn::check_pem(path, kind) {
            Ok(()) => {}
            Err(Ok(e)) => return Err(unreadable(key, path, &e)),
            Err(Err(why)) => return Err(invalid(key, why)),
        }
    }
    if let Some(n) = c.redis_min_replicas_acked {
        r.min_replicas_acked = n;
    }
    r.replication_timeout = Duration::from_millis(match c.redis_replication_timeout_ms {
        Some(v) => positive("cluster.redis_replication_timeout_ms", v)?,
        None => defaults::CLUSTER_REDIS_REPLICATION_TIMEOUT_MS,
    });
    Ok(Some(r))
}

/// What several instances must share besides Redis: what one instance generates into its
/// data_dir (the access-token secret, the proof key) would differ per instance.
fn cluster_needs(s: &Settings) -> Result<(), ConfigError> {
    if s.cluster.redis.is_none() {
        return Ok(());
    }
    if s.host_face.access_token_secret.is_none() && s.host_face.access_token_secret_file.is_none() {
        return Err(invalid(
            "host_face.access_token_secret_file",
            "is required with cluster.redis_url: every instance must verify the access tokens the others issue (one secret file for all)",
        ));
    }
    if s.client_face.proof_key_file.is_none() {
        return Err(invalid(
            "client_face.proof_key_file",
            "is required with cluster.redis_url: every instance must sign WOPI calls with the key the discovery publishes (one key file for all)",
        ));
    }
    Ok(())
}

/// `[content]`: the content store.
fn content_section(s: &mut Settings, c: raw::RawContent, base: &Path) -> Result<(), ConfigError> {
    s.content = match c.store.as_deref().unwrap_or(defaults::CONTENT_STORE) {
        "fs" => ContentSettings::Fs {
            dir: c.dir.filter(|d| !d.is_empty()).map(|d| resolve(base, &d)),
        },
        "s3" => {
            let need = |key: &str, v: Option<String>| {
                v.filter(|v| !v.is_empty()).ok_or_else(|| {
                    invalid(
                        format!("content.s3.{key}"),
                        "is required with content.store = \"s3\"",
                    )
                })
            };
            let endpoint = need("endpoint", c.s3.endpoint)?;
            let endpoint = url("content.s3.endpoint", &endpoint)?;
            let bucket = need("bucket", c.s3.bucket)?;
            let access_key_id = need("access_key_id", c.s3.access_key_id)?;
            let file = need("secret_access_key_file", c.s3.secret_access_key_file)?;
            let path = resolve(base, &file);
            let secret_access_key = std::fs::read_to_string(&path)
                .map_err(|e| unreadable("content.s3.secret_access_key_file", &path, &e))?
                .trim()
                .to_owned();
            if secret_access_key.is_empty() {
                return Err(invalid(
                    "content.s3.secret_access_key_file",
                    format!("{} is empty", path.display()),
                ));
            }
            ContentSettings::S3(S3Settings {
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                bucket,
                region: c
                    .s3
                    .region
                    .unwrap_or_else(|| defaults::S3_REGION.to_owned()),
                access_key_id,
                secret_access_key,
                path_style: c.s3.path_style.unwrap_or(true),
            })
        }
        other => {
            return Err(invalid(
                "content.store",
                format!("`{other}` is neither \"fs\" nor \"s3\""),
            ));
        }
    };
    if s.cluster.redis.is_some() && matches!(s.content, ContentSettings::Fs { dir: None }) {
        return Err(invalid(
            "content.dir",
            "is required with cluster.redis_url and content.store = \"fs\": name the directory every instance shares (NFS, a ReadWriteMany volume), or use content.store = \"s3\"",
        ));
    }
    Ok(())
}

/// `[host_face]`: trusted WOPI clients, proofs, tokens, deliveries, integrators.
fn host_face_section(
    s: &mut Settings,
    h: raw::RawHostFace,
    base: &Path,
) -> Result<(), ConfigError> {
    for (i, u) in h.discovery_urls.iter().enumerate() {
        s.host_face
            .discovery_urls
            .push(url(&format!("host_face.discovery_urls[{i}]"), u)?);
    }
    if let Some(v) = h.discovery_refresh_seconds {
        s.host_face.discovery_refresh =
            Duration::from_secs(positive("host_face.discovery_refresh_seconds", v)?);
    }
    if let Some(v) = h.proof {
        s.host_face.proof = match v.as_str() {
            "required" => ProofMode::Required,
            "off" => ProofMode::Off,
            other => {
                return Err(invalid(
                    "host_face.proof",
                    format!("`{other}` is neither \"required\" nor \"off\""),
                ));
            }
        };
    }
    if let Some(v) = h.proof_future_skew_seconds {
        s.host_face.proof_future_skew = Duration::from_secs(v);
    }
    s.host_face.access_token_secret_file = h
        .access_token_secret_file
        .filter(|f| !f.is_empty())
        .map(|f| resolve(base, &f));
    if let Some(path) = &s.host_face.access_token_secret_file {
        let value = std::fs::read_to_string(path)
            .map_err(|e| unreadable("host_face.access_token_secret_file", path, &e))?;
        check_secret_value("host_face.access_token_secret_file", value.trim())?;
    }
    if let Some(v) = h.access_token_ttl_seconds {
        s.host_face.access_token_ttl =
            Duration::from_secs(positive("host_face.access_token_ttl_seconds", v)?);
    }
    if let Some(v) = h.download_url_ttl_seconds {
        s.host_face.download_url_ttl =
            Duration::from_secs(positive("host_face.download_url_ttl_seconds", v)?);
    }
    // A lockless session ends after this idle time: by default the lock lifetime.
    s.host_face.session_idle_timeout = match h.session_idle_timeout_seconds {
        Some(v) => Duration::from_secs(positive("host_face.session_idle_timeout_seconds", v)?),
        None => s.locks.store.ttl,
    };
    // Off by default: WOPI clients make no per-user request while a user only reads.
    s.host_face.editor_idle_timeout = match h.editor_idle_timeout_seconds {
        None | Some(0) => None,
        Some(v) => Some(Duration::from_secs(v)),
    };
    if let Some(v) = h.delivery_max_backoff_seconds {
        s.host_face.delivery_max_backoff =
            Duration::from_secs(positive("host_face.delivery_max_backoff_seconds", v)?);
    }
    for (i, it) in h.integrator.into_iter().enumerate() {
        let key = format!("host_face.integrator[{i}]");
        if it.name.is_empty()
            || !it
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                format!("{key}.name"),
                "must be non-empty letters, digits, '-' or '_'",
            ));
        }
        if s.host_face.integrators.iter().any(|o| o.name == it.name) {
            return Err(invalid(
                format!("{key}.name"),
                format!("`{}` is configured twice", it.name),
            ));
        }
        let jwt_secret = secret(
            &format!("{key}.jwt_secret"),
            SecretSource {
                inline: it.jwt_secret,
                file: it.jwt_secret_file,
                env: it.jwt_secret_env,
            },
            base,
        )?
        .ok_or_else(|| {
            invalid(
                format!("{key}.jwt_secret"),
                "is required (or jwt_secret_file, jwt_secret_env); there is no default secret",
            )
        })?;
        if it.allowed_origins.is_empty() {
            return Err(invalid(
                format!("{key}.allowed_origins"),
                "must list where document.url and callbackUrl may point",
            ));
        }
        let mut origins = Vec::new();
        for (j, o) in it.allowed_origins.iter().enumerate() {
            origins.push(url(&format!("{key}.allowed_origins[{j}]"), o)?);
        }
        let unenforceable = match it.unenforceable.as_deref() {
            None | Some("view") => settings::Unenforceable::View,
            Some("refuse") => settings::Unenforceable::Refuse,
            Some(other) => {
                return Err(invalid(
                    format!("{key}.unenforceable"),
                    format!("`{other}` is neither \"view\" nor \"refuse\""),
                ));
            }
        };
        let actions_url = match it.actions_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(u) => Some(hook_url(&format!("{key}.actions_url"), u)?),
        };
        s.host_face.integrators.push(settings::Integrator {
            name: it.name,
            jwt_secret,
            jwt_header: it
                .jwt_header
                .unwrap_or_else(|| defaults::JWT_HEADER.to_owned()),
            allowed_origins: origins,
            forcesave: it.forcesave.unwrap_or(false),
            unenforceable,
            actions_url,
        });
    }

    Ok(())
}

/// `[docs]`: the upstream ONLYOFFICE Docs and its JWT secret.
fn docs_section(s: &mut Settings, d: raw::RawDocs, base: &Path) -> Result<(), ConfigError> {
    if let Some(v) = d.url {
        s.docs.url = url("docs.url", &v)?;
    }
    if let Some(v) = d.public_url.filter(|v| !v.is_empty()) {
        s.docs.public_url = Some(
            PublicUrl::parse(&v).map_err(|e| invalid("docs.public_url", format!("`{v}`: {e}")))?,
        );
    }
    s.docs.jwt_secret = secret(
        "docs.jwt_secret",
        SecretSource {
            inline: d.jwt_secret,
            file: d.jwt_secret_file,
            env: d.jwt_secret_env,
        },
        base,
    )?;
    if let Some(v) = d.jwt_header {
        if http::HeaderName::from_bytes(v.as_bytes()).is_err() {
            return Err(invalid(
                "docs.jwt_header",
                format!("`{v}` is not a valid header name"),
            ));
        }
        s.docs.jwt_header = v;
    }
    s.docs.ca_file = d
        .ca_file
        .filter(|f| !f.is_empty())
        .map(|f| resolve(base, &f));
    if let Some(f) = &s.docs.ca_file
        && !f.is_file()
    {
        {
            return Err(invalid(
                "docs.ca_file",
                format!("{} does not exist", f.display()),
            ));
        }
    }
    if let Some(v) = d.healthcheck_interval_seconds {
        s.docs.healthcheck_interval = (v > 0).then(|| Duration::from_secs(v));
    }
    if let Some(v) = d.tunnel_idle_timeout_seconds {
        s.docs.tunnel_idle_timeout =
            Duration::from_secs(positive("docs.tunnel_idle_timeout_seconds", v)?);
    }
    Ok(())
}

/// `[upstream]`: outgoing HTTP timeouts.
fn upstream_section(s: &mut Settings, u: raw::RawUpstream) -> Result<(), ConfigError> {
    if let Some(v) = u.connect_timeout_seconds {
        s.upstream.connect_timeout =
            Duration::from_secs(positive("upstream.connect_timeout_seconds", v)?);
    }
    if let Some(v) = u.request_timeout_seconds {
        s.upstream.request_timeout =
            Duration::from_secs(positive("upstream.request_timeout_seconds", v)?);
    }
    Ok(())
}

/// `[client_face]`: proof keys, allowed WOPI hosts, conversions, profiles.
fn client_face_section(
    s: &mut Settings,
    c: raw::RawClientFace,
    base: &Path,
) -> Result<(), ConfigError> {
    s.client_face.proof_key_file = c
        .proof_key_file
        .filter(|f| !f.is_empty())
        .map(|f| resolve(base, &f));
    s.client_face.proof_key_old_file = c
        .proof_key_old_file
        .filter(|f| !f.is_empty())
        .map(|f| resolve(base, &f));
    for (key, file) in [
        ("client_face.proof_key_file", &s.client_face.proof_key_file),
        (
            "client_face.proof_key_old_file",
            &s.client_face.proof_key_old_file,
        ),
    ] {
        if let Some(f) = file {
            let pem = std::fs::read_to_string(f).map_err(|e| unreadable(key, f, &e))?;
            wopi::proof::SigningKey::from_pem(&pem)
                .map_err(|e| invalid(key, format!("{}: {e}", f.display())))?;
        }
    }
    for (i, o) in c.allowed_wopi_origins.iter().enumerate() {
        s.client_face
            .allowed_wopi_origins
            .push(url(&format!("client_face.allowed_wopi_origins[{i}]"), o)?);
    }
    if let Some(v) = c.lock_refresh_seconds {
        let v = positive("client_face.lock_refresh_seconds", v)?;
        if Duration::from_secs(v) >= s.locks.store.ttl.max(Duration::from_secs(1800)) {
            return Err(invalid(
                "client_face.lock_refresh_seconds",
                "must be shorter than the 30-minute WOPI lock lifetime",
            ));
        }
        s.client_face.lock_refresh = Duration::from_secs(v);
    }
    if let Some(v) = c.convert_actions {
        s.client_face.convert_actions = v;
    }
    if let Some(v) = c.conversion_timeout_seconds {
        s.client_face.conversion_timeout =
            Duration::from_secs(positive("client_face.conversion_timeout_seconds", v)?);
    }
    if let Some(v) = c.convert_to_max_concurrent {
        s.client_face.convert_to_max_concurrent =
            positive("client_face.convert_to_max_concurrent", v as u64)? as usize;
    }
    if let Some(v) = c.send_authorization_header {
        s.client_face.send_authorization_header = v;
    }
    for (i, p) in c.profile.into_iter().enumerate() {
        let key = format!("client_face.profile[{i}]");
        let match_origin = url(&format!("{key}.match_origin"), &p.match_origin)?;
        if let Some(m) = &p.co_editing_mode {
            if m != "fast" && m != "strict" {
                return Err(invalid(
                    format!("{key}.co_editing_mode"),
                    format!("`{m}` is neither \"fast\" nor \"strict\""),
                ));
            }
        }
        let Ok(serde_json::Value::Object(customization)) = serde_json::to_value(&p.customization)
        else {
            return Err(invalid(format!("{key}.customization"), "must be a table"));
        };
        let templates = p
            .templates
            .iter()
            .map(|t| serde_json::to_value(t).unwrap_or_default())
            .collect();
        s.client_face.profiles.push(settings::Profile {
            match_origin,
            co_editing_mode: p.co_editing_mode,
            co_editing_change: p.co_editing_change,
            chat: p.chat,
            about: p.about,
            ui_theme: p.ui_theme,
            compact_toolbar: p.compact_toolbar,
            forcesave: p.forcesave,
            forcesave_interval: Duration::from_secs(p.forcesave_interval_seconds.unwrap_or(0)),
            logo_image: p.logo_image,
            logo_url: p.logo_url,
            customer_name: p.customer_name,
            customer_www: p.customer_www,
            plugins_autostart: p.plugins_autostart,
            plugins_data: p.plugins_data,
            templates,
            customization,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
