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

/// The MIME types of each supported extension, as WOPI hosts that look actions up by MIME
/// type (Nextcloud's richdocuments, Collabora-style connectors) name them.
const MIME_TYPES: &[(&str, &[&str])] = &[
    // Word
    ("doc", &["application/msword"]),
    ("dot", &["application/msword"]),
    (
        "fodt",
        &["application/vnd.oasis.opendocument.text-flat-xml"],
    ),
    ("htm", &["text/html"]),
    ("html", &["text/html"]),
    ("hwp", &["application/x-hwp"]),
    ("hwpx", &["application/x-hwpx"]),
    ("md", &["text/markdown"]),
    ("mht", &["message/rfc822"]),
    ("mhtml", &["message/rfc822"]),
    (
        "pages",
        &[
            "application/vnd.apple.pages",
            "application/x-iwork-pages-sffpages",
        ],
    ),
    ("stw", &["application/vnd.sun.xml.writer.template"]),
    ("sxw", &["application/vnd.sun.xml.writer"]),
    ("wps", &["application/vnd.ms-works"]),
    ("xml", &["application/xml", "text/xml"]),
    (
        "docm",
        &[
            "application/vnd.ms-word.document.macroEnabled.12",
            "application/vnd.ms-word.document.macroenabled.12",
        ],
    ),
    (
        "docx",
        &["application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
    ),
    (
        "dotm",
        &[
            "application/vnd.ms-word.template.macroEnabled.12",
            "application/vnd.ms-word.template.macroenabled.12",
        ],
    ),
    (
        "dotx",
        &["application/vnd.openxmlformats-officedocument.wordprocessingml.template"],
    ),
    ("epub", &["application/epub+zip"]),
    ("fb2", &["application/x-fictionbook+xml"]),
    ("odt", &["application/vnd.oasis.opendocument.text"]),
    ("ott", &["application/vnd.oasis.opendocument.text-template"]),
    ("rtf", &["application/rtf", "text/rtf"]),
    ("txt", &["text/plain"]),
    // Excel
    (
        "fods",
        &["application/vnd.oasis.opendocument.spreadsheet-flat-xml"],
    ),
    (
        "numbers",
        &[
            "application/vnd.apple.numbers",
            "application/x-iwork-numbers-sffnumbers",
        ],
    ),
    ("sxc", &["application/vnd.sun.xml.calc"]),
    ("xls", &["application/vnd.ms-excel"]),
    ("xlt", &["application/vnd.ms-excel"]),
    ("csv", &["text/csv"]),
    ("ods", &["application/vnd.oasis.opendocument.spreadsheet"]),
    (
        "ots",
        &["application/vnd.oasis.opendocument.spreadsheet-template"],
    ),
    ("tsv", &["text/tab-separated-values"]),
    (
        "xlsb",
        &[
            "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
            "application/vnd.ms-excel.sheet.binary.macroenabled.12",
        ],
    ),
    (
        "xlsm",
        &[
            "application/vnd.ms-excel.sheet.macroEnabled.12",
            "application/vnd.ms-excel.sheet.macroenabled.12",
        ],
    ),
    (
        "xlsx",
        &["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
    ),
    (
        "xltm",
        &[
            "application/vnd.ms-excel.template.macroEnabled.12",
            "application/vnd.ms-excel.template.macroenabled.12",
        ],
    ),
    (
        "xltx",
        &["application/vnd.openxmlformats-officedocument.spreadsheetml.template"],
    ),
    // PowerPoint
    (
        "fodp",
        &["application/vnd.oasis.opendocument.presentation-flat-xml"],
    ),
    (
        "key",
        &[
            "application/vnd.apple.keynote",
            "application/x-iwork-keynote-sffkey",
        ],
    ),
    ("odg", &["application/vnd.oasis.opendocument.graphics"]),
    ("pot", &["application/vnd.ms-powerpoint"]),
    ("pps", &["application/vnd.ms-powerpoint"]),
    ("ppt", &["application/vnd.ms-powerpoint"]),
    ("sxi", &["application/vnd.sun.xml.impress"]),
    ("odp", &["application/vnd.oasis.opendocument.presentation"]),
    (
        "otp",
        &["application/vnd.oasis.opendocument.presentation-template"],
    ),
    (
        "potm",
        &[
            "application/vnd.ms-powerpoint.template.macroEnabled.12",
            "application/vnd.ms-powerpoint.template.macroenabled.12",
        ],
    ),
    (
        "potx",
        &["application/vnd.openxmlformats-officedocument.presentationml.template"],
    ),
    (
        "ppsm",
        &[
            "application/vnd.ms-powerpoint.slideshow.macroEnabled.12",
            "application/vnd.ms-powerpoint.slideshow.macroenabled.12",
        ],
    ),
    (
        "ppsx",
        &["application/vnd.openxmlformats-officedocument.presentationml.slideshow"],
    ),
    (
        "pptm",
        &[
            "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
            "application/vnd.ms-powerpoint.presentation.macroenabled.12",
        ],
    ),
    (
        "pptx",
        &["application/vnd.openxmlformats-officedocument.presentationml.presentation"],
    ),
    // Pdf
    ("djvu", &["image/vnd.djvu"]),
    ("oxps", &["application/oxps"]),
    ("xps", &["application/vnd.ms-xpsdocument"]),
    ("pdf", &["application/pdf"]),
];

/// The MIME types of `ext` (none for formats without a registered one: gdoc, et, …).
fn mime_types(ext: &str) -> &'static [&'static str] {
    MIME_TYPES
        .iter()
        .find(|(e, _)| *e == ext)
        .map_or(&[], |(_, m)| m)
}

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
    // One app per MIME type, after the named apps, with the actions of its format.
    let mut by_mime: std::collections::BTreeMap<&str, Vec<Action>> =
        std::collections::BTreeMap::new();
    for spec in APPS {
        let view = format!("{t}/{}/view?{PLACEHOLDERS}", spec.doc_type);
        let embed = format!("{t}/{}/view?embed=1&{PLACEHOLDERS}", spec.doc_type);
        let mobile = format!("{t}/{}/view?mobile=1&{PLACEHOLDERS}", spec.doc_type);
        let edit = format!("{t}/{}/edit?{PLACEHOLDERS}", spec.doc_type);
        let mobile_edit = format!("{t}/{}/edit?mobile=1&{PLACEHOLDERS}", spec.doc_type);
        let mut actions = Vec::new();
        let convert_actions = state.settings().client_face.convert_actions;
        for ext in spec.view {
            let mut of_ext = vec![
                action("view", ext, view.clone(), true, None),
                action("embedview", ext, embed.clone(), false, None),
                action("mobileView", ext, mobile.clone(), false, None),
            ];
            if let (true, Some(target)) = (convert_actions, spec.convert_to) {
                of_ext.push(Action {
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
            for mime in mime_types(ext).iter().copied() {
                // View first: the first action of a view-only format's MIME app.
                by_mime.entry(mime).or_insert_with(|| of_ext.clone());
            }
            actions.extend(of_ext);
        }
        for ext in spec.edit {
            let views = [
                action("view", ext, view.clone(), false, None),
                action("embedview", ext, embed.clone(), false, None),
                action("mobileView", ext, mobile.clone(), false, None),
            ];
            let mut edits = vec![action(
                "edit",
                ext,
                edit.clone(),
                true,
                Some("locks,update"),
            )];
            if FORMS.contains(ext) {
                edits.push(action(
                    "formsubmit",
                    ext,
                    format!("{t}/{}/edit?formsubmit=1&{PLACEHOLDERS}", spec.doc_type),
                    false,
                    Some("locks,update"),
                ));
            }
            edits.push(action(
                "mobileEdit",
                ext,
                mobile_edit.clone(),
                false,
                Some("locks,update"),
            ));
            if spec.editnew.contains(ext) {
                edits.push(action(
                    "editnew",
                    ext,
                    edit.clone(),
                    false,
                    Some("locks,update"),
                ));
            }
            for mime in mime_types(ext).iter().copied() {
                // Edit first: the first action of an editable format's MIME app (an
                // editable format's MIME type wins over a view-only one's).
                let mut of_mime = edits.clone();
                of_mime.extend(views.iter().cloned());
                by_mime.insert(mime, of_mime);
            }
            actions.extend(views);
            actions.extend(edits);
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
    for (mime, actions) in by_mime {
        apps.push(App {
            name: mime.into(),
            fav_icon_url: None,
            check_license: false,
            // As ONLYOFFICE Docs' MIME apps: `ext` empty (hosts that look up by extension
            // read the named apps).
            actions: actions
                .into_iter()
                .map(|a| Action {
                    ext: String::new(),
                    ..a
                })
                .collect(),
        });
    }
    // Where Collabora-style hosts find the capabilities.
    apps.push(App {
        name: "Capabilities".into(),
        fav_icon_url: None,
        check_license: false,
        actions: vec![action(
            "getinfo",
            "",
            format!("{base}/hosting/capabilities"),
            false,
            Some("locks,update"),
        )],
    });
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
        // A new, empty file with a TemplateSource is filled from it before editing.
        "hasTemplateSource": true,
        "productName": "wopi-gateway",
        "productVersion": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}
