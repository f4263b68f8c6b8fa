//! Saving to the host what ONLYOFFICE Docs assembled: download from Docs into the spool,
//! PutFile with the lock (taking a lost lock again), and the recovery copies of saves the
//! host did not accept. When to save is decided in [`super::callback`].

use super::host::{self, Call};
use crate::client_face::ClientCtx;
use crate::spool::{self, StreamError};
use axum::body::Body;
use docs_api::Callback;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use std::time::Duration;

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
    download_to_spool(state, "docs_download", "Docs", url, path).await
}

/// Downloads `url` (already checked by the caller) into the spool, at most
/// `server.body_limit_bytes.wopi`; `who` names the server in errors.
pub(crate) async fn download_to_spool(
    state: &ClientCtx,
    op: &'static str,
    who: &str,
    url: &str,
    path: &std::path::Path,
) -> Result<spool::Written, String> {
    let req = http::Request::get(url)
        .body(Body::empty())
        .map_err(|e| e.to_string())?;
    let resp = state.http.send(op, req).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("{who} answered {} for the file", resp.status()));
    }
    let limit = state.settings().server.body_limits[crate::access::RouteGroup::Wopi.index()];
    spool::write_stream(path, resp.into_body().into_data_stream(), limit)
        .await
        .map_err(|e| match e {
            StreamError::TooLarge => "file larger than server.body_limit_bytes.wopi".to_owned(),
            StreamError::Source(s) => format!("download interrupted: {s}"),
            StreamError::Io(io) => format!("spool: {io}"),
        })
}

/// What the host answered to an accepted PutFile.
pub(crate) struct PutOutcome {
    /// `LastModifiedTime` of the answer's body (Nextcloud style).
    pub(crate) last_modified: Option<String>,
    /// `X-WOPI-ItemVersion` of the answer.
    pub(crate) version: Option<String>,
}

/// Why a save did not reach the host.
#[derive(Debug)]
pub(crate) struct SaveFailure {
    /// Why, for the log, the recovery record and Docs.
    pub(crate) why: String,
    /// The host's `X-WOPI-LockFailureReason`, when it gave one.
    pub(crate) host_reason: Option<String>,
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
pub(crate) async fn put_file(
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
        (wopi::headers::SESSION_ID, cb.key.clone()),
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

/// Recovery records in the shared state (their content in the content store under
/// `recovery/`).
pub(crate) const NS_RECOVERY: &str = "recovery";

/// Keeps a save the host did not take: its bytes (when `from` has them) go to the content
/// store, a record with the reason to the shared state (both visible from every instance at
/// `GET /recovery`). Returns the record's id.
pub(crate) async fn keep_recovery(
    state: &ClientCtx,
    key: &str,
    wopi_src: &str,
    status: i64,
    from: Option<&std::path::Path>,
    why: &str,
    host_reason: Option<&str>,
) -> Option<String> {
    let id = format!(
        "{key}-{}-{}",
        state.now_ms(),
        crate::random::hex::<3>().unwrap_or_default()
    );
    let content_key = format!("recovery/{id}.bin");
    let mut file = None;
    if let Some(src) = from {
        let stored = match std::fs::File::open(src) {
            Ok(f) => state
                .content
                .write(&content_key, Box::pin(spool::read_stream(f)), u64::MAX)
                .await
                .map_err(|e| match e {
                    spool::StreamError::Io(e) | spool::StreamError::Source(e) => e.to_string(),
                    spool::StreamError::TooLarge => "too large".into(),
                }),
            Err(e) => Err(e.to_string()),
        };
        match stored {
            Ok(_) => {
                let _ = tokio::fs::remove_file(src).await;
                file = Some(state.content.locate(&content_key));
            }
            Err(e) => {
                // The download stays in the local spool: nothing is lost, the log says where.
                tracing::error!(error = %e, path = %src.display(), "cannot store the recovery copy in the content store; it stays in the local spool");
                file = Some(src.display().to_string());
            }
        }
    }
    let record = json!({"id": id, "key": key, "wopi_src": wopi_src, "status": status, "reason": why, "host_reason": host_reason, "file": file, "content_key": from.map(|_| content_key.clone()), "time_ms": state.now_ms()});
    if let Err(e) = state
        .shared
        .put_json(NS_RECOVERY, &id, &record, crate::cluster::Keep::Durable)
        .await
    {
        tracing::error!(error = %e, %record, "cannot record the recovery copy in the shared state");
    }
    state
        .metrics
        .recovery
        .set(count_recovery(state).await as i64);
    tracing::error!(
        key,
        status,
        reason = why,
        host_reason,
        file = file.as_deref().unwrap_or("-"),
        "save kept as a recovery copy"
    );
    Some(id)
}

/// Number of recovery copies held (cluster-wide).
pub(crate) async fn count_recovery(state: &ClientCtx) -> usize {
    state
        .shared
        .ids(NS_RECOVERY)
        .await
        .map_or(0, |ids| ids.len())
}
