//! Callbacks to integrators (the Docs API's status 1/2/4/6), delivered at least once.
//!
//! A delivery is a record in the shared state (fsync'd to data_dir for one instance, Redis
//! for several) written before anything is sent, and removed only once the integrator
//! answered HTTP 200 with `{"error":0}`; its content stays in the content store. Until then it
//! is retried with exponential backoff, across restarts and across instances: the backoff is
//! in the record. An instance works on a delivery only while it holds the delivery's lease
//! (`cluster.lease_seconds`, extended while the attempt runs), so exactly one instance sends
//! it at a time; when that instance dies, another takes it over once the lease expires.
//! Deliveries of one file go out in order: a later one waits for the earlier.

use crate::cluster::{Keep, Shared, SharedError};
use crate::error::GatewayError;
use crate::host_face::HostCtx;
use crate::settings::Integrator;
use axum::body::Body;
use docs_api::jwt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Largest callback answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Deliveries (of different files) attempted at once by one instance.
const PARALLEL: usize = 16;
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
    /// Content-store key of the content sent as `url` (status 2/6).
    pub content: Option<String>,
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
    /// The instance that made the last attempt.
    #[serde(default)]
    pub last_instance: Option<String>,
}

/// The content of an accepted delivery, kept while its download URL is valid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Delivered {
    /// Content-store key.
    pub key: String,
    /// Until when (Unix ms).
    pub until_ms: u64,
}

/// Namespace of pending deliveries.
pub(crate) const NS_DELIVERY: &str = "delivery";
/// Namespace of discarded deliveries (kept for the operator).
pub(crate) const NS_DISCARDED: &str = "discarded";
/// Content keys of accepted deliveries whose download URL is still valid.
pub(crate) const NS_DELIVERED: &str = "delivered";
const NS_LEASE: &str = "delivery-lease";

/// Why a delivery could not be acted on.
#[derive(Debug)]
pub(crate) enum ActError {
    /// No such pending delivery.
    NotFound,
    /// An instance is attempting it right now.
    Busy,
    /// The shared state failed.
    Shared(SharedError),
}

impl From<SharedError> for ActError {
    fn from(e: SharedError) -> Self {
        ActError::Shared(e)
    }
}

/// The delivery queue.
#[derive(Debug, Clone)]
pub(crate) struct Deliveries {
    shared: Shared,
    /// This process's lease owner token.
    owner: Arc<str>,
    wake: Arc<Notify>,
    clock: Arc<dyn crate::clock::Clock>,
}

impl Deliveries {
    /// The queue in `shared`; every delivery saved there is resumed.
    pub(crate) fn new(shared: Shared, clock: Arc<dyn crate::clock::Clock>) -> Result<Self, String> {
        let owner = format!(
            "{}/{}",
            shared.instance,
            crate::random::hex::<6>().map_err(|e| e.to_string())?
        );
        Ok(Deliveries {
            shared,
            owner: owner.into(),
            wake: Arc::new(Notify::new()),
            clock,
        })
    }

    /// Queues a callback durably; `content` is the content-store key (and file type) sent as
    /// `url`.
    pub(crate) async fn enqueue(
        &self,
        file_id: &str,
        integrator: &str,
        callback_url: &str,
        callback: &docs_api::Callback,
        content: Option<(&str, &str)>,
    ) -> Result<String, GatewayError> {
        let status = callback.status;
        let body =
            serde_json::to_value(callback).map_err(|e| GatewayError::Internal(e.to_string()))?;
        let now = self.clock.now_ms();
        // Sortable by creation, unique across instances.
        let id = format!("{now:013}-{}", crate::random::hex::<5>()?);
        let d = Delivery {
            id: id.clone(),
            file_id: file_id.to_owned(),
            integrator: integrator.to_owned(),
            callback_url: callback_url.to_owned(),
            status,
            body,
            content: content.map(|(k, _)| k.to_owned()),
            filetype: content.map(|(_, ft)| ft.to_owned()).unwrap_or_default(),
            created_ms: now,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            last_instance: None,
        };
        self.shared
            .put_json(NS_DELIVERY, &id, &d, Keep::Durable)
            .await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Every pending delivery of the cluster, oldest first.
    pub(crate) async fn list(&self) -> Result<Vec<Delivery>, SharedError> {
        let mut all: Vec<Delivery> = self
            .shared
            .all_json(NS_DELIVERY)
            .await?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// Runs `f` on a pending delivery under its lease; `f` returns the record to keep
    /// (`None` deletes it).
    async fn act(
        &self,
        id: &str,
        f: impl FnOnce(Delivery) -> Option<Delivery>,
    ) -> Result<Delivery, ActError> {
        let owner = format!("{}/op", self.owner);
        if !self
            .shared
            .lease(NS_LEASE, id, &owner, Duration::from_secs(10))
            .await?
        {
            return Err(ActError::Busy);
        }
        let result = async {
            let d: Delivery = self
                .shared
                .get_json(NS_DELIVERY, id)
                .await?
                .ok_or(ActError::NotFound)?;
            let kept = f(d.clone());
            let bytes = kept
                .as_ref()
                .map(|k| serde_json::to_vec(k).map_err(|e| SharedError::other(e.to_string())))
                .transpose()?;
            self.shared
                .put_if_leased(NS_LEASE, &owner, NS_DELIVERY, id, bytes)
                .await?;
            Ok(d)
        }
        .await;
        let _ = self.shared.release(NS_LEASE, id, &owner).await;
        result
    }

    /// Moves a pending delivery to the discarded ones (its content stays); it will not be sent.
    pub(crate) async fn discard(&self, id: &str) -> Result<(), ActError> {
        let d = self.act(id, |_| None).await?;
        self.shared
            .put_json(NS_DISCARDED, id, &d, Keep::Durable)
            .await?;
        tracing::warn!(
            delivery = id,
            "pending delivery discarded by an operator; its record is kept with the discarded ones"
        );
        Ok(())
    }

    /// Makes a pending delivery due now (on whichever instance takes it first).
    pub(crate) async fn retry_now(&self, id: &str) -> Result<(), ActError> {
        self.act(id, |mut d| {
            d.next_attempt_ms = 0;
            Some(d)
        })
        .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Whether a file has deliveries pending.
    pub(crate) async fn has_pending(&self, file_id: &str) -> Result<bool, SharedError> {
        Ok(self.list().await?.iter().any(|d| d.file_id == file_id))
    }

    fn update_gauges(&self, state: &HostCtx, pending: &[Delivery]) {
        state.metrics.deliveries_pending.set(pending.len() as i64);
        let oldest = pending
            .iter()
            .map(|d| d.created_ms)
            .min()
            .map_or(0, |c| self.clock.now_ms().saturating_sub(c) / 1000);
        state.metrics.delivery_oldest.set(oldest as i64);
    }

    /// Delivers until `shutdown`.
    pub(crate) async fn run(self, state: HostCtx, shutdown: tokio_util::sync::CancellationToken) {
        // Other instances enqueue and retry too: look again at least this often.
        let poll = if self.shared.is_clustered() {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(3600)
        };
        loop {
            let next = match self.list().await {
                Ok(pending) => {
                    self.update_gauges(&state, &pending);
                    let now = self.clock.now_ms();
                    // The first pending delivery of each file, if due.
                    let mut seen = std::collections::HashSet::new();
                    let firsts: Vec<&Delivery> = pending
                        .iter()
                        .filter(|d| seen.insert(d.file_id.clone()))
                        .collect();
                    // Different files' deliveries go out side by side (one file's stay in
                    // order: only its first is due).
                    let due: Vec<&str> = firsts
                        .iter()
                        .filter(|d| d.next_attempt_ms <= now)
                        .map(|d| d.id.as_str())
                        .collect();
                    futures_util::StreamExt::for_each_concurrent(
                        futures_util::stream::iter(due),
                        PARALLEL,
                        |id| async {
                            if !shutdown.is_cancelled() {
                                self.attempt_leased(&state, id).await;
                            }
                        },
                    )
                    .await;
                    if shutdown.is_cancelled() {
                        return;
                    }
                    firsts.iter().map(|d| d.next_attempt_ms).min()
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read pending deliveries; retrying");
                    Some(self.clock.now_ms() + 1000)
                }
            };
            let sleep = next.map_or(poll, |n| {
                Duration::from_millis(n.saturating_sub(self.clock.now_ms()).max(10)).min(poll)
            });
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Attempts a delivery if this instance gets its lease (and it is still pending).
    async fn attempt_leased(&self, state: &HostCtx, id: &str) {
        let lease = state.settings().cluster.lease;
        match self.shared.lease(NS_LEASE, id, &self.owner, lease).await {
            Ok(true) => {}
            Ok(false) => return, // another instance is on it
            Err(e) => {
                tracing::error!(delivery = id, error = %e, "cannot lease a delivery");
                return;
            }
        }
        // Held while the attempt runs, however long the integrator takes.
        let keeper = {
            let (shared, owner, id) = (self.shared.clone(), self.owner.clone(), id.to_owned());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let _ = shared.lease(NS_LEASE, &id, &owner, lease).await;
                }
            })
        };
        // Read again under the lease: another instance may have delivered it meanwhile.
        match self.shared.get_json::<Delivery>(NS_DELIVERY, id).await {
            Ok(Some(d)) if d.next_attempt_ms <= self.clock.now_ms() => self.attempt(state, d).await,
            Ok(_) => {}
            Err(e) => tracing::error!(delivery = id, error = %e, "cannot read a delivery"),
        }
        keeper.abort();
        let _ = self.shared.release(NS_LEASE, id, &self.owner).await;
    }

    async fn attempt(&self, state: &HostCtx, mut d: Delivery) {
        let status_label =
            docs_api::CallbackStatus::from_code(d.status).map_or("other", |s| s.label());
        let settings = state.settings();
        d.last_instance = Some(self.shared.instance.to_string());
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
            d.next_attempt_ms =
                self.clock.now_ms() + settings.host_face.delivery_max_backoff.as_millis() as u64;
            self.retry_later(d).await;
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
                if let Some(key) = &d.content {
                    // The integrator may fetch the url after answering: the janitor keeps the
                    // content while the URL is valid.
                    let until_ms = self.clock.now_ms()
                        + settings.host_face.download_url_ttl.as_millis() as u64
                        + 60_000;
                    let record = Delivered {
                        key: key.clone(),
                        until_ms,
                    };
                    if let Err(e) = self
                        .shared
                        .put_json(NS_DELIVERED, &d.id, &record, Keep::Durable)
                        .await
                    {
                        tracing::warn!(delivery = %d.id, error = %e, "cannot record the delivered content");
                    }
                }
                match self
                    .shared
                    .put_if_leased(NS_LEASE, &self.owner, NS_DELIVERY, &d.id, None)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(delivery = %d.id, "delivered after the lease ran out")
                    }
                    Err(e) => {
                        tracing::error!(delivery = %d.id, error = %e, "delivered, but the record could not be removed: it may be sent again")
                    }
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
                    .min(settings.host_face.delivery_max_backoff);
                d.next_attempt_ms = self.clock.now_ms() + backoff.as_millis() as u64;
                tracing::warn!(delivery = %d.id, status = d.status, attempts = d.attempts, retry_in_ms = backoff.as_millis() as u64, error = %why, "callback not accepted; will retry");
                d.last_error = Some(why);
                self.retry_later(d).await;
            }
        }
    }

    async fn retry_later(&self, d: Delivery) {
        let bytes = match serde_json::to_vec(&d) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(delivery = %d.id, error = %e, "cannot encode the delivery");
                return;
            }
        };
        match self
            .shared
            .put_if_leased(NS_LEASE, &self.owner, NS_DELIVERY, &d.id, Some(bytes))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = %d.id, "lease lost during the attempt; another instance has it")
            }
            Err(e) => tracing::error!(delivery = %d.id, error = %e, "cannot update the delivery"),
        }
    }

    /// The body as sent: the stored body, plus `url`/`filetype` for content.
    pub(crate) fn body_for(&self, state: &HostCtx, d: &Delivery) -> Value {
        let mut body = d.body.clone();
        if let (Some(key), Value::Object(m)) = (&d.content, &mut body) {
            m.insert(
                "url".into(),
                Value::String(download_url(state, key, &d.file_id)),
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

/// RFC 3986 unreserved characters stay as they are in a query value.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The signed, expiring URL serving a delivery's exact content (content-store key `key`),
/// from any instance. It names the file (`file=`), so a balancer that wants affinity can hash
/// on it; the gateway itself does not need it.
pub(crate) fn download_url(state: &HostCtx, key: &str, file_id: &str) -> String {
    let exp = state.now_ms() / 1000 + state.settings().host_face.download_url_ttl.as_secs();
    let mut claims = serde_json::Map::new();
    claims.insert("ck".into(), json!(key));
    claims.insert("exp".into(), json!(exp));
    let token = jwt::sign(&state.face.token_secret, &claims);
    // The integrator's server downloads it: the internal base.
    let id = key
        .rsplit('/')
        .next()
        .unwrap_or(key)
        .trim_end_matches(".bin");
    let file = percent_encoding::utf8_percent_encode(file_id, UNRESERVED);
    format!(
        "{}/api/v1/download/{id}?file={file}&token={token}",
        state.settings().server.internal_url.base()
    )
}

/// Every pending delivery as the operator CLI shows it (`deliveries list`), read from the
/// shared state the settings name (data_dir, or Redis for a cluster), and where it was read.
pub async fn pending_for_cli(
    settings: &crate::settings::Settings,
) -> Result<(Vec<Value>, String), String> {
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(locks::SystemClock);
    let (shared, place) = match &settings.cluster.redis {
        None => {
            let dir = settings.server.data_dir.join("state");
            (
                Shared::local(Some(dir.clone()), "cli", clock)
                    .map_err(|e| format!("{}: {e}", dir.display()))?,
                dir.display().to_string(),
            )
        }
        Some(redis) => (
            Shared::redis(
                redis,
                &settings.cluster.key_prefix,
                "cli",
                clock,
                Duration::from_secs(5),
            )
            .await
            .map_err(|e| e.to_string())?,
            redis.describe(),
        ),
    };
    let mut rows: Vec<Value> = shared
        .all_json::<Value>(NS_DELIVERY)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Ok((rows, place))
}
