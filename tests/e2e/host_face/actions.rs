//! Save As, Rename and Delete through the integrator's `actions_url` hook.

use super::hook::{Mode, hooked};
use super::*;

async fn file_info(s: &Setup, file: &str, token: &str) -> Value {
    let (st, _, body) = s.wopi("GET", file, token, &[], "").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    json(&body)
}

fn put_relative<'a>(
    target: (&'a str, &'a str),
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("x-wopi-override", "PUT_RELATIVE"), target];
    h.extend_from_slice(extra);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_as_rename_and_delete_go_to_the_hook() {
    let (s, hook) = hooked().await;
    s.int.put_doc("report.docx", b"original bytes");
    let (fid, token, _) = open(&s, "report.docx", "key-1", Some(("u1", "Ada")), true).await;
    let file = format!("/wopi/files/{fid}");
    let info = file_info(&s, &file, &token).await;
    assert_eq!(info["UserCanNotWriteRelative"], false);
    assert_eq!(info["SupportsRename"], true);
    assert_eq!(info["UserCanRename"], true);
    assert_eq!(info["SupportsDeleteFile"], true);

    // Save As, suggested mode (a full name).
    let body: &'static str = "the new file's bytes";
    let size = body.len().to_string();
    let (st, _, out) = s
        .wopi(
            "POST",
            &file,
            &token,
            &put_relative(
                ("x-wopi-suggestedtarget", "Copy.docx"),
                &[("x-wopi-size", &size)],
            ),
            body,
        )
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
    let out = json(&out);
    assert_eq!(out["Name"], "Copy.docx");
    let p = hook.last();
    assert_eq!(p["action"], "saveas");
    assert_eq!(p["key"], "key-1");
    assert_eq!(p["title"], "Copy.docx");
    assert_eq!(p["fileType"], "docx");
    assert_eq!(p["mode"], "suggested");
    assert_eq!(p["user"]["id"], "u1");
    assert!(p["url"].as_str().unwrap().contains("/api/v1/download/"));
    assert_eq!(
        s.int.docs.lock().unwrap().get("Copy.docx").unwrap(),
        body.as_bytes()
    );
    assert!(
        out["HostEditUrl"]
            .as_str()
            .unwrap()
            .contains("/open?integrator=nc&config=")
    );
    assert!(out["HostViewUrl"].as_str().unwrap().contains("action=view"));
    // The new file opens through the returned Url.
    let url = out["Url"].as_str().unwrap();
    let (src, tok) = url.split_once("?access_token=").unwrap();
    let new_token = percent_encoding::percent_decode_str(tok)
        .decode_utf8()
        .unwrap()
        .into_owned();
    let new_path = &src[src.find("/wopi/files/").unwrap()..];
    assert_ne!(new_path, file);
    let info = file_info(&s, new_path, &new_token).await;
    assert_eq!(info["BaseFileName"], "Copy.docx");
    assert_eq!(info["Size"], body.len());
    let (st, _, got) = s
        .wopi("GET", &format!("{new_path}/contents"), &new_token, &[], "")
        .await;
    assert_eq!((st, got.as_slice()), (200, body.as_bytes()));
    // A Save As of the new file names it by the referenceData of its config.
    assert_eq!(
        hook.last()["referenceData"],
        Value::Null,
        "report.docx had none"
    );
    let (st, _, out) = s
        .wopi(
            "POST",
            new_path,
            &new_token,
            &put_relative(("x-wopi-suggestedtarget", "Copy of copy.docx"), &[]),
            "c",
        )
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
    let p = hook.last();
    assert_eq!(p["referenceData"], json!({"fileKey": "new-Copy.docx"}));
    assert_eq!(p["key"], "saved-Copy.docx");

    // Suggested mode, an extension only: the current name with it.
    let (st, _, out) = s
        .wopi(
            "POST",
            &file,
            &token,
            &put_relative(("x-wopi-suggestedtarget", ".odt"), &[]),
            "x",
        )
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
    assert_eq!(json(&out)["Name"], "report.odt");
    assert_eq!(hook.last()["fileType"], "odt");

    // Suggested mode with a conflict: the integrator's suggestion is taken.
    hook.set(Mode::ExistsOnce);
    let (st, _, out) = s
        .wopi(
            "POST",
            &file,
            &token,
            &put_relative(("x-wopi-suggestedtarget", "Copy.docx"), &[]),
            "y",
        )
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
    assert_eq!(json(&out)["Name"], "Copy (1).docx");

    // Relative mode with overwrite: asked first without it; once the integrator says the
    // name is taken (with no config of that file, so no WOPI lock to check), again with it.
    // Conversion is passed on.
    let before = hook.log.lock().unwrap().len();
    hook.set(Mode::ExistsOnce);
    let (st, _, out) = s
        .wopi(
            "POST",
            &file,
            &token,
            &put_relative(
                ("x-wopi-relativetarget", "Copy.docx"),
                &[
                    ("x-wopi-overwriterelativetarget", "true"),
                    ("x-wopi-fileconversion", "true"),
                ],
            ),
            "z",
        )
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
    let calls: Vec<Value> = hook.log.lock().unwrap()[before..].to_vec();
    let asked = |p: &Value| {
        (
            p["mode"].as_str().map(str::to_owned),
            p["overwrite"].as_bool(),
            p["conversion"].as_bool(),
        )
    };
    assert_eq!(
        calls.iter().map(asked).collect::<Vec<_>>(),
        [
            (Some("relative".to_owned()), None, Some(true)),
            (Some("relative".to_owned()), Some(true), Some(true))
        ]
    );

    // Rename, with a UTF-7 name.
    let requested = wopi::utf7::encode("Résumé 2026");
    let (st, _, out) = s
        .wopi(
            "POST",
            &file,
            &token,
            &[
                ("x-wopi-override", "RENAME_FILE"),
                ("x-wopi-requestedname", &requested),
                ("x-wopi-lock", ""),
            ],
            "",
        )
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
    assert_eq!(json(&out)["Name"], "Résumé 2026");
    let p = hook.last();
    assert_eq!(
        (p["action"].as_str(), p["title"].as_str(), p["key"].as_str()),
        (Some("rename"), Some("Résumé 2026.docx"), Some("key-1"))
    );
    assert_eq!(
        file_info(&s, &file, &token).await["BaseFileName"],
        "Résumé 2026.docx"
    );

    // A locked file is not renamed under another lock, nor deleted.
    assert_eq!(s.lock_op(&file, &token, "LOCK", "L1").await, 200);
    let (st, h, _) = s
        .wopi(
            "POST",
            &file,
            &token,
            &[
                ("x-wopi-override", "RENAME_FILE"),
                ("x-wopi-requestedname", "x"),
                ("x-wopi-lock", "L2"),
            ],
            "",
        )
        .await;
    assert_eq!((st, hdr(&h, "x-wopi-lock").as_deref()), (409, Some("L1")));
    let (st, _, _) = s
        .wopi("POST", &file, &token, &[("x-wopi-override", "DELETE")], "")
        .await;
    assert_eq!(st, 409);
    assert_eq!(s.lock_op(&file, &token, "UNLOCK", "L1").await, 200);

    // Delete.
    let (st, _, out) = s
        .wopi("POST", &file, &token, &[("x-wopi-override", "DELETE")], "")
        .await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
    let p = hook.last();
    assert_eq!(
        (
            p["action"].as_str(),
            p["key"].as_str(),
            p["user"]["id"].as_str()
        ),
        (Some("delete"), Some("key-1"), Some("u1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_bad_names_and_failing_hooks() {
    let (s, hook) = hooked().await;
    s.int.put_doc("report.docx", b"original bytes");
    let (fid, token, _) = open(&s, "report.docx", "key-1", Some(("u1", "Ada")), true).await;
    let file = format!("/wopi/files/{fid}");

    // A name conflict in relative mode: 409 with a valid name (UTF-7).
    hook.set(Mode::Exists);
    let (st, h, _) = s
        .wopi(
            "POST",
            &file,
            &token,
            &put_relative(("x-wopi-relativetarget", "Copy.docx"), &[]),
            "x",
        )
        .await;
    assert_eq!(st, 409);
    assert_eq!(
        hdr(&h, "x-wopi-validrelativetarget").unwrap(),
        wopi::utf7::encode("Copy (1).docx")
    );
    // Renaming onto an existing name, a name the integrator refuses: 400.
    let (st, h, _) = s
        .wopi(
            "POST",
            &file,
            &token,
            &[
                ("x-wopi-override", "RENAME_FILE"),
                ("x-wopi-requestedname", "Copy"),
            ],
            "",
        )
        .await;
    assert_eq!(st, 400);
    assert!(hdr(&h, "x-wopi-invalidfilenameerror").is_some());
    hook.set(Mode::Invalid);
    let (st, _, _) = s
        .wopi(
            "POST",
            &file,
            &token,
            &put_relative(("x-wopi-relativetarget", "Copy.docx"), &[]),
            "x",
        )
        .await;
    assert_eq!(st, 400);
    // Bad names never reach the hook.
    let before = hook.log.lock().unwrap().len();
    for target in [
        ("x-wopi-relativetarget", "a/b.docx"),
        ("x-wopi-relativetarget", "noextension"),
        ("x-wopi-suggestedtarget", ""),
    ] {
        let (st, h, _) = s
            .wopi("POST", &file, &token, &put_relative(target, &[]), "x")
            .await;
        assert_eq!(st, 400, "{target:?}");
        assert!(hdr(&h, "x-wopi-invalidfilenameerror").is_some());
    }
    assert_eq!(hook.log.lock().unwrap().len(), before);
    // Both targets: 501 (the spec's answer).
    let (st, _, _) = s
        .wopi(
            "POST",
            &file,
            &token,
            &put_relative(
                ("x-wopi-relativetarget", "a.docx"),
                &[("x-wopi-suggestedtarget", "b.docx")],
            ),
            "x",
        )
        .await;
    assert_eq!(st, 501);

    // A failing hook: 502, logged, the content kept.
    hook.set(Mode::Fail);
    let (st, _, _) = s
        .wopi(
            "POST",
            &file,
            &token,
            &put_relative(("x-wopi-relativetarget", "Kept.docx"), &[]),
            "kept bytes",
        )
        .await;
    assert_eq!(st, 502);
    for op in ["RENAME_FILE", "DELETE"] {
        let (st, _, _) = s
            .wopi(
                "POST",
                &file,
                &token,
                &[("x-wopi-override", op), ("x-wopi-requestedname", "n")],
                "",
            )
            .await;
        assert_eq!(st, 502, "{op}");
    }
    assert!(
        s.gw.stderr().contains("actions-hook-failed"),
        "{}",
        s.gw.stderr()
    );
    assert!(
        saved_anywhere(&s.gw.data_dir(), b"kept bytes"),
        "the Save As body stays in the content store"
    );
    // The title did not change.
    assert_eq!(
        file_info(&s, &file, &token).await["BaseFileName"],
        "report.docx"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_storage_no_longer_has_is_404() {
    let (s, hook) = hooked().await;
    s.int.put_doc("report.docx", b"original bytes");
    let (fid, token, _) = open(&s, "report.docx", "key-1", Some(("u1", "Ada")), true).await;
    let file = format!("/wopi/files/{fid}");
    hook.set(Mode::NotFound);
    for (op, target) in [
        ("RENAME_FILE", ("x-wopi-requestedname", "n")),
        ("DELETE", ("x-wopi-requestedname", "n")),
        ("PUT_RELATIVE", ("x-wopi-relativetarget", "Copy.docx")),
    ] {
        let (st, _, _) = s
            .wopi(
                "POST",
                &file,
                &token,
                &[("x-wopi-override", op), target],
                "x",
            )
            .await;
        assert_eq!(st, 404, "{op}");
    }
    assert_eq!(hook.log.lock().unwrap().len(), 3);
}

fn saved_anywhere(dir: &std::path::Path, content: &[u8]) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let p = e.path();
            if p.is_dir() {
                saved_anywhere(&p, content)
            } else {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("saveas-"))
                    && std::fs::read(&p).is_ok_and(|b| b == content)
            }
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_hook_is_502() {
    let (int, client) = peers().await;
    let port = crate::support::free_port();
    let rest = host_face_toml(
        &int,
        "",
        "",
        &format!("actions_url = \"http://127.0.0.1:{port}/actions\""),
    );
    let s = Setup {
        gw: Gateway::start(Config {
            rest,
            ..Default::default()
        }),
        int,
        client,
    };
    s.int.put_doc("report.docx", b"original bytes");
    let (fid, token, _) = open(&s, "report.docx", "key-1", Some(("u1", "Ada")), true).await;
    let file = format!("/wopi/files/{fid}");
    let (st, _, _) = s
        .wopi(
            "POST",
            &file,
            &token,
            &put_relative(("x-wopi-suggestedtarget", ".docx"), &[]),
            "x",
        )
        .await;
    assert_eq!(st, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_follow_the_hook_and_the_permissions() {
    // With the hook, a viewer is offered nothing and may do nothing: 501, as for a host
    // without these operations (what CheckFileInfo told the client).
    let (s, hook) = hooked().await;
    s.int.put_doc("report.docx", b"original bytes");
    let (fid, token, _) = open(&s, "report.docx", "key-1", Some(("u2", "Bob")), false).await;
    let file = format!("/wopi/files/{fid}");
    let info = file_info(&s, &file, &token).await;
    assert_eq!(info["UserCanNotWriteRelative"], true);
    assert_eq!(info["SupportsRename"], false);
    assert_eq!(info["UserCanRename"], false);
    assert_eq!(info["SupportsDeleteFile"], false);
    for op in ["PUT_RELATIVE", "RENAME_FILE", "DELETE"] {
        let (st, _, _) = s
            .wopi(
                "POST",
                &file,
                &token,
                &[
                    ("x-wopi-override", op),
                    ("x-wopi-suggestedtarget", ".docx"),
                    ("x-wopi-requestedname", "n"),
                ],
                "x",
            )
            .await;
        assert_eq!(st, 501, "{op}");
    }
    assert!(hook.log.lock().unwrap().is_empty());

    // Without the hook: nothing advertised, 501 as before.
    let s = setup("", "", "").await;
    s.int.put_doc("report.docx", b"original bytes");
    let (fid, token, _) = open(&s, "report.docx", "key-1", Some(("u1", "Ada")), true).await;
    let file = format!("/wopi/files/{fid}");
    let info = file_info(&s, &file, &token).await;
    assert_eq!(info["UserCanNotWriteRelative"], true);
    assert_eq!(info["SupportsRename"], false);
    assert_eq!(info["UserCanRename"], false);
    assert_eq!(info["SupportsDeleteFile"], false);
    for op in ["PUT_RELATIVE", "RENAME_FILE", "DELETE"] {
        let (st, _, _) = s
            .wopi(
                "POST",
                &file,
                &token,
                &[
                    ("x-wopi-override", op),
                    ("x-wopi-suggestedtarget", ".docx"),
                    ("x-wopi-requestedname", "n"),
                ],
                "x",
            )
            .await;
        assert_eq!(st, 501, "{op}");
    }
}
