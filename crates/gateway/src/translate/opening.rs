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
    /// `editorConfig.customization` where WOPI has a place for it (breadcrumbs).
    pub(crate) branding: Option<Branding>,
    /// `customization.uiTheme` as a WOPI `THEME_ID` (1 light, 2 dark).
    pub(crate) theme: Option<String>,
    /// The config asks for a close button that calls the page's `onRequestClose`
    /// ([`close_post_message`]).
    pub(crate) close_post_message: bool,
    /// `customization.goback.url` when an absolute http(s) URL: where a host page that is
    /// not framed goes when the client asks to close ([`close_url`]).
    pub(crate) close_url: Option<String>,
}

pub(crate) use super::branding::Branding;

/// Longest breadcrumb text or URL taken from a config (longer ones are dropped).
const MAX_BRANDING_LEN: usize = 2048;

/// `s` when an absolute http(s) URL with a host (no `javascript:`, `data:`, relative or
/// scheme-less links reach a WOPI client's page).
pub(crate) fn web_url(s: &str) -> Option<String> {
    if s.len() > MAX_BRANDING_LEN {
        return None;
    }
    let u = url::Url::parse(s).ok()?;
    (matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()))
        .then(|| s.to_owned())
}

/// Reads the breadcrumbs of `customization` (`None` when it names none).
pub(crate) fn branding(c: Option<&Map<String, Value>>) -> Option<Branding> {
    let c = c?;
    let b = Branding {
        brand_name: text(c, "customer", "name"),
        brand_url: text(c, "customer", "www").and_then(|u| web_url(&u)),
        folder_name: text(c, "goback", "text"),
        // `goback.requestClose` makes the button call the page's onRequestClose instead of
        // opening the URL: no folder link then.
        folder_url: if flag(c, "goback", "requestClose") {
            None
        } else {
            close_url(Some(c))
        },
    };
    (b != Branding::default()).then_some(b)
}

/// `customization.{obj}.{field}` when a non-empty string of at most [`MAX_BRANDING_LEN`]
/// bytes, trimmed.
fn text(c: &Map<String, Value>, obj: &str, field: &str) -> Option<String> {
    c.get(obj)
        .and_then(|o| o.get(field))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= MAX_BRANDING_LEN)
        .map(str::to_owned)
}

/// Whether `customization.{obj}.{field}` is `true` (a JSON boolean: `"true"` is not).
fn flag(c: &Map<String, Value>, obj: &str, field: &str) -> bool {
    c.get(obj)
        .and_then(|o| o.get(field))
        .and_then(Value::as_bool)
        == Some(true)
}

/// Whether the config asks for a close button: `customization.close.visible` (Docs API 8.x)
/// or the older `goback.requestClose`. In the Docs API either button calls the page's
/// `onRequestClose`; its WOPI counterpart is `ClosePostMessage`, the client's `UI_Close`
/// message to the host page.
pub(crate) fn close_post_message(c: Option<&Map<String, Value>>) -> bool {
    c.is_some_and(|c| flag(c, "close", "visible") || flag(c, "goback", "requestClose"))
}

/// `customization.goback.url` when an absolute http(s) URL ([`web_url`]): the folder of
/// the breadcrumbs, and where a host page that is not framed goes on close.
pub(crate) fn close_url(c: Option<&Map<String, Value>>) -> Option<String> {
    text(c?, "goback", "url").and_then(|u| web_url(&u))
}

/// `customization.uiTheme` → WOPI's `THEME_ID`: 1 for ONLYOFFICE's light themes, 2 for the
/// dark ones; none for the system theme or an unknown one.
pub(crate) fn theme_id(c: Option<&Map<String, Value>>) -> Option<String> {
    let t = c?.get("uiTheme")?.as_str()?;
    match t {
        "theme-light" | "theme-classic-light" | "default-light" | "theme-white" => Some("1"),
        "theme-dark" | "theme-contrast-dark" | "default-dark" | "theme-night" => Some("2"),
        _ => None,
    }
    .map(str::to_owned)
}

/// The rest of an integrator's editor config for a WOPI client that reads the Docs API
/// itself (ONLYOFFICE Docs' host-page field `docs_api_config`): `editorConfig`'s
/// `coEditing`, `customization`, `plugins`, `templates` and `recent`, nothing that grants
/// (no `document.permissions`, `mode`, `user`, `callbackUrl`). `None` when it has none.
pub(crate) fn docs_api_config(config: &Map<String, Value>) -> Option<Value> {
    const PASSED: [&str; 5] = [
        "coEditing",
        "customization",
        "plugins",
        "templates",
        "recent",
    ];
    let ec = config.get("editorConfig")?.as_object()?;
    let picked: Map<String, Value> = PASSED
        .iter()
        .filter_map(|k| ec.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    (!picked.is_empty()).then(|| serde_json::json!({ "editorConfig": picked }))
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
    let branding = branding(ec.customization.as_ref());
    let theme = theme_id(ec.customization.as_ref());
    let close_post_message = close_post_message(ec.customization.as_ref());
    let close_url = close_url(ec.customization.as_ref());
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
        branding,
        theme,
        close_post_message,
        close_url,
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
        br: f.branding.clone(),
        ui: f.lang.clone(),
        dc: f.region.clone(),
        thm: f.theme.clone(),
        cpm: f.close_post_message,
        // The breadcrumbs' folder is that URL already, unless `goback.requestClose` kept it
        // out of them (see `AccessClaims::close_url`).
        cu: f
            .close_url
            .clone()
            .filter(|u| f.branding.as_ref().and_then(|b| b.folder_url.as_ref()) != Some(u)),
        // The host face marks the sessions of its own host page (`/open`).
        hp: false,
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
    fn customization_gives_breadcrumbs_with_web_urls_only_and_a_theme_id() {
        let c = |v: Value| v.as_object().unwrap().clone();
        let full = c(json!({
            "customer": {"name": " Example Cloud ", "www": "https://cloud.example.com", "mail": "x@y"},
            "goback": {"text": "Reports", "url": "http://cloud.example.com/folders/7", "blank": true},
            "close": {"visible": true, "text": "Close"},
            "uiTheme": "theme-contrast-dark"
        }));
        assert_eq!(
            branding(Some(&full)),
            Some(Branding {
                brand_name: Some("Example Cloud".into()),
                brand_url: Some("https://cloud.example.com".into()),
                folder_name: Some("Reports".into()),
                folder_url: Some("http://cloud.example.com/folders/7".into()),
            })
        );
        assert_eq!(theme_id(Some(&full)).as_deref(), Some("2"));
        for (theme, id) in [
            ("theme-light", Some("1")),
            ("theme-classic-light", Some("1")),
            ("default-light", Some("1")),
            ("default-dark", Some("2")),
            ("theme-dark", Some("2")),
            ("theme-system", None),
            ("mine", None),
        ] {
            assert_eq!(
                theme_id(Some(&c(json!({"uiTheme": theme})))).as_deref(),
                id,
                "{theme}"
            );
        }
        // Links that are no absolute http(s) URL are dropped, the names stay.
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "cloud.example.com",
            "/folders/7",
            "//cloud.example.com/x",
            "ftp://cloud.example.com/",
            "https://",
            "file:///etc/passwd",
        ] {
            let b = branding(Some(&c(json!({
                "customer": {"name": "N", "www": bad}, "goback": {"text": "T", "url": bad}
            }))))
            .unwrap();
            assert_eq!((b.brand_url, b.folder_url), (None, None), "{bad}");
            assert_eq!(
                (b.brand_name.as_deref(), b.folder_name.as_deref()),
                (Some("N"), Some("T"))
            );
        }
        // goback.requestClose: the button closes the editor, it opens no folder.
        let close =
            c(json!({"goback": {"url": "https://c/f", "text": "Back", "requestClose": true}}));
        assert_eq!(branding(Some(&close)).unwrap().folder_url, None);
        // Nothing WOPI has a place for: none (and no claim in the token).
        assert_eq!(
            branding(Some(&c(json!({"about": false, "customer": {"name": ""}})))),
            None
        );
        assert_eq!(branding(None), None);
        let f = facts(payload(json!({
            "document": {"key": "k", "url": "https://s/f", "fileType": "docx"},
            "editorConfig": {"customization": {"customer": {"www": "https://b"}, "uiTheme": "theme-light"}}
        })))
        .unwrap();
        let claims = claims(&f, grant(&f), "cloud", "anonymous-00", 1);
        assert_eq!(claims.br.unwrap().brand_url.as_deref(), Some("https://b"));
        assert_eq!(claims.thm.as_deref(), Some("1"));
    }

    #[test]
    fn a_close_button_of_the_config_is_a_close_post_message() {
        let c = |v: Value| v.as_object().unwrap().clone();
        for (customization, asked) in [
            (json!({"close": {"visible": true, "text": "Close"}}), true),
            (json!({"goback": {"requestClose": true}}), true),
            (
                json!({"goback": {"url": "https://c/f", "requestClose": true}}),
                true,
            ),
            (
                json!({"close": {"visible": false}, "goback": {"requestClose": true}}),
                true,
            ),
            (json!({"close": {"visible": false}}), false),
            (json!({"close": {"visible": "true"}}), false),
            (json!({"close": true}), false),
            (
                json!({"goback": {"requestClose": false, "url": "https://c/f"}}),
                false,
            ),
            (json!({"goback": {"requestClose": 1}}), false),
            (json!({}), false),
        ] {
            assert_eq!(
                close_post_message(Some(&c(customization.clone()))),
                asked,
                "{customization}"
            );
        }
        assert!(!close_post_message(None));
        // The close target: goback.url when an http(s) URL, whether or not requestClose
        // keeps it out of the breadcrumbs.
        assert_eq!(
            close_url(Some(&c(
                json!({"goback": {"url": " https://c/f ", "requestClose": true}})
            )))
            .as_deref(),
            Some("https://c/f")
        );
        for bad in ["javascript:history.back()", "/f", "", "data:,x"] {
            assert_eq!(close_url(Some(&c(json!({"goback": {"url": bad}})))), None);
        }
        assert_eq!(close_url(None), None);
        // In the token: the flag, and the URL only where the breadcrumbs lack it.
        let open = |customization: Value| {
            let f = facts(payload(json!({
                "document": {"key": "k", "url": "https://s/f", "fileType": "docx"},
                "editorConfig": {"customization": customization}
            })))
            .unwrap();
            claims(&f, grant(&f), "cloud", "anonymous-00", 1)
        };
        let folder = open(json!({"goback": {"url": "https://c/f"}}));
        assert!(!folder.cpm);
        assert_eq!(
            (folder.cu.as_deref(), folder.close_url()),
            (None, Some("https://c/f"))
        );
        let closing = open(json!({"goback": {"url": "https://c/f", "requestClose": true}}));
        assert!(closing.cpm);
        assert_eq!(closing.br, None);
        assert_eq!(closing.cu.as_deref(), Some("https://c/f"));
        assert_eq!(closing.close_url(), Some("https://c/f"));
        let close = open(json!({"close": {"visible": true}}));
        assert!(close.cpm);
        assert_eq!(close.close_url(), None);
        assert!(!close.hp, "the host face marks its own page's sessions");
        let plain = serde_json::to_value(open(json!({}))).unwrap();
        for k in ["cpm", "cu", "hp"] {
            assert!(plain.get(k).is_none(), "no claim when unset: {plain}");
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
