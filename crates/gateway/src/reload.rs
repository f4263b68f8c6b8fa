//! Hot reload (SIGHUP): validate, prepare everything that can fail, then swap.
//!
//! Swapped: allowlists, trusted proxies, integrators, profiles, body limits, shutdown grace,
//! delivery and lock-refresh timings, proof settings, the TLS
//! certificate and key, proof keys (a new key becomes current; the previous current becomes
//! old unless an old key file is named), WOPI clients' discovery URLs. Listeners, the data
//! directory, the lock store, the upstream URL, connection timeouts, the concurrency limit
//! and outgoing-HTTP timeouts need a restart:
//! a change to them is logged and the running value kept. Connections and in-flight
//! requests are untouched.

use crate::client_face::ClientCtx;
use crate::host_face::HostCtx;
use crate::server::CertResolver;
use crate::settings::Settings;
use crate::state::Core;
use std::sync::Arc;

/// What the binary sends on SIGHUP: the new settings, or why the file did not validate.
pub type Reload = Result<Settings, String>;

fn refuse(state: &Core, why: &str) {
    state.metrics.reloads.with_label_values(&["error"]).inc();
    tracing::error!(error = %why, "reload refused; the running settings stay in force");
}

/// Applies one reload.
pub(crate) async fn apply(
    state: &Core,
    host: &HostCtx,
    client: &ClientCtx,
    tls: Option<&CertResolver>,
    reload: Reload,
) {
    let mut new = match reload {
        Ok(s) => s,
        Err(why) => return refuse(state, &why),
    };
    let old = state.settings();
    let restart_only = [
        ("server.listen", new.server.listen != old.server.listen),
        (
            "server.admin_listen",
            new.server.admin_listen != old.server.admin_listen,
        ),
        (
            "server.data_dir",
            new.server.data_dir != old.server.data_dir,
        ),
        (
            "server.tls (on/off)",
            new.server.tls.is_some() != old.server.tls.is_some(),
        ),
        (
            "locks",
            new.locks.kind != old.locks.kind || new.locks.store != old.locks.store,
        ),
        (
            "cluster",
            new.cluster.redis != old.cluster.redis
                || new.cluster.key_prefix != old.cluster.key_prefix
                || new.cluster.instance_id != old.cluster.instance_id,
        ),
        ("content", new.content != old.content),
        (
            "docs.url",
            new.docs.url != old.docs.url || new.docs.ca_file != old.docs.ca_file,
        ),
        (
            "upstream",
            new.upstream.connect_timeout != old.upstream.connect_timeout
                || new.upstream.request_timeout != old.upstream.request_timeout,
        ),
        (
            "server.header_read_timeout_seconds",
            new.server.header_read_timeout != old.server.header_read_timeout,
        ),
        (
            "server.idle_timeout_seconds",
            new.server.idle_timeout != old.server.idle_timeout,
        ),
        (
            "server.request_timeout_seconds",
            new.server.request_timeout != old.server.request_timeout,
        ),
        (
            "server.max_concurrent_requests",
            new.server.max_concurrent_requests != old.server.max_concurrent_requests,
        ),
        (
            "server.connection_threads",
            new.server.connection_threads != old.server.connection_threads,
        ),
        (
            "server.log_format",
            new.server.log_format != old.server.log_format,
        ),
    ];
    for (key, changed) in restart_only {
        if changed {
            tracing::warn!(
                key,
                "changed, but takes effect only after a restart; keeping the running value"
            );
        }
    }
    new.server.listen = old.server.listen;
    new.server.admin_listen = old.server.admin_listen;
    new.server.data_dir.clone_from(&old.server.data_dir);
    new.locks = old.locks.clone();
    new.cluster.redis.clone_from(&old.cluster.redis);
    new.cluster.key_prefix.clone_from(&old.cluster.key_prefix);
    new.cluster.instance_id.clone_from(&old.cluster.instance_id);
    new.content = old.content.clone();
    new.docs.url.clone_from(&old.docs.url);
    new.docs.ca_file.clone_from(&old.docs.ca_file);
    new.upstream = old.upstream.clone();
    new.server.header_read_timeout = old.server.header_read_timeout;
    new.server.idle_timeout = old.server.idle_timeout;
    new.server.request_timeout = old.server.request_timeout;
    new.server.max_concurrent_requests = old.server.max_concurrent_requests;
    new.server.log_format = old.server.log_format;
    if new.server.tls.is_some() != old.server.tls.is_some() {
        new.server.tls.clone_from(&old.server.tls);
    }
    // Prepare everything that can fail before changing anything.
    let cert = match (&new.server.tls, tls) {
        (Some(t), Some(_)) => match CertResolver::load(t) {
            Ok(c) => Some(c),
            Err(e) => return refuse(state, &format!("server.tls: {e}")),
        },
        _ => None,
    };
    let keys = match client.face.prepare_keys(&new) {
        Ok(k) => k,
        Err(e) => return refuse(state, &e),
    };
    // Commit.
    if let (Some(c), Some(r)) = (cert, tls) {
        r.store(c);
    }
    let rotated = keys.current.public_key() != client.face.keys().current.public_key();
    client.face.store_keys(keys);
    let urls_changed = new.host_face.discovery_urls != old.host_face.discovery_urls;
    if urls_changed {
        host.face
            .discovery
            .set_urls(new.host_face.discovery_urls.clone());
    }
    state.store_settings(Arc::new(new));
    if urls_changed {
        host.face.discovery.refresh_all().await;
    }
    state.metrics.reloads.with_label_values(&["ok"]).inc();
    tracing::info!(
        proof_key_rotated = rotated,
        discovery_urls_changed = urls_changed,
        "settings reloaded"
    );
}
