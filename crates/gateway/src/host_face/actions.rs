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
//! Refusals the integrator may answer: `{"error":"exists","suggested":"Name (1).docx",
//! "token"?}` (a name conflict; `token`: the editor config of the file that has the name),
//! `{"error":"invalid","message":…}` (a name it refuses), `{"error":"locked","lock":…}`
//! (Save As over a locked file), `{"error":"notfound"}` (it no longer has the file: 404).
//! Anything else (no answer, not HTTP 200, not JSON, another error) is a failing hook: 502,
//! logged, the new content stays in the store.
//!
//! A Save As that may overwrite is asked without `overwrite` first: the WOPI locks are the
//! gateway's, so it checks the file named in the `exists` answer before asking again with
//! `overwrite` ([`save_as`]). After a delete, the file's access tokens answer 404
//! (`command::refuse_dropped`) and its state goes.

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
use serde_json::{Map, Value, json};
use std::time::Duration;
use wopi::Operation;
use wopi::headers as h;

mod save_as;

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

/// PutRelativeFile, RenameFile or DeleteFile of `c` through `integrator`'s hook. A user the
/// integrator's permissions do not allow it gets 501, as CheckFileInfo told them
/// (`UserCanNotWriteRelative: true`, `SupportsRename`/`SupportsDeleteFile: false`): WOPI
/// answers 501 to an operation the host says it does not offer (the validator's group
/// `PutRelativeFileUnsupported`), and keeps 401 for a token that does not verify.
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
            save_as::put_relative(state, integrator, c, entry, req).await
        }
        Operation::RenameFile if may_rename_or_delete(&g) => {
            rename(state, integrator, c, entry, req.headers()).await
        }
        Operation::DeleteFile if may_rename_or_delete(&g) => {
            delete(state, integrator, c, entry).await
        }
        Operation::PutRelativeFile => Err(GatewayError::NotImplemented(
            "PutRelativeFile for this user (UserCanNotWriteRelative: the config allows no editing or no download)",
        )),
        Operation::RenameFile => Err(GatewayError::NotImplemented(
            "RenameFile for this user (SupportsRename: false: the config allows no editing)",
        )),
        _ => Err(GatewayError::NotImplemented(
            "DeleteFile for this user (SupportsDeleteFile: false: the config allows no editing)",
        )),
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
    /// The name is taken: a free name to suggest, and the editor config of the file that has
    /// the name (signed, when the integrator sends it).
    Exists {
        suggested: Option<String>,
        target: Option<String>,
    },
    Invalid(String),
    Locked(String),
    /// The storage no longer has the file.
    NotFound,
}

fn classify(
    integrator: &Integrator,
    c: &AccessClaims,
    m: Map<String, Value>,
) -> Result<Answer, GatewayError> {
    let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    match &m["error"] {
        Value::Number(n) if n.as_i64() == Some(0) => Ok(Answer::Ok(m)),
        Value::String(s) if s == "exists" => Ok(Answer::Exists {
            suggested: text("suggested"),
            target: text("token").filter(|t| !t.is_empty()),
        }),
        Value::String(s) if s == "notfound" => Ok(Answer::NotFound),
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
        Answer::Exists { .. } => return Ok(bad_name("a file with this name exists")),
        Answer::Invalid(why) => return Ok(bad_name(&why)),
        Answer::NotFound => return Err(GatewayError::NotFound("file")),
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
        Answer::NotFound => return Err(GatewayError::NotFound("file")),
        Answer::Exists { .. } | Answer::Invalid(_) => {
            return Err(GatewayError::Upstream {
                op: "actions",
                kind: UpstreamKind::Protocol,
                detail: "actions_url answered a delete with a name error".into(),
            });
        }
    }
    // The file is gone: every access token issued until now answers 404 from here on (the
    // tokens are self-contained; without this, the next request would rebuild the state
    // from its token), and what the gateway kept of the file goes.
    super::command::mark_deleted(state, &c.fid).await?;
    if let Some(e) = state.face.files.lock_existing(&c.fid).await? {
        super::editing::forget(state, &e).await?;
        state.face.files.remove(e).await?;
    }
    for ns in [NS_REFERENCE_DATA, super::opening::NS_DOCS_API_CONFIG] {
        state.shared.delete(ns, &c.fid).await?;
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
