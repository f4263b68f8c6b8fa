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
pub(crate) struct AppState(Arc<Shared>);

impl Shared {
    /// The settings in force (a cheap snapshot; a reload does not change it under you).
    pub(crate) fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Installs reloaded settings.
    pub(crate) fn store_settings(&self, settings: Arc<Settings>) {
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
pub(crate) struct Shared {
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
    /// The readiness last logged (0 none yet, 1 ready, 2 not ready).
    reported_readiness: std::sync::atomic::AtomicU8,
}

impl AppState {
    /// Builds the state.
    pub(crate) fn new(
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
            reported_readiness: std::sync::atomic::AtomicU8::new(0),
        }))
    }
}

/// Whether a body error came from the body limit (→ 413).
pub(crate) fn is_body_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The admin listener: metrics and health (open), and the operator routes (behind
/// `server.admin_token_file` when it is set).
pub(crate) fn admin_router(state: AppState) -> Router {
    use axum::routing::get;
    let operator = Router::new()
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
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_admin_token,
        ));
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(operator)
        .with_state(state)
}

/// `Authorization: Bearer <server.admin_token_file>` on the operator routes (401 otherwise).
async fn require_admin_token(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(expected) = state.settings().server.admin_token.clone() else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    match given {
        Some(t) if expected.matches(t.trim().as_bytes()) => next.run(req).await,
        Some(_) => {
            state.metrics.count_admin_denied();
            crate::error::GatewayError::Unauthorized(
                "admin token refused (server.admin_token_file)".into(),
            )
            .into_response()
        }
        None => {
            state.metrics.count_admin_denied();
            let mut resp = crate::error::GatewayError::Unauthorized(
                "the admin API needs Authorization: Bearer <token of server.admin_token_file>"
                    .into(),
            )
            .into_response();
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"wopi-gateway admin\""),
            );
            resp
        }
    }
}

/// Why the gateway is not ready, or `Ok` when it is (`/readyz`).
pub(crate) fn readiness(state: &AppState) -> Result<(), &'static str> {
    if !state.ready.load(Ordering::Acquire) {
        return Err("starting");
    }
    if state.settings().docs.healthcheck_interval.is_some()
        && !state.upstream.healthy.load(Ordering::Relaxed)
    {
        return Err("upstream Docs unreachable");
    }
    Ok(())
}

/// Logs a change of [`readiness`], once per change (ready → not ready and back).
pub(crate) fn report_readiness(state: &AppState) {
    if !state.ready.load(Ordering::Acquire) {
        // Startup reports once it is done; "starting" is not a change worth a line.
        return;
    }
    let now = readiness(state);
    let code = match now {
        Ok(()) => 1,
        Err(_) => 2,
    };
    if state.reported_readiness.swap(code, Ordering::AcqRel) == code {
        return;
    }
    match now {
        Ok(()) => tracing::info!("ready"),
        Err(why) => tracing::warn!(reason = why, "not ready: {why} (/readyz answers 503)"),
    }
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
    match readiness(&state) {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (http::StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}
