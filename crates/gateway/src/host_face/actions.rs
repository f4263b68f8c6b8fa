//! Save As, Rename and Delete through the integrator's hook (`actions_url`).
//!
//! PutRelativeFile, RenameFile and DeleteFile have no Docs-API counterpart. An integrator that
//! sets `actions_url` receives them as JWT-signed POSTs, signed as the gateway's callbacks to it
//! are (the body's `token` and the `jwt_header` token, with the integrator's secret):
//!
//! - `{"action":"saveas","key","title","fileType","url","user","referenceData","mode",
//!   "overwrite"?,"conversion"?}` — `url` is a signed gateway download of the new content
//!   (stored in the content store first). The answer `{"error":0,"token":"<config JWT>"}`
//!   carries the signed editor config of the new file, opened as `POST /api/v1/sessions`
//!   opens one.
//! - `{"action":"rename","key","title","user"}`, answered `{"error":0}`.
//! - `{"action":"delete","key","user"}`, answered `{"error":0}`.
//!
//! Refusals the integrator may answer: `{"error":"exists","suggested":"Name (1).docx"}` (a name
//! conflict), `{"error":"invalid","message":…}` (a name it refuses), `{"error":"locked","lock":…}`
//! (Save As over a locked file). Anything else (no answer, not HTTP 200, not JSON, another
//! error) is a failing hook: 502, logged, the new content stays in the store.

use super::files::FileHandle;
use super::token::AccessClaims;
use crate::error::{GatewayError, UpstreamKind};
use crate::host_face::HostCtx;
use crate::settings::Integrator;
use crate::translate::permissions::Grant;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use docs_api::jwt;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt as _;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};
use std::time::Duration;
use wopi::Operation;
use wopi::headers as h;

/// Largest hook answer read.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Time allowed for the hook to answer.
const HOOK_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest file name accepted.
const MAX_NAME_CHARS: usize = 255;
/// Where referenceData of opened files is kept (for Save As payloads).
pub(crate) const NS_REFERENCE_DATA: &str = "reference-data";

/// The integrator of `c` when it set `actions_url`.
pub(crate) fn hooked(state: &HostCtx, c: &AccessClaims) -> Option<Integrator> {
    state
        .settings_now()
        .host_face
        .integrators
        .iter()
        .find(|i| i.name == c.int && i.actions_url.is_some())
        .cloned()
}

/// Whether the integrator of `c` set `actions_url` (without copying its settings).
pub(crate) fn has_hook(state: &HostCtx, c: &AccessClaims) -> bool {
    state
        .settings_now()
        .host_face
        .integrators
        .iter()
        .any(|i| i.name == c.int && i.actions_url.is_some())
}

/// Save As makes a copy of the document (download) and a new file in the storage (edit).
pub(crate) fn may_save_as(g: &Grant) -> bool {
    g.write && g.download
}

/// Rename and delete change the storage's file: edit.
pub(crate) fn may_rename_or_delete(g: &Grant) -> bool {
    g.write
}

/// States in CheckFileInfo what the hook offers this user (called only when `actions_url` is
/// set): nothing the integrator's permissions forbid.
pub(crate) fn advertise(info: &mut wopi::CheckFileInfo, g: &Grant) {
    if may_save_as(g) {
        info.user_can_not_write_relative = Some(false);
    }
    if may_rename_or_delete(g) {
        info.supports_rename = Some(true);
        info.user_can_rename = Some(true);
        info.supports_delete_file = Some(true);
    }
}

/// PutRelativeFile, RenameFile or DeleteFile of `c` through `integrator`'s hook.
pub(crate) async fn serve(
    state: &HostCtx,
    integrator: &Integrator,
    op: Operation,
    c: &AccessClaims,
    entry: &FileHandle,
    req: Request,
) -> Result<Response, GatewayError> {
    let g = c.grant();
    match op {
        Operation::PutRelativeFile if may_save_as(&g) => {
            put_relative(state, integrator, c, entry, req).await
        }
        Operation::RenameFile if may_rename_or_delete(&g) => {
            rename(state, integrator, c, entry, req.headers()).await
        }
        Operation::DeleteFile if may_rename_or_delete(&g) => {
            delete(state, integrator, c, entry).await
        }
        _ => Err(GatewayError::Unauthorized(format!(
            "the integrator's permissions do not allow {}",
            op.as_str()
        ))),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A UTF-7 name header, decoded (`Err`: why it cannot be).
fn utf7_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, String> {
    let Some(raw) = headers.get(name) else {
        return Ok(None);
    };
    let text = raw.to_str().map_err(|_| format!("{name} is not ASCII"))?;
    wopi::utf7::decode(text)
        .map(Some)
        .map_err(|e| format!("{name}: {e}"))
}

/// 400 with `X-WOPI-InvalidFileNameError`.
fn bad_name(why: &str) -> Response {
    tracing::info!(
        reason = why,
        stage = "actions-bad-name",
        "file name refused"
    );
    let mut resp = (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response();
    if let Ok(v) =
        HeaderValue::from_str(&why.replace(|c: char| !c.is_ascii() || c.is_ascii_control(), "?"))
    {
        resp.headers_mut().insert(h::INVALID_FILE_NAME_ERROR, v);
    }
    resp
}

/// Why a file name cannot be a storage's file name (`None`: it can).
fn name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("the name is empty")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some("the name is longer than 255 characters")
    } else if name == "." || name == ".." {
        Some("the name is a path component")
    } else if name.chars().any(|c| {
        c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
    }) {
        Some("the name contains a character file names cannot hold")
    } else {
        None
    }
}

/// The extension of `name` (lower-case, without the dot), if any.
fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The signed POST to the hook; its answer (any HTTP 200 JSON object). Failures are the
/// hook's: 502 with a log line.
async fn call(
    state: &HostCtx,
    integrator: &Integrator,
    c: &AccessClaims,
    body: Map<String, Value>,
) -> Result<Map<String, Value>, GatewayError> {
    let action = body
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let url = integrator.actions_url.clone().unwrap_or_default();
    let fail = |detail: String| {
        tracing::warn!(integrator = %integrator.name, file_id = %c.fid, action = %action, error = %detail, stage = "actions-hook-failed", "the integrator's actions_url failed; nothing was changed");
        GatewayError::Upstream {
            op: "actions",
            kind: UpstreamKind::Protocol,
            detail: format!("actions_url ({action}): {detail}"),
        }
    };
    let now = state.now_ms() / 1000;
    let ttl = 300;
    let body_token = jwt::sign_with_expiry(&integrator.jwt_secret, &body, now, ttl);
    let header_token = jwt::sign_payload(
        &integrator.jwt_secret,
        Value::Object(body.clone()),
        now,
        ttl,
    );
    let mut with_token = body;
    with_token.insert("token".into(), Value::String(body_token));
    let bytes = serde_json::to_vec(&Value::Object(with_token))
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let req = http::Request::post(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            integrator.jwt_header.as_str(),
            format!("Bearer {header_token}"),
        )
        .body(Body::from(bytes))
        .map_err(|e| fail(format!("bad request: {e}")))?;
    let resp = state
        .http
        .send_with_timeout("actions", req, HOOK_TIMEOUT)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = resp.status();
    let answer = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| fail(format!("reading the answer: {e}")))?
        .to_bytes();
    if status != StatusCode::OK {
        return Err(fail(format!("answered {status}")));
    }
    match serde_json::from_slice::<Value>(&answer) {
        Ok(Value::Object(m)) if m.contains_key("error") => {
            tracing::info!(integrator = %integrator.name, file_id = %c.fid, action = %action, error = %m["error"], stage = "actions-answered", "the integrator answered an action");
            Ok(m)
        }
        _ => Err(fail("the answer is not a JSON object with `error`".into())),
    }
}

/// What the hook answered, as far as the gateway acts on it.
enum Answer {
    Ok(Map<String, Value>),
    Exists(Option<String>),
    Invalid(String),
    Locked(String),
}

fn classify(
    integrator: &Integrator,
    c: &AccessClaims,
    m: Map<String, Value>,
) -> Result<Answer, GatewayError> {
    let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    match &m["error"] {
        Value::Number(n) if n.as_i64() == Some(0) => Ok(Answer::Ok(m)),
        Value::String(s) if s == "exists" => Ok(Answer::Exists(text("suggested"))),
        Value::String(s) if s == "invalid" => Ok(Answer::Invalid(
            text("message").unwrap_or_else(|| "the storage refuses this name".into()),
        )),
        Value::String(s) if s == "locked" => Ok(Answer::Locked(text("lock").unwrap_or_default())),
        other => {
            tracing::warn!(integrator = %integrator.name, file_id = %c.fid, error = %other, stage = "actions-hook-failed", "the integrator's actions_url refused the action");
            Err(GatewayError::Upstream {
                op: "actions",
                kind: UpstreamKind::Protocol,
                detail: format!("actions_url answered error {other}"),
            })
        }
    }
}

fn user(c: &AccessClaims) -> Value {
    json!({"id": c.uid, "name": c.un})
}

/// The file's key and title now (the state's, else the token's).
async fn current(entry: &FileHandle, c: &AccessClaims) -> Result<(String, String), GatewayError> {
    Ok(match entry.peek().await? {
        Some(m) if !m.doc_key.is_empty() => (m.doc_key, m.title),
        _ => (c.key.clone(), c.title.clone()),
    })
}

/// 409 with `header` (`X-WOPI-ValidRelativeTarget` or `X-WOPI-Lock`) set to `value`.
fn conflict(header: &'static str, value: &str, why: &str) -> Response {
    let mut resp = (StatusCode::CONFLICT, format!("{why}\n")).into_response();
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut()
            .insert(http::HeaderName::from_static(header), v);
    }
    resp
}

async fn put_relative(
    state: &HostCtx,
    integrator: &Integrator,
    c: &AccessClaims,
    entry: &FileHandle,
    req: Request,
) -> Result<Response, GatewayError> {
    let headers = req.headers().clone();
    let suggested = match utf7_header(&headers, h::SUGGESTED_TARGET) {
        Ok(v) => v,
        Err(why) => return Ok(bad_name(&why)),
    };
    let relative = match utf7_header(&headers, h::RELATIVE_TARGET) {
        Ok(v) => v,
        Err(why) => return Ok(bad_name(&why)),
    };
    let (key, title) = current(entry, c).await?;
    let (mut name, specific) = match (suggested, relative) {
        (Some(_), Some(_)) => {
            return Err(GatewayError::NotImplemented(
                "PutRelativeFile with both X-WOPI-SuggestedTarget and X-WOPI-RelativeTarget",
            ));
        }
        (None, None) => {
            return Ok(bad_name(
                "X-WOPI-SuggestedTarget or X-WOPI-RelativeTarget is required",
            ));
        }
        (Some(s), None) if s.starts_with('.') => {
            let stem = title.rsplit_once('.').map_or(title.as_str(), |(s, _)| s);
            (format!("{stem}{s}"), false)
        }
        (Some(s), None) => (s, false),
        (None, Some(r)) => (r, true),
    };
    if let Some(why) = name_problem(&name) {
        return Ok(bad_name(why));
    }
    let Some(mut file_type) = extension(&name) else {
        return Ok(bad_name("the name has no extension"));
    };
    let overwrite = specific
        && header(&headers, h::OVERWRITE_RELATIVE_TARGET)
            .and_then(wopi::parse_bool)
            .unwrap_or(false);
    let conversion = headers.contains_key(h::FILE_CONVERSION)
        && header(&headers, h::FILE_CONVERSION)
            .and_then(wopi::parse_bool)
            .unwrap_or(true);
    let declared = match header(&headers, h::SIZE).map(|v| v.trim().parse::<u64>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return Err(GatewayError::BadRequest(
                "X-WOPI-Size is not an integer".into(),
            ));
        }
    };
    // The content first: whatever the hook answers, nothing sent is lost.
    let content_key =
        super::files::content_key(&c.fid, &format!("saveas-{}.bin", state.face.next_version()));
    let limit = state.settings().server.body_limits[crate::access::RouteGroup::Wopi.index()];
    let written = state
        .content
        .write(&content_key, req.into_body().into_data_stream(), limit)
        .await
        .map_err(crate::body::upload_error)?;
    state
        .metrics
        .bytes
        .with_label_values(&["in"])
        .inc_by(written.size);
    if let Some(n) = declared.filter(|n| *n != written.size) {
        return Err(GatewayError::BadRequest(format!(
            "the body is {} bytes, X-WOPI-Size says {n}",
            written.size
        )));
    }
    tracing::info!(file_id = %c.fid, size = written.size, key = %content_key, stage = "saveas-stored", "Save As content stored");
    let reference_data = state
        .shared
        .get(NS_REFERENCE_DATA, &c.fid)
        .await?
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    let url = super::deliveries::download_url(state, &content_key, &c.fid);
    // Suggested mode: the host must find a name that works, so one suggestion of the
    // integrator is taken.
    let mut tries = if specific { 1 } else { 2 };
    let answer = loop {
        tries -= 1;
        let mut body = Map::new();
        body.insert("action".into(), json!("saveas"));
        body.insert("key".into(), json!(key));
        body.insert("title".into(), json!(name));
        body.insert("fileType".into(), json!(file_type));
        body.insert("url".into(), json!(url));
        body.insert("user".into(), user(c));
        body.insert("referenceData".into(), reference_data.clone());
        body.insert(
            "mode".into(),
            json!(if specific { "relative" } else { "suggested" }),
        );
        if overwrite {
            body.insert("overwrite".into(), json!(true));
        }
        if conversion {
            body.insert("conversion".into(), json!(true));
        }
        let m = call(state, integrator, c, body).await?;
        match classify(integrator, c, m)? {
            Answer::Exists(Some(s)) if tries > 0 && s != name && name_problem(&s).is_none() => {
                if let Some(ft) = extension(&s) {
                    name = s;
                    file_type = ft;
                    continue;
                }
                break Answer::Exists(Some(s));
            }
            a => break a,
        }
    };
    let m = match answer {
        Answer::Ok(m) => m,
        Answer::Exists(s) => {
            let valid = s.as_deref().map(wopi::utf7::encode).unwrap_or_default();
            return Ok(conflict(
                h::VALID_RELATIVE_TARGET,
                &valid,
                "a file with this name exists",
            ));
        }
        Answer::Invalid(why) => return Ok(bad_name(&why)),
        Answer::Locked(lock) => {
            return Ok(conflict(h::LOCK, &lock, "the target file is locked"));
        }
    };
    let token = m
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GatewayError::Upstream {
            op: "actions",
            kind: UpstreamKind::Protocol,
            detail: "actions_url answered a Save As without `token` (the new file's config)".into(),
        })?;
    let opened = super::opening::open(state, integrator, token, false)
        .await
        .map_err(|e| match e {
            GatewayError::BadRequest(d) | GatewayError::Forbidden(d) | GatewayError::Unauthorized(d) => {
                tracing::warn!(integrator = %integrator.name, file_id = %c.fid, error = %d, stage = "actions-hook-failed", "the new file's config from actions_url does not open");
                GatewayError::Upstream {
                    op: "actions",
                    kind: UpstreamKind::Protocol,
                    detail: format!("the Save As config does not open: {d}"),
                }
            }
            other => other,
        })?;
    let settings = state.settings();
    let host_url = |action: &str| {
        format!(
            "{}/open?integrator={}&config={}&action={action}",
            settings.server.public_url.base(),
            utf8_percent_encode(&integrator.name, NON_ALPHANUMERIC),
            utf8_percent_encode(token, NON_ALPHANUMERIC),
        )
    };
    let has = |a: &str| opened.actions.iter().any(|x| x["name"] == a);
    let mut out = json!({
        "Name": opened.claims.title,
        "Url": format!(
            "{}?access_token={}",
            opened.wopi_src,
            utf8_percent_encode(&opened.access_token, NON_ALPHANUMERIC)
        ),
    });
    if has("view") {
        out["HostViewUrl"] = json!(host_url("view"));
    }
    if has("edit") && opened.claims.grant().write {
        out["HostEditUrl"] = json!(host_url("edit"));
    }
    tracing::info!(file_id = %c.fid, new_file_id = %opened.claims.fid, stage = "saveas-done", "Save As: the new file is open");
    Ok(axum::Json(out).into_response())
}

/// 409 when the file holds another lock than `X-WOPI-Lock` (`strict`: any lock).
async fn check_lock(
    state: &HostCtx,
    c: &AccessClaims,
    headers: &HeaderMap,
    strict: bool,
) -> Result<(), GatewayError> {
    let current = state.locks.get(&c.fid).await?;
    let Some(current) = current.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let given = header(headers, h::LOCK).unwrap_or("");
    if strict || given != current {
        return Err(GatewayError::LockConflict(wopi::LockConflict {
            current,
            reason: "the file is locked",
        }));
    }
    Ok(())
}

async fn rename(
    state: &HostCtx,
    integrator: &Integrator,
    c: &AccessClaims,
    entry: &FileHandle,
    headers: &HeaderMap,
) -> Result<Response, GatewayError> {
    let requested = match utf7_header(headers, h::REQUESTED_NAME) {
        Ok(Some(n)) => n,
        Ok(None) => return Ok(bad_name("X-WOPI-RequestedName is required")),
        Err(why) => return Ok(bad_name(&why)),
    };
    if let Some(why) = name_problem(&requested) {
        return Ok(bad_name(why));
    }
    check_lock(state, c, headers, false).await?;
    let (key, _) = current(entry, c).await?;
    let ft = entry
        .peek()
        .await?
        .map_or_else(|| c.ft.clone(), |m| m.file_type);
    let title = format!("{requested}.{ft}");
    let mut body = Map::new();
    body.insert("action".into(), json!("rename"));
    body.insert("key".into(), json!(key));
    body.insert("title".into(), json!(title));
    body.insert("user".into(), user(c));
    let m = call(state, integrator, c, body).await?;
    match classify(integrator, c, m)? {
        Answer::Ok(_) => {}
        // RenameFile has no name conflict answer: the name is refused.
        Answer::Exists(_) => return Ok(bad_name("a file with this name exists")),
        Answer::Invalid(why) => return Ok(bad_name(&why)),
        Answer::Locked(lock) => {
            return Err(GatewayError::LockConflict(wopi::LockConflict {
                current: lock,
                reason: "the file is locked in the storage",
            }));
        }
    }
    {
        let mut e = entry.lock().await?;
        e.meta.title.clone_from(&title);
        e.persist().await?;
    }
    tracing::info!(file_id = %c.fid, stage = "renamed", "RenameFile done by the integrator");
    Ok(axum::Json(json!({ "Name": requested })).into_response())
}

async fn delete(
    state: &HostCtx,
    integrator: &Integrator,
    c: &AccessClaims,
    entry: &FileHandle,
) -> Result<Response, GatewayError> {
    check_lock(state, c, &HeaderMap::new(), true).await?;
    let (key, _) = current(entry, c).await?;
    let mut body = Map::new();
    body.insert("action".into(), json!("delete"));
    body.insert("key".into(), json!(key));
    body.insert("user".into(), user(c));
    let m = call(state, integrator, c, body).await?;
    match classify(integrator, c, m)? {
        Answer::Ok(_) => {}
        Answer::Locked(lock) => {
            return Err(GatewayError::LockConflict(wopi::LockConflict {
                current: lock,
                reason: "the file is locked in the storage",
            }));
        }
        Answer::Exists(_) | Answer::Invalid(_) => {
            return Err(GatewayError::Upstream {
                op: "actions",
                kind: UpstreamKind::Protocol,
                detail: "actions_url answered a delete with a name error".into(),
            });
        }
    }
    tracing::info!(file_id = %c.fid, stage = "deleted", "DeleteFile done by the integrator");
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_problem("Report (1).docx"), None);
        assert!(name_problem("").is_some());
        assert!(name_problem("a/b.docx").is_some());
        assert!(name_problem("..").is_some());
        assert!(name_problem(&"x".repeat(256)).is_some());
        assert_eq!(extension("a.DOCX").as_deref(), Some("docx"));
        assert_eq!(extension(".docx"), None);
        assert_eq!(extension("noext"), None);
    }

    #[test]
    fn advertised_only_as_permitted() {
        let mut info = wopi::CheckFileInfo::default();
        advertise(&mut info, &Grant::legacy(false));
        assert_eq!(info.user_can_not_write_relative, None);
        assert_eq!(info.supports_rename, None);
        let mut info = wopi::CheckFileInfo::default();
        let no_download = Grant {
            download: false,
            ..Grant::legacy(true)
        };
        advertise(&mut info, &no_download);
        assert_eq!(info.user_can_not_write_relative, None);
        assert_eq!(info.user_can_rename, Some(true));
        assert_eq!(info.supports_delete_file, Some(true));
        let mut info = wopi::CheckFileInfo::default();
        advertise(&mut info, &Grant::legacy(true));
        assert_eq!(info.user_can_not_write_relative, Some(false));
    }
}
