//! Host face: an integrator's Docs API editor config → what the WOPI access token carries
//! about the file and the user (document.url, key, title and type, callbackUrl, user, owner,
//! rights) and the file's stable identity. The rights become a WOPI grant in
//! [`super::permissions::host_grant`], which needs the WOPI clients' discovery.

use super::permissions::{Grant, Rights};
use crate::error::GatewayError;
use crate::host_face::token::AccessClaims;
use docs_api::config::EditorConfig;
use serde_json::{Map, Value};

/// The facts of an opened file, before ids and expiry are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    /// document.key
    pub(crate) key: String,
    /// document.url
    pub(crate) url: String,
    /// editorConfig.callbackUrl
    pub(crate) callback: Option<String>,
    /// document.title (`Unnamed.{ext}` when empty).
    pub(crate) title: String,
    /// document.fileType, or the title's extension; lower-case.
    pub(crate) file_type: String,
    /// editorConfig.user.id (`None`: an anonymous user).
    pub(crate) user_id: Option<String>,
    /// editorConfig.user.name (`Anonymous` for an anonymous user without one).
    pub(crate) user_name: String,
    /// `document.permissions` with Docs' defaults, nothing that changes the document in a
    /// view mode.
    pub(crate) rights: Rights,
    /// `document.info.owner`, when a non-empty string.
    pub(crate) owner: Option<String>,
    /// What identifies the file in the storage: referenceData.fileKey, else the key.
    pub(crate) identity: String,
    /// editorConfig.lang
    pub(crate) lang: Option<String>,
    /// editorConfig.region, else the language.
    pub(crate) region: Option<String>,
}

/// Reads an integrator's config (a verified token's payload).
pub(crate) fn facts(payload: Map<String, Value>) -> Result<Facts, GatewayError> {
    if payload.contains_key("payload") || payload.contains_key("url") {
        return Err(GatewayError::BadRequest(
            "token payload is not an editor config (it has a top-level `payload` or `url`)".into(),
        ));
    }
    let config: EditorConfig = serde_json::from_value(Value::Object(payload))
        .map_err(|e| GatewayError::BadRequest(format!("editor config: {e}")))?;
    let d = &config.document;
    let ec = &config.editor_config;
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let key = nonempty(&d.key)
        .ok_or_else(|| GatewayError::BadRequest("editor config lacks document.key".into()))?;
    let url = nonempty(&d.url)
        .ok_or_else(|| GatewayError::BadRequest("editor config lacks document.url".into()))?;
    let title_in = d.title.clone().unwrap_or_default();
    let file_type = d
        .file_type
        .as_deref()
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
        format!("Unnamed.{file_type}")
    } else {
        title_in
    };
    let user_id = ec.user.as_ref().and_then(docs_api::config::User::id_string);
    let user_name = ec
        .user
        .as_ref()
        .and_then(|u| u.name.clone())
        .unwrap_or_else(|| if user_id.is_none() { "Anonymous" } else { "" }.to_owned());
    let mode_view = ec.mode.as_deref() == Some("view");
    let rights = super::permissions::requested_rights(d.permissions.as_ref(), mode_view);
    let owner = d
        .extra
        .get("info")
        .and_then(|i| i.get("owner"))
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty())
        .map(str::to_owned);
    let identity = d
        .reference_data
        .as_ref()
        .and_then(|r| nonempty(&r.file_key))
        .unwrap_or_else(|| key.clone());
    let lang = ec.lang.clone();
    let region = ec.region.clone().or_else(|| lang.clone());
    Ok(Facts {
        key,
        url,
        callback: nonempty(&ec.callback_url),
        title,
        file_type,
        user_id,
        user_name,
        rights,
        owner,
        identity,
        lang,
        region,
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

/// The access token's claims for `f` with `grant`: `anonymous_id` names a user without an
/// id, `exp` is the expiry (Unix seconds).
pub(crate) fn claims(
    f: &Facts,
    grant: Grant,
    integrator: &str,
    anonymous_id: &str,
    exp: u64,
) -> AccessClaims {
    AccessClaims {
        int: integrator.to_owned(),
        fid: file_id(integrator, &f.identity),
        uid: f.user_id.clone().unwrap_or_else(|| anonymous_id.to_owned()),
        un: f.user_name.clone(),
        anon: f.user_id.is_none(),
        w: grant.saves(),
        g: Some(grant),
        own: f.owner.clone(),
        url: f.url.clone(),
        key: f.key.clone(),
        title: f.title.clone(),
        ft: f.file_type.clone(),
        cb: f.callback.clone(),
        exp,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn grant(f: &Facts) -> Grant {
        match crate::translate::permissions::host_grant(
            &f.rights,
            &[],
            crate::settings::Unenforceable::View,
        ) {
            crate::translate::permissions::Decision::Open { grant, .. } => grant,
            crate::translate::permissions::Decision::Refuse(why) => panic!("{why}"),
        }
    }

    fn payload(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn an_edit_config_and_an_anonymous_view_config() {
        let edit = facts(payload(json!({
            "document": {"fileType": "DOCX", "key": "v1-7f3a", "title": "Report.docx",
                         "url": "https://cloud.example.com/files/42/download",
                         "permissions": {"edit": true, "download": false}, "referenceData": {"fileKey": "42"},
                         "info": {"owner": "u-owner"}},
            "editorConfig": {"callbackUrl": "https://cloud.example.com/files/42/track", "mode": "edit",
                             "user": {"id": 7, "name": "Ada"}, "lang": "de"}
        })))
        .unwrap();
        let view = facts(payload(json!({
            "document": {"key": "k2", "title": "", "url": "https://cloud.example.com/x", "fileType": "xlsx",
                         "permissions": {"edit": true}},
            "editorConfig": {"mode": "view", "region": "en-GB"}
        })))
        .unwrap();
        let out = json!({
            "edit": serde_json::to_value(claims(&edit, grant(&edit), "cloud", "anonymous-00", 1_900_000_000)).unwrap(),
            "view": serde_json::to_value(claims(&view, grant(&view), "cloud", "anonymous-00", 1_900_000_000)).unwrap(),
            "edit_lang_region": [edit.lang, edit.region],
        });
        crate::translate::assert_golden("opening_claims", &out);
    }

    #[test]
    fn what_is_not_an_editor_config() {
        for bad in [
            json!({"payload": {"document": {}}}),
            json!({"url": "x"}),
            json!({"document": {"url": "u", "fileType": "docx"}}),
            json!({"document": {"key": "k", "fileType": "docx"}}),
            json!({"document": {"key": "k", "url": "u", "title": "noext"}}),
            json!({"document": {"key": "k", "url": "u", "fileType": "d.o.c"}}),
            json!({"document": {"key": 5}}),
        ] {
            assert!(
                matches!(
                    facts(payload(bad.clone())),
                    Err(GatewayError::BadRequest(_))
                ),
                "{bad}"
            );
        }
    }

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
