//! The shared state and the admin routes. The request path itself is in [`crate::stack`].

use crate::host_face::HostFace;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::upstream::HttpClient;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
    /// Source of request ids (the request span's `request_id`).
    pub request_ids: AtomicU64,
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
