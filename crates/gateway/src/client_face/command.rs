//! ONLYOFFICE Docs' command service (`POST {docs.url}/coauthoring/CommandService.ashx`,
//! JWT-signed with `docs.jwt_secret` in the body and in the header, as the converter is):
//! commands to the editors of a document key, such as `meta` (a new title for every
//! co-editor after a rename) and `forcesave` (a profile's `forcesave_interval_seconds`).

use crate::client_face::ClientCtx;
use crate::error::{GatewayError, UpstreamKind};
use axum::body::Body;
use docs_api::jwt;
use serde_json::{Value, json};

fn failed(detail: String) -> GatewayError {
    GatewayError::Upstream {
        op: "CommandService",
        kind: UpstreamKind::Protocol,
        detail,
    }
}

/// Sends `params` (`{"c": …, "key": …, …}`) and answers Docs' reply when its `error` is 0.
pub(crate) async fn send(state: &ClientCtx, params: Value) -> Result<Value, GatewayError> {
    let answer = send_any(state, params).await?;
    match error_code(&answer) {
        Some(0) => Ok(answer),
        code => Err(refused(code)),
    }
}

/// The `error` of a command service answer.
pub(crate) fn error_code(answer: &Value) -> Option<i64> {
    answer.get("error").and_then(Value::as_i64)
}

/// The error for an answer whose `error` is not 0.
pub(crate) fn refused(code: Option<i64>) -> GatewayError {
    failed(format!(
        "the command service answered error {}",
        code.map_or_else(|| "(none)".to_owned(), |c| c.to_string())
    ))
}

/// Sends `params` and answers Docs' JSON reply whatever its `error`.
pub(crate) async fn send_any(state: &ClientCtx, params: Value) -> Result<Value, GatewayError> {
    let settings = state.settings();
    let secret = settings.docs.jwt_secret.clone().ok_or_else(|| {
        GatewayError::NotConfigured("the command service needs docs.jwt_secret".into())
    })?;
    let endpoint = format!(
        "{}/coauthoring/CommandService.ashx",
        settings.docs.url.trim_end_matches('/')
    );
    let header = settings.docs.jwt_header.clone();
    drop(settings);
    let mut body = params.clone();
    if let (Value::Object(m), Value::Object(p)) = (&mut body, &params) {
        m.insert("token".into(), json!(jwt::sign(&secret, p)));
    }
    let now = state.now_ms() / 1000;
    let bearer = format!("Bearer {}", jwt::sign_payload(&secret, params, now, 300));
    let req = http::Request::post(&endpoint)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .header(header.as_str(), bearer)
        .body(Body::from(body.to_string()))
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let (_, bytes) = state
        .http
        .send_read("docs_command", req, 64 * 1024)
        .await
        .map_err(|e| failed(e.to_string()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| failed(format!("the command service's answer is not JSON: {e}")))
}
