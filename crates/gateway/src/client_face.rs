//! Client face: WOPI hosts use the gateway as their WOPI client, and get ONLYOFFICE Docs
//! through the full Docs API (docs/architecture.md; ONLYOFFICE Docs' own WOPI mode is the
//! reference behaviour).
//!
//! # Layout
//! - [`discovery`]: `/hosting/discovery` and `/hosting/capabilities`.
//! - [`editor`]: the action endpoint → CheckFileInfo, Lock, a signed Docs config, the page.
//! - [`docs`]: Docs' `document.url` download → GetFile, and Docs' request JWTs.
//! - [`callback`]: Docs' callbacks, every status in one place → Lock/PutFile/Unlock.
//! - [`host`]: signed WOPI calls to hosts.
//! - [`saves`]: saves to the host (PutFile, forms, recovery copies).
//! - [`actions`]: the page's Save As and Rename.
//! - [`command`]: ONLYOFFICE Docs' command service (the new title after a rename).
//! - [`editors`]: per-Docs-key editor state shared by co-editors.
//! - [`auth`]: Docs' request JWTs and the page's action token, as extractors.
//! - [`convert`], [`convert_and_edit`], [`convert_to`]: conversions through Docs' conversion API.

pub(crate) mod actions;
pub(crate) mod auth;
pub(crate) mod blank;
pub(crate) mod callback;
pub(crate) mod command;
pub(crate) mod convert;
pub(crate) mod convert_and_edit;
pub(crate) mod convert_to;
pub(crate) mod discovery;
pub(crate) mod docs;
pub(crate) mod editor;
pub(crate) mod editors;
pub(crate) mod host;
pub(crate) mod saves;

use crate::error::GatewayError;
use crate::settings::Settings;
use axum::Router;
use axum::routing::{get, post};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wopi::proof::SigningKey;

/// The client face's handle: the shared core and [`ClientFace`].
pub(crate) type ClientCtx = crate::state::Ctx<ClientFace>;

/// The gateway's proof keys.
#[derive(Debug)]
pub(crate) struct ProofKeyPair {
    /// Signs calls to WOPI hosts (published as the current key).
    pub current: Arc<SigningKey>,
    /// The previous key (published as old; signs X-WOPI-ProofOld).
    pub old: Option<Arc<SigningKey>>,
}

/// Client-face state. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ClientFace {
    keys: Arc<arc_swap::ArcSwap<ProofKeyPair>>,
    /// Editor state by Docs key (co-editors of one document share one).
    pub editors: editors::Editors,
    /// Where downloaded saves wait and recovery copies stay.
    pub spool: PathBuf,
    /// Conversions by ONLYOFFICE Docs.
    pub jobs: convert::Jobs,
    /// `convert-to` requests converting at once (`client_face.convert_to_max_concurrent`).
    pub convert_to_slots: Arc<tokio::sync::Semaphore>,
}

fn load_key(path: &Path) -> Result<SigningKey, String> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    SigningKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

impl ClientFace {
    /// The keys in force.
    pub(crate) fn keys(&self) -> Arc<ProofKeyPair> {
        self.keys.load_full()
    }

    /// Loads the keys `settings` name (for a reload): when the current key changes and no old
    /// key file is named, the previous current key becomes the old one, so hosts that cached
    /// the old discovery keep verifying.
    pub(crate) fn prepare_keys(&self, settings: &Settings) -> Result<ProofKeyPair, String> {
        let running = self.keys();
        let current = Arc::new(current_key(settings)?);
        let old = match &settings.client_face.proof_key_old_file {
            Some(p) => {
                Some(Arc::new(load_key(p).map_err(|e| {
                    format!("client_face.proof_key_old_file: {e}")
                })?))
            }
            None if current.public_key() != running.current.public_key() => {
                Some(running.current.clone())
            }
            None => running.old.clone(),
        };
        Ok(ProofKeyPair { current, old })
    }

    /// Installs keys prepared by [`Self::prepare_keys`].
    pub(crate) fn store_keys(&self, keys: ProofKeyPair) {
        self.keys.store(Arc::new(keys));
    }

    /// Loads (or generates into data_dir) the proof keys and opens the spool.
    pub(crate) fn open(
        settings: &Settings,
        shared: &crate::cluster::Shared,
    ) -> Result<Self, String> {
        let cf = &settings.client_face;
        let key = current_key(settings)?;
        let old_key = cf
            .proof_key_old_file
            .as_deref()
            .map(load_key)
            .transpose()
            .map_err(|e| format!("client_face.proof_key_old_file: {e}"))?
            .map(Arc::new);
        let spool = settings.server.data_dir.join("spool").join("client");
        std::fs::create_dir_all(&spool).map_err(|e| format!("spool {}: {e}", spool.display()))?;
        let keys = ProofKeyPair {
            current: Arc::new(key),
            old: old_key,
        };
        Ok(ClientFace {
            keys: Arc::new(arc_swap::ArcSwap::new(Arc::new(keys))),
            editors: editors::Editors::new(shared.clone()),
            spool,
            jobs: convert::Jobs::new(shared.clone()),
            convert_to_slots: Arc::new(tokio::sync::Semaphore::new(
                settings.client_face.convert_to_max_concurrent,
            )),
        })
    }
}

/// The current key: `client_face.proof_key_file`, else the one generated into data_dir.
fn current_key(settings: &Settings) -> Result<SigningKey, String> {
    let cf = &settings.client_face;
    {
        let key = match &cf.proof_key_file {
            Some(p) => load_key(p).map_err(|e| format!("client_face.proof_key_file: {e}"))?,
            None => {
                let path = settings.server.data_dir.join("proof-key.pem");
                if path.exists() {
                    load_key(&path)
                        .map_err(|e| format!("client_face.proof_key_file (generated): {e}"))?
                } else {
                    let key = SigningKey::generate().map_err(|e| e.to_string())?;
                    crate::spool::write_private(&path, key.to_pem().as_bytes())
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    tracing::info!(path = %path.display(), "generated the client-face proof key");
                    key
                }
            }
        };
        Ok(key)
    }
}

/// The client face's public routes.
pub(crate) fn routes() -> Router<ClientCtx> {
    Router::new()
        .route("/hosting/discovery", get(discovery::discovery))
        .route("/hosting/capabilities", get(discovery::capabilities))
        .route(
            "/hosting/wopi/{document_type}/{mode}",
            get(editor::open).post(editor::open),
        )
        .route(
            "/hosting/wopi/convert-and-edit/{ext}/{target}",
            get(convert_and_edit::convert_and_edit).post(convert_and_edit::convert_and_edit),
        )
        .route("/hosting/convert/{job}", get(convert_and_edit::status))
        .route("/cool/convert-to/{format}", post(convert_to::convert_to))
        .route("/lool/convert-to/{format}", post(convert_to::convert_to))
        .route("/docs/convert/{job}", get(convert::source))
        .route("/docs/files/{key}", get(docs::download))
        .route("/docs/callback/{key}", post(callback::callback))
        .route("/hosting/api/{key}/saveas", post(actions::save_as))
        .route("/hosting/api/{key}/rename", post(actions::rename))
        .route("/hosting/api/{key}/image", post(actions::insert_image))
        .route("/hosting/api/{key}/refresh", post(editor::refresh))
}

/// The client face's operator routes on the admin listener.
pub(crate) fn admin_routes() -> Router<ClientCtx> {
    Router::new()
        .route("/recovery", get(list_recovery))
        .route("/recovery/{id}", axum::routing::delete(delete_recovery))
}

/// `GET /recovery` on the admin listener: saves a WOPI host did not accept (cluster-wide).
pub(crate) async fn list_recovery(
    axum::extract::State(state): axum::extract::State<ClientCtx>,
) -> Result<axum::Json<serde_json::Value>, GatewayError> {
    let items: Vec<serde_json::Value> = state
        .shared
        .all_json(saves::NS_RECOVERY)
        .await?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    Ok(axum::Json(serde_json::json!({ "recovery": items })))
}

/// `DELETE /recovery/{id}` on the admin listener: the operator put the copy where it
/// belongs; the record and its content go.
pub(crate) async fn delete_recovery(
    axum::extract::State(state): axum::extract::State<ClientCtx>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<serde_json::Value>, GatewayError> {
    let record: serde_json::Value = state
        .shared
        .get_json(saves::NS_RECOVERY, &id)
        .await?
        .ok_or(GatewayError::NotFound("recovery copy"))?;
    if let Some(key) = record["content_key"].as_str() {
        state
            .content
            .delete(key)
            .await
            .map_err(GatewayError::content)?;
    }
    state.shared.delete(saves::NS_RECOVERY, &id).await?;
    state
        .metrics
        .recovery
        .set(saves::count_recovery(&state).await as i64);
    tracing::warn!(recovery = id, "recovery copy deleted by an operator");
    Ok(axum::Json(serde_json::json!({ "deleted": id })))
}
