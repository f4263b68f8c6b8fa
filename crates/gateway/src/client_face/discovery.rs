//! `/hosting/discovery` as ONLYOFFICE Docs publishes its own (`/hosting/discovery`), pointing at the gateway.

use crate::client_face::ClientCtx;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use wopi::discovery::{Action, App, Discovery, NetZone, ProofKeyAttrs, render};

/// The placeholder tail of every urlsrc.
pub(crate) const PLACEHOLDERS: &str = "<rs=DC_LLCC&><dchat=DISABLE_CHAT&><embed=EMBEDDED&><fs=FULLSCREEN&><hid=HOST_SESSION_ID&><rec=RECORDING&><sc=SESSION_CONTEXT&><thm=THEME_ID&><ui=UI_LLCC&><wopisrc=WOPI_SOURCE&>&";

struct AppSpec {
    name: &'static str,
    doc_type: &'static str,
    editor: &'static str,
    /// What view-only formats convert to for editing (convert-and-edit); none for Pdf.
    convert_to: Option<&'static str>,
    view: &'static [&'static str],
    edit: &'static [&'static str],
    editnew: &'static [&'static str],
}

const APPS: &[AppSpec] = &[
    AppSpec {
        name: "Word",
        doc_type: "word",
        editor: "documenteditor",
        convert_to: Some("docx"),
        view: &[
            "doc", "dot", "fodt", "gdoc", "hml", "htm", "hwp", "hwpx", "md", "mht", "mhtml",
            "pages", "stw", "sxw", "wps", "wpt", "xml",
        ],
        edit: &[
            "docm", "docx", "dotm", "dotx", "epub", "fb2", "html", "odt", "ott", "rtf", "txt",
        ],
        editnew: &["docx"],
    },
    AppSpec {
        name: "Excel",
        doc_type: "cell",
        editor: "spreadsheeteditor",
        convert_to: Some("xlsx"),
        view: &[
            "et", "ett", "fods", "gsheet", "numbers", "sxc", "xls", "xlt",
        ],
        edit: &[
            "csv", "ods", "ots", "tsv", "xlsb", "xlsm", "xlsx", "xltm", "xltx",
        ],
        editnew: &["xlsx"],
    },
    AppSpec {
        name: "PowerPoint",
        doc_type: "slide",
        editor: "presentationeditor",
        convert_to: Some("pptx"),
        view: &[
            "dps", "dpt", "fodp", "gslides", "key", "odg", "pot", "pps", "ppt", "sxi",
        ],
        edit: &["odp", "otp", "potm", "potx", "ppsm", "ppsx", "pptm", "pptx"],
        editnew: &["pptx"],
    },
    AppSpec {
        name: "Pdf",
        doc_type: "pdf",
        editor: "pdfeditor",
        convert_to: None,
        view: &["djvu", "docxf", "oform", "oxps", "xps"],
        edit: &["pdf"],
        editnew: &["pdf"],
    },
];

/// The format a view-only extension is converted to for editing (convert-and-edit).
pub(crate) fn converts_to(ext: &str) -> Option<&'static str> {
    APPS.iter()
        .find(|a| a.view.contains(&ext))
        .and_then(|a| a.convert_to)
}

/// Extensions that are forms (the `formsubmit` action of the Pdf app).
const FORMS: &[&str] = &["pdf"];

fn action(name: &str, ext: &str, urlsrc: String, default: bool, requires: Option<&str>) -> Action {
    Action {
        name: name.into(),
        ext: ext.into(),
        urlsrc,
        default,
        requires: requires.map(Into::into),
        ..Default::default()
    }
}

/// Builds the discovery document for a base URL.
pub(crate) fn build(state: &ClientCtx) -> Discovery {
    let base = state.settings().server.public_url.base();
    let docs_base = state.settings().docs_public_base();
    let t = format!("{base}/hosting/wopi");
    let mut apps = Vec::new();
    for spec in APPS {
        let view = format!("{t}/{}/view?{PLACEHOLDERS}", spec.doc_type);
        let embed = format!("{t}/{}/view?embed=1&{PLACEHOLDERS}", spec.doc_type);
        let mobile = format!("{t}/{}/view?mobile=1&{PLACEHOLDERS}", spec.doc_type);
        let edit = format!("{t}/{}/edit?{PLACEHOLDERS}", spec.doc_type);
        let mobile_edit = format!("{t}/{}/edit?mobile=1&{PLACEHOLDERS}", spec.doc_type);
        let mut actions = Vec::new();
        let convert_actions = state.settings().client_face.convert_actions;
        for ext in spec.view {
            actions.push(action("view", ext, view.clone(), true, None));
            actions.push(action("embedview", ext, embed.clone(), false, None));
            actions.push(action("mobileView", ext, mobile.clone(), false, None));
            if let (true, Some(target)) = (convert_actions, spec.convert_to) {
                actions.push(Action {
                    targetext: Some(target.into()),
                    ..action(
                        "convert",
                        ext,
                        format!("{t}/convert-and-edit/{ext}/{target}?{PLACEHOLDERS}"),
                        false,
                        Some("update"),
                    )
                });
            }
        }
        for ext in spec.edit {
            actions.push(action("view", ext, view.clone(), false, None));
            actions.push(action("embedview", ext, embed.clone(), false, None));
            actions.push(action("mobileView", ext, mobile.clone(), false, None));
            actions.push(action(
                "edit",
                ext,
                edit.clone(),
                true,
                Some("locks,update"),
            ));
            if FORMS.contains(ext) {
                actions.push(action(
                    "formsubmit",
                    ext,
                    format!("{t}/{}/edit?formsubmit=1&{PLACEHOLDERS}", spec.doc_type),
                    false,
                    Some("locks,update"),
                ));
            }
            actions.push(action(
                "mobileEdit",
                ext,
                mobile_edit.clone(),
                false,
                Some("locks,update"),
            ));
            if spec.editnew.contains(ext) {
                actions.push(action(
                    "editnew",
                    ext,
                    edit.clone(),
                    false,
                    Some("locks,update"),
                ));
            }
        }
        apps.push(App {
            name: spec.name.into(),
            fav_icon_url: Some(format!(
                "{docs_base}/web-apps/apps/{}/main/resources/img/favicon.ico",
                spec.editor
            )),
            check_license: false,
            actions,
        });
    }
    let cf = state.face.keys();
    Discovery {
        net_zones: vec![NetZone {
            name: format!("external-{}", state.settings().server.public_url.scheme),
            apps,
        }],
        // Without an old key the current one is published as old too, as ONLYOFFICE Docs
        // does: hosts that require both keys (and both proof headers) accept the gateway.
        proof_key: Some(ProofKeyAttrs::from_keys(
            cf.current.public_key(),
            Some(cf.old.as_deref().unwrap_or(&cf.current).public_key()),
        )),
    }
}

/// `GET /hosting/discovery`
pub(crate) async fn discovery(State(state): State<ClientCtx>) -> Response {
    let xml = render(&build(&state));
    (
        [(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

/// `GET /hosting/capabilities`
pub(crate) async fn capabilities() -> Response {
    axum::Json(serde_json::json!({
        "convert-to": {"available": true, "endpoint": "/cool/convert-to"},
        "hasMobileSupport": true,
        "hasProxyPrefix": false,
        "hasTemplateSaveAs": false,
        "hasTemplateSource": true,
        "productName": "wopi-gateway",
        "productVersion": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}
