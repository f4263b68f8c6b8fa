//! The request path: one stack wrapped once around the whole public router, so every request
//! crosses the same steps and shares one concurrency limit. It is one tower service whose
//! steps run in one future per request ([`Stack`]). Outermost first:
//!
//! 1. **classify** — strip the `server.public_url` (or `internal_url`) path prefix when present, find the route
//!    group and the client address, open the request span, count and time the answer;
//! 2. **overload** — load shed (503) when `server.max_concurrent_requests` are in flight
//!    ([`Admission`], one count shared with the proxy's fast path), and the total request
//!    timeout (408);
//! 3. **allowlist** — the route group's IP allowlist (403), before any cryptography;
//! 4. **body limit** — the route group's limit (413 by `Content-Length`, or while streaming);
//! 5. the router: host face, client face, and the proxy as the fallback.
//!
//! docs/architecture.md shows the same order.

use crate::access::{self, RouteGroup};
use crate::error::GatewayError;
use crate::server::Peer;
use crate::state::Core;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::Service as _;

/// The public listener's service: the router inside the whole stack.
pub(crate) type PublicService = Stack;

/// What the classify step learned, for the layers below.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Classified {
    /// Route group of the path.
    pub group: RouteGroup,
    /// The client address (peer, or forwarded through a trusted proxy).
    pub client_ip: IpAddr,
}

/// The whole request path as one service: the steps of the module's list in that order, in
/// one future per request. A request the classify step puts in the proxy group goes straight
/// to `proxy` (no route of `router` is in that group, so the router would only reach its
/// fallback after matching every route); everything else to `router`.
#[derive(Clone)]
pub(crate) struct Stack(Arc<Layers>);

struct Layers {
    state: Arc<Core>,
    admission: Arc<Admission>,
    timeout: std::time::Duration,
    router: Router,
    proxy: Router,
}

impl tower::Service<Request> for Stack {
    type Response = Response;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, Infallible>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let layers = self.0.clone();
        Box::pin(async move { Ok(layers.classify(req).await) })
    }
}

/// Keeps `http_in_flight` right even when the client leaves and the request's future is
/// dropped mid-way.
struct InFlight<'a>(&'a prometheus::IntGauge);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Layers {
    /// 1. Classify, span and metrics first so that every request, even a shed one, is
    ///    counted.
    async fn classify(&self, mut req: Request) -> Response {
        let state = &self.state;
        // The front's rules (h1) for what the HTTP server read itself (TLS connections,
        // HTTP/2); a head the front lent was checked there and arrives canonical.
        let framed = req.extensions().get::<Peer>().is_some_and(|p| p.framed);
        let checked = if framed {
            Ok(None)
        } else {
            front_rules(&mut req)
        };
        match checked {
            Ok(None) => {}
            Ok(Some(options)) => return options,
            Err(reject) => {
                state.metrics.count_refused(reject);
                tracing::debug!(
                    rule = reject.rule,
                    status = reject.status,
                    "request head refused"
                );
                return GatewayError::Refused(reject).into_response();
            }
        }
        let settings = state.settings_now();
        strip_prefix(&mut req, &settings);
        let group = RouteGroup::classify(req.uri().path());
        let peer = req
            .extensions()
            .get::<Peer>()
            .map(|p| p.addr.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let client_ip = access::client_ip(peer, req.headers(), &settings.access.trusted_proxies);
        drop(settings);
        let c = Classified { group, client_ip };
        req.extensions_mut().insert(c);
        let id = state.request_ids.fetch_add(1, Ordering::Relaxed);
        // Every line logged while serving carries the request id, the route group and the
        // allowlist rule that admitted the client ("any" for an empty list).
        let span = tracing::info_span!(
            "request",
            request_id = id,
            group = group.as_str(),
            method = %req.method(),
            allow_rule = tracing::field::Empty
        );
        let started = tokio::time::Instant::now();
        let in_flight = InFlight::new(&state.metrics.http_in_flight);
        let resp = tracing::Instrument::instrument(self.admit(req, c), span.clone()).await;
        drop(in_flight);
        count_answer(state, group, resp.status().as_u16(), started, &span);
        resp
    }

    /// 2. Shed instead of queueing: under overload, fail fast (503). Then the total timeout
    ///    (408).
    ///    3. and 4. are [`admit`]'s, the function the proxy's fast path calls too.
    async fn admit(&self, req: Request, c: Classified) -> Response {
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let upload = declared.is_some_and(|n| n > 0)
            || req.headers().contains_key(http::header::TRANSFER_ENCODING);
        let admitted = match admit(
            &self.state,
            &self.admission,
            c.group,
            c.client_ip,
            declared,
            upload,
        ) {
            Ok(a) => a,
            Err(e) => return e.into_response(),
        };
        let resp = match tokio::time::timeout(self.timeout, self.checked(req, c, &admitted)).await {
            Ok(resp) => resp,
            Err(_) => GatewayError::Timeout.into_response(),
        };
        drop(admitted);
        resp
    }

    /// 4. The body limit while streaming, and the body's idle timeout; 5. the routes.
    async fn checked(&self, req: Request, c: Classified, admitted: &Admitted) -> Response {
        let (parts, body) = req.into_parts();
        let idle = crate::body::IdleBody::new(
            body,
            admitted.body_idle,
            self.state
                .metrics
                .http_timeouts
                .with_label_values(&["body"]),
        );
        let limited = Body::new(http_body_util::Limited::new(
            idle,
            usize::try_from(admitted.body_limit).unwrap_or(usize::MAX),
        ));
        let req = Request::from_parts(parts, limited);
        let routes = if c.group == RouteGroup::Proxy {
            &self.proxy
        } else {
            &self.router
        };
        match routes.clone().call(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    }
}

/// The server-wide count of requests in flight against `server.max_concurrent_requests`. One
/// count for every request of the public listener, whichever path serves it (the stack or
/// the proxy's fast path): a request over the limit is shed at once (503), never queued.
/// Requests with a body to upload may hold at most half of the places, so slow uploads
/// cannot take the capacity every other request needs.
#[derive(Debug)]
pub(crate) struct Admission {
    limit: usize,
    upload_limit: usize,
    current: AtomicUsize,
    uploads: AtomicUsize,
    shed: prometheus::IntCounter,
}

/// One admitted request; dropping it (when the answer's head is ready) frees its place.
#[derive(Debug)]
pub(crate) struct Permit {
    admission: Arc<Admission>,
    upload: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.upload {
            self.admission.uploads.fetch_sub(1, Ordering::AcqRel);
        }
        self.admission.current.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// The count for `server.max_concurrent_requests` of `state`.
    pub(crate) fn new(state: &Core) -> Arc<Self> {
        Self::with_limit(state.settings().server.max_concurrent_requests, state)
    }

    fn with_limit(limit: usize, state: &Core) -> Arc<Self> {
        Arc::new(Admission {
            limit,
            upload_limit: (limit / 2).max(1),
            current: AtomicUsize::new(0),
            uploads: AtomicUsize::new(0),
            shed: state.metrics.load_shed.clone(),
        })
    }

    /// A place for one more request (`upload`: one whose body is still to be read), or
    /// `None` (counted as shed) when all are taken.
    pub(crate) fn try_admit(self: &Arc<Self>, upload: bool) -> Option<Permit> {
        if self.current.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.current.fetch_sub(1, Ordering::AcqRel);
            self.shed.inc();
            return None;
        }
        if upload && self.uploads.fetch_add(1, Ordering::AcqRel) >= self.upload_limit {
            self.uploads.fetch_sub(1, Ordering::AcqRel);
            self.current.fetch_sub(1, Ordering::AcqRel);
            self.shed.inc();
            tracing::info!(
                limit = self.upload_limit,
                "request with a body shed: half of server.max_concurrent_requests are uploads in progress"
            );
            return None;
        }
        Some(Permit {
            admission: self.clone(),
            upload,
        })
    }
}

/// What [`admit`] granted: the place in the in-flight count, and the limits in force.
#[derive(Debug)]
pub(crate) struct Admitted {
    _permit: Permit,
    /// `server.request_timeout_seconds`
    pub total: std::time::Duration,
    /// `upstream.request_timeout_seconds`, `upstream.connect_timeout_seconds`
    pub upstream_timeout: std::time::Duration,
    pub connect_timeout: std::time::Duration,
    /// The route group's body limit.
    pub body_limit: u64,
    /// `server.body_idle_timeout_seconds`
    pub body_idle: std::time::Duration,
}

/// Admission of one request, for the stack and the proxy's fast path alike: a place in the
/// in-flight count (503 when none is left; uploads hold at most half), the route group's
/// allowlist (403), the body limit for a declared length (413).
pub(crate) fn admit(
    state: &Core,
    admission: &Arc<Admission>,
    group: RouteGroup,
    client_ip: IpAddr,
    declared: Option<u64>,
    upload: bool,
) -> Result<Admitted, GatewayError> {
    let Some(permit) = admission.try_admit(upload) else {
        return Err(GatewayError::Overloaded);
    };
    let settings = state.settings_now();
    check_allowlist(state, &settings, group, client_ip)?;
    let body_limit = settings.server.body_limits[group.index()];
    check_declared_body(declared, body_limit)?;
    Ok(Admitted {
        _permit: permit,
        total: settings.server.request_timeout,
        upstream_timeout: settings.upstream.request_timeout,
        connect_timeout: settings.upstream.connect_timeout,
        body_limit,
        body_idle: settings.server.body_idle_timeout,
    })
}

/// The front's rules for a request the HTTP server parsed: for HTTP/1, [`h1::check`] on its
/// head (CONNECT, the target's form, `Host`, framing), `OPTIONS *` answered here (`Some`),
/// and the target rewritten to the normalised origin-form path; for HTTP/2, CONNECT refused
/// and the path normalised.
fn front_rules(req: &mut Request) -> Result<Option<Response>, h1::Reject> {
    let version = match req.version() {
        http::Version::HTTP_10 => Some(h1::Version::Http10),
        http::Version::HTTP_11 => Some(h1::Version::Http11),
        _ => None,
    };
    let target = req.uri().to_string();
    let method = req.method().as_str().to_owned();
    let checked = match version {
        Some(v) => h1::check(
            &method,
            &target,
            v,
            req.headers().iter().map(|(n, v)| h1::Field {
                name: n.as_str(),
                value: v.as_bytes(),
            }),
        )?,
        None => {
            if method == "CONNECT" {
                return Err(h1::Reject::new(405, "connect"));
            }
            let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
            h1::check(&method, pq, h1::Version::Http10, std::iter::empty())?
        }
    };
    if checked.form == h1::Form::Asterisk {
        let resp = (
            http::StatusCode::OK,
            [(http::header::ALLOW, crate::error::ALLOW)],
        )
            .into_response();
        return Ok(Some(resp));
    }
    let authority = (checked.form == h1::Form::Absolute)
        .then(|| checked.authority.map(str::to_owned))
        .flatten();
    let new = match checked.query {
        Some(q) => format!("{}?{q}", checked.path),
        None => checked.path.into_owned(),
    };
    if new != target {
        match http::Uri::try_from(new) {
            Ok(u) => *req.uri_mut() = u,
            Err(_) => return Err(h1::Reject::new(400, "request-target")),
        }
    }
    if let Some(a) = authority {
        // An absolute-form target's authority is the request's Host (RFC 9112 §3.2.2).
        if let Ok(v) = http::HeaderValue::from_str(&a) {
            req.headers_mut().insert(http::header::HOST, v);
        }
    }
    Ok(None)
}

/// Wraps `router` (and `proxy`, the router of the proxy group) in the request path, once.
/// `admission` is the in-flight count the proxy's fast path shares.
pub(crate) fn public_service(
    router: Router,
    proxy: Router,
    state: &Arc<Core>,
    admission: Arc<Admission>,
) -> PublicService {
    Stack(Arc::new(Layers {
        state: state.clone(),
        admission,
        timeout: state.settings().server.request_timeout,
        router,
        proxy,
    }))
}

/// The path below `server.public_url`'s prefix (then `server.internal_url`'s, when it
/// differs): requests may arrive with the prefix (the gateway is reached directly) or
/// without it (a front proxy stripped it). The proxy's fast path routes by the same rule.
pub(crate) fn route_path<'p>(path: &'p str, settings: &crate::settings::Settings) -> &'p str {
    let path = strip_path(path, &settings.server.public_url.path);
    if settings.server.internal_url.path != settings.server.public_url.path {
        return strip_path(path, &settings.server.internal_url.path);
    }
    path
}

/// `path` without `prefix`: `/prefix` and `/prefix/…` lose it, anything else keeps it.
fn strip_path<'p>(path: &'p str, prefix: &str) -> &'p str {
    if prefix.is_empty() {
        return path;
    }
    match path.strip_prefix(prefix) {
        Some("") => "/",
        Some(r) if r.starts_with('/') => r,
        _ => path,
    }
}

/// Rewrites the request target to [`route_path`].
fn strip_prefix(req: &mut Request, settings: &crate::settings::Settings) {
    let Some(pq) = req.uri().path_and_query() else {
        return;
    };
    let rest = route_path(pq.path(), settings);
    if rest.len() == pq.path().len() {
        return;
    }
    let new = match pq.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(p) = new.parse() {
        parts.path_and_query = Some(p);
        if let Ok(u) = http::Uri::from_parts(parts) {
            *req.uri_mut() = u;
        }
    }
}

/// Counts and times an answer of `group` (its head is ready) and logs it at debug in the
/// request's span; the proxy's fast path does the same for the requests it serves.
pub(crate) fn count_answer(
    state: &Core,
    group: RouteGroup,
    status: u16,
    started: tokio::time::Instant,
    span: &tracing::Span,
) {
    let m = &state.metrics.by_group[group.index()];
    m.requests[usize::from((status / 100).clamp(1, 5) - 1)].inc();
    m.duration.observe(started.elapsed().as_secs_f64());
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "answered"
        )
    });
}

/// The route group's IP allowlist for `client`: the rule that admitted it goes into the
/// request span; a refusal is counted and logged. The proxy's fast path checks the same way.
pub(crate) fn check_allowlist(
    state: &Core,
    settings: &crate::settings::Settings,
    group: RouteGroup,
    client: IpAddr,
) -> Result<(), GatewayError> {
    match settings.access.allow[group.index()].admit(client) {
        access::Admit::Anyone => {
            tracing::Span::current().record("allow_rule", "any");
            Ok(())
        }
        access::Admit::Rule(rule) => {
            tracing::Span::current().record("allow_rule", tracing::field::display(rule));
            tracing::debug!(client = %client, rule = %rule, group = group.as_str(), "allowlist matched");
            Ok(())
        }
        access::Admit::Denied => {
            state
                .metrics
                .ip_denials
                .with_label_values(&[group.as_str()])
                .inc();
            tracing::warn!(client = %client, group = group.as_str(), "client address not in the allowlist");
            Err(GatewayError::IpDenied)
        }
    }
}

/// A body declared (`Content-Length`) over the group's limit is refused at once (413).
pub(crate) fn check_declared_body(declared: Option<u64>, limit: u64) -> Result<(), GatewayError> {
    if declared.is_some_and(|n| n > limit) {
        tracing::info!(declared, limit, "request body over the route group's limit");
        return Err(GatewayError::PayloadTooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::settings::Settings;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;
    use tower::ServiceExt as _;

    /// An upstream that accepts connections, counts them, and never answers.
    async fn silent_upstream() -> (String, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                n2.fetch_add(1, Ordering::SeqCst);
                held.push(s);
            }
        });
        (format!("http://{addr}"), n)
    }

    fn settings(dir: &str, docs_url: &str, limit: usize) -> Settings {
        let mut s = Settings::default();
        s.server.data_dir =
            std::env::temp_dir().join(format!("wopi-gw-stack-{dir}-{}", std::process::id()));
        s.server.max_concurrent_requests = limit;
        docs_url.clone_into(&mut s.docs.url);
        s.docs.healthcheck_interval = None;
        s
    }

    fn req(method: &str, path: &str, from: [u8; 4]) -> Request {
        let mut r = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "gw.test")
            .body(Body::empty())
            .unwrap();
        r.extensions_mut().insert(Peer {
            addr: std::net::SocketAddr::from((from, 40000)),
            tls: false,
            framed: false,
        });
        r
    }

    const LOCAL: [u8; 4] = [127, 0, 0, 1];

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_limit_for_every_route_sheds_wopi_and_discovery() {
        let (docs, accepted) = silent_upstream().await;
        let (state, svc) = crate::app::test_service(settings("shed", &docs, 2)).await;
        // Two slow proxied requests take the whole limit…
        let slow: Vec<_> = (0..2)
            .map(|i| {
                let svc = svc.clone();
                tokio::spawn(svc.oneshot(req("GET", &format!("/web-apps/slow{i}"), LOCAL)))
            })
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while accepted.load(Ordering::SeqCst) < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "proxied requests never left"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // …so every other route, on every method, is shed: the limit is one for the server.
        for (method, path) in [
            ("GET", "/hosting/discovery"),
            ("POST", "/wopi/files/abc"),
            ("GET", "/wopi/files/abc/contents"),
            ("POST", "/api/v1/sessions"),
            ("GET", "/web-apps/other"),
        ] {
            let resp = svc.clone().oneshot(req(method, path, LOCAL)).await.unwrap();
            assert_eq!(resp.status(), 503, "{method} {path}");
        }
        assert_eq!(state.metrics.load_shed.get(), 5);
        // Shed requests are still classified and counted by the outermost layer.
        let wopi_5xx = state.metrics.by_group[RouteGroup::Wopi.index()].requests[4].get();
        assert_eq!(wopi_5xx, 2);
        for s in slow {
            s.abort();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn layer_order_classify_shed_allowlist_body_limit() {
        let (docs, accepted) = silent_upstream().await;
        let mut s = settings("order", &docs, 1);
        s.access.allow[RouteGroup::Wopi.index()] =
            access::AllowList::new(vec!["10.0.0.0/8".parse().unwrap()]);
        s.server.body_limits[RouteGroup::Wopi.index()] = 10;
        let (state, svc) = crate::app::test_service(s).await;
        // Allowlist before body limit: a denied client with a huge body gets 403, not 413.
        let mut big = req("POST", "/wopi/files/a/contents", LOCAL);
        big.headers_mut()
            .insert(http::header::CONTENT_LENGTH, "1000".parse().unwrap());
        assert_eq!(svc.clone().oneshot(big).await.unwrap().status(), 403);
        // An allowed client meets the body limit.
        let mut big = req("POST", "/wopi/files/a/contents", [10, 1, 2, 3]);
        big.headers_mut()
            .insert(http::header::CONTENT_LENGTH, "1000".parse().unwrap());
        assert_eq!(svc.clone().oneshot(big).await.unwrap().status(), 413);
        assert_eq!(
            state.metrics.ip_denials.with_label_values(&["wopi"]).get(),
            1
        );
        // Shed before the allowlist: under overload even a denied client sees 503, and the
        // allowlist is not consulted (no new denial).
        let slow = tokio::spawn(svc.clone().oneshot(req("GET", "/slow", LOCAL)));
        while accepted.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let resp = svc
            .clone()
            .oneshot(req("GET", "/wopi/files/a", LOCAL))
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(
            state.metrics.ip_denials.with_label_values(&["wopi"]).get(),
            1
        );
        slow.abort();
    }

    #[tokio::test]
    async fn public_url_prefix_is_stripped_when_present() {
        let mut office = Settings::default();
        "/office".clone_into(&mut office.server.public_url.path);
        office.server.internal_url = office.server.public_url.clone();
        let mut r = req("GET", "/office/wopi/files/1?access_token=x", LOCAL);
        strip_prefix(&mut r, &office);
        assert_eq!(r.uri(), "/wopi/files/1?access_token=x");
        let mut r = req("GET", "/office", LOCAL);
        strip_prefix(&mut r, &office);
        assert_eq!(r.uri(), "/");
        // Already stripped by a front proxy, or only sharing a name: unchanged.
        for p in ["/wopi/files/1", "/officex/wopi/files/1"] {
            let mut r = req("GET", p, LOCAL);
            strip_prefix(&mut r, &office);
            assert_eq!(r.uri(), p);
        }
        // The path alone, as the proxy's fast path routes it.
        assert_eq!(strip_path("/office/web-apps/x", "/office"), "/web-apps/x");
        assert_eq!(strip_path("/office", "/office"), "/");
        assert_eq!(strip_path("/officex/a", "/office"), "/officex/a");
        assert_eq!(strip_path("/a", ""), "/a");
    }
}
