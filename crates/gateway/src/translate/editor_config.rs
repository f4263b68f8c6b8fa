//! Client face: a WOPI host's CheckFileInfo → the Docs API editor config, field by field as
//! ONLYOFFICE Docs' own WOPI mode maps them (docs/integration-client-face.md), plus the
//! operator's per-host profile and the action URL's query (`ui`, `lang`, `rs`, `thm`,
//! `dchat`, `embed`, `mobile`, `formsubmit`).
//!
//! The input is this module's own: [`FileFacts`] and [`HostRights`] (what CheckFileInfo
//! says, filled by the client face) and [`ActionQuery`] (the action URL's query).

use super::permissions::{ActionFlags, HostRights, Mode, Rights, docs_rights};
use crate::settings::Profile;
use docs_api::config::{
    CoEditing, Document, EditorConfig, EditorSettings, Permissions, ReferenceData, User,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// What CheckFileInfo says about the file and the user, apart from rights.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileFacts {
    /// `BaseFileName`.
    pub(crate) base_file_name: String,
    /// The file's extension, lower-case, without the dot (`FileExtension`, else the name's).
    pub(crate) extension: String,
    /// `BreadcrumbDocName`.
    pub(crate) breadcrumb_doc_name: Option<String>,
    /// `BreadcrumbFolderName`.
    pub(crate) breadcrumb_folder_name: Option<String>,
    /// `BreadcrumbFolderUrl`.
    pub(crate) breadcrumb_folder_url: Option<String>,
    /// `BreadcrumbBrandName`.
    pub(crate) breadcrumb_brand_name: Option<String>,
    /// `BreadcrumbBrandUrl`.
    pub(crate) breadcrumb_brand_url: Option<String>,
    /// `UserId`.
    pub(crate) user_id: String,
    /// `UserFriendlyName`.
    pub(crate) user_friendly_name: Option<String>,
    /// `IsAnonymousUser`.
    pub(crate) is_anonymous_user: bool,
    /// `ClosePostMessage`.
    pub(crate) close_post_message: bool,
    /// `CloseUrl`.
    pub(crate) close_url: Option<String>,
}

/// The action URL's query, as far as the config goes.
#[derive(Debug, Clone, Default)]
pub(crate) struct ActionQuery {
    /// `embed=1`.
    pub(crate) embed: bool,
    /// `mobile=1`.
    pub(crate) mobile: bool,
    /// `lang`, else `ui`.
    pub(crate) lang: Option<String>,
    /// `rs`.
    pub(crate) region: Option<String>,
    /// `thm` (1 light, 2 dark).
    pub(crate) theme: Option<String>,
    /// `formsubmit` and `dchat`.
    pub(crate) flags: ActionFlags,
}

impl ActionQuery {
    /// Reads a query whose keys are lower-cased (empty values count as absent).
    pub(crate) fn from_query(query: &HashMap<String, String>) -> Self {
        let q = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
        ActionQuery {
            embed: q("embed") == Some("1"),
            mobile: q("mobile") == Some("1"),
            lang: q("lang").or(q("ui")).map(Into::into),
            region: q("rs").map(Into::into),
            theme: q("thm").map(Into::into),
            flags: ActionFlags {
                form_submit: q("formsubmit") == Some("1"),
                disable_chat: q("dchat") == Some("1"),
            },
        }
    }
}

/// What the config is built from.
#[derive(Debug)]
pub(crate) struct Input<'a> {
    /// The file and the user, from CheckFileInfo.
    pub(crate) file: &'a FileFacts,
    /// The user's rights, from CheckFileInfo.
    pub(crate) rights: &'a HostRights,
    /// The action URL's query.
    pub(crate) action: &'a ActionQuery,
    /// The operator's profile for this host, when one matches.
    pub(crate) profile: Option<&'a Profile>,
    /// WOPISrc.
    pub(crate) wopi_src: &'a str,
    /// The Docs key.
    pub(crate) key: &'a str,
    /// How the editor opens ([`super::permissions::mode`], then the Lock).
    pub(crate) mode: Mode,
    /// `word`, `cell`, `slide`, `pdf`.
    pub(crate) document_type: &'a str,
    /// The base ONLYOFFICE Docs reaches the gateway at (`server.internal_url`).
    pub(crate) base: &'a str,
    /// `scheme://host[:port]` of WOPISrc (the storage instance).
    pub(crate) instance_id: &'a str,
}

/// The editor config for `i` (unsigned; see [`signed`]).
pub(crate) fn editor_config(i: &Input<'_>) -> EditorConfig {
    let view_type = if i.action.embed {
        "embedded"
    } else if i.action.mobile {
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
    let f = i.file;
    let title = f
        .breadcrumb_doc_name
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| f.base_file_name.clone());
    let mut extra = Map::new();
    if let Some(folder) = f
        .breadcrumb_folder_name
        .as_deref()
        .filter(|f| !f.is_empty())
    {
        extra.insert("info".into(), json!({"folder": folder}));
    }
    Document {
        file_type: Some(f.extension.clone()),
        key: Some(i.key.into()),
        title: Some(title),
        url: Some(format!("{}/docs/files/{}", i.base, i.key)),
        permissions: Some(permissions(&rights(i))),
        reference_data: Some(ReferenceData {
            file_key: Some(i.wopi_src.rsplit('/').next().unwrap_or("").into()),
            instance_id: Some(i.instance_id.into()),
            extra: Map::new(),
        }),
        extra,
    }
}

/// The permissions as signed: Docs' derivation ([`docs_rights`]), nothing that changes the
/// document in view mode, and the profile's restrictions (a profile never widens).
pub(crate) fn rights(i: &Input<'_>) -> Rights {
    let mut r = docs_rights(i.rights, i.action.flags);
    if !i.mode.is_edit() {
        r = r.for_viewing();
    }
    if i.profile.and_then(|p| p.chat) == Some(false) {
        r.chat = false;
    }
    r
}

fn permissions(r: &Rights) -> Permissions {
    Permissions {
        edit: Some(r.edit),
        review: Some(r.review),
        comment: Some(r.comment),
        copy: Some(r.copy),
        print: Some(r.print),
        download: Some(r.download),
        chat: Some(r.chat),
        fill_forms: Some(r.fill_forms),
        extra: Map::new(),
    }
}

fn editor_settings(i: &Input<'_>) -> EditorSettings {
    let f = i.file;
    let edit = i.mode.is_edit();
    let mut co_editing = CoEditing {
        mode: Some(if edit { "fast" } else { "strict" }.into()),
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
    let name = if f.is_anonymous_user {
        String::new()
    } else {
        f.user_friendly_name.clone().unwrap_or_default()
    };
    EditorSettings {
        callback_url: Some(format!("{}/docs/callback/{}", i.base, i.key)),
        mode: Some(if edit { "edit" } else { "view" }.into()),
        lang: Some(i.action.lang.as_deref().unwrap_or("en-US").into()),
        region: i.action.region.clone(),
        user: Some(User {
            id: Some(json!(f.user_id)),
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
    let info = i.file;
    let mut c = json!({"about": i.profile.and_then(|p| p.about).unwrap_or(true)});
    let close_visible =
        info.close_post_message || info.close_url.as_deref().is_some_and(|u| !u.is_empty());
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
    match i.action.theme.as_deref() {
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
    if i.action.flags.form_submit {
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
    // The host may restrict a permission the gateway states, never widen it.
    let host_permissions = docs_api_config
        .and_then(|c| c.pointer("/document/permissions"))
        .and_then(Value::as_object);
    if let (Some(host), Some(Value::Object(signed))) =
        (host_permissions, out.pointer_mut("/document/permissions"))
    {
        for (k, v) in host {
            if *v == Value::Bool(false) && signed.get(k).is_some_and(Value::is_boolean) {
                signed.insert(k.clone(), Value::Bool(false));
            }
        }
    }
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

    fn file(name: &str, ext: &str, user: &str) -> FileFacts {
        FileFacts {
            base_file_name: name.into(),
            extension: ext.into(),
            user_id: user.into(),
            ..FileFacts::default()
        }
    }

    fn writer() -> HostRights {
        HostRights {
            user_can_write: true,
            ..HostRights::default()
        }
    }

    fn query(pairs: &[(&str, &str)]) -> ActionQuery {
        let q: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ActionQuery::from_query(&q)
    }

    fn input<'a>(
        file: &'a FileFacts,
        rights: &'a HostRights,
        action: &'a ActionQuery,
        profile: Option<&'a Profile>,
        mode: Mode,
    ) -> Input<'a> {
        Input {
            file,
            rights,
            action,
            profile,
            wopi_src: "https://cloud.example.com/wopi/files/42",
            key: "eKEY",
            mode,
            document_type: "word",
            base: "http://gateway:8080",
            instance_id: "https://cloud.example.com",
        }
    }

    #[test]
    fn edit_with_breadcrumbs_close_and_query() {
        let f = FileFacts {
            user_friendly_name: Some("Ada".into()),
            breadcrumb_doc_name: Some("Q3 Report".into()),
            breadcrumb_folder_name: Some("Reports".into()),
            breadcrumb_folder_url: Some("https://cloud.example.com/f/9".into()),
            breadcrumb_brand_name: Some("Cloud".into()),
            close_post_message: true,
            ..file("Report.docx", "docx", "u1")
        };
        let r = HostRights {
            copy_paste_restrictions: Some("BlockAll".into()),
            disable_print: true,
            ..writer()
        };
        let q = query(&[("ui", "de-DE"), ("rs", "de-AT"), ("thm", "2")]);
        let cfg = editor_config(&input(&f, &r, &q, None, Mode::Edit));
        crate::translate::assert_golden("editor_config_edit", &serde_json::to_value(&cfg).unwrap());
    }

    #[test]
    fn view_anonymous_embedded_with_a_profile_and_a_form() {
        let f = FileFacts {
            user_friendly_name: Some("Guest".into()),
            is_anonymous_user: true,
            ..file("Form.pdf", "pdf", "anon-1")
        };
        let r = HostRights::default();
        let q = query(&[("embed", "1"), ("dchat", "1"), ("formsubmit", "1")]);
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
        let mut inp = input(&f, &r, &q, Some(&profile), Mode::View { forced: true });
        inp.document_type = "pdf";
        let cfg = editor_config(&inp);
        crate::translate::assert_golden(
            "editor_config_view_profile",
            &serde_json::to_value(&cfg).unwrap(),
        );
    }

    /// Every row of the permissions table, through the whole config and its signature: the
    /// signed `editorConfig.mode` and `document.permissions` are the row's.
    #[test]
    fn the_permissions_table_through_the_signed_config() {
        use super::super::permissions::{mode, tests::TABLE, tests::parse};
        let secret = docs_api::Secret::new("0123456789abcdef0123456789abcdef");
        for row in TABLE {
            let r = parse(row);
            let f = file("a.docx", "docx", "u");
            let mut pairs = vec![];
            if r.flags.form_submit {
                pairs.push(("formsubmit", "1"));
            }
            if r.flags.disable_chat {
                pairs.push(("dchat", "1"));
            }
            let q = query(&pairs);
            let m = mode(&r.host, q.flags, r.edit_requested);
            let out = signed(
                &editor_config(&input(&f, &r.host, &q, None, m)),
                None,
                &secret,
            );
            let claims = docs_api::jwt::verify(&secret, out["token"].as_str().unwrap()).unwrap();
            let e = &r.rights;
            assert_eq!(
                claims["document"]["permissions"],
                json!({"edit": e.edit, "review": e.review, "comment": e.comment,
                       "fillForms": e.fill_forms, "copy": e.copy, "print": e.print,
                       "download": e.download, "chat": e.chat}),
                "{row}"
            );
            let expected_mode = if r.mode == Mode::Edit { "edit" } else { "view" };
            assert_eq!(claims["editorConfig"]["mode"], expected_mode, "{row}");
        }
    }

    #[test]
    fn a_profile_and_the_hosts_config_restrict_and_never_widen() {
        let f = file("a.docx", "docx", "u");
        let reader = HostRights::default();
        let q = query(&[]);
        let secret = docs_api::Secret::new("0123456789abcdef0123456789abcdef");
        let widen = json!({"document": {"permissions": {"edit": true, "comment": true, "fillForms": true, "review": true}}});
        let out = signed(
            &editor_config(&input(&f, &reader, &q, None, Mode::View { forced: true })),
            Some(&widen),
            &secret,
        );
        for k in ["edit", "comment", "fillForms", "review"] {
            assert_eq!(out["document"]["permissions"][k], false, "{k}");
        }
        let w = writer();
        let restrict = json!({"document": {"permissions": {"download": false, "print": false, "protect": false}}});
        let profile = Profile {
            chat: Some(false),
            ..Profile::default()
        };
        let out = signed(
            &editor_config(&input(&f, &w, &q, Some(&profile), Mode::Edit)),
            Some(&restrict),
            &secret,
        );
        let p = &out["document"]["permissions"];
        assert_eq!(
            (
                &p["edit"],
                &p["download"],
                &p["print"],
                &p["chat"],
                &p["protect"]
            ),
            (
                &json!(true),
                &json!(false),
                &json!(false),
                &json!(false),
                &json!(false)
            )
        );
        let profile = Profile {
            chat: Some(true),
            ..Profile::default()
        };
        let q = query(&[("dchat", "1")]);
        let cfg = editor_config(&input(&f, &w, &q, Some(&profile), Mode::Edit));
        assert_eq!(
            cfg.document.permissions.unwrap().chat,
            Some(false),
            "a profile's chat = true does not undo dchat=1"
        );
    }

    #[test]
    fn signing_merges_the_hosts_config_under_the_gateways() {
        let f = file("a.docx", "docx", "u");
        let w = writer();
        let q = query(&[]);
        let cfg = editor_config(&input(&f, &w, &q, None, Mode::Edit));
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
