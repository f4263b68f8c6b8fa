//! wopi-gateway's server: listeners, the request path, the host face, the client face and
//! the reverse proxy, on typed [`Settings`].
//!
//! [`run`] takes already-bound listeners and a shutdown token, so tests can bind port 0 and
//! stop it cleanly; the binary does TOML, signals and logging.
//!
//! # Layout
//! - [`settings`]: typed settings and their defaults.
//! - `access`: route groups, client address, IP allowlists.
//! - `app`: shared state and the admin routes.
//! - `stack`: the request path, one tower stack around the whole public router.
//! - `server`: accept loops, TLS, timeouts, graceful shutdown.
//! - `error`: [`GatewayError`], the one place errors become responses.
//! - `metrics`: Prometheus families.
//! - `http_client`: the pooled outgoing HTTP client.
//! - `reload`: hot reload on SIGHUP.
//! - `proxy`: the reverse proxy to ONLYOFFICE Docs (HTTP and WebSockets).
//! - `client_face`: WOPI hosts get ONLYOFFICE Docs through the Docs API.
//! - `host_face`: WOPI endpoints for storages that speak only the Docs API.
//! - `discovery_cache`: trusted WOPI clients' discovery (proof keys, actions).
//! - `spool`: durable staging of content on disk.
//! - `urls`: allowed-origin checks and redaction of secrets from logged text.

mod access;
mod app;
mod body;
mod client_face;
mod clock;
mod cluster;
mod content;
mod discovery_cache;
mod error;
mod host_face;
mod html;
mod http_client;
mod metrics;
mod proxy;
mod random;
mod reload;
mod server;
pub mod settings;
mod spool;
mod stack;
mod state;
mod translate;
mod urls;

// What the binary (CLI, doctor, check-config, logging) uses; everything else is internal.
pub use access::{AllowList, RouteGroup};
pub use app::{Listeners, StartError, run, run_with_reload};
pub use clock::iso_time;
pub use error::{Credential, GatewayError, HostRefusal, UpstreamKind};
pub use host_face::deliveries::pending_for_cli;
pub use http_client::{HttpClient, OutBody};
pub use metrics::Metrics;
pub use reload::Reload;
pub use server::CertResolver;
pub use settings::Settings;
pub use urls::redact;
