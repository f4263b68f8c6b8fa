//! Conversions by ONLYOFFICE Docs' conversion API (`POST {docs.url}/converter`, JWT-signed,
//! `async: true`, polled until `endConvert`), for two callers:
//!
//! - **convert-and-edit**: a WOPI host opens a format Docs cannot edit natively (`doc`, `xls`,
//!   `ppt`, …) with the `convert` action of discovery. The gateway converts it to
//!   docx/xlsx/pptx, saves the result next to the original with PutRelativeFile
//!   (`X-WOPI-FileConversion: true`) and sends the browser to the host's `HostEditUrl`.
//!   Nothing is written to the host unless the conversion succeeded.
//! - **convert-to** (Collabora-compatible): `POST /cool/convert-to/{format}` with a multipart
//!   `data` field answers the converted bytes.
//!
//! Docs downloads each source from `/docs/convert/{job}` (JWT-checked like document.url).

use super::host::{self, Call};
use crate::client_face::ClientCtx;
use crate::error::GatewayError;
use crate::spool;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use dashmap::DashMap;
use docs_api::jwt;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a finished job stays answerable on its status URL.
const FINISHED_JOB_TTL: Duration = Duration::from_secs(600);

/// What Docs downloads for a job.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// GetFile on the host.
    Host {
        /// WOPISrc.
        wopi_src: String,
        /// The user's access token.
        token: String,
    },
    /// An upload kept in the spool (convert-to).
    File(PathBuf),
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JobState {
    /// Docs is converting (percent as Docs reports it).
    Converting(u8),
    /// Saved on the host; the browser goes to `HostEditUrl`.
    Done {
        /// The host's `HostEditUrl` for the new file.
        host_edit_url: String,
        /// The new file's name.
        name: String,
    },
    /// Failed; nothing was written to the host.
    Failed {
        /// The status the status URL answers with.
        status: u16,
        /// What to tell the user.
        message: String,
    },
}

/// One conversion.
#[derive(Debug)]
pub(crate) struct Job {
    source: Source,
    state: tokio::sync::watch::Sender<JobState>,
    finished: Mutex<Option<Instant>>,
}

impl Job {
    fn set(&self, s: JobState) {
        let done = !matches!(s, JobState::Converting(_));
        self.state.send_replace(s);
        if done {
            if let Ok(mut f) = self.finished.lock() {
                *f = Some(Instant::now());
            }
        }
    }

    /// The job's state now.
    pub(crate) fn state(&self) -> JobState {
        self.state.borrow().clone()
    }

    /// The state once it differs from `seen` (or after `within`).
    async fn changed_from(&self, seen: &JobState, within: Duration) -> JobState {
        let mut rx = self.state.subscribe();
        let _ = tokio::time::timeout(within, rx.wait_for(|s| s != seen)).await;
        self.state()
    }
}

/// Conversions in progress (and finished ones, for a while).
#[derive(Debug, Default, Clone)]
pub(crate) struct Jobs {
    map: Arc<DashMap<String, Arc<Job>>>,
}

impl Jobs {
    fn add(&self, source: Source) -> Result<(String, Arc<Job>), GatewayError> {
        self.sweep();
        let id = crate::random::hex::<16>()?;
        let job = Arc::new(Job {
            source,
            state: tokio::sync::watch::Sender::new(JobState::Converting(0)),
            finished: Mutex::new(None),
        });
        self.map.insert(id.clone(), job.clone());
        Ok((id, job))
    }

    fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.map.get(id).map(|j| j.clone())
    }

    fn remove(&self, id: &str) {
        self.map.remove(id);
    }

    fn sweep(&self) {
        self.map.retain(|_, j| {
            j.finished
                .lock()
                .ok()
                .and_then(|f| *f)
                .is_none_or(|t| t.elapsed() < FINISHED_JOB_TTL)
        });
    }
}

/// Why Docs did not convert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConvertFailure {
    /// Docs answered `{"error": n}`.
    Docs(i64),
    /// No result within `client_face.conversion_timeout_seconds`.
    Timeout,
    /// Docs could not be reached or answered something unreadable.
    Transport(String),
}

impl ConvertFailure {
    /// The status a caller of the gateway sees.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ConvertFailure::Timeout | ConvertFailure::Docs(-2) => StatusCode::GATEWAY_TIMEOUT,
            ConvertFailure::Docs(-5) => StatusCode::UNPROCESSABLE_ENTITY,
            ConvertFailure::Docs(-9 | -3) => StatusCode::UNPROCESSABLE_ENTITY,
            ConvertFailure::Docs(-10) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_GATEWAY,
        }
    }
}

/// The conversion API's error codes, explained.
pub(crate) fn explain(code: i64) -> &'static str {
    match code {
        -1 => "unknown error in the conversion service",
        -2 => "the conversion timed out",
        -3 => "the file could not be converted (damaged, or not of the format its name says)",
        -4 => "ONLYOFFICE Docs could not download the source file",
        -5 => "the file is password-protected (or the password is wrong)",
        -6 => "the conversion service's queue or database failed",
        -7 => "the conversion request was malformed",
        -8 => {
            "the conversion request's token was refused (docs.jwt_secret differs from Docs' secret)"
        }
        -9 => "the file's format could not be detected",
        -10 => "the file is too large or too complex to convert",
        _ => "unknown conversion error",
    }
}

impl std::fmt::Display for ConvertFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertFailure::Docs(code) => write!(f, "conversion error {code}: {}", explain(*code)),
            ConvertFailure::Timeout => f.write_str("the conversion did not finish in time"),
            ConvertFailure::Transport(e) => write!(f, "ONLYOFFICE Docs' converter failed: {e}"),
        }
    }
}

/// One request to the converter.
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    /// Docs' cache key for the conversion (`[0-9A-Za-z._=-]`).
    pub key: &'a str,
    /// Where Docs downloads the source.
    pub url: &'a str,
    /// Source extension.
    pub filetype: &'a str,
    /// Target extension.
    pub outputtype: &'a str,
    /// Source file name.
    pub title: &'a str,
}

/// Converts with Docs, polling with backoff; `progress` hears each reported percent.
/// Returns the URL of the converted file (on Docs).
pub(crate) async fn convert(
    state: &ClientCtx,
    r: &Request<'_>,
    progress: impl Fn(u8),
) -> Result<String, ConvertFailure> {
    let settings = state.settings();
    let secret = settings
        .docs
        .jwt_secret
        .clone()
        .ok_or_else(|| ConvertFailure::Transport("docs.jwt_secret is not set".into()))?;
    let endpoint = format!("{}/converter", settings.docs.url.trim_end_matches('/'));
    let header = settings.docs.jwt_header.clone();
    let deadline = tokio::time::Instant::now() + settings.client_face.conversion_timeout;
    drop(settings);
    let params = json!({
        "async": true,
        "key": r.key,
        "url": r.url,
        "filetype": r.filetype,
        "outputtype": r.outputtype,
        "title": r.title,
    });
    let mut delay = Duration::from_millis(200);
    loop {
        let mut body = params.clone();
        if let (Value::Object(m), Value::Object(p)) = (&mut body, &params) {
            m.insert("token".into(), json!(jwt::sign(&secret, p)));
        }
        let now = state.now_ms() / 1000;
        let bearer = format!(
            "Bearer {}",
            jwt::sign_payload(&secret, params.clone(), now, 300)
        );
        let req = http::Request::post(&endpoint)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .header(header.as_str(), bearer)
            .body(Body::from(body.to_string()))
            .map_err(|e| ConvertFailure::Transport(e.to_string()))?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(ConvertFailure::Timeout);
        }
        let answer = match state.http.send_read("docs_converter", req, 64 * 1024).await {
            Ok((_, bytes)) => serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                ConvertFailure::Transport(format!("the converter's answer is not JSON: {e}"))
            })?,
            Err(e) => return Err(ConvertFailure::Transport(e.to_string())),
        };
        if let Some(code) = answer.get("error").and_then(Value::as_i64) {
            return Err(ConvertFailure::Docs(code));
        }
        let percent = answer.get("percent").and_then(Value::as_u64).unwrap_or(0);
        progress(percent.min(100) as u8);
        if answer.get("endConvert").and_then(Value::as_bool) == Some(true) {
            return answer
                .get("fileUrl")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    ConvertFailure::Transport("the converter finished without a fileUrl".into())
                });
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(ConvertFailure::Timeout);
        }
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_secs(3));
    }
}

/// `GET /docs/convert/{job}`: Docs downloads a conversion's source (Docs' JWT header, whose
/// `payload.url` names this URL).
pub(crate) async fn source(
    State(state): State<ClientCtx>,
    Path(id): Path<String>,
    _docs: super::auth::DocsRequest,
) -> Result<Response, GatewayError> {
    let job = state
        .face
        .jobs
        .get(&id)
        .ok_or(GatewayError::NotFound("conversion"))?;
    match &job.source {
        Source::File(path) => {
            let file = std::fs::File::open(path)?;
            let len = file.metadata()?.len();
            Ok((
                [
                    (
                        http::header::CONTENT_TYPE,
                        "application/octet-stream".to_owned(),
                    ),
                    (http::header::CONTENT_LENGTH, len.to_string()),
                ],
                Body::from_stream(spool::read_stream(file)),
            )
                .into_response())
        }
        Source::Host { wopi_src, token } => {
            super::docs::stream_get_file(&state, wopi_src, token).await
        }
    }
}

/// The URL Docs downloads a job's source from.
fn source_url(state: &ClientCtx, id: &str) -> String {
    format!(
        "{}/docs/convert/{id}",
        state.settings().server.internal_url.base()
    )
}

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
    let (id, job) = state.face.jobs.add(Source::Host {
        wopi_src: action.wopi_src.clone(),
        token: action.token.clone(),
    })?;
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
    let Some(job) = state.face.jobs.get(&id) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"state": "unknown", "message": "no such conversion (finished long ago, or never started)"})),
        )
            .into_response();
    };
    let mut now = job.state();
    let wait = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "wait=1"));
    if wait && matches!(now, JobState::Converting(_)) {
        now = job.changed_from(&now, STATUS_WAIT).await;
    }
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

/// Output formats `convert-to` offers, by the source's document type.
fn convert_to_targets(doc_type: &str) -> &'static [&'static str] {
    match doc_type {
        "word" => &[
            "docx", "odt", "pdf", "rtf", "txt", "html", "epub", "docm", "dotx", "ott", "fb2",
            "png", "jpg",
        ],
        "cell" => &[
            "xlsx", "ods", "csv", "pdf", "xltx", "ots", "xlsm", "png", "jpg",
        ],
        "slide" => &["pptx", "odp", "pdf", "potx", "otp", "pptm", "png", "jpg"],
        "pdf" => &["pdf", "docx", "png", "jpg"],
        _ => &[],
    }
}

/// `POST /cool/convert-to/{format}` and `/lool/convert-to/{format}`: a multipart `data`
/// field in, the converted bytes out.
pub(crate) async fn convert_to(
    State(state): State<ClientCtx>,
    Path(format): Path<String>,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, GatewayError> {
    let format = format.to_ascii_lowercase();
    let Ok(_permit) = state.face.convert_to_slots.clone().try_acquire_owned() else {
        state.metrics.load_shed.inc();
        return Err(GatewayError::Overloaded);
    };
    let mut multipart = multipart.map_err(|e| {
        GatewayError::BadRequest(format!("convert-to needs a multipart/form-data body: {e}"))
    })?;
    let (name, path, size) = loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| multipart_error(&e))?
            .ok_or_else(|| GatewayError::BadRequest("the form has no `data` field".into()))?;
        if field.name() != Some("data") {
            continue;
        }
        let name = field.file_name().unwrap_or("").to_owned();
        let id = crate::random::hex::<12>()?;
        let path = state.face.spool.join(format!("convert-to-{id}.bin"));
        let limit = state.settings().server.body_limits[crate::access::RouteGroup::Hosting.index()];
        let stream = futures_util::StreamExt::map(field, |c| c.map_err(|e| e.to_string()));
        let written = spool::write_stream(&path, stream, limit)
            .await
            .map_err(|e| match e {
                spool::StreamError::TooLarge => GatewayError::PayloadTooLarge,
                spool::StreamError::Source(s) if s.contains("length limit") => {
                    GatewayError::PayloadTooLarge
                }
                spool::StreamError::Source(s) => {
                    GatewayError::BadRequest(format!("upload interrupted: {s}"))
                }
                spool::StreamError::Io(io) => GatewayError::from(io),
            })?;
        break (name, path, written.size);
    };
    let cleanup = TempFile(path.clone());
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let doc_type = docs_api::config::document_type(&ext).ok_or_else(|| {
        GatewayError::BadRequest(format!(
            "`{name}`: the file name has no extension ONLYOFFICE Docs can convert"
        ))
    })?;
    if !convert_to_targets(doc_type).contains(&format.as_str()) {
        return Err(GatewayError::BadRequest(format!(
            "cannot convert .{ext} to `{format}` (from a {doc_type} file: {})",
            convert_to_targets(doc_type).join(", ")
        )));
    }
    if state.settings().docs.jwt_secret.is_none() {
        return Err(GatewayError::Forbidden(
            "convert-to needs docs.jwt_secret".into(),
        ));
    }
    let (id, _job) = state.face.jobs.add(Source::File(path.clone()))?;
    let key = format!("cvt-{id}");
    let url = source_url(&state, &id);
    tracing::info!(size, from = %ext, to = %format, stage = "convert-to", "conversion requested");
    let converted = convert(
        &state,
        &Request {
            key: &key,
            url: &url,
            filetype: &ext,
            outputtype: &format,
            title: &name,
        },
        |_| {},
    )
    .await;
    state.face.jobs.remove(&id);
    let file_url = converted.map_err(|f| {
        let op = "convert-to";
        match f {
            ConvertFailure::Timeout => GatewayError::Upstream {
                op,
                kind: crate::error::UpstreamKind::Timeout,
                detail: f.to_string(),
            },
            ConvertFailure::Docs(-2) => GatewayError::Upstream {
                op,
                kind: crate::error::UpstreamKind::Timeout,
                detail: f.to_string(),
            },
            ConvertFailure::Docs(-3 | -5 | -9) => GatewayError::BadRequest(f.to_string()),
            _ => GatewayError::Upstream {
                op,
                kind: crate::error::UpstreamKind::Protocol,
                detail: f.to_string(),
            },
        }
    })?;
    let out = state.face.spool.join(format!("convert-to-{id}.out"));
    let written = super::saves::fetch_to_spool(&state, &file_url, &out)
        .await
        .map_err(|why| GatewayError::Upstream {
            op: "convert-to",
            kind: crate::error::UpstreamKind::Protocol,
            detail: format!("downloading the converted file: {why}"),
        })?;
    drop(cleanup);
    let out_cleanup = TempFile(out.clone());
    let file = std::fs::File::open(&out)?;
    // The open file keeps streaming after its name is removed.
    drop(out_cleanup);
    let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
    let disposition = format!(
        "attachment; filename=\"{}.{format}\"",
        stem.replace(['"', '\\', '\r', '\n'], "_")
    );
    Ok((
        [
            (
                http::header::CONTENT_TYPE,
                super::saves::mime(&format).to_owned(),
            ),
            (http::header::CONTENT_LENGTH, written.size.to_string()),
            (http::header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(spool::read_stream(file)),
    )
        .into_response())
}

fn multipart_error(e: &axum::extract::multipart::MultipartError) -> GatewayError {
    let text = e.body_text();
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE || text.contains("length limit") {
        GatewayError::PayloadTooLarge
    } else {
        GatewayError::BadRequest(format!("convert-to form: {text}"))
    }
}

/// A spool file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
