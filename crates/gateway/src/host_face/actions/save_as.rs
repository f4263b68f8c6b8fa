//! PutRelativeFile (Save As) through the integrator's hook: the name (suggested or
//! relative), the content stored first, the hook's answer (a name conflict, an overwrite
//! checked against the target's WOPI lock), and the new file opened.

use super::{
    Answer, NS_REFERENCE_DATA, bad_name, call, classify, conflict, current, extension, header,
    name_problem, user, utf7_header,
};
use crate::error::{GatewayError, UpstreamKind};
use crate::host_face::HostCtx;
use crate::host_face::files::FileHandle;
use crate::host_face::token::AccessClaims;
use crate::settings::Integrator;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use docs_api::jwt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};
use wopi::headers as h;

pub(super) async fn put_relative(
    state: &HostCtx,
    integrator: &Integrator,
    c: &AccessClaims,
    entry: &FileHandle,
    req: Request,
) -> Result<Response, GatewayError> {
    let headers = req.headers().clone();
    let suggested = match utf7_header(&headers, h::SUGGESTED_TARGET) {
        Ok(v) => v,
        Err(why) => return Ok(bad_name(&why)),
    };
    let relative = match utf7_header(&headers, h::RELATIVE_TARGET) {
        Ok(v) => v,
        Err(why) => return Ok(bad_name(&why)),
    };
    let (key, title) = current(entry, c).await?;
    let (mut name, specific) = match (suggested, relative) {
        (Some(_), Some(_)) => {
            return Err(GatewayError::NotImplemented(
                "PutRelativeFile with both X-WOPI-SuggestedTarget and X-WOPI-RelativeTarget",
            ));
        }
        (None, None) => {
            return Ok(bad_name(
                "X-WOPI-SuggestedTarget or X-WOPI-RelativeTarget is required",
            ));
        }
        (Some(s), None) if s.starts_with('.') => {
            let stem = title.rsplit_once('.').map_or(title.as_str(), |(s, _)| s);
            (format!("{stem}{s}"), false)
        }
        (Some(s), None) => (s, false),
        (None, Some(r)) => (r, true),
    };
    if let Some(why) = name_problem(&name) {
        return Ok(bad_name(why));
    }
    let Some(mut file_type) = extension(&name) else {
        return Ok(bad_name("the name has no extension"));
    };
    // Parsed case-insensitively: the WOPI Validator sends .NET's `True`/`False`.
    let overwrite = specific
        && header(&headers, h::OVERWRITE_RELATIVE_TARGET)
            .and_then(wopi::parse_bool)
            .unwrap_or(false);
    let conversion = headers.contains_key(h::FILE_CONVERSION)
        && header(&headers, h::FILE_CONVERSION)
            .and_then(wopi::parse_bool)
            .unwrap_or(true);
    let declared = match header(&headers, h::SIZE).map(|v| v.trim().parse::<u64>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return Err(GatewayError::BadRequest(
                "X-WOPI-Size is not an integer".into(),
            ));
        }
    };
    // The content first: whatever the hook answers, nothing sent is lost.
    let content_key = crate::host_face::files::content_key(
        &c.fid,
        &format!("saveas-{}.bin", state.face.next_version()),
    );
    let written = crate::host_face::wopi::store_body(state, &content_key, req).await?;
    if let Some(n) = declared.filter(|n| *n != written.size) {
        return Err(GatewayError::BadRequest(format!(
            "the body is {} bytes, X-WOPI-Size says {n}",
            written.size
        )));
    }
    tracing::info!(file_id = %c.fid, size = written.size, key = %content_key, stage = "saveas-stored", "Save As content stored");
    let reference_data = state
        .shared
        .get(NS_REFERENCE_DATA, &c.fid)
        .await?
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    let url = crate::host_face::deliveries::download_url(state, &content_key, &c.fid);
    // Suggested mode: the host must find a name that works, so one suggestion of the
    // integrator is taken. Relative mode with overwrite: the first call asks without it; a
    // taken name is overwritten (a second call, with `overwrite`) only when no WOPI client
    // holds a lock on that file (WOPI: "if overwriting and the existing target is locked →
    // 409 with its lock"), which only the gateway knows.
    let mut suggestion_taken = false;
    let mut overwrite_now = false;
    let answer = loop {
        let mut body = Map::new();
        body.insert("action".into(), json!("saveas"));
        body.insert("key".into(), json!(key));
        body.insert("title".into(), json!(name));
        body.insert("fileType".into(), json!(file_type));
        body.insert("url".into(), json!(url));
        body.insert("user".into(), user(c));
        body.insert("referenceData".into(), reference_data.clone());
        body.insert(
            "mode".into(),
            json!(if specific { "relative" } else { "suggested" }),
        );
        if overwrite_now {
            body.insert("overwrite".into(), json!(true));
        }
        if conversion {
            body.insert("conversion".into(), json!(true));
        }
        let m = call(state, integrator, c, body).await?;
        match classify(integrator, c, m)? {
            Answer::Exists { target, .. } if overwrite && !overwrite_now => {
                if let Some(lock) = target_lock(state, integrator, c, target.as_deref()).await? {
                    return Ok(conflict(h::LOCK, &lock, "the target file is locked"));
                }
                overwrite_now = true;
            }
            Answer::Exists {
                suggested: Some(s), ..
            } if !specific
                && !suggestion_taken
                && s != name
                && name_problem(&s).is_none()
                && extension(&s).is_some() =>
            {
                suggestion_taken = true;
                file_type = extension(&s).unwrap_or_default();
                name = s;
            }
            a => break a,
        }
    };
    let m = match answer {
        Answer::Ok(m) => m,
        Answer::Exists { suggested, .. } => {
            let valid = suggested
                .as_deref()
                .map(wopi::utf7::encode)
                .unwrap_or_default();
            return Ok(conflict(
                h::VALID_RELATIVE_TARGET,
                &valid,
                "a file with this name exists",
            ));
        }
        Answer::Invalid(why) => return Ok(bad_name(&why)),
        Answer::Locked(lock) => {
            return Ok(conflict(h::LOCK, &lock, "the target file is locked"));
        }
        Answer::NotFound => return Err(GatewayError::NotFound("file")),
    };
    let token = m
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GatewayError::Upstream {
            op: "actions",
            kind: UpstreamKind::Protocol,
            detail: "actions_url answered a Save As without `token` (the new file's config)".into(),
        })?;
    let opened = crate::host_face::opening::open(state, integrator, token, false)
        .await
        .map_err(|e| match e {
            GatewayError::BadRequest(d) | GatewayError::Forbidden(d) | GatewayError::Unauthorized(d) => {
                tracing::warn!(integrator = %integrator.name, file_id = %c.fid, error = %d, stage = "actions-hook-failed", "the new file's config from actions_url does not open");
                GatewayError::Upstream {
                    op: "actions",
                    kind: UpstreamKind::Protocol,
                    detail: format!("the Save As config does not open: {d}"),
                }
            }
            other => other,
        })?;
    let settings = state.settings();
    let host_url = |action: &str| {
        format!(
            "{}/open?integrator={}&config={}&action={action}",
            settings.server.public_url.base(),
            utf8_percent_encode(&integrator.name, NON_ALPHANUMERIC),
            utf8_percent_encode(token, NON_ALPHANUMERIC),
        )
    };
    let has = |a: &str| opened.actions.iter().any(|x| x["name"] == a);
    let mut out = json!({
        "Name": opened.claims.title,
        "Url": format!(
            "{}?access_token={}",
            opened.wopi_src,
            utf8_percent_encode(&opened.access_token, NON_ALPHANUMERIC)
        ),
    });
    if has("view") {
        out["HostViewUrl"] = json!(host_url("view"));
    }
    if has("edit") && opened.claims.grant().write {
        out["HostEditUrl"] = json!(host_url("edit"));
    }
    tracing::info!(file_id = %c.fid, new_file_id = %opened.claims.fid, stage = "saveas-done", "Save As: the new file is open");
    Ok(axum::Json(out).into_response())
}

/// The WOPI lock on the file whose editor config `target` is (the `token` of an `exists`
/// answer), if any; `None` too when the integrator sent no config (then only its own
/// `locked` answer protects the file). A config that does not verify is the hook's fault.
async fn target_lock(
    state: &HostCtx,
    integrator: &Integrator,
    c: &AccessClaims,
    target: Option<&str>,
) -> Result<Option<String>, GatewayError> {
    let Some(token) = target else {
        return Ok(None);
    };
    let fid = jwt::verify(&integrator.jwt_secret, token)
        .map_err(|e| e.to_string())
        .and_then(|config| {
            crate::translate::opening::facts(config).map_err(|e| e.to_string())
        })
        .map(|f| crate::translate::opening::file_id(&integrator.name, &f.identity))
        .map_err(|why| {
            tracing::warn!(integrator = %integrator.name, file_id = %c.fid, error = %why, stage = "actions-hook-failed", "the config of an `exists` answer does not verify");
            GatewayError::Upstream {
                op: "actions",
                kind: UpstreamKind::Protocol,
                detail: format!("actions_url answered `exists` with a token that is no editor config of the integrator: {why}"),
            }
        })?;
    Ok(state.locks.get(&fid).await?.filter(|l| !l.is_empty()))
}
