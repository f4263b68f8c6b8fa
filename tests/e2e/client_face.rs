//! Client face, black-box: a fake WOPI host verifying every proof against the gateway's
//! discovery, and a Docs simulator (document.url download, callbacks with JWTs).

use crate::support::browser::{chromium, chromium_dom, dom_json};
use crate::support::http::{get, send};
use crate::support::wopi_host::WopiHost;
use crate::support::{Config, Gateway};
use docs_api::{Secret, jwt};
use serde_json::{Value, json};
use std::time::Duration;

const DOCS_SECRET: &str = "docs-secret-0123456789abcdef-0123456789";

struct Setup {
    gw: Gateway,
    host: WopiHost,
    base: String,
}

async fn setup(content: &[u8], extra: &str) -> Setup {
    setup_with_server(content, extra, "").await
}

/// Like [`setup`], with `server` lines in `[server]`.
async fn setup_with_server(content: &[u8], extra: &str, server: &str) -> Setup {
    let host = WopiHost::start(content).await;
    setup_on(host, extra, server, "").await
}

/// Like [`setup_with_server`] on a started host, with `allowed_path` after its origin in
/// `client_face.allowed_wopi_origins`.
async fn setup_on(host: WopiHost, extra: &str, server: &str, allowed_path: &str) -> Setup {
    setup_port(host, extra, server, allowed_path, None).await
}

async fn setup_port(
    host: WopiHost,
    extra: &str,
    server: &str,
    allowed_path: &str,
    port: Option<u16>,
) -> Setup {
    let rest = format!(
        r#"[docs]
url = "{origin}"
jwt_secret = "{DOCS_SECRET}"
healthcheck_interval_seconds = 0
[client_face]
allowed_wopi_origins = ["{origin}{allowed_path}"]
{extra}
[[client_face.profile]]
match_origin = "{origin}"
co_editing_mode = "strict"
co_editing_change = true
ui_theme = "theme-dark"
customer_name = "Example Cloud"
plugins_autostart = ["asc.{{0616AE85-5DBE-4B6B-A0A9-455C4F1503AD}}"]
customization = {{ comments = false }}
"#,
        origin = host.origin()
    );
    let gw = Gateway::start(Config {
        rest,
        server: server.into(),
        port,
        ..Default::default()
    });
    let base = format!("http://{}", gw.public);
    host.trust(&base).await;
    Setup { gw, host, base }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Opens the editor page as a host's browser would; returns (status, page, config).
async fn open_editor(
    s: &Setup,
    mode: &str,
    token: &str,
    query_extra: &str,
    form_extra: &str,
) -> (u16, String, Value) {
    open_editor_as(s, "word", mode, token, query_extra, form_extra).await
}

/// [`open_editor`] with the action's document type (`word`, `cell`, `slide`, `pdf`).
async fn open_editor_as(
    s: &Setup,
    doc_type: &str,
    mode: &str,
    token: &str,
    query_extra: &str,
    form_extra: &str,
) -> (u16, String, Value) {
    open_editor_on(
        &s.base,
        &s.host,
        doc_type,
        mode,
        token,
        query_extra,
        form_extra,
    )
    .await
}

/// [`open_editor_as`] on the gateway at `base`.
async fn open_editor_on(
    base: &str,
    host: &WopiHost,
    doc_type: &str,
    mode: &str,
    token: &str,
    query_extra: &str,
    form_extra: &str,
) -> (u16, String, Value) {
    let url = format!(
        "{base}/hosting/wopi/{doc_type}/{mode}?WOPISrc={}&ui=de-DE{query_extra}",
        enc(&host.wopi_src())
    );
    let form = format!("access_token={token}&access_token_ttl=0{form_extra}");
    let (st, _, body) = send(
        "POST",
        &url,
        &[("content-type", "application/x-www-form-urlencoded")],
        form,
    )
    .await;
    let page = String::from_utf8(body).unwrap();
    let config = page
        .split("<script type=\"application/json\" id=\"wopi-gateway-config\">")
        .nth(1)
        .and_then(|r| r.split("</script>").next())
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap_or(Value::Null);
    (st, page, config)
}

fn docs_header(payload: Value) -> String {
    let mut claims = serde_json::Map::new();
    claims.insert("payload".into(), payload);
    format!("Bearer {}", jwt::sign(&Secret::new(DOCS_SECRET), &claims))
}

/// Posts a callback as Document Server does: body token (flat) and header token (payload).
async fn callback(s: &Setup, key: &str, body: Value) -> (u16, Value) {
    callback_at(&s.base, key, body).await
}

/// [`callback`] to the gateway at `base`.
async fn callback_at(base: &str, key: &str, body: Value) -> (u16, Value) {
    let secret = Secret::new(DOCS_SECRET);
    let token = jwt::sign(&secret, body.as_object().unwrap());
    let mut with_token = body.clone();
    with_token["token"] = json!(token);
    let (st, _, answer) = send(
        "POST",
        &format!("{base}/docs/callback/{key}"),
        &[
            ("content-type", "application/json"),
            ("authorization", &docs_header(body)),
        ],
        with_token.to_string(),
    )
    .await;
    (st, serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_publishes_actions_and_both_key_encodings() {
    let s = setup(b"x", "").await;
    let (st, h, body) = get(&format!("{}/hosting/discovery", s.base)).await;
    assert_eq!(st, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/xml"));
    let d = wopi::discovery::parse(&body).unwrap();
    let keys = d.proof_keys().unwrap();
    assert_eq!(keys.current.unwrap().bits(), 2048);
    let text = String::from_utf8(body).unwrap();
    for attr in ["value=", "modulus=", "exponent=\"AQAB\""] {
        assert!(text.contains(attr), "{attr}");
    }
    let docx: Vec<_> = d
        .actions_for_ext("docx")
        .map(|(a, x)| (a.name.clone(), x.name.clone()))
        .collect();
    for name in [
        "view",
        "embedview",
        "mobileView",
        "edit",
        "mobileEdit",
        "editnew",
    ] {
        assert!(
            docx.iter().any(|(app, a)| app == "Word" && a == name),
            "{name}"
        );
    }
    assert!(
        d.actions_for_ext("xlsx")
            .any(|(a, x)| a.name == "Excel" && x.name == "edit")
    );
    assert!(
        d.actions_for_ext("pdf")
            .any(|(a, x)| a.name == "Pdf" && x.name == "edit")
    );
    assert!(
        d.actions_for_ext("doc")
            .any(|(_, x)| x.name == "view" && x.default)
    );
    let edit = d
        .actions_for_ext("docx")
        .find(|(_, x)| x.name == "edit")
        .unwrap()
        .1;
    assert!(
        edit.urlsrc
            .starts_with(&format!("{}/hosting/wopi/word/edit?", s.base))
    );
    assert!(edit.urlsrc.contains("<wopisrc=WOPI_SOURCE&>"));
    let (st, _, caps) = get(&format!("{}/hosting/capabilities", s.base)).await;
    assert_eq!(st, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&caps).unwrap()["hasMobileSupport"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_in_edit_builds_a_signed_config() {
    let s = setup(b"hello", "").await;
    let (st, page, config) = open_editor(&s, "edit", "tok-alice", "&thm=1", "").await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains(&format!("{}/web-apps/apps/api/documents/api.js", s.base)));
    assert!(page.contains("new DocsAPI.DocEditor"));
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    assert!(docs_api::config::is_valid_key(&key), "{key}");
    assert!(key.starts_with('e'));
    assert_eq!(config["documentType"], "word");
    assert_eq!(config["type"], "desktop");
    assert_eq!(config["document"]["title"], "Quarterly Report.docx");
    assert_eq!(config["document"]["fileType"], "docx");
    assert_eq!(
        config["document"]["url"],
        format!("{}/docs/files/{key}", s.base)
    );
    assert_eq!(config["document"]["permissions"]["edit"], true);
    assert_eq!(config["document"]["info"]["folder"], "Reports");
    assert_eq!(config["editorConfig"]["mode"], "edit");
    assert_eq!(
        config["editorConfig"]["callbackUrl"],
        format!("{}/docs/callback/{key}", s.base)
    );
    assert_eq!(config["editorConfig"]["lang"], "de-DE");
    assert_eq!(
        config["editorConfig"]["user"],
        json!({"id": "alice", "name": "Alice"})
    );
    assert_eq!(
        config["editorConfig"]["coEditing"],
        json!({"mode": "strict", "change": true}),
        "profile"
    );
    let c = &config["editorConfig"]["customization"];
    assert_eq!(c["uiTheme"], "theme-dark", "profile wins over thm");
    assert_eq!(c["customer"]["name"], "Example Cloud");
    assert_eq!(c["comments"], false);
    assert_eq!(
        config["editorConfig"]["plugins"]["autostart"][0],
        "asc.{0616AE85-5DBE-4B6B-A0A9-455C4F1503AD}"
    );
    // The token signs the config itself (payload = config without token).
    let claims = jwt::verify(&Secret::new(DOCS_SECRET), config["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["document"], config["document"]);
    assert_eq!(claims["editorConfig"], config["editorConfig"]);
    // The host saw CheckFileInfo then Lock with the deterministic lock id, all proofs valid.
    assert_eq!(s.host.ops(), ["CheckFileInfo", "Lock"]);
    assert_eq!(
        s.host.state.lock().unwrap().lock.as_deref(),
        Some(key.as_str())
    );
    assert_eq!(s.host.state.lock().unwrap().bad_proofs, 0);
    assert!(
        s.gw.wait_metric(
            "wopi_gateway_editor_opens_total{mode=\"edit\",result=\"ok\"}",
            1.0
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_mode_two_users_and_docs_api_config_merge() {
    let s = setup(b"hello", "").await;
    let (_, _, a) = open_editor(&s, "edit", "tok-alice", "", "").await;
    let (_, _, b) = open_editor(&s, "edit", "tok-bob", "&embed=1", "&docs_api_config=%7B%22editorConfig%22%3A%7B%22customization%22%3A%7B%22zoom%22%3A120%7D%7D%7D").await;
    assert_eq!(
        a["document"]["key"], b["document"]["key"],
        "co-editors share one key"
    );
    assert_eq!(b["editorConfig"]["user"]["id"], "bob");
    assert_eq!(b["type"], "embedded");
    assert_eq!(b["editorConfig"]["customization"]["zoom"], 120);
    // A viewer: no Lock, a view key.
    let (_, _, v) = open_editor(&s, "edit", "tok-viewer", "", "").await;
    assert_eq!(v["editorConfig"]["mode"], "view");
    assert_eq!(v["document"]["permissions"]["edit"], false);
    assert!(v["document"]["key"].as_str().unwrap().starts_with('v'));
    let locks = s.host.ops().iter().filter(|o| *o == "Lock").count();
    assert_eq!(locks, 2, "one Lock per edit open, none for the viewer");
    // Locked by someone else: the open falls back to view.
    s.host.state.lock().unwrap().lock = Some("foreign".into());
    s.host.state.lock().unwrap().version = 7;
    let (_, _, f) = open_editor(&s, "edit", "tok-alice", "", "").await;
    assert_eq!(f["editorConfig"]["mode"], "view");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_download_and_save_paths_6_then_2() {
    let s = setup(b"original", "").await;
    let (_, _, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    let url = config["document"]["url"].as_str().unwrap().to_owned();
    // Docs downloads document.url with its JWT header.
    let (st, _, body) = send(
        "GET",
        &url,
        &[("authorization", &docs_header(json!({"url": url})))],
        "",
    )
    .await;
    assert_eq!((st, body.as_slice()), (200, b"original".as_slice()));
    assert_eq!(send("GET", &url, &[], "").await.0, 403, "no JWT");
    let forged = format!(
        "Bearer {}",
        jwt::sign(
            &Secret::new("not-the-docs-secret-123"),
            json!({"payload": {"url": url}}).as_object().unwrap()
        )
    );
    assert_eq!(
        send("GET", &url, &[("authorization", &forged)], "").await.0,
        403,
        "forged JWT"
    );
    let getfile = s
        .host
        .state
        .lock()
        .unwrap()
        .calls
        .iter()
        .find(|c| c.0 == "GetFile")
        .map(|c| c.2.clone())
        .unwrap();
    assert!(getfile.contains_key("x-wopi-maxexpectedsize"));
    // Status 1, then a force-save (6), then the final save (2).
    let (st, a) = callback(&s, &key, json!({"key": key, "status": 1, "users": ["alice"], "actions": [{"type": 1, "userid": "alice"}]})).await;
    assert_eq!((st, a), (200, json!({"error": 0})));
    s.host
        .state
        .lock()
        .unwrap()
        .docs_files
        .insert("v6/output.docx".into(), b"forced".to_vec());
    let (_, a) = callback(&s, &key, json!({"key": key, "status": 6, "url": format!("{}/cache/v6/output.docx", s.host.origin()), "filetype": "docx", "users": ["alice"], "forcesavetype": 1})).await;
    assert_eq!(a, json!({"error": 0}));
    assert_eq!(s.host.state.lock().unwrap().content, b"forced");
    assert!(
        s.host.state.lock().unwrap().lock.is_some(),
        "force-save keeps the lock"
    );
    s.host
        .state
        .lock()
        .unwrap()
        .docs_files
        .insert("v2/output.docx".into(), b"final".to_vec());
    let (_, a) = callback(&s, &key, json!({"key": key, "status": 2, "url": format!("{}/cache/v2/output.docx", s.host.origin()), "filetype": "docx", "users": ["alice"], "actions": [{"type": 0, "userid": "alice"}], "notmodified": false})).await;
    assert_eq!(a, json!({"error": 0}));
    {
        let st = s.host.state.lock().unwrap();
        assert_eq!(st.content, b"final");
        assert_eq!(st.lock, None, "unlocked after the final save");
        let puts: Vec<_> = st.calls.iter().filter(|c| c.0 == "PutFile").collect();
        assert_eq!(puts.len(), 2);
        let last = &puts[1].2;
        assert_eq!(
            puts[1].1.as_deref(),
            Some(key.as_str()),
            "PutFile carries the lock"
        );
        assert_eq!(last["x-wopi-editors"], "alice");
        assert_eq!(last["x-lool-wopi-isexitsave"], "true");
        assert_eq!(last["x-lool-wopi-ismodifiedbyuser"], "true");
        assert_eq!(last["content-length"], "5");
        assert_eq!(puts[0].2["x-lool-wopi-isexitsave"], "false");
        assert_eq!(
            last["x-lool-wopi-timestamp"], "2024-01-02T00:00:00Z",
            "LastModifiedTime of the previous PutFile answer"
        );
        assert_eq!(st.bad_proofs, 0);
        // Every call of the editing session names it: X-WOPI-SessionId is the Docs key.
        let session: Vec<_> = st.calls.iter().skip(1).collect();
        assert_eq!(st.calls[0].0, "CheckFileInfo");
        assert!(session.len() >= 5);
        for c in session {
            assert_eq!(
                c.2.get("x-wopi-sessionid").map(String::as_str),
                Some(key.as_str()),
                "{}",
                c.0
            );
        }
    }
    // Docs may resend a status 2: answered without a second PutFile.
    let (_, a) = callback(&s, &key, json!({"key": key, "status": 2, "url": format!("{}/cache/v2/output.docx", s.host.origin()), "users": ["alice"]})).await;
    assert_eq!(a, json!({"error": 0}));
    assert_eq!(s.host.ops().iter().filter(|o| *o == "PutFile").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_unchanged_unlocks_and_status_3_never_puts() {
    let s = setup(b"original", "").await;
    let (_, _, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    let (_, a) = callback(
        &s,
        &key,
        json!({"key": key, "status": 4, "actions": [{"type": 0, "userid": "alice"}]}),
    )
    .await;
    assert_eq!(a, json!({"error": 0}));
    assert_eq!(s.host.ops(), ["CheckFileInfo", "Lock", "Unlock"]);
    let (_, _, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    let (_, a) = callback(
        &s,
        &key,
        json!({"key": key, "status": 3, "users": ["alice"]}),
    )
    .await;
    assert_eq!(a, json!({"error": 0}));
    assert!(!s.host.ops().contains(&"PutFile".to_owned()));
    assert!(s.gw.wait_metric("wopi_gateway_recovery_copies", 1.0).await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_refusing_the_save_keeps_a_recovery_copy() {
    let s = setup(b"original", "").await;
    let (_, _, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    for code in [409u16, 500] {
        s.host.state.lock().unwrap().fail_put = Some(code);
        s.host
            .state
            .lock()
            .unwrap()
            .docs_files
            .insert("x/output.docx".into(), b"precious".to_vec());
        let (_, a) = callback(&s, &key, json!({"key": key, "status": 6, "url": format!("{}/cache/x/output.docx", s.host.origin()), "users": ["alice"], "forcesavetype": 1})).await;
        assert_eq!(
            a["error"], 1,
            "no false {{\"error\":0}} when the host refused ({code})"
        );
    }
    assert_eq!(s.host.state.lock().unwrap().content, b"original");
    let puts = s.host.ops().iter().filter(|o| *o == "PutFile").count();
    assert_eq!(puts, 4, "409 is not retried; 500 is tried three times");
    let (_, _, body) = get(&s.gw.admin_url("/recovery")).await;
    let list: Value = serde_json::from_slice(&body).unwrap();
    let items = list["recovery"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let file = items[0]["file"].as_str().unwrap();
    assert_eq!(std::fs::read(file).unwrap(), b"precious");
    assert_eq!(s.gw.metric("wopi_gateway_recovery_copies").await, 2.0);
    // The host's own words travel into the record, the log, and /recovery.
    let refused = items
        .iter()
        .find(|i| i["reason"].as_str().unwrap().contains("409"))
        .unwrap();
    assert_eq!(
        refused["host_reason"],
        "The file being edited got moved or overwritten"
    );
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("locked by `someone-else`"),
        "{refused}"
    );
    let log =
        s.gw.wait_log("The file being edited got moved or overwritten");
    assert!(
        log.contains("The file being edited got moved or overwritten"),
        "{log}"
    );
    assert!(
        log.contains("status=409"),
        "host-call lines give the status code: {log}"
    );
    // The operator takes a copy away: record and content go, the gauge follows.
    let id = items[0]["id"].as_str().unwrap();
    let url = s.gw.admin_url(&format!("/recovery/{id}"));
    assert_eq!(send("DELETE", &url, &[], "").await.0, 200);
    assert_eq!(send("DELETE", &url, &[], "").await.0, 404);
    assert!(!std::path::Path::new(file).exists(), "{file}");
    assert_eq!(s.gw.metric("wopi_gateway_recovery_copies").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_missing_docs_jwt_and_foreign_urls_are_refused() {
    let s = setup(b"original", "").await;
    let (_, _, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    let cb = format!("{}/docs/callback/{key}", s.base);
    let body = json!({"key": key, "status": 4});
    assert_eq!(
        send(
            "POST",
            &cb,
            &[("content-type", "application/json")],
            body.to_string()
        )
        .await
        .0,
        403,
        "unsigned"
    );
    let forged = jwt::sign(
        &Secret::new("not-the-docs-secret-123"),
        body.as_object().unwrap(),
    );
    let mut b = body.clone();
    b["token"] = json!(forged);
    assert_eq!(
        send(
            "POST",
            &cb,
            &[("content-type", "application/json")],
            b.to_string()
        )
        .await
        .0,
        403,
        "forged"
    );
    assert!(!s.host.ops().contains(&"Unlock".to_owned()));
    // A status 2 whose url is not on Docs is not downloaded.
    let (_, a) = callback(&s, &key, json!({"key": key, "status": 2, "url": "http://169.254.169.254/latest", "users": ["alice"]})).await;
    assert_eq!(a["error"], 1);
    assert!(!s.host.ops().contains(&"PutFile".to_owned()));
    assert!(
        s.gw.wait_metric(
            "wopi_gateway_docs_callbacks_total{result=\"refused\",status=\"unknown\"}",
            2.0
        )
        .await
            >= 2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wopisrc_outside_the_allowed_origins_is_refused_before_any_request() {
    let s = setup(b"x", "").await;
    let url = format!(
        "{}/hosting/wopi/word/edit?wopisrc={}",
        s.base,
        enc("http://127.0.0.2:1/wopi/files/1")
    );
    let (st, _, _) = send(
        "POST",
        &url,
        &[("content-type", "application/x-www-form-urlencoded")],
        "access_token=tok-alice",
    )
    .await;
    assert_eq!(st, 403);
    assert!(s.host.ops().is_empty());
    assert!(
        s.gw.wait_metric(
            "wopi_gateway_editor_opens_total{mode=\"edit\",result=\"refused\"}",
            1.0
        )
        .await
            >= 1.0
    );
    // Missing WOPISrc, missing token, bad docs_api_config.
    let (st, _, _) = send(
        "POST",
        &format!("{}/hosting/wopi/word/edit", s.base),
        &[("content-type", "application/x-www-form-urlencoded")],
        "access_token=t",
    )
    .await;
    assert_eq!(st, 400);
    let (st, _, _) = open_editor(&s, "edit", "", "", "").await;
    assert_eq!(st, 400);
    let (st, _, _) = open_editor(&s, "edit", "tok-alice", "", "&docs_api_config=nope").await;
    assert_eq!(st, 400);
    let (st, _, _) = open_editor(&s, "edit", "bad-token", "", "").await;
    assert_eq!(st, 502, "the host refused CheckFileInfo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_are_refreshed_while_editing() {
    let s = setup(b"x", "lock_refresh_seconds = 1").await;
    let (_, _, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let refreshes = s.host.ops().iter().filter(|o| *o == "RefreshLock").count();
    assert!(
        (2..=3).contains(&refreshes),
        "{refreshes} refreshes in 2.6 s at 1 s cadence"
    );
    callback(&s, &key, json!({"key": key, "status": 4})).await;
    let after = s.host.ops().iter().filter(|o| *o == "RefreshLock").count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        s.host.ops().iter().filter(|o| *o == "RefreshLock").count(),
        after,
        "refreshing stops after the session"
    );
}

/// The forcesave commands for `key` the Docs simulator's command service received.
fn forcesaves(s: &Setup, key: &str) -> usize {
    s.host
        .state
        .lock()
        .unwrap()
        .commands
        .iter()
        .filter(|c| *c == &json!({"c": "forcesave", "key": key}))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_forcesave_interval_asks_docs_for_saves_while_editing() {
    let host = WopiHost::start(b"x").await;
    // First match wins: this profile comes before the one `setup_on` adds.
    let extra = format!(
        "[[client_face.profile]]\nmatch_origin = \"{}\"\nforcesave_interval_seconds = 1\n",
        host.origin()
    );
    let s = setup_on(host, &extra, "", "").await;
    let (st, _, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    assert_eq!(st, 200);
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while forcesaves(&s, &key) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "2 forcesave commands within 15 s at a 1 s interval: {:?}",
            s.host.state.lock().unwrap().commands
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, _) = callback(&s, &key, json!({"key": key, "status": 4})).await;
    assert_eq!(st, 200);
    // A round already past its look at the session may still ask once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = forcesaves(&s, &key);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        forcesaves(&s, &key),
        after,
        "force-saves stop with the session"
    );
    // Only forcesave commands of this session were sent.
    assert!(
        s.host
            .state
            .lock()
            .unwrap()
            .commands
            .iter()
            .all(|c| c["c"] == "forcesave" && c["key"] == key)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_as_and_rename_from_the_editor() {
    let s = setup(b"x", "").await;
    // The host takes names of up to 12 characters, without the extension.
    s.host
        .state
        .lock()
        .unwrap()
        .info
        .insert("FileNameMaxLength".into(), json!(12));
    let (_, page, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    // After a rename the page tells the host's frame the new name (WOPI's File_Rename).
    assert!(
        page.contains("post('File_Rename', {NewName: body.Name});"),
        "the page posts File_Rename after a rename"
    );
    let host_info: Value = serde_json::from_str(
        page.split("id=\"wopi-gateway-host\">")
            .nth(1)
            .unwrap()
            .split("</script>")
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(host_info["canRename"], true);
    s.host
        .state
        .lock()
        .unwrap()
        .docs_files
        .insert("copy/output.docx".into(), b"copy".to_vec());
    let (st, _, body) = send("POST", host_info["saveAsUrl"].as_str().unwrap(), &[("content-type", "application/json")], json!({"title": "Copy of report.docx", "url": format!("{}/cache/copy/output.docx", s.host.origin())}).to_string()).await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        s.host.state.lock().unwrap().relative,
        vec![("Copy of report.docx".to_owned(), b"copy".to_vec())]
    );
    let (st, _, _) = send(
        "POST",
        host_info["renameUrl"].as_str().unwrap(),
        &[("content-type", "application/json")],
        json!({"title": "Renamed_~+.docx"}).to_string(),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        s.host.state.lock().unwrap().renamed.as_deref(),
        Some("Renamed_~+")
    );
    // Every co-editor's title follows, through Docs' command service.
    assert_eq!(
        s.host.state.lock().unwrap().commands,
        vec![
            json!({"c": "meta", "key": config["document"]["key"], "meta": {"title": "Renamed_~+.docx"}})
        ]
    );
    // A longer name is cut to FileNameMaxLength (in characters), the extension kept.
    let (st, _, body) = send(
        "POST",
        host_info["renameUrl"].as_str().unwrap(),
        &[("content-type", "application/json")],
        json!({"title": "Ünïcødé quarterly report.docx"}).to_string(),
    )
    .await;
    assert_eq!(st, 200);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["Name"], "Ünïcødé quar");
    assert_eq!(
        s.host.state.lock().unwrap().renamed.as_deref(),
        Some("Ünïcødé quar")
    );
    assert_eq!(
        s.host.state.lock().unwrap().commands.last(),
        Some(
            &json!({"c": "meta", "key": config["document"]["key"], "meta": {"title": "Ünïcødé quar.docx"}})
        )
    );
    let bad = host_info["renameUrl"]
        .as_str()
        .unwrap()
        .replace("?t=", "?t=x");
    assert_eq!(
        send("POST", &bad, &[], json!({"title": "x"}).to_string())
            .await
            .0,
        401
    );
}

/// One real browser: headless Chromium renders the editor page; the page's `api.js` (a stub
/// served through the gateway's proxy) records the config `DocsAPI.DocEditor` received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_runs_the_editor_page() {
    let chromium = chromium();
    let host = WopiHost::start(b"hello").await;
    let rest = format!(
        "[docs]\nurl = \"{origin}\"\njwt_secret = \"{DOCS_SECRET}\"\nhealthcheck_interval_seconds = 0\n[client_face]\nallowed_wopi_origins = [\"{origin}\"]\n",
        origin = host.origin()
    );
    let gw = Gateway::start(Config {
        rest,
        ..Default::default()
    });
    let base = format!("http://{}", gw.public);
    host.trust(&base).await;
    let url = format!(
        "{base}/hosting/wopi/word/edit?WOPISrc={}&access_token=tok-alice&ui=en-US",
        enc(&host.wopi_src())
    );
    let (dom, stderr) = chromium_dom(chromium, &url).await;
    let attr = dom
        .split("data-config=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("DocEditor was not called; DOM:\n{dom}\nstderr:\n{stderr}"));
    let json_text = attr
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    let config: Value = serde_json::from_str(&json_text).unwrap();
    let claims = jwt::verify(&Secret::new(DOCS_SECRET), config["token"].as_str().unwrap()).unwrap();
    assert_eq!(
        claims["document"]["key"], config["document"]["key"],
        "DocEditor received the signed config"
    );
    assert_eq!(config["editorConfig"]["user"]["id"], "alice");
    let events = dom
        .split("data-events=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("");
    assert!(
        events.contains("onAppReady") && events.contains("onRequestSaveAs"),
        "{events}"
    );
    assert!(!dom.contains("data-message"), "no message for an editor");
    // A reader who asked to edit sees the forced-view message once the editor is ready.
    let url = format!(
        "{base}/hosting/wopi/word/edit?WOPISrc={}&access_token=tok-viewer&ui=en-US",
        enc(&host.wopi_src())
    );
    let (dom, stderr) = chromium_dom(chromium, &url).await;
    assert!(
        dom.contains("data-message=\"This document is open for viewing only: you may not change this document.\""),
        "DOM:\n{dom}\nstderr:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_tokens_and_docs_jwts_never_reach_the_logs() {
    for format in ["human", "json"] {
        let s = setup_with_server(b"original", "", &format!("log_format = \"{format}\"")).await;
        // A good token through the whole edit, and a refused one.
        let (st, _, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
        assert_eq!(st, 200);
        let (st, _, _) = open_editor(&s, "edit", "MARKER-CF-REFUSED-31ae", "", "").await;
        assert_eq!(st, 502, "the host refused the token");
        let key = config["document"]["key"].as_str().unwrap().to_owned();
        let url = config["document"]["url"].as_str().unwrap().to_owned();
        let docs_jwt = docs_header(json!({"url": url}));
        let (st, _, _) = send("GET", &url, &[("authorization", &docs_jwt)], "").await;
        assert_eq!(st, 200);
        let forged = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJNQVJLRVIiOjJ9.Rk9SR0VELURPQ1MtSldU";
        let (st, _, _) = send("GET", &url, &[("authorization", forged)], "").await;
        assert_eq!(st, 403);
        s.host
            .state
            .lock()
            .unwrap()
            .docs_files
            .insert("v2/output.docx".into(), b"final".to_vec());
        let (_, a) = callback(&s, &key, json!({"key": key, "status": 2, "url": format!("{}/cache/v2/output.docx", s.host.origin()), "users": ["alice"], "actions": [{"type": 0, "userid": "alice"}]})).await;
        assert_eq!(a, json!({"error": 0}));
        assert_eq!(s.host.state.lock().unwrap().content, b"final");
        let err = s.gw.wait_log("WOPI call to host");
        let (out, err) = (s.gw.stdout(), err + &s.gw.settled_log());
        assert!(err.contains("WOPI call to host"), "{err}");
        let docs_token = docs_jwt.trim_start_matches("Bearer ");
        for secret in [
            "tok-alice",
            "MARKER-CF-REFUSED-31ae",
            docs_token,
            docs_token.rsplit('.').next().unwrap(),
            "Rk9SR0VELURPQ1MtSldU",
        ] {
            assert!(!out.contains(secret), "{secret} on stdout:\n{out}");
            assert!(!err.contains(secret), "{secret} on stderr:\n{err}");
        }
        if format == "json" {
            for line in out.lines().chain(err.lines()) {
                assert!(
                    serde_json::from_str::<Value>(line).is_ok(),
                    "not JSON: {line}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wopisrc_escapes_from_the_allowed_prefix_never_reach_the_host() {
    let host = WopiHost::start(b"x").await;
    let s = setup_on(host, "", "", "/wopi").await;
    let o = s.host.origin();
    let authority = o.trim_start_matches("http://");
    let attempts = [
        format!("{o}/wopi/../admin/files/1"),
        format!("{o}/wopi/./../admin/files/1"),
        format!("{o}/wopi/%2e%2e/admin/files/1"),
        format!("{o}/wopi/%2E%2E/admin/files/1"),
        format!("{o}/wopi/%2E%2E%2Fadmin/files/1"),
        format!("{o}/wopi/files/..%2F..%2Fadmin"),
        format!("{o}/wopi\\..\\admin/files/1"),
        format!("http://user:pw@{authority}/wopi/files/1"),
        format!("http://{authority}@127.0.0.2:1/wopi/files/1"),
        format!("{o}/wopifiles/1"),
        format!("{o}/admin/files/1?x=/wopi/files/1"),
        format!("ftp://{authority}/wopi/files/1"),
        "file:///etc/passwd".to_owned(),
    ];
    for wopi_src in &attempts {
        let url = format!(
            "{}/hosting/wopi/word/edit?WOPISrc={}",
            s.base,
            enc(wopi_src)
        );
        let (st, _, body) = send(
            "POST",
            &url,
            &[("content-type", "application/x-www-form-urlencoded")],
            "access_token=tok-alice",
        )
        .await;
        let page = String::from_utf8_lossy(&body);
        assert_eq!(st, 403, "{wopi_src}: {page}");
        assert!(
            page.contains("client_face.allowed_wopi_origins"),
            "names the setting: {page}"
        );
    }
    assert!(
        s.host
            .state
            .lock()
            .unwrap()
            .paths
            .iter()
            .all(|p| !p.contains("admin")),
        "no escape reached the host: {:?}",
        s.host.state.lock().unwrap().paths
    );
    assert!(s.host.ops().is_empty(), "{:?}", s.host.ops());
    // The allowed prefix itself still works, and names the origin it refused otherwise.
    let (st, _, _) = open_editor(&s, "edit", "tok-alice", "", "").await;
    assert_eq!(st, 200);
}

/// Every call the host received carried X-WOPI-Proof and X-WOPI-ProofOld, all verified.
fn assert_all_calls_fully_signed(s: &Setup) {
    let st = s.host.state.lock().unwrap();
    assert!(!st.calls.is_empty());
    for (op, _, headers) in &st.calls {
        for h in ["x-wopi-timestamp", "x-wopi-proof", "x-wopi-proofold"] {
            assert!(headers.contains_key(h), "{op} without {h}");
        }
    }
    assert_eq!(st.bad_proofs, 0);
}

async fn edit_and_save(s: &Setup) {
    let (st, _, config) = open_editor(s, "edit", "tok-alice", "", "").await;
    assert_eq!(st, 200);
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    s.host
        .state
        .lock()
        .unwrap()
        .docs_files
        .insert("v2/output.docx".into(), b"saved".to_vec());
    let (_, a) = callback(s, &key, json!({"key": key, "status": 2, "url": format!("{}/cache/v2/output.docx", s.host.origin()), "users": ["alice"]})).await;
    assert_eq!(a, json!({"error": 0}));
    assert_eq!(s.host.state.lock().unwrap().content, b"saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_old_is_sent_and_published_with_and_without_an_old_key() {
    // No old key: the current key is published as old too and signs X-WOPI-ProofOld.
    let s = setup(b"x", "").await;
    let (_, _, body) = get(&format!("{}/hosting/discovery", s.base)).await;
    let keys = wopi::discovery::parse(&body).unwrap().proof_keys().unwrap();
    let (cur, old) = (keys.current.unwrap(), keys.old.expect("old key published"));
    assert_eq!(cur, old, "old = current until a rotation");
    let text = String::from_utf8(body).unwrap();
    for attr in ["oldvalue=", "oldmodulus=", "oldexponent="] {
        assert!(text.contains(attr), "{attr}");
    }
    edit_and_save(&s).await;
    assert_all_calls_fully_signed(&s);

    // A real old key: published as old, and signing X-WOPI-ProofOld.
    let dir = crate::support::TempDir::new("keys");
    let (cur_pem, old_pem) = (dir.path().join("cur.pem"), dir.path().join("old.pem"));
    for p in [&cur_pem, &old_pem] {
        let (code, _, err) =
            crate::support::run_cli(&["proof-key", "generate", "--out", p.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    let extra = format!(
        "proof_key_file = \"{}\"\nproof_key_old_file = \"{}\"",
        cur_pem.display(),
        old_pem.display()
    );
    let s = setup(b"x", &extra).await;
    let (_, _, body) = get(&format!("{}/hosting/discovery", s.base)).await;
    let keys = wopi::discovery::parse(&body).unwrap().proof_keys().unwrap();
    assert_ne!(keys.current.unwrap(), keys.old.unwrap());
    edit_and_save(&s).await;
    assert_all_calls_fully_signed(&s);
}

/// Waits until `cond` holds on the host's state.
async fn wait_host(
    s: &Setup,
    what: &str,
    cond: impl Fn(&crate::support::wopi_host::HostState) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond(&s.host.state.lock().unwrap()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {:?}",
            s.host.ops()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_the_host_forgot_is_taken_again_and_the_edit_reaches_storage() {
    let s = setup(b"original", "lock_refresh_seconds = 1").await;
    let (_, _, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    // The host forgets the lock: the next RefreshLock meets 409 with no lock, and the gateway
    // locks again with the same id.
    s.host.state.lock().unwrap().lock = None;
    wait_host(&s, "re-locked after RefreshLock", |h| {
        h.lock.as_deref() == Some(key.as_str())
    })
    .await;
    let locks = s.host.ops().iter().filter(|o| *o == "Lock").count();
    assert_eq!(locks, 2, "{:?}", s.host.ops());
    assert!(
        s.gw.wait_metric(
            "wopi_gateway_lock_refreshes_total{result=\"relocked\"}",
            1.0
        )
        .await
            >= 1.0
    );
    // Forgotten again just before the final save: PutFile meets 409, re-locks, and saves.
    s.host.state.lock().unwrap().lock = None;
    s.host
        .state
        .lock()
        .unwrap()
        .docs_files
        .insert("v2/output.docx".into(), b"edited".to_vec());
    let (_, a) = callback(&s, &key, json!({"key": key, "status": 2, "url": format!("{}/cache/v2/output.docx", s.host.origin()), "users": ["alice"]})).await;
    assert_eq!(a, json!({"error": 0}));
    {
        let h = s.host.state.lock().unwrap();
        assert_eq!(h.content, b"edited", "the edit reached storage");
        assert_eq!(h.lock, None, "unlocked after the save");
        assert_eq!(h.bad_proofs, 0);
    }
    assert_eq!(s.gw.metric("wopi_gateway_recovery_copies").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lock_on_a_changed_file_is_not_taken_again() {
    let s = setup(b"original", "").await;
    let (_, _, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    {
        // Someone else wrote the file while the lock was gone.
        let mut h = s.host.state.lock().unwrap();
        h.lock = None;
        h.version += 1;
        h.content = b"someone else's".to_vec();
        h.docs_files
            .insert("v2/output.docx".into(), b"ours".to_vec());
    }
    let (_, a) = callback(&s, &key, json!({"key": key, "status": 2, "url": format!("{}/cache/v2/output.docx", s.host.origin()), "users": ["alice"]})).await;
    assert_eq!(a["error"], 1);
    assert_eq!(
        s.host.state.lock().unwrap().content,
        b"someone else's",
        "nothing overwritten"
    );
    let (_, _, body) = get(&s.gw.admin_url("/recovery")).await;
    let list: Value = serde_json::from_slice(&body).unwrap();
    let item = &list["recovery"][0];
    assert!(
        item["reason"].as_str().unwrap().contains("not re-locked"),
        "{item}"
    );
    assert_eq!(item["host_reason"], "Lock mismatch");
    assert_eq!(
        std::fs::read(item["file"].as_str().unwrap()).unwrap(),
        b"ours"
    );
    let log = s.gw.wait_log("already holds no lock");
    assert!(
        log.contains("already holds no lock"),
        "the Unlock message says there is no lock: {log}"
    );
    assert!(!log.contains("the host's lock will expire"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_gets_internal_urls_browsers_get_public_ones() {
    let host = WopiHost::start(b"x").await;
    let port = crate::support::free_port();
    let internal = format!("http://localhost:{port}");
    let s = setup_port(
        host,
        "",
        &format!("internal_url = \"{internal}\""),
        "",
        Some(port),
    )
    .await;
    let (st, page, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    assert_eq!(st, 200);
    let key = config["document"]["key"].as_str().unwrap();
    assert_eq!(
        config["document"]["url"],
        format!("{internal}/docs/files/{key}")
    );
    assert_eq!(
        config["editorConfig"]["callbackUrl"],
        format!("{internal}/docs/callback/{key}")
    );
    // The browser loads api.js and posts Save As through the public URL.
    assert!(
        page.contains(&format!("{}/web-apps/apps/api/documents/api.js", s.base)),
        "{page}"
    );
    let (_, _, body) = get(&format!("{}/hosting/discovery", s.base)).await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(&format!("urlsrc=\"{}/hosting/wopi/", s.base)),
        "{text}"
    );
    assert!(!text.contains(&internal));
    // Docs downloads document.url at the internal base.
    let url = config["document"]["url"].as_str().unwrap();
    let (st, _, body) = send(
        "GET",
        url,
        &[("authorization", &docs_header(json!({"url": url})))],
        "",
    )
    .await;
    assert_eq!((st, body.as_slice()), (200, b"x".as_slice()));
}

/// Posts the convert action for `ext` → `target` as the host's browser does; returns the
/// status, the page and the status URL written in it.
async fn start_conversion(s: &Setup, ext: &str, target: &str) -> (u16, String, Option<String>) {
    let url = format!(
        "{}/hosting/wopi/convert-and-edit/{ext}/{target}?WOPISrc={}",
        s.base,
        enc(&s.host.wopi_src())
    );
    let (st, _, body) = send(
        "POST",
        &url,
        &[("content-type", "application/x-www-form-urlencoded")],
        "access_token=tok-alice&access_token_ttl=0",
    )
    .await;
    let page = String::from_utf8(body).unwrap();
    let status_url = page
        .split("var statusUrl = \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(str::to_owned);
    (st, page, status_url)
}

/// Polls a conversion's status URL until it is no longer 202.
async fn conversion_outcome(status_url: &str) -> (u16, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (st, _, body) = get(status_url).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        if st != 202 {
            return (st, v);
        }
        assert_eq!(v["state"], "converting");
        assert!(
            tokio::time::Instant::now() < deadline,
            "conversion never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn old_doc(s: &Setup) {
    let mut h = s.host.state.lock().unwrap();
    h.content = b"legacy doc bytes".to_vec();
    h.info
        .insert("BaseFileName".into(), json!("Minutes 1997.doc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_offers_convert_and_formsubmit_actions() {
    let s = setup(b"x", "").await;
    let (_, _, body) = get(&format!("{}/hosting/discovery", s.base)).await;
    let d = wopi::discovery::parse(&body).unwrap();
    for (ext, target) in [
        ("doc", "docx"),
        ("xls", "xlsx"),
        ("ppt", "pptx"),
        ("odg", "pptx"),
    ] {
        let (_, a) = d
            .actions_for_ext(ext)
            .find(|(_, a)| a.name == "convert")
            .unwrap_or_else(|| panic!("no convert action for {ext}"));
        assert_eq!(a.targetext.as_deref(), Some(target));
        assert_eq!(a.requires.as_deref(), Some("update"));
        assert!(
            a.urlsrc.starts_with(&format!(
                "{}/hosting/wopi/convert-and-edit/{ext}/{target}?",
                s.base
            )),
            "{}",
            a.urlsrc
        );
    }
    assert!(
        !d.actions_for_ext("docx").any(|(_, a)| a.name == "convert"),
        "editable formats are not converted"
    );
    assert!(!d.actions_for_ext("djvu").any(|(_, a)| a.name == "convert"));
    let (_, form) = d
        .actions_for_ext("pdf")
        .find(|(_, a)| a.name == "formsubmit")
        .unwrap();
    assert!(form.urlsrc.contains("/hosting/wopi/pdf/edit?formsubmit=1&"));
    let (_, _, caps) = get(&format!("{}/hosting/capabilities", s.base)).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&caps).unwrap()["convert-to"]["available"],
        true
    );
    // Off by setting.
    let s = setup(b"x", "convert_actions = false").await;
    let (_, _, body) = get(&format!("{}/hosting/discovery", s.base)).await;
    let d = wopi::discovery::parse(&body).unwrap();
    assert!(!d.actions_for_ext("doc").any(|(_, a)| a.name == "convert"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_and_edit_a_doc_end_to_end() {
    let s = setup(b"x", "").await;
    old_doc(&s);
    s.host.state.lock().unwrap().converter.polls = 3;
    let (st, page, status_url) = start_conversion(&s, "doc", "docx").await;
    assert_eq!(st, 200, "{page}");
    let status_url = status_url.expect("the page names its status URL");
    assert!(
        status_url.starts_with(&format!("{}/hosting/convert/", s.base)),
        "{status_url}"
    );
    assert!(
        page.contains("Minutes 1997.doc"),
        "the page says what it converts"
    );
    let (st, v) = conversion_outcome(&status_url).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "done");
    assert_eq!(v["hostEditUrl"], format!("{}/edit/new", s.host.origin()));
    {
        let h = s.host.state.lock().unwrap();
        // Docs was asked to convert asynchronously, and polled until it ended.
        let reqs = &h.converter.requests;
        assert_eq!(reqs.len(), 3, "{reqs:?}");
        assert_eq!(reqs[0]["async"], true);
        assert_eq!(reqs[0]["filetype"], "doc");
        assert_eq!(reqs[0]["outputtype"], "docx");
        assert_eq!(h.converter.bad_tokens, 0);
        // It downloaded the source through the gateway (GetFile on the host, signed).
        assert_eq!(
            h.converter.sources.values().next().unwrap(),
            b"legacy doc bytes"
        );
        // The result went to the host as a new file, converted, signed; the original is kept.
        assert_eq!(h.relative.len(), 1);
        assert_eq!(h.relative[0].0, "Quarterly Report.docx");
        assert_eq!(h.relative[0].1, b"converted:legacy doc bytes");
        let put = h.calls.iter().find(|c| c.0 == "PutRelativeFile").unwrap();
        assert_eq!(put.2["x-wopi-fileconversion"], "true");
        assert_eq!(put.2["x-wopi-suggestedtarget"], ".docx");
        assert!(put.2.contains_key("x-wopi-proofold"));
        assert_eq!(h.bad_proofs, 0);
        assert_eq!(h.content, b"legacy doc bytes", "the original is untouched");
    }
    // Garbage: an unknown job, and a source download without Docs' JWT or for another job.
    let (st, _, body) = get(&format!("{}/hosting/convert/no-such-job", s.base)).await;
    assert_eq!(st, 404);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["state"],
        "unknown"
    );
    let job = status_url.rsplit('/').next().unwrap();
    let source = format!("{}/docs/convert/{job}", s.base);
    assert_eq!(send("GET", &source, &[], "").await.0, 403, "no JWT");
    let other = docs_header(json!({"url": format!("{}/docs/convert/another-job", s.base)}));
    assert_eq!(
        send("GET", &source, &[("authorization", &other)], "")
            .await
            .0,
        403,
        "a JWT for another job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_conversion_writes_nothing_and_says_why() {
    let s = setup(b"x", "").await;
    old_doc(&s);
    for (code, status, words) in [
        (-3, 422, "could not be converted"),
        (-5, 422, "password-protected"),
        (-4, 502, "could not download the source"),
        (-8, 502, "docs.jwt_secret"),
    ] {
        s.host.state.lock().unwrap().converter.fail_with = Some(code);
        let (st, _, status_url) = start_conversion(&s, "doc", "docx").await;
        assert_eq!(st, 200);
        let (st, v) = conversion_outcome(&status_url.unwrap()).await;
        assert_eq!(st, status, "error {code}: {v}");
        assert_eq!(v["state"], "failed");
        let m = v["message"].as_str().unwrap();
        assert!(m.contains(words) && m.contains(&code.to_string()), "{m}");
    }
    assert!(s.host.state.lock().unwrap().relative.is_empty());
    assert!(!s.host.ops().iter().any(|o| o == "PutRelativeFile"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversion_the_host_refuses_or_cannot_take() {
    let s = setup(b"x", "conversion_timeout_seconds = 1").await;
    old_doc(&s);
    for code in [409u16, 413, 501] {
        s.host.state.lock().unwrap().fail_relative = Some(code);
        let (_, _, status_url) = start_conversion(&s, "doc", "docx").await;
        let (st, v) = conversion_outcome(&status_url.unwrap()).await;
        assert_eq!(st, code, "{v}");
        assert!(v["message"].as_str().unwrap().contains("host"), "{v}");
    }
    s.host.state.lock().unwrap().fail_relative = None;
    // Docs that never finishes: 504 after the conversion timeout.
    s.host.state.lock().unwrap().converter.hang = true;
    let (_, _, status_url) = start_conversion(&s, "doc", "docx").await;
    let (st, v) = conversion_outcome(&status_url.unwrap()).await;
    assert_eq!(st, 504, "{v}");
    s.host.state.lock().unwrap().converter.hang = false;
    // A host that does not let the user create files: refused before any conversion.
    s.host
        .state
        .lock()
        .unwrap()
        .info
        .insert("UserCanNotWriteRelative".into(), json!(true));
    let before = s.host.state.lock().unwrap().converter.requests.len();
    let (st, page, status_url) = start_conversion(&s, "doc", "docx").await;
    assert_eq!(st, 403, "{page}");
    assert!(page.contains("UserCanNotWriteRelative"), "{page}");
    assert!(status_url.is_none());
    assert_eq!(
        s.host.state.lock().unwrap().converter.requests.len(),
        before
    );
    // A pair discovery does not offer: 404.
    let (st, _, _) = start_conversion(&s, "docx", "doc").await;
    assert_eq!(st, 404);
    assert!(s.host.state.lock().unwrap().relative.is_empty());
}

/// A multipart/form-data body with one file field.
fn multipart(field: &str, filename: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----wopigatewaytestboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_to_round_trip_and_its_errors() {
    let s = setup_with_server(
        b"x",
        "conversion_timeout_seconds = 1",
        "[server.body_limit_bytes]\nhosting = 4096",
    )
    .await;
    for prefix in ["cool", "lool"] {
        let (ctype, body) = multipart("data", "Budget.xlsx", b"sheet bytes");
        let (st, h, out) = send(
            "POST",
            &format!("{}/{prefix}/convert-to/pdf", s.base),
            &[("content-type", &ctype)],
            body,
        )
        .await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
        assert_eq!(out, b"converted:sheet bytes");
        assert_eq!(h["content-type"], "application/pdf");
        assert!(
            h["content-disposition"]
                .to_str()
                .unwrap()
                .contains("Budget.pdf")
        );
    }
    let req = s.host.state.lock().unwrap().converter.requests[0].clone();
    assert_eq!(
        (req["filetype"].as_str(), req["outputtype"].as_str()),
        (Some("xlsx"), Some("pdf"))
    );
    let post = |ctype: String, body: Vec<u8>, format: &'static str| {
        let url = format!("{}/cool/convert-to/{format}", s.base);
        async move { send("POST", &url, &[("content-type", &ctype)], body).await }
    };
    // Unknown format, unsupported pair, no extension, no data field, not multipart.
    let (c, b) = multipart("data", "a.docx", b"x");
    assert_eq!(post(c, b, "xyz").await.0, 400);
    let (c, b) = multipart("data", "a.docx", b"x");
    assert_eq!(post(c, b, "xlsx").await.0, 400);
    let (c, b) = multipart("data", "noext", b"x");
    assert_eq!(post(c, b, "pdf").await.0, 400);
    let (c, b) = multipart("file", "a.docx", b"x");
    let (st, _, msg) = post(c, b, "pdf").await;
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&msg).contains("data"));
    assert_eq!(post("text/plain".into(), b"x".to_vec(), "pdf").await.0, 400);
    // Over the hosting body limit.
    let (c, b) = multipart("data", "a.docx", &vec![b'x'; 8192]);
    assert_eq!(post(c, b, "pdf").await.0, 413);
    // Docs fails, or never finishes.
    s.host.state.lock().unwrap().converter.fail_with = Some(-4);
    let (c, b) = multipart("data", "a.docx", b"x");
    let (st, _, msg) = post(c, b, "pdf").await;
    assert_eq!(st, 502, "{}", String::from_utf8_lossy(&msg));
    s.host.state.lock().unwrap().converter.fail_with = None;
    s.host.state.lock().unwrap().converter.hang = true;
    let (c, b) = multipart("data", "a.docx", b"x");
    assert_eq!(post(c, b, "pdf").await.0, 504);
    // No upload is left behind in the spool.
    let spool = s.gw.data_dir().join("spool/client");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with("convert-to")),
        "{left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_pdf_form_is_saved_as_a_new_file() {
    let s = setup(b"%PDF form", "").await;
    s.host
        .state
        .lock()
        .unwrap()
        .info
        .insert("BaseFileName".into(), json!("Application.pdf"));
    let (st, _, config) = open_editor_as(&s, "pdf", "edit", "tok-alice", "&formsubmit=1", "").await;
    assert_eq!(st, 200);
    assert_eq!(config["editorConfig"]["customization"]["submitForm"], true);
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    s.host
        .state
        .lock()
        .unwrap()
        .docs_files
        .insert("f/output.pdf".into(), b"%PDF filled".to_vec());
    let (_, a) = callback(&s, &key, json!({"key": key, "status": 6, "url": format!("{}/cache/f/output.pdf", s.host.origin()), "users": ["alice"], "forcesavetype": 3})).await;
    assert_eq!(a, json!({"error": 0}));
    let h = s.host.state.lock().unwrap();
    assert_eq!(
        h.content, b"%PDF form",
        "the form itself is never overwritten"
    );
    assert!(!h.calls.iter().any(|c| c.0 == "PutFile"));
    assert_eq!(h.relative.len(), 1);
    let (name, bytes) = &h.relative[0];
    assert!(
        name.starts_with("Application - alice - ") && name.ends_with(".pdf"),
        "{name}"
    );
    assert_eq!(bytes, b"%PDF filled");
    let put = h.calls.iter().find(|c| c.0 == "PutRelativeFile").unwrap();
    assert!(!put.2.contains_key("x-wopi-fileconversion"));
    assert_eq!(h.bad_proofs, 0);
}

/// A real browser follows the progress page: to the host's HostEditUrl when the
/// conversion succeeds, to a message when it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_follows_a_conversion_to_the_host() {
    let chromium = chromium();
    let s = setup(b"x", "").await;
    old_doc(&s);
    s.host.state.lock().unwrap().converter.polls = 2;
    let url = format!(
        "{}/hosting/wopi/convert-and-edit/doc/docx?WOPISrc={}&access_token=tok-alice",
        s.base,
        enc(&s.host.wopi_src())
    );
    let (dom, stderr) = chromium_dom(chromium, &url).await;
    assert!(
        dom.contains("HOST EDIT PAGE"),
        "DOM:\n{dom}\nstderr:\n{stderr}"
    );
    assert_eq!(s.host.state.lock().unwrap().relative.len(), 1);
    s.host.state.lock().unwrap().converter.fail_with = Some(-3);
    let (dom, stderr) = chromium_dom(chromium, &url).await;
    assert!(
        dom.contains("could not be converted") && !dom.contains("HOST EDIT PAGE"),
        "DOM:\n{dom}\nstderr:\n{stderr}"
    );
    assert_eq!(
        s.host.state.lock().unwrap().relative.len(),
        1,
        "nothing more written"
    );
}

/// Three instances sharing `shared`'s Redis and content for `host` (`extra` in
/// `[client_face]`), behind its balancer: the first instance as a [`Setup`] (its own URL as
/// `base`), the other two beside it.
async fn cluster_setup(
    shared: &crate::support::cluster::Shared,
    host: WopiHost,
    extra: &str,
) -> (Setup, Vec<Gateway>) {
    let (secret, key_file) = shared.secrets();
    let rest = format!(
        r#"{cluster}
[docs]
url = "{origin}"
jwt_secret = "{DOCS_SECRET}"
healthcheck_interval_seconds = 0
[host_face]
access_token_secret_file = "{secret}"
[client_face]
proof_key_file = "{key_file}"
allowed_wopi_origins = ["{origin}"]
{extra}
"#,
        cluster = shared.toml(),
        origin = host.origin()
    );
    let mut gws = shared.start_instances(3, &rest);
    host.trust(&shared.lb.base()).await;
    let first = gws.remove(0);
    let s = Setup {
        base: format!("http://{}", first.public),
        gw: first,
        host,
    };
    (s, gws)
}

/// Three instances behind a round-robin balancer: the editor opened on one, Docs' callbacks
/// on the others, and the RefreshLock cadence survives the death of the opening instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_opened_on_one_instance_is_saved_through_others_after_it_dies() {
    let shared = crate::support::cluster::Shared::start().await;
    let host = WopiHost::start(b"original").await;
    let at = |g: &Gateway| format!("http://{}", g.public);
    // The editor opens on instance 0.
    let (s0, gws) = cluster_setup(&shared, host, "lock_refresh_seconds = 1").await;
    let (st, _, config) = open_editor(&s0, "edit", "tok-alice", "", "").await;
    assert_eq!(st, 200);
    let key = config["document"]["key"].as_str().unwrap().to_owned();
    // Docs downloads document.url through the balancer (any instance).
    let url = config["document"]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&shared.lb.base()), "{url}");
    for _ in 0..3 {
        let (st, _, body) = send(
            "GET",
            &url,
            &[("authorization", &docs_header(json!({"url": url})))],
            "",
        )
        .await;
        assert_eq!((st, body.as_slice()), (200, b"original".as_slice()));
    }
    // Status 1 on instance 1.
    let (_, a) = callback_at(&at(&gws[0]), &key, json!({"key": key, "status": 1, "users": ["alice"], "actions": [{"type": 1, "userid": "alice"}]})).await;
    assert_eq!(a, json!({"error": 0}));
    // Instance 0 dies; the RefreshLock cadence goes on from another instance.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut s0 = s0;
    s0.gw.kill();
    let before = s0.host.ops().iter().filter(|o| *o == "RefreshLock").count();
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let after = s0.host.ops().iter().filter(|o| *o == "RefreshLock").count();
    assert!(
        (2..=4).contains(&(after - before)),
        "{} refreshes in the 2.6 s after the kill at a 1 s cadence",
        after - before
    );
    // The final save (status 2) on instance 2: PutFile with the lock, then Unlock.
    s0.host
        .state
        .lock()
        .unwrap()
        .docs_files
        .insert("v2/output.docx".into(), b"saved by the cluster".to_vec());
    let (_, a) = callback_at(&at(&gws[1]), &key, json!({"key": key, "status": 2, "url": format!("{}/cache/v2/output.docx", s0.host.origin()), "filetype": "docx", "users": ["alice"], "actions": [{"type": 0, "userid": "alice"}]})).await;
    assert_eq!(a, json!({"error": 0}));
    {
        let st = s0.host.state.lock().unwrap();
        assert_eq!(st.content, b"saved by the cluster");
        assert_eq!(st.lock, None, "unlocked after the final save");
        let put = st.calls.iter().find(|c| c.0 == "PutFile").unwrap();
        assert_eq!(
            put.1.as_deref(),
            Some(key.as_str()),
            "PutFile carries the lock"
        );
        assert_eq!(
            st.bad_proofs, 0,
            "every instance signs with the published key"
        );
    }
    let ops = s0.host.ops();
    assert_eq!(ops.last().map(String::as_str), Some("Unlock"), "{ops:?}");
    // A resent status 2 on instance 1 is answered without a second PutFile.
    let (_, a) = callback_at(&at(&gws[0]), &key, json!({"key": key, "status": 2, "url": format!("{}/cache/v2/output.docx", s0.host.origin()), "users": ["alice"]})).await;
    assert_eq!(a, json!({"error": 0}));
    assert_eq!(s0.host.ops().iter().filter(|o| *o == "PutFile").count(), 1);
    // No refresh after the session ended.
    let done = s0.host.ops().iter().filter(|o| *o == "RefreshLock").count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        s0.host.ops().iter().filter(|o| *o == "RefreshLock").count(),
        done
    );
}

/// A conversion started on one instance: its status (through the balancer) and Docs'
/// download of its source (at the internal URL, the balancer too) work on every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversion_started_on_one_instance_is_followed_on_the_others() {
    let shared = crate::support::cluster::Shared::start().await;
    let host = WopiHost::start(b"x").await;
    let (s, _others) = cluster_setup(&shared, host, "").await;
    old_doc(&s);
    s.host.state.lock().unwrap().converter.polls = 3;
    let (st, page, status_url) = start_conversion(&s, "doc", "docx").await;
    assert_eq!(st, 200, "{page}");
    let status_url = status_url.unwrap();
    assert!(status_url.starts_with(&shared.lb.base()), "{status_url}");
    let (st, v) = conversion_outcome(&status_url).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "done");
    let h = s.host.state.lock().unwrap();
    assert_eq!(h.converter.bad_tokens, 0);
    assert_eq!(
        h.converter.sources.len(),
        1,
        "Docs downloaded the source once"
    );
    let served = shared.lb.counts();
    assert!(
        served.iter().filter(|(_, n)| *n > 0).count() >= 2,
        "{served:?}"
    );
}

/// The page's host JSON (`wopi-gateway-host`).
fn host_json(page: &str) -> Value {
    page.split("<script type=\"application/json\" id=\"wopi-gateway-host\">")
        .nth(1)
        .and_then(|r| r.split("</script>").next())
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap_or(Value::Null)
}

/// One opening with the host's CheckFileInfo extended by `info`, from a clean host (no lock,
/// no calls): the verified claims of the signed config, the page's forced-view message and
/// whether the host was asked to Lock.
async fn open_with_info(
    s: &Setup,
    doc_type: &str,
    mode: &str,
    token: &str,
    query: &str,
    form: &str,
    info: Value,
) -> (serde_json::Map<String, Value>, Value, bool) {
    {
        let mut h = s.host.state.lock().unwrap();
        h.lock = None;
        h.calls.clear();
        h.info = info.as_object().unwrap().clone();
    }
    let (st, page, config) = open_editor_as(s, doc_type, mode, token, query, form).await;
    assert_eq!(st, 200, "{page}");
    let claims = jwt::verify(&Secret::new(DOCS_SECRET), config["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["document"], config["document"]);
    assert_eq!(claims["editorConfig"], config["editorConfig"]);
    let locked = s.host.ops().iter().any(|o| o == "Lock");
    (claims, host_json(&page)["forcedView"].clone(), locked)
}

/// (doc type, action, token, query, form, CheckFileInfo extras) →
/// (mode, [edit, review, comment, fillForms, copy, print, download, chat], Lock, forced).
type PermCase<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    Value,
    &'a str,
    [bool; 8],
    bool,
    bool,
);

/// Permissions and mode through the real binary, derived from ONLYOFFICE Docs' WOPI client
/// (DocsCoServer.js `fillDataFromWopiJwt`, wopiClient.js `getEditorHtml`): mode, every
/// signed permission, the Lock and the forced-view message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_follow_check_file_info_and_the_action() {
    let s = setup(b"hello", "").await;
    // (doc type, action, token, query, form, CheckFileInfo extras) →
    // (mode, [edit, review, comment, fillForms, copy, print, download, chat], Lock, forced)
    let cases: Vec<PermCase<'_>> = vec![
        (
            "word",
            "edit",
            "tok-alice",
            "",
            "",
            json!({}),
            "edit",
            [true, true, true, true, true, true, true, true],
            true,
            false,
        ),
        (
            "word",
            "edit",
            "tok-alice",
            "",
            "",
            json!({"UserCanOnlyComment": true}),
            "edit",
            [false, false, true, false, true, true, true, true],
            true,
            false,
        ),
        (
            "word",
            "edit",
            "tok-alice",
            "",
            "",
            json!({"ReadOnly": true}),
            "view",
            [false, false, false, false, true, true, true, true],
            false,
            true,
        ),
        (
            "word",
            "edit",
            "tok-alice",
            "",
            "",
            json!({"ReadOnly": true, "UserCanReview": true}),
            "edit",
            [false, true, false, false, true, true, true, true],
            true,
            false,
        ),
        (
            "pdf",
            "edit",
            "tok-alice",
            "&formsubmit=1",
            "",
            json!({"BaseFileName": "Form.pdf"}),
            "edit",
            [false, false, false, true, true, true, true, true],
            true,
            false,
        ),
        (
            "word",
            "edit",
            "tok-alice",
            "&dchat=1",
            "",
            json!({"DisableExport": true, "CopyPasteRestrictions": "BlockAll", "HidePrintOption": true, "UserCanReview": false}),
            "edit",
            [true, false, true, true, false, false, false, false],
            true,
            false,
        ),
        (
            "word",
            "edit",
            "tok-alice",
            "",
            "",
            json!({"SupportsReviewing": false, "HideExportOption": "true"}),
            "edit",
            [true, false, true, true, true, true, false, true],
            true,
            false,
        ),
        (
            "word",
            "view",
            "tok-alice",
            "",
            "",
            json!({"DisablePrint": true}),
            "view",
            [false, false, false, false, true, false, true, true],
            false,
            false,
        ),
        (
            "word",
            "edit",
            "tok-viewer",
            "",
            "",
            json!({}),
            "view",
            [false, false, false, false, true, true, true, true],
            false,
            true,
        ),
        // Docs' gate lets a reviewer in; the host refuses the Lock: view, forced.
        (
            "word",
            "edit",
            "tok-viewer",
            "",
            "",
            json!({"UserCanReview": true}),
            "view",
            [false, false, false, false, true, true, true, true],
            true,
            true,
        ),
        // The host's docs_api_config may restrict, never widen.
        (
            "word",
            "edit",
            "tok-viewer",
            "",
            "&docs_api_config=%7B%22document%22%3A%7B%22permissions%22%3A%7B%22edit%22%3Atrue%2C%22comment%22%3Atrue%7D%7D%7D",
            json!({}),
            "view",
            [false, false, false, false, true, true, true, true],
            false,
            true,
        ),
        (
            "word",
            "edit",
            "tok-alice",
            "",
            "&docs_api_config=%7B%22document%22%3A%7B%22permissions%22%3A%7B%22download%22%3Afalse%7D%7D%7D",
            json!({}),
            "edit",
            [true, true, true, true, true, true, false, true],
            true,
            false,
        ),
    ];
    for (i, (doc_type, action, token, query, form, info, mode, p, lock, forced)) in
        cases.into_iter().enumerate()
    {
        let (claims, forced_msg, locked) =
            open_with_info(&s, doc_type, action, token, query, form, info.clone()).await;
        let case = format!("case {i}: {action} {token} {query} {info}");
        assert_eq!(claims["editorConfig"]["mode"], mode, "{case}");
        assert_eq!(
            claims["document"]["permissions"],
            json!({"edit": p[0], "review": p[1], "comment": p[2], "fillForms": p[3],
                   "copy": p[4], "print": p[5], "download": p[6], "chat": p[7]}),
            "{case}"
        );
        assert_eq!(locked, lock, "{case}: Lock");
        assert_eq!(forced_msg.is_string(), forced, "{case}: {forced_msg}");
    }
    assert_eq!(s.host.state.lock().unwrap().bad_proofs, 0);
}

/// One editing session per file across saves: a force-save changes the host's Version, and
/// a co-editor opening after it still joins the session (same key, same lock id); the final
/// save is one PutFile with that lock, and only then does a new opening get a new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_editors_share_one_session_across_force_saves() {
    let s = setup(b"original", "").await;
    let (_, _, a) = open_editor(&s, "edit", "tok-alice", "", "").await;
    let key = a["document"]["key"].as_str().unwrap().to_owned();
    assert_eq!(a["editorConfig"]["mode"], "edit");
    let (_, r) = callback(&s, &key, json!({"key": key, "status": 1, "users": ["alice"], "actions": [{"type": 1, "userid": "alice"}]})).await;
    assert_eq!(r, json!({"error": 0}));
    let put = |name: &str, bytes: &[u8]| {
        s.host
            .state
            .lock()
            .unwrap()
            .docs_files
            .insert(name.into(), bytes.to_vec());
        format!("{}/cache/{name}", s.host.origin())
    };
    let url6 = put("fs/output.docx", b"forced");
    let (_, r) = callback(
        &s,
        &key,
        json!({"key": key, "status": 6, "url": url6, "users": ["alice"], "forcesavetype": 1}),
    )
    .await;
    assert_eq!(r, json!({"error": 0}));
    assert_eq!(
        s.host.state.lock().unwrap().version,
        2,
        "the host's Version changed"
    );
    // Bob opens after the force-save: the same session.
    let (_, _, b) = open_editor(&s, "edit", "tok-bob", "", "").await;
    assert_eq!(b["editorConfig"]["mode"], "edit");
    assert_eq!(b["document"]["key"], key.as_str(), "same document.key");
    {
        let h = s.host.state.lock().unwrap();
        assert_eq!(h.lock.as_deref(), Some(key.as_str()), "same lock id");
        let bob_lock = h.calls.iter().rev().find(|c| c.0 == "Lock").unwrap();
        assert_eq!(bob_lock.1.as_deref(), Some(key.as_str()));
    }
    // A viewer is not part of the editing session.
    let (_, _, v) = open_editor(&s, "view", "tok-alice", "", "").await;
    assert_ne!(v["document"]["key"], key.as_str());
    // The final save: one PutFile with the lock, then Unlock.
    let puts_before = s.host.ops().iter().filter(|o| *o == "PutFile").count();
    let url2 = put("final/output.docx", b"final");
    let (_, r) = callback(&s, &key, json!({"key": key, "status": 2, "url": url2, "users": ["alice", "bob"], "actions": [{"type": 0, "userid": "bob"}]})).await;
    assert_eq!(r, json!({"error": 0}));
    {
        let h = s.host.state.lock().unwrap();
        let puts: Vec<_> = h.calls.iter().filter(|c| c.0 == "PutFile").collect();
        assert_eq!(
            puts.len(),
            puts_before + 1,
            "one PutFile for the final save"
        );
        assert_eq!(puts.last().unwrap().1.as_deref(), Some(key.as_str()));
        assert_eq!(h.content, b"final");
        assert_eq!(h.lock, None);
    }
    // The session ended and the file changed: a new key.
    let (_, _, c) = open_editor(&s, "edit", "tok-alice", "", "").await;
    assert_eq!(c["editorConfig"]["mode"], "edit");
    let new_key = c["document"]["key"].as_str().unwrap();
    assert_ne!(new_key, key, "a new session after the old one ended");
    assert_eq!(s.host.state.lock().unwrap().lock.as_deref(), Some(new_key));
    assert_eq!(s.host.state.lock().unwrap().bad_proofs, 0);
}

/// The live-session index is cluster-wide: a co-editor opening on another instance after a
/// force-save joins the session opened on the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_editors_on_other_instances_join_the_live_session() {
    let shared = crate::support::cluster::Shared::start().await;
    let host = WopiHost::start(b"original").await;
    let at = |g: &Gateway| format!("http://{}", g.public);
    let (s0, gws) = cluster_setup(&shared, host, "").await;
    let (_, _, a) = open_editor(&s0, "edit", "tok-alice", "", "").await;
    let key = a["document"]["key"].as_str().unwrap().to_owned();
    s0.host
        .state
        .lock()
        .unwrap()
        .docs_files
        .insert("c6/output.docx".into(), b"forced".to_vec());
    let url6 = format!("{}/cache/c6/output.docx", s0.host.origin());
    let (_, r) = callback_at(
        &at(&gws[0]),
        &key,
        json!({"key": key, "status": 6, "url": url6, "users": ["alice"], "forcesavetype": 1}),
    )
    .await;
    assert_eq!(r, json!({"error": 0}));
    assert_eq!(s0.host.state.lock().unwrap().version, 2);
    let (st, _, b) =
        open_editor_on(&at(&gws[1]), &s0.host, "word", "edit", "tok-bob", "", "").await;
    assert_eq!(st, 200);
    assert_eq!(b["editorConfig"]["mode"], "edit");
    assert_eq!(b["document"]["key"], key.as_str());
    assert_eq!(
        s0.host.state.lock().unwrap().lock.as_deref(),
        Some(key.as_str())
    );
}

/// Hosts that look actions up by MIME type (Nextcloud's richdocuments: the first action of
/// `/wopi-discovery/net-zone/app[@name='<mime type>']`) find `edit` for every editable
/// format and `view` otherwise, and its URL opens the editor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_by_mime_type_opens_the_editor() {
    let s = setup(b"hello", "").await;
    let (st, _, xml) = get(&format!("{}/hosting/discovery", s.base)).await;
    assert_eq!(st, 200);
    let d = wopi::discovery::parse(&xml).unwrap();
    let first_action = |app: &str| {
        d.net_zones
            .iter()
            .flat_map(|z| z.apps.iter())
            .find(|a| a.name == app)
            .and_then(|a| a.actions.first())
            .cloned()
    };
    let supported: &[(&str, &str)] = &[
        ("application/epub+zip", "edit"),
        ("application/msword", "view"),
        ("application/oxps", "view"),
        ("application/pdf", "edit"),
        ("application/rtf", "edit"),
        ("application/vnd.apple.keynote", "view"),
        ("application/vnd.apple.numbers", "view"),
        ("application/vnd.apple.pages", "view"),
        ("application/vnd.ms-excel", "view"),
        (
            "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
            "edit",
        ),
        (
            "application/vnd.ms-excel.sheet.binary.macroenabled.12",
            "edit",
        ),
        ("application/vnd.ms-excel.sheet.macroEnabled.12", "edit"),
        ("application/vnd.ms-excel.sheet.macroenabled.12", "edit"),
        ("application/vnd.ms-excel.template.macroEnabled.12", "edit"),
        ("application/vnd.ms-excel.template.macroenabled.12", "edit"),
        ("application/vnd.ms-powerpoint", "view"),
        (
            "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
            "edit",
        ),
        (
            "application/vnd.ms-powerpoint.presentation.macroenabled.12",
            "edit",
        ),
        (
            "application/vnd.ms-powerpoint.slideshow.macroEnabled.12",
            "edit",
        ),
        (
            "application/vnd.ms-powerpoint.slideshow.macroenabled.12",
            "edit",
        ),
        (
            "application/vnd.ms-powerpoint.template.macroEnabled.12",
            "edit",
        ),
        (
            "application/vnd.ms-powerpoint.template.macroenabled.12",
            "edit",
        ),
        ("application/vnd.ms-word.document.macroEnabled.12", "edit"),
        ("application/vnd.ms-word.document.macroenabled.12", "edit"),
        ("application/vnd.ms-word.template.macroEnabled.12", "edit"),
        ("application/vnd.ms-word.template.macroenabled.12", "edit"),
        ("application/vnd.ms-works", "view"),
        ("application/vnd.ms-xpsdocument", "view"),
        ("application/vnd.oasis.opendocument.graphics", "view"),
        ("application/vnd.oasis.opendocument.presentation", "edit"),
        (
            "application/vnd.oasis.opendocument.presentation-flat-xml",
            "view",
        ),
        (
            "application/vnd.oasis.opendocument.presentation-template",
            "edit",
        ),
        ("application/vnd.oasis.opendocument.spreadsheet", "edit"),
        (
            "application/vnd.oasis.opendocument.spreadsheet-flat-xml",
            "view",
        ),
        (
            "application/vnd.oasis.opendocument.spreadsheet-template",
            "edit",
        ),
        ("application/vnd.oasis.opendocument.text", "edit"),
        ("application/vnd.oasis.opendocument.text-flat-xml", "view"),
        ("application/vnd.oasis.opendocument.text-template", "edit"),
        (
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "edit",
        ),
        (
            "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
            "edit",
        ),
        (
            "application/vnd.openxmlformats-officedocument.presentationml.template",
            "edit",
        ),
        (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "edit",
        ),
        (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
            "edit",
        ),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "edit",
        ),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
            "edit",
        ),
        ("application/vnd.sun.xml.calc", "view"),
        ("application/vnd.sun.xml.impress", "view"),
        ("application/vnd.sun.xml.writer", "view"),
        ("application/vnd.sun.xml.writer.template", "view"),
        ("application/x-fictionbook+xml", "edit"),
        ("application/x-hwp", "view"),
        ("application/x-hwpx", "view"),
        ("application/x-iwork-keynote-sffkey", "view"),
        ("application/x-iwork-numbers-sffnumbers", "view"),
        ("application/x-iwork-pages-sffpages", "view"),
        ("application/xml", "view"),
        ("image/vnd.djvu", "view"),
        ("message/rfc822", "view"),
        ("text/csv", "edit"),
        ("text/html", "edit"),
        ("text/markdown", "view"),
        ("text/plain", "edit"),
        ("text/rtf", "edit"),
        ("text/tab-separated-values", "edit"),
        ("text/xml", "view"),
    ];
    for (mime, expected) in supported {
        let action = first_action(mime).unwrap_or_else(|| panic!("no app for {mime}"));
        assert_eq!(action.name, *expected, "{mime}");
        let url = wopi::discovery::resolve_urlsrc(&action.urlsrc, |p| match p {
            "WOPI_SOURCE" => Some(enc(&s.host.wopi_src())),
            "UI_LLCC" => Some("de-DE".into()),
            _ => None,
        });
        let (st, _, page) = send(
            "POST",
            &url,
            &[("content-type", "application/x-www-form-urlencoded")],
            "access_token=tok-alice&access_token_ttl=0",
        )
        .await;
        let page = String::from_utf8(page).unwrap();
        assert_eq!(st, 200, "{mime}: {url}: {page}");
        assert!(page.contains("new DocsAPI.DocEditor"), "{mime}");
        let mode = if *expected == "edit" {
            "\"mode\":\"edit\""
        } else {
            "\"mode\":\"view\""
        };
        assert!(page.contains(mode), "{mime}: {mode}");
    }
    // The named apps stay, and the capabilities are where Collabora-style hosts look.
    assert!(first_action("Word").is_some());
    let caps = first_action("Capabilities").unwrap();
    assert_eq!(caps.name, "getinfo");
    let (st, _, body) = get(&caps.urlsrc).await;
    assert_eq!(st, 200);
    let caps: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(caps["hasTemplateSource"], true);
}

/// `client_face.send_authorization_header`: off, the token travels only in the query; on, in
/// `Authorization: Bearer` on every call too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_header_is_sent_only_when_configured() {
    for (extra, expected) in [
        ("", None),
        ("send_authorization_header = true", Some("Bearer tok-alice")),
    ] {
        let s = setup(b"hello", extra).await;
        let (st, _, _) = open_editor(&s, "edit", "tok-alice", "", "").await;
        assert_eq!(st, 200);
        let h = s.host.state.lock().unwrap();
        assert_eq!(h.calls.len(), 2, "CheckFileInfo and Lock");
        for c in &h.calls {
            assert_eq!(
                c.2.get("authorization").map(String::as_str),
                expected,
                "{extra}: {}",
                c.0
            );
        }
        assert_eq!(h.bad_proofs, 0);
    }
}

/// A new, empty file with a TemplateSource is filled from it (PutFile without a lock, as
/// WOPI allows for a 0-byte file) before the editor opens it; a TemplateSource outside the
/// allowed origins is refused before any request, and a reader never fills a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_is_filled_from_its_template_source() {
    let s = setup(b"", "").await;
    let template = format!("{}/cache/tpl/new.docx", s.host.origin());
    {
        let mut h = s.host.state.lock().unwrap();
        h.docs_files
            .insert("tpl/new.docx".into(), b"TEMPLATE".to_vec());
        h.info.insert(
            "TemplateSource".into(),
            json!("http://template.invalid/new.docx"),
        );
    }
    let (st, _, _) = open_editor(&s, "edit", "tok-alice", "", "").await;
    assert_eq!(st, 403, "a TemplateSource outside the allowed origins");
    assert_eq!(s.host.ops(), ["CheckFileInfo"]);
    s.host
        .state
        .lock()
        .unwrap()
        .info
        .insert("TemplateSource".into(), json!(template));
    let (st, _, _) = open_editor(&s, "edit", "tok-viewer", "", "").await;
    assert_eq!(st, 200);
    assert!(
        s.host.state.lock().unwrap().content.is_empty(),
        "a reader fills nothing"
    );
    s.host.state.lock().unwrap().calls.clear();
    let (st, page, config) = open_editor(&s, "edit", "tok-alice", "", "").await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(config["editorConfig"]["mode"], "edit");
    let h = s.host.state.lock().unwrap();
    assert_eq!(h.content, b"TEMPLATE");
    let ops: Vec<&str> = h.calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(ops, ["CheckFileInfo", "PutFile", "CheckFileInfo", "Lock"]);
    let put = h.calls.iter().find(|c| c.0 == "PutFile").unwrap();
    assert_eq!(put.1, None, "no lock on a new file");
    assert_eq!(put.2["content-length"], "8");
    assert_eq!(h.bad_proofs, 0);
}

/// Python with python-docx, openpyxl and python-pptx opens `bytes` as a document of `ext`
/// (scripts/test installs them; a missing one fails the test with the install command).
fn python_opens(ext: &str, bytes: &[u8]) {
    let dir = crate::support::TempDir::new("blank");
    let path = dir.path().join(format!("new.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    let code = match ext {
        "docx" => "import docx, sys; d = docx.Document(sys.argv[1]); print(len(d.paragraphs))",
        "xlsx" => {
            "import openpyxl, sys; w = openpyxl.load_workbook(sys.argv[1]); print(w.sheetnames)"
        }
        "pptx" => "import pptx, sys; p = pptx.Presentation(sys.argv[1]); print(len(p.slides))",
        // pypdf in strict mode refuses a broken cross-reference table instead of repairing it.
        "pdf" => concat!(
            "import pypdf, sys; r = pypdf.PdfReader(sys.argv[1], strict=True); ",
            "assert len(r.pages) == 1, len(r.pages); ",
            "b = r.pages[0].mediabox; assert (b.width, b.height) == (595, 842), b; ",
            "assert r.pages[0].extract_text().strip() == ''; print(b)"
        ),
        _ => unreachable!(),
    };
    let out = std::process::Command::new("python3")
        .args(["-c", code])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("python3 is required for this test: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "missing a Python package: pip install python-docx openpyxl python-pptx pypdf (scripts/test installs them)\n{stderr}"
    );
    assert!(
        out.status.success(),
        "the {ext} written to the host is not a valid document:\n{stderr}"
    );
}

/// A new, empty file opened for editing (the `editnew` action, the same URL as `edit`)
/// gets a blank document of its type, written with PutFile under the session's lock before
/// the page is served; Python's OOXML libraries open it (pypdf, strictly, the one-page A4
/// PDF). A co-editor joining writes nothing
/// more; a viewer writes nothing; a refused PutFile fails the opening and gives the lock back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_empty_file_gets_a_blank_document_before_the_editor_opens() {
    for (doc_type, ext, mime) in [
        (
            "word",
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            "cell",
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "slide",
            "pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        ("pdf", "pdf", "application/pdf"),
    ] {
        let s = setup(b"", "").await;
        s.host
            .state
            .lock()
            .unwrap()
            .info
            .insert("BaseFileName".into(), json!(format!("New.{ext}")));
        // Discovery's editnew action is the edit URL.
        let (_, _, disco) = get(&format!("{}/hosting/discovery", s.base)).await;
        let disco = wopi::discovery::parse(&disco).unwrap();
        let editnew = disco
            .actions_for_ext(ext)
            .find(|(_, a)| a.name == "editnew")
            .map(|(_, a)| a.urlsrc.clone())
            .unwrap_or_else(|| panic!("discovery offers editnew for {ext}"));
        assert!(
            editnew.starts_with(&format!("{}/hosting/wopi/{doc_type}/edit?", s.base)),
            "{editnew}"
        );
        let (st, _, _) = open_editor_as(&s, doc_type, "view", "tok-alice", "", "").await;
        assert_eq!(st, 200);
        assert!(
            s.host.state.lock().unwrap().content.is_empty(),
            "viewing fills nothing"
        );
        s.host.state.lock().unwrap().calls.clear();
        let (st, page, config) = open_editor_as(&s, doc_type, "edit", "tok-alice", "", "").await;
        assert_eq!(st, 200, "{page}");
        assert_eq!(config["editorConfig"]["mode"], "edit");
        assert_eq!(config["document"]["fileType"], ext);
        let content = {
            let h = s.host.state.lock().unwrap();
            let ops: Vec<&str> = h.calls.iter().map(|c| c.0.as_str()).collect();
            assert_eq!(
                ops,
                ["CheckFileInfo", "Lock", "PutFile", "CheckFileInfo"],
                "{ext}: the blank is written, with the lock, before the page is served"
            );
            let put = h.calls.iter().find(|c| c.0 == "PutFile").unwrap();
            assert_eq!(put.1.as_deref(), config["document"]["key"].as_str());
            assert_eq!(put.1, h.lock, "under the session's lock");
            assert_eq!(put.2["content-type"], mime);
            assert_eq!(put.2["content-length"], h.content.len().to_string());
            assert_eq!(h.bad_proofs, 0);
            h.content.clone()
        };
        let magic: &[u8] = if ext == "pdf" { b"%PDF-" } else { b"PK" };
        assert!(content.starts_with(magic), "{ext}");
        python_opens(ext, &content);
        // Docs downloads the blank document.
        let key = config["document"]["key"].as_str().unwrap();
        let (st, _, body) = send(
            "GET",
            config["document"]["url"].as_str().unwrap(),
            &[(
                "authorization",
                &docs_header(json!({"url": config["document"]["url"]})),
            )],
            "",
        )
        .await;
        assert_eq!(st, 200, "{key}");
        assert_eq!(body, content);
        // A co-editor joins the session: nothing more is written.
        let (st, _, c2) = open_editor_as(&s, doc_type, "edit", "tok-bob", "", "").await;
        assert_eq!(st, 200);
        assert_eq!(c2["document"]["key"], config["document"]["key"]);
        assert_eq!(
            s.host.ops().iter().filter(|o| *o == "PutFile").count(),
            1,
            "{ext}"
        );
    }
    // The host refuses the blank: no editor, and the lock is given back.
    let s = setup(b"", "").await;
    s.host.state.lock().unwrap().fail_put = Some(500);
    let (st, _, _) = open_editor(&s, "edit", "tok-alice", "", "").await;
    assert_ne!(st, 200);
    let h = s.host.state.lock().unwrap();
    let ops: Vec<&str> = h.calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(ops, ["CheckFileInfo", "Lock", "PutFile", "Unlock"]);
    assert_eq!(h.lock, None);
}

/// Headless Chromium runs a host's page framing the editor page: with
/// `EnableInsertRemoteImage`, Docs' `onRequestInsertImage` (the api.js stub) makes the page
/// post `UI_InsertGraphic` to the host's frame, the host answers `Action_InsertGraphic`, and
/// `docEditor.insertImage` gets the image signed for Docs; then `onRequestRefreshFile` makes
/// the page fetch a fresh config (CheckFileInfo again) for `docEditor.refreshFile`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_inserts_a_host_image_and_refreshes_the_file() {
    let chromium = chromium();
    let s = setup(b"hello", "").await;
    let origin = s.host.origin();
    {
        let mut h = s.host.state.lock().unwrap();
        h.info.insert("EnableInsertRemoteImage".into(), json!(true));
        h.info.insert("PostMessageOrigin".into(), json!(origin));
    }
    let editor = format!(
        "{}/hosting/wopi/word/edit?WOPISrc={}&access_token=tok-alice&ui=en-US",
        s.base,
        enc(&s.host.wopi_src())
    );
    let url = format!("{origin}/host-frame?src={}", enc(&editor));
    let (dom, stderr) = chromium_dom(chromium, &url).await;
    let secret = Secret::new(DOCS_SECRET);
    let got = dom
        .split("data-got=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("the host frame got nothing; DOM:\n{dom}\nstderr:\n{stderr}"));
    assert!(
        got.starts_with("App_LoadingStatus,UI_InsertGraphic,Stub_InsertImage"),
        "{got}\nDOM:\n{dom}\nstderr:\n{stderr}"
    );
    let inserted = dom_json(&dom, "data-stub_insertimage").unwrap();
    let image_url = format!("{origin}/cache/img/pic.png");
    assert_eq!(inserted["c"], "add");
    assert_eq!(
        inserted["images"],
        json!([{"fileType": "png", "url": image_url}])
    );
    let claims = jwt::verify(&secret, inserted["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["images"], inserted["images"], "signed for Docs");
    assert_eq!(claims["c"], "add");
    let refreshed = dom_json(&dom, "data-stub_refreshfile")
        .unwrap_or_else(|| panic!("refreshFile was not called; DOM:\n{dom}\nstderr:\n{stderr}"));
    let claims = jwt::verify(&secret, refreshed["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["document"]["key"], refreshed["document"]["key"]);
    assert_eq!(refreshed["editorConfig"]["user"]["id"], "alice");
    assert_eq!(refreshed["editorConfig"]["mode"], "edit");
    assert_eq!(
        s.host
            .ops()
            .iter()
            .filter(|o| *o == "CheckFileInfo")
            .count(),
        2,
        "the refresh asked the host again: {:?}",
        s.host.ops()
    );
    assert!(!dom.contains("data-stub_message"), "no error shown");
}

/// The page's image and refresh calls: only with the page's action token and opening,
/// only images under the allowed origins, only image types Docs inserts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_and_refresh_calls_are_checked() {
    let s = setup(b"hello", "").await;
    s.host
        .state
        .lock()
        .unwrap()
        .info
        .insert("EnableInsertRemoteImage".into(), json!(true));
    let (st, page, _) = open_editor(&s, "edit", "tok-alice", "", "").await;
    assert_eq!(st, 200);
    let host = host_json(&page);
    assert_eq!(host["insertImage"], true);
    let image_url = host["imageUrl"].as_str().unwrap();
    let post = |url: String, body: Value| async move {
        let (st, _, b) = send(
            "POST",
            &url,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await;
        (
            st,
            serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
        )
    };
    let ok = format!("{}/cache/img/a.JPG", s.host.origin());
    let (st, body) = post(image_url.into(), json!({"c": "change", "url": ok})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["images"][0]["fileType"], "jpg");
    let (st, _) = post(
        image_url.into(),
        json!({"c": "add", "url": "http://169.254.169.254/latest/x.png"}),
    )
    .await;
    assert_eq!(st, 403, "an image outside the allowed origins");
    let (st, _) = post(
        image_url.into(),
        json!({"c": "add", "url": format!("{}/cache/doc.docx", s.host.origin())}),
    )
    .await;
    assert_eq!(st, 400, "not an image");
    let forged = image_url.split("?t=").next().unwrap().to_owned() + "?t=forged";
    assert_eq!(post(forged, json!({"c": "add", "url": ok})).await.0, 401);
    // Refresh: the page's own opening only.
    let refresh_url = host["refreshUrl"].as_str().unwrap();
    let (st, body) = post(refresh_url.into(), json!({"opening": host["opening"]})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["config"]["editorConfig"]["mode"], "edit");
    assert!(body["host"]["refreshUrl"].is_string());
    let (st, _) = post(refresh_url.into(), json!({"opening": "0123456789abcdef"})).await;
    assert_eq!(st, 404);
    // Another user's page cannot use this opening.
    let (_, page_b, _) = open_editor(&s, "edit", "tok-bob", "", "").await;
    let host_b = host_json(&page_b);
    let (st, _) = post(
        host_b["refreshUrl"].as_str().unwrap().into(),
        json!({"opening": host["opening"]}),
    )
    .await;
    assert_eq!(st, 403);
    // Without EnableInsertRemoteImage the page does not offer it.
    s.host
        .state
        .lock()
        .unwrap()
        .info
        .remove("EnableInsertRemoteImage");
    let (_, page, _) = open_editor(&s, "edit", "tok-alice", "", "").await;
    assert_eq!(host_json(&page)["insertImage"], false);
}
