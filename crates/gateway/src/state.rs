//! What every part of the gateway shares ([`Core`]: settings, metrics, the lock store, the
//! clock, outgoing HTTP, readiness) and the handle each face works with ([`Ctx`]: the core
//! and the face's own state). The faces depend on this module, never on each other or on
//! the composition root (`app`).

use crate::http_client::HttpClient;
use crate::metrics::Metrics;
use crate::settings::Settings;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

/// The shared services.
///
/// Per-request path: `settings` (read-only snapshot), `metrics` (atomic counters), `locks`
/// (the store's own synchronisation: DashMap shards or Redis), `http` (a pooled client).
#[derive(Debug)]
pub(crate) struct Core {
    /// Validated settings; swapped whole by a reload (SIGHUP).
    settings: arc_swap::ArcSwap<Settings>,
    /// Metric families.
    pub(crate) metrics: Metrics,
    /// The lock store.
    pub(crate) locks: Arc<dyn locks::LockStore>,
    /// The one clock (the lock store's too).
    pub(crate) clock: Arc<dyn crate::clock::Clock>,
    /// Outgoing HTTP.
    pub(crate) http: HttpClient,
    /// State shared by every instance (memory, or Redis with `[cluster]`).
    pub(crate) shared: crate::cluster::Shared,
    /// Where file content lives.
    pub(crate) content: crate::content::ContentStore,
    /// Whether Redis answered its last check (always true for one instance).
    pub(crate) shared_ok: AtomicBool,
    /// Whether the content store answered its last check.
    pub(crate) content_ok: AtomicBool,
    /// Set once startup work is done (`/readyz`).
    pub(crate) ready: AtomicBool,
    /// Whether the upstream ONLYOFFICE Docs answered its last health check.
    pub(crate) upstream_healthy: AtomicBool,
    /// Source of request ids (the request span's `request_id`).
    pub(crate) request_ids: AtomicU64,
    /// The readiness last logged (0 none yet, 1 ready, 2 not ready).
    reported_readiness: AtomicU8,
}

impl Core {
    /// The core on `settings` and its services.
    pub(crate) fn new(
        settings: Arc<Settings>,
        metrics: Metrics,
        locks: Arc<dyn locks::LockStore>,
        clock: Arc<dyn crate::clock::Clock>,
        http: HttpClient,
        shared: crate::cluster::Shared,
        content: crate::content::ContentStore,
    ) -> Self {
        Core {
            settings: arc_swap::ArcSwap::new(settings),
            metrics,
            locks,
            clock,
            http,
            shared,
            content,
            shared_ok: AtomicBool::new(true),
            content_ok: AtomicBool::new(true),
            ready: AtomicBool::new(false),
            upstream_healthy: AtomicBool::new(false),
            request_ids: AtomicU64::new(1),
            reported_readiness: AtomicU8::new(0),
        }
    }

    /// The settings in force (a cheap snapshot; a reload does not change it under you).
    pub(crate) fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// The settings in force without taking a reference count, for the per-request path.
    /// Not to be held across an `.await`.
    pub(crate) fn settings_now(&self) -> arc_swap::Guard<Arc<Settings>> {
        self.settings.load()
    }

    /// Now, in Unix milliseconds, from the injected clock.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Installs reloaded settings.
    pub(crate) fn store_settings(&self, settings: Arc<Settings>) {
        self.settings.store(settings);
    }

    /// Why the gateway is not ready, or `Ok` when it is (`/readyz`).
    pub(crate) fn readiness(&self) -> Result<(), &'static str> {
        if !self.ready.load(Ordering::Acquire) {
            return Err("starting");
        }
        if !self.shared_ok.load(Ordering::Relaxed) {
            return Err("Redis unreachable");
        }
        if !self.content_ok.load(Ordering::Relaxed) {
            return Err("content store unreachable");
        }
        if self.settings().docs.healthcheck_interval.is_some()
            && !self.upstream_healthy.load(Ordering::Relaxed)
        {
            return Err("upstream Docs unreachable");
        }
        Ok(())
    }

    /// Logs a change of [`Self::readiness`], once per change (ready → not ready and back).
    pub(crate) fn report_readiness(&self) {
        if !self.ready.load(Ordering::Acquire) {
            // Startup reports once it is done; "starting" is not a change worth a line.
            return;
        }
        let now = self.readiness();
        let code = match now {
            Ok(()) => 1,
            Err(_) => 2,
        };
        if self.reported_readiness.swap(code, Ordering::AcqRel) == code {
            return;
        }
        match now {
            Ok(()) => tracing::info!("ready"),
            Err(why) => tracing::warn!(reason = why, "not ready: {why} (/readyz answers 503)"),
        }
    }
}

/// Records one backend check in `ok`, logging `what()` when it turns from reachable to not.
fn note_check<E: std::fmt::Display>(
    ok: &AtomicBool,
    result: Result<Result<(), E>, tokio::time::error::Elapsed>,
    what: impl FnOnce() -> String,
) {
    let now_ok = matches!(result, Ok(Ok(())));
    if !now_ok && ok.load(Ordering::Relaxed) {
        let why = match result {
            Ok(Err(e)) => e.to_string(),
            _ => "no answer in time".into(),
        };
        tracing::error!(error = %why, "{}", what());
    }
    ok.store(now_ok, Ordering::Relaxed);
}

/// Checks Redis and the content store every `every` until `shutdown`, so `/readyz` says
/// when either is unreachable (and a log line says which, once per change).
pub(crate) fn spawn_backend_checker(
    core: Arc<Core>,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let redis = tokio::time::timeout(every, core.shared.ping()).await;
            note_check(&core.shared_ok, redis, || {
                "Redis unreachable: requests that need shared state answer 503".into()
            });
            let content = tokio::time::timeout(every, core.content.check()).await;
            note_check(&core.content_ok, content, || {
                format!(
                    "content store unreachable ({}): requests that need content answer 503",
                    core.content.describe()
                )
            });
            core.report_readiness();
        }
    });
}

/// A face's handle: the shared [`Core`] (through `Deref`) and the face's own state in
/// `face`. Cheap to clone: two `Arc`s.
#[derive(Debug)]
pub(crate) struct Ctx<F> {
    core: Arc<Core>,
    /// The face's own state.
    pub(crate) face: Arc<F>,
}

impl<F> Clone for Ctx<F> {
    fn clone(&self) -> Self {
        Ctx {
            core: self.core.clone(),
            face: self.face.clone(),
        }
    }
}

impl<F> Ctx<F> {
    /// A handle on `core` for a face's state.
    pub(crate) fn new(core: Arc<Core>, face: F) -> Self {
        Ctx {
            core,
            face: Arc::new(face),
        }
    }
}

impl<F> std::ops::Deref for Ctx<F> {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}
