//! Which base URL each caller uses: public_url with a path prefix, internal_url.

use super::*;

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
            .starts_with(&format!("{internal}/api/v1/download/"))
            && cb[0]["url"]
                .as_str()
                .unwrap()
                .contains(&format!("?file={fid}&token=")),
        "{}",
        cb[0]
    );
    assert_eq!(s.int.log.lock().unwrap().saved[0].1, b"saved");
}
