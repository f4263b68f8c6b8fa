//! The editor page's own calls: Save As (PutRelativeFile) and Rename (RenameFile), on the
//! host, for the user the page's action token names.

use super::host::{self, Call};
use super::saves::fetch_to_spool;
use crate::client_face::ClientCtx;
use crate::error::GatewayError;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

/// What the page's Save As and Rename calls share: the verified user, the request body, and
/// the session's WOPISrc, write token, lock id and extension.
struct Action {
    req: Value,
    wopi_src: String,
    token: String,
    lock: String,
    ext: String,
}

async fn action(
    state: &ClientCtx,
    user: &super::auth::ActionUser,
    body: Body,
) -> Result<Action, GatewayError> {
    let (key, uid) = (user.key.as_str(), &user.uid);
    let bytes = crate::body::read_body(body, 64 * 1024).await?;
    let req: Value = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::BadRequest(format!("body: {e}")))?;
    let s = state
        .face
        .editors
        .peek(key)
        .await?
        .ok_or(GatewayError::NotFound("document session"))?;
    let token = s
        .write_token(std::slice::from_ref(uid), state.now_ms())
        .map(str::to_owned)
        .ok_or_else(|| GatewayError::Unauthorized("no write-capable token".into()))?;
    Ok(Action {
        req,
        wopi_src: s.wopi_src.clone(),
        token,
        lock: s.lock_id.clone().unwrap_or_default(),
        ext: s.ext,
    })
}

fn field<'a>(req: &'a Value, name: &str) -> Result<&'a str, GatewayError> {
    req.get(name)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GatewayError::BadRequest(format!("{name} is missing")))
}

async fn json_answer(resp: http::Response<hyper::body::Incoming>) -> Value {
    let answer = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    serde_json::from_slice(&answer).unwrap_or(json!({}))
}

/// `POST /hosting/api/{key}/saveas?t=`: body `{title, url}` from `onRequestSaveAs` → PutRelativeFile.
pub(crate) async fn save_as(
    State(state): State<ClientCtx>,
    user: super::auth::ActionUser,
    body: Body,
) -> Result<Response, GatewayError> {
    let key = user.key.clone();
    let a = action(&state, &user, body).await?;
    let (title, url) = (field(&a.req, "title")?, field(&a.req, "url")?);
    let path = state
        .face
        .spool
        .join(format!("{key}-saveas-{}.bin", state.now_ms()));
    let written = fetch_to_spool(&state, url, &path)
        .await
        .map_err(GatewayError::BadRequest)?;
    let body = Body::from_stream(crate::spool::read_stream(std::fs::File::open(&path)?));
    let call = Call {
        wopi_src: &a.wopi_src,
        suffix: "",
        token: &a.token,
        op: "PutRelativeFile",
    };
    let headers = [
        (wopi::headers::OVERRIDE, "PUT_RELATIVE".to_owned()),
        (wopi::headers::SUGGESTED_TARGET, wopi::utf7::encode(title)),
        (wopi::headers::SIZE, written.size.to_string()),
        ("content-length", written.size.to_string()),
        (wopi::headers::SESSION_ID, key.clone()),
    ];
    let resp = host::send_ok(&state, &call, http::Method::POST, &headers, body).await;
    let _ = tokio::fs::remove_file(&path).await;
    let v = json_answer(resp?).await;
    Ok(axum::Json(
        json!({"Name": v.get("Name"), "Url": v.get("HostEditUrl").or(v.get("HostViewUrl"))}),
    )
    .into_response())
}

/// `POST /hosting/api/{key}/rename?t=`: body `{title}` from `onRequestRename` → RenameFile.
pub(crate) async fn rename(
    State(state): State<ClientCtx>,
    user: super::auth::ActionUser,
    body: Body,
) -> Result<Response, GatewayError> {
    let a = action(&state, &user, body).await?;
    let title = field(&a.req, "title")?;
    let name = title.strip_suffix(&format!(".{}", a.ext)).unwrap_or(title);
    let call = Call {
        wopi_src: &a.wopi_src,
        suffix: "",
        token: &a.token,
        op: "RenameFile",
    };
    let headers = [
        (wopi::headers::OVERRIDE, "RENAME_FILE".to_owned()),
        (wopi::headers::REQUESTED_NAME, wopi::utf7::encode(name)),
        (wopi::headers::LOCK, a.lock.clone()),
        (wopi::headers::SESSION_ID, user.key.clone()),
        ("content-length", "0".to_owned()),
    ];
    let resp = host::send_ok(&state, &call, http::Method::POST, &headers, Body::empty()).await?;
    let v = json_answer(resp).await;
    let renamed = v
        .get("Name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(name)
        .to_owned();
    // Every co-editor's title changes through Docs' command service (`meta`).
    let title = format!("{renamed}.{}", a.ext);
    let meta = json!({"c": "meta", "key": user.key, "meta": {"title": title}});
    if let Err(e) = super::command::send(&state, meta).await {
        tracing::warn!(error = %e, "renamed on the host, but the editors' title was not updated");
    }
    Ok(axum::Json(json!({"Name": renamed})).into_response())
}
