//! The content janitor: removes content nothing refers to any more.
//!
//! Content is never removed when it is replaced (a GetFile may still stream it, a delivery
//! may still send it, an integrator may still download it). An object under `files/` goes
//! once it is not the current content of its file, no pending or discarded delivery names
//! it, no download URL of an accepted delivery is still valid for it, and it is older than
//! the download-URL lifetime. Every instance may run it: each decision reads the shared
//! state, and removing twice is harmless.

use super::HostCtx;
use super::deliveries::{Delivered, Delivery, NS_DELIVERED, NS_DELIVERY, NS_DISCARDED};
use crate::error::GatewayError;
use std::collections::HashSet;
use std::time::Duration;

/// One pass: returns how many objects were removed.
pub(crate) async fn sweep(state: &HostCtx) -> Result<usize, GatewayError> {
    let min_age = state.settings().host_face.download_url_ttl + Duration::from_secs(60);
    let now = state.now_ms();
    // Listed first: anything created after this listing is younger than `min_age`.
    let mut objects = state
        .content
        .list("files/")
        .await
        .map_err(GatewayError::content)?;
    // Content of deliveries moved from an earlier release's spool, and convert-to uploads
    // an instance that died could not remove.
    for prefix in ["deliveries/", "convert/"] {
        objects.extend(
            state
                .content
                .list(prefix)
                .await
                .map_err(GatewayError::content)?,
        );
    }
    let files = state.face.files.snapshot().await?;
    // Files an instance of an earlier release opened, in a cluster being upgraded.
    state.face.files.catch_up_index(&files).await;
    let mut keep: HashSet<String> = files
        .iter()
        .filter_map(|m| {
            m.content
                .as_ref()
                .map(|c| super::files::content_key(&m.file_id, c))
        })
        .collect();
    for ns in [NS_DELIVERY, NS_DISCARDED] {
        keep.extend(
            state
                .shared
                .all_json::<Delivery>(ns)
                .await?
                .into_iter()
                .filter_map(|(_, d)| d.content),
        );
    }
    for (id, d) in state.shared.all_json::<Delivered>(NS_DELIVERED).await? {
        if d.until_ms > now {
            keep.insert(d.key);
        } else {
            state.shared.delete(NS_DELIVERED, &id).await?;
        }
    }
    let mut removed = 0;
    for o in objects {
        let old = now.saturating_sub(o.modified_ms) > min_age.as_millis() as u64;
        if !old || keep.contains(&o.key) {
            continue;
        }
        state
            .content
            .delete(&o.key)
            .await
            .map_err(GatewayError::content)?;
        removed += 1;
    }
    if removed > 0 {
        tracing::info!(removed, "content janitor removed content nothing refers to");
    }
    Ok(removed)
}

/// Runs [`sweep`] every `every` until `shutdown`.
pub(crate) fn spawn(
    state: HostCtx,
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = sweep(&state).await {
                tracing::warn!(error = %e, "content janitor pass failed; next pass retries");
            }
            state.metrics.spool_bytes.set(state.content.usage() as i64);
        }
    });
}
