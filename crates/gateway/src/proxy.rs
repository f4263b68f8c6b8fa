//! Reverse proxy to ONLYOFFICE Docs: everything that is not one of the gateway's own routes.
//!
//! Bodies stream in both directions (never buffered whole); hop-by-hop headers are removed;
//! `X-Forwarded-*` tell Docs how the browser reached it; upgraded connections (co-editing
//! WebSockets) are tunnelled with an idle timeout.

use crate::error::{GatewayError, UpstreamKind};
use crate::server::Peer;
use crate::state::Ctx;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri, Version};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use prometheus::IntCounter;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) mod fast;
pub(crate) use fast::FastProxy;

/// The proxy's handle: the shared core and [`DocsUpstream`].
pub(crate) type ProxyCtx = Ctx<DocsUpstream>;

/// The upstream ONLYOFFICE Docs: where proxied requests go, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct DocsUpstream {
    /// `scheme://authority`
    pub origin: String,
    /// `authority` (the Host header sent upstream).
    pub authority: HeaderValue,
    /// Path prefix without trailing slash.
    pub prefix: String,
    up_bytes: IntCounter,
    down_bytes: IntCounter,
}

impl DocsUpstream {
    /// Parses `docs.url`.
    pub(crate) fn new(state_metrics: &crate::metrics::Metrics, url: &str) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("docs.url: {e}"))?;
        let scheme = uri.scheme_str().ok_or("docs.url: no scheme")?;
        let authority = uri
            .authority()
            .ok_or("docs.url: no host")?
            .as_str()
            .to_owned();
        Ok(DocsUpstream {
            origin: format!("{scheme}://{authority}"),
            authority: HeaderValue::from_str(&authority).map_err(|e| e.to_string())?,
            prefix: uri.path().trim_end_matches('/').to_owned(),
            up_bytes: state_metrics.proxy_bytes.with_label_values(&["upstream"]),
            down_bytes: state_metrics.proxy_bytes.with_label_values(&["downstream"]),
        })
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded; both proxy paths use this list.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && crate::server::has_token(headers, header::CONNECTION, "upgrade")
}

/// Removes hop-by-hop headers (and those named in `Connection`); keeps the upgrade pair when
/// the connection is being upgraded.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && n == header::UPGRADE))
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(n);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

static XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
static XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
static XFH: HeaderName = HeaderName::from_static("x-forwarded-host");
static XFPREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// The fallback: requests of the proxy group go to Docs; unknown paths of the gateway's own
/// groups are 404.
pub(crate) async fn handle(State(state): State<ProxyCtx>, req: Request) -> Response {
    let group = req
        .extensions()
        .get::<crate::stack::Classified>()
        .map(|c| c.group);
    if group.is_some_and(|g| g != crate::access::RouteGroup::Proxy) {
        return GatewayError::NotFound("route").into_response();
    }
    match forward(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn forward(state: &ProxyCtx, mut req: Request) -> Result<Response, GatewayError> {
    let up = &state.face;
    let upgrade = is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let peer = req.extensions().get::<Peer>().copied();
    let trusted_peer = peer.is_some_and(|p| {
        crate::access::is_trusted(&state.settings().access.trusted_proxies, p.addr.ip())
    });
    let (mut parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = format!("{}{}{pq}", up.origin, up.prefix)
        .parse()
        .map_err(|e| {
            GatewayError::BadRequest(format!("cannot forward this request target: {e}"))
        })?;
    let host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    strip_hop_by_hop(&mut parts.headers, upgrade);
    let h = &mut parts.headers;
    if let Some(peer) = peer {
        // A client-sent X-Forwarded-For is kept (and extended) only from a trusted proxy.
        let ip = peer.addr.ip().to_string();
        let xff = match h.get(&XFF).and_then(|v| v.to_str().ok()) {
            Some(prev) if trusted_peer => format!("{prev}, {ip}"),
            _ => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            h.insert(XFF.clone(), v);
        }
    }
    if !(trusted_peer && h.contains_key(&XFP)) {
        let https =
            peer.is_some_and(|p| p.tls) || state.settings().server.public_url.scheme == "https";
        let proto = if https { "https" } else { "http" };
        h.insert(
            XFP.clone(),
            HeaderValue::from_static(if proto == "https" { "https" } else { "http" }),
        );
    }
    if let Some(host) = host.filter(|_| !(trusted_peer && h.contains_key(&XFH))) {
        h.insert(XFH.clone(), host);
    }
    let prefix = &state.settings().server.public_url.path;
    if let Some(v) = (!prefix.is_empty())
        .then(|| HeaderValue::from_str(prefix).ok())
        .flatten()
    {
        h.insert(XFPREFIX.clone(), v);
    }
    h.insert(header::HOST, up.authority.clone());
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    let up_bytes = up.up_bytes.clone();
    let body = Body::new(body.map_frame(move |f| {
        if let Some(d) = f.data_ref() {
            up_bytes.inc_by(d.len() as u64);
        }
        f
    }));
    let out = http::Request::from_parts(parts, body);
    let mut resp = state.http.send("proxy", out).await.inspect_err(|e| {
        if let GatewayError::Upstream { kind, detail, .. } = e {
            tracing::warn!(kind = kind.label(), error = %detail, "upstream Docs unreachable");
        }
    })?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(GatewayError::Upstream {
                op: "proxy",
                kind: UpstreamKind::Protocol,
                detail: "101 without an upgrade request".into(),
            });
        };
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        let idle = state.settings().docs.tunnel_idle_timeout;
        let metrics = state.metrics.clone();
        let (up_c, down_c) = (up.up_bytes.clone(), up.down_bytes.clone());
        tokio::spawn(async move {
            let (client, upstream) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok(pair) => pair,
                Err(e) => return tracing::debug!(error = %e, "upgrade did not complete"),
            };
            metrics.tunnels.inc();
            let (ar, aw) = tokio::io::split(TokioIo::new(client));
            let (br, bw) = tokio::io::split(TokioIo::new(upstream));
            tunnel_halves(ar, aw, br, bw, idle, &up_c, &down_c).await;
            metrics.tunnels.dec();
        });
        let (parts, _) = resp.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    let down = up.down_bytes.clone();
    let body = Body::new(body.map_frame(move |f| {
        if let Some(d) = f.data_ref() {
            down.inc_by(d.len() as u64);
        }
        f
    }));
    Ok(Response::from_parts(parts, body))
}

/// Copies both ways between the client (`ar`, `aw`) and Docs (`br`, `bw`) until either side
/// closes or nothing moved for `idle`.
async fn tunnel_halves<AR, AW, BR, BW>(
    ar: AR,
    aw: AW,
    br: BR,
    bw: BW,
    idle: Duration,
    up: &IntCounter,
    down: &IntCounter,
) where
    AR: tokio::io::AsyncRead + Unpin,
    AW: tokio::io::AsyncWrite + Unpin,
    BR: tokio::io::AsyncRead + Unpin,
    BW: tokio::io::AsyncWrite + Unpin,
{
    let last = AtomicU64::new(0);
    let epoch = tokio::time::Instant::now();
    let to_up = pump(ar, bw, up, &last, epoch);
    let to_down = pump(br, aw, down, &last, epoch);
    let watchdog = async {
        let idle_ms = idle.as_millis() as u64;
        loop {
            let quiet =
                (epoch.elapsed().as_millis() as u64).saturating_sub(last.load(Ordering::Relaxed));
            if quiet >= idle_ms {
                tracing::debug!("tunnel idle: closing");
                return;
            }
            tokio::time::sleep(Duration::from_millis((idle_ms - quiet).max(10))).await;
        }
    };
    tokio::select! {
        () = async { tokio::join!(to_up, to_down); } => {}
        () = watchdog => {}
    }
}

async fn pump<R, W>(
    mut r: R,
    mut w: W,
    counter: &IntCounter,
    last: &AtomicU64,
    epoch: tokio::time::Instant,
) where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                counter.inc_by(n as u64);
                last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = w.shutdown().await;
}

/// Probes `{docs.url}/healthcheck` every `interval`, feeding `/readyz` and `upstream_up`.
pub(crate) fn spawn_health_checker(
    state: ProxyCtx,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let url = format!("{}{}/healthcheck", state.face.origin, state.face.prefix);
            let ok = match http::Request::get(&url).body(Body::empty()) {
                Ok(req) => {
                    matches!(state.http.send_with_timeout("healthcheck", req, Duration::from_secs(5)).await, Ok(r) if r.status().is_success())
                }
                Err(_) => false,
            };
            let was = state.upstream_healthy.swap(ok, Ordering::Relaxed);
            if was != ok {
                tracing::debug!(url = %crate::urls::redact(&url), ok, "upstream Docs health changed");
            }
            state.metrics.upstream_up.set(i64::from(ok));
            state.report_readiness();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert!(
            h.get("x-secret").is_none()
                && h.get("keep-alive").is_none()
                && h.get(header::TE).is_none()
        );
        assert!(h.get(header::CONNECTION).is_none());
        assert_eq!(h["x-kept"], "1");
        let mut u = HeaderMap::new();
        u.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        u.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&u));
        strip_hop_by_hop(&mut u, true);
        assert_eq!(u[header::UPGRADE], "websocket");
        assert_eq!(u[header::CONNECTION], "upgrade");
    }
}
