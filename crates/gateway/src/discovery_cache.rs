//! The discovery documents of the WOPI clients the host face trusts: their proof keys and
//! action URLs, fetched at start, refreshed on schedule, and re-fetched (rate-limited) when a
//! proof fails or only verifies with a rotated key.

use crate::http_client::{HttpClient, OutBody};
use crate::metrics::Metrics;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use wopi::discovery::Discovery;
use wopi::proof::ProofKeys;

/// Least time between two forced re-fetches.
const FORCED_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(10);

/// One WOPI client's discovery.
#[derive(Debug)]
pub(crate) struct ClientDiscovery {
    /// Where it was fetched.
    pub url: String,
    /// The parsed document.
    pub discovery: Discovery,
    /// Its proof keys, parsed once.
    pub keys: ProofKeys,
}

/// The cache; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct DiscoveryCache {
    urls: Arc<arc_swap::ArcSwap<Vec<String>>>,
    snapshot: Arc<RwLock<Arc<Vec<Arc<ClientDiscovery>>>>>,
    last_forced: Arc<Mutex<Option<tokio::time::Instant>>>,
    http: HttpClient,
    metrics: Metrics,
}

impl DiscoveryCache {
    /// An empty cache for these discovery URLs.
    pub(crate) fn new(urls: Vec<String>, http: HttpClient, metrics: Metrics) -> Self {
        DiscoveryCache {
            urls: Arc::new(arc_swap::ArcSwap::from_pointee(urls)),
            snapshot: Arc::new(RwLock::new(Arc::new(Vec::new()))),
            last_forced: Arc::new(Mutex::new(None)),
            http,
            metrics,
        }
    }

    /// The current documents (a snapshot; no lock held afterwards).
    pub(crate) fn clients(&self) -> Arc<Vec<Arc<ClientDiscovery>>> {
        self.snapshot.read().map(|g| g.clone()).unwrap_or_default()
    }

    /// Whether any discovery URL is configured.
    pub(crate) fn is_configured(&self) -> bool {
        !self.urls.load().is_empty()
    }

    /// Replaces the discovery URLs (reload); call [`Self::refresh_all`] after.
    pub(crate) fn set_urls(&self, urls: Vec<String>) {
        self.urls.store(Arc::new(urls));
    }

    async fn fetch(&self, url: &str) -> Result<ClientDiscovery, String> {
        let req = http::Request::get(url)
            .body(OutBody::empty())
            .map_err(|e| e.to_string())?;
        let (_, body) = self
            .http
            .send_read("discovery", req, wopi::discovery::MAX_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        let discovery = wopi::discovery::parse(&body).map_err(|e| e.to_string())?;
        let keys = discovery.proof_keys().map_err(|e| e.to_string())?;
        if keys.is_empty() {
            return Err("discovery has no proof-key element".into());
        }
        Ok(ClientDiscovery {
            url: url.to_owned(),
            discovery,
            keys,
        })
    }

    /// Re-fetches every document; a failed fetch keeps the previous copy of that client.
    pub(crate) async fn refresh_all(&self) {
        let old = self.clients();
        let mut next = Vec::with_capacity(self.urls.load().len());
        let urls = self.urls.load_full();
        for url in urls.iter() {
            match self.fetch(url).await {
                Ok(c) => {
                    self.metrics.discovery.with_label_values(&["ok"]).inc();
                    tracing::info!(url = %crate::urls::redact(url), current_key_bits = c.keys.current.as_ref().map(|k| k.bits()), old_key = c.keys.old.is_some(), "WOPI client discovery fetched");
                    next.push(Arc::new(c));
                }
                Err(e) => {
                    self.metrics.discovery.with_label_values(&["error"]).inc();
                    tracing::warn!(url = %crate::urls::redact(url), error = %crate::urls::redact(&e.to_string()), "cannot fetch WOPI client discovery; keeping the previous copy");
                    if let Some(prev) = old.iter().find(|c| &c.url == url) {
                        next.push(prev.clone());
                    }
                }
            }
        }
        if let Ok(mut g) = self.snapshot.write() {
            *g = Arc::new(next);
        }
    }

    /// Re-fetches unless that happened less than 10 s ago; returns whether it did.
    pub(crate) async fn refresh_rate_limited(&self) -> bool {
        {
            let Ok(mut last) = self.last_forced.lock() else {
                return false;
            };
            let now = tokio::time::Instant::now();
            if last.is_some_and(|t| now.duration_since(t) < FORCED_REFRESH_MIN_INTERVAL) {
                return false;
            }
            *last = Some(now);
        }
        self.refresh_all().await;
        true
    }

    /// Refreshes every `period` until `shutdown`.
    pub(crate) fn spawn_refresher(
        &self,
        period: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let cache = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(period) => cache.refresh_all().await,
                }
            }
        });
    }
}
