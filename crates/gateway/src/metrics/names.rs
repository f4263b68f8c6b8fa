//! Every metric name and help text, in one table (mirrored in docs/metrics.md).
//! Names are registered under the `wopi_gateway_` prefix.

pub(crate) const BUILD_INFO: (&str, &str) = ("build_info", "Build information; always 1.");
pub(crate) const INSTANCE_INFO: (&str, &str) = (
    "instance_info",
    "This instance (cluster.instance_id) and where its state lives (mode: single or cluster); always 1.",
);
pub(crate) const HTTP_REQUESTS: (&str, &str) = (
    "http_requests_total",
    "Requests answered, by route group and status class.",
);
pub(crate) const HTTP_UNROUTED: (&str, &str) = (
    "http_unrouted_requests_total",
    "Request heads refused by the HTTP parser before routing (400, 414, 431), by status.",
);
pub(crate) const HTTP_REFUSED: (&str, &str) = (
    "http_refused_requests_total",
    "Request heads and bodies refused by an HTTP/1.1 framing rule (docs/architecture.md, \"The front\"), by rule.",
);
pub(crate) const CONNECTIONS_OPEN: (&str, &str) = (
    "connections_open",
    "Connections open on the public listener.",
);
pub(crate) const CONNECTIONS_LIMITED: (&str, &str) = (
    "connections_at_limit_total",
    "Times the public listener stopped accepting because server.max_connections were open.",
);
pub(crate) const ACCEPT_ERRORS: (&str, &str) = (
    "accept_errors_total",
    "Connections the listeners failed to accept (descriptor limit and the like), by listener role.",
);
pub(crate) const HTTP_TIMEOUTS: (&str, &str) = (
    "http_timeouts_total",
    "Requests or connections ended by a client-side timeout, by phase (head: no complete head in time; body: the request body stalled).",
);
pub(crate) const ADMIN_DENIED: (&str, &str) = (
    "admin_auth_failures_total",
    "Admin API requests refused for a missing or wrong bearer token.",
);
pub(crate) const HTTP_DURATION: (&str, &str) = (
    "http_request_duration_seconds",
    "Time to the response head, by route group.",
);
pub(crate) const HTTP_IN_FLIGHT: (&str, &str) =
    ("http_requests_in_flight", "Requests being served.");
pub(crate) const IP_DENIALS: (&str, &str) = (
    "ip_denials_total",
    "Requests refused by the IP allowlist, by route group.",
);
pub(crate) const LOAD_SHED: (&str, &str) = (
    "load_shed_total",
    "Requests refused with 503 because the concurrency limit was reached.",
);
pub(crate) const PROOF: (&str, &str) = (
    "proof_verifications_total",
    "WOPI proof checks, by result (ok or failure reason).",
);
pub(crate) const JWT: (&str, &str) = (
    "jwt_verifications_total",
    "JWT checks, by kind of token and result.",
);
pub(crate) const WOPI_OPS: (&str, &str) = (
    "wopi_operations_total",
    "WOPI operations served by the host face, by operation and status class.",
);
pub(crate) const LOCKS_HELD: (&str, &str) = ("locks_held", "WOPI locks currently held.");
pub(crate) const LOCK_OPS: (&str, &str) = (
    "lock_operations_total",
    "Lock store operations, by operation and result.",
);
pub(crate) const LOCKS_EXPIRED: (&str, &str) = (
    "locks_expired_total",
    "Locks removed because they expired or reached their maximum age.",
);
pub(crate) const SWEEP_DURATION: (&str, &str) = (
    "lock_sweep_duration_seconds",
    "Duration of one lock sweeper pass.",
);
pub(crate) const SESSIONS: (&str, &str) = (
    "sessions_opened_total",
    "Host-face editing sessions opened by integrators, by result.",
);
pub(crate) const CALLBACKS_SENT: (&str, &str) = (
    "callbacks_sent_total",
    "Callback delivery attempts to integrators, by status and result.",
);
pub(crate) const DELIVERIES_PENDING: (&str, &str) = (
    "deliveries_pending",
    "Callbacks waiting to be delivered (kept in the spool).",
);
pub(crate) const DELIVERY_OLDEST: (&str, &str) = (
    "delivery_oldest_pending_seconds",
    "Age of the oldest pending delivery, 0 when none.",
);
pub(crate) const UPSTREAM_DURATION: (&str, &str) = (
    "upstream_request_duration_seconds",
    "Outgoing HTTP request time to the response head, by operation.",
);
pub(crate) const UPSTREAM_ERRORS: (&str, &str) = (
    "upstream_errors_total",
    "Outgoing HTTP failures, by operation and kind.",
);
pub(crate) const DISCOVERY: (&str, &str) = (
    "discovery_refreshes_total",
    "WOPI client discovery fetches, by result.",
);
pub(crate) const SPOOL_BYTES: (&str, &str) = (
    "spool_bytes",
    "Bytes of staged and cached content in the spool.",
);
pub(crate) const BYTES: (&str, &str) = (
    "bytes_streamed_total",
    "File bytes streamed, by direction (in: from clients/upstreams, out: to them).",
);
pub(crate) const UPSTREAM_UP: (&str, &str) = (
    "upstream_up",
    "1 when the upstream ONLYOFFICE Docs answers its /healthcheck, else 0.",
);
pub(crate) const TUNNELS: (&str, &str) = (
    "proxy_tunnels_open",
    "Upgraded connections (WebSockets) being proxied.",
);
pub(crate) const PROXY_BYTES: (&str, &str) = (
    "proxy_bytes_total",
    "Bytes proxied to and from ONLYOFFICE Docs, by direction (upstream, downstream).",
);
pub(crate) const HOST_CALLS: (&str, &str) = (
    "wopi_host_calls_total",
    "Client face: WOPI calls to hosts, by operation and status class (error = no answer).",
);
pub(crate) const EDITOR_OPENS: (&str, &str) = (
    "editor_opens_total",
    "Client face: editor pages opened, by mode and result.",
);
pub(crate) const DOCS_CALLBACKS: (&str, &str) = (
    "docs_callbacks_total",
    "Client face: callbacks received from ONLYOFFICE Docs, by status and result.",
);
pub(crate) const RECOVERY: (&str, &str) = (
    "recovery_copies",
    "Client face: saves kept in the spool because the WOPI host did not accept them.",
);
pub(crate) const LOCK_REFRESHES: (&str, &str) = (
    "lock_refreshes_total",
    "Client face: RefreshLock calls to hosts, by result.",
);
pub(crate) const RELOADS: (&str, &str) = ("reloads_total", "Settings reloads (SIGHUP), by result.");
