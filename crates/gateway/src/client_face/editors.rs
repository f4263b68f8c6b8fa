//! Per-Docs-key state: co-editors of one document share one key, one lock and one session.

use dashmap::DashMap;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex as StdMutex};
use tokio::sync::Mutex;

/// One user's credentials for the host.
#[derive(Debug, Clone)]
pub(crate) struct UserAuth {
    /// The access token the host gave (form field).
    pub token: String,
    /// Its expiry, Unix ms (0 = unknown).
    pub ttl_ms: u64,
    /// Whether this user opened in edit mode (the token may write).
    pub can_write: bool,
}

/// One editing (or viewing) session.
#[derive(Debug)]
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
    /// The RefreshLock loop.
    pub refresher: Option<tokio::task::JoinHandle<()>>,
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

impl Drop for Editor {
    fn drop(&mut self) {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
    }
}

/// Every session, plus the keys recently finished (Docs may resend a status 2).
#[derive(Debug, Clone, Default)]
pub(crate) struct Editors {
    map: Arc<DashMap<String, Arc<Mutex<Editor>>>>,
    finished: Arc<StdMutex<VecDeque<String>>>,
}

impl Editors {
    /// The session of a key.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Mutex<Editor>>> {
        self.map.get(key).map(|s| s.clone())
    }

    /// The session of a key, created by `init` when missing.
    pub(crate) fn get_or_insert(
        &self,
        key: &str,
        init: impl FnOnce() -> Editor,
    ) -> Arc<Mutex<Editor>> {
        self.map
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(init())))
            .clone()
    }

    /// Ends a session; remembers its key for resent callbacks.
    pub(crate) fn finish(&self, key: &str) {
        self.map.remove(key);
        if let Ok(mut f) = self.finished.lock() {
            f.push_back(key.to_owned());
            while f.len() > 4096 {
                f.pop_front();
            }
        }
    }

    /// Whether a key finished recently.
    pub(crate) fn finished_recently(&self, key: &str) -> bool {
        self.finished
            .lock()
            .is_ok_and(|f| f.iter().any(|k| k == key))
    }
}
