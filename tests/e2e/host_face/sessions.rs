//! Editing sessions end to end: opening, co-editing, expiry, force-save, the open page, limits, shutdown.

use super::*;

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
    assert_eq!(s.lock_op(&file, &ta, "LOCK", "shared").await, 200);
    assert_eq!(s.lock_op(&file, &tb, "LOCK", "shared").await, 200);
    let ones = s.int.wait_status(1, 2, T).await;
    assert_eq!(ones[1]["users"], json!(["alice", "bob"]));
    assert_eq!(ones[1]["actions"], json!([{"type": 1, "userid": "bob"}]));
    // Locks are not owned by a user: Bob unlocks Alice's lock.
    assert_eq!(s.lock_op(&file, &tb, "UNLOCK", "shared").await, 200);
    let fours = s.int.wait_status(4, 1, T).await;
    assert_eq!(fours[0]["key"], "k-shared");
    assert!(s.int.callbacks().iter().all(|c| c["status"] != 2));
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
    assert_eq!(s.lock_op(&f, &tok, "LOCK", "L").await, 200);
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
    assert!(
        s.gw.wait_metric("wopi_gateway_locks_expired_total", 1.0)
            .await
            >= 1.0
    );
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
async fn a_session_without_a_lock_ends_after_the_idle_timeout() {
    let s = setup("session_idle_timeout_seconds = 1", "", "").await;
    s.int.put_doc("idle.docx", b"idle");
    let (fid, token, _) = open(&s, "idle.docx", "key-idle", Some(("u1", "Ada")), true).await;
    let file = format!("/wopi/files/{fid}");
    // An editor that never locks (status 1 on CheckFileInfo) …
    assert_eq!(s.wopi("GET", &file, &token, &[], "").await.0, 200);
    s.int.wait_status(1, 1, T).await;
    // … is closed by the idle timeout: status 4 (nothing was staged).
    let closed = s.int.wait_status(4, 1, T).await;
    assert_eq!(closed[0]["key"], "key-idle");
    assert!(s.int.callbacks().iter().all(|c| c["status"] != 2));
    // A session that holds a lock is not idle-ended: it ends with its lock.
    let lock = [("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")];
    assert_eq!(s.wopi("POST", &file, &token, &lock, "").await.0, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        s.int
            .callbacks()
            .iter()
            .filter(|c| c["status"] == 4)
            .count(),
        1,
        "no second close while the lock is held: {:?}",
        s.int.callbacks()
    );
    let unlock = [("x-wopi-override", "UNLOCK"), ("x-wopi-lock", "L")];
    assert_eq!(s.wopi("POST", &file, &token, &unlock, "").await.0, 200);
    s.int.wait_status(4, 2, T).await;
}
