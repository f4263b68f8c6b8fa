//! `wopi-gateway doctor --config FILE`: walks every stage an integration needs and prints one
//! line per check — `ok`, `warn` or `fail`, what was found, and the fix. Exit 0 when nothing
//! failed, 1 otherwise.

use gateway::settings::{ProofMode, Settings};
use gateway::{HttpClient, OutBody};
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Default)]
struct Report {
    failed: usize,
    warned: usize,
}

impl Report {
    fn ok(&mut self, check: &str, detail: impl std::fmt::Display) {
        println!("ok    {check}: {detail}");
    }
    fn warn(&mut self, check: &str, detail: impl std::fmt::Display, fix: &str) {
        self.warned += 1;
        println!("warn  {check}: {detail}\n      fix: {fix}");
    }
    fn fail(&mut self, check: &str, detail: impl std::fmt::Display, fix: &str) {
        self.failed += 1;
        println!("fail  {check}: {detail}\n      fix: {fix}");
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Seconds between our clock and a peer's `Date` header (positive: peer ahead).
fn skew(headers: &http::HeaderMap) -> Option<i64> {
    let date = headers.get(http::header::DATE)?.to_str().ok()?;
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = time::PrimitiveDateTime::parse(date, &fmt)
        .ok()?
        .assume_utc();
    Some(t.unix_timestamp() - now_s())
}

pub(crate) fn run(path: &Path) -> ExitCode {
    let mut r = Report::default();
    let settings = match crate::config::load(path) {
        Ok(s) => {
            r.ok("settings", format!("{} is valid", path.display()));
            s
        }
        Err(e) => {
            r.fail(
                "settings",
                &e,
                "correct the named key (see deploy/wopi-gateway.example.toml)",
            );
            return ExitCode::FAILURE;
        }
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        println!("fail  runtime: cannot start");
        return ExitCode::FAILURE;
    };
    rt.block_on(checks(&settings, &mut r));
    println!("{} failed, {} warnings", r.failed, r.warned);
    if r.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn checks(s: &Settings, r: &mut Report) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for (check, addr) in [
        ("server.listen", s.server.listen),
        ("server.admin_listen", s.server.admin_listen),
    ] {
        match std::net::TcpListener::bind(addr) {
            Ok(_) => r.ok(check, format!("{addr} can be bound")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => r.warn(
                check,
                format!("{addr} is in use"),
                "fine if the gateway is running; otherwise stop what holds the port",
            ),
            Err(e) => r.fail(
                check,
                format!("cannot bind {addr}: {e}"),
                "use a free address, or a port above 1024 for a non-root user",
            ),
        }
    }
    // doctor only looks: it never creates the data directory (serve does, at start).
    let dir = &s.server.data_dir;
    if dir.is_dir() {
        match tempfile_probe(dir) {
            Ok(()) => r.ok("server.data_dir", format!("{} is writable", dir.display())),
            Err(e) => r.fail(
                "server.data_dir",
                format!("{}: {e}", dir.display()),
                "give the gateway's user write access (the spool keeps saves there)",
            ),
        }
    } else {
        match dir.ancestors().skip(1).find(|a| a.is_dir()) {
            Some(parent) if tempfile_probe(parent).is_ok() => r.warn(
                "server.data_dir",
                format!(
                    "{} does not exist yet; serve will create it (in {}, which is writable)",
                    dir.display(),
                    parent.display()
                ),
                "nothing to do, or create it with the gateway's user as owner",
            ),
            _ => r.fail(
                "server.data_dir",
                format!(
                    "{} does not exist and cannot be created here",
                    dir.display()
                ),
                "create it, owned by the gateway's user (the spool keeps saves there)",
            ),
        }
    }
    let pu = &s.server.public_url;
    match (&s.server.tls, pu.scheme.as_str()) {
        (Some(_), "http") => r.fail("server.public_url", "TLS is on but public_url is http://", "set public_url to the https:// URL clients use; WOPI proofs sign that URL"),
        (None, "https") if s.access.trusted_proxies.is_empty() => r.warn(
            "server.public_url",
            "https:// without [server.tls]: a TLS-terminating proxy is assumed, but access.trusted_proxies is empty",
            "add the proxy's address to access.trusted_proxies so client addresses are right",
        ),
        _ => r.ok("server.public_url", pu.base()),
    }
    let metrics = gateway::Metrics::register();
    let http = match HttpClient::with_ca(
        Duration::from_secs(5),
        Duration::from_secs(10),
        metrics,
        s.docs.ca_file.as_deref(),
    ) {
        Ok(h) => h,
        Err(e) => {
            return r.fail(
                "docs.ca_file",
                e,
                "point docs.ca_file at a PEM file of CA certificates",
            );
        }
    };
    if let Some(redis) = &s.cluster.redis {
        redis_checks(redis, r).await;
    }
    let mut skews = Vec::new();
    docs_checks(s, &http, r, &mut skews).await;
    host_face_checks(s, &http, r, &mut skews).await;
    client_face_checks(s, r);
    match skews.iter().map(|x| x.abs()).max() {
        None => r.warn(
            "clock",
            "no peer answered with a Date header to compare clocks",
            "run NTP on every host (proofs allow 20 minutes, JWTs 60 s of skew)",
        ),
        Some(worst) if worst > 60 => r.fail(
            "clock",
            format!("{worst} s off a peer's clock"),
            "synchronise clocks with NTP; JWTs tolerate 60 s, WOPI proofs 20 minutes",
        ),
        Some(worst) => r.ok("clock", format!("within {worst} s of the peers")),
    }
}

/// `host` and `port` of a `redis://`/`rediss://` URL (none for `redis+unix://`).
fn redis_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url
        .strip_prefix("rediss://")
        .or_else(|| url.strip_prefix("redis://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse() {
            Ok(p) => (h, p),
            Err(_) => (host_port, 6379),
        },
        _ => (host_port, 6379),
    };
    Some((host.trim_matches(['[', ']']).to_owned(), port))
}

/// DNS and TCP to `host:port`; `false` (after reporting) when either fails.
async fn reach(check: &str, host: &str, port: u16, r: &mut Report) -> bool {
    let addrs: Vec<std::net::SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(e) => {
            r.fail(
                check,
                format!("DNS: cannot resolve {host}: {e}"),
                "fix the host name or DNS",
            );
            return false;
        }
    };
    let Some(first) = addrs.first() else {
        r.fail(check, format!("DNS: {host} resolves to nothing"), "fix DNS");
        return false;
    };
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(first),
    )
    .await
    {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            r.fail(
                check,
                format!("TCP: cannot connect to {first}: {e}"),
                "start Redis there, or correct the address and the firewall",
            );
            false
        }
        Err(_) => {
            r.fail(
                check,
                format!("TCP: no answer from {first} within 5 s"),
                "correct the address and the firewall",
            );
            false
        }
    }
}

/// Redis (`[cluster]`): DNS, TCP, TLS, AUTH and PING, through the sentinels when set.
async fn redis_checks(redis: &locks::RedisSettings, r: &mut Report) {
    let timeout = Duration::from_secs(5);
    let target = if redis.sentinels.is_empty() {
        if let Some((host, port)) = redis_host_port(&redis.url) {
            if !reach("cluster.redis_url", &host, port, r).await {
                return;
            }
        }
        "cluster.redis_url"
    } else {
        let mut views = Vec::new();
        for sentinel in &redis.sentinels {
            let check = format!("sentinel {sentinel}");
            let Some((host, port)) = sentinel
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse().ok()?)))
            else {
                continue;
            };
            if !reach(&check, host, port, r).await {
                continue;
            }
            match locks::redis_conn::ask_sentinel(redis, sentinel, timeout).await {
                Ok(Some((h, p))) => {
                    views.push(format!("{h}:{p}"));
                    r.ok(
                        &check,
                        format!("names {h}:{p} primary of `{}`", redis.master_name),
                    );
                }
                Ok(None) => r.fail(
                    &check,
                    format!("does not monitor a master named `{}`", redis.master_name),
                    "set cluster.redis_master_name to the name in `sentinel monitor NAME …`",
                ),
                Err(e) => r.fail(
                    &check,
                    e,
                    "check cluster.redis_sentinel_password_*, cluster.redis_sentinel_tls and the CA",
                ),
            }
        }
        views.sort();
        views.dedup();
        if views.len() > 1 {
            r.warn(
                "cluster.redis_sentinels",
                format!(
                    "the sentinels disagree on the primary: {}",
                    views.join(", ")
                ),
                "wait for the failover to finish; check the sentinels' quorum if it lasts",
            );
        }
        "cluster.redis_master_name"
    };
    match locks::RedisConn::connect(redis, timeout).await {
        Ok(c) => {
            let pong = c.ping().await;
            let at = c.primary().unwrap_or_else(|| redis.describe());
            match pong {
                Ok(_) => r.ok(
                    target,
                    format!(
                        "{at} answers PING{}{}",
                        if redis.tls() { " over TLS" } else { "" },
                        if redis.password.is_some() || redis.username.is_some() {
                            " after AUTH"
                        } else {
                            ""
                        }
                    ),
                ),
                Err(e) => r.fail(
                    target,
                    format!("{at}: PING: {}", locks::redis_conn::describe_error(&e)),
                    "check the user's ACL (it needs the gateway's commands)",
                ),
            }
        }
        Err(e) => {
            let fix = if e.starts_with("AUTH") {
                "correct cluster.redis_username and cluster.redis_password_file (or _env)"
            } else if e.starts_with("TLS") {
                "point cluster.redis_ca_file at the CA that signed Redis' certificate, and check the host name in the URL is in it"
            } else {
                "check that Redis runs there and accepts the gateway (TLS, AUTH)"
            };
            r.fail(target, format!("{}: {e}", redis.describe()), fix);
        }
    }
}

fn tempfile_probe(dir: &Path) -> std::io::Result<()> {
    let p = dir.join(".doctor-probe");
    std::fs::write(&p, b"ok")?;
    std::fs::remove_file(p)
}

async fn docs_checks(s: &Settings, http: &HttpClient, r: &mut Report, skews: &mut Vec<i64>) {
    let base = s.docs.url.trim_end_matches('/');
    let health = format!("{base}/healthcheck");
    let Ok(req) = http::Request::get(&health).body(OutBody::empty()) else {
        return;
    };
    match http.send("doctor", req).await {
        Ok(resp) if resp.status().is_success() => {
            skews.extend(skew(resp.headers()));
            r.ok("docs.url", format!("{health} answers {}", resp.status()));
        }
        Ok(resp) => r.fail(
            "docs.url",
            format!("{health} answers {}", resp.status()),
            "check that ONLYOFFICE Docs runs at docs.url",
        ),
        Err(e) => {
            return r.fail(
                "docs.url",
                format!("{health}: {e}"),
                "start ONLYOFFICE Docs or correct docs.url (as the gateway reaches it)",
            );
        }
    }
    let Some(secret) = &s.docs.jwt_secret else {
        return r.warn(
            "docs.jwt_secret",
            "not set: the client face is disabled",
            "set docs.jwt_secret to Docs' JWT_SECRET to serve WOPI hosts",
        );
    };
    if secret.len() < 32 {
        r.warn(
            "docs.jwt_secret",
            "shorter than 32 characters",
            "use a long random secret (openssl rand -hex 32) on both sides",
        );
    }
    // A signed command-service `version` request, as an integrator would send it.
    let body = json!({"c": "version"});
    let now = now_s() as u64;
    let token = docs_api::jwt::sign_with_expiry(
        secret,
        body.as_object()
            .cloned()
            .as_ref()
            .unwrap_or(&serde_json::Map::new()),
        now,
        300,
    );
    let header = docs_api::jwt::sign_payload(secret, body.clone(), now, 300);
    let url = format!("{base}/coauthoring/CommandService.ashx");
    let Ok(req) = http::Request::post(&url)
        .header("content-type", "application/json")
        .header(s.docs.jwt_header.as_str(), format!("Bearer {header}"))
        .body(OutBody::from(
            json!({"c": "version", "token": token}).to_string(),
        ))
    else {
        return;
    };
    match http.send_read("doctor", req, 64 * 1024).await {
        Ok((_, bytes)) => {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            match v.get("error").and_then(Value::as_i64) {
                Some(0) => r.ok("docs.jwt_secret", format!("Docs accepted a signed command (version {})", v.get("version").and_then(Value::as_str).unwrap_or("?"))),
                Some(6) | Some(7) => r.fail(
                    "docs.jwt_secret",
                    "Docs refused the signed command (error 6: invalid token)",
                    "make docs.jwt_secret equal Docs' JWT_SECRET, and docs.jwt_header equal its JWT_HEADER",
                ),
                other => r.warn("docs.jwt_secret", format!("unexpected command-service answer {other:?}"), "check Docs' logs"),
            }
        }
        Err(e) => r.fail(
            "docs.jwt_secret",
            format!("command service: {e}"),
            "check that Docs' command service is reachable at docs.url",
        ),
    }
}

async fn host_face_checks(s: &Settings, http: &HttpClient, r: &mut Report, skews: &mut Vec<i64>) {
    let h = &s.host_face;
    if h.proof == ProofMode::Off {
        r.warn(
            "host_face.proof",
            "proof checks are off",
            "set proof = \"required\" outside test setups",
        );
    }
    if h.discovery_urls.is_empty() && !h.integrators.is_empty() {
        r.fail(
            "host_face.discovery_urls",
            "integrators are configured but no WOPI client is trusted: every WOPI call would get 500",
            "add the WOPI clients' /hosting/discovery URLs",
        );
    }
    for url in &h.discovery_urls {
        let check = format!("discovery {url}");
        let Ok(req) = http::Request::get(url).body(OutBody::empty()) else {
            continue;
        };
        match http.send("doctor", req).await {
            Ok(resp) => {
                skews.extend(skew(resp.headers()));
                let status = resp.status();
                let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                    resp.into_body(),
                    wopi::discovery::MAX_BYTES,
                ))
                .await;
                let Ok(body) = body.map(|b| b.to_bytes()) else {
                    r.fail(&check, "body could not be read", "check the WOPI client");
                    continue;
                };
                if !status.is_success() {
                    r.fail(
                        &check,
                        format!("answered {status}"),
                        "correct the URL (…/hosting/discovery)",
                    );
                    continue;
                }
                match wopi::discovery::parse(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|d| d.proof_keys().map_err(|e| e.to_string()))
                {
                    Ok(k) if k.current.is_some() => r.ok(
                        &check,
                        format!(
                            "proof key of {} bits{}",
                            k.current.map_or(0, |c| c.bits()),
                            if k.old.is_some() {
                                ", old key present"
                            } else {
                                ""
                            }
                        ),
                    ),
                    Ok(_) => r.fail(
                        &check,
                        "no proof-key element",
                        "enable proof keys on the WOPI client",
                    ),
                    Err(e) => r.fail(&check, e, "the document is not WOPI discovery XML"),
                }
            }
            Err(e) => r.fail(
                &check,
                e,
                "make the WOPI client's discovery reachable from the gateway",
            ),
        }
    }
    for i in &h.integrators {
        for origin in &i.allowed_origins {
            let check = format!("integrator {} origin {origin}", i.name);
            let Ok(uri) = origin.parse::<http::Uri>() else {
                continue;
            };
            let host = uri.host().unwrap_or("");
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            match tokio::net::lookup_host((host, port)).await {
                Ok(mut addrs) => match addrs.next() {
                    Some(a) => r.ok(&check, format!("resolves to {}", a.ip())),
                    None => r.fail(&check, "resolves to nothing", "fix DNS or the origin"),
                },
                Err(e) => r.fail(
                    &check,
                    format!("cannot resolve {host}: {e}"),
                    "fix DNS or the origin",
                ),
            }
        }
        if i.jwt_secret.len() < 32 {
            r.warn(
                &format!("integrator {} jwt_secret", i.name),
                "shorter than 32 characters",
                "use a long random secret shared with the integrator",
            );
        }
    }
}

fn client_face_checks(s: &Settings, r: &mut Report) {
    let c = &s.client_face;
    if s.docs.jwt_secret.is_some() && c.allowed_wopi_origins.is_empty() {
        r.warn(
            "client_face.allowed_wopi_origins",
            "empty: every WOPI host is refused",
            "list the WOPI hosts' origins that may open documents",
        );
    }
    for (key, file) in [
        ("client_face.proof_key_file", &c.proof_key_file),
        ("client_face.proof_key_old_file", &c.proof_key_old_file),
    ] {
        if let Some(f) = file {
            r.ok(key, format!("{} is a usable key", f.display()));
        }
    }
}
