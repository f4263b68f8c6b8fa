//! WOPI lock semantics, on the memory and the Redis store.

use super::*;

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
        s.gw.wait_metric(
            "wopi_gateway_lock_operations_total{op=\"lock\",result=\"conflict\"}",
            1.0
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lock_store_serves_wopi_locks_and_fails_closed() {
    let mut redis = crate::support::cluster::Redis::start().await;
    let port = redis.port;
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
    assert_eq!(s.lock_op(&f, &tok, "LOCK", "A").await, 200);
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
    redis.kill();
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
        s.gw.wait_metric(
            "wopi_gateway_lock_operations_total{op=\"get\",result=\"unavailable\"}",
            1.0
        )
        .await
            >= 1.0
    );
}
