//! Callbacks to integrators (the Docs API's status 1/2/4/6), delivered at least once.
//!
//! A delivery is written to the spool (`deliveries/<id>.json`, its content hard-linked as
//! `<id>.bin`) before anything is sent, and removed only once the integrator answered HTTP 200
//! with `{"error":0}`. Until then it is retried with exponential backoff, across restarts.
//! Deliveries of one file go out in order: a later one waits for the earlier.

use crate::host_face::HostCtx;
use crate::settings::Integrator;
use crate::spool;
use axum::body::Body;
use docs_api::jwt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, Notify};

/// Largest callback answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Time allowed for one callback.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(60);

/// One pending callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Delivery {
    /// Sortable id (creation order).
    pub id: String,
    /// The file.
    pub file_id: String,
    /// Integrator name.
    pub integrator: String,
    /// Where to POST.
    pub callback_url: String,
    /// Docs-API status.
    pub status: i64,
    /// The body without `url` and `token` (added per attempt).
    pub body: Value,
    /// Whether `<id>.bin` holds content (a `url` is then sent).
    pub has_content: bool,
    /// File extension of the content.
    pub filetype: String,
    /// Creation, Unix ms.
    pub created_ms: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// Next attempt, Unix ms.
    pub next_attempt_ms: u64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// The delivery queue.
#[derive(Debug, Clone)]
pub(crate) struct Deliveries {
    dir: PathBuf,
    pending: Arc<Mutex<BTreeMap<String, Delivery>>>,
    wake: Arc<Notify>,
    seq: Arc<AtomicU64>,
    clock: Arc<dyn crate::clock::Clock>,
}

impl Deliveries {
    /// Opens the queue under `dir`, resuming every delivery saved there.
    ///
    /// Content of deliveries already accepted (a `.bin` without its `.json`) is removed once it
    /// is older than `download_ttl`, the lifetime of the URL that served it.
    pub(crate) async fn open(
        dir: PathBuf,
        download_ttl: Duration,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> std::io::Result<Self> {
        tokio::fs::create_dir_all(&dir).await?;
        let mut pending = BTreeMap::new();
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(e) = entries.next_entry().await? {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "json") {
                match tokio::fs::read(&path)
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Delivery>(&b).ok())
                {
                    Some(mut d) => {
                        d.next_attempt_ms = 0; // resume at once
                        pending.insert(d.id.clone(), d);
                    }
                    None => {
                        tracing::error!(path = %path.display(), "unreadable delivery in the spool; left in place")
                    }
                }
            }
        }
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(e) = entries.next_entry().await? {
            let path = e.path();
            let delivered = path.extension().is_some_and(|x| x == "bin")
                && !path.with_extension("json").exists();
            let expired = e
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > download_ttl);
            if delivered && expired {
                let _ = tokio::fs::remove_file(&path).await;
            }
        }
        if !pending.is_empty() {
            tracing::info!(
                count = pending.len(),
                "resuming pending deliveries from the spool"
            );
        }
        Ok(Deliveries {
            dir,
            pending: Arc::new(Mutex::new(pending)),
            wake: Arc::new(Notify::new()),
            seq: Arc::new(AtomicU64::new(0)),
            clock,
        })
    }

    /// Path of a delivery's content.
    pub(crate) fn content_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.bin"))
    }

    /// Queues a callback durably. `content` is linked (or copied) into the spool first.
    pub(crate) async fn enqueue(
        &self,
        file_id: &str,
        integrator: &str,
        callback_url: &str,
        callback: &docs_api::Callback,
        content: Option<(&Path, &str)>,
    ) -> std::io::Result<String> {
        let status = callback.status;
        let body = serde_json::to_value(callback).map_err(std::io::Error::other)?;
        let now = self.clock.now_ms();
        let id = format!(
            "{now:013}-{:06}",
            self.seq.fetch_add(1, Ordering::Relaxed) % 1_000_000
        );
        if let Some((src, _)) = content {
            let dst = self.content_path(&id);
            if tokio::fs::hard_link(src, &dst).await.is_err() {
                tokio::fs::copy(src, &dst).await?;
                tokio::fs::File::open(&dst).await?.sync_all().await?;
            }
        }
        let d = Delivery {
            id: id.clone(),
            file_id: file_id.to_owned(),
            integrator: integrator.to_owned(),
            callback_url: callback_url.to_owned(),
            status,
            body,
            has_content: content.is_some(),
            filetype: content.map(|(_, ft)| ft.to_owned()).unwrap_or_default(),
            created_ms: now,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
        };
        self.save(&d).await?;
        self.pending.lock().await.insert(id.clone(), d);
        self.wake.notify_one();
        Ok(id)
    }

    async fn save(&self, d: &Delivery) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(d).map_err(std::io::Error::other)?;
        spool::write_atomic(&self.dir.join(format!("{}.json", d.id)), &json).await
    }

    /// A snapshot of the pending deliveries, oldest first.
    pub(crate) async fn list(&self) -> Vec<Delivery> {
        self.pending.lock().await.values().cloned().collect()
    }

    /// Moves a pending delivery (and its content) to `discarded/`; it will not be sent.
    pub(crate) async fn discard(&self, id: &str) -> std::io::Result<bool> {
        if self.pending.lock().await.remove(id).is_none() {
            return Ok(false);
        }
        let dir = self.dir.join("discarded");
        tokio::fs::create_dir_all(&dir).await?;
        for ext in ["json", "bin"] {
            let from = self.dir.join(format!("{id}.{ext}"));
            if from.exists() {
                tokio::fs::rename(&from, dir.join(format!("{id}.{ext}"))).await?;
            }
        }
        tracing::warn!(
            delivery = id,
            "pending delivery discarded by an operator; kept under discarded/"
        );
        Ok(true)
    }

    /// Makes a pending delivery due now.
    pub(crate) async fn retry_now(&self, id: &str) -> bool {
        let found = self
            .pending
            .lock()
            .await
            .get_mut(id)
            .map(|d| d.next_attempt_ms = 0)
            .is_some();
        if found {
            self.wake.notify_one();
        }
        found
    }

    /// Whether a file has deliveries pending.
    pub(crate) async fn has_pending(&self, file_id: &str) -> bool {
        self.pending
            .lock()
            .await
            .values()
            .any(|d| d.file_id == file_id)
    }

    async fn update_gauges(&self, state: &HostCtx) {
        let pending = self.pending.lock().await;
        state.metrics.deliveries_pending.set(pending.len() as i64);
        let oldest = pending
            .values()
            .map(|d| d.created_ms)
            .min()
            .map_or(0, |c| self.clock.now_ms().saturating_sub(c) / 1000);
        state.metrics.delivery_oldest.set(oldest as i64);
    }

    /// Delivers until `shutdown`.
    pub(crate) async fn run(self, state: HostCtx, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            self.update_gauges(&state).await;
            let now = self.clock.now_ms();
            // The first pending delivery of each file, if due.
            let due: Vec<Delivery> = {
                let pending = self.pending.lock().await;
                let mut seen = std::collections::HashSet::new();
                pending
                    .values()
                    .filter(|d| seen.insert(d.file_id.clone()))
                    .filter(|d| d.next_attempt_ms <= now)
                    .cloned()
                    .collect()
            };
            for d in due {
                if shutdown.is_cancelled() {
                    return;
                }
                self.attempt(&state, d).await;
            }
            self.update_gauges(&state).await;
            let next = {
                let pending = self.pending.lock().await;
                pending.values().map(|d| d.next_attempt_ms).min()
            };
            let sleep = next.map_or(Duration::from_secs(3600), |n| {
                Duration::from_millis(n.saturating_sub(self.clock.now_ms()).max(10))
            });
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    async fn attempt(&self, state: &HostCtx, mut d: Delivery) {
        let status_label =
            docs_api::CallbackStatus::from_code(d.status).map_or("other", |s| s.label());
        let settings = state.settings();
        let Some(integrator) = settings
            .host_face
            .integrators
            .iter()
            .find(|i| i.name == d.integrator)
        else {
            // Kept: the operator may restore the integrator's settings; nothing is dropped.
            d.last_error = Some(format!(
                "integrator `{}` is no longer configured",
                d.integrator
            ));
            d.attempts += 1;
            d.next_attempt_ms = self.clock.now_ms()
                + state.settings().host_face.delivery_max_backoff.as_millis() as u64;
            self.retry_later(state, d, status_label).await;
            return;
        };
        match self.post(state, integrator, &d).await {
            Ok(()) => {
                state
                    .metrics
                    .callbacks_sent
                    .with_label_values(&[status_label, "ok"])
                    .inc();
                tracing::info!(delivery = %d.id, status = d.status, attempts = d.attempts + 1, "callback delivered");
                let _ = tokio::fs::remove_file(self.dir.join(format!("{}.json", d.id))).await;
                self.pending.lock().await.remove(&d.id);
                if d.has_content {
                    // The integrator may fetch the url after answering; keep it until it expires.
                    let path = self.content_path(&d.id);
                    let ttl = state.settings().host_face.download_url_ttl;
                    tokio::spawn(async move {
                        tokio::time::sleep(ttl).await;
                        let _ = tokio::fs::remove_file(path).await;
                    });
                }
            }
            Err((result, why)) => {
                state
                    .metrics
                    .callbacks_sent
                    .with_label_values(&[status_label, result])
                    .inc();
                d.attempts += 1;
                let backoff = Duration::from_secs(1u64 << d.attempts.min(20))
                    .min(state.settings().host_face.delivery_max_backoff);
                d.next_attempt_ms = self.clock.now_ms() + backoff.as_millis() as u64;
                tracing::warn!(delivery = %d.id, status = d.status, attempts = d.attempts, retry_in_ms = backoff.as_millis() as u64, error = %why, "callback not accepted; will retry");
                d.last_error = Some(why);
                self.retry_later(state, d, status_label).await;
            }
        }
    }

    async fn retry_later(&self, _state: &HostCtx, d: Delivery, _status: &str) {
        if let Err(e) = self.save(&d).await {
            tracing::error!(delivery = %d.id, error = %e, "cannot update the delivery in the spool");
        }
        self.pending.lock().await.insert(d.id.clone(), d);
    }

    /// The body as sent: the stored body, plus `url`/`filetype` for content.
    pub(crate) fn body_for(&self, state: &HostCtx, d: &Delivery) -> Value {
        let mut body = d.body.clone();
        if let (true, Value::Object(m)) = (d.has_content, &mut body) {
            m.insert(
                "url".into(),
                Value::String(download_url(state, &d.id, &d.file_id)),
            );
            m.insert("filetype".into(), Value::String(d.filetype.clone()));
        }
        body
    }

    async fn post(
        &self,
        state: &HostCtx,
        integrator: &Integrator,
        d: &Delivery,
    ) -> Result<(), (&'static str, String)> {
        let body = self.body_for(state, d);
        let now = self.clock.now_ms() / 1000;
        let ttl = 300;
        let Value::Object(flat) = &body else {
            return Err(("error", "callback body is not an object".into()));
        };
        let body_token = jwt::sign_with_expiry(&integrator.jwt_secret, flat, now, ttl);
        let header_token = jwt::sign_payload(&integrator.jwt_secret, body.clone(), now, ttl);
        let mut with_token = flat.clone();
        with_token.insert("token".into(), Value::String(body_token));
        let bytes =
            serde_json::to_vec(&Value::Object(with_token)).map_err(|e| ("error", e.to_string()))?;
        let req = http::Request::post(&d.callback_url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                integrator.jwt_header.as_str(),
                format!("Bearer {header_token}"),
            )
            .body(Body::from(bytes))
            .map_err(|e| ("error", format!("bad callback request: {e}")))?;
        let (_, answer) = tokio::time::timeout(
            CALLBACK_TIMEOUT,
            state.http.send_read("callback", req, MAX_ANSWER_BYTES),
        )
        .await
        .map_err(|_| ("error", "no answer in time".to_owned()))?
        .map_err(|e| ("error", e.to_string()))?;
        let parsed: Value = serde_json::from_slice(&answer)
            .map_err(|_| ("refused", "answer is not JSON".to_owned()))?;
        match parsed.get("error").and_then(Value::as_i64) {
            Some(0) => Ok(()),
            Some(n) => Err(("refused", format!("integrator answered error {n}"))),
            None => Err(("refused", "answer has no `error` field".into())),
        }
    }
}

/// The signed, expiring URL serving a delivery's exact content.
/// It names the file (`file=`), so a balancer that wants affinity can hash on it; the gateway
/// itself does not need it.
pub(crate) fn download_url(state: &HostCtx, id: &str, file_id: &str) -> String {
    let exp = state.now_ms() / 1000 + state.settings().host_face.download_url_ttl.as_secs();
    let mut claims = serde_json::Map::new();
    claims.insert("did".into(), json!(id));
    claims.insert("exp".into(), json!(exp));
    let token = jwt::sign(&state.face.token_secret, &claims);
    // The integrator's server downloads it: the internal base.
    format!(
        "{}/api/v1/download/{id}?file={file_id}&token={token}",
        state.settings().server.internal_url.base()
    )
}
