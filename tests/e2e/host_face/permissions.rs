//! The integrator's `document.permissions` as each family of WOPI client receives them
//! (#23): CheckFileInfo's rights and restriction fields, the action URL's `dchat` and
//! `formsubmit`, and `unenforceable` both ways, over a fake ONLYOFFICE-, Collabora- and
//! Microsoft-like discovery.

use super::*;
use docs_api::jwt;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    OnlyOffice,
    Collabora,
    Microsoft,
}

/// A discovery of `kind`'s shape for docx and pdf (ONLYOFFICE: with its `formsubmit`
/// action for pdf), signed with the client's keys.
fn discovery(client: &crate::support::fakes::WopiClient, kind: Kind) -> String {
    use wopi::discovery::{Action, App, Discovery, NetZone, ProofKeyAttrs, render};
    let urlsrc = |name: &str| match kind {
        Kind::OnlyOffice => {
            let (path, q) = match name {
                "formsubmit" => ("edit", "formsubmit=1&"),
                n => (n, ""),
            };
            format!(
                "http://oo.test/hosting/wopi/word/{path}?{q}<dchat=DISABLE_CHAT&><ui=UI_LLCC&><wopisrc=WOPI_SOURCE&>"
            )
        }
        Kind::Collabora => "http://co.test/browser/1a2b/cool.html?".to_owned(),
        Kind::Microsoft => format!(
            "http://word-{name}.officeapps.live.com/we/wordeditorframe.aspx?<ui=UI_LLCC&><dchat=DISABLE_CHAT&><wopisrc=WOPI_SOURCE&>"
        ),
    };
    let action = |name: &str, ext: &str| Action {
        name: name.into(),
        ext: ext.into(),
        urlsrc: urlsrc(name),
        ..Default::default()
    };
    let mut actions = vec![
        action("view", "docx"),
        action("edit", "docx"),
        action("view", "pdf"),
        action("edit", "pdf"),
    ];
    if kind == Kind::OnlyOffice {
        actions.push(action("formsubmit", "pdf"));
    }
    render(&Discovery {
        net_zones: vec![NetZone {
            name: "external-http".into(),
            apps: vec![App {
                name: "Word".into(),
                actions,
                ..Default::default()
            }],
        }],
        proof_key: Some(ProofKeyAttrs::from_keys(
            client.current.public_key(),
            client.old.as_ref().map(wopi::proof::SigningKey::public_key),
        )),
    })
}

async fn setup_kind(kind: Kind, integrator_extra: &str) -> Setup {
    let int = Integrator::start().await;
    let client = WopiClient::new();
    *int.discovery.lock().unwrap() = Some(discovery(&client, kind));
    let rest = host_face_toml(&int, "", "", integrator_extra);
    let gw = Gateway::start(Config {
        rest,
        ..Default::default()
    });
    int.put_doc("a.docx", b"docx bytes");
    int.put_doc("f.pdf", b"pdf bytes");
    Setup { gw, int, client }
}

/// Opens `doc` with `permissions` (and `info.owner` when given); the status and answer.
async fn open_with(
    s: &Setup,
    doc: &str,
    key: &str,
    permissions: Value,
    owner: Option<&str>,
) -> (u16, Value) {
    let mut cfg = json!({
        "document": {"fileType": doc.rsplit('.').next().unwrap(), "key": key, "title": doc,
                     "url": format!("{}/doc/{doc}", s.int.origin()), "permissions": permissions},
        "editorConfig": {"callbackUrl": format!("{}/callback", s.int.origin()), "mode": "edit",
                         "user": {"id": "u1", "name": "Ada"}, "lang": "en"},
    });
    if let Some(o) = owner {
        cfg["document"]["info"] = json!({"owner": o});
    }
    let token = jwt::sign(&s.int.secret, cfg.as_object().unwrap());
    let (status, _, body) = send(
        "POST",
        &s.gw.url("/api/v1/sessions?integrator=nc"),
        &[("content-type", "application/json")],
        json!({"token": token}).to_string(),
    )
    .await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn check_file_info(s: &Setup, opened: &Value) -> Value {
    let fid = opened["file_id"].as_str().unwrap();
    let token = opened["access_token"].as_str().unwrap();
    let (st, _, body) = s
        .wopi("GET", &format!("/wopi/files/{fid}"), token, &[], "")
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    json(&body)
}

fn action_url<'a>(opened: &'a Value, name: &str) -> &'a str {
    opened["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no {name} action in {opened}"))["url"]
        .as_str()
        .unwrap()
}

/// The fields of CheckFileInfo that carry rights, as `name=value` (absent: `-`).
fn rights(info: &Value) -> String {
    [
        "UserCanWrite",
        "ReadOnly",
        "UserCanReview",
        "UserCanOnlyComment",
        "CopyPasteRestrictions",
        "DisableCopy",
        "DisablePrint",
        "HidePrintOption",
        "DisableExport",
        "HideExportOption",
        "UserCanNotWriteRelative",
    ]
    .iter()
    .map(|k| match &info[*k] {
        Value::Null => format!("{k}=-"),
        Value::String(s) => format!("{k}={s}"),
        v => format!("{k}={v}"),
    })
    .collect::<Vec<_>>()
    .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onlyoffice_gets_every_restriction_but_download() {
    let s = setup_kind(Kind::OnlyOffice, "").await;
    // A writer, with the owner the integrator names.
    let (st, o) = open_with(&s, "a.docx", "k1", json!({"edit": true}), Some("owner-7")).await;
    assert_eq!(st, 201, "{o}");
    let info = check_file_info(&s, &o).await;
    assert_eq!(info["OwnerId"], "owner-7");
    assert_eq!(info["UserCanWrite"], true);
    assert_eq!(info["SupportsReviewing"], true);
    assert!(!action_url(&o, "edit").contains("dchat"));
    // Comment only, no print, no copy, no chat.
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"edit": false, "comment": true, "print": false, "copy": false, "chat": false}),
        None,
    )
    .await;
    assert_eq!(st, 201, "{o}");
    assert_eq!(
        rights(&check_file_info(&s, &o).await),
        "UserCanWrite=true ReadOnly=false UserCanReview=false UserCanOnlyComment=true \
         CopyPasteRestrictions=CurrentDocumentOnly DisableCopy=true DisablePrint=true \
         HidePrintOption=true DisableExport=- HideExportOption=- UserCanNotWriteRelative=true"
    );
    assert!(action_url(&o, "edit").contains("dchat=1&"), "{o}");
    assert!(o.get("view_only").is_none());
    // Review only.
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"edit": false, "review": true}),
        None,
    )
    .await;
    assert_eq!(st, 201, "{o}");
    let info = check_file_info(&s, &o).await;
    assert_eq!(
        (
            &info["UserCanWrite"],
            &info["UserCanReview"],
            &info["SupportsReviewing"]
        ),
        (&json!(false), &json!(true), &json!(true))
    );
    // Fill forms only on a pdf: the formsubmit action, UserCanWrite with ReadOnly.
    let (st, o) = open_with(
        &s,
        "f.pdf",
        "k2",
        json!({"edit": false, "review": false, "comment": false, "fillForms": true}),
        None,
    )
    .await;
    assert_eq!(st, 201, "{o}");
    assert!(action_url(&o, "formsubmit").contains("formsubmit=1&"));
    let info = check_file_info(&s, &o).await;
    assert_eq!(
        (&info["UserCanWrite"], &info["ReadOnly"]),
        (&json!(true), &json!(true))
    );
    // Fill forms only on a docx (no formsubmit action): view only.
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"edit": false, "review": false, "comment": false, "fillForms": true}),
        None,
    )
    .await;
    assert_eq!(st, 201, "{o}");
    assert!(
        o["view_only"].as_str().unwrap().contains("fill forms only"),
        "{o}"
    );
    assert_eq!(check_file_info(&s, &o).await["UserCanWrite"], false);
    // download: false cannot be stated to ONLYOFFICE: refused, even with "view".
    let (st, o) = open_with(&s, "a.docx", "k1", json!({"download": false}), None).await;
    assert_eq!(st, 403, "{o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collabora_gets_export_and_copy_but_not_review_or_chat() {
    let s = setup_kind(Kind::Collabora, "").await;
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"download": false, "copy": false, "print": false}),
        None,
    )
    .await;
    assert_eq!(st, 201, "{o}");
    assert_eq!(
        rights(&check_file_info(&s, &o).await),
        "UserCanWrite=true ReadOnly=false UserCanReview=true UserCanOnlyComment=- \
         CopyPasteRestrictions=CurrentDocumentOnly DisableCopy=true DisablePrint=true \
         HidePrintOption=true DisableExport=true HideExportOption=true UserCanNotWriteRelative=true"
    );
    // Comment only is stated.
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"edit": false, "comment": true}),
        None,
    )
    .await;
    assert_eq!(st, 201, "{o}");
    assert_eq!(check_file_info(&s, &o).await["UserCanOnlyComment"], true);
    // Review only is not: viewing.
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"edit": false, "review": true}),
        None,
    )
    .await;
    assert_eq!(st, 201, "{o}");
    assert!(
        o["view_only"].as_str().unwrap().contains("review only"),
        "{o}"
    );
    let info = check_file_info(&s, &o).await;
    assert_eq!(
        (&info["UserCanWrite"], &info["UserCanReview"]),
        (&json!(false), &json!(false))
    );
    // No DISABLE_CHAT in its action URLs: chat: false is refused.
    let (st, o) = open_with(&s, "a.docx", "k1", json!({"chat": false}), None).await;
    assert_eq!(st, 403, "{o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_gets_print_copy_and_chat_and_views_the_rest() {
    let s = setup_kind(Kind::Microsoft, "").await;
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"print": false, "copy": false, "chat": false}),
        None,
    )
    .await;
    assert_eq!(st, 201, "{o}");
    let info = check_file_info(&s, &o).await;
    assert_eq!(info["DisablePrint"], true);
    assert_eq!(info["CopyPasteRestrictions"], "CurrentDocumentOnly");
    assert_eq!(info["UserCanWrite"], true);
    assert!(action_url(&o, "edit").contains("dchat=1&"), "{o}");
    // Comment only: view, and the session saves nothing.
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"edit": false, "comment": true}),
        None,
    )
    .await;
    assert_eq!(st, 201, "{o}");
    assert!(
        o["view_only"].as_str().unwrap().contains("Microsoft 365"),
        "{o}"
    );
    assert_eq!(check_file_info(&s, &o).await["UserCanWrite"], false);
    let fid = o["file_id"].as_str().unwrap();
    let token = o["access_token"].as_str().unwrap();
    let lock = [("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")];
    assert_ne!(
        s.wopi("POST", &format!("/wopi/files/{fid}"), token, &lock, "")
            .await
            .0,
        200
    );
    // download: false: refused.
    let (st, _) = open_with(&s, "a.docx", "k1", json!({"download": false}), None).await;
    assert_eq!(st, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unenforceable_refuse_refuses_what_view_would_narrow() {
    let s = setup_kind(Kind::Microsoft, "unenforceable = \"refuse\"").await;
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"edit": false, "review": true}),
        None,
    )
    .await;
    assert_eq!(st, 403, "{o}");
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"edit": false, "comment": true}),
        None,
    )
    .await;
    assert_eq!(st, 403, "{o}");
    // What the client states opens as before.
    let (st, o) = open_with(
        &s,
        "a.docx",
        "k1",
        json!({"edit": true, "print": false}),
        None,
    )
    .await;
    assert_eq!(st, 201, "{o}");
    let (st, o) = open_with(&s, "a.docx", "k1", json!({"edit": false}), None).await;
    assert_eq!(st, 201, "{o}");
}

/// The host page hands an ONLYOFFICE client the rest of the editor config (its
/// `docs_api_config` field: co-editing mode, customization, plugins) and nothing that grants;
/// other clients get no such field (#23).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_onlyoffice_clients_get_the_rest_of_the_config_on_the_host_page() {
    for kind in [Kind::OnlyOffice, Kind::Collabora, Kind::Microsoft] {
        let s = setup_kind(kind, "").await;
        let cfg = json!({
            "document": {"fileType": "docx", "key": format!("k-dac-{kind:?}"), "title": "a.docx",
                         "url": format!("{}/doc/a.docx", s.int.origin()),
                         "permissions": {"edit": true, "print": true}},
            "editorConfig": {"callbackUrl": format!("{}/callback", s.int.origin()), "mode": "edit",
                             "user": {"id": "u1", "name": "Ada"}, "lang": "en",
                             "coEditing": {"mode": "strict", "change": false},
                             "customization": {"compactHeader": true, "forcesave": true},
                             "plugins": {"autostart": ["asc.{0616AE85-5DBE-4B6B-A0A9-455C4F1503AD}"]}},
        });
        let token = jwt::sign(&s.int.secret, cfg.as_object().unwrap());
        let (st, _, body) = get(&s
            .gw
            .url(&format!("/open?integrator=nc&config={token}&action=edit")))
        .await;
        assert_eq!(st, 200, "{kind:?}: {}", String::from_utf8_lossy(&body));
        let page = String::from_utf8(body).unwrap();
        let field = page
            .lines()
            .find(|l| l.contains("name=\"docs_api_config\""))
            .map(|l| {
                let v = l
                    .split("value=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                serde_json::from_str::<Value>(&v.replace("&quot;", "\"").replace("&amp;", "&"))
                    .unwrap()
            });
        if kind == Kind::OnlyOffice {
            let v = field.unwrap_or_else(|| panic!("no docs_api_config: {page}"));
            let ec = &v["editorConfig"];
            assert_eq!(ec["coEditing"]["mode"], "strict", "{v}");
            assert_eq!(ec["customization"]["compactHeader"], true, "{v}");
            assert!(ec["plugins"]["autostart"].is_array(), "{v}");
            for granting in ["mode", "user", "callbackUrl", "permissions"] {
                assert!(ec.get(granting).is_none(), "{granting} passed: {v}");
            }
            assert!(v.get("document").is_none(), "{v}");
        } else {
            assert!(field.is_none(), "{kind:?} got docs_api_config: {page}");
        }
    }
}
