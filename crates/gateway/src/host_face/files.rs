//! Per-file state of the host face, persisted in the spool so an edit survives a restart.
//!
//! Each file has a folder `files/<file_id>/` with `meta.json` and its content files:
//! `orig-<n>.bin` (downloaded from document.url) or `v-<version>.bin` (staged by PutFile).
//! A file's state is behind an async mutex: operations on one file are serialised, different
//! files never wait on each other.

use crate::spool;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

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
}

/// One file: its folder and state.
#[derive(Debug)]
pub(crate) struct FileEntry {
    /// `files/<file_id>/`
    pub dir: PathBuf,
    /// The state.
    pub meta: FileMeta,
}

impl FileEntry {
    /// Path of the current content, when fetched.
    pub(crate) fn content_path(&self) -> Option<PathBuf> {
        self.meta.content.as_ref().map(|c| self.dir.join(c))
    }

    /// Writes `meta.json` durably.
    pub(crate) async fn persist(&self) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(&self.meta).map_err(std::io::Error::other)?;
        spool::write_atomic(&self.dir.join("meta.json"), &json).await
    }

    /// Replaces the content file, removing the previous one (deliveries hold their own links).
    pub(crate) async fn set_content(
        &mut self,
        name: String,
        written: &spool::Written,
        modified_ms: u64,
    ) {
        if let Some(old) = self
            .content_path()
            .filter(|_| self.meta.content.as_deref() != Some(name.as_str()))
        {
            let _ = tokio::fs::remove_file(old).await;
        }
        self.meta.content = Some(name);
        self.meta.size = written.size;
        self.meta.sha256.clone_from(&written.sha256);
        self.meta.modified_ms = modified_ms;
    }
}

/// Every file the host face knows.
#[derive(Debug, Clone)]
pub(crate) struct Files {
    root: PathBuf,
    map: Arc<dashmap::DashMap<String, Arc<Mutex<FileEntry>>>>,
}

impl Files {
    /// Opens the registry under `root` (`…/spool/host/files`), loading every saved state.
    pub(crate) async fn open(root: PathBuf) -> std::io::Result<Self> {
        tokio::fs::create_dir_all(&root).await?;
        let files = Files {
            root: root.clone(),
            map: Arc::new(dashmap::DashMap::new()),
        };
        let mut entries = tokio::fs::read_dir(&root).await?;
        while let Some(e) = entries.next_entry().await? {
            let dir = e.path();
            let meta_path = dir.join("meta.json");
            let Ok(bytes) = tokio::fs::read(&meta_path).await else {
                continue;
            };
            match serde_json::from_slice::<FileMeta>(&bytes) {
                Ok(meta) => {
                    files.map.insert(
                        meta.file_id.clone(),
                        Arc::new(Mutex::new(FileEntry { dir, meta })),
                    );
                }
                Err(e) => {
                    tracing::error!(path = %meta_path.display(), error = %e, "unreadable file state in the spool; left in place")
                }
            }
        }
        Ok(files)
    }

    /// The entry of a file, if known.
    /// Every file's id and entry (a snapshot).
    pub(crate) fn entries(&self) -> Vec<(String, Arc<Mutex<FileEntry>>)> {
        self.map
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect()
    }

    pub(crate) fn get(&self, file_id: &str) -> Option<Arc<Mutex<FileEntry>>> {
        self.map.get(file_id).map(|e| e.clone())
    }

    /// The entry of a file, created from `init` when unknown.
    pub(crate) async fn get_or_create(
        &self,
        file_id: &str,
        init: impl FnOnce() -> FileMeta,
    ) -> std::io::Result<Arc<Mutex<FileEntry>>> {
        if let Some(e) = self.get(file_id) {
            return Ok(e);
        }
        let dir = self.root.join(file_id);
        tokio::fs::create_dir_all(&dir).await?;
        let entry = self
            .map
            .entry(file_id.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(FileEntry { dir, meta: init() })))
            .clone();
        {
            let e = entry.lock().await;
            if !e.dir.join("meta.json").exists() {
                e.persist().await?;
            }
        }
        Ok(entry)
    }
}
