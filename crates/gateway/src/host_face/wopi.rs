//! The WOPI endpoints: proof → access token → lock store → handler (Microsoft's WOPI REST API docs,
//! "Files" endpoints).

use super::files::{FileEntry, FileHandle};
use super::token::AccessClaims;
use crate::clock::js_time;
use crate::cluster::Keep;
use crate::error::GatewayError;
use crate::host_face::HostCtx;
use crate::metrics::status_class;
use crate::spool::StreamError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use docs_api::jwt;
use futures_util::StreamExt as _;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::json;
use wopi::headers as h;
use wopi::operation::{Endpoint, parse_endpoint};
use wopi::{LockId, Operation};

/// Largest PutUserInfo body (spec: 1024 ASCII characters).
const MAX_USER_INFO: usize = 1024;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn with_version(mut resp: Response, version: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(version) {
        resp.headers_mut().insert(h::ITEM_VERSION, v);
    }
    resp
}

/// Every `/wopi/*` request.
/// Every `/wopi/*` request: authenticated by [`super::auth::WopiAuth`] (proof, then access
/// token), routed by operation, counted by operation and status.
pub(crate) async fn handle(
    State(state): State<HostCtx>,
    auth: Result<super::auth::WopiAuth, GatewayError>,
    req: Request,
) -> Response {
    let path = req.uri().path().to_owned();
    let op = parse_endpoint(&path).map(|ep| {
        let over = header(req.headers(), h::OVERRIDE);
        let old = req.headers().contains_key(h::OLD_LOCK);
        (ep, Operation::parse(req.method().as_str(), ep, over, old))
    });
    let label = op.map_or("Unknown", |(_, o)| o.as_str());
    let resp = match op {
        None => GatewayError::NotFound("WOPI endpoint").into_response(),
        Some((ep, op)) => match auth {
            Err(e) => e.into_response(),
            Ok(super::auth::WopiAuth(claims)) => match serve(&state, ep, op, claims, req).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            },
        },
    };
    state
        .metrics
        .wopi_ops
        .with_label_values(&[label, status_class(resp.status().as_u16())])
        .inc();
    resp
}

async fn serve(
    state: &HostCtx,
    ep: Endpoint<'_>,
    op: Operation,
    claims: std::sync::Arc<AccessClaims>,
    req: Request,
) -> Result<Response, GatewayError> {
    let file_id = match ep {
        Endpoint::File(id)
        | Endpoint::Contents(id)
        | Endpoint::Ancestry(id)
        | Endpoint::FileOther(id) => id,
        Endpoint::Container | Endpoint::Ecosystem => {
            return Err(GatewayError::NotImplemented("containers and ecosystem"));
        }
    };
    if file_id != claims.fid {
        return Err(GatewayError::NotFound("file"));
    }
    super::command::refuse_dropped(state, &claims).await?;
    super::editing::touch(state, &claims).await?;
    tracing::info!(
        op = op.as_str(),
        file_id,
        stage = op.as_str(),
        "WOPI request"
    );
    let entry = super::editing::entry_for(state, &claims);
    if matches!(
        op,
        Operation::PutRelativeFile | Operation::RenameFile | Operation::DeleteFile
    ) {
        if let Some(integrator) = super::actions::hooked(state, &claims) {
            return super::actions::serve(state, &integrator, op, &claims, &entry, req).await;
        }
    }
    match op {
        Operation::CheckFileInfo => check_file_info(state, &claims, &entry).await,
        Operation::GetFile => get_file(state, &claims, &entry, req.headers()).await,
        Operation::PutFile => put_file(state, &claims, &entry, req).await,
        Operation::Lock => lock_op(state, &claims, &entry, req.headers(), op).await,
        Operation::RefreshLock | Operation::Unlock | Operation::UnlockAndRelock => {
            lock_op(state, &claims, &entry, req.headers(), op).await
        }
        Operation::GetLock => {
            let cur = state.locks.get(file_id).await;
            count_lock(
                state,
                "get",
                &cur.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            let cur = cur?.unwrap_or_default();
            let mut resp = StatusCode::OK.into_response();
            resp.headers_mut().insert(
                h::LOCK,
                HeaderValue::from_str(&cur).unwrap_or(HeaderValue::from_static("")),
            );
            Ok(resp)
        }
        Operation::PutUserInfo => {
            let body = crate::body::read_body(req.into_body(), MAX_USER_INFO * 4).await?;
            let text = String::from_utf8(body.to_vec())
                .map_err(|_| GatewayError::BadRequest("UserInfo is not UTF-8".into()))?;
            if text.chars().count() > MAX_USER_INFO {
                return Err(GatewayError::BadRequest(format!(
                    "UserInfo is longer than {MAX_USER_INFO} characters"
                )));
            }
            state
                .shared
                .put(
                    super::NS_USER_INFO,
                    &claims.uid,
                    text.into_bytes(),
                    Keep::Listed,
                )
                .await?;
            Ok(StatusCode::OK.into_response())
        }
        Operation::PutRelativeFile => Err(GatewayError::NotImplemented(
            "PutRelativeFile (the Docs API has no server-side Save As)",
        )),
        Operation::RenameFile => Err(GatewayError::NotImplemented(
            "RenameFile (the Docs API has no server-side rename)",
        )),
        Operation::DeleteFile => Err(GatewayError::NotImplemented(
            "DeleteFile (the Docs API has no server-side delete)",
        )),
        Operation::EnumerateAncestors => Err(GatewayError::NotImplemented("EnumerateAncestors")),
        Operation::Unsupported => Err(GatewayError::NotImplemented("this WOPI operation")),
        Operation::UnknownOverride => Err(GatewayError::NotImplemented("unknown X-WOPI-Override")),
        Operation::MethodNotAllowed => Err(GatewayError::MethodNotAllowed),
    }
}

/// Makes sure the file's content is in the content store, downloading `document.url` once
/// per version for the whole cluster (under the file's mutex: other instances wait, then find
/// it in the store) with the JWT header ONLYOFFICE Docs would send, so Size and SHA256 are
/// exact.
async fn ensure_content(state: &HostCtx, e: &mut FileEntry) -> Result<(), GatewayError> {
    // The state names the content once it is stored: no store round trip per request (a
    // GetFile that finds it gone fetches it again, see `open_content`).
    if e.meta.content.is_some() {
        return Ok(());
    }
    let settings = state.settings();
    let integrator = settings
        .host_face
        .integrators
        .iter()
        .find(|i| i.name == e.meta.integrator)
        .ok_or_else(|| {
            GatewayError::Internal(format!(
                "integrator `{}` is no longer configured",
                e.meta.integrator
            ))
        })?;
    let now = state.now_ms() / 1000;
    let jwt = jwt::sign_payload(
        &integrator.jwt_secret,
        json!({"url": e.meta.doc_url}),
        now,
        300,
    );
    let req = http::Request::get(&e.meta.doc_url)
        .header(integrator.jwt_header.as_str(), format!("Bearer {jwt}"))
        .body(Body::empty())
        .map_err(|err| GatewayError::Internal(format!("bad document.url: {err}")))?;
    let resp = state.http.send("document_download", req).await?;
    let status = resp.status();
    if !status.is_success() {
        state
            .metrics
            .upstream_errors
            .with_label_values(&["document_download", "status"])
            .inc();
        return Err(GatewayError::Upstream {
            op: "document_download",
            kind: crate::error::UpstreamKind::Status(status.as_u16()),
            detail: format!("document.url answered {status}"),
        });
    }
    let name = format!("orig-{}.bin", state.face.next_version());
    let key = super::files::content_key(&e.meta.file_id, &name);
    let limit = state.settings().server.body_limits[crate::access::RouteGroup::Wopi.index()];
    let stream = resp.into_body().into_data_stream();
    let written = state
        .content
        .write(&key, stream, limit)
        .await
        .map_err(|err| match err {
            StreamError::TooLarge => GatewayError::Upstream {
                op: "document_download",
                kind: crate::error::UpstreamKind::Protocol,
                detail: "document larger than the wopi body limit".into(),
            },
            StreamError::Source(s) => GatewayError::Upstream {
                op: "document_download",
                kind: crate::error::UpstreamKind::Protocol,
                detail: format!("download interrupted: {s}"),
            },
            StreamError::Io(io) => GatewayError::content(io),
        })?;
    state
        .metrics
        .bytes
        .with_label_values(&["in"])
        .inc_by(written.size);
    let modified = state.now_ms();
    e.set_content(name, &written, modified);
    e.persist().await?;
    tracing::info!(file_id = %e.meta.file_id, size = written.size, stage = "content-fetched", "document.url downloaded into the spool");
    Ok(())
}

/// Opens the file's content, fetching document.url again when the store lost a copy of it
/// (never for staged edits: those are refused with 503 rather than replaced).
async fn open_content(
    state: &HostCtx,
    e: &mut FileEntry,
) -> Result<crate::content::Content, GatewayError> {
    ensure_content(state, e).await?;
    let key = e
        .content_key()
        .ok_or_else(|| GatewayError::Internal("content vanished".into()))?;
    if let Some(c) = state
        .content
        .open(&key)
        .await
        .map_err(GatewayError::content)?
    {
        return Ok(c);
    }
    if e.meta.staged {
        return Err(GatewayError::content(std::io::Error::other(format!(
            "staged content {key} is missing from the content store"
        ))));
    }
    tracing::warn!(file_id = %e.meta.file_id, key, "content missing from the store; fetching document.url again");
    e.meta.content = None;
    ensure_content(state, e).await?;
    let key = e
        .content_key()
        .ok_or_else(|| GatewayError::Internal("content vanished".into()))?;
    state
        .content
        .open(&key)
        .await
        .map_err(GatewayError::content)?
        .ok_or_else(|| GatewayError::content(std::io::Error::other(format!("{key} vanished"))))
}

async fn check_file_info(
    state: &HostCtx,
    c: &AccessClaims,
    entry: &FileHandle,
) -> Result<Response, GatewayError> {
    // Nothing to change (the content is stored, the user is no new editor): answer from a
    // snapshot of the state without waiting for the file's mutex, which every call of a
    // busy session would otherwise queue on.
    if let Some(meta) = entry.peek().await? {
        if meta.content.is_some() && (!c.w || meta.editors.contains(&c.uid)) {
            return file_info_answer(state, c, &meta).await;
        }
    }
    let mut e = entry.lock().await?;
    ensure_content(state, &mut e).await?;
    if c.w {
        super::editing::join(state, &mut e, &c.uid).await?;
    }
    let answer = file_info_answer(state, c, &e.meta).await;
    drop(e);
    answer
}

/// The CheckFileInfo answer for the state `meta`.
async fn file_info_answer(
    state: &HostCtx,
    c: &AccessClaims,
    meta: &super::files::FileMeta,
) -> Result<Response, GatewayError> {
    let user_info = state
        .shared
        .get(super::NS_USER_INFO, &c.uid)
        .await?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let mut info = crate::translate::file_info::check_file_info(
        meta,
        c,
        user_info,
        file_url_for(state, c),
        super::opening::host_urls(state, c),
    );
    if super::actions::has_hook(state, c) {
        super::actions::advertise(&mut info, &c.grant());
    }
    // One buffer of about the answer's size (a CheckFileInfo with its FileUrl is 1-2 KB; a
    // writer's host pages add two more tokens).
    let mut json = Vec::with_capacity(if c.w { 4096 } else { 2048 });
    serde_json::to_writer(&mut json, &info)
        .map_err(|e| GatewayError::Internal(format!("CheckFileInfo JSON: {e}")))?;
    Ok((
        [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response())
}

/// Streams a WOPI request's body into the content store under `key` (within the WOPI
/// group's body limit), counted as bytes in; done once the content is durable.
pub(super) async fn store_body(
    state: &HostCtx,
    key: &str,
    req: Request,
) -> Result<crate::spool::Written, GatewayError> {
    let limit = state.settings().server.body_limits[crate::access::RouteGroup::Wopi.index()];
    let written = state
        .content
        .write(key, req.into_body().into_data_stream(), limit)
        .await
        .map_err(crate::body::upload_error)?;
    state
        .metrics
        .bytes
        .with_label_values(&["in"])
        .inc_by(written.size);
    Ok(written)
}

/// Queues a status 6 `body` to `cb` with the file's staged `content` and notes that nothing
/// is left undelivered (a force save: after a PutFile, or the command service's).
pub(super) async fn deliver_staged(
    state: &HostCtx,
    e: &mut FileEntry,
    cb: &str,
    body: &docs_api::Callback,
    content: &str,
) -> Result<(), GatewayError> {
    let ft = e.meta.file_type.clone();
    state
        .face
        .deliveries
        .enqueue(
            &e.meta.file_id,
            &e.meta.integrator,
            cb,
            body,
            Some((content, &ft)),
        )
        .await?;
    e.meta.undelivered = false;
    e.persist().await?;
    Ok(())
}

/// A short-lived URL from which the WOPI client may download this file's current content
/// without proof headers (CheckFileInfo `FileUrl`): file-scoped, expiring with the
/// download-URL lifetime (or the access token, when sooner).
fn file_url_for(state: &HostCtx, c: &AccessClaims) -> String {
    let settings = state.settings();
    let exp = (state.now_ms() / 1000 + settings.host_face.download_url_ttl.as_secs()).min(c.exp);
    let claims = AccessClaims { exp, ..c.clone() };
    format!(
        "{}/wopi/fileurl/{}?token={}",
        settings.server.internal_url.base(),
        c.fid,
        state
            .face
            .file_url_tokens
            .sign(&state.face.fileurl_secret, &claims)
    )
}

/// `GET /wopi/fileurl/{fid}?token=`: the content a CheckFileInfo's `FileUrl` points at.
pub(crate) async fn file_url(
    State(state): State<HostCtx>,
    auth: Result<super::auth::FileUrlAuth, GatewayError>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let super::auth::FileUrlAuth(claims) = auth?;
        let entry = super::editing::entry_for(&state, &claims);
        get_file(&state, &claims, &entry, &headers).await
    }
    .await;
    let resp = result.unwrap_or_else(IntoResponse::into_response);
    state
        .metrics
        .wopi_ops
        .with_label_values(&["FileUrl", status_class(resp.status().as_u16())])
        .inc();
    resp
}

async fn get_file(
    state: &HostCtx,
    _c: &AccessClaims,
    entry: &FileHandle,
    headers: &HeaderMap,
) -> Result<Response, GatewayError> {
    // The content is opened under the file's mutex: a PutFile later stages a new key and
    // does not disturb this response, which keeps streaming the version it opened.
    let (content, size, version) = {
        let mut e = entry.lock().await?;
        let content = open_content(state, &mut e).await?;
        (content, e.meta.size, e.meta.version.clone())
    };
    let max = match header(headers, h::MAX_EXPECTED_SIZE) {
        None => i64::from(i32::MAX) as u64,
        Some(v) => v.trim().parse::<u64>().map_err(|_| {
            GatewayError::BadRequest("X-WOPI-MaxExpectedSize is not an integer".into())
        })?,
    };
    if size > max {
        return Err(GatewayError::PreconditionFailed(format!(
            "file is {size} bytes, more than X-WOPI-MaxExpectedSize {max}"
        )));
    }
    let metrics = state.metrics.bytes.with_label_values(&["out"]);
    let stream = content.stream.map(move |chunk| {
        if let Ok(c) = &chunk {
            metrics.inc_by(c.len() as u64);
        }
        chunk
    });
    let resp = (
        [
            (
                http::header::CONTENT_TYPE,
                "application/octet-stream".to_owned(),
            ),
            (http::header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response();
    Ok(with_version(resp, &version))
}

fn count_lock(state: &HostCtx, op: &str, r: &Result<(), locks::LockError>) {
    let result = match r {
        Ok(()) => "ok",
        Err(locks::LockError::Conflict(_)) => "conflict",
        Err(locks::LockError::Unavailable(_)) => "unavailable",
    };
    state
        .metrics
        .lock_ops
        .with_label_values(&[op, result])
        .inc();
}

fn require_write(c: &AccessClaims) -> Result<(), GatewayError> {
    if c.w {
        Ok(())
    } else {
        Err(GatewayError::Unauthorized(
            "the access token does not allow editing".into(),
        ))
    }
}

fn lock_header(headers: &HeaderMap, name: &str) -> Result<LockId, GatewayError> {
    let raw = headers.get(name).map(|v| {
        v.to_str()
            .map_err(|_| GatewayError::BadRequest(format!("{name} is not visible ASCII")))
    });
    let value = raw.transpose()?.unwrap_or("");
    LockId::parse(value).map_err(|e| GatewayError::BadRequest(e.to_string()))
}

async fn lock_op(
    state: &HostCtx,
    c: &AccessClaims,
    entry: &FileHandle,
    headers: &HeaderMap,
    op: Operation,
) -> Result<Response, GatewayError> {
    require_write(c)?;
    let id = lock_header(headers, h::LOCK)?;
    let fid = c.fid.as_str();
    let (label, r) = match op {
        Operation::Lock => ("lock", state.locks.lock(fid, &id).await),
        Operation::RefreshLock => ("refresh", state.locks.refresh(fid, &id).await),
        Operation::Unlock => ("unlock", state.locks.unlock(fid, &id).await),
        _ => {
            let old = header(headers, h::OLD_LOCK).unwrap_or("");
            (
                "unlock_and_relock",
                state.locks.unlock_and_relock(fid, old, &id).await,
            )
        }
    };
    count_lock(state, label, &r);
    r?;
    let version = {
        let mut e = entry.lock().await?;
        if op == Operation::Lock {
            super::editing::join(state, &mut e, &c.uid).await?;
        }
        e.meta.version.clone()
    };
    tracing::info!(
        op = op.as_str(),
        file_id = fid,
        stage = label,
        "lock operation done"
    );
    if op == Operation::Unlock {
        // The lock is shared by all co-editors: its release ends the session.
        super::editing::end_session(state, fid, "unlocked").await?;
    }
    let resp = StatusCode::OK.into_response();
    Ok(if matches!(op, Operation::Lock | Operation::Unlock) {
        with_version(resp, &version)
    } else {
        resp
    })
}

async fn put_file(
    state: &HostCtx,
    c: &AccessClaims,
    entry: &FileHandle,
    req: Request,
) -> Result<Response, GatewayError> {
    require_write(c)?;
    let lock = header(req.headers(), h::LOCK)
        .filter(|l| !l.is_empty())
        .map(str::to_owned);
    let save = crate::translate::saves::put_file_save(
        header(req.headers(), h::EDITORS),
        header(req.headers(), h::LOOL_IS_AUTOSAVE),
        header(req.headers(), h::LOOL_IS_EXIT_SAVE),
    );
    let size = {
        let mut e = entry.lock().await?;
        ensure_content(state, &mut e).await?;
        e.meta.size
    };
    let r = state
        .locks
        .check_put(&c.fid, lock.as_deref(), Some(size))
        .await;
    count_lock(state, "check_put", &r);
    r?;
    let version = state.face.next_version();
    let name = format!("{version}.bin");
    let key = super::files::content_key(&c.fid, &name);
    // Acknowledged only once durable in the content store (fsync'd, or a completed upload).
    let written = store_body(state, &key, req).await?;
    let mut e = entry.lock().await?;
    // A writer whose editing was taken as ended (the editor idle timeout) is back.
    super::editing::join(state, &mut e, &c.uid).await?;
    e.set_content(name, &written, state.now_ms());
    e.meta.version.clone_from(&version);
    e.meta.staged = true;
    e.meta.session_modified = true;
    e.meta.undelivered = true;
    e.meta.last_editor = Some(c.uid.clone());
    e.meta.last_editors = save.users(&c.uid);
    e.persist().await?;
    tracing::info!(file_id = %c.fid, size = written.size, version = %version, kind = ?save.kind, stage = "PutFile", "content staged");
    let forcesave = state
        .settings()
        .host_face
        .integrators
        .iter()
        .any(|i| i.name == c.int && i.forcesave);
    // An exit save has no status 6: the status 2 that ends the session delivers it.
    let body = save.force_save_callback(&e.meta.doc_key, &c.uid, js_time(e.meta.modified_ms));
    if let (true, Some(cb), Some(body)) = (forcesave, e.meta.callback_url.clone(), body) {
        let content = e
            .content_key()
            .ok_or_else(|| GatewayError::Internal("content vanished".into()))?;
        deliver_staged(state, &mut e, &cb, &body, &content).await?;
    }
    drop(e);
    Ok(with_version(StatusCode::OK.into_response(), &version))
}
