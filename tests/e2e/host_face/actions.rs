//! Save As, Rename and Delete through the integrator's `actions_url` hook.

use super::*;
use crate::support::fakes::{SECRET, serve};
use bytes::Bytes;
use docs_api::{Secret, jwt};
use std::sync::{Arc, Mutex};

/// What the test hook answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `{"error":0}` (Save As: with the new file's config).
    Ok,
    /// `{"error":"exists","suggested":…}` every time.
    Exists,
    /// `{"error":"exists"}` once, then as `Ok`.
    ExistsOnce,
    /// `{"error":"invalid"}`.
    Invalid,
    /// HTTP 500.
    Fail,
}

/// The integrator's actions endpoint: verifies both tokens, records the verified payloads,
/// stores Save As content (downloaded from its `url`) as a document of the fake integrator.
struct Hook {
    addr: std::net::SocketAddr,
    log: Arc<Mutex<Vec<Value>>>,
    mode: Arc<Mutex<Mode>>,
}

impl Hook {
    async fn start(int: &crate::support::fakes::Integrator) -> Hook {
        let log: Arc<Mutex<Vec<Value>>> = Arc::default();
        let mode = Arc::new(Mutex::new(Mode::Ok));
        let (l, m, docs, origin) = (log.clone(), mode.clone(), int.docs.clone(), int.origin());
        let handler: crate::support::fakes::Handler = Arc::new(move |req: http::Request<Bytes>| {
            let (l, m, docs, origin) = (l.clone(), m.clone(), docs.clone(), origin.clone());
            Box::pin(async move {
                let reply = |status: u16, body: String| {
                    http::Response::builder()
                        .status(status)
                        .body(http_body_util::Full::new(Bytes::from(body)))
                        .unwrap()
                };
                let secret = Secret::new(SECRET);
                let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
                let claims = body["token"]
                    .as_str()
                    .and_then(|t| jwt::verify(&secret, t).ok());
                let header = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| jwt::verify(&secret, jwt::token_from_header(v)).ok());
                let (Some(mut claims), Some(header)) = (claims, header) else {
                    return reply(403, "bad token".into());
                };
                claims.remove("iat");
                claims.remove("exp");
                assert_eq!(header["payload"], Value::Object(claims.clone()));
                let p = Value::Object(claims);
                l.lock().unwrap().push(p.clone());
                let mode = *m.lock().unwrap();
                let title = p["title"].as_str().unwrap_or("").to_owned();
                match mode {
                    Mode::Fail => return reply(500, "down".into()),
                    Mode::Invalid => {
                        return reply(200, json!({"error":"invalid","message":"no"}).to_string());
                    }
                    Mode::Exists | Mode::ExistsOnce => {
                        if mode == Mode::ExistsOnce {
                            *m.lock().unwrap() = Mode::Ok;
                        }
                        let (stem, ext) = title.rsplit_once('.').unwrap_or((&title, ""));
                        return reply(
                            200,
                            json!({"error":"exists","suggested": format!("{stem} (1).{ext}")})
                                .to_string(),
                        );
                    }
                    Mode::Ok => {}
                }
                if p["action"] != "saveas" {
                    return reply(200, r#"{"error":0}"#.into());
                }
                let (code, _, bytes) = crate::support::http::get(p["url"].as_str().unwrap()).await;
                assert_eq!(code, 200, "download of the Save As url");
                docs.lock().unwrap().insert(title.clone(), bytes);
                let cfg = json!({
                    "document": {"fileType": p["fileType"], "key": format!("saved-{title}"), "title": title,
                                 "url": format!("{origin}/doc/{title}"), "permissions": {"edit": true},
                                 "referenceData": {"fileKey": format!("new-{title}")}},
                    "editorConfig": {"callbackUrl": format!("{origin}/callback"), "mode": "edit",
                                     "user": p["user"]},
                });
                let token = jwt::sign(&secret, cfg.as_object().unwrap());
                reply(200, json!({"error": 0, "token": token}).to_string())
            })
        });
        let addr = serve(0, handler).await;
        Hook { addr, log, mode }
    }

    fn url(&self) -> String {
        format!("http://{}/actions", self.addr)
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    fn last(&self) -> Value {
        self.log.lock().unwrap().last().cloned().unwrap()
    }
}

/// A gateway whose integrator `nc` has the hook as `actions_url`.
async fn hooked() -> (Setup, Hook) {
    let (int, client) = peers().await;
    let hook = Hook::start(&int).await;
    let rest = host_face_toml(&int, "", "", &format!("actions_url = \"{}\"", hook.url()));
    let gw = Gateway::start(Config {
        rest,
        ..Default::default()
    });
    (Setup { gw, int, client }, hook)
}

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

    // Relative mode: overwrite and conversion are passed on.
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
    let p = hook.last();
    assert_eq!(
        (
            p["mode"].as_str(),
            p["overwrite"].as_bool(),
            p["conversion"].as_bool()
        ),
        (Some("relative"), Some(true), Some(true))
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
    // With the hook, a viewer is offered nothing and may do nothing.
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
        assert_eq!(st, 401, "{op}");
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
