//! Opening a file: the integrator hands over the Docs-API editor config it would give
//! ONLYOFFICE Docs; the gateway answers with a WOPI access token, a stable file id and the
//! action URLs of every trusted WOPI client.

use super::token::{self, AccessClaims};
use crate::error::GatewayError;
use crate::host_face::HostCtx;
use crate::settings::Integrator;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use docs_api::jwt;
use http::StatusCode;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// `?integrator=NAME`
#[derive(Debug, Deserialize)]
pub(crate) struct IntegratorQuery {
    integrator: Option<String>,
}

/// What an opened session gives back.
#[derive(Debug)]
pub(crate) struct Opened {
    /// Token claims.
    pub claims: AccessClaims,
    /// The token.
    pub access_token: String,
    /// `{public}/wopi/files/{id}`
    pub wopi_src: String,
    /// Action URLs.
    pub actions: Vec<Value>,
}

fn integrator(state: &HostCtx, name: Option<&str>) -> Result<Integrator, GatewayError> {
    let name = name.ok_or_else(|| {
        GatewayError::BadRequest("query parameter `integrator` is required".into())
    })?;
    state
        .settings()
        .host_face
        .integrators
        .iter()
        .find(|i| i.name == name)
        .cloned()
        .ok_or_else(|| GatewayError::BadRequest(format!("unknown integrator `{name}`")))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Refuses a config URL outside the integrator's allowed origins (403 naming what to change).
fn check_origin(integrator: &Integrator, field: &str, url: &str) -> Result<(), GatewayError> {
    crate::urls::check_under(url, &integrator.allowed_origins).map_err(|why| {
        GatewayError::Forbidden(format!(
            "{field} `{}` is refused: {why}; the origins allowed are host_face.integrator `{}` allowed_origins = {:?}",
            crate::urls::redact(&crate::urls::origin_of(url)),
            integrator.name,
            integrator.allowed_origins
        ))
    })
}

/// A stable, URL-safe file id for (integrator, document identity).
pub(crate) fn file_id(integrator: &str, identity: &str) -> String {
    use base64::Engine as _;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(integrator.as_bytes());
    ctx.update(&[0]);
    ctx.update(identity.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&ctx.finish().as_ref()[..18])
}

/// Verifies an integrator's config token and opens (or joins) the file's session.
pub(crate) async fn open(
    state: &HostCtx,
    integrator: &Integrator,
    token: &str,
) -> Result<Opened, GatewayError> {
    let config = state
        .metrics
        .count_jwt(
            "integrator_config",
            jwt::verify(&integrator.jwt_secret, token),
        )
        .map_err(GatewayError::token(
            crate::error::Credential::IntegratorConfig,
        ))?;
    let config = Value::Object(config);
    if config.get("payload").is_some() || config.get("url").is_some() {
        return Err(GatewayError::BadRequest(
            "token payload is not an editor config (it has a top-level `payload` or `url`)".into(),
        ));
    }
    let key = str_at(&config, &["document", "key"])
        .filter(|k| !k.is_empty())
        .ok_or_else(|| GatewayError::BadRequest("editor config lacks document.key".into()))?;
    let url = str_at(&config, &["document", "url"])
        .filter(|u| !u.is_empty())
        .ok_or_else(|| GatewayError::BadRequest("editor config lacks document.url".into()))?;
    check_origin(integrator, "document.url", url)?;
    let callback = str_at(&config, &["editorConfig", "callbackUrl"]).filter(|c| !c.is_empty());
    if let Some(cb) = callback {
        check_origin(integrator, "editorConfig.callbackUrl", cb)?;
    }
    let title_in = str_at(&config, &["document", "title"]).unwrap_or("");
    let ft = str_at(&config, &["document", "fileType"])
        .map(str::to_ascii_lowercase)
        .or_else(|| {
            title_in
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_lowercase())
        })
        .filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            GatewayError::BadRequest(
                "editor config lacks document.fileType (and document.title has no extension)"
                    .into(),
            )
        })?;
    let title = if title_in.is_empty() {
        format!("Unnamed.{ft}")
    } else {
        title_in.to_owned()
    };
    let user = config.pointer("/editorConfig/user");
    let uid = user.and_then(|u| u.get("id")).and_then(|id| match id {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let anon = uid.is_none();
    let uid = match uid {
        Some(u) => u,
        None => format!("anonymous-{}", crate::random::hex::<8>()?),
    };
    let uname = user
        .and_then(|u| u.get("name"))
        .and_then(Value::as_str)
        .unwrap_or(if anon { "Anonymous" } else { "" })
        .to_owned();
    let can_edit = config
        .pointer("/document/permissions/edit")
        .and_then(Value::as_bool)
        != Some(false);
    let mode_view = str_at(&config, &["editorConfig", "mode"]) == Some("view");
    let identity = str_at(&config, &["document", "referenceData", "fileKey"])
        .filter(|k| !k.is_empty())
        .unwrap_or(key);
    let fid = file_id(&integrator.name, identity);
    let exp = state.now_ms() / 1000 + state.settings().host_face.access_token_ttl.as_secs();
    let claims = AccessClaims {
        int: integrator.name.clone(),
        fid: fid.clone(),
        uid: uid.clone(),
        un: uname,
        anon,
        w: can_edit && !mode_view,
        url: url.to_owned(),
        key: key.to_owned(),
        title,
        ft: ft.clone(),
        cb: callback.map(str::to_owned),
        exp,
    };
    register(state, &claims).await?;
    let access_token = token::sign(&state.face.token_secret, &claims);
    // WOPI clients call WOPISrc from their servers: the internal base.
    let wopi_src = format!(
        "{}/wopi/files/{fid}",
        state.settings().server.internal_url.base()
    );
    let lang = str_at(&config, &["editorConfig", "lang"]).map(str::to_owned);
    let region = str_at(&config, &["editorConfig", "region"])
        .map(str::to_owned)
        .or_else(|| lang.clone());
    let actions = actions_for(state, &ft, &wopi_src, lang.as_deref(), region.as_deref());
    tracing::info!(integrator = %integrator.name, file_id = %fid, write = claims.w, anonymous = anon, actions = actions.len(), stage = "session-opened", "editing session opened");
    Ok(Opened {
        claims,
        access_token,
        wopi_src,
        actions,
    })
}

/// Creates the file's state, or moves an idle one to the integrator's new version.
async fn register(state: &HostCtx, c: &AccessClaims) -> Result<(), GatewayError> {
    let entry = super::entry_for(state, c).await?;
    let mut e = entry.lock().await;
    let idle = e.meta.editors.is_empty() && !e.meta.session_modified && !e.meta.undelivered;
    if e.meta.doc_key != c.key && idle && !state.face.deliveries.has_pending(&c.fid).await {
        // The integrator stored a new version (new key): serve it from now on.
        if let Some(old) = e.content_path() {
            let _ = tokio::fs::remove_file(old).await;
        }
        e.meta.doc_url.clone_from(&c.url);
        e.meta.doc_key.clone_from(&c.key);
        e.meta.version = format!("k.{}", c.key);
        e.meta.content = None;
        e.meta.staged = false;
    }
    e.meta.title.clone_from(&c.title);
    if c.cb.is_some() {
        e.meta.callback_url.clone_from(&c.cb);
    }
    e.persist().await?;
    Ok(())
}

fn actions_for(
    state: &HostCtx,
    ext: &str,
    wopi_src: &str,
    lang: Option<&str>,
    region: Option<&str>,
) -> Vec<Value> {
    let src = utf8_percent_encode(wopi_src, NON_ALPHANUMERIC).to_string();
    let mut out = Vec::new();
    for client in state.face.discovery.clients().iter() {
        for (app, action) in client.discovery.actions_for_ext(ext) {
            let url = wopi::discovery::resolve_urlsrc(&action.urlsrc, |p| match p {
                "WOPI_SOURCE" => Some(src.clone()),
                "UI_LLCC" => lang.map(|l| utf8_percent_encode(l, NON_ALPHANUMERIC).to_string()),
                "DC_LLCC" => region.map(|l| utf8_percent_encode(l, NON_ALPHANUMERIC).to_string()),
                _ => None,
            });
            out.push(json!({
                "client": client.url,
                "app": app.name,
                "name": action.name,
                "ext": action.ext,
                "default": action.default,
                "requires": action.requires,
                "url": url,
            }));
        }
    }
    out
}

fn record(state: &HostCtx, r: &Result<Opened, GatewayError>) {
    let label = match r {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    state.metrics.sessions.with_label_values(&[label]).inc();
}

/// `POST /api/v1/sessions?integrator=NAME` with the signed editor config (or `{"token": …}`).
pub(crate) async fn open_session(
    State(state): State<HostCtx>,
    Query(q): Query<IntegratorQuery>,
    body: Body,
) -> Result<Response, GatewayError> {
    let integrator = integrator(&state, q.integrator.as_deref())?;
    let bytes = crate::body::read_body(body, 1024 * 1024).await?;
    let parsed: Value = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::BadRequest(format!("body is not JSON: {e}")))?;
    let token = parsed
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            GatewayError::Unauthorized("editor config is not signed: `token` is missing".into())
        })?;
    let r = open(&state, &integrator, token).await;
    record(&state, &r);
    let o = r?;
    let body = json!({
        "file_id": o.claims.fid,
        "wopi_src": o.wopi_src,
        "access_token": o.access_token,
        "access_token_ttl": o.claims.exp * 1000,
        "actions": o.actions,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `?integrator=&config=&action=`
#[derive(Debug, Deserialize)]
pub(crate) struct OpenQuery {
    integrator: Option<String>,
    config: Option<String>,
    action: Option<String>,
}

/// `GET /open?integrator=NAME&config=JWT&action=edit`: the WOPI host page.
pub(crate) async fn open_page(
    State(state): State<HostCtx>,
    Query(q): Query<OpenQuery>,
) -> Result<Response, GatewayError> {
    let integrator = integrator(&state, q.integrator.as_deref())?;
    let token = q
        .config
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            GatewayError::Unauthorized(
                "query parameter `config` (the signed editor config) is required".into(),
            )
        })?;
    let r = open(&state, &integrator, token).await;
    record(&state, &r);
    let o = r?;
    let wanted = q.action.unwrap_or_else(|| {
        if o.claims.w {
            "edit".into()
        } else {
            "view".into()
        }
    });
    let action = o
        .actions
        .iter()
        .find(|a| a["name"] == wanted.as_str())
        .ok_or(GatewayError::NotFound(
            "WOPI client action for this file type",
        ))?;
    let url = action["url"].as_str().unwrap_or_default();
    let page = format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>html,body{{margin:0;height:100%;overflow:hidden}}iframe{{border:0;width:100%;height:100%}}</style></head>
<body>
<form id="office_form" name="office_form" target="office_frame" action="{action}" method="post">
<input name="access_token" value="{token}" type="hidden">
<input name="access_token_ttl" value="{ttl}" type="hidden">
</form>
<iframe id="office_frame" name="office_frame" title="Office" allowfullscreen="true"
 sandbox="allow-scripts allow-same-origin allow-forms allow-popups allow-top-navigation allow-popups-to-escape-sandbox allow-downloads allow-modals"></iframe>
<script>document.getElementById('office_form').submit();</script>
</body></html>
"#,
        title = crate::html::escape(&o.claims.title),
        action = crate::html::escape(url),
        token = crate::html::escape(&o.access_token),
        ttl = o.claims.exp * 1000,
    );
    Ok(([(http::header::CACHE_CONTROL, "no-store")], Html(page)).into_response())
}

/// `?token=`
#[derive(Debug, Deserialize)]
pub(crate) struct DownloadQuery {
    token: Option<String>,
}

/// `GET /api/v1/download/{id}?token=`: the exact content of a delivery (status 2/6 `url`).
pub(crate) async fn download(
    State(state): State<HostCtx>,
    Path(id): Path<String>,
    Query(q): Query<DownloadQuery>,
) -> Result<Response, GatewayError> {
    let token = q
        .token
        .ok_or_else(|| GatewayError::Unauthorized("download token missing".into()))?;
    let claims: Map<String, Value> = state
        .metrics
        .count_jwt("download", jwt::verify(&state.face.token_secret, &token))
        .map_err(GatewayError::token(crate::error::Credential::DownloadToken))?;
    if claims.get("did").and_then(Value::as_str) != Some(id.as_str()) || claims.get("exp").is_none()
    {
        return Err(GatewayError::Forbidden(
            "download token is for another file".into(),
        ));
    }
    let path = state.face.deliveries.content_path(&id);
    let file = std::fs::File::open(&path).map_err(|_| GatewayError::NotFound("download"))?;
    let len = file.metadata()?.len();
    state.metrics.bytes.with_label_values(&["out"]).inc_by(len);
    let body = Body::from_stream(crate::spool::read_stream(file));
    Ok((
        [
            (http::header::CONTENT_TYPE, "application/octet-stream"),
            (http::header::CONTENT_LENGTH, &len.to_string()),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_stable_and_url_safe() {
        let a = file_id("nc", "key-1");
        assert_eq!(a, file_id("nc", "key-1"));
        assert_ne!(a, file_id("nc", "key-2"));
        assert_ne!(a, file_id("other", "key-1"));
        assert_eq!(a.len(), 24);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}
