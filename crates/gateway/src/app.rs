//! The shared state and the request path (DESIGN.md §3), outermost first:
//! classify → metrics + request span → overload/timeout → IP allowlist → body limit → handler.

use crate::access::{self, RouteGroup};
use crate::error::GatewayError;
use crate::host_face::HostFace;
use crate::metrics::Metrics;
use crate::server::Peer;
use crate::settings::Settings;
use crate::upstream::HttpClient;
use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tower::ServiceBuilder;

/// State every handler shares. Cheap to clone.
///
/// Per-request path: `settings` (read-only), `metrics` (atomic counters), `locks` (the store's
/// own synchronisation: DashMap shards or Redis), `http` (a pooled client, internally synced).
/// Cheap to clone: one `Arc`, so the per-layer `State` clones touch one counter.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl Shared {
    /// The settings in force (a cheap snapshot; a reload does not change it under you).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Installs reloaded settings.
    pub fn store_settings(&self, settings: Arc<Settings>) {
        self.settings.store(settings);
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
#[derive(Debug)]
pub struct Shared {
    /// Validated settings; swapped whole by a reload (SIGHUP).
    settings: arc_swap::ArcSwap<Settings>,
    /// Metric families.
    pub metrics: Metrics,
    /// The lock store.
    pub locks: Arc<dyn locks::LockStore>,
    /// Outgoing HTTP.
    pub http: HttpClient,
    /// Host-face state (files, deliveries, discovery).
    pub host: HostFace,
    /// The upstream ONLYOFFICE Docs (reverse proxy target).
    pub upstream: crate::proxy::Upstream,
    /// Client-face state (proof keys, sessions).
    pub client: crate::client_face::ClientFace,
    /// Set once startup work is done (`/readyz`).
    pub ready: AtomicBool,
    request_ids: AtomicU64,
}

impl AppState {
    /// Builds the state.
    pub fn new(
        settings: Arc<Settings>,
        metrics: Metrics,
        locks: Arc<dyn locks::LockStore>,
        http: HttpClient,
        host: HostFace,
        upstream: crate::proxy::Upstream,
        client: crate::client_face::ClientFace,
    ) -> Self {
        AppState(Arc::new(Shared {
            settings: arc_swap::ArcSwap::new(settings),
            metrics,
            locks,
            http,
            host,
            upstream,
            client,
            ready: AtomicBool::new(false),
            request_ids: AtomicU64::new(1),
        }))
    }
}

/// What the classify step learned, for the layers below.
#[derive(Debug, Clone, Copy)]
pub struct Classified {
    /// Route group of the path.
    pub group: RouteGroup,
    /// The client address (peer, or forwarded through a trusted proxy).
    pub client_ip: IpAddr,
}

/// Wraps a router of handlers in the request path.
pub fn with_request_path(router: Router, state: &AppState) -> Router {
    let limit = state.settings().server.max_concurrent_requests;
    let timeout = state.settings().server.request_timeout;
    router.layer(
        ServiceBuilder::new()
            // Classify, span and metrics first so that every request, even a shed one, is counted.
            .layer(middleware::from_fn_with_state(state.clone(), front))
            // Turn overload and total timeout into responses (503 / 408).
            .layer(HandleErrorLayer::new({
                let shed = state.metrics.load_shed.clone();
                move |e: tower::BoxError| {
                    let shed = shed.clone();
                    async move { overload_error(&shed, &e) }
                }
            }))
            // Shed instead of queueing: under overload, fail fast.
            .load_shed()
            .concurrency_limit(limit)
            .timeout(timeout)
            // The allowlist is a cheap predicate: it runs before any cryptography.
            .layer(middleware::from_fn_with_state(state.clone(), allow_ip))
            // Refuse bodies over the group's limit: by Content-Length at once, while streaming otherwise.
            .layer(middleware::from_fn_with_state(state.clone(), body_limit)),
    )
}

fn overload_error(shed: &prometheus::IntCounter, e: &tower::BoxError) -> Response {
    if e.is::<tower::load_shed::error::Overloaded>() {
        shed.inc();
        GatewayError::Overloaded.into_response()
    } else if e.is::<tower::timeout::error::Elapsed>() {
        GatewayError::Timeout.into_response()
    } else {
        GatewayError::Internal(format!("request path: {e}")).into_response()
    }
}

async fn front(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let group = RouteGroup::classify(req.uri().path());
    let peer = req
        .extensions()
        .get::<Peer>()
        .map(|p| p.addr.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let client_ip = access::client_ip(
        peer,
        req.headers(),
        &state.settings().access.trusted_proxies,
    );
    req.extensions_mut().insert(Classified { group, client_ip });
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
    state.metrics.http_in_flight.inc();
    let resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    state.metrics.http_in_flight.dec();
    let status = resp.status().as_u16();
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
    resp
}

async fn allow_ip(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(c) = req.extensions().get::<Classified>().copied() else {
        return GatewayError::Internal("request was not classified".into()).into_response();
    };
    match state.settings().access.allow[c.group.index()].admit(c.client_ip) {
        access::Admit::Anyone => {
            tracing::Span::current().record("allow_rule", "any");
            next.run(req).await
        }
        access::Admit::Rule(rule) => {
            tracing::Span::current().record("allow_rule", tracing::field::display(rule));
            tracing::debug!(client = %c.client_ip, rule = %rule, group = c.group.as_str(), "allowlist matched");
            next.run(req).await
        }
        access::Admit::Denied => {
            state
                .metrics
                .ip_denials
                .with_label_values(&[c.group.as_str()])
                .inc();
            tracing::warn!(client = %c.client_ip, group = c.group.as_str(), "client address not in the allowlist");
            GatewayError::IpDenied.into_response()
        }
    }
}

async fn body_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let group = req
        .extensions()
        .get::<Classified>()
        .map_or(RouteGroup::Proxy, |c| c.group);
    let limit = state.settings().server.body_limits[group.index()];
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        tracing::info!(declared, limit, "request body over the route group's limit");
        return GatewayError::PayloadTooLarge.into_response();
    }
    let (parts, body) = req.into_parts();
    let limited = Body::new(http_body_util::Limited::new(
        body,
        usize::try_from(limit).unwrap_or(usize::MAX),
    ));
    next.run(Request::from_parts(parts, limited)).await
}

/// Whether a body error came from the body limit (→ 413).
pub fn is_body_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The admin listener: metrics and health.
pub fn admin_router(state: AppState) -> Router {
    use axum::routing::get;
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/deliveries", get(crate::host_face::list_deliveries))
        .route(
            "/deliveries/{id}/discard",
            axum::routing::post(crate::host_face::discard_delivery),
        )
        .route(
            "/deliveries/{id}/retry",
            axum::routing::post(crate::host_face::retry_delivery),
        )
        .route("/recovery", get(crate::client_face::list_recovery))
        .with_state(state)
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    if let Ok(n) = state.locks.held().await {
        state.metrics.locks_held.set(n as i64);
    }
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let upstream_ok = state.settings().docs.healthcheck_interval.is_none()
        || state.upstream.healthy.load(Ordering::Relaxed);
    if state.ready.load(Ordering::Acquire) && upstream_ok {
        "ready\n".into_response()
    } else {
        let why = if state.ready.load(Ordering::Acquire) {
            "upstream Docs unreachable\n"
        } else {
            "starting\n"
        };
        (http::StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
}
