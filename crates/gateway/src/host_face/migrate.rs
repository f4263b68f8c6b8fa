//! One-time move of a spool written by an earlier release (`spool/host/files/<id>/meta.json`
//! with its content beside it, `spool/host/deliveries/<id>.json` + `.bin`) into the shared
//! state and the content store, so an upgrade keeps every staged edit and pending delivery.
//! The old folder is renamed `spool/host.migrated` afterwards (kept, never deleted).

use super::deliveries::{Delivery, NS_DELIVERY, NS_DISCARDED};
use super::files::{FileMeta, NS_FILE, content_key};
use crate::cluster::{Keep, Shared};
use crate::content::ContentStore;
use serde_json::Value;
use std::path::Path;

/// Moves what `<data_dir>/spool/host` holds, if anything; returns how many records moved.
pub(crate) async fn run(
    data_dir: &Path,
    shared: &Shared,
    content: &ContentStore,
) -> Result<usize, String> {
    let old = data_dir.join("spool").join("host");
    if !old.is_dir() {
        return Ok(0);
    }
    let mut moved = 0;
    if let Ok(mut dirs) = tokio::fs::read_dir(old.join("files")).await {
        while let Ok(Some(d)) = dirs.next_entry().await {
            let Ok(bytes) = tokio::fs::read(d.path().join("meta.json")).await else {
                continue;
            };
            let meta: FileMeta = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: {e}", d.path().display()))?;
            if let Some(name) = &meta.content {
                copy_in(
                    content,
                    &d.path().join(name),
                    &content_key(&meta.file_id, name),
                )
                .await?;
            }
            if shared
                .get(NS_FILE, &meta.file_id)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                shared
                    .put_json(NS_FILE, &meta.file_id, &meta, Keep::Durable)
                    .await
                    .map_err(|e| e.to_string())?;
                moved += 1;
            }
        }
    }
    for (dir, ns) in [
        (old.join("deliveries"), NS_DELIVERY),
        (old.join("deliveries").join("discarded"), NS_DISCARDED),
    ] {
        let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
            continue;
        };
        while let Ok(Some(e)) = entries.next_entry().await {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let mut v = read_json(&path).await?;
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            if id.is_empty() {
                continue;
            }
            if v["has_content"].as_bool() == Some(true) {
                let key = format!("deliveries/{id}.bin");
                copy_in(content, &path.with_extension("bin"), &key).await?;
                v["content"] = Value::String(key);
            }
            let d: Delivery =
                serde_json::from_value(v).map_err(|e| format!("{}: {e}", path.display()))?;
            shared
                .put_json(ns, &id, &d, Keep::Durable)
                .await
                .map_err(|e| e.to_string())?;
            moved += 1;
        }
    }
    let done = data_dir.join("spool").join("host.migrated");
    tokio::fs::rename(&old, &done)
        .await
        .map_err(|e| format!("{}: {e}", old.display()))?;
    tracing::warn!(records = moved, from = %old.display(), kept_as = %done.display(), "moved an earlier release's spool into the shared state and the content store");
    Ok(moved)
}

/// Moves the client face's recovery copies of an earlier release
/// (`spool/client/recovery/<stamp>.json` + `.bin`) the same way; the folder is renamed
/// `recovery.migrated`.
pub(crate) async fn run_recovery(
    data_dir: &Path,
    shared: &Shared,
    content: &ContentStore,
) -> Result<usize, String> {
    let old = data_dir.join("spool").join("client").join("recovery");
    let Ok(mut entries) = tokio::fs::read_dir(&old).await else {
        return Ok(0);
    };
    let mut moved = 0;
    while let Ok(Some(e)) = entries.next_entry().await {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Some(id) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        let mut v = read_json(&path).await?;
        let bin = path.with_extension("bin");
        if bin.is_file() {
            let key = format!("recovery/{id}.bin");
            copy_in(content, &bin, &key).await?;
            v["file"] = Value::String(content.locate(&key));
            v["content_key"] = Value::String(key);
        }
        v["id"] = Value::String(id.clone());
        shared
            .put_json(
                crate::client_face::saves::NS_RECOVERY,
                &id,
                &v,
                Keep::Durable,
            )
            .await
            .map_err(|e| e.to_string())?;
        moved += 1;
    }
    let done = old.with_file_name("recovery.migrated");
    tokio::fs::rename(&old, &done)
        .await
        .map_err(|e| format!("{}: {e}", old.display()))?;
    if moved > 0 {
        tracing::warn!(records = moved, kept_as = %done.display(), "moved an earlier release's recovery copies into the shared state and the content store");
    }
    Ok(moved)
}

/// A JSON file of the earlier spool; errors name the file.
async fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

async fn copy_in(content: &ContentStore, from: &Path, key: &str) -> Result<(), String> {
    let Ok(file) = std::fs::File::open(from) else {
        return Ok(()); // nothing to move (already gone)
    };
    let stream = crate::spool::read_stream(file);
    content
        .write(key, Box::pin(stream), u64::MAX)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            crate::spool::StreamError::Io(e) => format!("{key}: {e}"),
            crate::spool::StreamError::Source(e) => format!("{}: {e}", from.display()),
            crate::spool::StreamError::TooLarge => format!("{key}: too large"),
        })
}
