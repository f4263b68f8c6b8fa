//! Per-Docs-key state: co-editors of one document share one key, one lock and one session.
//!
//! The state is in the shared state (memory for one instance, Redis for several), so Docs'
//! download, its callbacks, Save As and Rename may land on any instance. Work on one key is
//! serialised across the cluster by the key's mutex ([`Editors::get`] holds it until the
//! [`EditorGuard`] goes, and writes the state back then).

use crate::cluster::{Keep, Shared, SharedError, SharedGuard};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// One user's credentials for the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserAuth {
    /// The access token the host gave (form field).
    pub token: String,
    /// Its expiry, Unix ms (0 = unknown).
    pub ttl_ms: u64,
    /// Whether this user opened in edit mode (the token may write).
    pub can_write: bool,
}

/// One editing (or viewing) session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Editor {
    /// The host's WOPISrc.
    pub wopi_src: String,
    /// Lower-case extension.
    pub ext: String,
    /// The file's name on the host (`BaseFileName`).
    pub name: String,
    /// Edit session (holds a lock) or view.
    pub edit: bool,
    /// Whether the host supports locks.
    pub supports_locks: bool,
    /// The lock id held on the host, when locked.
    pub lock_id: Option<String>,
    /// Users by id.
    pub users: HashMap<String, UserAuth>,
    /// `Version` at open, or the `X-WOPI-ItemVersion` of the last PutFile answer (`None`
    /// once a save gave no version).
    pub version: Option<String>,
    /// `LastModifiedTime` at open or from the host's last PutFile answer (Nextcloud style).
    pub last_modified: Option<String>,
    /// The host's `FileNameMaxLength` at open (without the extension): a rename is cut to it.
    #[serde(default)]
    pub name_max_length: Option<u64>,
}

impl Editor {
    /// What the file must still be for a lost lock to be taken again.
    pub(crate) fn expected(&self) -> super::host::Expected {
        super::host::Expected {
            version: self.version.clone(),
            last_modified: self.last_modified.clone(),
        }
    }

    /// A token usable for writing: the preferred users first, then any write-capable one.
    /// Tokens expiring within a minute are skipped.
    pub(crate) fn write_token(&self, preferred: &[String], now_ms: u64) -> Option<&str> {
        let valid = |a: &&UserAuth| a.can_write && (a.ttl_ms == 0 || a.ttl_ms > now_ms + 60_000);
        preferred
            .iter()
            .filter_map(|u| self.users.get(u))
            .find(valid)
            .or_else(|| self.users.values().find(valid))
            .map(|a| a.token.as_str())
    }

    /// Any token still valid (reads).
    pub(crate) fn read_token(&self, now_ms: u64) -> Option<&str> {
        self.write_token(&[], now_ms).or_else(|| {
            self.users
                .values()
                .find(|a| a.ttl_ms == 0 || a.ttl_ms > now_ms)
                .map(|a| a.token.as_str())
        })
    }
}

/// Editor states by Docs key.
pub(crate) const NS_EDITOR: &str = "editor";
const NS_EDITOR_MUTEX: &str = "editor-mutex";
/// The live editing session of each file: WOPISrc (hashed) → its Docs key. Every edit
/// opening of the file joins that session while it lives, whatever `Version` the host reports
/// (a force-save changes it); the entry ends with the session.
const NS_LIVE: &str = "editing-by-src";
/// Keys finished recently (Docs may resend a status 2).
const NS_FINISHED: &str = "finished";
/// How long a finished key is remembered.
const FINISHED_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a callback waits for another one on the same key (e.g. a large save).
const MUTEX_WAIT: Duration = Duration::from_secs(120);

/// Every session, in the shared state.
#[derive(Debug, Clone)]
pub(crate) struct Editors {
    shared: Shared,
}

/// A session under its key's mutex. Written back to the shared state when it goes (unless
/// [`EditorGuard::finish`] ended it), then the mutex is released.
pub(crate) struct EditorGuard {
    key: String,
    editor: Editor,
    shared: Shared,
    guard: Option<SharedGuard>,
    dirty: bool,
}

impl std::fmt::Debug for EditorGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EditorGuard")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for EditorGuard {
    type Target = Editor;
    fn deref(&self) -> &Editor {
        &self.editor
    }
}

impl std::ops::DerefMut for EditorGuard {
    fn deref_mut(&mut self) -> &mut Editor {
        self.dirty = true;
        &mut self.editor
    }
}

impl EditorGuard {
    /// The session's Docs key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Writes the state now (errors reach the caller), on enough replicas with
    /// `cluster.redis_min_replicas_acked`.
    pub(crate) async fn save(&mut self) -> Result<(), SharedError> {
        self.shared
            .put_json(NS_EDITOR, &self.key, &self.editor, Keep::ListedAcked)
            .await?;
        self.dirty = false;
        Ok(())
    }

    /// Ends the session: forgets its state (and, for an editing session, the file's entry in
    /// the live index), remembers its key for resent callbacks.
    pub(crate) async fn finish(mut self) {
        self.dirty = false;
        if self.editor.edit {
            let src = src_id(&self.editor.wopi_src);
            match self.shared.get(NS_LIVE, &src).await {
                Ok(Some(k)) if *k == *self.key.as_bytes() => {
                    if let Err(e) = self.shared.delete(NS_LIVE, &src).await {
                        tracing::error!(key = %self.key, error = %e, "cannot end the file's live editing session in the index");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(key = %self.key, error = %e, "cannot read the file's live editing session")
                }
            }
        }
        if let Err(e) = self.shared.delete(NS_EDITOR, &self.key).await {
            tracing::error!(key = %self.key, error = %e, "cannot remove a finished editor state");
        }
        if let Err(e) = self
            .shared
            .put(NS_FINISHED, &self.key, Vec::new(), Keep::For(FINISHED_TTL))
            .await
        {
            tracing::warn!(key = %self.key, error = %e, "cannot remember a finished key");
        }
    }
}

impl Drop for EditorGuard {
    fn drop(&mut self) {
        let guard = self.guard.take();
        if !self.dirty {
            return;
        }
        // Written back before the mutex is released, so the next holder reads it.
        let (shared, key, editor) = (self.shared.clone(), self.key.clone(), self.editor.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = shared
                    .put_json(NS_EDITOR, &key, &editor, Keep::Listed)
                    .await
                {
                    tracing::error!(key, error = %e, "cannot write the editor state back");
                }
                drop(guard);
            });
        }
    }
}

impl Editors {
    /// The sessions in `shared`.
    pub(crate) fn new(shared: Shared) -> Self {
        Editors { shared }
    }

    /// The session of a key, under its mutex.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<EditorGuard>, SharedError> {
        let guard = self.shared.mutex(NS_EDITOR_MUTEX, key, MUTEX_WAIT).await?;
        Ok(self
            .shared
            .get_json::<Editor>(NS_EDITOR, key)
            .await?
            .map(|editor| EditorGuard {
                key: key.to_owned(),
                editor,
                shared: self.shared.clone(),
                guard: Some(guard),
                dirty: false,
            }))
    }

    /// The session of a key under its mutex, created by `init` when missing.
    pub(crate) async fn get_or_insert(
        &self,
        key: &str,
        init: impl FnOnce() -> Editor,
    ) -> Result<EditorGuard, SharedError> {
        let guard = self.shared.mutex(NS_EDITOR_MUTEX, key, MUTEX_WAIT).await?;
        let (editor, dirty) = match self.shared.get_json::<Editor>(NS_EDITOR, key).await? {
            Some(e) => (e, false),
            None => (init(), true),
        };
        Ok(EditorGuard {
            key: key.to_owned(),
            editor,
            shared: self.shared.clone(),
            guard: Some(guard),
            dirty,
        })
    }

    /// The live editing session of `wopi_src`, under its key's mutex: the session every edit
    /// opening of the file joins. `None` when no editing session of the file lives.
    pub(crate) async fn live_edit(
        &self,
        wopi_src: &str,
    ) -> Result<Option<EditorGuard>, SharedError> {
        let Some(key) = self.shared.get(NS_LIVE, &src_id(wopi_src)).await? else {
            return Ok(None);
        };
        let key = String::from_utf8_lossy(&key).into_owned();
        Ok(self
            .get(&key)
            .await?
            .filter(|s| s.edit && s.wopi_src == wopi_src))
    }

    /// Records `key` as the live editing session of `wopi_src`.
    pub(crate) async fn note_live_edit(
        &self,
        wopi_src: &str,
        key: &str,
    ) -> Result<(), SharedError> {
        self.shared
            .put(
                NS_LIVE,
                &src_id(wopi_src),
                key.as_bytes().to_vec(),
                Keep::Listed,
            )
            .await
    }

    /// The keys of every open session.
    pub(crate) async fn keys(&self) -> Result<Vec<String>, SharedError> {
        self.shared.ids(NS_EDITOR).await
    }

    /// A session's state without its mutex (a snapshot).
    pub(crate) async fn peek(&self, key: &str) -> Result<Option<Editor>, SharedError> {
        self.shared.get_json(NS_EDITOR, key).await
    }

    /// Whether a key finished recently.
    pub(crate) async fn finished_recently(&self, key: &str) -> Result<bool, SharedError> {
        Ok(self.shared.get(NS_FINISHED, key).await?.is_some())
    }
}

/// A WOPISrc as an id of the shared state (`[0-9A-Za-z_-]`).
fn src_id(wopi_src: &str) -> String {
    use base64::Engine as _;
    let d = ring::digest::digest(&ring::digest::SHA256, wopi_src.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}
