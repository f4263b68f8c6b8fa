//! Host face: WOPI clients call `/wopi/files/{id}`; the gateway answers from the Docs-API flow
//! of a storage ("integrator") that only implemented the Docs API (docs/architecture.md).
//!
//! # Layout
//! - [`opening`]: opening a file — `POST /api/v1/sessions`, `GET /open`, `GET /api/v1/download/{id}`.
//! - [`auth`]: authentication of WOPI calls (proof, then access token) as an extractor.
//! - [`wopi`]: the WOPI endpoints: locks, content, CheckFileInfo, FileUrl.
//! - [`editing`]: the editing session of a file: who edits, when it ends (status 1/2/4).
//! - [`actions`]: Save As, Rename and Delete through the integrator's `actions_url`.
//! - [`command`]: Docs' command service for host-face documents.
//! - [`files`]: per-file state, persisted in the spool.
//! - [`deliveries`]: callbacks to integrators, retried until accepted, across restarts.
//! - [`token`]: the gateway's access tokens.

pub(crate) mod actions;
pub(crate) mod auth;
pub(crate) mod command;
pub(crate) mod deliveries;
pub(crate) mod editing;
pub(crate) mod files;
pub(crate) mod janitor;
pub(crate) mod migrate;
pub(crate) mod opening;
pub(crate) mod token;
pub(crate) mod wopi;

use crate::discovery_cache::DiscoveryCache;
use crate::error::GatewayError;
use crate::http_client::HttpClient;
use crate::metrics::Metrics;
use crate::settings::Settings;
use axum::Router;
use axum::routing::{any, get, post};
use dashmap::DashMap;
use deliveries::Deliveries;
use docs_api::Secret;
use files::Files;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Host-face state. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct HostFace {
    /// Signs access tokens and download URLs.
    pub token_secret: Secret,
    /// Signs FileUrl tokens: derived from the access-token secret, but a different key, so a
    /// FileUrl token is never an access token nor the other way round.
    pub fileurl_secret: Secret,
    /// Signs the host-page tokens of CheckFileInfo's `HostEditUrl` / `HostViewUrl`: derived
    /// like the FileUrl key, a key of its own (such a token is no access token).
    pub hostpage_secret: Secret,
    /// Per-file state.
    pub files: Files,
    /// Pending callbacks.
    pub deliveries: Deliveries,
    /// Trusted WOPI clients' discovery.
    pub discovery: DiscoveryCache,
    /// When this instance last wrote each file's activity stamp (Unix ms): throttles the
    /// shared stamp that ends lockless sessions.
    pub activity: Arc<DashMap<String, u64>>,
    /// The same per file and editor, for `host_face.editor_idle_timeout_seconds`.
    pub editor_activity: Arc<DashMap<String, u64>>,
    /// Access tokens already verified.
    pub verified_tokens: Arc<token::VerifiedTokens>,
    /// FileUrl tokens already signed.
    pub file_url_tokens: Arc<token::SignedTokens>,
    /// Host-page tokens already signed.
    pub host_page_tokens: Arc<token::SignedTokens>,
    /// Users dropped from each file by a `drop` command, as last read (see [`command`]).
    pub dropped: Arc<DashMap<String, command::DroppedSeen>>,
    /// Makes versions unique across instances.
    version_salt: String,
    version_seq: Arc<AtomicU64>,
    clock: Arc<dyn crate::clock::Clock>,
}

/// PutUserInfo values, per user, in the shared state.
pub(crate) const NS_USER_INFO: &str = "user-info";

/// The host face's handle: the shared core and [`HostFace`].
pub(crate) type HostCtx = crate::state::Ctx<HostFace>;

async fn load_or_create_secret(settings: &Settings) -> Result<String, String> {
    let path = settings
        .host_face
        .access_token_secret_file
        .clone()
        .unwrap_or_else(|| settings.server.data_dir.join("access-token.secret"));
    match tokio::fs::read_to_string(&path).await {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().to_owned()),
        Ok(_) => {
            return Err(format!(
                "host_face.access_token_secret_file: {} holds fewer than 32 characters",
                path.display()
            ));
        }
        Err(e)
            if e.kind() != std::io::ErrorKind::NotFound
                || settings.host_face.access_token_secret_file.is_some() =>
        {
            return Err(format!(
                "host_face.access_token_secret_file: cannot read {}: {e}",
                path.display()
            ));
        }
        Err(_) => {}
    }
    let secret = crate::random::hex::<32>().map_err(|e| e.to_string())?;
    crate::spool::write_private(&path, secret.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "generated the access-token secret");
    Ok(secret)
}

impl HostFace {
    /// Opens the spool (resuming saved files and deliveries) and the access-token secret.
    pub(crate) async fn open(
        settings: &Settings,
        http: HttpClient,
        metrics: Metrics,
        clock: Arc<dyn crate::clock::Clock>,
        shared: &crate::cluster::Shared,
    ) -> Result<Self, String> {
        let secret = load_or_create_secret(settings).await?;
        let fileurl_secret = Secret::new(format!("FileUrl\u{0}{secret}"));
        let hostpage_secret = Secret::new(format!("HostPage\u{0}{secret}"));
        let token_secret = Secret::new(secret);
        let files = Files::new(shared.clone());
        // Files opened by a release without the document-key index (the command service
        // finds files there only); the janitor repeats it.
        files
            .catch_up_index(&files.snapshot().await.map_err(|e| e.to_string())?)
            .await;
        let deliveries = Deliveries::new(shared.clone(), clock.clone())?;
        let discovery =
            DiscoveryCache::new(settings.host_face.discovery_urls.clone(), http, metrics);
        Ok(HostFace {
            token_secret,
            fileurl_secret,
            hostpage_secret,
            files,
            deliveries,
            discovery,
            activity: Arc::new(DashMap::new()),
            editor_activity: Arc::new(DashMap::new()),
            verified_tokens: Arc::new(token::VerifiedTokens::default()),
            file_url_tokens: Arc::new(token::SignedTokens::default()),
            host_page_tokens: Arc::new(token::SignedTokens::default()),
            dropped: Arc::new(DashMap::new()),
            version_salt: crate::random::hex::<3>().map_err(|e| e.to_string())?,
            version_seq: Arc::new(AtomicU64::new(0)),
            clock,
        })
    }

    /// A fresh, never repeating version string.
    pub(crate) fn next_version(&self) -> String {
        format!(
            "v{}.{}{}",
            self.clock.now_ms(),
            self.version_salt,
            self.version_seq.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// The host face's public routes.
pub(crate) fn routes() -> Router<HostCtx> {
    Router::new()
        .route("/api/v1/sessions", post(opening::open_session))
        .route("/open", get(opening::open_page))
        .route("/api/v1/download/{id}", get(opening::download))
        .route("/wopi/fileurl/{fid}", get(wopi::file_url))
        .route("/wopi/{*rest}", any(wopi::handle))
}

/// `GET /deliveries` on the admin listener: what waits to be delivered.
/// The host face's operator routes on the admin listener.
pub(crate) fn admin_routes() -> Router<HostCtx> {
    Router::new()
        .route("/deliveries", get(list_deliveries))
        .route("/deliveries/{id}/discard", post(discard_delivery))
        .route("/deliveries/{id}/retry", post(retry_delivery))
}

pub(crate) async fn list_deliveries(
    axum::extract::State(state): axum::extract::State<HostCtx>,
) -> Result<axum::Json<serde_json::Value>, GatewayError> {
    let list = state.face.deliveries.list().await?;
    Ok(axum::Json(json!({ "pending": list })))
}

fn act_error(e: deliveries::ActError) -> GatewayError {
    match e {
        deliveries::ActError::NotFound => GatewayError::NotFound("pending delivery"),
        deliveries::ActError::Busy => GatewayError::LockStoreUnavailable(
            "an instance is attempting this delivery right now; try again in a moment".into(),
        ),
        deliveries::ActError::Shared(e) => e.into(),
    }
}

/// `POST /deliveries/{id}/discard` on the admin listener.
pub(crate) async fn discard_delivery(
    axum::extract::State(state): axum::extract::State<HostCtx>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<serde_json::Value>, GatewayError> {
    state
        .face
        .deliveries
        .discard(&id)
        .await
        .map_err(act_error)?;
    Ok(axum::Json(json!({"discarded": id})))
}

/// `POST /deliveries/{id}/retry` on the admin listener: attempt it now.
pub(crate) async fn retry_delivery(
    axum::extract::State(state): axum::extract::State<HostCtx>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<serde_json::Value>, GatewayError> {
    state
        .face
        .deliveries
        .retry_now(&id)
        .await
        .map_err(act_error)?;
    Ok(axum::Json(json!({"retrying": id})))
}
