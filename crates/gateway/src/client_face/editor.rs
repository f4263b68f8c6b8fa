//! The action endpoint: a WOPI host's browser POSTs `access_token` here; the gateway checks
//! WOPISrc, calls CheckFileInfo, locks (edit), builds and signs a Docs API config and renders
//! the editor page (as ONLYOFFICE Docs' own WOPI mode does: its `wopi` handler builds the editor config from
//! CheckFileInfo; see docs/integration-client-face.md for the field-by-field mapping).

use super::editors::{Editor, UserAuth};
use super::host;
use crate::client_face::ClientCtx;
use crate::error::GatewayError;
use crate::settings::Profile;
use crate::translate::editor_config::{ActionQuery, FileFacts};
use crate::translate::permissions::{self, HostRights, Mode};
use crate::urls;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use docs_api::jwt;
use http::HeaderMap;
use http_body_util::BodyExt as _;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use wopi::CheckFileInfo;

/// Decodes `application/x-www-form-urlencoded` (also used for query strings).
pub(crate) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// A Docs key for (WOPISrc, version): `[0-9A-Za-z_-]`, 41 characters, so a new version
/// never reuses an old key and file ids with any characters are safe.
pub(crate) fn document_key(prefix: char, wopi_src: &str, version: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(wopi_src.as_bytes());
    ctx.update(&[0]);
    ctx.update(version.as_bytes());
    let d = ctx.finish();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d.as_ref()[..30])
    )
}

/// CheckFileInfo's facts about the file and the user, as the config translation takes them.
fn file_facts(info: &CheckFileInfo) -> FileFacts {
    FileFacts {
        base_file_name: info.base_file_name.clone(),
        extension: info.extension(),
        breadcrumb_doc_name: info.breadcrumb_doc_name.clone(),
        breadcrumb_folder_name: info.breadcrumb_folder_name.clone(),
        breadcrumb_folder_url: info.breadcrumb_folder_url.clone(),
        breadcrumb_brand_name: info.breadcrumb_brand_name.clone(),
        breadcrumb_brand_url: info.breadcrumb_brand_url.clone(),
        user_id: info.user_id.clone(),
        user_friendly_name: info.user_friendly_name.clone(),
        is_anonymous_user: CheckFileInfo::flag(info.is_anonymous_user),
        close_post_message: CheckFileInfo::flag(info.close_post_message),
        close_url: info.close_url.clone(),
    }
}

/// A CheckFileInfo flag the `wopi` crate does not type (`true`, or the string `"true"`).
fn extra_flag(info: &CheckFileInfo, name: &str) -> bool {
    match info.extra.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// CheckFileInfo's statements about the user's rights.
pub(crate) fn host_rights(info: &CheckFileInfo) -> HostRights {
    let flag = CheckFileInfo::flag;
    HostRights {
        user_can_write: flag(info.user_can_write),
        read_only: flag(info.read_only),
        user_can_review: info.user_can_review,
        user_can_only_comment: flag(info.user_can_only_comment),
        supports_reviewing: info.supports_reviewing,
        copy_paste_restrictions: info.copy_paste_restrictions.clone(),
        disable_print: flag(info.disable_print),
        hide_print_option: flag(info.hide_print_option),
        disable_export: extra_flag(info, "DisableExport"),
        hide_export_option: extra_flag(info, "HideExportOption"),
    }
}

fn profile<'a>(settings: &'a crate::settings::Settings, wopi_src: &str) -> Option<&'a Profile> {
    settings
        .client_face
        .profiles
        .iter()
        .find(|p| urls::is_under(wopi_src, &p.match_origin))
}

struct Opening {
    info: CheckFileInfo,
    wopi_src: String,
    token: String,
    ttl_ms: u64,
    query: HashMap<String, String>,
    docs_api_config: Option<Value>,
}

/// `GET|POST /hosting/wopi/{document_type}/{mode}`
pub(crate) async fn open(
    State(state): State<ClientCtx>,
    Path((document_type, mode)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mode_label = if mode == "edit" { "edit" } else { "view" };
    match open_inner(
        &state,
        &document_type,
        &mode,
        query.as_deref().unwrap_or(""),
        &headers,
        body,
    )
    .await
    {
        Ok((resp, effective)) => {
            state
                .metrics
                .editor_opens
                .with_label_values(&[effective, "ok"])
                .inc();
            resp
        }
        Err(e) => {
            state
                .metrics
                .editor_opens
                .with_label_values(&[mode_label, e.page_result()])
                .inc();
            tracing::warn!(
                result = e.page_result(),
                stage = "editor-open",
                "editor page not opened"
            );
            e.into_page()
        }
    }
}

/// What a WOPI host's browser posts to an action URL, checked: WOPISrc under the allowed
/// origins, an access token present.
pub(crate) struct ActionRequest {
    /// WOPISrc.
    pub(crate) wopi_src: String,
    /// The user's access token.
    pub(crate) token: String,
    /// `access_token_ttl` (Unix ms; 0 unknown).
    pub(crate) ttl_ms: u64,
    /// The query, keys lower-cased.
    pub(crate) query: HashMap<String, String>,
    /// The form fields.
    pub(crate) form: HashMap<String, String>,
}

/// The largest action form read (it carries a token and an optional `docs_api_config`).
const MAX_ACTION_FORM: usize = 1024 * 1024;

/// Reads and checks an action request (query and urlencoded form).
pub(crate) async fn read_action(
    state: &ClientCtx,
    raw_query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<ActionRequest, GatewayError> {
    let bad = GatewayError::BadRequest;
    // Query keys are case-insensitive (WOPISrc, wopisrc, …).
    let query: HashMap<String, String> = parse_form(raw_query)
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let ctype = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bytes = http_body_util::Limited::new(body, MAX_ACTION_FORM)
        .collect()
        .await
        .map_err(|e| {
            if crate::body::is_body_limit(e.as_ref()) {
                GatewayError::PayloadTooLarge
            } else {
                bad(format!("request body: {e}"))
            }
        })?
        .to_bytes();
    if !bytes.is_empty() && !ctype.starts_with("application/x-www-form-urlencoded") {
        return Err(GatewayError::UnsupportedMediaType(
            "the action form must be application/x-www-form-urlencoded".into(),
        ));
    }
    let form: HashMap<String, String> = parse_form(&String::from_utf8_lossy(&bytes))
        .into_iter()
        .collect();
    let wopi_src = query
        .get("wopisrc")
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| bad("WOPISrc is missing".into()))?;
    // SSRF guard: nothing leaves the gateway for a WOPISrc outside the allowed origins.
    let allowed = &state.settings().client_face.allowed_wopi_origins;
    if let Err(why) = urls::check_under(&wopi_src, allowed) {
        return Err(GatewayError::Forbidden(format!(
            "WOPISrc `{}` (origin `{}`) is refused: {why}; the gateway checked client_face.allowed_wopi_origins = {allowed:?}",
            urls::redact(&wopi_src),
            urls::origin_of(&wopi_src)
        )));
    }
    let token = form
        .get("access_token")
        .or_else(|| query.get("access_token"))
        .filter(|t| !t.is_empty())
        .cloned()
        .ok_or_else(|| bad("access_token is missing".into()))?;
    let ttl_ms = form
        .get("access_token_ttl")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    Ok(ActionRequest {
        wopi_src,
        token,
        ttl_ms,
        query,
        form,
    })
}

async fn open_inner(
    state: &ClientCtx,
    document_type: &str,
    mode: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Response, &'static str), GatewayError> {
    let bad = GatewayError::BadRequest;
    let Some(docs_secret) = state.settings().docs.jwt_secret.clone() else {
        return Err(GatewayError::NotConfigured(
            "the client face needs docs.jwt_secret".into(),
        ));
    };
    if !matches!(document_type, "word" | "cell" | "slide" | "pdf")
        || !matches!(mode, "view" | "edit")
    {
        return Err(GatewayError::NoRoute(format!(
            "no editor for {document_type}/{mode}"
        )));
    }
    let ActionRequest {
        wopi_src,
        token,
        ttl_ms,
        query,
        form,
    } = read_action(state, raw_query, headers, body).await?;
    let docs_api_config = match form.get("docs_api_config").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| bad("docs_api_config is not a JSON object".into()))?,
        ),
    };
    let mut check_headers = Vec::new();
    if let Some(sc) = query.get("sc") {
        check_headers.push((wopi::headers::SESSION_CONTEXT, sc.clone()));
    }
    let mut info = host::check_file_info(state, &wopi_src, &token, &check_headers).await?;
    if mode == "edit" && fill_from_template(state, &wopi_src, &token, &info).await? {
        info = host::check_file_info(state, &wopi_src, &token, &check_headers).await?;
    }
    let opening = Opening {
        info,
        wopi_src,
        token,
        ttl_ms,
        query,
        docs_api_config,
    };
    let built = build_page(state, &docs_secret, document_type, mode, opening).await?;
    let docs_base = state.settings().docs_public_base();
    let page = render_page(&built.title, &docs_base, &built.config, &built.host);
    Ok(([(http::header::CACHE_CONTROL, "no-store")], Html(page)).into_response())
        .map(|r| (r, built.effective))
}

/// An editor page's config and the page's own settings, before rendering.
struct Built {
    /// The signed Docs API config.
    config: Value,
    /// What the page's script needs (`wopi-gateway-host`).
    host: Value,
    title: String,
    /// `edit` or `view`.
    effective: &'static str,
}

/// What the page's Refresh (`onRequestRefreshFile`) needs to open the file again as it was
/// opened: kept in the shared state (the access token never goes into the page), named by
/// a random id the page holds, for as long as the page's action token lives.
#[derive(serde::Serialize, serde::Deserialize)]
struct OpeningRecord {
    key: String,
    uid: String,
    wopi_src: String,
    token: String,
    ttl_ms: u64,
    path_type: String,
    requested: String,
    query: HashMap<String, String>,
    docs_api_config: Option<Value>,
}

const NS_OPENING: &str = "opening";
/// How long a page's action token (and its opening record) lives.
const ACTION_TOKEN_SECONDS: u64 = 12 * 3600;

/// `POST /hosting/api/{key}/refresh?t=`, body `{"opening": id}`: the page's
/// `onRequestRefreshFile` (Docs says the file changed under the editor). The file is opened
/// again as the page opened it — CheckFileInfo, key, lock, permissions — and the answer is
/// `{"config": <signed config>, "host": <the page's settings>}` for `docEditor.refreshFile`,
/// as ONLYOFFICE Docs' own WOPI client does in its `refreshFile`.
pub(crate) async fn refresh(
    State(state): State<ClientCtx>,
    user: super::auth::ActionUser,
    body: Body,
) -> Result<Response, GatewayError> {
    let bytes = crate::body::read_body(body, 4096).await?;
    let req: Value = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::BadRequest(format!("body: {e}")))?;
    let id = req
        .get("opening")
        .and_then(Value::as_str)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| GatewayError::BadRequest("opening is missing".into()))?;
    let rec: OpeningRecord = state
        .shared
        .get_json(NS_OPENING, id)
        .await?
        .ok_or(GatewayError::NotFound("editor opening"))?;
    if rec.key != user.key || rec.uid != user.uid {
        return Err(GatewayError::Forbidden(
            "the opening is another page's".into(),
        ));
    }
    let Some(docs_secret) = state.settings().docs.jwt_secret.clone() else {
        return Err(GatewayError::NotConfigured(
            "the client face needs docs.jwt_secret".into(),
        ));
    };
    let mut check_headers = Vec::new();
    if let Some(sc) = rec.query.get("sc") {
        check_headers.push((wopi::headers::SESSION_CONTEXT, sc.clone()));
    }
    let info = host::check_file_info(&state, &rec.wopi_src, &rec.token, &check_headers).await?;
    let opening = Opening {
        info,
        wopi_src: rec.wopi_src,
        token: rec.token,
        ttl_ms: rec.ttl_ms,
        query: rec.query,
        docs_api_config: rec.docs_api_config,
    };
    let built = build_page(
        &state,
        &docs_secret,
        &rec.path_type,
        &rec.requested,
        opening,
    )
    .await?;
    tracing::info!(
        mode = built.effective,
        stage = "refresh",
        "editor config refreshed"
    );
    Ok((
        [(http::header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"config": built.config, "host": built.host})),
    )
        .into_response())
}

async fn build_page(
    state: &ClientCtx,
    docs_secret: &docs_api::Secret,
    path_type: &str,
    requested: &str,
    o: Opening,
) -> Result<Built, GatewayError> {
    let info = &o.info;
    let flag = CheckFileInfo::flag;
    let ext = info.extension();
    let document_type = docs_api::config::document_type(&ext).unwrap_or(path_type);
    let rights = host_rights(info);
    let action = ActionQuery::from_query(&o.query);
    let version = if info.version.is_empty() {
        info.last_modified_time.clone().unwrap_or_default()
    } else {
        info.version.clone()
    };
    let mut mode = permissions::mode(&rights, action.flags, requested == "edit");
    let mut forced_why =
        (mode == Mode::View { forced: true }).then_some("you may not change this document");
    // One editing session per file: while one lives (on any instance), every edit opening
    // joins it — its key and its lock id — whatever Version the host reports now (a
    // force-save changed it). A new key only once it ended and the file changed.
    let mut joined = if mode.is_edit() {
        state.face.editors.live_edit(&o.wopi_src).await?
    } else {
        None
    };
    let mut key = match &joined {
        Some(live) => live.key().to_owned(),
        None => document_key(
            if mode.is_edit() { 'e' } else { 'v' },
            &o.wopi_src,
            &version,
        ),
    };
    let lock_id = joined
        .as_ref()
        .and_then(|live| live.lock_id.clone())
        .unwrap_or_else(|| key.clone());
    let supports_locks = flag(info.supports_locks);
    if mode.is_edit() && supports_locks {
        if let Err(e) = host::lock_op(state, &o.wopi_src, &o.token, "Lock", &lock_id).await {
            // As ONLYOFFICE does: a document that cannot be locked opens for viewing.
            tracing::warn!(error = %e, "Lock failed at open: falling back to view mode");
            mode = Mode::View { forced: true };
            forced_why = Some("the storage did not let the editor lock it");
            joined = None;
            key = document_key('v', &o.wopi_src, &version);
        }
    }
    // A new, empty file (`editnew`, or an empty file the host made) gets a blank document
    // of its type, with the lock just taken, before the editor opens it.
    let filled_info;
    let info = if mode.is_edit() && joined.is_none() && info.size == 0 {
        match fill_blank(state, &o, &key, supports_locks.then_some(lock_id.as_str())).await? {
            Some(fresh) => {
                filled_info = fresh;
                &filled_info
            }
            None => info,
        }
    } else {
        info
    };
    let edit = mode.is_edit();
    let mut s = match joined {
        Some(live) => live,
        None => {
            state
                .face
                .editors
                .get_or_insert(&key, || Editor {
                    wopi_src: o.wopi_src.clone(),
                    ext: ext.clone(),
                    name: info.base_file_name.clone(),
                    edit,
                    supports_locks,
                    lock_id: None,
                    users: HashMap::new(),
                    version: Some(info.version.clone()).filter(|v| !v.is_empty()),
                    last_modified: info.last_modified_time.clone(),
                    name_max_length: info.file_name_max_length,
                })
                .await?
        }
    };
    {
        s.users.insert(
            info.user_id.clone(),
            UserAuth {
                token: o.token.clone(),
                ttl_ms: o.ttl_ms,
                can_write: edit,
            },
        );
        if edit && supports_locks {
            s.lock_id = Some(lock_id);
            note_refreshed(state, &key).await?;
        }
        s.save().await?;
        if edit {
            state.face.editors.note_live_edit(&o.wopi_src, &key).await?;
        }
        drop(s);
    }
    let settings = state.settings();
    let base = settings.server.internal_url.base();
    let instance_id = urls::origin_of(&o.wopi_src);
    let facts = file_facts(info);
    let input = crate::translate::editor_config::Input {
        file: &facts,
        rights: &rights,
        action: &action,
        profile: profile(&settings, &o.wopi_src),
        wopi_src: &o.wopi_src,
        key: &key,
        mode,
        document_type,
        // ONLYOFFICE Docs fetches document.url and posts to callbackUrl from its server.
        base: &base,
        instance_id: &instance_id,
    };
    let config = crate::translate::editor_config::signed(
        &crate::translate::editor_config::editor_config(&input),
        o.docs_api_config.as_ref(),
        docs_secret,
    );
    let base = state.settings().server.public_url.base();
    let action_token = action_token(state, &key, &info.user_id);
    let opening_id = crate::random::hex::<16>()?;
    state
        .shared
        .put_json(
            NS_OPENING,
            &opening_id,
            &OpeningRecord {
                key: key.clone(),
                uid: info.user_id.clone(),
                wopi_src: o.wopi_src.clone(),
                token: o.token.clone(),
                ttl_ms: o.ttl_ms,
                path_type: path_type.to_owned(),
                requested: requested.to_owned(),
                query: o.query.clone(),
                docs_api_config: o.docs_api_config.clone(),
            },
            crate::cluster::Keep::For(std::time::Duration::from_secs(ACTION_TOKEN_SECONDS)),
        )
        .await?;
    let can_save_as = (flag(info.supports_update) || flag(info.user_can_write))
        && !flag(info.user_can_not_write_relative);
    let host_info = json!({
        "postMessageOrigin": info.post_message_origin.as_deref().map(|o| o.trim_end_matches('/')),
        "closePostMessage": flag(info.close_post_message),
        "closeUrl": info.close_url,
        "closeVisible": flag(info.close_post_message) || info.close_url.as_deref().is_some_and(|u| !u.is_empty()),
        "editPostMessage": flag(info.edit_mode_post_message),
        "hostEditUrl": info.host_edit_url,
        "sharingPostMessage": flag(info.file_sharing_post_message),
        "sharingUrl": info.file_sharing_url,
        "versionsPostMessage": flag(info.file_version_post_message),
        "versionsUrl": info.file_version_url,
        "editNotification": info.extra.get("EditNotificationPostMessage").and_then(Value::as_bool).unwrap_or(false),
        "canSaveAs": can_save_as,
        "canRename": flag(info.supports_rename) && flag(info.user_can_rename) && edit,
        "saveAsUrl": format!("{base}/hosting/api/{key}/saveas?t={action_token}"),
        "renameUrl": format!("{base}/hosting/api/{key}/rename?t={action_token}"),
        "insertImage": edit && extra_flag(info, "EnableInsertRemoteImage"),
        "imageUrl": format!("{base}/hosting/api/{key}/image?t={action_token}"),
        "refreshUrl": format!("{base}/hosting/api/{key}/refresh?t={action_token}"),
        "opening": opening_id,
        "userSession": o.query.get("usid"),
        "forcedView": forced_why.map(|why| format!("This document is open for viewing only: {why}.")),
    });
    let title = config
        .pointer("/document/title")
        .and_then(Value::as_str)
        .unwrap_or("Document")
        .to_owned();
    tracing::info!(mode = if edit { "edit" } else { "view" }, ext = %ext, stage = "editor", "editor page rendered");
    Ok(Built {
        config,
        host: host_info,
        title,
        effective: if edit { "edit" } else { "view" },
    })
}

/// A new, empty file with a `TemplateSource` (CheckFileInfo): the template is downloaded
/// (only from under `client_face.allowed_wopi_origins`) and put into the file — PutFile
/// without a lock, as WOPI allows for a 0-byte file — before the editor opens it. Only for
/// a user who may write it. Answers whether the file was filled.
async fn fill_from_template(
    state: &ClientCtx,
    wopi_src: &str,
    token: &str,
    info: &CheckFileInfo,
) -> Result<bool, GatewayError> {
    let Some(template) = info.template_source.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(false);
    };
    let rights = host_rights(info);
    if info.size != 0 || !rights.user_can_write || rights.read_only {
        return Ok(false);
    }
    let allowed = &state.settings().client_face.allowed_wopi_origins;
    if let Err(why) = urls::check_under(template, allowed) {
        return Err(GatewayError::Forbidden(format!(
            "TemplateSource `{}` is refused: {why}; the gateway checked client_face.allowed_wopi_origins = {allowed:?}",
            urls::redact(template)
        )));
    }
    let path = state.face.spool.join(format!(
        "template-{}-{}.bin",
        state.now_ms(),
        crate::random::hex::<4>().unwrap_or_default()
    ));
    let written =
        super::saves::download_to_spool(state, "wopi_template", "TemplateSource", template, &path)
            .await
            .map_err(|why| GatewayError::Upstream {
                op: "TemplateSource",
                kind: crate::error::UpstreamKind::Protocol,
                detail: why,
            })?;
    let call = host::Call {
        wopi_src,
        suffix: "/contents",
        token,
        op: "PutFile",
    };
    let headers = [
        (wopi::headers::OVERRIDE, "PUT".to_owned()),
        (
            "content-type",
            super::saves::mime(&info.extension()).to_owned(),
        ),
        ("content-length", written.size.to_string()),
    ];
    let body = Body::from_stream(crate::spool::read_stream(std::fs::File::open(&path)?));
    let put = host::send_ok(state, &call, http::Method::POST, &headers, body).await;
    let _ = tokio::fs::remove_file(&path).await;
    put?;
    tracing::info!(
        size = written.size,
        stage = "template",
        "new file filled from its TemplateSource"
    );
    Ok(true)
}

/// Writes the blank document of the file's type into a new, empty file (PutFile with the
/// session's lock, as ONLYOFFICE Docs does from its `new.<ext>` templates) when the user may
/// write it, and answers the file's CheckFileInfo after it; `None` when there is no blank
/// of the type or the user may not write. When the host refuses the PutFile, the lock is
/// given back and the opening fails (Docs cannot open a 0-byte file).
async fn fill_blank(
    state: &ClientCtx,
    o: &Opening,
    key: &str,
    lock: Option<&str>,
) -> Result<Option<CheckFileInfo>, GatewayError> {
    let ext = o.info.extension();
    let rights = host_rights(&o.info);
    let Some(blank) = super::blank::document(&ext) else {
        return Ok(None);
    };
    if !rights.user_can_write || rights.read_only {
        return Ok(None);
    }
    let call = host::Call {
        wopi_src: &o.wopi_src,
        suffix: "/contents",
        token: &o.token,
        op: "PutFile",
    };
    let mut headers = vec![
        (wopi::headers::OVERRIDE, "PUT".to_owned()),
        (wopi::headers::SESSION_ID, key.to_owned()),
        ("content-type", super::saves::mime(&ext).to_owned()),
        ("content-length", blank.len().to_string()),
    ];
    if let Some(lock) = lock {
        headers.push((wopi::headers::LOCK, lock.to_owned()));
    }
    let put = host::send_ok(
        state,
        &call,
        http::Method::POST,
        &headers,
        Body::from(blank),
    )
    .await;
    if let Err(e) = put {
        if let Some(lock) = lock {
            if let Err(u) = host::lock_op(state, &o.wopi_src, &o.token, "Unlock", lock).await {
                tracing::warn!(error = %u, "Unlock after a refused blank document failed");
            }
        }
        return Err(e);
    }
    tracing::info!(
        size = blank.len(),
        ext = %ext,
        stage = "blank",
        "new, empty file filled with a blank document"
    );
    let mut check_headers = Vec::new();
    if let Some(sc) = o.query.get("sc") {
        check_headers.push((wopi::headers::SESSION_CONTEXT, sc.clone()));
    }
    host::check_file_info(state, &o.wopi_src, &o.token, &check_headers)
        .await
        .map(Some)
}

/// A short-lived token authorising the page's Save As / Rename calls for (key, user).
fn action_token(state: &ClientCtx, key: &str, user: &str) -> String {
    let mut claims = Map::new();
    claims.insert("key".into(), json!(key));
    claims.insert("uid".into(), json!(user));
    let now = state.now_ms() / 1000;
    state
        .settings()
        .docs
        .jwt_secret
        .as_ref()
        .map(|s| jwt::sign_with_expiry(s, &claims, now, ACTION_TOKEN_SECONDS))
        .unwrap_or_default()
}

fn render_page(title: &str, docs_base: &str, config: &Value, host: &Value) -> String {
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1, maximum-scale=1, user-scalable=no">
<title>{title}</title>
<style>html,body{{margin:0;padding:0;height:100%;overflow:hidden}}#placeholder{{height:100%}}</style>
</head><body>
<div id="placeholder"></div>
<script type="application/json" id="wopi-gateway-config">{config}</script>
<script type="application/json" id="wopi-gateway-host">{host}</script>
<script src="{api}"></script>
<script>
(function () {{
  var config = JSON.parse(document.getElementById('wopi-gateway-config').textContent);
  var host = JSON.parse(document.getElementById('wopi-gateway-host').textContent);
  var target = host.postMessageOrigin || '*';
  var imageFor = null;
  function post(id, values) {{
    if (window.parent === window) return;
    values = values || {{}};
    values['ui-language'] = config.editorConfig.lang;
    if (host.userSession) values.wdUserSession = host.userSession;
    window.parent.postMessage(JSON.stringify({{MessageId: id, SendTime: Date.now(), Values: values}}), target);
  }}
  function go(url) {{ if (url) window.top.location.href = url; }}
  function call(url, body, done) {{
    fetch(url, {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: JSON.stringify(body)}})
      .then(function (r) {{ return r.json().then(function (j) {{ return {{ok: r.ok, body: j}}; }}); }})
      .then(function (r) {{ done(r.ok, r.body); }}, function () {{ done(false, {{message: 'network error'}}); }});
  }}
  var lastNotify = 0;
  config.events = {{
    onAppReady: function () {{
      post('App_LoadingStatus', {{DocumentLoadedTime: Date.now(), Status: 'Document_Loaded'}});
      if (host.forcedView && window.docEditor) window.docEditor.showMessage(host.forcedView);
    }},
    onDocumentStateChange: function (e) {{
      if (host.editNotification && e && e.data && Date.now() - lastNotify > 30000) {{ lastNotify = Date.now(); post('Edit_Notification'); }}
    }}
  }};
  if (host.closeVisible) config.events.onRequestClose = function () {{ if (host.closePostMessage) post('UI_Close'); else go(host.closeUrl); }};
  if (host.editPostMessage || host.hostEditUrl) config.events.onRequestEditRights = function () {{ if (host.editPostMessage) post('UI_Edit'); else go(host.hostEditUrl); }};
  if (host.sharingPostMessage || host.sharingUrl) config.events.onRequestSharingSettings = function () {{ if (host.sharingPostMessage) post('UI_Sharing'); else window.open(host.sharingUrl); }};
  if (host.versionsPostMessage || host.versionsUrl) config.events.onRequestHistory = function () {{ if (host.versionsPostMessage) post('UI_FileVersions'); else window.open(host.versionsUrl); }};
  if (host.canSaveAs) config.events.onRequestSaveAs = function (e) {{
    call(host.saveAsUrl, e.data, function (ok, body) {{
      window.docEditor.showMessage(ok ? ('Saved as ' + (body.Name || e.data.title)) : ('Save as failed: ' + (body.message || '')));
    }});
  }};
  if (host.canRename) config.events.onRequestRename = function (e) {{
    call(host.renameUrl, {{title: e.data}}, function (ok, body) {{
      if (!ok) {{ window.docEditor.showMessage('Rename failed: ' + (body.message || '')); return; }}
      // The host's frame learns the new name (without extension), as after Office's rename.
      post('File_Rename', {{NewName: body.Name}});
    }});
  }};
  // Insert image from the host (EnableInsertRemoteImage): Docs asks, the host's frame picks
  // (UI_InsertGraphic), answers Action_InsertGraphic with a URL, the gateway signs it.
  if (host.insertImage) config.events.onRequestInsertImage = function (e) {{
    imageFor = (e && e.data && e.data.c) || 'add';
    post('UI_InsertGraphic');
  }};
  // The file changed under the editor: open it again and hand Docs the fresh config.
  config.events.onRequestRefreshFile = function () {{
    call(host.refreshUrl, {{opening: host.opening}}, function (ok, body) {{
      if (!ok) {{ window.docEditor.showMessage('The document could not be reloaded: ' + (body.message || '')); return; }}
      host = body.host;
      target = host.postMessageOrigin || '*';
      window.docEditor.refreshFile(body.config);
    }});
  }};
  window.addEventListener('message', function (ev) {{
    if (target !== '*' && ev.origin !== target) return;
    var msg; try {{ msg = JSON.parse(ev.data); }} catch (x) {{ return; }}
    if (!msg || !window.docEditor) return;
    if (msg.MessageId === 'Grab_Focus') window.docEditor.grabFocus();
    if (msg.MessageId === 'Blur_Focus') window.docEditor.blurFocus();
    if (msg.MessageId === 'Action_InsertGraphic' && imageFor && ev.source === window.parent && msg.Values && msg.Values.url) {{
      var c = imageFor; imageFor = null;
      call(host.imageUrl, {{c: c, url: msg.Values.url, name: msg.Values.filename || msg.Values.name || ''}}, function (ok, body) {{
        if (ok) window.docEditor.insertImage(body);
        else window.docEditor.showMessage('The image could not be inserted: ' + (body.message || ''));
      }});
    }}
  }});
  window.docEditor = new DocsAPI.DocEditor('placeholder', config);
}})();
</script>
</body></html>
"#,
        title = crate::html::escape(title),
        config = crate::html::script_json(config),
        host = crate::html::script_json(host),
        api = crate::html::escape(&format!("{docs_base}/web-apps/apps/api/documents/api.js")),
    )
}

/// When each key's lock was last taken or refreshed on the host (Unix ms).
const NS_REFRESHED: &str = "refreshed";
/// Who keeps each key's RefreshLock cadence (a lease).
const NS_REFRESH_LEASE: &str = "refresh-lease";
/// When each key's last periodic force-save was asked for (Unix ms).
const NS_FORCESAVED: &str = "forcesaved";
/// Who keeps each key's force-save cadence (a lease).
const NS_FORCESAVE_LEASE: &str = "forcesave-lease";

/// Notes that the host's lock of `key` was just taken or refreshed.
pub(crate) async fn note_refreshed(state: &ClientCtx, key: &str) -> Result<(), GatewayError> {
    let ttl = state.settings().client_face.lock_refresh * 4;
    state
        .shared
        .put_stamp(NS_REFRESHED, key, state.now_ms(), ttl)
        .await?;
    Ok(())
}

/// Keeps the RefreshLock cadence of every locked session, and the force-save cadence of
/// every edit session whose profile sets `forcesave_interval_seconds`, until `shutdown`:
/// each key's cadence is kept by the one instance holding its lease (half a period,
/// extended every quarter), so when that instance dies another takes the key over within
/// one period. On shutdown the leases are handed back at once.
pub(crate) fn spawn_refresh_loop(state: ClientCtx, shutdown: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let owner = format!(
            "{}/{}",
            state.shared.instance,
            crate::random::hex::<6>().unwrap_or_default()
        );
        let mut held: std::collections::HashSet<(&'static str, String)> =
            std::collections::HashSet::new();
        loop {
            let (period, tick) = {
                let settings = state.settings();
                let period = settings.client_face.lock_refresh;
                let shortest = settings
                    .client_face
                    .profiles
                    .iter()
                    .map(|p| p.forcesave_interval)
                    .filter(|i| !i.is_zero())
                    .fold(period, std::cmp::min);
                (
                    period,
                    (shortest / 4).max(std::time::Duration::from_millis(50)),
                )
            };
            tokio::select! {
                () = shutdown.cancelled() => {
                    for (ns, key) in &held {
                        let _ = state.shared.release(ns, key, &owner).await;
                    }
                    return;
                }
                () = tokio::time::sleep(tick) => {}
            }
            let keys = match state.face.editors.keys().await {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the editor sessions to refresh their locks");
                    continue;
                }
            };
            held.retain(|(_, k)| keys.contains(k));
            for key in keys {
                match refresh_if_due(&state, &key, &owner, period).await {
                    Ok(true) => {
                        held.insert((NS_REFRESH_LEASE, key.clone()));
                    }
                    Ok(false) => {
                        held.remove(&(NS_REFRESH_LEASE, key.clone()));
                    }
                    Err(e) => tracing::warn!(key, error = %e, "RefreshLock round failed"),
                }
                match forcesave_if_due(&state, &key, &owner).await {
                    Ok(true) => {
                        held.insert((NS_FORCESAVE_LEASE, key));
                    }
                    Ok(false) => {
                        held.remove(&(NS_FORCESAVE_LEASE, key));
                    }
                    Err(e) => tracing::warn!(key, error = %e, "force-save round failed"),
                }
            }
        }
    });
}

/// Refreshes `key`'s lock when this instance holds (or takes) its lease and a period passed
/// since the last refresh on any instance; returns whether the lease is held.
async fn refresh_if_due(
    state: &ClientCtx,
    key: &str,
    owner: &str,
    period: std::time::Duration,
) -> Result<bool, GatewayError> {
    let Some(s) = state.face.editors.peek(key).await? else {
        return Ok(false);
    };
    let Some(lock) = s.lock_id.clone() else {
        let _ = state.shared.release(NS_REFRESH_LEASE, key, owner).await;
        return Ok(false);
    };
    if !state
        .shared
        .lease(NS_REFRESH_LEASE, key, owner, period / 2)
        .await?
    {
        return Ok(false);
    }
    let now = state.now_ms();
    let last = state
        .shared
        .get_stamp(NS_REFRESHED, key)
        .await?
        .unwrap_or(0);
    if now.saturating_sub(last) < period.as_millis() as u64 {
        return Ok(true);
    }
    let Some(token) = s.write_token(&[], now).map(str::to_owned) else {
        tracing::warn!(key, "no valid write token left to refresh the lock");
        state
            .metrics
            .lock_refreshes
            .with_label_values(&["error"])
            .inc();
        return Ok(true);
    };
    let r = host::lock_op(state, &s.wopi_src, &token, "RefreshLock", &lock).await;
    state
        .metrics
        .lock_refreshes
        .with_label_values(&[if r.is_ok() { "ok" } else { "error" }])
        .inc();
    match r {
        Ok(()) => note_refreshed(state, key).await?,
        Err(GatewayError::HostRefused { refusal, .. }) if refusal.lock_lost() => {
            // The host forgot the lock (expired, cleaned up): take it again with the
            // same id while the file is unchanged, so the final save still lands.
            tracing::warn!(%refusal, "RefreshLock: the host holds no lock on the file; locking again");
            match host::relock(state, &s.wopi_src, &token, &lock, &s.expected()).await {
                Ok(()) => note_refreshed(state, key).await?,
                Err(e) => {
                    tracing::error!(error = %e, "the lost lock could not be taken again; a save will be kept as a recovery copy if the host refuses it")
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "RefreshLock failed");
            // Try again next tick rather than a whole period later.
        }
    }
    Ok(true)
}

/// Asks Docs to force-save `key` when it is an edit session whose profile sets
/// `forcesave_interval_seconds`, this instance holds (or takes) its lease and an interval
/// passed since the last ask on any instance; returns whether the lease is held. Docs'
/// error 4 (nothing changed since the last save) is no failure.
async fn forcesave_if_due(state: &ClientCtx, key: &str, owner: &str) -> Result<bool, GatewayError> {
    let interval = match state.face.editors.peek(key).await? {
        Some(s) if s.edit => profile(&state.settings(), &s.wopi_src)
            .map(|p| p.forcesave_interval)
            .unwrap_or_default(),
        _ => std::time::Duration::ZERO,
    };
    if interval.is_zero() {
        let _ = state.shared.release(NS_FORCESAVE_LEASE, key, owner).await;
        return Ok(false);
    }
    if !state
        .shared
        .lease(NS_FORCESAVE_LEASE, key, owner, interval / 2)
        .await?
    {
        return Ok(false);
    }
    let now = state.now_ms();
    let ttl = interval * 4;
    let Some(last) = state.shared.get_stamp(NS_FORCESAVED, key).await? else {
        // The first interval runs from now (the session just opened, or its stamp expired).
        state.shared.put_stamp(NS_FORCESAVED, key, now, ttl).await?;
        return Ok(true);
    };
    if now.saturating_sub(last) < interval.as_millis() as u64 {
        return Ok(true);
    }
    // Stamped first: a slow answer does not make another instance ask again meanwhile.
    state.shared.put_stamp(NS_FORCESAVED, key, now, ttl).await?;
    let answer = super::command::send_any(state, json!({"c": "forcesave", "key": key})).await;
    match answer.as_ref().map(super::command::error_code) {
        Ok(Some(0)) => tracing::debug!(key, "force-save asked for"),
        Ok(Some(4)) => tracing::debug!(key, "force-save: nothing changed since the last save"),
        Ok(code) => {
            tracing::warn!(key, error = %super::command::refused(code), "force-save refused")
        }
        Err(e) => tracing::warn!(key, error = %e, "force-save failed"),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_docs_safe_and_versioned() {
        let a = document_key('e', "https://h/wopi/files/a!b", "1");
        assert!(docs_api::config::is_valid_key(&a), "{a}");
        assert_ne!(a, document_key('e', "https://h/wopi/files/a!b", "2"));
        assert_eq!(a, document_key('e', "https://h/wopi/files/a!b", "1"));
        assert_eq!(a.len(), 41);
    }

    #[test]
    fn forms_and_script_json() {
        let f = parse_form("access_token=a%2Bb+c&access_token_ttl=5&x");
        assert_eq!(f[0], ("access_token".into(), "a+b c".into()));
        assert_eq!(f[2], ("x".into(), String::new()));
        let s = crate::html::script_json(&json!({"t": "</script><b>&"}));
        assert!(!s.contains('<') && !s.contains('>'));
        assert_eq!(
            serde_json::from_str::<Value>(&s).unwrap()["t"],
            "</script><b>&"
        );
    }
}
