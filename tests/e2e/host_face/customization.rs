//! The integrator's `editorConfig.customization` where WOPI has a place for it
//! (CheckFileInfo's breadcrumbs, `HostEditUrl` / `HostViewUrl`, the action URL's
//! `THEME_ID`), and the callbacks' details from what a WOPI client tells (#23): `users` from
//! `X-WOPI-Editors`, `forcesavetype` from the autosave flag, the exit save in status 2, and
//! an editor leaving while another stays (status 1 with a disconnect action).

use super::*;
use docs_api::jwt;

/// A discovery whose action URLs take `THEME_ID`, signed with the client's keys.
fn themed_discovery(client: &WopiClient) -> String {
    use wopi::discovery::{Action, App, Discovery, NetZone, ProofKeyAttrs, render};
    let action = |name: &str| Action {
        name: name.into(),
        ext: "docx".into(),
        urlsrc: format!(
            "http://office.test/hosting/{name}?<ui=UI_LLCC&><thm=THEME_ID&><wopisrc=WOPI_SOURCE&>"
        ),
        ..Default::default()
    };
    render(&Discovery {
        net_zones: vec![NetZone {
            name: "external-http".into(),
            apps: vec![App {
                name: "Word".into(),
                actions: vec![action("view"), action("edit")],
                ..Default::default()
            }],
        }],
        proof_key: Some(ProofKeyAttrs::from_keys(
            client.current.public_key(),
            client.old.as_ref().map(wopi::proof::SigningKey::public_key),
        )),
    })
}

/// The signed config of `a.docx` for `user` with `customization` and `edit`.
pub(super) fn customized_config(
    int: &Integrator,
    user: &str,
    edit: bool,
    customization: Value,
) -> String {
    let o = int.origin();
    let cfg = json!({
        "document": {"fileType": "docx", "key": "key-c", "title": "a.docx", "url": format!("{o}/doc/a.docx"),
                     "permissions": {"edit": edit}},
        "editorConfig": {"callbackUrl": format!("{o}/callback"), "mode": if edit { "edit" } else { "view" },
                         "lang": "en", "user": {"id": user, "name": user},
                         "customization": customization},
    });
    jwt::sign(&int.secret, cfg.as_object().unwrap())
}

/// Opens `a.docx` for `user` with `customization` and `edit`; (file id, token, answer).
async fn open_customized(
    s: &Setup,
    user: &str,
    edit: bool,
    customization: Value,
) -> (String, String, Value) {
    let token = customized_config(&s.int, user, edit, customization);
    let (status, _, body) = send(
        "POST",
        &s.gw.url("/api/v1/sessions?integrator=nc"),
        &[("content-type", "application/json")],
        json!({"token": token}).to_string(),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let v = json(&body);
    (
        v["file_id"].as_str().unwrap().to_owned(),
        v["access_token"].as_str().unwrap().to_owned(),
        v,
    )
}

async fn check_file_info(s: &Setup, fid: &str, token: &str) -> Value {
    let (status, _, body) = s
        .wopi("GET", &format!("/wopi/files/{fid}"), token, &[], "")
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    json(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_file_info_carries_the_breadcrumbs_theme_and_host_pages_of_the_config() {
    let (int, client) = peers().await;
    *int.discovery.lock().unwrap() = Some(themed_discovery(&client));
    let gw = Gateway::start(Config {
        rest: host_face_toml(&int, "", "", ""),
        ..Default::default()
    });
    let s = Setup { gw, int, client };
    s.int.put_doc("a.docx", b"branded");
    let customization = json!({
        "customer": {"name": "Example Cloud", "www": "https://cloud.example.com"},
        "goback": {"text": "Reports", "url": "https://cloud.example.com/folders/7"},
        "close": {"visible": true, "text": "Close"},
        "uiTheme": "theme-dark",
    });
    let (fid, token, opened) = open_customized(&s, "u1", true, customization).await;
    // uiTheme "theme-dark" is WOPI's dark theme, THEME_ID 2.
    for a in opened["actions"].as_array().unwrap() {
        assert!(a["url"].as_str().unwrap().contains("thm=2&"), "{a}");
    }
    let info = check_file_info(&s, &fid, &token).await;
    assert_eq!(info["BreadcrumbBrandName"], "Example Cloud");
    assert_eq!(info["BreadcrumbBrandUrl"], "https://cloud.example.com");
    assert_eq!(info["BreadcrumbFolderName"], "Reports");
    assert_eq!(
        info["BreadcrumbFolderUrl"],
        "https://cloud.example.com/folders/7"
    );
    // customization.close only shows a button that calls the page's onRequestClose: the
    // Docs API has no close URL to give, WOPI's counterpart is the client's UI_Close message.
    assert!(info.get("CloseUrl").is_none(), "{info}");
    assert_eq!(info["ClosePostMessage"], true);
    let page = s.gw.url("/open?session=");
    let edit_url = info["HostEditUrl"]
        .as_str()
        .expect("HostEditUrl")
        .to_owned();
    let view_url = info["HostViewUrl"]
        .as_str()
        .expect("HostViewUrl")
        .to_owned();
    assert!(edit_url.starts_with(&page), "{edit_url}");
    assert!(view_url.starts_with(&page), "{view_url}");

    // The view page: the same user and file, nothing that changes the document.
    let viewer = page_token(&view_url).await;
    let v = check_file_info(&s, &fid, &viewer).await;
    assert_eq!(v["UserId"], "u1");
    assert_eq!(v["UserCanWrite"], false);
    assert_eq!(v["ReadOnly"], true);
    assert!(
        v.get("HostEditUrl").is_none(),
        "a viewer is offered no edit page: {v}"
    );
    assert_eq!(v["BreadcrumbBrandName"], "Example Cloud");
    let lock = [("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")];
    assert_eq!(
        s.wopi("POST", &format!("/wopi/files/{fid}"), &viewer, &lock, "")
            .await
            .0,
        401,
        "the view page's token does not write"
    );
    // The edit page: the config's rights, no more.
    let editor = page_token(&edit_url).await;
    let e = check_file_info(&s, &fid, &editor).await;
    assert_eq!(e["UserId"], "u1");
    assert_eq!(e["UserCanWrite"], true);
    // A page token is no access token, nor the other way round; garbage is refused.
    let session = &edit_url[page.len()..];
    assert_eq!(
        s.wopi("GET", &format!("/wopi/files/{fid}"), session, &[], "")
            .await
            .0,
        401
    );
    assert_eq!(get(&format!("{page}{token}")).await.0, 401);
    assert_eq!(get(&format!("{page}e30.e30.AAAA")).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_http_urls_of_the_config_reach_check_file_info_and_viewers_get_no_host_pages() {
    let s = setup("", "", "").await;
    s.int.put_doc("a.docx", b"x");
    let customization = json!({
        "customer": {"name": "Example Cloud", "www": "javascript:alert(document.cookie)"},
        "goback": {"text": "Reports", "url": "data:text/html,<script>alert(1)</script>"},
        "uiTheme": "theme-system",
    });
    let (fid, token, opened) = open_customized(&s, "u1", true, customization).await;
    for a in opened["actions"].as_array().unwrap() {
        assert!(!a["url"].as_str().unwrap().contains("thm="), "{a}");
    }
    let info = check_file_info(&s, &fid, &token).await;
    assert_eq!(info["BreadcrumbBrandName"], "Example Cloud");
    assert_eq!(info["BreadcrumbFolderName"], "Reports");
    assert!(info.get("BreadcrumbBrandUrl").is_none(), "{info}");
    assert!(info.get("BreadcrumbFolderUrl").is_none(), "{info}");
    // Scheme-less and relative links are no http(s) URLs either; `goback.requestClose`
    // makes the button close the editor instead of opening the URL.
    let (fid, token, _) = open_customized(
        &s,
        "u2",
        true,
        json!({"customer": {"www": "cloud.example.com"},
               "goback": {"url": "https://cloud.example.com/f", "requestClose": true}}),
    )
    .await;
    let info = check_file_info(&s, &fid, &token).await;
    assert!(info.get("BreadcrumbBrandUrl").is_none(), "{info}");
    assert!(info.get("BreadcrumbFolderUrl").is_none(), "{info}");
    // A view-only config gets no host page: it allows no other mode.
    let (fid, token, _) = open_customized(
        &s,
        "u3",
        false,
        json!({"goback": {"url": "https://cloud.example.com/f"}}),
    )
    .await;
    let info = check_file_info(&s, &fid, &token).await;
    assert_eq!(info["UserCanWrite"], false);
    assert_eq!(info["BreadcrumbFolderUrl"], "https://cloud.example.com/f");
    assert!(info.get("HostEditUrl").is_none(), "{info}");
    assert!(info.get("HostViewUrl").is_none(), "{info}");
}

/// CheckFileInfo's `PostMessageOrigin` names the gateway's page that frames the client (its
/// `/open`, also as `HostEditUrl`), and `ClosePostMessage` a close button of the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_file_info_names_the_host_page_origin_and_a_close_button_of_the_config() {
    let s = setup("", "", "").await;
    s.int.put_doc("a.docx", b"x");
    let gw_origin = format!("http://{}", s.gw.public);
    let page = |config: &str, action: &str| {
        s.gw.url(&format!(
            "/open?integrator=nc&action={action}&config={}",
            percent_encoding::utf8_percent_encode(config, percent_encoding::NON_ALPHANUMERIC)
        ))
    };
    for (user, edit, customization, close) in [
        (
            "u1",
            true,
            json!({"close": {"visible": true, "text": "Close"}}),
            true,
        ),
        (
            "u2",
            true,
            json!({"goback": {"url": "https://cloud.example.com/f", "requestClose": true}}),
            true,
        ),
        ("u3", false, json!({"close": {"visible": true}}), true),
        ("u4", true, json!({"close": {"visible": false}}), false),
        (
            "u5",
            true,
            json!({"goback": {"url": "https://cloud.example.com/f"}}),
            false,
        ),
        ("u6", true, json!({}), false),
    ] {
        let what = format!("{user} {customization}");
        // Through the API: the host page is the integrator's own, on an origin the gateway
        // does not know; the close button is the config's.
        let (fid, token, _) = open_customized(&s, user, edit, customization.clone()).await;
        let api = check_file_info(&s, &fid, &token).await;
        assert!(api.get("PostMessageOrigin").is_none(), "{what}: {api}");
        if close {
            assert_eq!(api["ClosePostMessage"], true, "{what}");
        } else {
            assert!(api.get("ClosePostMessage").is_none(), "{what}: {api}");
        }
        assert!(api.get("CloseUrl").is_none(), "{what}: {api}");
        // Through the gateway's page: its origin (no path, no trailing slash).
        let config = customized_config(&s.int, user, edit, customization.clone());
        let url = page(&config, if edit { "edit" } else { "view" });
        let (status, headers, body) = get(&url).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(hdr(&headers, "cache-control").as_deref(), Some("no-store"));
        let info = check_file_info(&s, &fid, &page_token(&url).await).await;
        assert_eq!(info["PostMessageOrigin"], gw_origin.as_str(), "{what}");
        assert_eq!(info.get("ClosePostMessage"), api.get("ClosePostMessage"));
        assert_eq!(info["UserCanWrite"], edit);
        // HostEditUrl is the gateway's page too.
        if edit {
            let again = page_token(api["HostEditUrl"].as_str().unwrap()).await;
            let again = check_file_info(&s, &fid, &again).await;
            assert_eq!(again["PostMessageOrigin"], gw_origin.as_str(), "{what}");
            assert_eq!(again.get("ClosePostMessage"), api.get("ClosePostMessage"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_file_headers_give_the_callbacks_users_and_forcesavetype() {
    let s = setup("", "forcesave = true", "").await;
    s.int.put_doc("fs.docx", b"v0");
    let (fid, token, _) = open(&s, "fs.docx", "key-fs", Some(("u1", "Ada")), true).await;
    let file = format!("/wopi/files/{fid}");
    let contents = format!("{file}/contents");
    let lock = [("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")];
    assert_eq!(s.wopi("POST", &file, &token, &lock, "").await.0, 200);
    // A user's save (the Save button), holding the changes of two users.
    let put = |autosave: &'static str, exit: &'static str| {
        [
            ("x-wopi-override", "PUT"),
            ("x-wopi-lock", "L"),
            ("x-wopi-editors", "u1,u2"),
            ("x-lool-wopi-ismodifiedbyuser", "true"),
            ("x-lool-wopi-isautosave", autosave),
            ("x-lool-wopi-isexitsave", exit),
        ]
    };
    assert_eq!(
        s.wopi("POST", &contents, &token, &put("false", "false"), "v1")
            .await
            .0,
        200
    );
    let six = s.int.wait_status(6, 1, T).await;
    assert_eq!(six[0]["forcesavetype"], 1, "the Save button: {}", six[0]);
    assert_eq!(six[0]["users"], json!(["u1", "u2"]));
    assert_eq!(six[0]["actions"], json!([{"type": 2, "userid": "u1"}]));
    // The client's own save: Docs' timer, and nobody clicked.
    assert_eq!(
        s.wopi("POST", &contents, &token, &put("true", "false"), "v2")
            .await
            .0,
        200
    );
    let six = s.int.wait_status(6, 2, T).await;
    assert_eq!(six[1]["forcesavetype"], 2, "{}", six[1]);
    assert_eq!(six[1]["users"], json!(["u1", "u2"]));
    assert!(six[1].get("actions").is_none(), "{}", six[1]);
    // The exit save: no status 6, the session's status 2 delivers it.
    let exit = [
        ("x-wopi-override", "PUT"),
        ("x-wopi-lock", "L"),
        ("x-wopi-editors", "u2"),
        ("x-lool-wopi-isexitsave", "true"),
    ];
    assert_eq!(s.wopi("POST", &contents, &token, &exit, "v3").await.0, 200);
    let unlock = [("x-wopi-override", "UNLOCK"), ("x-wopi-lock", "L")];
    assert_eq!(s.wopi("POST", &file, &token, &unlock, "").await.0, 200);
    let two = s.int.wait_status(2, 1, T).await;
    assert_eq!(
        s.int
            .callbacks()
            .iter()
            .filter(|c| c["status"] == 6)
            .count(),
        2,
        "{:?}",
        s.int.callbacks()
    );
    assert_eq!(two[0]["users"], json!(["u2"]), "who changed it: {}", two[0]);
    assert_eq!(
        two[0]["notmodified"], false,
        "changed since the last force-save"
    );
    let (status, _, body) = get(two[0]["url"].as_str().unwrap()).await;
    assert_eq!((status, body.as_slice()), (200, &b"v3"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_who_leaves_while_another_stays_is_announced_with_status_one() {
    let s = setup("editor_idle_timeout_seconds = 1", "", "").await;
    s.int.put_doc("co.docx", b"co");
    let (fid, t1, _) = open(&s, "co.docx", "key-co", Some(("u1", "Ada")), true).await;
    let (_, t2, _) = open(&s, "co.docx", "key-co", Some(("u2", "Bob")), true).await;
    let file = format!("/wopi/files/{fid}");
    // Both join (status 1, connect); u1 holds the session's lock.
    assert_eq!(s.wopi("GET", &file, &t1, &[], "").await.0, 200);
    assert_eq!(s.wopi("GET", &file, &t2, &[], "").await.0, 200);
    s.int.wait_status(1, 2, T).await;
    assert_eq!(s.lock_op(&file, &t1, "LOCK", "L").await, 200);
    // u1 goes on working; u2 makes no request for longer than the editor idle timeout.
    let deadline = tokio::time::Instant::now() + T;
    let left = loop {
        assert_eq!(s.lock_op(&file, &t1, "REFRESH_LOCK", "L").await, 200);
        let ones = s.int.callbacks();
        if let Some(c) = ones
            .iter()
            .find(|c| c["status"] == 1 && c["actions"][0]["type"] == 0)
        {
            break c.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{ones:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Docs' status 1 when one of several users leaves: the users still editing, and who left.
    assert_eq!(left["key"], "key-co");
    assert_eq!(left["users"], json!(["u1"]), "{left}");
    assert_eq!(left["actions"], json!([{"type": 0, "userid": "u2"}]));
    // u1 never left: it kept making requests.
    assert!(
        !s.int
            .callbacks()
            .iter()
            .any(|c| c["actions"][0] == json!({"type": 0, "userid": "u1"})),
        "{:?}",
        s.int.callbacks()
    );
    // u2 saves again: back in the session (status 1, connect).
    let put = [("x-wopi-override", "PUT"), ("x-wopi-lock", "L")];
    assert_eq!(
        s.wopi("POST", &format!("{file}/contents"), &t2, &put, "by u2")
            .await
            .0,
        200
    );
    let ones = s.int.wait_status(1, 4, T).await;
    assert_eq!(ones[3]["actions"], json!([{"type": 1, "userid": "u2"}]));
    assert_eq!(ones[3]["users"], json!(["u1", "u2"]));
    // The lock's release ends the session for everyone: status 2.
    assert_eq!(s.lock_op(&file, &t1, "UNLOCK", "L").await, 200);
    let two = s.int.wait_status(2, 1, T).await;
    assert_eq!(two[0]["users"], json!(["u2"]));
}
