//! Prometheus metrics on an explicit registry (prefix `wopi_gateway_`), passed in `AppState`.
//! Labels are bounded: route groups, status classes, operations, results — never an id,
//! token, user, lock or address.

mod names;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::time::Duration;

/// Per-route-group handles, resolved once so the request path does no label hashing.
#[derive(Debug, Clone)]
pub struct GroupMetrics {
    /// Requests by status class (1xx…5xx).
    pub requests: [IntCounter; 5],
    /// Durations.
    pub duration: Histogram,
}

/// All metric families.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Per route group (index of [`crate::access::RouteGroup`]).
    pub by_group: std::sync::Arc<Vec<GroupMetrics>>,
    /// Requests by `group`, `status_class`.
    pub http_requests: IntCounterVec,
    /// Heads refused by the HTTP parser, by status.
    pub http_unrouted: IntCounterVec,
    /// Heads and bodies refused by a framing rule, by `rule`.
    pub http_refused: IntCounterVec,
    /// Connections open on the public listener.
    pub connections_open: IntGauge,
    /// Times the public listener reached `server.max_connections`.
    pub connections_limited: IntCounter,
    /// Failed accepts by `role`.
    pub accept_errors: IntCounterVec,
    /// Client-side timeouts by `phase`.
    pub http_timeouts: IntCounterVec,
    /// Admin requests without the right token.
    pub admin_denied: IntCounter,
    /// Durations by `group`.
    pub http_duration: HistogramVec,
    /// Requests in flight.
    pub http_in_flight: IntGauge,
    /// IP denials by `group`.
    pub ip_denials: IntCounterVec,
    /// Load-shed requests.
    pub load_shed: IntCounter,
    /// Proof checks by `result`.
    pub proof: IntCounterVec,
    /// JWT checks by `kind`, `result`.
    pub jwt: IntCounterVec,
    /// WOPI operations by `op`, `status_class`.
    pub wopi_ops: IntCounterVec,
    /// Locks held.
    pub locks_held: IntGauge,
    /// Lock operations by `op`, `result`.
    pub lock_ops: IntCounterVec,
    /// Expired locks.
    pub locks_expired: IntCounter,
    /// Sweep durations.
    pub sweep_duration: Histogram,
    /// Sessions by `result`.
    pub sessions: IntCounterVec,
    /// Callback attempts by `status`, `result`.
    pub callbacks_sent: IntCounterVec,
    /// Pending deliveries.
    pub deliveries_pending: IntGauge,
    /// Age of the oldest pending delivery.
    pub delivery_oldest: IntGauge,
    /// Upstream durations by `op`.
    pub upstream_duration: HistogramVec,
    /// Upstream errors by `op`, `kind`.
    pub upstream_errors: IntCounterVec,
    /// Discovery fetches by `result`.
    pub discovery: IntCounterVec,
    /// Spool bytes.
    pub spool_bytes: IntGauge,
    /// File bytes by `direction`.
    pub bytes: IntCounterVec,
    /// Upstream Docs health.
    pub upstream_up: IntGauge,
    /// Open proxied tunnels.
    pub tunnels: IntGauge,
    /// Proxied bytes by `direction`.
    pub proxy_bytes: IntCounterVec,
    /// Client face: calls to hosts by `op`, `status`.
    pub host_calls: IntCounterVec,
    /// Client face: editor opens by `mode`, `result`.
    pub editor_opens: IntCounterVec,
    /// Client face: Docs callbacks by `status`, `result`.
    pub docs_callbacks: IntCounterVec,
    /// Client face: recovery copies held.
    pub recovery: IntGauge,
    /// Client face: lock refreshes by `result`.
    pub lock_refreshes: IntCounterVec,
    /// Reloads by `result`.
    pub reloads: IntCounterVec,
    /// This instance, by `instance` and `mode`.
    pub instance_info: IntGaugeVec,
}

fn counter_vec(r: &Registry, (name, help): (&str, &str), labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn counter(r: &Registry, (name, help): (&str, &str)) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn gauge(r: &Registry, (name, help): (&str, &str)) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn histogram_vec(r: &Registry, (name, help): (&str, &str), labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    h
}

impl Metrics {
    /// Registers every family on a new registry. Panics only on a programming error
    /// (a duplicate or malformed name), which the unit test below would catch.
    pub fn register() -> Self {
        #[allow(clippy::expect_used)]
        let registry = Registry::new_custom(Some("wopi_gateway".into()), None)
            .expect("the prefix is a valid name");
        let r = &registry;
        let build = IntGaugeVec::new(
            Opts::new(names::BUILD_INFO.0, names::BUILD_INFO.1),
            &["version", "commit"],
        )
        .unwrap_or_else(|e| panic!("build_info: {e}"));
        r.register(Box::new(build.clone()))
            .unwrap_or_else(|e| panic!("build_info: {e}"));
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("WOPI_GATEWAY_COMMIT").unwrap_or("unknown"),
            ])
            .set(1);
        let sweep = Histogram::with_opts(
            HistogramOpts::new(names::SWEEP_DURATION.0, names::SWEEP_DURATION.1)
                .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .unwrap_or_else(|e| panic!("sweep: {e}"));
        r.register(Box::new(sweep.clone()))
            .unwrap_or_else(|e| panic!("sweep: {e}"));
        let http_requests = counter_vec(r, names::HTTP_REQUESTS, &["group", "status_class"]);
        let http_duration = histogram_vec(r, names::HTTP_DURATION, &["group"]);
        let by_group = crate::access::RouteGroup::ALL
            .iter()
            .map(|g| GroupMetrics {
                requests: ["1xx", "2xx", "3xx", "4xx", "5xx"]
                    .map(|c| http_requests.with_label_values(&[g.as_str(), c])),
                duration: http_duration.with_label_values(&[g.as_str()]),
            })
            .collect();
        Metrics {
            by_group: std::sync::Arc::new(by_group),
            http_requests,
            http_unrouted: counter_vec(r, names::HTTP_UNROUTED, &["status"]),
            http_refused: counter_vec(r, names::HTTP_REFUSED, &["rule"]),
            connections_open: gauge(r, names::CONNECTIONS_OPEN),
            connections_limited: counter(r, names::CONNECTIONS_LIMITED),
            accept_errors: counter_vec(r, names::ACCEPT_ERRORS, &["role"]),
            http_timeouts: counter_vec(r, names::HTTP_TIMEOUTS, &["phase"]),
            admin_denied: counter(r, names::ADMIN_DENIED),
            http_duration,
            http_in_flight: gauge(r, names::HTTP_IN_FLIGHT),
            ip_denials: counter_vec(r, names::IP_DENIALS, &["group"]),
            load_shed: counter(r, names::LOAD_SHED),
            proof: counter_vec(r, names::PROOF, &["result"]),
            jwt: counter_vec(r, names::JWT, &["kind", "result"]),
            wopi_ops: counter_vec(r, names::WOPI_OPS, &["op", "status_class"]),
            locks_held: gauge(r, names::LOCKS_HELD),
            lock_ops: counter_vec(r, names::LOCK_OPS, &["op", "result"]),
            locks_expired: counter(r, names::LOCKS_EXPIRED),
            sweep_duration: sweep,
            sessions: counter_vec(r, names::SESSIONS, &["result"]),
            callbacks_sent: counter_vec(r, names::CALLBACKS_SENT, &["status", "result"]),
            deliveries_pending: gauge(r, names::DELIVERIES_PENDING),
            delivery_oldest: gauge(r, names::DELIVERY_OLDEST),
            upstream_duration: histogram_vec(r, names::UPSTREAM_DURATION, &["op"]),
            upstream_errors: counter_vec(r, names::UPSTREAM_ERRORS, &["op", "kind"]),
            discovery: counter_vec(r, names::DISCOVERY, &["result"]),
            spool_bytes: gauge(r, names::SPOOL_BYTES),
            bytes: counter_vec(r, names::BYTES, &["direction"]),
            upstream_up: gauge(r, names::UPSTREAM_UP),
            tunnels: gauge(r, names::TUNNELS),
            proxy_bytes: counter_vec(r, names::PROXY_BYTES, &["direction"]),
            host_calls: counter_vec(r, names::HOST_CALLS, &["op", "status"]),
            editor_opens: counter_vec(r, names::EDITOR_OPENS, &["mode", "result"]),
            docs_callbacks: counter_vec(r, names::DOCS_CALLBACKS, &["status", "result"]),
            recovery: gauge(r, names::RECOVERY),
            lock_refreshes: counter_vec(r, names::LOCK_REFRESHES, &["result"]),
            reloads: counter_vec(r, names::RELOADS, &["result"]),
            instance_info: {
                let g = IntGaugeVec::new(
                    Opts::new(names::INSTANCE_INFO.0, names::INSTANCE_INFO.1),
                    &["instance", "mode"],
                )
                .unwrap_or_else(|e| panic!("instance_info: {e}"));
                r.register(Box::new(g.clone()))
                    .unwrap_or_else(|e| panic!("instance_info: {e}"));
                // Until the gateway names the instance it runs as (Metrics::set_instance).
                g.with_label_values(&[&crate::settings::default_instance_id(), "single"])
                    .set(1);
                g
            },
            registry,
        }
        .with_zero_series()
    }

    /// Names the instance in `instance_info`.
    pub(crate) fn set_instance(&self, instance: &str, mode: &str) {
        self.instance_info.reset();
        self.instance_info
            .with_label_values(&[instance, mode])
            .set(1);
    }

    /// Creates the series dashboards and alerts look at, at zero, so every documented family
    /// is exported from the start (a labelled family has no series until its first event).
    fn with_zero_series(self) -> Self {
        fn zero(v: &IntCounterVec, combos: &[&[&str]]) {
            for c in combos {
                let _ = v.with_label_values(c);
            }
        }
        let groups: Vec<&str> = crate::access::RouteGroup::ALL
            .iter()
            .map(|g| g.as_str())
            .collect();
        for g in &groups {
            let _ = self.ip_denials.with_label_values(&[g]);
        }
        zero(&self.http_unrouted, &[&["400"], &["414"], &["431"]]);
        zero(&self.accept_errors, &[&["public"], &["admin"]]);
        zero(
            &self.http_refused,
            &[
                &["host-missing"],
                &["transfer-encoding-and-content-length"],
                &["body-incomplete"],
            ],
        );
        zero(&self.http_timeouts, &[&["head"], &["body"]]);
        zero(
            &self.proof,
            &[
                &["ok"],
                &["ok_old_key"],
                &["signature"],
                &["stale"],
                &["missing"],
            ],
        );
        zero(
            &self.jwt,
            &[
                &["access_token", "ok"],
                &["access_token", "signature"],
                &["integrator_config", "ok"],
                &["docs_callback", "ok"],
                &["download", "ok"],
            ],
        );
        zero(
            &self.wopi_ops,
            &[
                &["CheckFileInfo", "2xx"],
                &["GetFile", "2xx"],
                &["PutFile", "2xx"],
            ],
        );
        zero(
            &self.lock_ops,
            &[
                &["lock", "ok"],
                &["lock", "conflict"],
                &["lock", "unavailable"],
                &["unlock", "ok"],
            ],
        );
        zero(&self.sessions, &[&["ok"], &["refused"]]);
        zero(
            &self.callbacks_sent,
            &[
                &["1", "ok"],
                &["2", "ok"],
                &["2", "error"],
                &["4", "ok"],
                &["6", "ok"],
            ],
        );
        for op in [
            "document_download",
            "docs_proxy",
            "wopi_host",
            "healthcheck",
        ] {
            let _ = self.upstream_duration.with_label_values(&[op]);
        }
        zero(
            &self.upstream_errors,
            &[&["document_download", "connect"], &["wopi_host", "connect"]],
        );
        zero(&self.discovery, &[&["ok"], &["error"]]);
        zero(&self.bytes, &[&["in"], &["out"]]);
        zero(&self.proxy_bytes, &[&["upstream"], &["downstream"]]);
        zero(
            &self.host_calls,
            &[
                &["CheckFileInfo", "2xx"],
                &["PutFile", "2xx"],
                &["PutFile", "4xx"],
            ],
        );
        zero(
            &self.editor_opens,
            &[&["edit", "ok"], &["view", "ok"], &["edit", "refused"]],
        );
        zero(
            &self.docs_callbacks,
            &[&["1", "ok"], &["2", "ok"], &["2", "failed"], &["4", "ok"]],
        );
        zero(&self.lock_refreshes, &[&["ok"], &["error"], &["relocked"]]);
        zero(&self.reloads, &[&["ok"], &["error"]]);
        self
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Every registered family name (for the docs test).
    pub fn family_names(&self) -> Vec<String> {
        self.registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect()
    }
}

impl Metrics {
    /// Counts a request head the HTTP parser refused: by exact status, and in the request
    /// counter under the group `unrouted`.
    pub fn count_unrouted(&self, status: u16) {
        let label = match status {
            405 => "405",
            414 => "414",
            417 => "417",
            431 => "431",
            501 => "501",
            505 => "505",
            _ => "400",
        };
        self.http_unrouted.with_label_values(&[label]).inc();
        let class = if status >= 500 { "5xx" } else { "4xx" };
        self.http_requests
            .with_label_values(&["unrouted", class])
            .inc();
    }

    /// Counts a request refused by a framing rule of the front (`h1`): by rule, and as an
    /// unrouted request by status.
    pub fn count_refused(&self, reject: h1::Reject) {
        self.http_refused.with_label_values(&[reject.rule]).inc();
        self.count_unrouted(reject.status);
    }

    /// Counts an admin request refused for its token.
    pub fn count_admin_denied(&self) {
        self.admin_denied.inc();
        tracing::warn!("admin API request without a valid bearer token");
    }

    /// Counts one JWT check of `kind` by its result, passing the result through.
    pub fn count_jwt<T>(
        &self,
        kind: &str,
        r: Result<T, docs_api::JwtError>,
    ) -> Result<T, docs_api::JwtError> {
        let label = match &r {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        self.jwt.with_label_values(&[kind, label]).inc();
        r
    }
}

/// `2xx`, `4xx`, … for a status code.
pub(crate) fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

impl locks::SweepObserver for Metrics {
    fn on_sweep(&self, _removed: usize, elapsed: Duration) {
        // Expirations are counted where their events are consumed (they also happen lazily).
        self.sweep_duration.observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_renders() {
        let m = Metrics::register();
        m.http_requests.with_label_values(&["wopi", "2xx"]).inc();
        let text = m.render();
        assert!(text.contains("wopi_gateway_build_info"));
        assert!(
            text.contains(
                "wopi_gateway_http_requests_total{group=\"wopi\",status_class=\"2xx\"} 1"
            )
        );
    }
}

#[cfg(test)]
mod docs_tests {
    #[test]
    fn every_family_is_documented() {
        let doc = include_str!("../../../docs/metrics.md");
        let m = super::Metrics::register();
        for name in m.family_names() {
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} is missing from docs/metrics.md"
            );
        }
    }

    #[test]
    fn every_documented_family_is_exported_at_start() {
        let doc = include_str!("../../../docs/metrics.md");
        let text = super::Metrics::register().render();
        let documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `wopi_gateway_"))
            .filter_map(|l| l.split('`').next())
            .collect();
        assert!(documented.len() > 20, "{documented:?}");
        for name in documented {
            assert!(
                text.contains(&format!("# TYPE wopi_gateway_{name} ")),
                "wopi_gateway_{name} is documented but not exported before its first event"
            );
        }
    }
}
