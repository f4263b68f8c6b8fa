//! The composition root: opens the core and the faces, wires the public and admin routers,
//! starts the background tasks and the listeners, and applies reloads. Nothing below imports
//! this module.

use crate::error::GatewayError;
use crate::settings::{self, Settings};
use crate::state::{Core, Ctx};
use crate::{
    client_face, clock, cluster, content, host_face, http_client, metrics, proxy, reload, server,
    spool, stack,
};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
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
    /// Redis (`[cluster]`) could not be reached.
    #[error("cluster (Redis): {0}")]
    Cluster(String),
    /// The content store could not be opened.
    #[error("content store: {0}")]
    Content(String),
    /// The host face could not open its spool or secret.
    #[error("{0}")]
    HostFace(String),
    /// The connection threads could not start.
    #[error("server.connection_threads: {0}")]
    Listen(String),
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
    let (app, expiries) = App::open(settings.clone()).await?;
    let (core, host, client) = (app.core.clone(), app.host.clone(), app.client.clone());
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
    host_face::editing::spawn_expiry_consumer(host.clone(), expiries);
    tokio::spawn(
        host.face
            .deliveries
            .clone()
            .run(host.clone(), shutdown.clone()),
    );
    host_face::editing::spawn_idle_sweeper(host.clone(), shutdown.clone());
    client_face::editor::spawn_refresh_loop(client.clone(), shutdown.clone());
    host_face::janitor::spawn(
        host.clone(),
        (settings.host_face.download_url_ttl / 2).clamp(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(600),
        ),
        shutdown.clone(),
    );
    crate::state::spawn_backend_checker(
        core.clone(),
        std::time::Duration::from_secs(1),
        shutdown.clone(),
    );
    host.face
        .discovery
        .spawn_refresher(settings.host_face.discovery_refresh, shutdown.clone());

    if let Some(every) = settings.docs.healthcheck_interval {
        proxy::spawn_health_checker(app.proxy.clone(), every, shutdown.clone());
    }
    let admission = stack::Admission::new(&core);
    let public = stack::public_service(
        app.public_routes(),
        app.proxy_routes(),
        &core,
        admission.clone(),
    );
    // Plain connections meet the proxy's fast path first (docs/architecture.md).
    let front = Some(proxy::FastProxy::new(app.proxy.clone(), admission) as Arc<dyn server::Front>);
    let admin = app.admin_routes();
    let limits = server::ConnLimits {
        header_read_timeout: settings.server.header_read_timeout,
        idle_timeout: settings.server.idle_timeout,
        body_idle_timeout: settings.server.body_idle_timeout,
        head: h1::Limits {
            max_head_bytes: settings.server.max_head_bytes,
            max_headers: settings.server.max_headers,
        },
    };
    let grace = settings.server.shutdown_grace;
    let admin_task = tokio::spawn(server::serve(
        listeners.admin,
        admin,
        None,
        None,
        limits,
        core.metrics.clone(),
        shutdown.clone(),
        grace,
        None,
        server::Cap {
            max_connections: 0,
            role: "admin",
            count: false,
        },
    ));
    // Startup work before the public listener serves: the trusted WOPI clients' keys must be
    // known before the first WOPI call. Connections wait in the accept queue meanwhile.
    host.face.discovery.refresh_all().await;
    core.metrics.spool_bytes.set(
        (core.content.usage() + spool::disk_usage(&settings.server.data_dir.join("spool"))) as i64,
    );
    core.metrics
        .recovery
        .set(client_face::saves::count_recovery(&client).await as i64);
    // Connection threads (docs/architecture.md, "Threads").
    let threads = match settings.server.connection_threads {
        0 => None,
        n => Some(
            server::ConnThreads::start(n, |i| proxy::fast::set_lane(i + 1))
                .map_err(|e| StartError::Listen(format!("connection threads: {e}")))?,
        ),
    };
    let public_task = tokio::spawn(server::serve(
        listeners.public,
        public,
        front,
        tls,
        limits,
        core.metrics.clone(),
        shutdown.clone(),
        grace,
        threads.clone(),
        server::Cap {
            max_connections: match settings.server.max_connections {
                0 => crate::settings::max_connections_auto(),
                n => n,
            },
            role: "public",
            count: true,
        },
    ));
    core.ready.store(true, Ordering::Release);
    {
        let app = app.clone();
        tokio::spawn(async move {
            while let Some(r) = reloads.recv().await {
                reload::apply(
                    &app.core,
                    &app.host,
                    &app.client,
                    cert_resolver.as_deref(),
                    r,
                )
                .await;
            }
        });
    }
    core.report_readiness();
    let _ = public_task.await;
    if let Some(threads) = threads {
        let _ = tokio::task::spawn_blocking(move || threads.stop()).await;
    }
    let _ = admin_task.await;
    tracing::info!("stopped");
    Ok(())
}

type Expiries = tokio::sync::mpsc::UnboundedReceiver<locks::ExpiryEvent>;

/// Everything the gateway runs, composed: the shared core and each face's handle.
#[derive(Debug, Clone)]
struct App {
    core: Arc<Core>,
    host: host_face::HostCtx,
    client: client_face::ClientCtx,
    proxy: proxy::ProxyCtx,
}

impl App {
    /// Opens everything the request path needs: metrics, the lock store, the outgoing
    /// client, both faces' state. No task is spawned and no socket is bound.
    async fn open(settings: Arc<Settings>) -> Result<(App, Expiries), StartError> {
        let metrics = metrics::Metrics::register();
        let clock: Arc<dyn clock::Clock> = Arc::new(locks::SystemClock);
        let (store, expiries) = open_lock_store(&settings, &metrics, clock.clone()).await?;
        let http = http_client::HttpClient::with_ca(
            settings.upstream.connect_timeout,
            settings.upstream.request_timeout,
            metrics.clone(),
            settings.docs.ca_file.as_deref(),
        )
        .map_err(|e| StartError::HostFace(format!("docs.ca_file: {e}")))?;
        let upstream =
            proxy::DocsUpstream::new(&metrics, &settings.docs.url).map_err(StartError::HostFace)?;
        let (shared, content) = open_shared(&settings, clock.clone(), http.clone()).await?;
        if !shared.is_clustered() {
            host_face::migrate::run(&settings.server.data_dir, &shared, &content)
                .await
                .map_err(|e| StartError::DataDir(format!("moving the earlier spool: {e}")))?;
            host_face::migrate::run_recovery(&settings.server.data_dir, &shared, &content)
                .await
                .map_err(|e| {
                    StartError::DataDir(format!("moving the earlier recovery copies: {e}"))
                })?;
        }
        let mode = if shared.is_clustered() {
            "cluster"
        } else {
            "single"
        };
        metrics.set_instance(&settings.cluster.instance_id, mode);
        tracing::info!(
            instance = %settings.cluster.instance_id,
            mode,
            content = %content.describe(),
            "shared state opened"
        );
        let host = host_face::HostFace::open(
            &settings,
            http.clone(),
            metrics.clone(),
            clock.clone(),
            &shared,
        )
        .await
        .map_err(StartError::HostFace)?;
        let client =
            client_face::ClientFace::open(&settings, &shared).map_err(StartError::HostFace)?;
        let core = Arc::new(Core::new(
            settings, metrics, store, clock, http, shared, content,
        ));
        let app = App {
            host: Ctx::new(core.clone(), host),
            client: Ctx::new(core.clone(), client),
            proxy: Ctx::new(core.clone(), upstream),
            core,
        };
        Ok((app, expiries))
    }

    /// The proxy alone (the request path sends the proxy group here directly).
    fn proxy_routes(&self) -> Router {
        let (host, upstream) = (self.host.clone(), self.proxy.clone());
        // Docs' command service: host-face documents' commands are answered by the gateway.
        let command = axum::routing::any(move |req: axum::extract::Request| {
            host_face::command::handle(host.clone(), upstream.clone(), req)
        });
        let [ashx, short] = host_face::command::COMMAND_PATHS;
        Router::new()
            .route(ashx, command.clone())
            .route(short, command)
            .fallback(proxy::handle)
            .with_state(self.proxy.clone())
    }

    /// Every public route: the host face, the client face, and the proxy for the rest.
    fn public_routes(&self) -> Router {
        host_face::routes()
            .with_state(self.host.clone())
            .merge(client_face::routes().with_state(self.client.clone()))
            .fallback_service(
                Router::new()
                    .fallback(proxy::handle)
                    .with_state(self.proxy.clone()),
            )
    }

    /// The admin listener: metrics and health (open), and the faces' operator routes
    /// (behind `server.admin_token_file` when it is set).
    fn admin_routes(&self) -> Router {
        use axum::routing::get;
        let operator = host_face::admin_routes()
            .with_state(self.host.clone())
            .merge(client_face::admin_routes().with_state(self.client.clone()))
            .route_layer(axum::middleware::from_fn_with_state(
                self.core.clone(),
                require_admin_token,
            ));
        Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .with_state(self.core.clone())
            .merge(operator)
    }
}

/// A core and the public service on `settings`, for tests of the stack (no listener).
#[cfg(test)]
pub(crate) async fn test_service(settings: Settings) -> (Arc<Core>, stack::PublicService) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    #[allow(clippy::unwrap_used)]
    std::fs::create_dir_all(&settings.server.data_dir).unwrap();
    #[allow(clippy::unwrap_used)]
    let (app, _) = App::open(Arc::new(settings)).await.unwrap();
    let admission = stack::Admission::new(&app.core);
    let svc = stack::public_service(
        app.public_routes(),
        app.proxy_routes(),
        &app.core,
        admission,
    );
    (app.core, svc)
}

/// The shared state (memory or Redis) and the content store.
async fn open_shared(
    settings: &Settings,
    clock: Arc<dyn clock::Clock>,
    http: http_client::HttpClient,
) -> Result<(cluster::Shared, content::ContentStore), StartError> {
    let instance = &settings.cluster.instance_id;
    let shared = match &settings.cluster.redis {
        None => {
            let dir = settings.server.data_dir.join("state");
            cluster::Shared::local(Some(dir.clone()), instance, clock).map_err(|e| {
                StartError::DataDir(format!("local state unavailable ({}): {e}", dir.display()))
            })?
        }
        Some(redis) => cluster::Shared::redis(
            redis,
            &settings.cluster.key_prefix,
            instance,
            clock,
            std::time::Duration::from_secs(5),
        )
        .await
        .map_err(|e| StartError::Cluster(format!("{}: {}", redis.describe(), e.detail)))?,
    };
    let content = match &settings.content {
        settings::ContentSettings::Fs { .. } => {
            let dir = settings.content_dir().unwrap_or_default();
            content::ContentStore::fs(dir.clone())
                .map_err(|e| StartError::Content(format!("{}: {e}", dir.display())))?
        }
        settings::ContentSettings::S3(s3) => content::ContentStore::s3(s3, http)
            .map_err(|e| StartError::Content(format!("content.s3: {e}")))?,
    };
    Ok((shared, content))
}

async fn open_lock_store(
    settings: &Settings,
    metrics: &metrics::Metrics,
    clock: Arc<dyn clock::Clock>,
) -> Result<(Arc<dyn locks::LockStore>, Expiries), StartError> {
    let observer: Arc<dyn locks::SweepObserver> = Arc::new(metrics.clone());
    match &settings.locks.kind {
        settings::LockStoreKind::Memory => {
            let (store, rx) = locks::MemoryLockStore::new(settings.locks.store, clock);
            store.spawn_sweeper(Some(observer));
            Ok((Arc::new(store), rx))
        }
        settings::LockStoreKind::Redis { redis, prefix } => {
            let (store, rx) = locks::RedisLockStore::connect(
                redis,
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

/// `Authorization: Bearer <server.admin_token_file>` on the operator routes (401 otherwise).
async fn require_admin_token(
    State(state): State<Arc<Core>>,
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
            GatewayError::Unauthorized("admin token refused (server.admin_token_file)".into())
                .into_response()
        }
        None => {
            state.metrics.count_admin_denied();
            let mut resp = GatewayError::Unauthorized(
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

async fn metrics_handler(State(core): State<Arc<Core>>) -> Response {
    if let Ok(n) = core.locks.held().await {
        core.metrics.locks_held.set(n as i64);
    }
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        core.metrics.render(),
    )
        .into_response()
}

async fn readyz(State(core): State<Arc<Core>>) -> Response {
    match core.readiness() {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (http::StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}
