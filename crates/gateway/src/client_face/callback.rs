//! Docs' callbacks (`callbackUrl` → `/docs/callback/{key}`), every status in one place:
//! the callback is verified (`docs.jwt_secret`), the key's session is taken under its mutex,
//! and the status decides — 1: Lock if not yet locked; 2 and 6: the save ([`super::saves`]
//! downloads and PutFiles it; a submitted form becomes a new file), then for 2 Unlock and the
//! session ends; 4: Unlock, the session ends; 3 and 7: a recovery copy (3 ends the session).
//! Docs gets `{"error":0}` only once the host accepted what it had to.

use super::docs::{header_payload, secret};
use super::host;
use super::saves::{SaveFailure, fetch_to_spool, keep_recovery, put_file};
use crate::body::is_body_limit;
use crate::client_face::ClientCtx;
use crate::error::GatewayError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use docs_api::{Callback, CallbackStatus, jwt};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

pub(crate) fn answer(error: i64, message: Option<&str>) -> Response {
    let body = match message {
        None => json!({"error": error}),
        Some(m) => json!({"error": error, "message": m}),
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Verifies a callback: body `token` first (flat payload), else the header's `payload`.
fn verified_callback(
    state: &ClientCtx,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Callback, GatewayError> {
    let raw: Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::BadRequest(format!("callback is not JSON: {e}")))?;
    let payload = match raw.get("token").and_then(Value::as_str) {
        Some(t) => {
            let mut claims = state
                .metrics
                .count_jwt("docs_callback", jwt::verify(&secret(state)?, t))
                .map_err(GatewayError::token(crate::error::Credential::DocsCallback))?;
            claims.remove("iat");
            claims.remove("exp");
            claims
        }
        None => header_payload(state, headers, "docs_callback")?
            .ok_or_else(|| GatewayError::Forbidden("callback is not signed".into()))?,
    };
    serde_json::from_value(Value::Object(payload))
        .map_err(|e| GatewayError::BadRequest(format!("callback body: {e}")))
}

/// `POST /docs/callback/{key}`
pub(crate) async fn callback(
    State(state): State<ClientCtx>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match http_body_util::Limited::new(body, 1024 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if is_body_limit(e.as_ref()) => {
            return GatewayError::PayloadTooLarge.into_response();
        }
        Err(e) => return GatewayError::BadRequest(format!("callback body: {e}")).into_response(),
    };
    let cb = match verified_callback(&state, &headers, &bytes) {
        Ok(cb) => cb,
        Err(e) => {
            state
                .metrics
                .docs_callbacks
                .with_label_values(&["unknown", "refused"])
                .inc();
            return e.into_response();
        }
    };
    let status = cb.status();
    let label = status.map_or("other", CallbackStatus::label);
    if cb.key != key {
        state
            .metrics
            .docs_callbacks
            .with_label_values(&[label, "refused"])
            .inc();
        return GatewayError::Forbidden("callback key does not match its URL".into())
            .into_response();
    }
    let (result, resp) = handle_callback(&state, &key, status, &cb).await;
    state
        .metrics
        .docs_callbacks
        .with_label_values(&[label, result])
        .inc();
    resp
}

async fn handle_callback(
    state: &ClientCtx,
    key: &str,
    status: Option<CallbackStatus>,
    cb: &Callback,
) -> (&'static str, Response) {
    let session = match state.face.editors.get(key).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(key, error = %e, "callback from Docs: the shared state is unavailable; Docs retries");
            return (
                "unavailable",
                answer(1, Some("shared state unavailable, retry later")),
            );
        }
    };
    let Some(mut s) = session else {
        if state
            .face
            .editors
            .finished_recently(key)
            .await
            .unwrap_or(false)
        {
            return ("ok", answer(0, None));
        }
        tracing::warn!(
            key,
            status = cb.status,
            "callback for an unknown document key"
        );
        return ("unknown_key", answer(1, Some("unknown document key")));
    };
    tracing::info!(
        key,
        status = cb.status,
        stage = "docs-callback",
        "callback from Docs"
    );
    match status {
        Some(CallbackStatus::Editing) => on_editing(state, key, cb, &mut s).await,
        Some(CallbackStatus::MustSave | CallbackStatus::MustSaveForce) => {
            on_save(state, key, status, cb, s).await
        }
        Some(CallbackStatus::Closed) => on_closed(state, key, s).await,
        Some(CallbackStatus::Corrupted | CallbackStatus::CorruptedForce) => {
            on_corrupted(state, key, status, cb, s).await
        }
        _ => ("ok", answer(0, None)),
    }
}

/// Status 1: someone edits; lock the file if the editor holds no lock yet.
async fn on_editing(
    state: &ClientCtx,
    key: &str,
    cb: &Callback,
    s: &mut super::editors::Editor,
) -> (&'static str, Response) {
    if s.edit && s.supports_locks && s.lock_id.is_none() {
        if let Some(token) = s
            .write_token(cb.users.as_deref().unwrap_or(&[]), state.now_ms())
            .map(str::to_owned)
        {
            match host::lock_op(state, &s.wopi_src, &token, "Lock", key).await {
                Ok(()) => s.lock_id = Some(key.to_owned()),
                Err(e) => tracing::warn!(error = %e, "Lock on status 1 failed"),
            }
        }
    }
    ("ok", answer(0, None))
}

/// Status 4: everyone left without changes; unlock and forget the editor state.
async fn on_closed(
    state: &ClientCtx,
    key: &str,
    mut s: super::editors::EditorGuard,
) -> (&'static str, Response) {
    let _ = key;
    unlock_and_finish(state, &mut s).await;
    s.finish().await;
    ("ok", answer(0, None))
}

/// Status 3 or 7: Docs could not assemble the document; keep what it has as a recovery copy.
async fn on_corrupted(
    state: &ClientCtx,
    key: &str,
    status: Option<CallbackStatus>,
    cb: &Callback,
    mut s: super::editors::EditorGuard,
) -> (&'static str, Response) {
    let wopi_src = s.wopi_src.clone();
    let mut from = None;
    if let Some(url) = cb.url.as_deref() {
        let path = state
            .face
            .spool
            .join(format!("{key}-{}.bin", state.now_ms()));
        if fetch_to_spool(state, url, &path).await.is_ok() {
            from = Some(path);
        }
    }
    keep_recovery(
        state,
        key,
        &wopi_src,
        cb.status,
        from.as_deref(),
        "Docs could not assemble the document",
        None,
    )
    .await;
    if status == Some(CallbackStatus::Corrupted) {
        unlock_and_finish(state, &mut s).await;
        s.finish().await;
    }
    ("ok", answer(0, None))
}

/// Status 2 (final) or 6 (force-save): download the save from Docs and PutFile it (a
/// submitted form goes to PutRelativeFile); a save the host refuses becomes a recovery copy.
pub(crate) async fn on_save(
    state: &ClientCtx,
    key: &str,
    status: Option<CallbackStatus>,
    cb: &Callback,
    mut s: super::editors::EditorGuard,
) -> (&'static str, Response) {
    let exit = status == Some(CallbackStatus::MustSave);
    let Some(url) = cb.url.as_deref() else {
        return ("failed", answer(1, Some("callback has no url")));
    };
    let path = state
        .face
        .spool
        .join(format!("{key}-{}.bin", state.now_ms()));
    let written = match fetch_to_spool(state, url, &path).await {
        Ok(w) => w,
        Err(why) => {
            tracing::error!(key, error = %why, "cannot download the saved file from Docs");
            return ("failed", answer(1, Some(&why)));
        }
    };
    let users = cb.users.clone().unwrap_or_default();
    if !exit && cb.forcesavetype == Some(docs_api::ForceSaveType::Form.code()) {
        return submit_form(state, &s, key, cb, &path, written.size).await;
    }
    let result = match s.write_token(&users, state.now_ms()).map(str::to_owned) {
        None => Err(SaveFailure::from(
            "no valid write-capable access token for this document".to_owned(),
        )),
        Some(token) => put_file(state, &s, &token, &path, written.size, cb, exit).await,
    };
    match result {
        Ok(outcome) => {
            let _ = tokio::fs::remove_file(&path).await;
            if outcome.last_modified.is_some() {
                s.last_modified = outcome.last_modified;
            }
            // The version this session now expects (none known when the host gave none).
            s.version = outcome.version;
            tracing::info!(
                key,
                size = written.size,
                exit,
                stage = "save",
                "host accepted the save"
            );
            if exit {
                unlock_and_finish(state, &mut s).await;
                s.finish().await;
            }
            ("ok", answer(0, None))
        }
        Err(SaveFailure { why, host_reason }) => {
            let wopi_src = s.wopi_src.clone();
            keep_recovery(
                state,
                key,
                &wopi_src,
                cb.status,
                Some(&path),
                &why,
                host_reason.as_deref(),
            )
            .await;
            if exit {
                // As ONLYOFFICE does after a failed final save: release the lock; the
                // recovery copy (and Docs' forgotten copy) hold the edit.
                unlock_and_finish(state, &mut s).await;
                s.finish().await;
            }
            (
                "failed",
                answer(
                    1,
                    Some(&format!("the WOPI host did not accept the save: {why}")),
                ),
            )
        }
    }
}

/// A submitted form (status 6, forcesavetype 3) is saved as a new file next to the
/// original — never over the form — named after it with the submitter and a time.
async fn submit_form(
    state: &ClientCtx,
    s: &super::editors::Editor,
    key: &str,
    cb: &Callback,
    path: &std::path::Path,
    size: u64,
) -> (&'static str, Response) {
    let users = cb.users.clone().unwrap_or_default();
    let Some(token) = s
        .write_token(&users, state.now_ms())
        .or_else(|| s.read_token(state.now_ms()))
        .map(str::to_owned)
    else {
        keep_recovery(
            state,
            key,
            &s.wopi_src,
            cb.status,
            Some(path),
            "no valid access token to save the submitted form",
            None,
        )
        .await;
        return (
            "failed",
            answer(1, Some("no valid access token for this document")),
        );
    };
    let name = submitted_form_name(
        &s.name,
        &s.ext,
        users.first().map(String::as_str),
        state.now_ms(),
    );
    let result = super::convert_and_edit::put_relative_file(
        state,
        &s.wopi_src,
        &token,
        path,
        size,
        &name,
        &s.ext,
        false,
        Some(key),
    )
    .await;
    match result {
        Ok(v) => {
            let _ = tokio::fs::remove_file(path).await;
            let saved = v
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or(&name)
                .to_owned();
            tracing::info!(key, size, name = %saved, stage = "form-submit", "submitted form saved as a new file");
            ("ok", answer(0, None))
        }
        Err((status, why)) => {
            keep_recovery(state, key, &s.wopi_src, cb.status, Some(path), &why, None).await;
            tracing::warn!(key, status, "the host refused the submitted form");
            (
                "failed",
                answer(
                    1,
                    Some(&format!(
                        "the WOPI host did not accept the submitted form: {why}"
                    )),
                ),
            )
        }
    }
}

/// `Report.pdf` submitted by `u1` → `Report - u1 - 2026-12-01 213033.pdf` (UTC).
fn submitted_form_name(original: &str, ext: &str, user: Option<&str>, unix_ms: u64) -> String {
    let stem = original
        .strip_suffix(&format!(".{ext}"))
        .unwrap_or(original);
    let stem = if stem.is_empty() { "Form" } else { stem };
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour][minute][second]");
    let stamp = t.format(&fmt).unwrap_or_default();
    let user: String = user
        .unwrap_or("")
        .chars()
        .filter(|c| !matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'))
        .take(64)
        .collect();
    if user.is_empty() {
        format!("{stem} - {stamp}.{ext}")
    } else {
        format!("{stem} - {user} - {stamp}.{ext}")
    }
}

pub(crate) async fn unlock_and_finish(state: &ClientCtx, s: &mut super::editors::Editor) {
    let Some(lock) = s.lock_id.take() else { return };
    let Some(token) = s.write_token(&[], state.now_ms()).map(str::to_owned) else {
        tracing::warn!("no valid token left to unlock; the host's lock will expire");
        return;
    };
    match host::lock_op(state, &s.wopi_src, &token, "Unlock", &lock).await {
        Ok(()) => {}
        Err(GatewayError::HostRefused { refusal, .. }) if refusal.lock_lost() => {
            tracing::info!(%refusal, "Unlock: the host already holds no lock on the file");
        }
        Err(e) => tracing::warn!(error = %e, "Unlock failed; the host's lock will expire"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn submitted_forms_get_a_new_name() {
        assert_eq!(
            super::submitted_form_name("Report.pdf", "pdf", Some("u1"), 1_796_160_633_000),
            "Report - u1 - 2026-12-01 213033.pdf"
        );
        assert_eq!(
            super::submitted_form_name("a.pdf", "pdf", Some("x/y:z"), 0),
            "a - xyz - 1970-01-01 000000.pdf"
        );
        assert_eq!(
            super::submitted_form_name(".pdf", "pdf", None, 0),
            "Form - 1970-01-01 000000.pdf"
        );
    }
}
