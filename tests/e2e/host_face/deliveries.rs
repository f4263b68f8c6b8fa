//! Callbacks to integrators: retries, crashes, the operator API, download URLs and FileUrl.

use super::*;

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
        s.gw.wait_metric(
            "wopi_gateway_callbacks_sent_total{result=\"error\",status=\"1\"}",
            1.0
        )
        .await
            >= 1.0
    );
    // The record goes once the integrator's answer is back, just after it saw status 2.
    let deadline = std::time::Instant::now() + T;
    loop {
        let (_, _, body) = get(&s.gw.admin_url("/deliveries")).await;
        if json(&body)["pending"] == json!([]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still pending: {}",
            String::from_utf8_lossy(&body)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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
    // Kept aside with the discarded ones (durably), its content still in the content store.
    let hex: String = two.bytes().map(|b| format!("{b:02x}")).collect();
    let record = s.gw.data_dir().join("state/discarded").join(hex);
    let kept: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(kept["id"], two.as_str());
    let key = kept["content"].as_str().unwrap();
    assert!(
        s.gw.data_dir().join("content").join(key).exists(),
        "discarded deliveries are kept aside, not deleted"
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

/// A spool written by the earlier release (per-file folders, deliveries with hard-linked
/// content) is moved into the shared state and the content store at start: the pending
/// delivery goes out with its exact content and the staged file keeps being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_releases_spool_is_carried_over() {
    let (int, client) = peers().await;
    let keep = crate::support::TempDir::new("old-spool");
    let data = keep.path().join("data");
    let host = data.join("spool/host");
    let fdir = host.join("files/oldfile1");
    std::fs::create_dir_all(&fdir).unwrap();
    std::fs::create_dir_all(host.join("deliveries")).unwrap();
    std::fs::write(fdir.join("v100.0.bin"), b"staged before the upgrade").unwrap();
    let meta = json!({
        "file_id": "oldfile1", "integrator": "nc", "doc_url": format!("{}/doc/o.docx", int.origin()),
        "doc_key": "k-old", "title": "o.docx", "file_type": "docx", "owner_id": "u",
        "callback_url": format!("{}/callback", int.origin()), "version": "v100.0",
        "content": "v100.0.bin", "size": 25, "sha256": "x", "modified_ms": 1,
        "staged": true, "session_modified": false, "undelivered": false,
        "editors": [], "last_editor": "u"
    });
    std::fs::write(fdir.join("meta.json"), meta.to_string()).unwrap();
    let delivery = json!({
        "id": "0000000000001-000001", "file_id": "oldfile1", "integrator": "nc",
        "callback_url": format!("{}/callback", int.origin()), "status": 2,
        "body": {"key": "k-old", "status": 2, "users": ["u"], "actions": [{"type": 0, "userid": "u"}]},
        "has_content": true, "filetype": "docx", "created_ms": 1, "attempts": 3,
        "next_attempt_ms": 0, "last_error": "integrator answered error 1"
    });
    std::fs::write(
        host.join("deliveries/0000000000001-000001.json"),
        delivery.to_string(),
    )
    .unwrap();
    std::fs::write(
        host.join("deliveries/0000000000001-000001.bin"),
        b"staged before the upgrade",
    )
    .unwrap();
    let s = Setup {
        gw: Gateway::start(Config {
            rest: host_face_toml(&int, "", "", ""),
            data_dir: Some(data.clone()),
            ..Default::default()
        }),
        int,
        client,
    };
    s.int.wait_status(2, 1, T).await;
    assert_eq!(
        s.int.log.lock().unwrap().saved,
        vec![(2, b"staged before the upgrade".to_vec())]
    );
    assert!(
        data.join("spool/host.migrated").is_dir(),
        "the old spool is kept aside"
    );
    assert!(!host.exists());
    assert!(
        s.gw.wait_log("moved an earlier release's spool")
            .contains("moved an earlier release's spool")
    );
}
