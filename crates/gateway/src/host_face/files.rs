//! Per-file state of the host face, in the shared state (data_dir for one instance, Redis
//! for several) so an edit survives a restart and every instance sees the same file.
//!
//! A file's content lives in the content store under `files/<file_id>/`: `orig-<n>.bin`
//! (downloaded from document.url) or `<version>.bin` (staged by PutFile).

use crate::cluster::{Keep, Shared, SharedError, SharedGuard};
use crate::spool;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the gateway knows of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileMeta {
    /// The stable file id.
    pub file_id: String,
    /// Integrator name.
    pub integrator: String,
    /// document.url of the current version.
    pub doc_url: String,
    /// document.key of the current version.
    pub doc_key: String,
    /// document.title
    pub title: String,
    /// document.fileType
    pub file_type: String,
    /// The owner as the integrator names it (first opener when unknown).
    pub owner_id: String,
    /// editorConfig.callbackUrl (of the last opener that had one).
    pub callback_url: Option<String>,
    /// WOPI Version: changes on every content change, never repeats.
    pub version: String,
    /// Content file name inside the file's folder (None until fetched).
    pub content: Option<String>,
    /// Content size.
    pub size: u64,
    /// Base64 SHA-256 of the content.
    pub sha256: String,
    /// Last content change, Unix ms.
    pub modified_ms: u64,
    /// Content came from a PutFile (not from document.url).
    pub staged: bool,
    /// A PutFile happened in the current editing session.
    pub session_modified: bool,
    /// The content changed since the last status 2/6 delivery.
    pub undelivered: bool,
    /// Users in the current editing session, in order of arrival.
    pub editors: Vec<String>,
    /// The user who last wrote.
    pub last_editor: Option<String>,
    /// The users whose changes the last PutFile held (its `X-WOPI-Editors`, else its user):
    /// the `users` of the status 2 that delivers it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_editors: Vec<String>,
}

/// One file's state, held under the file's mutex (cluster-wide with Redis): operations on
/// one file are serialised on every instance, different files never wait on each other.
/// The mutex is released when this goes.
#[derive(Debug)]
pub(crate) struct FileEntry {
    /// The state.
    pub meta: FileMeta,
    shared: Shared,
    _guard: SharedGuard,
}

/// The content-store key of a file's content named `name`.
pub(crate) fn content_key(file_id: &str, name: &str) -> String {
    format!("files/{file_id}/{name}")
}

impl FileEntry {
    /// Content-store key of the current content, when fetched.
    pub(crate) fn content_key(&self) -> Option<String> {
        self.meta
            .content
            .as_ref()
            .map(|c| content_key(&self.meta.file_id, c))
    }

    /// Writes the state (durably: fsync'd to data_dir, or to Redis).
    pub(crate) async fn persist(&self) -> Result<(), SharedError> {
        self.shared
            .put_json(NS_FILE, &self.meta.file_id, &self.meta, Keep::Durable)
            .await
    }

    /// Points at new content. The previous content stays in the store until the janitor
    /// finds nothing (the file, a pending delivery, a live download URL) refers to it.
    pub(crate) fn set_content(&mut self, name: String, written: &spool::Written, modified_ms: u64) {
        self.meta.content = Some(name);
        self.meta.size = written.size;
        self.meta.sha256.clone_from(&written.sha256);
        self.meta.modified_ms = modified_ms;
    }
}

/// The namespace of file states in the shared state.
pub(crate) const NS_FILE: &str = "file";
const NS_FILE_MUTEX: &str = "file-mutex";
/// How long a request waits for another one on the same file (e.g. a document download).
const MUTEX_WAIT: Duration = Duration::from_secs(120);

/// Every file the host face knows: in the shared state.
#[derive(Debug, Clone)]
pub(crate) struct Files {
    shared: Shared,
}

/// A file to work on: [`FileHandle::lock`] takes its mutex and reads its state.
#[derive(Debug, Clone)]
pub(crate) struct FileHandle {
    files: Files,
    init: FileMeta,
}

impl FileHandle {
    /// The file's state as last written, without its mutex (`None` when unknown): a
    /// consistent snapshot for a request that changes nothing.
    pub(crate) async fn peek(&self) -> Result<Option<FileMeta>, SharedError> {
        self.files
            .shared
            .get_json_memo::<FileMeta>(NS_FILE, &self.init.file_id)
            .await
    }

    /// The file's state under its mutex, created from the token's claims when unknown.
    pub(crate) async fn lock(&self) -> Result<FileEntry, SharedError> {
        let fid = &self.init.file_id;
        let guard = self
            .files
            .shared
            .mutex(NS_FILE_MUTEX, fid, MUTEX_WAIT)
            .await?;
        let stored = self
            .files
            .shared
            .get_json_memo::<FileMeta>(NS_FILE, fid)
            .await?;
        let entry = FileEntry {
            meta: stored.clone().unwrap_or_else(|| self.init.clone()),
            shared: self.files.shared.clone(),
            _guard: guard,
        };
        if stored.is_none() {
            entry.persist().await?;
        }
        Ok(entry)
    }
}

impl Files {
    /// The registry in `shared`.
    pub(crate) fn new(shared: Shared) -> Self {
        Files { shared }
    }

    /// A handle on a file, created from `init` when unknown.
    pub(crate) fn handle(&self, init: FileMeta) -> FileHandle {
        FileHandle {
            files: self.clone(),
            init,
        }
    }

    /// A known file's state under its mutex; `None` when the file is unknown.
    pub(crate) async fn lock_existing(
        &self,
        file_id: &str,
    ) -> Result<Option<FileEntry>, SharedError> {
        let guard = self
            .shared
            .mutex(NS_FILE_MUTEX, file_id, MUTEX_WAIT)
            .await?;
        Ok(self
            .shared
            .get_json_memo::<FileMeta>(NS_FILE, file_id)
            .await?
            .map(|meta| FileEntry {
                meta,
                shared: self.shared.clone(),
                _guard: guard,
            }))
    }

    /// Every file's state (a snapshot, without the mutexes).
    pub(crate) async fn snapshot(&self) -> Result<Vec<FileMeta>, SharedError> {
        Ok(self
            .shared
            .all_json::<FileMeta>(NS_FILE)
            .await?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }
}
