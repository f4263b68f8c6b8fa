//! What ONLYOFFICE Docs calls: `document.url` (→ GetFile on the host, streamed) and
//! `callbackUrl` (→ Lock, PutFile, Unlock by status; the saves themselves are in
//! [`super::saves`]). Every Docs request is JWT-checked with `docs.jwt_secret`.

use super::host::{self, Call};
use super::saves::{fetch_to_spool, keep_recovery, on_save, unlock_and_finish};
use crate::body::is_body_limit;
use crate::client_face::ClientCtx;
use crate::error::GatewayError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use docs_api::{Callback, CallbackStatus, jwt};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Map, Value, json};

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

/// `GET /docs/files/{key}`: Docs downloads the document; streamed from the host's GetFile.
pub(crate) async fn download(
    State(state): State<ClientCtx>,
    Path(key): Path<String>,
    _docs: super::auth::DocsRequest,
) -> Result<Response, GatewayError> {
    let s = state
        .face
        .editors
        .peek(&key)
        .await?
        .ok_or(GatewayError::NotFound("document session"))?;
    let (wopi_src, token) = {
        (
            s.wopi_src.clone(),
            s.read_token(state.now_ms())
                .map(str::to_owned)
                .ok_or_else(|| {
                    GatewayError::Unauthorized("every access token of this document expired".into())
                })?,
        )
    };
    stream_get_file(&state, &wopi_src, &token, Some(&key)).await
}

/// Streams the host's GetFile of `wopi_src` as Docs' download; `session` is the editing
/// session's Docs key (sent as `X-WOPI-SessionId`), none for a conversion's source.
pub(crate) async fn stream_get_file(
    state: &ClientCtx,
    wopi_src: &str,
    token: &str,
    session: Option<&str>,
) -> Result<Response, GatewayError> {
    let limit = state.settings().server.body_limits[crate::access::RouteGroup::Wopi.index()];
    let call = Call {
        wopi_src,
        suffix: "/contents",
        token,
        op: "GetFile",
    };
    let mut headers = vec![(wopi::headers::MAX_EXPECTED_SIZE, limit.to_string())];
    if let Some(id) = session {
        headers.push((wopi::headers::SESSION_ID, id.to_owned()));
    }
    let resp = host::send_ok(state, &call, http::Method::GET, &headers, Body::empty()).await?;
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
