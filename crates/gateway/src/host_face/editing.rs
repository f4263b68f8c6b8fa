//! The editing session of a file: editors join (status 1 to the integrator), and the
//! session ends when the last lock goes (Unlock, or expiry) — or, for a session that never
//! took a lock, after `host_face.session_idle_timeout_seconds` without a WOPI request — with
//! status 2 if content was staged, else 4.

use super::HostCtx;
use super::files::{self, FileEntry, FileHandle};
use super::token;
use crate::cluster::Keep;
use crate::error::GatewayError;
use docs_api::{ActionKind, Callback, CallbackAction};
use std::time::Duration;

/// The file's state: known from the session open, or rebuilt from the self-contained access
/// token (e.g. after the spool was lost).
pub(crate) fn entry_for(state: &HostCtx, c: &token::AccessClaims) -> FileHandle {
    state.face.files.handle(files::FileMeta {
        file_id: c.fid.clone(),
        integrator: c.int.clone(),
        doc_url: c.url.clone(),
        doc_key: c.key.clone(),
        title: c.title.clone(),
        file_type: c.ft.clone(),
        owner_id: c.own.clone().unwrap_or_else(|| c.uid.clone()),
        callback_url: c.cb.clone(),
        version: format!("k.{}", c.key),
        ..Default::default()
    })
}

/// Files whose editing session has editors (listed, so the idle sweeper finds them).
const NS_SESSION: &str = "session";
/// When a file last saw a WOPI request (Unix ms).
const NS_ACTIVITY: &str = "activity";

/// Notes a WOPI request on a file (written to the shared state at most once a second per
/// file and instance; the local stamp updates in place).
pub(crate) async fn touch(state: &HostCtx, fid: &str) -> Result<(), GatewayError> {
    let now = state.now_ms();
    let due = match state.face.activity.get_mut(fid) {
        Some(at) if now.saturating_sub(*at) < 1000 => false,
        Some(mut at) => {
            *at = now;
            true
        }
        None => {
            state.face.activity.insert(fid.to_owned(), now);
            true
        }
    };
    if due {
        let ttl = state.settings().host_face.session_idle_timeout * 2 + Duration::from_secs(60);
        state.shared.put_stamp(NS_ACTIVITY, fid, now, ttl).await?;
    }
    Ok(())
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
    state
        .shared
        .put(NS_SESSION, &entry.meta.file_id, Vec::new(), Keep::Listed)
        .await?;
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
    let Some(mut e) = state.face.files.lock_existing(file_id).await? else {
        return Ok(());
    };
    if e.meta.editors.is_empty() && !e.meta.session_modified {
        state.shared.delete(NS_SESSION, file_id).await?;
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
                    .content_key()
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
    state.shared.delete(NS_SESSION, file_id).await?;
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
            let sessions = match state.shared.ids(NS_SESSION).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list editing sessions for the idle check");
                    continue;
                }
            };
            for fid in sessions {
                if let Err(e) = end_if_idle(&state, &fid, idle).await {
                    tracing::warn!(file_id = %fid, error = %e, "idle check of an editing session failed");
                }
            }
        }
    });
}

/// Ends the session of `fid` when it saw no WOPI request on any instance for `idle` and
/// holds no lock (every instance may check: ending is idempotent under the file's mutex).
async fn end_if_idle(
    state: &HostCtx,
    fid: &str,
    idle: std::time::Duration,
) -> Result<(), GatewayError> {
    let now = state.now_ms();
    let last = match state.shared.get_stamp(NS_ACTIVITY, fid).await? {
        Some(last) => last,
        None => {
            // A session from before a restart has no activity yet: its idle time starts now.
            let ttl = idle * 2 + Duration::from_secs(60);
            state.shared.put_stamp(NS_ACTIVITY, fid, now, ttl).await?;
            now
        }
    };
    if now.saturating_sub(last) < idle.as_millis() as u64 {
        return Ok(());
    }
    if state.locks.get(fid).await?.is_some() {
        // A locked session ends with its lock (Unlock or expiry).
        return Ok(());
    }
    state.face.activity.remove(fid);
    state.shared.delete(NS_ACTIVITY, fid).await?;
    tracing::info!(file_id = %fid, idle_seconds = idle.as_secs(), "editing session idle without a lock");
    end_session(state, fid, "idle without a lock").await
}
