//! What ONLYOFFICE Docs calls: `document.url` (→ GetFile on the host) and `callbackUrl`
//! (→ Lock / PutFile / Unlock), plus the page's Save As and Rename (→ PutRelativeFile,
//! RenameFile). Every Docs request is JWT-checked with `docs.jwt_secret`.

use super::host::{self, Call};
use crate::body::is_body_limit;
use crate::client_face::ClientCtx;
use crate::error::GatewayError;
use crate::spool::{self, StreamError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use docs_api::{Callback, CallbackStatus, jwt};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::time::Duration;

fn secret(state: &ClientCtx) -> Result<docs_api::Secret, GatewayError> {
    state
        .settings()
        .docs
        .jwt_secret
        .clone()
        .ok_or_else(|| GatewayError::Forbidden("the client face needs docs.jwt_secret".into()))
}

/// The header token of a Docs request (`{"payload": …}`), verified.
pub(crate) fn header_payload(
    state: &ClientCtx,
    headers: &HeaderMap,
    kind: &'static str,
) -> Result<Option<Map<String, Value>>, GatewayError> {
    let Some(v) = headers
        .get(state.settings().docs.jwt_header.as_str())
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let claims = state
        .metrics
        .count_jwt(
            kind,
            jwt::verify(&secret(state)?, jwt::token_from_header(v)),
        )
        .map_err(GatewayError::token(if kind == "docs_callback" {
            crate::error::Credential::DocsCallback
        } else {
            crate::error::Credential::DocsRequest
        }))?;
    Ok(Some(match claims.get("payload") {
        Some(Value::Object(p)) => p.clone(),
        _ => claims,
    }))
}

/// The MIME type of an extension the gateway saves or serves.
pub(crate) fn mime(ext: &str) -> &'static str {
    match ext {
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pdf" => "application/pdf",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "rtf" => "application/rtf",
        "html" => "text/html",
        "epub" => "application/epub+zip",
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "docm" => "application/vnd.ms-word.document.macroEnabled.12",
        "xlsm" => "application/vnd.ms-excel.sheet.macroEnabled.12",
        "pptm" => "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
        "dotx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
        "xltx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
        "potx" => "application/vnd.openxmlformats-officedocument.presentationml.template",
        "ott" => "application/vnd.oasis.opendocument.text-template",
        "ots" => "application/vnd.oasis.opendocument.spreadsheet-template",
        "otp" => "application/vnd.oasis.opendocument.presentation-template",
        "fb2" => "application/x-fictionbook+xml",
        _ => "application/octet-stream",
    }
}

/// `GET /docs/files/{key}`: Docs downloads the document; streamed from the host's GetFile.
pub(crate) async fn download(
    State(state): State<ClientCtx>,
    Path(key): Path<String>,
    _docs: super::auth::DocsRequest,
) -> Result<Response, GatewayError> {
    let session = state
        .face
        .editors
        .get(&key)
        .ok_or(GatewayError::NotFound("document session"))?;
    let (wopi_src, token) = {
        let s = session.lock().await;
        (
            s.wopi_src.clone(),
            s.read_token(state.now_ms())
                .map(str::to_owned)
                .ok_or_else(|| {
                    GatewayError::Unauthorized("every access token of this document expired".into())
                })?,
        )
    };
    stream_get_file(&state, &wopi_src, &token).await
}

/// Streams the host's GetFile of `wopi_src` as Docs' download.
pub(crate) async fn stream_get_file(
    state: &ClientCtx,
    wopi_src: &str,
    token: &str,
) -> Result<Response, GatewayError> {
    let limit = state.settings().server.body_limits[crate::access::RouteGroup::Wopi.index()];
    let call = Call {
        wopi_src,
        suffix: "/contents",
        token,
        op: "GetFile",
    };
    let resp = host::send_ok(
        state,
        &call,
        http::Method::GET,
        &[(wopi::headers::MAX_EXPECTED_SIZE, limit.to_string())],
        Body::empty(),
    )
    .await?;
    let (parts, body) = resp.into_parts();
    let mut out = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/octet-stream");
    if let Some(len) = parts.headers.get(http::header::CONTENT_LENGTH) {
        out = out.header(http::header::CONTENT_LENGTH, len);
    }
    let counter = state.metrics.bytes.with_label_values(&["out"]);
    let body = Body::new(body.map_frame(move |f| {
        if let Some(d) = f.data_ref() {
            counter.inc_by(d.len() as u64);
        }
        f
    }));
    out.body(body)
        .map_err(|e| GatewayError::Internal(e.to_string()))
}

fn answer(error: i64, message: Option<&str>) -> Response {
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

/// Whether `url` points at the upstream Docs (only its own cache URLs are downloaded).
fn is_docs_url(state: &ClientCtx, url: &str) -> bool {
    let d = &state.settings().docs;
    crate::urls::is_under(url, &d.url)
        || d.public_url
            .as_ref()
            .is_some_and(|p| crate::urls::is_under(url, &p.origin()))
}

/// Downloads a Docs `url` into the spool.
pub(crate) async fn fetch_to_spool(
    state: &ClientCtx,
    url: &str,
    path: &std::path::Path,
) -> Result<spool::Written, String> {
    if !is_docs_url(state, url) {
        return Err(format!("refusing to download {url}: not under docs.url"));
    }
    let req = http::Request::get(url)
        .body(Body::empty())
        .map_err(|e| e.to_string())?;
    let resp = state
        .http
        .send("docs_download", req)
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!(
            "Docs answered {} for the saved file",
            resp.status()
        ));
    }
    let limit = state.settings().server.body_limits[crate::access::RouteGroup::Wopi.index()];
    spool::write_stream(path, resp.into_body().into_data_stream(), limit)
        .await
        .map_err(|e| match e {
            StreamError::TooLarge => {
                "saved file larger than server.body_limit_bytes.wopi".to_owned()
            }
            StreamError::Source(s) => format!("download interrupted: {s}"),
            StreamError::Io(io) => format!("spool: {io}"),
        })
}

struct PutOutcome {
    last_modified: Option<String>,
    /// `X-WOPI-ItemVersion` of the answer.
    version: Option<String>,
}

/// Why a save did not reach the host.
#[derive(Debug)]
struct SaveFailure {
    why: String,
    /// The host's `X-WOPI-LockFailureReason`, when it gave one.
    host_reason: Option<String>,
}

impl From<String> for SaveFailure {
    fn from(why: String) -> Self {
        SaveFailure {
            why,
            host_reason: None,
        }
    }
}

/// PutFile with an explicit Content-Length, retried on 5xx/timeouts (never on 4xx).
async fn put_file(
    state: &ClientCtx,
    s: &super::editors::Editor,
    token: &str,
    path: &std::path::Path,
    size: u64,
    cb: &Callback,
    exit: bool,
) -> Result<PutOutcome, SaveFailure> {
    let users = cb.users.clone().unwrap_or_default();
    let modified_by_user = !(exit && cb.notmodified == Some(true));
    let autosave = !exit && cb.forcesavetype.is_some_and(|t| t != 1);
    let mut headers = vec![
        (wopi::headers::OVERRIDE, "PUT".to_owned()),
        (wopi::headers::EDITORS, users.join(",")),
        (
            wopi::headers::LOOL_IS_MODIFIED_BY_USER,
            modified_by_user.to_string(),
        ),
        (wopi::headers::LOOL_IS_AUTOSAVE, autosave.to_string()),
        (wopi::headers::LOOL_IS_EXIT_SAVE, exit.to_string()),
        ("content-type", mime(&s.ext).to_owned()),
        ("content-length", size.to_string()),
    ];
    if let Some(lock) = &s.lock_id {
        headers.push((wopi::headers::LOCK, lock.clone()));
    }
    if let Some(ts) = &s.last_modified {
        headers.push(("x-lool-wopi-timestamp", ts.clone()));
    }
    let call = Call {
        wopi_src: &s.wopi_src,
        suffix: "/contents",
        token,
        op: "PutFile",
    };
    let mut delay = Duration::from_secs(1);
    let mut relocked = false;
    for attempt in 1..=3 {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| format!("spool: {e}"))?;
        let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 * 1024,
        ));
        match host::send(state, &call, http::Method::POST, &headers, body).await {
            Ok(resp) if resp.status().is_success() => {
                let version = resp
                    .headers()
                    .get(wopi::headers::ITEM_VERSION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let bytes = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let last_modified = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
                    v.get("LastModifiedTime")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
                return Ok(PutOutcome {
                    last_modified,
                    version,
                });
            }
            Ok(resp) if resp.status().is_client_error() => {
                let refusal = host::HostRefusal::of(&resp);
                if refusal.lock_lost() && !relocked {
                    if let Some(lock) = &s.lock_id {
                        // The host forgot the lock before the save: take it again (same id,
                        // file unchanged) and put once more.
                        relocked = true;
                        tracing::warn!(%refusal, "PutFile: the host holds no lock on the file; locking again");
                        match host::relock(state, &s.wopi_src, token, lock, &s.expected()).await {
                            Ok(()) => continue,
                            Err(e) => {
                                return Err(SaveFailure {
                                    why: format!("host refused PutFile: {refusal}; {e}"),
                                    host_reason: refusal.reason,
                                });
                            }
                        }
                    }
                }
                return Err(SaveFailure {
                    why: format!("host refused PutFile: {refusal}"),
                    host_reason: refusal.reason,
                });
            }
            Ok(resp) if attempt == 3 => {
                return Err(format!("host answered {} to PutFile", resp.status()).into());
            }
            Err(e) if attempt == 3 => return Err(e.to_string().into()),
            Ok(resp) => {
                tracing::warn!(status = %resp.status(), attempt, "PutFile failed; retrying")
            }
            Err(e) => tracing::warn!(error = %e, attempt, "PutFile failed; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    Err("PutFile failed".to_owned().into())
}

async fn keep_recovery(
    state: &ClientCtx,
    key: &str,
    wopi_src: &str,
    status: i64,
    from: Option<&std::path::Path>,
    why: &str,
    host_reason: Option<&str>,
) -> Option<PathBuf> {
    let dir = state.face.spool.join("recovery");
    let stamp = format!("{key}-{}", state.now_ms());
    let bin = dir.join(format!("{stamp}.bin"));
    if let Some(src) = from {
        if let Err(e) = tokio::fs::rename(src, &bin).await {
            tracing::error!(error = %e, "cannot move the save into the recovery folder");
            return None;
        }
    }
    let meta = json!({"key": key, "wopi_src": wopi_src, "status": status, "reason": why, "host_reason": host_reason, "file": from.map(|_| bin.display().to_string()), "time_ms": state.now_ms()});
    let _ = spool::write_atomic(
        &dir.join(format!("{stamp}.json")),
        meta.to_string().as_bytes(),
    )
    .await;
    state
        .metrics
        .recovery
        .set(count_recovery(&dir).await as i64);
    tracing::error!(key, status, reason = why, host_reason, path = %bin.display(), "save kept as a recovery copy");
    Some(bin)
}

/// Number of recovery copies held.
pub(crate) async fn count_recovery(dir: &std::path::Path) -> usize {
    let mut n = 0;
    if let Ok(mut rd) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            if e.path().extension().is_some_and(|x| x == "json") {
                n += 1;
            }
        }
    }
    n
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
    let Some(session) = state.face.editors.get(key) else {
        if state.face.editors.finished_recently(key) {
            return ("ok", answer(0, None));
        }
        tracing::warn!(
            key,
            status = cb.status,
            "callback for an unknown document key"
        );
        return ("unknown_key", answer(1, Some("unknown document key")));
    };
    let mut s = session.lock().await;
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

/// Status 2 (final) or 6 (force-save): download the save from Docs and PutFile it (a
/// submitted form goes to PutRelativeFile); a save the host refuses becomes a recovery copy.
async fn on_save(
    state: &ClientCtx,
    key: &str,
    status: Option<CallbackStatus>,
    cb: &Callback,
    mut s: tokio::sync::MutexGuard<'_, super::editors::Editor>,
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
                drop(s);
                state.face.editors.finish(key);
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
                drop(s);
                state.face.editors.finish(key);
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

/// Status 4: everyone left without changes; unlock and forget the editor state.
async fn on_closed(
    state: &ClientCtx,
    key: &str,
    mut s: tokio::sync::MutexGuard<'_, super::editors::Editor>,
) -> (&'static str, Response) {
    unlock_and_finish(state, &mut s).await;
    drop(s);
    state.face.editors.finish(key);
    ("ok", answer(0, None))
}

/// Status 3 or 7: Docs could not assemble the document; keep what it has as a recovery copy.
async fn on_corrupted(
    state: &ClientCtx,
    key: &str,
    status: Option<CallbackStatus>,
    cb: &Callback,
    mut s: tokio::sync::MutexGuard<'_, super::editors::Editor>,
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
        drop(s);
        state.face.editors.finish(key);
    }
    ("ok", answer(0, None))
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
    let result = super::convert::put_relative_file(
        state,
        &s.wopi_src,
        &token,
        path,
        size,
        &name,
        &s.ext,
        false,
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

async fn unlock_and_finish(state: &ClientCtx, s: &mut super::editors::Editor) {
    if let Some(r) = s.refresher.take() {
        r.abort();
    }
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

/// What the page's Save As and Rename calls share: the verified user, the request body, and
/// the session's WOPISrc, write token, lock id and extension.
struct Action {
    req: Value,
    wopi_src: String,
    token: String,
    lock: String,
    ext: String,
}

async fn action(
    state: &ClientCtx,
    user: &super::auth::ActionUser,
    body: Body,
) -> Result<Action, GatewayError> {
    let (key, uid) = (user.key.as_str(), &user.uid);
    let bytes = crate::body::read_body(body, 64 * 1024).await?;
    let req: Value = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::BadRequest(format!("body: {e}")))?;
    let session = state
        .face
        .editors
        .get(key)
        .ok_or(GatewayError::NotFound("document session"))?;
    let s = session.lock().await;
    let token = s
        .write_token(std::slice::from_ref(uid), state.now_ms())
        .map(str::to_owned)
        .ok_or_else(|| GatewayError::Unauthorized("no write-capable token".into()))?;
    Ok(Action {
        req,
        wopi_src: s.wopi_src.clone(),
        token,
        lock: s.lock_id.clone().unwrap_or_default(),
        ext: s.ext.clone(),
    })
}

fn field<'a>(req: &'a Value, name: &str) -> Result<&'a str, GatewayError> {
    req.get(name)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GatewayError::BadRequest(format!("{name} is missing")))
}

async fn json_answer(resp: http::Response<hyper::body::Incoming>) -> Value {
    let answer = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    serde_json::from_slice(&answer).unwrap_or(json!({}))
}

/// `POST /hosting/api/{key}/saveas?t=`: body `{title, url}` from `onRequestSaveAs` → PutRelativeFile.
pub(crate) async fn save_as(
    State(state): State<ClientCtx>,
    user: super::auth::ActionUser,
    body: Body,
) -> Result<Response, GatewayError> {
    let key = user.key.clone();
    let a = action(&state, &user, body).await?;
    let (title, url) = (field(&a.req, "title")?, field(&a.req, "url")?);
    let path = state
        .face
        .spool
        .join(format!("{key}-saveas-{}.bin", state.now_ms()));
    let written = fetch_to_spool(&state, url, &path)
        .await
        .map_err(GatewayError::BadRequest)?;
    let body = Body::from_stream(crate::spool::read_stream(std::fs::File::open(&path)?));
    let call = Call {
        wopi_src: &a.wopi_src,
        suffix: "",
        token: &a.token,
        op: "PutRelativeFile",
    };
    let headers = [
        (wopi::headers::OVERRIDE, "PUT_RELATIVE".to_owned()),
        (wopi::headers::SUGGESTED_TARGET, wopi::utf7::encode(title)),
        (wopi::headers::SIZE, written.size.to_string()),
        ("content-length", written.size.to_string()),
    ];
    let resp = host::send_ok(&state, &call, http::Method::POST, &headers, body).await;
    let _ = tokio::fs::remove_file(&path).await;
    let v = json_answer(resp?).await;
    Ok(axum::Json(
        json!({"Name": v.get("Name"), "Url": v.get("HostEditUrl").or(v.get("HostViewUrl"))}),
    )
    .into_response())
}

/// `POST /hosting/api/{key}/rename?t=`: body `{title}` from `onRequestRename` → RenameFile.
pub(crate) async fn rename(
    State(state): State<ClientCtx>,
    user: super::auth::ActionUser,
    body: Body,
) -> Result<Response, GatewayError> {
    let a = action(&state, &user, body).await?;
    let title = field(&a.req, "title")?;
    let name = title.strip_suffix(&format!(".{}", a.ext)).unwrap_or(title);
    let call = Call {
        wopi_src: &a.wopi_src,
        suffix: "",
        token: &a.token,
        op: "RenameFile",
    };
    let headers = [
        (wopi::headers::OVERRIDE, "RENAME_FILE".to_owned()),
        (wopi::headers::REQUESTED_NAME, wopi::utf7::encode(name)),
        (wopi::headers::LOCK, a.lock.clone()),
        ("content-length", "0".to_owned()),
    ];
    let resp = host::send_ok(&state, &call, http::Method::POST, &headers, Body::empty()).await?;
    let v = json_answer(resp).await;
    Ok(axum::Json(json!({"Name": v.get("Name").cloned().unwrap_or(json!(name))})).into_response())
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
