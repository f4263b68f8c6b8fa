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
mod forward;

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

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && crate::server::has_token(headers, header::CONNECTION, "upgrade")
}

/// The `Connection` tokens of `headers`.
fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| h1::field::tokens(v.as_bytes()).map(str::to_owned))
        .collect()
}

/// Removes hop-by-hop headers ([`h1::field::is_hop_by_hop`]: the fixed list and those named
/// in `Connection`, never the framing fields or `Host`); keeps the upgrade pair when the
/// connection is being upgraded. Answers from Docs go through this on both paths.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named = connection_tokens(headers);
    let named: Vec<&str> = named.iter().map(String::as_str).collect();
    let upgrade_value = headers.get(header::UPGRADE).cloned();
    let drop: Vec<HeaderName> = headers
        .keys()
        .filter(|n| h1::field::is_hop_by_hop(n.as_str(), &named))
        .cloned()
        .collect();
    for n in drop {
        headers.remove(n);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(v) = upgrade_value {
            headers.insert(header::UPGRADE, v);
        }
    }
}

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
    // One rule set with the fast path (proxy/forward.rs).
    let settings = state.settings();
    let prefix = settings.server.public_url.path.clone();
    let https = peer.is_some_and(|p| p.tls) || settings.server.public_url.scheme == "https";
    drop(settings);
    let client = std::mem::take(&mut parts.headers);
    let named = connection_tokens(&client);
    let named: Vec<&str> = named.iter().map(String::as_str).collect();
    let mut sent = forward::Sent::default();
    let h = &mut parts.headers;
    for (name, value) in &client {
        let n = name.as_str();
        sent.see(n, value.as_bytes());
        if h1::field::is_hop_by_hop(n, &named) || forward::replaced(n, trusted_peer, &prefix) {
            continue;
        }
        h.append(name.clone(), value.clone());
    }
    let authority = client.get(header::HOST).map(HeaderValue::as_bytes);
    let peer_ip = peer.map_or(std::net::IpAddr::from([127, 0, 0, 1]), |p| p.addr.ip());
    forward::write(
        &forward::Forwarding {
            peer: peer_ip,
            trusted: trusted_peer,
            sent,
            authority,
            https,
            prefix: &prefix,
            docs_authority: up.authority.as_bytes(),
        },
        |n, v| {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                h.insert(HeaderName::from_static(n), v);
            }
        },
    );
    if upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(v) = client.get(header::UPGRADE) {
            h.insert(header::UPGRADE, v.clone());
        }
    }
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    let up_bytes = up.up_bytes.clone();
    // A failure of the client's body (cut short, malformed, stalled, over the limit) is the
    // client's error, not Docs': it is told apart from the upstream's failures here.
    let body_failed: std::sync::Arc<std::sync::Mutex<Option<GatewayError>>> =
        std::sync::Arc::default();
    let failed = body_failed.clone();
    let body = Body::new(
        body.map_frame(move |f| {
            if let Some(d) = f.data_ref() {
                up_bytes.inc_by(d.len() as u64);
            }
            f
        })
        .map_err(move |e| {
            let err = if crate::body::is_body_limit(&e) {
                GatewayError::PayloadTooLarge
            } else if crate::body::is_body_stalled(&e) {
                GatewayError::Refused(h1::Reject::new(408, "body-idle-timeout"))
            } else {
                GatewayError::Refused(h1::Reject::new(400, "body-incomplete"))
            };
            if let Ok(mut slot) = failed.lock() {
                *slot = Some(err);
            }
            e
        }),
    );
    let out = http::Request::from_parts(parts, body);
    let sent = state.http.send("proxy", out).await;
    let client_fault = body_failed.lock().ok().and_then(|mut s| s.take());
    let mut resp = match (sent, client_fault) {
        (Err(_), Some(fault)) => {
            if let GatewayError::Refused(r) = &fault {
                state
                    .metrics
                    .http_refused
                    .with_label_values(&[r.rule])
                    .inc();
            }
            return Err(fault);
        }
        (r, _) => r.inspect_err(|e| {
            if let GatewayError::Upstream { kind, detail, .. } = e {
                tracing::warn!(kind = kind.label(), error = %detail, "upstream Docs unreachable");
            }
        })?,
    };
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
