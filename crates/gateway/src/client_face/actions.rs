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
    name_max_length: Option<u64>,
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
        name_max_length: s.name_max_length,
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
    let name = cut_name(name, a.name_max_length);
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

/// A requested name (without extension) cut to the host's `FileNameMaxLength`, which WOPI
/// counts in characters without the extension; the extension is added back by the host.
fn cut_name(name: &str, max: Option<u64>) -> &str {
    match max.filter(|m| *m > 0).and_then(|m| usize::try_from(m).ok()) {
        Some(max) => name
            .char_indices()
            .nth(max)
            .map_or(name, |(at, _)| &name[..at]),
        None => name,
    }
}

/// The image types Docs' `insertImage` takes, by extension.
const IMAGE_TYPES: &[&str] = &[
    "bmp", "emf", "gif", "ico", "jpeg", "jpg", "png", "svg", "tif", "tiff", "webp", "wmf",
];

/// The image type of a file name or URL path, by its extension.
fn image_type(name: &str) -> Option<String> {
    let path = name.split(['?', '#']).next().unwrap_or("");
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    IMAGE_TYPES.contains(&ext.as_str()).then_some(ext)
}

/// `POST /hosting/api/{key}/image?t=`: body `{c, url, name}`, the image the host's frame
/// answered `UI_InsertGraphic` with (`Action_InsertGraphic`). Docs downloads the URL from
/// its server, so only a URL under `client_face.allowed_wopi_origins` is signed; the answer
/// is `docEditor.insertImage`'s argument, `{c, images: [{fileType, url}], token}`.
pub(crate) async fn insert_image(
    State(state): State<ClientCtx>,
    user: super::auth::ActionUser,
    body: Body,
) -> Result<Response, GatewayError> {
    let bytes = crate::body::read_body(body, 64 * 1024).await?;
    let req: Value = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::BadRequest(format!("body: {e}")))?;
    let s = state
        .face
        .editors
        .peek(&user.key)
        .await?
        .ok_or(GatewayError::NotFound("document session"))?;
    if !s.edit {
        return Err(GatewayError::Forbidden(
            "images are inserted in edit mode only".into(),
        ));
    }
    let c = field(&req, "c")?;
    if c.len() > 32 || !c.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(GatewayError::BadRequest(
            "c is not a Docs image command".into(),
        ));
    }
    let url = field(&req, "url")?;
    let allowed = &state.settings().client_face.allowed_wopi_origins;
    if let Err(why) = crate::urls::check_under(url, allowed) {
        return Err(GatewayError::Forbidden(format!(
            "the image URL `{}` is refused: {why}; the gateway checked client_face.allowed_wopi_origins = {allowed:?}",
            crate::urls::redact(url)
        )));
    }
    let name = req.get("name").and_then(Value::as_str).unwrap_or("");
    let file_type = image_type(name)
        .or_else(|| image_type(url))
        .ok_or_else(|| GatewayError::BadRequest("not an image type Docs inserts".into()))?;
    let secret = state.settings().docs.jwt_secret.clone().ok_or_else(|| {
        GatewayError::NotConfigured("the client face needs docs.jwt_secret".into())
    })?;
    let mut m = serde_json::Map::new();
    m.insert("c".into(), json!(c));
    m.insert(
        "images".into(),
        json!([{"fileType": file_type, "url": url}]),
    );
    let token = docs_api::jwt::sign(&secret, &m);
    m.insert("token".into(), json!(token));
    Ok(axum::Json(Value::Object(m)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_name_is_cut_to_the_hosts_length_in_characters() {
        assert_eq!(cut_name("Quarterly report", Some(9)), "Quarterly");
        assert_eq!(cut_name("Ünïcødé name", Some(4)), "Ünïc");
        assert_eq!(cut_name("short", Some(9)), "short");
        assert_eq!(cut_name("short", Some(5)), "short");
        assert_eq!(cut_name("any length", None), "any length");
    }

    #[test]
    fn image_types_by_extension() {
        assert_eq!(image_type("Photo.PNG").as_deref(), Some("png"));
        assert_eq!(
            image_type("https://h/files/a.jpeg?access_token=x#y").as_deref(),
            Some("jpeg")
        );
        assert_eq!(image_type("https://h/files/a.docx"), None);
        assert_eq!(image_type("noext"), None);
    }
}
