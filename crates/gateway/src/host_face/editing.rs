//! The editing session of a file: editors join (status 1 to the integrator), and the
//! session ends when the last lock goes (Unlock, or expiry) — or, for a session that never
//! took a lock, after `host_face.session_idle_timeout_seconds` without a WOPI request — with
//! status 2 if content was staged, else 4. WOPI has no call for one user leaving while
//! others stay (the lock is shared); with `host_face.editor_idle_timeout_seconds`, an editor
//! whose access token made no WOPI request for that long while the session goes on is taken
//! to have left (status 1 with a disconnect action), and is back with the next request.

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

/// When an editor last made a WOPI request (Unix ms), by [`editor_key`].
const NS_EDITOR_ACTIVITY: &str = "editor-activity";

/// The key of a user's activity on a file.
fn editor_key(fid: &str, uid: &str) -> String {
    format!("{fid}/{uid}")
}

/// Whether the local stamp of `key` in `map` is due for a write (at most once a second),
/// updating it in place.
fn stamp_due(map: &dashmap::DashMap<String, u64>, key: &str, now: u64) -> bool {
    match map.get_mut(key) {
        Some(at) if now.saturating_sub(*at) < 1000 => false,
        Some(mut at) => {
            *at = now;
            true
        }
        None => {
            map.insert(key.to_owned(), now);
            true
        }
    }
}

/// Notes a WOPI request of the user of `c` on their file (written to the shared state at
/// most once a second per file, or editor, and instance; the local stamp updates in place).
pub(crate) async fn touch(state: &HostCtx, c: &token::AccessClaims) -> Result<(), GatewayError> {
    let now = state.now_ms();
    let settings = state.settings();
    if stamp_due(&state.face.activity, &c.fid, now) {
        let ttl = settings.host_face.session_idle_timeout * 2 + Duration::from_secs(60);
        state
            .shared
            .put_stamp(NS_ACTIVITY, &c.fid, now, ttl)
            .await?;
    }
    if let (true, Some(idle)) = (c.w, settings.host_face.editor_idle_timeout) {
        let key = editor_key(&c.fid, &c.uid);
        if stamp_due(&state.face.editor_activity, &key, now) {
            let ttl = idle * 2 + Duration::from_secs(60);
            state
                .shared
                .put_stamp(NS_EDITOR_ACTIVITY, &key, now, ttl)
                .await?;
        }
    }
    Ok(())
}

/// Tells the integrator that `user` joined or left the session (a status-1 callback with
/// the editors left and the action), as ONLYOFFICE Docs does.
async fn announce(
    state: &HostCtx,
    entry: &FileEntry,
    kind: ActionKind,
    user: &str,
) -> Result<(), GatewayError> {
    if let Some(cb) = entry.meta.callback_url.clone() {
        let body = Callback::editing(
            &entry.meta.doc_key,
            &entry.meta.editors,
            CallbackAction::new(kind, user),
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

/// Takes `user` out of the file's editing session while other editors stay: status 1 with
/// the editors left and the user's disconnect (`actions: [{type: 0}]`), as Docs announces
/// one of several users leaving. The last editor never leaves this way: the session's end
/// (status 2 or 4) says it. Returns whether the user left.
pub(crate) async fn leave(
    state: &HostCtx,
    entry: &mut FileEntry,
    user: &str,
) -> Result<bool, GatewayError> {
    if entry.meta.editors.len() < 2 || !entry.meta.editors.iter().any(|u| u == user) {
        return Ok(false);
    }
    entry.meta.editors.retain(|u| u != user);
    entry.persist().await?;
    let key = editor_key(&entry.meta.file_id, user);
    state.face.editor_activity.remove(&key);
    state.shared.delete(NS_EDITOR_ACTIVITY, &key).await?;
    tracing::info!(file_id = %entry.meta.file_id, editors = entry.meta.editors.len(), stage = "editor-left", "editor left the session");
    announce(state, entry, ActionKind::Disconnected, user).await?;
    Ok(true)
}

/// Lets the editors of `fid` that made no WOPI request for `idle` leave (see [`leave`]),
/// while at least one editor stays.
async fn leave_if_idle(
    state: &HostCtx,
    fid: &str,
    idle: std::time::Duration,
) -> Result<(), GatewayError> {
    let Some(meta) = state
        .shared
        .get_json_memo::<files::FileMeta>(files::NS_FILE, fid)
        .await?
    else {
        return Ok(());
    };
    if meta.editors.len() < 2 {
        return Ok(());
    }
    let now = state.now_ms();
    let mut gone = Vec::new();
    for user in &meta.editors {
        let key = editor_key(fid, user);
        match state.shared.get_stamp(NS_EDITOR_ACTIVITY, &key).await? {
            // A stamp is written at most once a second: it may be that much older.
            Some(last) if now.saturating_sub(last) >= idle.as_millis() as u64 + 1000 => {
                gone.push(user.clone());
            }
            Some(_) => {}
            None => {
                // An editor from before a restart (or the setting): idle from now on.
                let ttl = idle * 2 + Duration::from_secs(60);
                state
                    .shared
                    .put_stamp(NS_EDITOR_ACTIVITY, &key, now, ttl)
                    .await?;
            }
        }
    }
    if gone.is_empty() {
        return Ok(());
    }
    let Some(mut e) = state.face.files.lock_existing(fid).await? else {
        return Ok(());
    };
    for user in gone {
        if leave(state, &mut e, &user).await? {
            tracing::info!(file_id = %fid, idle_seconds = idle.as_secs(), "an editor made no WOPI request for the editor idle timeout");
        }
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
    announce(state, entry, ActionKind::Connected, user).await?;
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
                let mut body =
                    Callback::must_save(&e.meta.doc_key, &last, lastsave, !e.meta.undelivered);
                if !e.meta.last_editors.is_empty() {
                    // Docs' `users` of status 2: who changed the document.
                    body.users = Some(e.meta.last_editors.clone());
                }
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
    for user in &e.meta.editors {
        let key = editor_key(file_id, user);
        state.face.editor_activity.remove(&key);
        state.shared.delete(NS_EDITOR_ACTIVITY, &key).await?;
    }
    e.meta.editors.clear();
    e.meta.last_editors.clear();
    e.meta.session_modified = false;
    e.meta.undelivered = false;
    e.persist().await?;
    state.shared.delete(NS_SESSION, file_id).await?;
    Ok(())
}

/// Forgets the file's editing session without a callback (the storage deleted the file):
/// nothing is left for the idle sweeper.
pub(crate) async fn forget(state: &HostCtx, entry: &FileEntry) -> Result<(), GatewayError> {
    let fid = entry.meta.file_id.as_str();
    for user in &entry.meta.editors {
        let key = editor_key(fid, user);
        state.face.editor_activity.remove(&key);
        state.shared.delete(NS_EDITOR_ACTIVITY, &key).await?;
    }
    state.face.activity.remove(fid);
    state.shared.delete(NS_ACTIVITY, fid).await?;
    state.shared.delete(NS_SESSION, fid).await?;
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
            let shortest = state
                .settings()
                .host_face
                .editor_idle_timeout
                .map_or(idle, |e| e.min(idle));
            let tick = (shortest / 4).clamp(
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
            let editor_idle = state.settings().host_face.editor_idle_timeout;
            for fid in sessions {
                if let Err(e) = end_if_idle(&state, &fid, idle).await {
                    tracing::warn!(file_id = %fid, error = %e, "idle check of an editing session failed");
                }
                if let Some(editor_idle) = editor_idle {
                    if let Err(e) = leave_if_idle(&state, &fid, editor_idle).await {
                        tracing::warn!(file_id = %fid, error = %e, "idle check of the session's editors failed");
                    }
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
