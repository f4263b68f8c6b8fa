//! The editing session of a file: editors join (status 1 to the integrator), and the
//! session ends when the last lock goes (Unlock, or expiry) — or, for a session that never
//! took a lock, after `host_face.session_idle_timeout_seconds` without a WOPI request — with
//! status 2 if content was staged, else 4.

use super::HostCtx;
use super::files::{self, FileEntry};
use super::token;
use crate::error::GatewayError;
use docs_api::{ActionKind, Callback, CallbackAction};
use std::sync::Arc;

/// The file's state: known from the session open, or rebuilt from the self-contained access
/// token (e.g. after the spool was lost).
pub(crate) async fn entry_for(
    state: &HostCtx,
    c: &token::AccessClaims,
) -> Result<Arc<tokio::sync::Mutex<FileEntry>>, GatewayError> {
    let init = || files::FileMeta {
        file_id: c.fid.clone(),
        integrator: c.int.clone(),
        doc_url: c.url.clone(),
        doc_key: c.key.clone(),
        title: c.title.clone(),
        file_type: c.ft.clone(),
        owner_id: c.uid.clone(),
        callback_url: c.cb.clone(),
        version: format!("k.{}", c.key),
        ..Default::default()
    };
    Ok(state.face.files.get_or_create(&c.fid, init).await?)
}

/// Adds a user to the file's editing session; a new editor is announced with status 1.
pub(crate) async fn join(
    state: &HostCtx,
    entry: &mut FileEntry,
    user: &str,
) -> Result<(), GatewayError> {
    if entry.meta.editors.iter().any(|u| u == user) {
        return Ok(());
    }
    entry.meta.editors.push(user.to_owned());
    entry.persist().await?;
    tracing::info!(file_id = %entry.meta.file_id, editors = entry.meta.editors.len(), stage = "editor-joined", "editor joined the session");
    if let Some(cb) = entry.meta.callback_url.clone() {
        let body = Callback::editing(
            &entry.meta.doc_key,
            &entry.meta.editors,
            CallbackAction::new(ActionKind::Connected, user),
        );
        state
            .face
            .deliveries
            .enqueue(
                &entry.meta.file_id,
                &entry.meta.integrator,
                &cb,
                &body,
                None,
            )
            .await?;
    }
    Ok(())
}

/// Ends the file's editing session (Unlock, or the lock expired): status 2 with the content
/// when it changed in the session, else status 4.
pub(crate) async fn end_session(
    state: &HostCtx,
    file_id: &str,
    why: &'static str,
) -> Result<(), GatewayError> {
    let Some(entry) = state.face.files.get(file_id) else {
        return Ok(());
    };
    let mut e = entry.lock().await;
    if e.meta.editors.is_empty() && !e.meta.session_modified {
        return Ok(());
    }
    let last = e
        .meta
        .last_editor
        .clone()
        .or_else(|| e.meta.editors.last().cloned())
        .unwrap_or_default();
    match e.meta.callback_url.clone() {
        None if e.meta.session_modified => {
            tracing::error!(
                file_id,
                "session ended with changes but the integrator gave no callbackUrl; the edit stays in the spool"
            );
        }
        None => {}
        Some(cb) => {
            let lastsave = crate::clock::js_time(e.meta.modified_ms);
            if e.meta.session_modified {
                let content = e
                    .content_path()
                    .ok_or_else(|| GatewayError::Internal("modified file has no content".into()))?;
                let body =
                    Callback::must_save(&e.meta.doc_key, &last, lastsave, !e.meta.undelivered);
                let ft = e.meta.file_type.clone();
                state
                    .face
                    .deliveries
                    .enqueue(
                        file_id,
                        &e.meta.integrator,
                        &cb,
                        &body,
                        Some((&content, &ft)),
                    )
                    .await?;
            } else {
                let body = Callback::closed(&e.meta.doc_key, &last);
                state
                    .face
                    .deliveries
                    .enqueue(file_id, &e.meta.integrator, &cb, &body, None)
                    .await?;
            }
        }
    }
    tracing::info!(
        file_id,
        why,
        modified = e.meta.session_modified,
        stage = "session-ended",
        "editing session ended"
    );
    e.meta.editors.clear();
    e.meta.session_modified = false;
    e.meta.undelivered = false;
    e.persist().await?;
    Ok(())
}

/// Consumes lock expiries: the last editor's lock ran out, so the session ends.
pub(crate) fn spawn_expiry_consumer(
    state: HostCtx,
    mut expiries: tokio::sync::mpsc::UnboundedReceiver<locks::ExpiryEvent>,
) {
    tokio::spawn(async move {
        while let Some(ev) = expiries.recv().await {
            state.metrics.locks_expired.inc();
            tracing::info!(file_id = %ev.file_id, "WOPI lock expired");
            if let Err(e) = end_session(&state, &ev.file_id, "lock expired").await {
                tracing::error!(file_id = %ev.file_id, error = %e, "cannot end the session after the lock expired");
            }
        }
    });
}

/// Ends sessions that hold no lock and saw no WOPI request for
/// `host_face.session_idle_timeout_seconds` (a viewer, or an editor that never locked):
/// without it the integrator would hear "editing" forever.
pub(crate) fn spawn_idle_sweeper(state: HostCtx, shutdown: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        loop {
            let idle = state.settings().host_face.session_idle_timeout;
            let tick = (idle / 4).clamp(
                std::time::Duration::from_millis(100),
                std::time::Duration::from_secs(30),
            );
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(tick) => {}
            }
            for (fid, entry) in state.face.files.entries() {
                if let Err(e) = end_if_idle(&state, &fid, &entry, idle).await {
                    tracing::warn!(file_id = %fid, error = %e, "idle check of an editing session failed");
                }
            }
        }
    });
}

async fn end_if_idle(
    state: &HostCtx,
    fid: &str,
    entry: &tokio::sync::Mutex<FileEntry>,
    idle: std::time::Duration,
) -> Result<(), GatewayError> {
    if entry.lock().await.meta.editors.is_empty() {
        return Ok(());
    }
    let now = state.now_ms();
    // A session from before a restart has no activity yet: its idle time starts now.
    let last = *state.face.activity.entry(fid.to_owned()).or_insert(now);
    if now.saturating_sub(last) < idle.as_millis() as u64 {
        return Ok(());
    }
    if state.locks.get(fid).await?.is_some() {
        // A locked session ends with its lock (Unlock or expiry).
        return Ok(());
    }
    state.face.activity.remove(fid);
    tracing::info!(file_id = %fid, idle_seconds = idle.as_secs(), "editing session idle without a lock");
    end_session(state, fid, "idle without a lock").await
}
