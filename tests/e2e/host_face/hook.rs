//! The integrator's `actions_url` (Save As, Rename, Delete) for the tests: it verifies both
//! tokens and records the verified payloads, then answers as its [`Mode`] says — scripted
//! answers for the error paths, or, in [`Mode::Storage`], as a storage with a folder of files
//! would.

use super::*;
use crate::support::fakes::{SECRET, serve};
use bytes::Bytes;
use docs_api::{Secret, jwt};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What the test hook answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// `{"error":0}` (Save As: with the new file's config; the file is named by its title).
    Ok,
    /// `{"error":"exists","suggested":…}` every time.
    Exists,
    /// `{"error":"exists"}` once, then as `Ok`.
    ExistsOnce,
    /// `{"error":"invalid"}`.
    Invalid,
    /// HTTP 500.
    Fail,
    /// `{"error":"notfound"}`.
    NotFound,
    /// A storage: see [`Storage`].
    Storage,
}

/// One file of the [`Storage`].
#[derive(Clone, Debug)]
pub(super) struct Stored {
    pub(super) name: String,
    /// Bumped by each overwrite: the document key is `<id>-v<version>`.
    pub(super) version: u32,
}

/// The folder a storage keeps next to the file being edited, by file id. Its contents are
/// the fake integrator's documents (`/doc/<id>-v<version>`).
///
/// - Save As creates a file with a new id (ids are never reused). In suggested mode a taken
///   name becomes the first free `name (n).ext`; in relative mode a taken name is refused
///   (`exists`, with a free name and the existing file's config as `token`) unless the
///   gateway asks to overwrite, which makes a new version of that file.
/// - Rename changes the name (refused with `exists` when another file has it), keeping the
///   extension the gateway appended.
/// - Delete removes the file. Rename or delete of a file it no longer has: `notfound`.
#[derive(Default)]
pub(super) struct Storage {
    pub(super) files: BTreeMap<String, Stored>,
    next_id: u32,
}

impl Storage {
    fn key(id: &str, f: &Stored) -> String {
        format!("{id}-v{}", f.version)
    }

    fn id_of_key(key: &str) -> Option<&str> {
        key.rsplit_once("-v").map(|(id, _)| id)
    }

    fn by_name(&self, name: &str) -> Option<String> {
        self.files
            .iter()
            .find(|(_, f)| f.name == name)
            .map(|(id, _)| id.clone())
    }

    /// `name`, or the first `stem (n).ext` no file has.
    fn free_name(&self, name: &str) -> String {
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        let mut candidate = name.to_owned();
        let mut n = 1;
        while self.by_name(&candidate).is_some() {
            candidate = format!("{stem} ({n}).{ext}");
            n += 1;
        }
        candidate
    }

    fn create(&mut self, name: &str) -> String {
        let id = format!("f{}", self.next_id);
        self.next_id += 1;
        self.files.insert(
            id.clone(),
            Stored {
                name: name.to_owned(),
                version: 1,
            },
        );
        id
    }

    /// The editor config the storage signs for file `id`, opened by `user` (for editing, or
    /// viewing only).
    fn config(&self, origin: &str, id: &str, user: &Value, edit: bool) -> String {
        let f = &self.files[id];
        let key = Self::key(id, f);
        let cfg = json!({
            "document": {"fileType": f.name.rsplit('.').next().unwrap_or(""), "key": key,
                         "title": f.name, "url": format!("{origin}/doc/{key}"),
                         "permissions": {"edit": edit}, "referenceData": {"fileKey": id}},
            "editorConfig": {"callbackUrl": format!("{origin}/callback"),
                             "mode": if edit { "edit" } else { "view" },
                             "user": user},
        });
        jwt::sign(&Secret::new(SECRET), cfg.as_object().unwrap())
    }

    /// Names of the files, sorted.
    pub(super) fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.files.values().map(|f| f.name.clone()).collect();
        n.sort();
        n
    }
}

/// The integrator's actions endpoint.
pub(super) struct Hook {
    addr: std::net::SocketAddr,
    pub(super) log: Arc<Mutex<Vec<Value>>>,
    mode: Arc<Mutex<Mode>>,
    pub(super) storage: Arc<Mutex<Storage>>,
    docs: Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    origin: String,
}

fn reply(status: u16, body: String) -> http::Response<http_body_util::Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .body(http_body_util::Full::new(Bytes::from(body)))
        .unwrap()
}

/// Downloads the Save As content from the payload's `url`.
async fn download(p: &Value) -> Vec<u8> {
    let (code, _, bytes) = crate::support::http::get(p["url"].as_str().unwrap()).await;
    assert_eq!(code, 200, "download of the Save As url");
    bytes
}

/// How [`Mode::Storage`] answers the verified payload `p`.
async fn as_storage(
    p: &Value,
    storage: &Mutex<Storage>,
    docs: &Mutex<std::collections::HashMap<String, Vec<u8>>>,
    origin: &str,
) -> Value {
    let title = p["title"].as_str().unwrap_or("").to_owned();
    let key = p["key"].as_str().unwrap_or("");
    match p["action"].as_str() {
        Some("saveas") => {
            let taken = storage.lock().unwrap().by_name(&title);
            let overwrite = p["overwrite"] == true;
            let relative = p["mode"] == "relative";
            if let (Some(id), true, false) = (&taken, relative, overwrite) {
                let st = storage.lock().unwrap();
                return json!({"error": "exists", "suggested": st.free_name(&title),
                              "token": st.config(origin, id, &p["user"], true)});
            }
            let bytes = download(p).await;
            let mut st = storage.lock().unwrap();
            let id = match taken {
                Some(id) if relative => {
                    let f = st.files.get_mut(&id).unwrap();
                    f.version += 1;
                    id
                }
                _ => {
                    let name = st.free_name(&title);
                    st.create(&name)
                }
            };
            let doc = Storage::key(&id, &st.files[&id]);
            docs.lock().unwrap().insert(doc, bytes);
            json!({"error": 0, "token": st.config(origin, &id, &p["user"], true)})
        }
        Some("rename") => {
            let mut st = storage.lock().unwrap();
            let Some(id) = Storage::id_of_key(key).filter(|id| st.files.contains_key(*id)) else {
                return json!({"error": "notfound"});
            };
            let id = id.to_owned();
            if st.by_name(&title).is_some_and(|other| other != id) {
                return json!({"error": "exists", "suggested": st.free_name(&title)});
            }
            st.files.get_mut(&id).unwrap().name = title;
            json!({"error": 0})
        }
        Some("delete") => {
            let mut st = storage.lock().unwrap();
            match Storage::id_of_key(key).and_then(|id| st.files.remove(id)) {
                Some(_) => json!({"error": 0}),
                None => json!({"error": "notfound"}),
            }
        }
        _ => json!({"error": "invalid", "message": "unknown action"}),
    }
}

impl Hook {
    pub(super) async fn start(int: &crate::support::fakes::Integrator) -> Hook {
        let log: Arc<Mutex<Vec<Value>>> = Arc::default();
        let mode = Arc::new(Mutex::new(Mode::Ok));
        let storage: Arc<Mutex<Storage>> = Arc::default();
        let (l, m, st, docs, origin) = (
            log.clone(),
            mode.clone(),
            storage.clone(),
            int.docs.clone(),
            int.origin(),
        );
        let handler: crate::support::fakes::Handler = Arc::new(move |req: http::Request<Bytes>| {
            let (l, m, st, docs, origin) = (
                l.clone(),
                m.clone(),
                st.clone(),
                docs.clone(),
                origin.clone(),
            );
            Box::pin(async move {
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
                    Mode::NotFound => return reply(200, r#"{"error":"notfound"}"#.into()),
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
                    Mode::Storage => {
                        return reply(200, as_storage(&p, &st, &docs, &origin).await.to_string());
                    }
                    Mode::Ok => {}
                }
                if p["action"] != "saveas" {
                    return reply(200, r#"{"error":0}"#.into());
                }
                let bytes = download(&p).await;
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
        Hook {
            addr,
            log,
            mode,
            storage,
            docs: int.docs.clone(),
            origin: int.origin(),
        }
    }

    pub(super) fn url(&self) -> String {
        format!("http://{}/actions", self.addr)
    }

    pub(super) fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    pub(super) fn last(&self) -> Value {
        self.log.lock().unwrap().last().cloned().unwrap()
    }

    /// Puts a file into the [`Storage`]; returns its editor config for `user` (who may
    /// edit it, or only view it).
    pub(super) fn store(
        &self,
        name: &str,
        content: &[u8],
        user: (&str, &str),
        edit: bool,
    ) -> String {
        let mut st = self.storage.lock().unwrap();
        let id = st.create(name);
        let doc = Storage::key(&id, &st.files[&id]);
        self.docs.lock().unwrap().insert(doc, content.to_vec());
        st.config(
            &self.origin,
            &id,
            &json!({"id": user.0, "name": user.1}),
            edit,
        )
    }
}

/// A gateway whose integrator `nc` has the hook as `actions_url`.
pub(super) async fn hooked() -> (Setup, Hook) {
    let (int, client) = peers().await;
    let hook = Hook::start(&int).await;
    let rest = host_face_toml(&int, "", "", &format!("actions_url = \"{}\"", hook.url()));
    let gw = Gateway::start(Config {
        rest,
        ..Default::default()
    });
    (Setup { gw, int, client }, hook)
}
