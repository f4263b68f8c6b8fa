//! Conversions by ONLYOFFICE Docs' conversion API (`POST {docs.url}/converter`, JWT-signed,
//! `async: true`, polled until `endConvert`): the client, the jobs, and the source Docs
//! downloads from `/docs/convert/{job}` (JWT-checked like document.url). Its two callers are
//! [`super::convert_and_edit`] and [`super::convert_to`].

use crate::client_face::ClientCtx;
use crate::error::GatewayError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use docs_api::jwt;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a finished job stays answerable on its status URL.
const FINISHED_JOB_TTL: Duration = Duration::from_secs(600);

/// What Docs downloads for a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Source {
    /// GetFile on the host.
    Host {
        /// WOPISrc.
        wopi_src: String,
        /// The user's access token.
        token: String,
    },
    /// An upload kept in the content store (convert-to), by key.
    Upload(String),
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub(crate) fn set(&self, s: JobState) {
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
    pub(crate) async fn changed_from(&self, seen: &JobState, within: Duration) -> JobState {
        let mut rx = self.state.subscribe();
        let _ = tokio::time::timeout(within, rx.wait_for(|s| s != seen)).await;
        self.state()
    }
}

/// A job as the shared state holds it, for the instances that do not run it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobRecord {
    /// Where it is.
    pub state: JobState,
    /// What Docs downloads.
    pub source: Source,
}

/// Namespace of job records.
const NS_JOB: &str = "job";

/// A job seen from this instance: run here, or by another instance of the cluster.
pub(crate) enum JobView {
    /// Running (or run) here.
    Local(Arc<Job>),
    /// Known from the shared state.
    Remote(JobRecord),
}

/// Conversions in progress (and finished ones, for a while): run by the instance that
/// started them, published to the shared state so the status URL and Docs' download of the
/// source work on every instance.
#[derive(Debug, Clone)]
pub(crate) struct Jobs {
    map: Arc<DashMap<String, Arc<Job>>>,
    shared: crate::cluster::Shared,
}

impl Jobs {
    /// The jobs, published to `shared`.
    pub(crate) fn new(shared: crate::cluster::Shared) -> Self {
        Jobs {
            map: Arc::new(DashMap::new()),
            shared,
        }
    }

    /// Starts a job record; every change of its state is published until it finishes.
    pub(crate) async fn add(
        &self,
        source: Source,
        ttl: Duration,
    ) -> Result<(String, Arc<Job>), GatewayError> {
        self.sweep();
        let id = crate::random::hex::<16>()?;
        let job = Arc::new(Job {
            source,
            state: tokio::sync::watch::Sender::new(JobState::Converting(0)),
            finished: Mutex::new(None),
        });
        let keep = crate::cluster::Keep::For(ttl + FINISHED_JOB_TTL);
        let record = |state: JobState, source: &Source| JobRecord {
            state,
            source: source.clone(),
        };
        self.shared
            .put_json(
                NS_JOB,
                &id,
                &record(JobState::Converting(0), &job.source),
                keep,
            )
            .await?;
        self.map.insert(id.clone(), job.clone());
        let (shared, jid, mut rx) = (self.shared.clone(), id.clone(), job.state.subscribe());
        let source = job.source.clone();
        tokio::spawn(async move {
            // The watch keeps the latest state: published in order, intermediate percents
            // may be skipped.
            while rx.changed().await.is_ok() {
                let now = rx.borrow_and_update().clone();
                let done = !matches!(now, JobState::Converting(_));
                if let Err(e) = shared
                    .put_json(NS_JOB, &jid, &record(now, &source), keep)
                    .await
                {
                    tracing::warn!(job = %jid, error = %e, "cannot publish a conversion's state");
                }
                if done {
                    return;
                }
            }
        });
        Ok((id, job))
    }

    /// A job, run here or published by another instance.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<JobView>, GatewayError> {
        if let Some(j) = self.map.get(id) {
            return Ok(Some(JobView::Local(j.clone())));
        }
        Ok(self
            .shared
            .get_json::<JobRecord>(NS_JOB, id)
            .await?
            .map(JobView::Remote))
    }

    /// A job's published record.
    pub(crate) async fn record(&self, id: &str) -> Result<Option<JobRecord>, GatewayError> {
        Ok(self.shared.get_json::<JobRecord>(NS_JOB, id).await?)
    }

    pub(crate) async fn remove(&self, id: &str) {
        self.map.remove(id);
        if let Err(e) = self.shared.delete(NS_JOB, id).await {
            tracing::warn!(job = id, error = %e, "cannot remove a conversion's record; it expires");
        }
    }

    pub(crate) fn sweep(&self) {
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
    let source = match state.face.jobs.get(&id).await? {
        Some(JobView::Local(job)) => job.source.clone(),
        Some(JobView::Remote(r)) => r.source,
        None => return Err(GatewayError::NotFound("conversion")),
    };
    match &source {
        Source::Upload(key) => {
            let content = state
                .content
                .open(key)
                .await
                .map_err(GatewayError::content)?
                .ok_or(GatewayError::NotFound("conversion source"))?;
            Ok((
                [
                    (
                        http::header::CONTENT_TYPE,
                        "application/octet-stream".to_owned(),
                    ),
                    (http::header::CONTENT_LENGTH, content.size.to_string()),
                ],
                Body::from_stream(content.stream),
            )
                .into_response())
        }
        Source::Host { wopi_src, token } => {
            super::docs::stream_get_file(&state, wopi_src, token, None).await
        }
    }
}

/// The URL Docs downloads a job's source from.
pub(crate) fn source_url(state: &ClientCtx, id: &str) -> String {
    format!(
        "{}/docs/convert/{id}",
        state.settings().server.internal_url.base()
    )
}
