//! Docs' command service for host-face documents: answered by the gateway.

use super::*;
use docs_api::jwt;

async fn command(s: &Setup, path: &str, cmd: Value) -> (u16, Value) {
    let token = jwt::sign(&s.int.secret, cmd.as_object().unwrap());
    let (st, _, body) = send(
        "POST",
        &s.gw.url(path),
        &[("content-type", "application/json")],
        json!({ "token": token }).to_string(),
    )
    .await;
    (st, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_forcesave_and_meta_for_host_face_keys() {
    let s = setup("", "", "").await;
    s.int.put_doc("report.docx", b"original bytes");
    let (fid, token, _) = open(&s, "report.docx", "key-1", Some(("u1", "Ada")), true).await;
    let file = format!("/wopi/files/{fid}");
    assert_eq!(s.lock_op(&file, &token, "LOCK", "L").await, 200);
    s.int.wait_status(1, 1, T).await;

    // info: a status 1 callback with the session's users and the command's userdata.
    let (st, v) = command(
        &s,
        "/coauthoring/CommandService.ashx",
        json!({"c": "info", "key": "key-1", "userdata": "asked by the storage"}),
    )
    .await;
    assert_eq!((st, v.clone()), (200, json!({"error": 0, "key": "key-1"})));
    let ones = s.int.wait_status(1, 2, T).await;
    assert_eq!(ones[1]["users"], json!(["u1"]));
    assert_eq!(ones[1]["userdata"], "asked by the storage");
    assert_eq!(ones[0].get("userdata"), None, "a join carries none");
    // Without userdata, none is sent.
    let (_, v) = command(&s, "/command", json!({"c": "info", "key": "key-1"})).await;
    assert_eq!(v["error"], 0);
    let ones = s.int.wait_status(1, 3, T).await;
    assert_eq!(ones[2].get("userdata"), None);

    // forcesave: nothing changed → error 4; after a PutFile → status 6 with that content.
    let (_, v) = command(&s, "/command", json!({"c": "forcesave", "key": "key-1"})).await;
    assert_eq!(v["error"], 4);
    let put = [("x-wopi-override", "PUT"), ("x-wopi-lock", "L")];
    assert_eq!(
        s.wopi("POST", &format!("{file}/contents"), &token, &put, "edited")
            .await
            .0,
        200
    );
    let (_, v) = command(
        &s,
        "/command",
        json!({"c": "forcesave", "key": "key-1", "userdata": "save now"}),
    )
    .await;
    assert_eq!(v["error"], 0);
    let six = s.int.wait_status(6, 1, T).await;
    assert_eq!(six[0]["forcesavetype"], 0);
    assert_eq!(six[0]["userdata"], "save now");
    assert_eq!(s.int.log.lock().unwrap().saved.last().unwrap().1, b"edited");
    let (_, v) = command(&s, "/command", json!({"c": "forcesave", "key": "key-1"})).await;
    assert_eq!(v["error"], 4, "delivered already");

    // meta: the new title in later CheckFileInfo.
    let (_, v) = command(
        &s,
        "/command",
        json!({"c": "meta", "key": "key-1", "meta": {"title": "Renamed.docx"}}),
    )
    .await;
    assert_eq!(v["error"], 0);
    let (_, _, info) = s.wopi("GET", &file, &token, &[], "").await;
    assert_eq!(json(&info)["BaseFileName"], "Renamed.docx");

    // drop: the user's token stops working on the file; a config signed later opens again.
    let (_, v) = command(
        &s,
        "/command",
        json!({"c": "drop", "key": "key-1", "users": ["u1"]}),
    )
    .await;
    assert_eq!(v["error"], 0);
    assert_eq!(s.wopi("GET", &file, &token, &[], "").await.0, 401);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, again, _) = open(&s, "report.docx", "key-1", Some(("u1", "Ada")), true).await;
    assert_eq!(s.wopi("GET", &file, &again, &[], "").await.0, 200);

    // An unsigned command for a host-face key: error 6 (Docs' invalid token).
    let (st, _, body) = send(
        "POST",
        &s.gw.url("/command"),
        &[("content-type", "application/json")],
        json!({"c": "info", "key": "key-1"}).to_string(),
    )
    .await;
    assert_eq!((st, json(&body)["error"].clone()), (200, json!(6)));
    // Other keys go to Docs (none runs here: the proxy's 502).
    let (st, _) = command(&s, "/command", json!({"c": "info", "key": "another"})).await;
    assert_eq!(st, 502);
    // `version` and `license` are Docs' to answer, even with a host-face key.
    for c in ["version", "license"] {
        let (st, _) = command(&s, "/command", json!({"c": c, "key": "key-1"})).await;
        assert_eq!(st, 502, "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_follow_the_current_key_of_a_file() {
    let s = setup("", "", "").await;
    s.int.put_doc("report.docx", b"v1");
    // One file (referenceData.fileKey) in two versions (document.key).
    let config = |key: &str| {
        let cfg = json!({
            "document": {"fileType": "docx", "key": key, "title": "report.docx",
                         "url": format!("{}/doc/report.docx", s.int.origin()),
                         "referenceData": {"fileKey": "doc-1"}},
            "editorConfig": {"callbackUrl": format!("{}/callback", s.int.origin()),
                             "user": {"id": "u1", "name": "Ada"}},
        });
        jwt::sign(&s.int.secret, cfg.as_object().unwrap())
    };
    let (fid, _, _) = open_config_at(&s.gw.url(""), &config("key-1")).await;
    let (_, v) = command(&s, "/command", json!({"c": "info", "key": "key-1"})).await;
    assert_eq!(v["error"], 0);
    // Nobody edits: status 4. Once delivered, a config with a new key moves the file to it.
    s.int.wait_status(4, 1, T).await;
    let (again, _, _) = open_config_at(&s.gw.url(""), &config("key-2")).await;
    assert_eq!(again, fid);
    let (_, v) = command(&s, "/command", json!({"c": "info", "key": "key-2"})).await;
    assert_eq!(v, json!({"error": 0, "key": "key-2"}));
    // The old key is no host-face document's any more: it goes to Docs (none here: 502).
    let (st, _) = command(&s, "/command", json!({"c": "info", "key": "key-1"})).await;
    assert_eq!(st, 502);
}
