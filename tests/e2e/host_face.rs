//! Host face, black-box: a fake WOPI client signs every request, a fake Docs-API integrator
//! serves the document and records the callbacks.

use crate::support::fakes::{Integrator, WopiClient, hdr, json, with_token};
use crate::support::http::{get, send};
use crate::support::{Config, Gateway};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

struct Setup {
    gw: Gateway,
    int: Integrator,
    client: WopiClient,
}

/// A Docs-API integrator and a WOPI client whose discovery the integrator serves.
async fn peers() -> (Integrator, WopiClient) {
    let int = Integrator::start().await;
    let client = WopiClient::new();
    *int.discovery.lock().unwrap() = Some(client.discovery("http://office.test/hosting"));
    (int, client)
}

/// Settings trusting the client's discovery and registering the integrator as `nc`;
/// `before` goes first (e.g. a `[locks]` table).
fn host_face_toml(
    int: &Integrator,
    before: &str,
    host_face_extra: &str,
    integrator_extra: &str,
) -> String {
    format!(
        "{before}\n[host_face]\ndiscovery_urls = [\"{}/hosting/discovery\"]\ndelivery_max_backoff_seconds = 1\n{host_face_extra}\n{}",
        int.origin(),
        int.toml("nc", integrator_extra)
    )
}

async fn setup(host_face_extra: &str, integrator_extra: &str, server_extra: &str) -> Setup {
    let (int, client) = peers().await;
    let rest = host_face_toml(&int, "", host_face_extra, integrator_extra);
    let gw = Gateway::start(Config {
        server: server_extra.into(),
        rest,
        ..Default::default()
    });
    Setup { gw, int, client }
}

/// Opens a session; returns (file_id, access_token, response JSON).
async fn open(
    s: &Setup,
    doc: &str,
    key: &str,
    user: Option<(&str, &str)>,
    edit: bool,
) -> (String, String, Value) {
    let token = s.int.config(doc, key, user, edit);
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

impl Setup {
    /// One editing session on `file` (`/wopi/files/{id}`): Lock "L", PutFile `body`, Unlock.
    async fn edit_session(&self, file: &str, token: &str, body: &'static str) {
        let lock = [("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")];
        let put = [("x-wopi-override", "PUT"), ("x-wopi-lock", "L")];
        let unlock = [("x-wopi-override", "UNLOCK"), ("x-wopi-lock", "L")];
        assert_eq!(self.wopi("POST", file, token, &lock, "").await.0, 200);
        assert_eq!(
            self.wopi("POST", &format!("{file}/contents"), token, &put, body)
                .await
                .0,
            200
        );
        assert_eq!(self.wopi("POST", file, token, &unlock, "").await.0, 200);
    }

    async fn wopi(
        &self,
        method: &str,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: impl Into<bytes::Bytes>,
    ) -> crate::support::http::Resp {
        self.client
            .send(
                &format!("http://{}", self.gw.public),
                method,
                &with_token(path, token),
                token,
                headers,
                body,
            )
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_edit_session() {
    let s = setup("", "", "").await;
    s.int.put_doc("report.docx", b"original bytes");
    let (fid, token, opened) = open(&s, "report.docx", "key-1", Some(("u1", "Ada")), true).await;
    assert_eq!(
        opened["wopi_src"],
        format!("http://{}/wopi/files/{fid}", s.gw.public)
    );
    assert!(
        opened["access_token_ttl"].as_u64().unwrap() > 1_000_000_000_000,
        "ms since epoch"
    );
    let actions = opened["actions"].as_array().unwrap();
    let edit = actions.iter().find(|a| a["name"] == "edit").unwrap();
    let src = percent_encoding::utf8_percent_encode(
        opened["wopi_src"].as_str().unwrap(),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    assert_eq!(
        edit["url"],
        format!("http://office.test/hosting/edit?ui=en&wopisrc={src}")
    );

    let file = format!("/wopi/files/{fid}");
    let (st, h, body) = s.wopi("GET", &file, &token, &[], "").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        hdr(&h, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let info = json(&body);
    assert_eq!(info["BaseFileName"], "report.docx");
    assert_eq!(info["Size"], 14);
    assert_eq!(info["UserId"], "u1");
    assert_eq!(info["UserFriendlyName"], "Ada");
    assert_eq!(info["UserCanWrite"], true);
    assert_eq!(info["ReadOnly"], false);
    assert_eq!(info["SupportsLocks"], true);
    assert_eq!(info["SupportsGetLock"], true);
    assert_eq!(info["SupportsExtendedLockLength"], true);
    assert_eq!(info["SupportsUpdate"], true);
    assert_eq!(info["SupportsUserInfo"], true);
    assert_eq!(info["UserCanNotWriteRelative"], true);
    assert_eq!(info["SupportsRename"], false);
    assert_eq!(info["SupportsDeleteFile"], false);
    assert_eq!(info["FileExtension"], ".docx");
    assert!(info["Version"].is_string());
    assert!(info["LastModifiedTime"].as_str().unwrap().ends_with('Z'));
    let v0 = info["Version"].as_str().unwrap().to_owned();

    let (st, h, body) = s
        .wopi("GET", &format!("{file}/contents"), &token, &[], "")
        .await;
    assert_eq!((st, body.as_slice()), (200, b"original bytes".as_slice()));
    assert_eq!(hdr(&h, "x-wopi-itemversion").unwrap(), v0);

    let (st, h, _) = s
        .wopi(
            "POST",
            &file,
            &token,
            &[("x-wopi-override", "LOCK"), ("x-wopi-lock", "L1")],
            "",
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(hdr(&h, "x-wopi-itemversion").unwrap(), v0);
    assert!(
        hdr(&h, "x-wopi-lock").is_none(),
        "no X-WOPI-Lock on a 200 Lock"
    );

    let (st, h, _) = s
        .wopi(
            "POST",
            &format!("{file}/contents"),
            &token,
            &[("x-wopi-override", "PUT"), ("x-wopi-lock", "L1")],
            "edit one",
        )
        .await;
    assert_eq!(st, 200);
    let v1 = hdr(&h, "x-wopi-itemversion").unwrap();
    let (st, h, _) = s
        .wopi(
            "POST",
            &format!("{file}/contents"),
            &token,
            &[("x-wopi-override", "PUT"), ("x-wopi-lock", "L1")],
            "edit two, final",
        )
        .await;
    assert_eq!(st, 200);
    let v2 = hdr(&h, "x-wopi-itemversion").unwrap();
    assert!(
        v0 != v1 && v1 != v2 && v0 != v2,
        "versions change on every write"
    );
    let (_, _, body) = s
        .wopi("GET", &format!("{file}/contents"), &token, &[], "")
        .await;
    assert_eq!(body, b"edit two, final");
    let info = json(&s.wopi("GET", &file, &token, &[], "").await.2);
    assert_eq!(info["Size"], 15);
    assert_eq!(info["Version"], v2.as_str());

    let (st, h, _) = s
        .wopi(
            "POST",
            &file,
            &token,
            &[("x-wopi-override", "UNLOCK"), ("x-wopi-lock", "L1")],
            "",
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(hdr(&h, "x-wopi-itemversion").unwrap(), v2);
    let twos = s.int.wait_status(2, 1, T).await;
    let cb = &twos[0];
    assert_eq!(cb["key"], "key-1");
    assert_eq!(cb["users"], json!(["u1"]));
    assert_eq!(cb["actions"], json!([{"type": 0, "userid": "u1"}]));
    assert_eq!(cb["filetype"], "docx");
    assert_eq!(cb["notmodified"], false);
    assert!(cb["lastsave"].is_string());
    let ones: Vec<Value> = s
        .int
        .callbacks()
        .into_iter()
        .filter(|c| c["status"] == 1)
        .collect();
    assert_eq!(ones[0]["users"], json!(["u1"]));
    assert_eq!(ones[0]["actions"], json!([{"type": 1, "userid": "u1"}]));
    assert_eq!(
        s.int.log.lock().unwrap().saved,
        vec![(2, b"edit two, final".to_vec())]
    );
    assert!(
        s.int.log.lock().unwrap().downloads.iter().all(|ok| *ok),
        "document.url fetched with Docs' JWT"
    );
    assert_eq!(s.int.log.lock().unwrap().bad_tokens, 0);
    // Counted once the integrator's answer is read, just after it recorded the save.
    assert!(
        s.gw.wait_metric(
            "wopi_gateway_callbacks_sent_total{result=\"ok\",status=\"2\"}",
            1.0
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_editors_share_one_file_and_lock_and_closing_unchanged_sends_status_4() {
    let s = setup("", "", "").await;
    s.int.put_doc("shared.docx", b"abc");
    let (fa, ta, _) = open(
        &s,
        "shared.docx",
        "k-shared",
        Some(("alice", "Alice")),
        true,
    )
    .await;
    let (fb, tb, _) = open(&s, "shared.docx", "k-shared", Some(("bob", "Bob")), true).await;
    assert_eq!(fa, fb);
    let file = format!("/wopi/files/{fa}");
    assert_eq!(
        s.wopi(
            "POST",
            &file,
            &ta,
            &[("x-wopi-override", "LOCK"), ("x-wopi-lock", "shared")],
            ""
        )
        .await
        .0,
        200
    );
    assert_eq!(
        s.wopi(
            "POST",
            &file,
            &tb,
            &[("x-wopi-override", "LOCK"), ("x-wopi-lock", "shared")],
            ""
        )
        .await
        .0,
        200
    );
    let ones = s.int.wait_status(1, 2, T).await;
    assert_eq!(ones[1]["users"], json!(["alice", "bob"]));
    assert_eq!(ones[1]["actions"], json!([{"type": 1, "userid": "bob"}]));
    // Locks are not owned by a user: Bob unlocks Alice's lock.
    assert_eq!(
        s.wopi(
            "POST",
            &file,
            &tb,
            &[("x-wopi-override", "UNLOCK"), ("x-wopi-lock", "shared")],
            ""
        )
        .await
        .0,
        200
    );
    let fours = s.int.wait_status(4, 1, T).await;
    assert_eq!(fours[0]["key"], "k-shared");
    assert!(s.int.callbacks().iter().all(|c| c["status"] != 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lock_conflict_row() {
    let s = setup("", "", "").await;
    s.int.put_doc("l.docx", b"non-empty");
    let (fid, tok, _) = open(&s, "l.docx", "k-l", Some(("u", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    let c = format!("{f}/contents");
    let op =
        |o: &'static str, lock: &'static str| vec![("x-wopi-override", o), ("x-wopi-lock", lock)];
    // Unlocked file.
    let (st, h, _) = s
        .wopi("POST", &f, &tok, &[("x-wopi-override", "GET_LOCK")], "")
        .await;
    assert_eq!((st, hdr(&h, "x-wopi-lock").as_deref()), (200, Some("")));
    for o in ["UNLOCK", "REFRESH_LOCK"] {
        let (st, h, _) = s.wopi("POST", &f, &tok, &op(o, "A"), "").await;
        assert_eq!(
            (st, hdr(&h, "x-wopi-lock").as_deref()),
            (409, Some("")),
            "{o} on an unlocked file"
        );
    }
    let (st, h, _) = s
        .wopi(
            "POST",
            &f,
            &tok,
            &[
                ("x-wopi-override", "LOCK"),
                ("x-wopi-lock", "B"),
                ("x-wopi-oldlock", "A"),
            ],
            "",
        )
        .await;
    assert_eq!(
        (st, hdr(&h, "x-wopi-lock").as_deref()),
        (409, Some("")),
        "UnlockAndRelock on an unlocked file"
    );
    let (st, h, _) = s
        .wopi("POST", &c, &tok, &[("x-wopi-override", "PUT")], "x")
        .await;
    assert_eq!(
        (st, hdr(&h, "x-wopi-lock").as_deref()),
        (409, Some("")),
        "PutFile unlocked, non-empty"
    );
    // Missing or empty lock header → 400.
    assert_eq!(
        s.wopi("POST", &f, &tok, &[("x-wopi-override", "LOCK")], "")
            .await
            .0,
        400
    );
    assert_eq!(s.wopi("POST", &f, &tok, &op("LOCK", ""), "").await.0, 400);
    let long = "x".repeat(1025);
    assert_eq!(
        s.wopi(
            "POST",
            &f,
            &tok,
            &[("x-wopi-override", "LOCK"), ("x-wopi-lock", &long)],
            ""
        )
        .await
        .0,
        400
    );
    // Locked with A.
    assert_eq!(s.wopi("POST", &f, &tok, &op("LOCK", "A"), "").await.0, 200);
    assert_eq!(
        s.wopi("POST", &f, &tok, &op("LOCK", "A"), "").await.0,
        200,
        "same id refreshes"
    );
    for (o, lock) in [("LOCK", "B"), ("REFRESH_LOCK", "B"), ("UNLOCK", "B")] {
        let (st, h, _) = s.wopi("POST", &f, &tok, &op(o, lock), "").await;
        assert_eq!(
            (st, hdr(&h, "x-wopi-lock").as_deref()),
            (409, Some("A")),
            "{o} with {lock}"
        );
    }
    let (st, h, _) = s
        .wopi(
            "POST",
            &f,
            &tok,
            &[
                ("x-wopi-override", "LOCK"),
                ("x-wopi-lock", "C"),
                ("x-wopi-oldlock", "B"),
            ],
            "",
        )
        .await;
    assert_eq!((st, hdr(&h, "x-wopi-lock").as_deref()), (409, Some("A")));
    let (st, h, _) = s
        .wopi(
            "POST",
            &c,
            &tok,
            &[("x-wopi-override", "PUT"), ("x-wopi-lock", "B")],
            "x",
        )
        .await;
    assert_eq!((st, hdr(&h, "x-wopi-lock").as_deref()), (409, Some("A")));
    let (st, h, _) = s
        .wopi("POST", &c, &tok, &[("x-wopi-override", "PUT")], "x")
        .await;
    assert_eq!(
        (st, hdr(&h, "x-wopi-lock").as_deref()),
        (409, Some("A")),
        "PutFile without a lock on a locked file"
    );
    let (st, h, _) = s
        .wopi("POST", &f, &tok, &[("x-wopi-override", "GET_LOCK")], "")
        .await;
    assert_eq!((st, hdr(&h, "x-wopi-lock").as_deref()), (200, Some("A")));
    assert_eq!(
        s.wopi("POST", &f, &tok, &op("REFRESH_LOCK", "A"), "")
            .await
            .0,
        200
    );
    assert_eq!(
        s.wopi(
            "POST",
            &f,
            &tok,
            &[
                ("x-wopi-override", "LOCK"),
                ("x-wopi-lock", "C"),
                ("x-wopi-oldlock", "A")
            ],
            ""
        )
        .await
        .0,
        200
    );
    let (_, h, _) = s
        .wopi("POST", &f, &tok, &[("x-wopi-override", "GET_LOCK")], "")
        .await;
    assert_eq!(hdr(&h, "x-wopi-lock").as_deref(), Some("C"));
    assert_eq!(
        s.wopi("POST", &f, &tok, &op("UNLOCK", "C"), "").await.0,
        200
    );
    // Unsupported operations.
    for o in ["PUT_RELATIVE", "RENAME_FILE", "DELETE", "COBALT"] {
        assert_eq!(
            s.wopi(
                "POST",
                &f,
                &tok,
                &[("x-wopi-override", o), ("x-wopi-suggestedtarget", ".docx")],
                ""
            )
            .await
            .0,
            501,
            "{o}"
        );
    }
    assert_eq!(
        s.wopi("GET", &format!("{f}/ancestry"), &tok, &[], "")
            .await
            .0,
        501
    );
    assert_eq!(s.wopi("DELETE", &f, &tok, &[], "").await.0, 405);
    assert!(
        s.gw.metric("wopi_gateway_lock_operations_total{op=\"lock\",result=\"conflict\"}")
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_byte_file_is_created_without_a_lock_and_wopitest_flows() {
    let s = setup("", "", "").await;
    s.int.put_doc("test.wopitest", b"");
    let (fid, tok, _) = open(
        &s,
        "test.wopitest",
        "k-wt",
        Some(("validator", "Validator")),
        true,
    )
    .await;
    let f = format!("/wopi/files/{fid}");
    let info = json(&s.wopi("GET", &f, &tok, &[], "").await.2);
    assert_eq!(info["BaseFileName"], "test.wopitest");
    assert_eq!(info["Size"], 0);
    let (st, _, _) = s
        .wopi(
            "POST",
            &format!("{f}/contents"),
            &tok,
            &[("x-wopi-override", "PUT")],
            "WordBlankDocumentResources\\WordBlankDocument.docxWordBlankDocument.docx",
        )
        .await;
    assert_eq!(st, 200, "PutFile on an unlocked 0-byte file");
    let (_, _, body) = s.wopi("GET", &format!("{f}/contents"), &tok, &[], "").await;
    assert_eq!(
        body,
        b"WordBlankDocumentResources\\WordBlankDocument.docxWordBlankDocument.docx"
    );
    // PutUserInfo stored per user.
    assert_eq!(
        s.wopi(
            "POST",
            &f,
            &tok,
            &[("x-wopi-override", "PUT_USER_INFO")],
            "user info text"
        )
        .await
        .0,
        200
    );
    assert_eq!(
        json(&s.wopi("GET", &f, &tok, &[], "").await.2)["UserInfo"],
        "user info text"
    );
    assert_eq!(
        s.wopi(
            "POST",
            &f,
            &tok,
            &[("x-wopi-override", "PUT_USER_INFO")],
            "x".repeat(1025)
        )
        .await
        .0,
        400
    );
    // X-WOPI-MaxExpectedSize.
    assert_eq!(
        s.wopi(
            "GET",
            &format!("{f}/contents"),
            &tok,
            &[("x-wopi-maxexpectedsize", "3")],
            ""
        )
        .await
        .0,
        412
    );
    assert_eq!(
        s.wopi(
            "GET",
            &format!("{f}/contents"),
            &tok,
            &[("x-wopi-maxexpectedsize", "abc")],
            ""
        )
        .await
        .0,
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_expiry_ends_the_session_with_status_2() {
    let (int, client) = peers().await;
    let rest = host_face_toml(
        &int,
        "[locks]\nttl_seconds = 1\nsweep_interval_ms = 50",
        "",
        "",
    );
    let gw = Gateway::start(Config {
        rest,
        ..Default::default()
    });
    let s = Setup { gw, int, client };
    s.int.put_doc("e.docx", b"v0");
    let (fid, tok, _) = open(&s, "e.docx", "k-e", Some(("u", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    assert_eq!(
        s.wopi(
            "POST",
            &f,
            &tok,
            &[("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")],
            ""
        )
        .await
        .0,
        200
    );
    assert_eq!(
        s.wopi(
            "POST",
            &format!("{f}/contents"),
            &tok,
            &[("x-wopi-override", "PUT"), ("x-wopi-lock", "L")],
            "v1"
        )
        .await
        .0,
        200
    );
    let twos = s.int.wait_status(2, 1, T).await;
    assert_eq!(twos[0]["key"], "k-e");
    assert_eq!(s.int.log.lock().unwrap().saved, vec![(2, b"v1".to_vec())]);
    let (_, h, _) = s
        .wopi("POST", &f, &tok, &[("x-wopi-override", "GET_LOCK")], "")
        .await;
    assert_eq!(
        hdr(&h, "x-wopi-lock").as_deref(),
        Some(""),
        "the expired lock is gone"
    );
    assert!(s.gw.metric("wopi_gateway_locks_expired_total").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forcesave_delivers_every_putfile_as_status_6() {
    let s = setup("", "forcesave = true", "").await;
    s.int.put_doc("f.docx", b"0");
    let (fid, tok, _) = open(&s, "f.docx", "k-f", Some(("u", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    s.wopi(
        "POST",
        &f,
        &tok,
        &[("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")],
        "",
    )
    .await;
    for body in ["one", "two"] {
        assert_eq!(
            s.wopi(
                "POST",
                &format!("{f}/contents"),
                &tok,
                &[("x-wopi-override", "PUT"), ("x-wopi-lock", "L")],
                body
            )
            .await
            .0,
            200
        );
    }
    let sixes = s.int.wait_status(6, 2, T).await;
    assert_eq!(sixes[0]["forcesavetype"], 1);
    assert_eq!(sixes[0]["actions"], json!([{"type": 2, "userid": "u"}]));
    s.wopi(
        "POST",
        &f,
        &tok,
        &[("x-wopi-override", "UNLOCK"), ("x-wopi-lock", "L")],
        "",
    )
    .await;
    let twos = s.int.wait_status(2, 1, T).await;
    assert_eq!(
        twos[0]["notmodified"], true,
        "the last state was already force-saved"
    );
    let saved = s.int.log.lock().unwrap().saved.clone();
    assert_eq!(
        saved,
        vec![
            (6, b"one".to_vec()),
            (6, b"two".to_vec()),
            (2, b"two".to_vec())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrator_down_during_delivery_gets_it_later() {
    let s = setup("", "", "").await;
    s.int.put_doc("d.docx", b"0");
    let (fid, tok, _) = open(&s, "d.docx", "k-d", Some(("u", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    s.int
        .fail_next
        .store(3, std::sync::atomic::Ordering::SeqCst);
    s.edit_session(&f, &tok, "saved while down").await;
    s.int.wait_status(2, 1, T).await;
    assert_eq!(
        s.int.log.lock().unwrap().saved,
        vec![(2, b"saved while down".to_vec())]
    );
    assert!(
        s.gw.metric("wopi_gateway_callbacks_sent_total{result=\"error\",status=\"1\"}")
            .await
            >= 1.0
    );
    let (_, _, body) = get(&s.gw.admin_url("/deliveries")).await;
    assert_eq!(json(&body)["pending"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_delivery_survives_a_crash() {
    let (int, client) = peers().await;
    let rest = host_face_toml(&int, "", "", "");
    let keep = crate::support::TempDir::new("crash");
    let data = keep.path().join("data");
    let port = crate::support::free_port();
    let cfg = Config {
        rest,
        data_dir: Some(data.clone()),
        port: Some(port),
        ..Default::default()
    };
    let s = Setup {
        gw: Gateway::start(cfg.clone()),
        int,
        client,
    };
    s.int.put_doc("c.docx", b"0");
    let (fid, tok, _) = open(&s, "c.docx", "k-c", Some(("u", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    s.int
        .fail_next
        .store(1_000_000, std::sync::atomic::Ordering::SeqCst);
    s.edit_session(&f, &tok, "survives").await;
    let (_, _, body) = get(&s.gw.admin_url("/deliveries")).await;
    assert!(
        json(&body)["pending"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == 2)
    );
    let Setup {
        mut gw,
        int,
        client,
    } = s;
    gw.kill();
    int.fail_next.store(0, std::sync::atomic::Ordering::SeqCst);
    let gw2 = Gateway::start(cfg);
    let s = Setup {
        gw: gw2,
        int,
        client,
    };
    s.int.wait_status(2, 1, T).await;
    assert_eq!(
        s.int.log.lock().unwrap().saved,
        vec![(2, b"survives".to_vec())]
    );
    // The staged content is still served after the restart.
    let (_, _, body) = s.wopi("GET", &format!("{f}/contents"), &tok, &[], "").await;
    assert_eq!(body, b"survives");
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_proofs_get_500() {
    let s = setup("", "", "").await;
    s.int.put_doc("p.docx", b"p");
    let (fid, tok, _) = open(&s, "p.docx", "k-p", Some(("u", "U")), true).await;
    let path = with_token(&format!("/wopi/files/{fid}"), &tok);
    let base = format!("http://{}", s.gw.public);
    let now = wopi::ticks::from_unix_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let minute = 60 * wopi::ticks::TICKS_PER_SECOND;
    // Valid with the current key, and with only the old key in X-WOPI-Proof.
    assert_eq!(
        s.client.send(&base, "GET", &path, &tok, &[], "").await.0,
        200
    );
    let rotated = WopiClient {
        current: s
            .client
            .old
            .as_ref()
            .map(|k| wopi::proof::SigningKey::from_pem(k.to_pem()).unwrap())
            .unwrap(),
        old: None,
    };
    assert_eq!(
        rotated.send(&base, "GET", &path, &tok, &[], "").await.0,
        200,
        "X-WOPI-Proof with the old key"
    );
    // Forged: another key pair.
    let forger = WopiClient::new();
    let (st, h, _) = forger.send(&base, "GET", &path, &tok, &[], "").await;
    assert_eq!(st, 500);
    assert!(hdr(&h, "x-wopi-servererror").unwrap().contains("proof"));
    // Stale and future.
    assert_eq!(
        s.client
            .send_at(&base, "GET", &path, &tok, &[], "", now - 21 * minute)
            .await
            .0,
        500
    );
    assert_eq!(
        s.client
            .send_at(&base, "GET", &path, &tok, &[], "", now + 10 * minute)
            .await
            .0,
        500
    );
    // Missing.
    assert_eq!(send("GET", &format!("{base}{path}"), &[], "").await.0, 500);
    // Signed for another URL.
    let other = with_token(&format!("/wopi/files/{fid}/contents"), &tok);
    let p = s
        .client
        .current
        .sign(None, &tok, &format!("{base}{other}"), now)
        .unwrap();
    let (st, _, _) = send(
        "GET",
        &format!("{base}{path}"),
        &[
            ("x-wopi-timestamp", &p.timestamp),
            ("x-wopi-proof", &p.proof),
        ],
        "",
    )
    .await;
    assert_eq!(st, 500);
    for reason in ["signature", "stale", "future", "missing"] {
        assert!(
            s.gw.metric(&format!(
                "wopi_gateway_proof_verifications_total{{result=\"{reason}\"}}"
            ))
            .await
                >= 1.0,
            "{reason}"
        );
    }
    assert!(s.gw.stderr().contains("WOPI proof refused"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_401_and_other_files_404() {
    let s = setup("", "", "").await;
    s.int.put_doc("t.docx", b"t");
    s.int.put_doc("u.docx", b"u");
    let (fid, tok, _) = open(&s, "t.docx", "k-t", Some(("u", "U")), true).await;
    let (fid2, _, _) = open(&s, "u.docx", "k-u", Some(("u", "U")), true).await;
    assert_eq!(
        s.wopi("GET", &format!("/wopi/files/{fid}"), "garbage", &[], "")
            .await
            .0,
        401
    );
    let mut tampered = tok.clone();
    tampered.pop();
    assert_eq!(
        s.wopi("GET", &format!("/wopi/files/{fid}"), &tampered, &[], "")
            .await
            .0,
        401
    );
    assert_eq!(
        s.wopi("GET", &format!("/wopi/files/{fid2}"), &tok, &[], "")
            .await
            .0,
        404
    );
    // A view-only token cannot lock or write.
    let (_, view, _) = open(&s, "t.docx", "k-t", Some(("v", "Viewer")), false).await;
    let info = json(
        &s.wopi("GET", &format!("/wopi/files/{fid}"), &view, &[], "")
            .await
            .2,
    );
    assert_eq!(
        (info["UserCanWrite"].clone(), info["ReadOnly"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(
        s.wopi(
            "POST",
            &format!("/wopi/files/{fid}"),
            &view,
            &[("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")],
            ""
        )
        .await
        .0,
        401
    );
    // Anonymous users still get a UserId.
    let (_, anon, _) = open(&s, "t.docx", "k-t", None, true).await;
    let info = json(
        &s.wopi("GET", &format!("/wopi/files/{fid}"), &anon, &[], "")
            .await
            .2,
    );
    assert_eq!(info["IsAnonymousUser"], true);
    assert!(info["UserId"].as_str().unwrap().starts_with("anonymous-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrator_configs_are_checked() {
    let s = setup("", "", "").await;
    let url = s.gw.url("/api/v1/sessions?integrator=nc");
    let post = |body: String| {
        let url = url.clone();
        async move { send("POST", &url, &[("content-type", "application/json")], body).await }
    };
    let good = json!({"document": {"key": "k", "url": format!("{}/doc/a.docx", s.int.origin()), "fileType": "docx"}, "editorConfig": {"callbackUrl": format!("{}/callback", s.int.origin())}});
    let sign = |v: &Value, secret: &str| {
        docs_api::jwt::sign(&docs_api::Secret::new(secret), v.as_object().unwrap())
    };
    // Unsigned.
    assert_eq!(post(good.to_string()).await.0, 401);
    // Wrong secret.
    let (st, _, body) =
        post(json!({"token": sign(&good, "another-secret-0123456789")}).to_string()).await;
    assert_eq!(st, 401);
    assert!(String::from_utf8_lossy(&body).contains("signature"));
    // alg none.
    assert_eq!(
        post(json!({"token": "eyJhbGciOiJub25lIn0.eyJkb2N1bWVudCI6e319."}).to_string())
            .await
            .0,
        401
    );
    // Expired.
    let mut expired = good.clone();
    expired["exp"] = json!(1000);
    assert_eq!(
        post(json!({"token": sign(&expired, crate::support::fakes::SECRET)}).to_string())
            .await
            .0,
        401
    );
    // Missing key / url.
    for ptr in ["key", "url"] {
        let mut v = good.clone();
        v["document"].as_object_mut().unwrap().remove(ptr);
        let (st, _, body) =
            post(json!({"token": sign(&v, crate::support::fakes::SECRET)}).to_string()).await;
        assert_eq!(st, 400);
        assert!(String::from_utf8_lossy(&body).contains(&format!("document.{ptr}")));
    }
    // Origins.
    let mut outside = good.clone();
    outside["document"]["url"] = json!("http://evil.example/doc");
    assert_eq!(
        post(json!({"token": sign(&outside, crate::support::fakes::SECRET)}).to_string())
            .await
            .0,
        403
    );
    let mut cb = good.clone();
    cb["editorConfig"]["callbackUrl"] = json!("http://evil.example/cb");
    assert_eq!(
        post(json!({"token": sign(&cb, crate::support::fakes::SECRET)}).to_string())
            .await
            .0,
        403
    );
    // Not JSON, unknown integrator.
    assert_eq!(post("nope".into()).await.0, 400);
    assert_eq!(
        send(
            "POST",
            &s.gw.url("/api/v1/sessions?integrator=zz"),
            &[],
            json!({"token": "x"}).to_string()
        )
        .await
        .0,
        400
    );
    // The good one, with fields outside the token ignored.
    let (st, _, _) = post(json!({"token": sign(&good, crate::support::fakes::SECRET), "document": {"url": "http://evil.example/"}}).to_string()).await;
    assert_eq!(st, 201);
    assert!(
        s.gw.metric(
            "wopi_gateway_jwt_verifications_total{kind=\"integrator_config\",result=\"signature\"}"
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_page_posts_the_token_to_the_client() {
    let s = setup("", "", "").await;
    s.int.put_doc("o.docx", b"o");
    let cfg = s.int.config("o.docx", "k-o", Some(("u", "U")), true);
    let (st, h, body) = get(&s
        .gw
        .url(&format!("/open?integrator=nc&config={cfg}&action=edit")))
    .await;
    assert_eq!(st, 200);
    assert!(hdr(&h, "content-type").unwrap().starts_with("text/html"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("action=\"http://office.test/hosting/edit?ui=en&amp;wopisrc="));
    assert!(page.contains("name=\"access_token\""));
    assert!(page.contains("name=\"access_token_ttl\""));
    assert_eq!(
        get(&s
            .gw
            .url(&format!("/open?integrator=nc&config={cfg}&action=nope")))
        .await
        .0,
        404
    );
    assert_eq!(get(&s.gw.url("/open?integrator=nc")).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn putfile_over_the_limit_is_413_and_nothing_changes() {
    let s = setup("", "", "[server.body_limit_bytes]\nwopi = 1000\n").await;
    s.int.put_doc("b.docx", b"small");
    let (fid, tok, _) = open(&s, "b.docx", "k-b", Some(("u", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    s.wopi(
        "POST",
        &f,
        &tok,
        &[("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")],
        "",
    )
    .await;
    let (st, _, _) = s
        .wopi(
            "POST",
            &format!("{f}/contents"),
            &tok,
            &[("x-wopi-override", "PUT"), ("x-wopi-lock", "L")],
            vec![b'x'; 5000],
        )
        .await;
    assert_eq!(st, 413);
    let (_, _, body) = s.wopi("GET", &format!("{f}/contents"), &tok, &[], "").await;
    assert_eq!(body, b"small");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = setup("", "", "").await;
    let body = json!({"token": s.int.config("g.docx", "k-g", Some(("u", "U")), true)}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut tcp = tokio::net::TcpStream::connect(s.gw.public).await.unwrap();
    let req = format!(
        "POST /api/v1/sessions?integrator=nc HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        s.gw.public,
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.gw.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused once shutdown began.
    assert!(
        tokio::net::TcpStream::connect(s.gw.public).await.is_err(),
        "listener closed"
    );
    tcp.write_all(tail.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    assert!(s.gw.wait(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_list_retry_and_discard_pending_deliveries() {
    let s = setup("", "", "").await;
    s.int.put_doc("q.docx", b"0");
    let (fid, tok, _) = open(&s, "q.docx", "k-q", Some(("u", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    s.int
        .fail_next
        .store(1_000_000, std::sync::atomic::Ordering::SeqCst);
    s.edit_session(&f, &tok, "q1").await;
    let config = s.gw.config.to_str().unwrap().to_owned();
    let (code, out, _) = tokio::task::spawn_blocking(move || {
        crate::support::run_cli(&["deliveries", "list", "--config", &config])
    })
    .await
    .unwrap();
    assert_eq!(code, 0);
    assert!(
        out.contains("2 pending") || out.contains("pending"),
        "{out}"
    );
    let (_, _, body) = get(&s.gw.admin_url("/deliveries")).await;
    let pending = json(&body)["pending"].as_array().unwrap().clone();
    let two = pending.iter().find(|d| d["status"] == 2).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(out.contains(&two), "{out}");
    assert_eq!(
        send(
            "POST",
            &s.gw.admin_url(&format!("/deliveries/{two}/retry")),
            &[],
            ""
        )
        .await
        .0,
        200
    );
    assert_eq!(
        send(
            "POST",
            &s.gw.admin_url(&format!("/deliveries/{two}/discard")),
            &[],
            ""
        )
        .await
        .0,
        200
    );
    assert_eq!(
        send("POST", &s.gw.admin_url("/deliveries/nope/discard"), &[], "")
            .await
            .0,
        404
    );
    let (_, _, body) = get(&s.gw.admin_url("/deliveries")).await;
    assert!(
        json(&body)["pending"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["id"] != two.as_str())
    );
    let discarded = s.gw.data_dir().join("spool/host/deliveries/discarded");
    assert!(
        discarded.join(format!("{two}.json")).exists()
            && discarded.join(format!("{two}.bin")).exists(),
        "discarded deliveries are kept aside, not deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_logs_name_the_group_and_the_allowlist_rule() {
    let s = setup("", "", "").await;
    s.int.put_doc("log.docx", b"x");
    let (fid, tok, _) = open(&s, "log.docx", "k-log", Some(("u", "U")), true).await;
    s.wopi("GET", &format!("/wopi/files/{fid}"), &tok, &[], "")
        .await;
    let log = s.gw.stderr();
    assert!(!log.contains('\u{1b}'), "no terminal colours in a log file");
    let plain = log.replace('"', "");
    let line = plain
        .lines()
        .find(|l| l.contains("stage=session-opened"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("group=integrator") && line.contains("allow_rule=any"),
        "{line}"
    );
    let line = plain.lines().find(|l| l.contains("WOPI request")).unwrap();
    assert!(
        line.contains("group=wopi")
            && line.contains("allow_rule=any")
            && line.contains("op=CheckFileInfo"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lock_store_serves_wopi_locks_and_fails_closed() {
    assert!(
        std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok(),
        "redis-server is required: apt-get install redis-server (scripts/test installs it when run as root)"
    );
    let port = crate::support::free_port();
    let mut redis = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (int, client) = peers().await;
    let rest = host_face_toml(
        &int,
        &format!("[locks]\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}/\""),
        "",
        "",
    );
    let s = Setup {
        gw: Gateway::start(Config {
            rest,
            ..Default::default()
        }),
        int,
        client,
    };
    s.int.put_doc("r.docx", b"redis");
    let (fid, tok, _) = open(&s, "r.docx", "k-r", Some(("u", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    assert_eq!(
        s.wopi(
            "POST",
            &f,
            &tok,
            &[("x-wopi-override", "LOCK"), ("x-wopi-lock", "A")],
            ""
        )
        .await
        .0,
        200
    );
    let (st, h, _) = s
        .wopi(
            "POST",
            &f,
            &tok,
            &[("x-wopi-override", "LOCK"), ("x-wopi-lock", "B")],
            "",
        )
        .await;
    assert_eq!((st, hdr(&h, "x-wopi-lock").as_deref()), (409, Some("A")));
    let _ = redis.kill();
    let _ = redis.wait();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (st, _, _) = s
        .wopi("POST", &f, &tok, &[("x-wopi-override", "GET_LOCK")], "")
        .await;
    assert_eq!(st, 503, "Redis down: fail closed");
    let (st, _, _) = s
        .wopi(
            "POST",
            &f,
            &tok,
            &[("x-wopi-override", "UNLOCK"), ("x-wopi-lock", "A")],
            "",
        )
        .await;
    assert_eq!(st, 503);
    assert!(
        s.gw.metric("wopi_gateway_lock_operations_total{op=\"get\",result=\"unavailable\"}")
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_urls_refuse_missing_forged_and_foreign_tokens() {
    let s = setup("", "", "").await;
    assert_eq!(get(&s.gw.url("/api/v1/download/x")).await.0, 401);
    assert_eq!(
        get(&s.gw.url("/api/v1/download/x?token=garbage")).await.0,
        401
    );
    // A real download URL from a delivery, replayed against another id, is refused.
    s.int.put_doc("d2.docx", b"0");
    let (fid, tok, _) = open(&s, "d2.docx", "k-d2", Some(("u", "U")), true).await;
    s.edit_session(&format!("/wopi/files/{fid}"), &tok, "content")
        .await;
    s.int.wait_status(2, 1, T).await;
    let url = s
        .int
        .callbacks()
        .into_iter()
        .find(|c| c["status"] == 2)
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get(&url).await.0, 200);
    let (path, query) = url.split_once('?').unwrap();
    let other = format!("{}/other-id?{query}", path.rsplit_once('/').unwrap().0);
    assert_eq!(get(&other).await.0, 403);
    // A callback body that is not JSON gets 400 from the client face's endpoint.
    assert_eq!(
        send(
            "POST",
            &s.gw.url("/docs/callback/k"),
            &[("content-type", "application/json")],
            "{nope"
        )
        .await
        .0,
        400
    );
}

/// Asserts that none of `secrets` appears in anything the gateway printed.
fn assert_no_secret_logged(gw: &Gateway, secrets: &[&str]) {
    let (out, err) = (gw.stdout(), gw.stderr());
    assert!(
        err.contains("WOPI proof refused"),
        "the forged proof was logged: {err}"
    );
    for secret in secrets {
        assert!(secret.len() >= 8, "a secret worth looking for: {secret}");
        assert!(!out.contains(secret), "{secret} on stdout:\n{out}");
        assert!(!err.contains(secret), "{secret} on stderr:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_logs_in_either_format() {
    for format in ["human", "json"] {
        let s = setup("", "", &format!("log_format = \"{format}\"")).await;
        s.int.put_doc("m.docx", b"marker content");
        let (fid, token, _) = open(&s, "m.docx", "key-m", Some(("u1", "Ada")), true).await;
        let file = format!("/wopi/files/{fid}");
        // A good token with a good proof, then with a forged one (another client's keys).
        assert_eq!(s.wopi("GET", &file, &token, &[], "").await.0, 200);
        let forger = WopiClient::new();
        let forged = forger
            .send(
                &format!("http://{}", s.gw.public),
                "GET",
                &with_token(&file, &token),
                &token,
                &[],
                "",
            )
            .await;
        assert_eq!(forged.0, 500, "forged proof refused");
        // Bad tokens, one JWT-shaped, one not, each with a valid proof over it.
        let bad_jwt = "eyJhbGciOiJIUzI1NiJ9.eyJNQVJLRVIiOjF9.TUFSS0VSLUJBRC1KV1Q";
        let bad_plain = "MARKER-BAD-TOKEN-7f3a";
        for bad in [bad_jwt, bad_plain] {
            assert_eq!(s.wopi("GET", &file, bad, &[], "").await.0, 401);
        }
        // An edit, so a status 2 callback carries a download URL with its token.
        s.edit_session(&file, &token, "edited bytes").await;
        let cb = s.int.wait_status(2, 1, T).await;
        // lastsave in JavaScript's ISO form, as Docs sends it: milliseconds, 3 digits.
        let lastsave = cb[0]["lastsave"].as_str().unwrap();
        assert_eq!(lastsave.len(), 24, "{lastsave}");
        assert!(
            lastsave.ends_with('Z') && lastsave.as_bytes()[19] == b'.',
            "{lastsave}"
        );
        let url = cb[0]["url"].as_str().unwrap().to_owned();
        let dl_token = url.split("token=").nth(1).unwrap().to_owned();
        let bad_dl = "MARKER-BAD-DOWNLOAD-9c1d";
        let (st, _, _) = get(&s.gw.url(&format!("/api/v1/download/{fid}?token={bad_dl}"))).await;
        assert_eq!(st, 401);
        // Bearer credentials in a header.
        let (st, _, _) = send(
            "GET",
            &s.gw.url(&format!("{file}?x=1")),
            &[("authorization", "Bearer MARKER-BEARER-55aa")],
            "",
        )
        .await;
        assert_eq!(
            st, 500,
            "no proof for a bearer call: refused before the token"
        );
        let sig = token.rsplit('.').next().unwrap();
        // As it travels in a query: percent-encoded.
        let encoded = with_token("", &token);
        let encoded = encoded
            .trim_start_matches("?access_token=")
            .split('&')
            .next()
            .unwrap();
        assert_no_secret_logged(
            &s.gw,
            &[
                &token,
                encoded,
                sig,
                bad_jwt,
                "TUFSS0VSLUJBRC1KV1Q",
                bad_plain,
                &dl_token,
                bad_dl,
                "MARKER-BEARER-55aa",
            ],
        );
        if format == "json" {
            for line in s.gw.stdout().lines().chain(s.gw.stderr().lines()) {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                assert!(
                    v["message"].is_string() || v["fields"].is_object(),
                    "{line}"
                );
            }
            assert!(s.gw.stdout().contains("listening role=public addr="));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_urls_escaping_the_allowed_origins_are_refused() {
    let (int, client) = peers().await;
    let rest = host_face_toml(&int, "", "", "").replace(
        &format!("allowed_origins = [\"{}\"]", int.origin()),
        &format!("allowed_origins = [\"{}/doc\"]", int.origin()),
    );
    let gw = Gateway::start(Config {
        rest,
        ..Default::default()
    });
    let s = Setup { gw, int, client };
    let o = s.int.origin();
    for (doc_url, callback) in [
        (format!("{o}/doc/../admin"), format!("{o}/doc/cb")),
        (format!("{o}/doc/%2e%2e/admin"), format!("{o}/doc/cb")),
        (format!("{o}/doc/a"), format!("{o}/doc/%2E%2E%2Fcallback")),
        (format!("{o}/doc/a"), format!("{o}/callback")),
        (
            format!("http://u:p@{}/doc/a", s.int.addr),
            format!("{o}/doc/cb"),
        ),
    ] {
        let cfg = json!({
            "document": {"fileType": "docx", "key": "k", "title": "a.docx", "url": doc_url},
            "editorConfig": {"callbackUrl": callback},
        });
        let token = docs_api::jwt::sign(&s.int.secret, cfg.as_object().unwrap());
        let (st, _, body) = send(
            "POST",
            &s.gw.url("/api/v1/sessions?integrator=nc"),
            &[("content-type", "application/json")],
            json!({"token": token}).to_string(),
        )
        .await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(st, 403, "{doc_url} {callback}: {text}");
        assert!(text.contains("allowed_origins"), "{text}");
    }
    assert!(s.int.log.lock().unwrap().downloads.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_url_with_a_path_prefix_serves_both_forms() {
    let (int, client) = peers().await;
    let gw = Gateway::start(Config {
        rest: host_face_toml(&int, "", "", ""),
        public_path: "/office/".into(),
        ..Default::default()
    });
    let s = Setup { gw, int, client };
    s.int.put_doc("p.docx", b"prefixed");
    let direct = format!("http://{}", s.gw.public);
    let public = format!("{direct}/office");
    // Opening a session under the prefix, as a browser or integrator reaching it directly.
    let token = s.int.config("p.docx", "key-p", Some(("u1", "Ada")), true);
    let (st, _, body) = send(
        "POST",
        &format!("{public}/api/v1/sessions?integrator=nc"),
        &[("content-type", "application/json")],
        json!({"token": token}).to_string(),
    )
    .await;
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    let opened = json(&body);
    let fid = opened["file_id"].as_str().unwrap();
    let token = opened["access_token"].as_str().unwrap();
    assert_eq!(opened["wopi_src"], format!("{public}/wopi/files/{fid}"));
    let pq = with_token(&format!("/wopi/files/{fid}"), token);
    let now = wopi::ticks::from_unix_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    // Signed for the public URL, sent with the prefix (no front proxy) …
    let (st, _, body) = s
        .client
        .send_via(&public, &public, "GET", &pq, token, &[], "", now)
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["BaseFileName"], "p.docx");
    // … and without it (a front proxy stripped the prefix): the proof is still over the
    // public URL, and verifies.
    let (st, _, body) = s
        .client
        .send_via(&public, &direct, "GET", &pq, token, &[], "", now)
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    // A proof over the URL without the prefix is not what the client would sign: refused.
    let (st, _, _) = s
        .client
        .send_via(&direct, &direct, "GET", &pq, token, &[], "", now)
        .await;
    assert_eq!(st, 500);
    // Discovery and other routes under the prefix are served, not proxied.
    let (st, _, _) = get(&format!("{public}/hosting/capabilities")).await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_url_for_servers_public_url_for_browsers() {
    let (int, client) = peers().await;
    let port = crate::support::free_port();
    let internal = format!("http://localhost:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let gw = Gateway::start(Config {
        server: format!("internal_url = \"{internal}\""),
        rest: host_face_toml(&int, "", "", ""),
        port: Some(port),
        ..Default::default()
    });
    let s = Setup { gw, int, client };
    s.int.put_doc("i.docx", b"internal");
    let (fid, token, opened) = open(&s, "i.docx", "key-i", Some(("u1", "Ada")), true).await;
    // WOPI clients call WOPISrc from their servers: the internal base.
    assert_eq!(opened["wopi_src"], format!("{internal}/wopi/files/{fid}"));
    let pq = with_token(&format!("/wopi/files/{fid}"), &token);
    let now = wopi::ticks::from_unix_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    // A proof over whichever URL the client used verifies.
    for base in [&internal, &public] {
        let (st, _, body) = s
            .client
            .send_via(base, base, "GET", &pq, &token, &[], "", now)
            .await;
        assert_eq!(st, 200, "{base}: {}", String::from_utf8_lossy(&body));
    }
    // One signed for a URL the gateway is not known by is refused.
    let (st, _, _) = s
        .client
        .send_via(
            "http://elsewhere.example",
            &public,
            "GET",
            &pq,
            &token,
            &[],
            "",
            now,
        )
        .await;
    assert_eq!(st, 500);
    // The integrator downloads saves from its server: the internal base.
    s.edit_session(&format!("/wopi/files/{fid}"), &token, "saved")
        .await;
    let cb = s.int.wait_status(2, 1, T).await;
    assert!(
        cb[0]["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{internal}/api/v1/download/")),
        "{}",
        cb[0]
    );
    assert_eq!(s.int.log.lock().unwrap().saved[0].1, b"saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_url_serves_the_current_content_and_nothing_else() {
    let s = setup("download_url_ttl_seconds = 2", "", "").await;
    s.int.put_doc("f.docx", b"first");
    s.int.put_doc("g.docx", b"other");
    let (fid, token, _) = open(&s, "f.docx", "key-f", Some(("u1", "Ada")), true).await;
    let (gid, gtoken, _) = open(&s, "g.docx", "key-g", Some(("u1", "Ada")), true).await;
    let file = format!("/wopi/files/{fid}");
    let info = json(&s.wopi("GET", &file, &token, &[], "").await.2);
    let url = info["FileUrl"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!(
            "http://127.0.0.1:{}/wopi/fileurl/{fid}?token=",
            s.gw.public.port()
        )),
        "{url}"
    );
    // No proof headers needed, and the bytes are GetFile's.
    let (st, _, body) = get(&url).await;
    assert_eq!((st, body.as_slice()), (200, b"first".as_slice()));
    let (_, _, via_getfile) = s
        .wopi("GET", &format!("{file}/contents"), &token, &[], "")
        .await;
    assert_eq!(body, via_getfile);
    // After a PutFile the same URL serves the new content.
    s.edit_session(&file, &token, "second").await;
    assert_eq!(get(&url).await.2, b"second");
    // Refusals: the token of another file, a forged or missing token, tokens swapped.
    let other = json(
        &s.wopi("GET", &format!("/wopi/files/{gid}"), &gtoken, &[], "")
            .await
            .2,
    )["FileUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_token = other.split("token=").nth(1).unwrap();
    assert_eq!(
        get(&s
            .gw
            .url(&format!("/wopi/fileurl/{fid}?token={other_token}")))
        .await
        .0,
        403
    );
    assert_eq!(
        get(&s.gw.url(&format!("/wopi/fileurl/{fid}?token=garbage")))
            .await
            .0,
        401
    );
    assert_eq!(get(&s.gw.url(&format!("/wopi/fileurl/{fid}"))).await.0, 401);
    assert_eq!(
        get(&s.gw.url(&format!("/wopi/fileurl/{fid}?token={token}")))
            .await
            .0,
        401,
        "an access token is not a FileUrl token"
    );
    let file_url_token = url.split("token=").nth(1).unwrap().to_owned();
    assert_eq!(
        s.wopi("GET", &file, &file_url_token, &[], "").await.0,
        401,
        "a FileUrl token is not an access token"
    );
    // It expires with the download-URL lifetime.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(get(&url).await.0, 401);
}
