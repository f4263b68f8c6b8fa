//! Convert-and-edit: a WOPI host opens a format Docs cannot edit natively (`doc`, `xls`,
//! `ppt`, …) with discovery's `convert` action; the gateway converts it to docx/xlsx/pptx,
//! saves the result next to the original with PutRelativeFile (`X-WOPI-FileConversion: true`)
//! and sends the browser to the host's `HostEditUrl`. Nothing is written to the host unless
//! the conversion succeeded.

use super::convert::{Job, JobState, JobView, Request, Source, convert, source_url};
use super::host::{self, Call};
use crate::client_face::ClientCtx;
use crate::error::GatewayError;
use crate::spool;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// `GET|POST /hosting/wopi/convert-and-edit/{ext}/{target}`: a WOPI host's browser posts
/// `access_token` as for the editor; the answer is a progress page that follows the job.
pub(crate) async fn convert_and_edit(
    State(state): State<ClientCtx>,
    Path((ext, target)): Path<(String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match start_convert_and_edit(
        &state,
        &ext,
        &target,
        query.as_deref().unwrap_or(""),
        &headers,
        body,
    )
    .await
    {
        Ok(page) => page,
        Err(e) => {
            state
                .metrics
                .editor_opens
                .with_label_values(&["convert", e.page_result()])
                .inc();
            tracing::warn!(
                result = e.page_result(),
                stage = "convert-and-edit",
                "conversion not started"
            );
            e.into_page()
        }
    }
}

async fn start_convert_and_edit(
    state: &ClientCtx,
    ext: &str,
    target: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let ext = ext.to_ascii_lowercase();
    let target = target.to_ascii_lowercase();
    if super::discovery::converts_to(&ext) != Some(target.as_str()) {
        return Err(GatewayError::NoRoute(format!(
            "no conversion from .{ext} to .{target}"
        )));
    }
    if state.settings().docs.jwt_secret.is_none() {
        return Err(GatewayError::NotConfigured(
            "conversions need docs.jwt_secret".into(),
        ));
    }
    let action = super::editor::read_action(state, raw_query, headers, body).await?;
    let info = host::check_file_info(state, &action.wopi_src, &action.token, &[]).await?;
    let flag = wopi::CheckFileInfo::flag;
    if !flag(info.supports_update) || flag(info.user_can_not_write_relative) {
        return Err(GatewayError::Forbidden(
            "the host does not let this user create the converted file (it needs SupportsUpdate and no UserCanNotWriteRelative)".into(),
        ));
    }
    let source_ext = info.extension();
    if source_ext != ext {
        return Err(GatewayError::BadRequest(format!(
            "the file is .{source_ext}, not .{ext}"
        )));
    }
    let (id, job) = state
        .face
        .jobs
        .add(
            Source::Host {
                wopi_src: action.wopi_src.clone(),
                token: action.token.clone(),
            },
            state.settings().client_face.conversion_timeout,
        )
        .await?;
    let title = info.base_file_name;
    tokio::spawn(run_convert_and_edit(
        state.clone(),
        id.clone(),
        job,
        action.wopi_src,
        action.token,
        title.clone(),
        ext,
        target,
    ));
    state
        .metrics
        .editor_opens
        .with_label_values(&["convert", "ok"])
        .inc();
    let status_url = format!(
        "{}/hosting/convert/{id}",
        state.settings().server.public_url.base()
    );
    Ok((
        [(http::header::CACHE_CONTROL, "no-store")],
        Html(progress_page(&title, &status_url)),
    )
        .into_response())
}

#[allow(clippy::too_many_arguments)]
async fn run_convert_and_edit(
    state: ClientCtx,
    id: String,
    job: Arc<Job>,
    wopi_src: String,
    token: String,
    title: String,
    ext: String,
    target: String,
) {
    let key = format!("conv-{id}");
    let url = source_url(&state, &id);
    let converted = convert(
        &state,
        &Request {
            key: &key,
            url: &url,
            filetype: &ext,
            outputtype: &target,
            title: &title,
        },
        |p| job.set(JobState::Converting(p)),
    )
    .await;
    let file_url = match converted {
        Ok(u) => u,
        Err(f) => {
            tracing::warn!(error = %f, stage = "convert-and-edit", "conversion failed; nothing written to the host");
            return job.set(JobState::Failed {
                status: f.status().as_u16(),
                message: f.to_string(),
            });
        }
    };
    let path = state.face.spool.join(format!("convert-{id}.bin"));
    let written = match super::saves::fetch_to_spool(&state, &file_url, &path).await {
        Ok(w) => w,
        Err(why) => {
            return job.set(JobState::Failed {
                status: 502,
                message: format!("the converted file could not be downloaded from Docs: {why}"),
            });
        }
    };
    let result = put_relative(&state, &wopi_src, &token, &path, written.size, &target).await;
    let _ = tokio::fs::remove_file(&path).await;
    match result {
        Ok((name, host_edit_url)) => {
            tracing::info!(
                stage = "convert-and-edit",
                size = written.size,
                "converted file saved next to the original"
            );
            job.set(JobState::Done {
                host_edit_url,
                name,
            });
        }
        Err((status, message)) => {
            tracing::warn!(status, %message, stage = "convert-and-edit", "the host refused the converted file");
            job.set(JobState::Failed { status, message });
        }
    }
}

/// PutRelativeFile of a converted file: `.{target}` suggested, `X-WOPI-FileConversion`;
/// answers the new file's name and `HostEditUrl`.
async fn put_relative(
    state: &ClientCtx,
    wopi_src: &str,
    token: &str,
    path: &std::path::Path,
    size: u64,
    target: &str,
) -> Result<(String, String), (u16, String)> {
    let v = put_relative_file(
        state,
        wopi_src,
        token,
        path,
        size,
        &format!(".{target}"),
        target,
        true,
        None,
    )
    .await?;
    let name = v
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match v
        .get("HostEditUrl")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    {
        Some(u) => Ok((name, u.to_owned())),
        None => Err((
            502,
            format!("the host saved `{name}` but gave no HostEditUrl to open it"),
        )),
    }
}

/// PutRelativeFile of a spooled file under the suggested name (or `.ext`); answers the
/// host's JSON. A refusal keeps its status when it is 409, 413 or 501.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn put_relative_file(
    state: &ClientCtx,
    wopi_src: &str,
    token: &str,
    path: &std::path::Path,
    size: u64,
    suggested: &str,
    ext: &str,
    conversion: bool,
    session: Option<&str>,
) -> Result<Value, (u16, String)> {
    let file = std::fs::File::open(path).map_err(|e| (500, format!("spool: {e}")))?;
    let call = Call {
        wopi_src,
        suffix: "",
        token,
        op: "PutRelativeFile",
    };
    let mut headers = vec![
        (wopi::headers::OVERRIDE, "PUT_RELATIVE".to_owned()),
        (
            wopi::headers::SUGGESTED_TARGET,
            wopi::utf7::encode(suggested),
        ),
        (wopi::headers::SIZE, size.to_string()),
        ("content-type", super::saves::mime(ext).to_owned()),
        ("content-length", size.to_string()),
    ];
    if let Some(id) = session {
        headers.push((wopi::headers::SESSION_ID, id.to_owned()));
    }
    if conversion {
        headers.push((wopi::headers::FILE_CONVERSION, "true".to_owned()));
    }
    let resp = host::send_ok(
        state,
        &call,
        http::Method::POST,
        &headers,
        Body::from_stream(spool::read_stream(file)),
    )
    .await
    .map_err(|e| match &e {
        GatewayError::HostRefused { refusal, .. } => (
            match refusal.status {
                409 | 413 | 501 => refusal.status,
                _ => 502,
            },
            match refusal.status {
                409 => format!("the host refused the new file (a file of that name exists or is locked): {refusal}"),
                413 => format!("the host refused the new file as too large: {refusal}"),
                501 => format!("the host does not support creating files (PutRelativeFile): {refusal}"),
                _ => format!("the host refused the new file: {refusal}"),
            },
        ),
        _ => (502, format!("saving the converted file failed: {e}")),
    })?;
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// How long `?wait=1` holds a status request for a change.
const STATUS_WAIT: Duration = Duration::from_secs(20);

/// `GET /hosting/convert/{job}[?wait=1]`: 202 while converting, 200 with `hostEditUrl` when
/// done, the failure's status (4xx/5xx) with a message otherwise. With `wait=1` a request
/// made while converting is answered when the state changes (or after 20 s).
pub(crate) async fn status(
    State(state): State<ClientCtx>,
    Path(id): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let wait = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "wait=1"));
    let now = match state.face.jobs.get(&id).await {
        Err(e) => return e.into_response(),
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"state": "unknown", "message": "no such conversion (finished long ago, or never started)"})),
            )
                .into_response();
        }
        Ok(Some(JobView::Local(job))) => {
            let now = job.state();
            if wait && matches!(now, JobState::Converting(_)) {
                job.changed_from(&now, STATUS_WAIT).await
            } else {
                now
            }
        }
        Ok(Some(JobView::Remote(r))) => {
            // Run by another instance: follow its published state.
            let mut now = r.state;
            let deadline = tokio::time::Instant::now() + STATUS_WAIT;
            while wait && matches!(now, JobState::Converting(_)) {
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                match state.face.jobs.record(&id).await {
                    Ok(Some(r)) if r.state != now => {
                        now = r.state;
                        break;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => return e.into_response(),
                }
            }
            now
        }
    };
    let (status, body) = match now {
        JobState::Converting(p) => (
            StatusCode::ACCEPTED,
            json!({"state": "converting", "percent": p}),
        ),
        JobState::Done {
            host_edit_url,
            name,
        } => (
            StatusCode::OK,
            json!({"state": "done", "hostEditUrl": host_edit_url, "name": name}),
        ),
        JobState::Failed { status, message } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            json!({"state": "failed", "message": message}),
        ),
    };
    (
        status,
        [(http::header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

fn progress_page(title: &str, status_url: &str) -> String {
    let esc = crate::html::escape;
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Converting {title}</title>
<style>body{{font-family:sans-serif;margin:3em}}progress{{width:20em}}</style></head>
<body>
<p id="msg">Converting {title} for editing…</p>
<progress id="bar" max="100" value="0"></progress>
<script>
(function () {{
  var statusUrl = "{url}";
  var msg = document.getElementById('msg'), bar = document.getElementById('bar');
  function poll() {{
    fetch(statusUrl + '?wait=1', {{cache: 'no-store'}}).then(function (r) {{
      return r.json().then(function (b) {{ return {{code: r.status, body: b}}; }});
    }}).then(function (r) {{
      if (r.code === 202) {{ bar.value = r.body.percent || 0; setTimeout(poll, 200); return; }}
      if (r.code === 200 && r.body.hostEditUrl) {{ bar.value = 100; window.location.replace(r.body.hostEditUrl); return; }}
      bar.remove(); msg.textContent = 'The document could not be converted: ' + (r.body.message || ('error ' + r.code));
    }}).catch(function () {{ setTimeout(poll, 2000); }});
  }}
  poll();
}})();
</script>
</body></html>
"#,
        title = esc(title),
        url = esc(status_url),
    )
}
