//! Proofs, tokens, config checks, origin escapes, and secrets kept out of the logs.

use super::*;

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
    assert!(
        s.gw.wait_log("WOPI proof refused")
            .contains("WOPI proof refused")
    );
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
        s.gw.wait_metric(
            "wopi_gateway_jwt_verifications_total{kind=\"integrator_config\",result=\"signature\"}",
            1.0
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_logs_name_the_group_and_the_allowlist_rule() {
    let s = setup("", "", "").await;
    s.int.put_doc("log.docx", b"x");
    let (fid, tok, _) = open(&s, "log.docx", "k-log", Some(("u", "U")), true).await;
    s.wopi("GET", &format!("/wopi/files/{fid}"), &tok, &[], "")
        .await;
    s.gw.wait_log("WOPI request");
    let log = s.gw.settled_log();
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

/// Asserts that none of `secrets` appears in anything the gateway printed.
fn assert_no_secret_logged(gw: &Gateway, secrets: &[&str]) {
    gw.wait_log("WOPI proof refused");
    let (out, err) = (gw.stdout(), gw.settled_log());
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
            for line in s.gw.stdout().lines().chain(s.gw.settled_log().lines()) {
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
