//! Client face: a WOPI host's CheckFileInfo → the Docs API editor config, field by field as
//! ONLYOFFICE Docs' own WOPI mode maps them (docs/integration-client-face.md), plus the
//! operator's per-host profile and the action URL's query (`ui`, `rs`, `thm`, `dchat`,
//! `embed`, `mobile`, `formsubmit`).

use crate::settings::Profile;
use docs_api::config::{
    CoEditing, Document, EditorConfig, EditorSettings, Permissions, ReferenceData, User,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use wopi::CheckFileInfo;

/// What the config is built from.
#[derive(Debug)]
pub(crate) struct Input<'a> {
    /// The host's CheckFileInfo.
    pub(crate) info: &'a CheckFileInfo,
    /// The action URL's query, keys lower-cased.
    pub(crate) query: &'a HashMap<String, String>,
    /// The operator's profile for this host, when one matches.
    pub(crate) profile: Option<&'a Profile>,
    /// WOPISrc.
    pub(crate) wopi_src: &'a str,
    /// The Docs key.
    pub(crate) key: &'a str,
    /// Edit (else view).
    pub(crate) edit: bool,
    /// `word`, `cell`, `slide`, `pdf`.
    pub(crate) document_type: &'a str,
    /// The base ONLYOFFICE Docs reaches the gateway at (`server.internal_url`).
    pub(crate) base: &'a str,
    /// `scheme://host[:port]` of WOPISrc (the storage instance).
    pub(crate) instance_id: &'a str,
}

fn flag(v: Option<bool>) -> bool {
    CheckFileInfo::flag(v)
}

/// The editor config for `i` (unsigned; see [`signed`]).
pub(crate) fn editor_config(i: &Input<'_>) -> EditorConfig {
    let q = |k: &str| i.query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let view_type = if q("embed") == Some("1") {
        "embedded"
    } else if q("mobile") == Some("1") {
        "mobile"
    } else {
        "desktop"
    };
    EditorConfig {
        view_type: Some(view_type.into()),
        document_type: Some(i.document_type.into()),
        document: document(i),
        editor_config: editor_settings(i),
        token: None,
        extra: Map::new(),
    }
}

fn document(i: &Input<'_>) -> Document {
    let info = i.info;
    let title = info
        .breadcrumb_doc_name
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| info.base_file_name.clone());
    let mut extra = Map::new();
    if let Some(folder) = info
        .breadcrumb_folder_name
        .as_deref()
        .filter(|f| !f.is_empty())
    {
        extra.insert("info".into(), json!({"folder": folder}));
    }
    Document {
        file_type: Some(info.extension()),
        key: Some(i.key.into()),
        title: Some(title),
        url: Some(format!("{}/docs/files/{}", i.base, i.key)),
        permissions: Some(permissions(i)),
        reference_data: Some(ReferenceData {
            file_key: Some(i.wopi_src.rsplit('/').next().unwrap_or("").into()),
            instance_id: Some(i.instance_id.into()),
            extra: Map::new(),
        }),
        extra,
    }
}

fn permissions(i: &Input<'_>) -> Permissions {
    let info = i.info;
    let q = |k: &str| i.query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let copy = !matches!(
        info.copy_paste_restrictions.as_deref(),
        Some("CurrentDocumentOnly" | "BlockAll")
    );
    let review =
        i.edit && info.supports_reviewing != Some(false) && info.user_can_review != Some(false);
    let chat = q("dchat") != Some("1") && i.profile.and_then(|p| p.chat) != Some(false);
    Permissions {
        edit: Some(i.edit),
        review: Some(review),
        comment: Some(i.edit || flag(info.user_can_only_comment)),
        copy: Some(copy),
        print: Some(!flag(info.disable_print) && !flag(info.hide_print_option)),
        download: Some(true),
        chat: Some(chat),
        fill_forms: Some(i.edit),
        extra: Map::new(),
    }
}

fn editor_settings(i: &Input<'_>) -> EditorSettings {
    let info = i.info;
    let q = |k: &str| i.query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut co_editing = CoEditing {
        mode: Some(if i.edit { "fast" } else { "strict" }.into()),
        change: Some(false),
    };
    let mut plugins = None;
    let mut templates = None;
    if let Some(p) = i.profile {
        if let Some(m) = &p.co_editing_mode {
            co_editing.mode = Some(m.clone());
        }
        if let Some(ch) = p.co_editing_change {
            co_editing.change = Some(ch);
        }
        if !p.plugins_autostart.is_empty() || !p.plugins_data.is_empty() {
            plugins =
                Some(json!({"autostart": p.plugins_autostart, "pluginsData": p.plugins_data}));
        }
        if !p.templates.is_empty() {
            templates = Some(p.templates.clone());
        }
    }
    let name = if flag(info.is_anonymous_user) {
        String::new()
    } else {
        info.user_friendly_name.clone().unwrap_or_default()
    };
    EditorSettings {
        callback_url: Some(format!("{}/docs/callback/{}", i.base, i.key)),
        mode: Some(if i.edit { "edit" } else { "view" }.into()),
        lang: Some(q("lang").or(q("ui")).unwrap_or("en-US").into()),
        region: q("rs").map(Into::into),
        user: Some(User {
            id: Some(json!(info.user_id)),
            name: Some(name),
            extra: Map::new(),
        }),
        co_editing: Some(co_editing),
        customization: Some(customization(i)),
        plugins,
        templates,
        extra: Map::new(),
    }
}

fn customization(i: &Input<'_>) -> Map<String, Value> {
    let info = i.info;
    let q = |k: &str| i.query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut c = json!({"about": i.profile.and_then(|p| p.about).unwrap_or(true)});
    let close_visible =
        flag(info.close_post_message) || info.close_url.as_deref().is_some_and(|u| !u.is_empty());
    if close_visible {
        c["close"] = json!({"visible": true});
    }
    if let Some(u) = info
        .breadcrumb_folder_url
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        c["goback"] = json!({"url": u});
    }
    let mut customer = Map::new();
    if let Some(n) = i
        .profile
        .and_then(|p| p.customer_name.clone())
        .or_else(|| info.breadcrumb_brand_name.clone())
    {
        customer.insert("name".into(), json!(n));
    }
    if let Some(w) = i
        .profile
        .and_then(|p| p.customer_www.clone())
        .or_else(|| info.breadcrumb_brand_url.clone())
    {
        customer.insert("www".into(), json!(w));
    }
    if !customer.is_empty() {
        c["customer"] = Value::Object(customer);
    }
    match q("thm") {
        Some("1") => c["uiTheme"] = json!("default-light"),
        Some("2") => c["uiTheme"] = json!("default-dark"),
        _ => {}
    }
    if let Some(p) = i.profile {
        if let Some(t) = &p.ui_theme {
            c["uiTheme"] = json!(t);
        }
        if let Some(b) = p.compact_toolbar {
            c["compactToolbar"] = json!(b);
        }
        if let Some(b) = p.forcesave {
            c["forcesave"] = json!(b);
        }
        let mut logo = Map::new();
        if let Some(img) = &p.logo_image {
            logo.insert("image".into(), json!(img));
        }
        if let Some(u) = &p.logo_url {
            logo.insert("url".into(), json!(u));
        }
        if !logo.is_empty() {
            c["logo"] = Value::Object(logo);
        }
        super::deep_merge(&mut c, &Value::Object(p.customization.clone()));
    }
    // The Pdf app's `formsubmit` action: Docs shows its Submit button, and the submitted form
    // comes back as a status 6 callback of forcesavetype 3 (saved as a new file).
    if q("formsubmit") == Some("1") {
        c["submitForm"] = json!(true);
    }
    match c {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The config as `DocsAPI.DocEditor` gets it: defaults, under them nothing, over them the
/// host's `docs_api_config` (deep-merged), over that the gateway's own fields; signed.
pub(crate) fn signed(
    config: &EditorConfig,
    docs_api_config: Option<&Value>,
    secret: &docs_api::Secret,
) -> Value {
    let mut out = json!({"width": "100%", "height": "100%", "editorConfig": {"customization": {"about": true}, "coEditing": {"change": false}}});
    if let Some(extra) = docs_api_config {
        super::deep_merge(&mut out, extra);
    }
    super::deep_merge(
        &mut out,
        &serde_json::to_value(config).unwrap_or(Value::Null),
    );
    if let Value::Object(m) = &mut out {
        m.remove("token");
        let token = docs_api::jwt::sign(secret, m);
        m.insert("token".into(), json!(token));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn info(json: Value) -> CheckFileInfo {
        serde_json::from_value(json).unwrap()
    }

    fn input<'a>(
        info: &'a CheckFileInfo,
        query: &'a HashMap<String, String>,
        profile: Option<&'a Profile>,
        edit: bool,
    ) -> Input<'a> {
        Input {
            info,
            query,
            profile,
            wopi_src: "https://cloud.example.com/wopi/files/42",
            key: "eKEY",
            edit,
            document_type: "word",
            base: "http://gateway:8080",
            instance_id: "https://cloud.example.com",
        }
    }

    #[test]
    fn edit_with_breadcrumbs_close_and_query() {
        let i = info(json!({
            "BaseFileName": "Report.docx", "OwnerId": "o", "Size": 5, "UserId": "u1",
            "Version": "7", "UserFriendlyName": "Ada", "UserCanWrite": true,
            "BreadcrumbDocName": "Q3 Report", "BreadcrumbFolderName": "Reports",
            "BreadcrumbFolderUrl": "https://cloud.example.com/f/9", "BreadcrumbBrandName": "Cloud",
            "ClosePostMessage": true, "CopyPasteRestrictions": "BlockAll", "DisablePrint": true
        }));
        let q: HashMap<String, String> = [("ui", "de-DE"), ("rs", "de-AT"), ("thm", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let cfg = editor_config(&input(&i, &q, None, true));
        crate::translate::assert_golden("editor_config_edit", &serde_json::to_value(&cfg).unwrap());
    }

    #[test]
    fn view_anonymous_embedded_with_a_profile_and_a_form() {
        let i = info(json!({
            "BaseFileName": "Form.pdf", "OwnerId": "o", "Size": 5, "UserId": "anon-1",
            "Version": "1", "UserFriendlyName": "Guest", "IsAnonymousUser": true
        }));
        let q: HashMap<String, String> = [("embed", "1"), ("dchat", "1"), ("formsubmit", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let profile = Profile {
            match_origin: "https://cloud.example.com".into(),
            co_editing_mode: Some("strict".into()),
            co_editing_change: Some(true),
            ui_theme: Some("theme-dark".into()),
            customer_name: Some("Example Cloud".into()),
            logo_image: Some("https://cloud.example.com/logo.png".into()),
            plugins_autostart: vec!["asc.{0616AE85-5DBE-4B6B-A0A9-455C4F1503AD}".into()],
            templates: vec![json!({"title": "Blank", "url": "https://cloud.example.com/t"})],
            customization: json!({"comments": false}).as_object().unwrap().clone(),
            ..Profile::default()
        };
        let mut inp = input(&i, &q, Some(&profile), false);
        inp.document_type = "pdf";
        let cfg = editor_config(&inp);
        crate::translate::assert_golden(
            "editor_config_view_profile",
            &serde_json::to_value(&cfg).unwrap(),
        );
    }

    #[test]
    fn signing_merges_the_hosts_config_under_the_gateways() {
        let i = info(
            json!({"BaseFileName": "a.docx", "OwnerId": "o", "Size": 1, "UserId": "u", "Version": "1"}),
        );
        let q = HashMap::new();
        let cfg = editor_config(&input(&i, &q, None, true));
        let secret = docs_api::Secret::new("0123456789abcdef0123456789abcdef");
        let host = json!({"editorConfig": {"mode": "view", "customization": {"hideRightMenu": true}}, "token": "x"});
        let out = signed(&cfg, Some(&host), &secret);
        assert_eq!(
            out["editorConfig"]["mode"], "edit",
            "the gateway's fields win"
        );
        assert_eq!(out["editorConfig"]["customization"]["hideRightMenu"], true);
        assert_eq!(out["width"], "100%");
        let claims = docs_api::jwt::verify(&secret, out["token"].as_str().unwrap()).unwrap();
        assert_eq!(claims["document"]["key"], "eKEY");
        assert!(!claims.contains_key("token"));
    }
}
