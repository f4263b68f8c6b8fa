//! convert-to (Collabora-compatible): `POST /cool/convert-to/{format}` with a multipart
//! `data` field answers the converted bytes; its own concurrency limit keeps conversions from
//! starving editing traffic.

use super::convert::{ConvertFailure, Request, Source, convert, source_url};
use crate::client_face::ClientCtx;
use crate::error::GatewayError;
use crate::spool;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use std::path::PathBuf;

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
    let multipart = multipart.map_err(|e| {
        GatewayError::BadRequest(format!("convert-to needs a multipart/form-data body: {e}"))
    })?;
    // The upload is read before a conversion slot is taken: slow uploads hold no slot.
    let (name, upload, size) = read_upload(&state, multipart).await?;
    let cleanup = StoredUpload {
        state: state.clone(),
        key: upload.clone(),
    };
    let Ok(_permit) = state.face.convert_to_slots.clone().try_acquire_owned() else {
        state.metrics.load_shed.inc();
        return Err(GatewayError::Overloaded);
    };
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
    let (id, _job) = state
        .face
        .jobs
        .add(
            Source::Upload(upload.clone()),
            state.settings().client_face.conversion_timeout,
        )
        .await?;
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
    state.face.jobs.remove(&id).await;
    let file_url = converted.map_err(failure_error)?;
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

/// Stores the form's `data` field in the content store (Docs may fetch it from any
/// instance); answers the file name, the content-store key and the size.
async fn read_upload(
    state: &ClientCtx,
    mut multipart: axum::extract::Multipart,
) -> Result<(String, String, u64), GatewayError> {
    loop {
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
        let key = format!("convert/{id}.bin");
        let limit = state.settings().server.body_limits[crate::access::RouteGroup::Hosting.index()];
        let stream = futures_util::StreamExt::map(field, |c| c.map_err(|e| e.to_string()));
        let written = state
            .content
            .write(&key, stream, limit)
            .await
            .map_err(|e| match e {
                spool::StreamError::TooLarge => GatewayError::PayloadTooLarge,
                spool::StreamError::Source(s) if s.contains("length limit") => {
                    GatewayError::PayloadTooLarge
                }
                spool::StreamError::Source(s) => {
                    GatewayError::BadRequest(format!("upload interrupted: {s}"))
                }
                spool::StreamError::Io(io) => GatewayError::content(io),
            })?;
        return Ok((name, key, written.size));
    }
}

/// What a caller of convert-to sees of a failed conversion: 504 for a timeout, 400 for a
/// file Docs cannot convert, 502 otherwise.
fn failure_error(f: ConvertFailure) -> GatewayError {
    let op = "convert-to";
    match f {
        ConvertFailure::Timeout | ConvertFailure::Docs(-2) => GatewayError::Upstream {
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
}

fn multipart_error(e: &axum::extract::multipart::MultipartError) -> GatewayError {
    let text = e.body_text();
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE || text.contains("length limit") {
        GatewayError::PayloadTooLarge
    } else if text.contains("request body stalled") {
        GatewayError::Refused(h1::Reject::new(408, "body-idle-timeout"))
    } else {
        GatewayError::BadRequest(format!("convert-to form: {text}"))
    }
}

/// An upload in the content store, removed when dropped.
struct StoredUpload {
    state: ClientCtx,
    key: String,
}

impl Drop for StoredUpload {
    fn drop(&mut self) {
        let (state, key) = (self.state.clone(), std::mem::take(&mut self.key));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = state.content.delete(&key).await {
                    tracing::warn!(key, error = %e, "cannot remove a convert-to upload from the content store");
                }
            });
        }
    }
}

/// A spool file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
