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
/// The document-key index: `<integrator>/<document.key>` → the file id whose current key it
/// is (integrator names hold no `/`). The command service finds a file by its key here.
const NS_DOC_KEY: &str = "doc-key";
const NS_FILE_MUTEX: &str = "file-mutex";
/// How long a request waits for another one on the same file (e.g. a document download).
const MUTEX_WAIT: Duration = Duration::from_secs(120);

/// The id of a document key in the index.
fn key_id(integrator: &str, key: &str) -> String {
    format!("{integrator}/{key}")
}

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
            self.files.index_key(&entry.meta, None).await?;
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

    /// Notes that `meta.doc_key` is the key of `meta`'s file, and that `old_key` (a key it
    /// moved from) no longer is. Called when a session opens the file.
    pub(crate) async fn index_key(
        &self,
        meta: &FileMeta,
        old_key: Option<&str>,
    ) -> Result<(), SharedError> {
        if let Some(old) = old_key.filter(|k| !k.is_empty() && *k != meta.doc_key) {
            self.shared
                .delete(NS_DOC_KEY, &key_id(&meta.integrator, old))
                .await?;
        }
        if meta.doc_key.is_empty() {
            return Ok(());
        }
        let id = key_id(&meta.integrator, &meta.doc_key);
        // Every open of the file comes here: a durable write only when the entry changes.
        if self.shared.get(NS_DOC_KEY, &id).await?.as_deref() == Some(meta.file_id.as_bytes()) {
            return Ok(());
        }
        self.shared
            .put(
                NS_DOC_KEY,
                &id,
                meta.file_id.clone().into_bytes(),
                Keep::Durable,
            )
            .await
    }

    /// The state of the file of `integrator` whose current document key is `key`: one
    /// lookup in the index and one read of the state, whatever the number of files. An entry
    /// whose file moved to another key (or is gone) reads as none.
    pub(crate) async fn find_by_key(
        &self,
        integrator: &str,
        key: &str,
    ) -> Result<Option<FileMeta>, SharedError> {
        let Some(fid) = self
            .shared
            .get(NS_DOC_KEY, &key_id(integrator, key))
            .await?
        else {
            return Ok(None);
        };
        let Ok(fid) = std::str::from_utf8(&fid) else {
            return Ok(None);
        };
        Ok(self
            .shared
            .get_json_memo::<FileMeta>(NS_FILE, fid)
            .await?
            .filter(|m| m.doc_key == key && m.integrator == integrator))
    }

    /// Indexes the files of `all` the index lacks — files opened by a release without the
    /// index (run at start and by each janitor pass, so an instance of an earlier release
    /// in a cluster being upgraded is caught up with too); returns how many.
    pub(crate) async fn index_missing(&self, all: &[FileMeta]) -> Result<usize, SharedError> {
        let have: std::collections::HashSet<String> =
            self.shared.ids(NS_DOC_KEY).await?.into_iter().collect();
        let mut added = 0;
        for m in all {
            if !m.doc_key.is_empty() && !have.contains(&key_id(&m.integrator, &m.doc_key)) {
                self.index_key(m, None).await?;
                added += 1;
            }
        }
        Ok(added)
    }

    /// [`Self::index_missing`], its outcome logged (a failure is retried by the next
    /// janitor pass).
    pub(crate) async fn catch_up_index(&self, all: &[FileMeta]) {
        match self.index_missing(all).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                files = n,
                "indexed the document keys of files opened without the index"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "indexing document keys failed; the content janitor retries")
            }
        }
    }

    /// Removes a file's state and its index entry (the storage deleted the file).
    pub(crate) async fn remove(&self, entry: FileEntry) -> Result<(), SharedError> {
        let m = &entry.meta;
        if !m.doc_key.is_empty() {
            self.shared
                .delete(NS_DOC_KEY, &key_id(&m.integrator, &m.doc_key))
                .await?;
        }
        self.shared.delete(NS_FILE, &m.file_id).await
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    fn shared() -> Shared {
        Shared::local(None, "t", Arc::new(locks::SystemClock)).unwrap()
    }

    fn meta(fid: &str, integrator: &str, key: &str) -> FileMeta {
        FileMeta {
            file_id: fid.into(),
            integrator: integrator.into(),
            doc_key: key.into(),
            ..Default::default()
        }
    }

    async fn found(files: &Files, integrator: &str, key: &str) -> Option<String> {
        files
            .find_by_key(integrator, key)
            .await
            .unwrap()
            .map(|m| m.file_id)
    }

    #[tokio::test]
    async fn a_key_is_found_in_the_index_without_listing_the_files() {
        let shared = shared();
        let files = Files::new(shared.clone());
        for i in 0..2000 {
            let m = meta(&format!("f{i}"), "nc", &format!("key-{i}"));
            shared
                .put_json(NS_FILE, &m.file_id, &m, Keep::Listed)
                .await
                .unwrap();
            files.index_key(&m, None).await.unwrap();
        }
        // A state that is not listed: a lookup that went through the files would miss it.
        let hidden = meta("hidden", "nc", "key-hidden");
        shared
            .put_json(
                NS_FILE,
                "hidden",
                &hidden,
                Keep::For(Duration::from_secs(600)),
            )
            .await
            .unwrap();
        files.index_key(&hidden, None).await.unwrap();
        assert!(
            files
                .snapshot()
                .await
                .unwrap()
                .iter()
                .all(|m| m.file_id != "hidden")
        );
        assert_eq!(
            found(&files, "nc", "key-hidden").await.as_deref(),
            Some("hidden")
        );
        assert_eq!(
            found(&files, "nc", "key-1999").await.as_deref(),
            Some("f1999")
        );
        // An unknown key, another integrator's key: none (the command goes to Docs).
        assert_eq!(found(&files, "nc", "key-unknown").await, None);
        assert_eq!(found(&files, "other", "key-5").await, None);
        // A file that moved to a new key: found by it, no longer by the old one.
        let mut m = meta("f7", "nc", "key-7b");
        shared
            .put_json(NS_FILE, "f7", &m, Keep::Listed)
            .await
            .unwrap();
        files.index_key(&m, Some("key-7")).await.unwrap();
        assert_eq!(found(&files, "nc", "key-7").await, None);
        assert_eq!(found(&files, "nc", "key-7b").await.as_deref(), Some("f7"));
        // An entry whose state moved on without it (a crash between the writes) reads as none.
        m.doc_key = "key-7c".into();
        shared
            .put_json(NS_FILE, "f7", &m, Keep::Listed)
            .await
            .unwrap();
        assert_eq!(found(&files, "nc", "key-7b").await, None);
    }

    #[tokio::test]
    async fn files_opened_without_the_index_are_indexed_once() {
        let shared = shared();
        let files = Files::new(shared.clone());
        // States an earlier release wrote: no index entries.
        for i in 0..50 {
            let m = meta(&format!("f{i}"), "nc", &format!("key-{i}"));
            shared
                .put_json(NS_FILE, &m.file_id, &m, Keep::Durable)
                .await
                .unwrap();
        }
        files
            .index_key(&meta("f0", "nc", "key-0"), None)
            .await
            .unwrap();
        assert_eq!(found(&files, "nc", "key-1").await, None);
        let all = files.snapshot().await.unwrap();
        assert_eq!(files.index_missing(&all).await.unwrap(), 49);
        assert_eq!(files.index_missing(&all).await.unwrap(), 0);
        assert_eq!(found(&files, "nc", "key-1").await.as_deref(), Some("f1"));
        assert_eq!(found(&files, "nc", "key-49").await.as_deref(), Some("f49"));
    }

    #[tokio::test]
    async fn remove_takes_the_state_and_its_entry() {
        let shared = shared();
        let files = Files::new(shared.clone());
        let m = meta("f1", "nc", "key-1");
        // A state made on first use is indexed.
        let entry = files.handle(m).lock().await.unwrap();
        assert_eq!(found(&files, "nc", "key-1").await.as_deref(), Some("f1"));
        files.remove(entry).await.unwrap();
        assert_eq!(found(&files, "nc", "key-1").await, None);
        assert!(files.lock_existing("f1").await.unwrap().is_none());
        assert!(shared.ids(NS_DOC_KEY).await.unwrap().is_empty());
    }
}
