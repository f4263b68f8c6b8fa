//! wopi-gateway's server: listeners, the request path, the host face, the client face and
//! the reverse proxy, on typed [`Settings`].
//!
//! [`run`] takes already-bound listeners and a shutdown token, so tests can bind port 0 and
//! stop it cleanly; the binary does TOML, signals and logging.
//!
//! # Layout
//! - [`settings`]: typed settings and their defaults.
//! - [`access`]: route groups, client address, IP allowlists.
//! - [`app`]: shared state and the admin routes.
//! - [`stack`]: the request path, one tower stack around the whole public router.
//! - [`server`]: accept loops, TLS, timeouts, graceful shutdown.
//! - [`error`]: [`GatewayError`], the one place errors become responses.
//! - [`metrics`]: Prometheus families.
//! - [`upstream`]: the pooled outgoing HTTP client.
//! - [`reload`]: hot reload on SIGHUP.
//! - [`proxy`]: the reverse proxy to ONLYOFFICE Docs (HTTP and WebSockets).
//! - [`client_face`]: WOPI hosts get ONLYOFFICE Docs through the Docs API.
//! - [`host_face`]: WOPI endpoints for storages that speak only the Docs API.
//! - [`discovery_cache`]: trusted WOPI clients' discovery (proof keys, actions).
//! - [`spool`]: durable staging of content on disk.
//! - [`urls`]: allowed-origin checks and redaction of secrets from logged text.

mod access;
mod app;
mod client_face;
mod discovery_cache;
mod error;
mod host_face;
mod metrics;
mod proxy;
mod random;
mod reload;
mod server;
pub mod settings;
mod spool;
mod stack;
mod upstream;
mod urls;

// What the binary (CLI, doctor, check-config, logging) uses; everything else is internal.
pub use access::{AllowList, RouteGroup};
pub use host_face::wopi::iso_time;
pub use metrics::Metrics;
pub use reload::Reload;
pub use server::CertResolver;
pub use settings::Settings;
pub use upstream::{HttpClient, OutBody};
pub use urls::redact;

use app::AppState;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The bound sockets the gateway serves on.
#[derive(Debug)]
pub struct Listeners {
    /// The public listener.
    pub public: TcpListener,
    /// The admin listener.
    pub admin: TcpListener,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS certificate or key unusable.
    #[error("server.tls: {0}")]
    Tls(String),
    /// The lock store could not be reached.
    #[error("locks: {0}")]
    Locks(String),
    /// The data directory is unusable.
    #[error("server.data_dir: {0}")]
    DataDir(String),
    /// The host face could not open its spool or secret.
    #[error("{0}")]
    HostFace(String),
}

/// Runs the gateway until `shutdown` is cancelled.
pub async fn run(
    listeners: Listeners,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    run_with_reload(listeners, settings, shutdown, rx).await
}

/// Runs the gateway until `shutdown` is cancelled, applying every settings reload received.
pub async fn run_with_reload(
    listeners: Listeners,
    settings: Settings,
    shutdown: CancellationToken,
    mut reloads: tokio::sync::mpsc::UnboundedReceiver<reload::Reload>,
) -> Result<(), StartError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = Arc::new(settings);
    std::fs::create_dir_all(&settings.server.data_dir)
        .map_err(|e| StartError::DataDir(format!("{}: {e}", settings.server.data_dir.display())))?;
    let (tls, cert_resolver) = match settings
        .server
        .tls
        .as_ref()
        .map(server::tls_acceptor)
        .transpose()
        .map_err(StartError::Tls)?
    {
        Some((acceptor, resolver)) => (Some(acceptor), Some(resolver)),
        None => (None, None),
    };
    let (state, expiries) = open_state(settings.clone()).await?;
    if settings.host_face.proof == settings::ProofMode::Off {
        tracing::warn!(
            "host_face.proof = \"off\": WOPI proofs are NOT checked; use this only in test setups"
        );
    }
    if settings.docs.jwt_secret.is_none() {
        tracing::warn!(
            "docs.jwt_secret is not set: the client face (/hosting/wopi/…) answers 503 until it is (docs.jwt_secret, _file or _env)"
        );
    }
    if settings.host_face.integrators.is_empty() {
        tracing::info!(
            "no [[host_face.integrator]]: the host face opens no sessions until one is configured"
        );
    }
    host_face::spawn_expiry_consumer(state.clone(), expiries);
    tokio::spawn(
        state
            .host
            .deliveries
            .clone()
            .run(state.clone(), shutdown.clone()),
    );
    state
        .host
        .discovery
        .spawn_refresher(settings.host_face.discovery_refresh, shutdown.clone());

    if let Some(every) = settings.docs.healthcheck_interval {
        proxy::spawn_health_checker(state.clone(), every, shutdown.clone());
    }
    let public = stack::public_service(public_routes(&state), &state);
    let admin = app::admin_router(state.clone());
    let limits = server::ConnLimits {
        header_read_timeout: settings.server.header_read_timeout,
        idle_timeout: settings.server.idle_timeout,
    };
    let grace = settings.server.shutdown_grace;
    let admin_task = tokio::spawn(server::serve(
        listeners.admin,
        admin,
        None,
        limits,
        state.metrics.clone(),
        shutdown.clone(),
        grace,
    ));
    // Startup work before the public listener serves: the trusted WOPI clients' keys must be
    // known before the first WOPI call. Connections wait in the accept queue meanwhile.
    state.host.discovery.refresh_all().await;
    state
        .metrics
        .spool_bytes
        .set(spool::disk_usage(&settings.server.data_dir.join("spool")) as i64);
    state
        .metrics
        .recovery
        .set(client_face::docs::count_recovery(&state.client.spool.join("recovery")).await as i64);
    let public_task = tokio::spawn(server::serve(
        listeners.public,
        public,
        tls,
        limits,
        state.metrics.clone(),
        shutdown.clone(),
        grace,
    ));
    state.ready.store(true, Ordering::Release);
    {
        let state = state.clone();
        tokio::spawn(async move {
            while let Some(r) = reloads.recv().await {
                reload::apply(&state, cert_resolver.as_deref(), r).await;
            }
        });
    }
    app::report_readiness(&state);
    let _ = public_task.await;
    let _ = admin_task.await;
    tracing::info!("stopped");
    Ok(())
}

type Expiries = tokio::sync::mpsc::UnboundedReceiver<locks::ExpiryEvent>;

/// Opens everything the request path needs: metrics, the lock store, the outgoing client,
/// both faces' state. No task is spawned and no socket is bound.
async fn open_state(settings: Arc<Settings>) -> Result<(AppState, Expiries), StartError> {
    let metrics = metrics::Metrics::register();
    let (store, expiries) = open_lock_store(&settings, &metrics).await?;
    let http = upstream::HttpClient::with_ca(
        settings.upstream.connect_timeout,
        settings.upstream.request_timeout,
        metrics.clone(),
        settings.docs.ca_file.as_deref(),
    )
    .map_err(|e| StartError::HostFace(format!("docs.ca_file: {e}")))?;
    let upstream =
        proxy::Upstream::new(&metrics, &settings.docs.url).map_err(StartError::HostFace)?;
    let host = host_face::HostFace::open(&settings, http.clone(), metrics.clone())
        .await
        .map_err(StartError::HostFace)?;
    let client = client_face::ClientFace::open(&settings).map_err(StartError::HostFace)?;
    let state = AppState::new(settings, metrics, store, http, host, upstream, client);
    Ok((state, expiries))
}

/// Every public route: the host face, the client face, and the proxy for the rest.
fn public_routes(state: &AppState) -> axum::Router {
    host_face::routes()
        .merge(client_face::routes())
        .fallback(proxy::handle)
        .with_state(state.clone())
}

/// A state and the public service on `settings`, for tests of the stack (no listener).
#[cfg(test)]
pub(crate) async fn test_service(settings: Settings) -> (AppState, stack::PublicService) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    #[allow(clippy::unwrap_used)]
    std::fs::create_dir_all(&settings.server.data_dir).unwrap();
    #[allow(clippy::unwrap_used)]
    let (state, _) = open_state(Arc::new(settings)).await.unwrap();
    let svc = stack::public_service(public_routes(&state), &state);
    (state, svc)
}

async fn open_lock_store(
    settings: &Settings,
    metrics: &metrics::Metrics,
) -> Result<(Arc<dyn locks::LockStore>, Expiries), StartError> {
    let observer: Arc<dyn locks::SweepObserver> = Arc::new(metrics.clone());
    let clock: Arc<dyn locks::Clock> = Arc::new(locks::SystemClock);
    match &settings.locks.kind {
        settings::LockStoreKind::Memory => {
            let (store, rx) = locks::MemoryLockStore::new(settings.locks.store, clock);
            store.spawn_sweeper(Some(observer));
            Ok((Arc::new(store), rx))
        }
        settings::LockStoreKind::Redis { url, prefix } => {
            let (store, rx) = locks::RedisLockStore::connect(
                url,
                prefix,
                settings.locks.store,
                clock,
                std::time::Duration::from_secs(5),
            )
            .await
            .map_err(|e| StartError::Locks(e.to_string()))?;
            store.spawn_sweeper(Some(observer));
            Ok((Arc::new(store), rx))
        }
    }
}
