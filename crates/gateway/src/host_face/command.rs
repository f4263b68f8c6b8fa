//! Docs' command service for host-face documents (issue #23 item 5).
//!
//! An integrator that believes the gateway is its ONLYOFFICE Docs sends commands to
//! `/coauthoring/CommandService.ashx` (or `/command`). A command whose `key` is the current
//! `document.key` of a host-face file is answered here; any other request goes to Docs
//! unchanged. The command is read as Docs reads it with JWT enabled: the body's `token`, else
//! the `jwt_header` token's `payload`, verified with the file's integrator's secret (error 6
//! when neither verifies).
//!
//! - `info`: a status 1 callback with the session's users (status 4 when nobody edits),
//!   carrying the command's `userdata`.
//! - `forcesave`: the staged content as a status 6 callback (`forcesavetype` 0, the
//!   command's `userdata`), or error 4 when nothing changed since the last delivery.
//! - `meta`: `meta.title` becomes the title later CheckFileInfo calls give.
//! - `drop`: the access tokens of `users` issued until then stop working on the file (401);
//!   a config the integrator signs afterwards opens again. Every instance reads the drops of
//!   a file at most once a second (a drop reaches the others within that second).
//! - `version`, `license`: passed to Docs, whatever key comes with them (they are about
//!   the server).
//! - anything else: error 5.

use super::HostCtx;
use crate::clock::js_time;
use crate::error::GatewayError;
use crate::proxy::ProxyCtx;
use crate::settings::Integrator;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use docs_api::jwt;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Namespace of the users dropped from each file.
const NS_DROPPED: &str = "dropped";
/// How long an instance trusts the drops it read.
const DROPPED_FRESH_MS: u64 = 1000;

/// The users dropped from one file, and when (Unix seconds); when the file was deleted
/// (DeleteFile through the integrator's `actions_url`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Dropped {
    users: Vec<(String, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted: Option<u64>,
}

/// A file's drops as an instance last read them (Unix ms of the read).
#[derive(Debug, Clone)]
pub(crate) struct DroppedSeen {
    read_ms: u64,
    dropped: Arc<Dropped>,
}

/// The drops of a file, from the instance's copy when fresh.
async fn dropped(state: &HostCtx, fid: &str) -> Result<Arc<Dropped>, GatewayError> {
    let now = state.now_ms();
    if let Some(seen) = state.face.dropped.get(fid) {
        if now.saturating_sub(seen.read_ms) < DROPPED_FRESH_MS {
            return Ok(seen.dropped.clone());
        }
    }
    let d = Arc::new(
        state
            .shared
            .get_json::<Dropped>(NS_DROPPED, fid)
            .await?
            .unwrap_or_default(),
    );
    state.face.dropped.insert(
        fid.to_owned(),
        DroppedSeen {
            read_ms: now,
            dropped: d.clone(),
        },
    );
    Ok(d)
}

/// 401 for an access token of a user dropped from the file after the token was issued;
/// 404 for any access token issued before the file was deleted (a config the integrator
/// signs afterwards opens it again, should the storage have it back).
pub(crate) async fn refuse_dropped(
    state: &HostCtx,
    c: &super::token::AccessClaims,
) -> Result<(), GatewayError> {
    let d = dropped(state, &c.fid).await?;
    if d.users.is_empty() && d.deleted.is_none() {
        return Ok(());
    }
    let ttl = state.settings_now().host_face.access_token_ttl.as_secs();
    let issued = c.exp.saturating_sub(ttl);
    if d.deleted.is_some_and(|at| issued <= at) {
        return Err(GatewayError::NotFound("file"));
    }
    if d.users.iter().any(|(u, at)| *u == c.uid && issued <= *at) {
        return Err(GatewayError::Unauthorized(
            "the user was dropped from this file (command service `drop`)".into(),
        ));
    }
    Ok(())
}

/// Records a `drop` of `users` on `fid`.
async fn drop_users(state: &HostCtx, fid: &str, users: &[String]) -> Result<(), GatewayError> {
    let now_s = state.now_ms() / 1000;
    update_dropped(state, fid, |d| {
        d.users.retain(|(u, _)| !users.contains(u));
        d.users.extend(users.iter().map(|u| (u.clone(), now_s)));
    })
    .await?;
    tracing::info!(
        file_id = fid,
        users = users.len(),
        stage = "command-drop",
        "users dropped from the file"
    );
    Ok(())
}

/// Records that the storage deleted `fid`: the access tokens issued until now answer 404.
pub(crate) async fn mark_deleted(state: &HostCtx, fid: &str) -> Result<(), GatewayError> {
    let now_s = state.now_ms() / 1000;
    update_dropped(state, fid, |d| d.deleted = Some(now_s)).await
}

/// Changes the drops of `fid` with `f`; kept until every access token issued before expires.
async fn update_dropped(
    state: &HostCtx,
    fid: &str,
    f: impl FnOnce(&mut Dropped),
) -> Result<(), GatewayError> {
    let mut d = state
        .shared
        .get_json::<Dropped>(NS_DROPPED, fid)
        .await?
        .unwrap_or_default();
    f(&mut d);
    let keep = state.settings().host_face.access_token_ttl + std::time::Duration::from_secs(60);
    state
        .shared
        .put_json(NS_DROPPED, fid, &d, crate::cluster::Keep::For(keep))
        .await?;
    state.face.dropped.insert(
        fid.to_owned(),
        DroppedSeen {
            read_ms: state.now_ms(),
            dropped: Arc::new(d),
        },
    );
    Ok(())
}

/// Largest command body read.
const MAX_COMMAND_BYTES: usize = 1024 * 1024;

/// Docs' command-service paths (the proxy's fast path leaves them to the router).
pub(crate) const COMMAND_PATHS: [&str; 2] = ["/coauthoring/CommandService.ashx", "/command"];

/// Whether `path` is one of [`COMMAND_PATHS`].
pub(crate) fn is_command_path(path: &str) -> bool {
    COMMAND_PATHS.contains(&path)
}

/// A request to a command-service path: answered here for host-face keys, else proxied.
pub(crate) async fn handle(host: HostCtx, proxy: ProxyCtx, req: Request) -> Response {
    if req.method() != http::Method::POST {
        return crate::proxy::handle(State(proxy), req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match crate::body::read_body(body, MAX_COMMAND_BYTES).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match command(&host, &parts.headers, &bytes).await {
        Ok(Some(answer)) => axum::Json(answer).into_response(),
        Ok(None) => {
            crate::proxy::handle(State(proxy), Request::from_parts(parts, Body::from(bytes))).await
        }
        Err(e) => e.into_response(),
    }
}

/// The command as an integrator signed it, with the integrator.
fn verified(
    integrators: &[Integrator],
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Option<(Integrator, Map<String, Value>)> {
    integrators.iter().find_map(|i| {
        let from_body = body
            .get("token")
            .and_then(Value::as_str)
            .and_then(|t| jwt::verify(&i.jwt_secret, t).ok());
        let from_header = || {
            headers
                .get(i.jwt_header.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| jwt::verify(&i.jwt_secret, jwt::token_from_header(v)).ok())
                .and_then(|m| m.get("payload").and_then(Value::as_object).cloned())
        };
        from_body.or_else(from_header).map(|c| (i.clone(), c))
    })
}

/// `Ok(None)`: not a host-face document's command (Docs answers it).
async fn command(
    state: &HostCtx,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Option<Value>, GatewayError> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(None);
    };
    let settings = state.settings();
    let signed = verified(&settings.host_face.integrators, headers, &body);
    // A non-empty string field of the signed command, else of the body.
    let field = |name: &str| {
        let of = |m: &Map<String, Value>| {
            m.get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        signed
            .as_ref()
            .and_then(|(_, c)| of(c))
            .or_else(|| of(&body))
    };
    // `version` and `license` are about the server, not a document: Docs answers them even
    // when a key is sent along.
    if matches!(field("c").as_deref(), Some("version" | "license")) {
        return Ok(None);
    }
    let Some(key) = field("key") else {
        return Ok(None);
    };
    // The file is found in the document-key index (host_face/files.rs): the integrator
    // that signed the command, else any configured one (an unsigned command for a
    // host-face key is refused below, not passed to Docs).
    let mut found = None;
    for name in match &signed {
        Some((i, _)) => vec![i.name.as_str()],
        None => settings
            .host_face
            .integrators
            .iter()
            .map(|i| i.name.as_str())
            .collect(),
    } {
        found = state.face.files.find_by_key(name, &key).await?;
        if found.is_some() {
            break;
        }
    }
    let Some(meta) = found else {
        return Ok(None);
    };
    let Some((_, cmd)) = signed.filter(|(i, _)| i.name == meta.integrator) else {
        tracing::warn!(file_id = %meta.file_id, stage = "command-refused", "command for a host-face document without a valid token");
        return Ok(Some(json!({"error": 6, "key": key})));
    };
    let c = cmd.get("c").and_then(Value::as_str).unwrap_or("");
    tracing::info!(file_id = %meta.file_id, command = c, stage = "command", "command-service request for a host-face document");
    let Some(mut e) = state.face.files.lock_existing(&meta.file_id).await? else {
        return Ok(Some(json!({"error": 1, "key": key})));
    };
    if e.meta.doc_key != key {
        return Ok(Some(json!({"error": 1, "key": key})));
    }
    // Docs echoes a command's `userdata` in the callback the command causes.
    let userdata = cmd
        .get("userdata")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let error = match c {
        "info" => {
            if let Some(cb) = e.meta.callback_url.clone() {
                let mut body = match e.meta.editors.last() {
                    Some(user) => docs_api::Callback::editing(
                        &key,
                        &e.meta.editors,
                        docs_api::CallbackAction::new(docs_api::ActionKind::Connected, user),
                    ),
                    None => docs_api::Callback::closed(
                        &key,
                        e.meta.last_editor.as_deref().unwrap_or(""),
                    ),
                };
                body.userdata = userdata;
                state
                    .face
                    .deliveries
                    .enqueue(&e.meta.file_id, &e.meta.integrator, &cb, &body, None)
                    .await?;
            }
            0
        }
        "forcesave" => match (
            e.meta.undelivered,
            e.content_key(),
            e.meta.callback_url.clone(),
        ) {
            (true, Some(content), Some(cb)) => {
                let user = e
                    .meta
                    .last_editor
                    .clone()
                    .or_else(|| e.meta.editors.last().cloned())
                    .unwrap_or_default();
                let mut body = docs_api::Callback::force_save(
                    &key,
                    &user,
                    docs_api::ForceSaveType::Command,
                    js_time(e.meta.modified_ms),
                );
                body.userdata = userdata;
                super::wopi::deliver_staged(state, &mut e, &cb, &body, &content).await?;
                0
            }
            _ => 4,
        },
        "meta" => match cmd
            .get("meta")
            .and_then(|m| m.get("title"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            Some(title) => {
                e.meta.title = title.to_owned();
                e.persist().await?;
                0
            }
            None => 5,
        },
        "drop" => {
            let users: Vec<String> = cmd
                .get("users")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if users.is_empty() {
                5
            } else {
                drop_users(state, &e.meta.file_id, &users).await?;
                0
            }
        }
        _ => 5,
    };
    Ok(Some(json!({"error": error, "key": key})))
}
