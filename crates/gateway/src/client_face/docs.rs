//! What ONLYOFFICE Docs downloads: `document.url` (→ GetFile on the host, streamed), and the
//! verification of Docs' request JWTs (`docs.jwt_secret`) that its callbacks share
//! ([`super::callback`]).

use super::host::{self, Call};
use crate::client_face::ClientCtx;
use crate::error::GatewayError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use docs_api::jwt;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Map, Value};

pub(crate) fn secret(state: &ClientCtx) -> Result<docs_api::Secret, GatewayError> {
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
