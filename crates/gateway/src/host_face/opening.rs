//! Opening a file: the integrator hands over the Docs-API editor config it would give
//! ONLYOFFICE Docs; the gateway answers with a WOPI access token, a stable file id and the
//! action URLs of every trusted WOPI client.

use super::token::{self, AccessClaims};
use crate::error::GatewayError;
use crate::host_face::HostCtx;
use crate::settings::Integrator;
use crate::translate::file_info::HostUrls;
use crate::translate::permissions;
use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use docs_api::jwt;
use http::StatusCode;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};

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
    /// Why the session was opened for viewing only (a restriction the clients cannot state).
    pub viewing: Option<String>,
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

/// Verifies an integrator's config token and opens (or joins) the file's session;
/// `host_page`: for the gateway's own host page (`/open`), which frames the WOPI client and
/// relays its messages.
pub(crate) async fn open(
    state: &HostCtx,
    integrator: &Integrator,
    token: &str,
    host_page: bool,
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
    let reference_data = config
        .get("document")
        .and_then(|d| d.get("referenceData"))
        .filter(|_| integrator.actions_url.is_some())
        .cloned();
    let docs_api_config = crate::translate::opening::docs_api_config(&config);
    let f = crate::translate::opening::facts(config)?;
    check_origin(integrator, "document.url", &f.url)?;
    if let Some(cb) = &f.callback {
        check_origin(integrator, "editorConfig.callbackUrl", cb)?;
    }
    let caps = client_caps(state, &f.file_type);
    let (grant, viewing) = match permissions::host_grant(&f.rights, &caps, integrator.unenforceable)
    {
        permissions::Decision::Open { grant, viewing } => (grant, viewing),
        permissions::Decision::Refuse(why) => {
            tracing::warn!(integrator = %integrator.name, reason = %why, stage = "session-refused", "a restriction of the config cannot be enforced");
            return Err(GatewayError::Forbidden(format!(
                "the editor config's permissions cannot be enforced: {why}; the gateway never opens a file with more rights than the config gives (host_face.integrator `{}` unenforceable = {})",
                integrator.name,
                match integrator.unenforceable {
                    crate::settings::Unenforceable::View => "\"view\"",
                    crate::settings::Unenforceable::Refuse => "\"refuse\"",
                }
            )));
        }
    };
    if let Some(why) = &viewing {
        tracing::info!(integrator = %integrator.name, reason = %why, stage = "session-view-only", "opened for viewing: a restriction of the config cannot be stated to the WOPI client");
    }
    let anonymous_id = format!("anonymous-{}", crate::random::hex::<8>()?);
    let exp = state.now_ms() / 1000 + state.settings().host_face.access_token_ttl.as_secs();
    let claims = AccessClaims {
        hp: host_page,
        ..crate::translate::opening::claims(&f, grant, &integrator.name, &anonymous_id, exp)
    };
    let fid = claims.fid.clone();
    let opened = issue(state, claims, viewing).await?;
    if let Some(cfg) = docs_api_config {
        // The host page hands it to ONLYOFFICE clients (`open_page`).
        state
            .shared
            .put(
                NS_DOCS_API_CONFIG,
                &fid,
                cfg.to_string().into_bytes(),
                crate::cluster::Keep::For(state.settings().host_face.access_token_ttl),
            )
            .await?;
    }
    if let Some(r) = reference_data {
        // Save As tells the integrator which file it copies (host_face/actions.rs).
        state
            .shared
            .put(
                super::actions::NS_REFERENCE_DATA,
                &fid,
                r.to_string().into_bytes(),
                crate::cluster::Keep::Durable,
            )
            .await?;
    }
    Ok(opened)
}

/// The part of an integrator's editor config the host page passes to ONLYOFFICE clients,
/// per file (`translate::opening::docs_api_config`).
pub(crate) const NS_DOCS_API_CONFIG: &str = "docs-api-config";

/// Whether the trusted WOPI client whose discovery is at `url` is ONLYOFFICE Docs.
fn client_is_onlyoffice(state: &HostCtx, url: Option<&str>) -> bool {
    let Some(url) = url else {
        return false;
    };
    state
        .face
        .discovery
        .clients()
        .iter()
        .filter(|c| c.url == url)
        .any(|c| {
            permissions::client_kind(
                c.discovery
                    .net_zones
                    .iter()
                    .flat_map(|z| z.apps.iter())
                    .flat_map(|a| a.actions.iter())
                    .map(|a| a.urlsrc.as_str()),
            ) == permissions::ClientKind::OnlyOffice
        })
}

/// Registers the session of `claims` and answers with its access token and action URLs.
async fn issue(
    state: &HostCtx,
    claims: AccessClaims,
    viewing: Option<String>,
) -> Result<Opened, GatewayError> {
    let (fid, anon) = (claims.fid.clone(), claims.anon);
    register(state, &claims).await?;
    let access_token = token::sign(&state.face.token_secret, &claims);
    // WOPI clients call WOPISrc from their servers: the internal base.
    let wopi_src = format!(
        "{}/wopi/files/{fid}",
        state.settings().server.internal_url.base()
    );
    let actions = actions_for(state, &claims, &wopi_src);
    tracing::info!(integrator = %claims.int, file_id = %fid, write = claims.w, anonymous = anon, actions = actions.len(), stage = "session-opened", "editing session opened");
    Ok(Opened {
        claims,
        access_token,
        wopi_src,
        actions,
        viewing,
    })
}

/// Opens the session a CheckFileInfo `HostEditUrl` / `HostViewUrl` names: the claims of
/// the page token as they are (rights and expiry were the access token's, or fewer), for the
/// gateway's host page.
async fn reopen(state: &HostCtx, page_token: &str) -> Result<Opened, GatewayError> {
    let claims = state
        .metrics
        .count_jwt(
            "host_page",
            token::verify(&state.face.hostpage_secret, page_token),
        )
        .map_err(GatewayError::token(crate::error::Credential::HostPageToken))?;
    if !state
        .settings()
        .host_face
        .integrators
        .iter()
        .any(|i| i.name == claims.int)
    {
        return Err(GatewayError::Forbidden(format!(
            "integrator `{}` is no longer configured",
            claims.int
        )));
    }
    issue(state, AccessClaims { hp: true, ..claims }, None).await
}

/// The host pages of CheckFileInfo for the session of `c`: the gateway's `/open` for the same
/// session in edit and in view mode, with a token of their own that expires with the access
/// token. Only for a session that may change the document (a viewer's config allows no
/// other mode); the edit page has exactly `c`'s rights, the view page fewer. With them, the
/// origin of the gateway's public URL, where `/open` is served (`PostMessageOrigin`).
pub(crate) fn host_urls(state: &HostCtx, c: &AccessClaims) -> HostUrls {
    let grant = c.grant();
    let settings = state.settings();
    let base = settings.server.public_url.base();
    let origin = Some(settings.server.public_url.origin());
    if !grant.saves() {
        return HostUrls {
            origin,
            ..HostUrls::default()
        };
    }
    let page = |claims: &AccessClaims| {
        format!(
            "{base}/open?session={}",
            state
                .face
                .host_page_tokens
                .sign(&state.face.hostpage_secret, claims)
        )
    };
    let view = AccessClaims {
        w: false,
        g: Some(grant.for_viewing()),
        ..c.clone()
    };
    HostUrls {
        edit: Some(page(c)),
        view: Some(page(&view)),
        origin,
    }
}

/// Creates the file's state, or moves an idle one to the integrator's new version.
async fn register(state: &HostCtx, c: &AccessClaims) -> Result<(), GatewayError> {
    let entry = super::editing::entry_for(state, c);
    let mut e = entry.lock().await?;
    let idle = e.meta.editors.is_empty() && !e.meta.session_modified && !e.meta.undelivered;
    let mut moved_from = None;
    if e.meta.doc_key != c.key && idle && !state.face.deliveries.has_pending(&c.fid).await? {
        moved_from = Some(e.meta.doc_key.clone());
        // The integrator stored a new version (new key): serve it from now on (the old
        // content goes with the janitor).
        e.meta.doc_url.clone_from(&c.url);
        e.meta.doc_key.clone_from(&c.key);
        e.meta.version = format!("k.{}", c.key);
        e.meta.content = None;
        e.meta.staged = false;
    }
    e.meta.title.clone_from(&c.title);
    if let Some(owner) = &c.own {
        e.meta.owner_id.clone_from(owner);
    }
    if c.cb.is_some() {
        e.meta.callback_url.clone_from(&c.cb);
    }
    e.persist().await?;
    // The command service finds the file by its key (host_face/command.rs).
    state
        .face
        .files
        .index_key(&e.meta, moved_from.as_deref())
        .await?;
    Ok(())
}

/// What each trusted WOPI client offering `ext` can be told (see
/// [`permissions::host_grant`]).
fn client_caps(state: &HostCtx, ext: &str) -> Vec<permissions::ClientCaps> {
    let mut out = Vec::new();
    for client in state.face.discovery.clients().iter() {
        let d = &client.discovery;
        let actions: Vec<_> = d.actions_for_ext(ext).map(|(_, a)| a).collect();
        if actions.is_empty() {
            continue;
        }
        let every = d
            .net_zones
            .iter()
            .flat_map(|z| z.apps.iter())
            .flat_map(|a| a.actions.iter())
            .map(|a| a.urlsrc.as_str());
        out.push(permissions::ClientCaps {
            kind: permissions::client_kind(every),
            disable_chat: actions.iter().all(|a| a.urlsrc.contains("=DISABLE_CHAT")),
            form_submit: actions.iter().any(|a| a.name == "formsubmit"),
        });
    }
    out
}

/// The action URLs of every trusted WOPI client for the session of `c`, with the
/// placeholders the config fills: `DISABLE_CHAT` (the grant), `UI_LLCC` / `DC_LLCC` (lang,
/// region), `THEME_ID` (`customization.uiTheme`).
fn actions_for(state: &HostCtx, c: &AccessClaims, wopi_src: &str) -> Vec<Value> {
    let (ext, grant) = (c.ft.as_str(), c.grant());
    let (lang, region) = (c.ui.as_deref(), c.dc.as_deref());
    let src = utf8_percent_encode(wopi_src, NON_ALPHANUMERIC).to_string();
    let mut out = Vec::new();
    for client in state.face.discovery.clients().iter() {
        for (app, action) in client.discovery.actions_for_ext(ext) {
            let url = wopi::discovery::resolve_urlsrc(&action.urlsrc, |p| match p {
                "WOPI_SOURCE" => Some(src.clone()),
                "DISABLE_CHAT" => (!grant.chat).then(|| "1".to_owned()),
                "UI_LLCC" => lang.map(|l| utf8_percent_encode(l, NON_ALPHANUMERIC).to_string()),
                "DC_LLCC" => region.map(|l| utf8_percent_encode(l, NON_ALPHANUMERIC).to_string()),
                "THEME_ID" => c.thm.clone(),
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
    let r = open(&state, &integrator, token, false).await;
    record(&state, &r);
    let o = r?;
    let mut body = json!({
        "file_id": o.claims.fid,
        "wopi_src": o.wopi_src,
        "access_token": o.access_token,
        "access_token_ttl": o.claims.exp * 1000,
        "actions": o.actions,
    });
    if let Some(why) = &o.viewing {
        body["view_only"] = json!(why);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `?integrator=&config=&action=`, or `?session=&action=`
#[derive(Debug, Deserialize)]
pub(crate) struct OpenQuery {
    integrator: Option<String>,
    config: Option<String>,
    action: Option<String>,
    session: Option<String>,
}

/// `GET /open?integrator=NAME&config=JWT&action=edit`: the WOPI host page. With
/// `?session=TOKEN` instead (a CheckFileInfo `HostEditUrl` / `HostViewUrl`), the page of
/// that session.
pub(crate) async fn open_page(
    State(state): State<HostCtx>,
    Query(q): Query<OpenQuery>,
) -> Result<Response, GatewayError> {
    let r = match q.session.as_deref().filter(|s| !s.is_empty()) {
        Some(page_token) => reopen(&state, page_token).await,
        None => {
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
            open(&state, &integrator, token, true).await
        }
    };
    record(&state, &r);
    let o = r?;
    let grant = o.claims.grant();
    let wanted = q.action.unwrap_or_else(|| {
        if grant.form_submit {
            "formsubmit".into()
        } else if grant.saves() {
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
    // ONLYOFFICE Docs (8.1+) reads the rest of a Docs-API editor config from the host
    // page's `docs_api_config` field; other clients get no such field.
    let docs_api_config = if client_is_onlyoffice(&state, action["client"].as_str()) {
        state
            .shared
            .get(NS_DOCS_API_CONFIG, &o.claims.fid)
            .await?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    } else {
        None
    };
    let docs_api_input = docs_api_config.map_or_else(String::new, |c| {
        format!(
            "<input name=\"docs_api_config\" value=\"{}\" type=\"hidden\">\n",
            crate::html::escape(&c)
        )
    });
    // The integrator's origins, to relay the client's messages to (`/open?session=` names
    // the integrator in the page token only).
    let settings = state.settings();
    let allowed: &[String] = settings
        .host_face
        .integrators
        .iter()
        .find(|i| i.name == o.claims.int)
        .map_or(&[], |i| &i.allowed_origins);
    let relay = crate::translate::host_page::relay_config(url, allowed, o.claims.close_url());
    let page = format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>html,body{{margin:0;height:100%;overflow:hidden}}iframe{{border:0;width:100%;height:100%}}</style></head>
<body>
<form id="office_form" name="office_form" target="office_frame" action="{action}" method="post">
<input name="access_token" value="{token}" type="hidden">
<input name="access_token_ttl" value="{ttl}" type="hidden">
{docs_api_input}</form>
<iframe id="office_frame" name="office_frame" title="Office" allowfullscreen="true"
 sandbox="allow-scripts allow-same-origin allow-forms allow-popups allow-top-navigation allow-popups-to-escape-sandbox allow-downloads allow-modals"></iframe>
<script type="application/json" id="relay_config">{relay}</script>
<script>{RELAY_SCRIPT}</script>
<script>document.getElementById('office_form').submit();</script>
</body></html>
"#,
        relay = crate::html::script_json(&relay),
        title = crate::html::escape(&o.claims.title),
        action = crate::html::escape(url),
        token = crate::html::escape(&o.access_token),
        ttl = o.claims.exp * 1000,
    );
    Ok(([(http::header::CACHE_CONTROL, "no-store")], Html(page)).into_response())
}

/// The host page's listener for the WOPI client's messages (WOPI "PostMessage"): only from
/// the office frame and from the action URL's origin (`client` of `relay_config`), as JSON
/// strings or objects, anything else ignored. The first `App_LoadingStatus` is answered with
/// `Host_PostmessageReady` and becomes the Docs API's `onAppReady`, one with `Status:
/// "Document_Loaded"` `onDocumentReady`; `UI_Close` becomes `onRequestClose`. Events go to the
/// page framing this one as a JSON string `{"event": …}` (as a Docs editor frame posts them),
/// once per origin of the integrator (`parents`): the browser delivers it only where the
/// framing page's origin is that one. Not framed, `UI_Close` goes to `close` (the config's
/// `goback.url`, replacing the editor in the history: going back would open it again), else
/// back in the history; never to a URL a message names.
const RELAY_SCRIPT: &str = r"(function () {
var c = JSON.parse(document.getElementById('relay_config').textContent);
var frame = document.getElementById('office_frame');
var framed = window.parent !== window;
var ready = false;
function relay(event) {
  if (!framed) return;
  var m = JSON.stringify({event: event});
  for (var i = 0; i < c.parents.length; i++) window.parent.postMessage(m, c.parents[i]);
}
window.addEventListener('message', function (e) {
  if (e.source !== frame.contentWindow || e.origin !== c.client || !c.client) return;
  var m = e.data;
  if (typeof m === 'string') { try { m = JSON.parse(m); } catch (x) { return; } }
  if (!m || typeof m !== 'object') return;
  var v = m.Values && typeof m.Values === 'object' ? m.Values : {};
  if (m.MessageId === 'App_LoadingStatus') {
    if (!ready) {
      ready = true;
      frame.contentWindow.postMessage(JSON.stringify({MessageId: 'Host_PostmessageReady', SendTime: Date.now(), Values: {}}), c.client);
      relay('onAppReady');
    }
    if (v.Status === 'Document_Loaded') relay('onDocumentReady');
  } else if (m.MessageId === 'UI_Close') {
    if (framed) relay('onRequestClose');
    else if (c.close) window.location.replace(c.close);
    else window.history.back();
  }
});
})();";

/// `GET /api/v1/download/{id}?token=`: the exact content of a delivery (status 2/6 `url`).
pub(crate) async fn download(
    State(state): State<HostCtx>,
    super::auth::DownloadAuth(key): super::auth::DownloadAuth,
) -> Result<Response, GatewayError> {
    let content = state
        .content
        .open(&key)
        .await
        .map_err(GatewayError::content)?
        .ok_or(GatewayError::NotFound("download"))?;
    let len = content.size;
    state.metrics.bytes.with_label_values(&["out"]).inc_by(len);
    let body = Body::from_stream(content.stream);
    Ok((
        [
            (http::header::CONTENT_TYPE, "application/octet-stream"),
            (http::header::CONTENT_LENGTH, &len.to_string()),
        ],
        body,
    )
        .into_response())
}
