//! Fake peers: a Docs-API integrator (serves documents, records callbacks) and a WOPI client
//! (its own proof keys, its discovery, signed requests).

use super::http::Resp;
use bytes::Bytes;
use docs_api::Secret;
use docs_api::jwt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wopi::proof::SigningKey;

pub type Handler = Arc<
    dyn Fn(Request<Bytes>) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Send
        + Sync,
>;

/// Serves `handler` on 127.0.0.1 (optionally a given port) until the runtime ends.
pub async fn serve(port: u16, handler: Handler) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let bytes = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, std::convert::Infallible>(
                            handler(Request::from_parts(parts, bytes)).await,
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn resp(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .unwrap()
}

/// What the fake integrator saw.
#[derive(Default)]
pub struct IntegratorLog {
    /// Verified callback bodies, in arrival order.
    pub callbacks: Vec<Value>,
    /// Content downloaded from each status 2/6 `url`, by callback index.
    pub saved: Vec<(i64, Vec<u8>)>,
    /// document.url requests and whether their JWT verified.
    pub downloads: Vec<bool>,
    /// Callbacks refused because the JWTs did not verify.
    pub bad_tokens: usize,
}

/// A Docs-API integrator.
pub struct Integrator {
    pub addr: SocketAddr,
    pub secret: Secret,
    pub log: Arc<Mutex<IntegratorLog>>,
    pub docs: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// Fail this many upcoming callbacks with HTTP 500.
    pub fail_next: Arc<AtomicUsize>,
    /// Served at /hosting/discovery when set (the fake WOPI client's).
    pub discovery: Arc<Mutex<Option<String>>>,
}

pub const SECRET: &str = "integrator-secret-0123456789abcdef";

impl Integrator {
    pub async fn start() -> Integrator {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Integrator {
        let secret = Secret::new(SECRET);
        let log = Arc::new(Mutex::new(IntegratorLog::default()));
        let docs: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::new(Mutex::new(HashMap::new()));
        let fail_next = Arc::new(AtomicUsize::new(0));
        let discovery = Arc::new(Mutex::new(None));
        let (s, l, d, f, disc) = (
            secret.clone(),
            log.clone(),
            docs.clone(),
            fail_next.clone(),
            discovery.clone(),
        );
        let handler: Handler = Arc::new(move |req: Request<Bytes>| {
            let (s, l, d, f, disc) = (s.clone(), l.clone(), d.clone(), f.clone(), disc.clone());
            Box::pin(async move {
                let path = req.uri().path().to_owned();
                if path == "/hosting/discovery" {
                    return match disc.lock().unwrap().clone() {
                        Some(x) => resp(200, x),
                        None => resp(404, ""),
                    };
                }
                if let Some(name) = path.strip_prefix("/doc/") {
                    // Docs sends {"payload":{"url": document.url}} in the Authorization header.
                    let ok = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| jwt::verify(&s, jwt::token_from_header(v)).ok())
                        .is_some_and(|c| {
                            c.get("payload")
                                .and_then(|p| p.get("url"))
                                .and_then(Value::as_str)
                                .is_some_and(|u| u.ends_with(&path))
                        });
                    l.lock().unwrap().downloads.push(ok);
                    if !ok {
                        return resp(403, "bad token");
                    }
                    return match d.lock().unwrap().get(name) {
                        Some(b) => resp(200, b.clone()),
                        None => resp(404, "no such document"),
                    };
                }
                if path == "/callback" {
                    if f.load(Ordering::SeqCst) > 0 {
                        f.fetch_sub(1, Ordering::SeqCst);
                        return resp(500, "down");
                    }
                    let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
                    let body_claims = body
                        .get("token")
                        .and_then(Value::as_str)
                        .and_then(|t| jwt::verify(&s, t).ok());
                    let header_claims = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| jwt::verify(&s, jwt::token_from_header(v)).ok());
                    let (Some(mut verified), Some(header)) = (body_claims, header_claims) else {
                        l.lock().unwrap().bad_tokens += 1;
                        return resp(200, r#"{"error":1,"message":"bad token"}"#);
                    };
                    verified.remove("iat");
                    verified.remove("exp");
                    assert_eq!(
                        header["payload"],
                        Value::Object(verified.clone()),
                        "header payload equals the body"
                    );
                    let verified = Value::Object(verified);
                    let status = verified["status"].as_i64().unwrap_or(-1);
                    if status == 2 || status == 6 {
                        let url = verified["url"].as_str().unwrap().to_owned();
                        let (code, _, bytes) = super::http::get(&url).await;
                        assert_eq!(code, 200, "download of the callback url");
                        l.lock().unwrap().saved.push((status, bytes));
                    }
                    l.lock().unwrap().callbacks.push(verified);
                    return resp(200, r#"{"error":0}"#);
                }
                resp(404, "")
            })
        });
        let addr = serve(port, handler).await;
        Integrator {
            addr,
            secret,
            log,
            docs,
            fail_next,
            discovery,
        }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn put_doc(&self, name: &str, content: &[u8]) {
        self.docs
            .lock()
            .unwrap()
            .insert(name.to_owned(), content.to_vec());
    }

    /// The TOML table registering this integrator.
    pub fn toml(&self, name: &str, extra: &str) -> String {
        format!(
            "[[host_face.integrator]]\nname = \"{name}\"\njwt_secret = \"{SECRET}\"\nallowed_origins = [\"{}\"]\n{extra}\n",
            self.origin()
        )
    }

    /// A signed editor config for `doc`.
    pub fn config(&self, doc: &str, key: &str, user: Option<(&str, &str)>, edit: bool) -> String {
        let mut cfg = json!({
            "document": {"fileType": doc.rsplit('.').next().unwrap(), "key": key, "title": doc, "url": format!("{}/doc/{doc}", self.origin()),
                          "permissions": {"edit": edit}},
            "documentType": "word",
            "editorConfig": {"callbackUrl": format!("{}/callback", self.origin()), "mode": if edit { "edit" } else { "view" }, "lang": "en"},
        });
        if let Some((id, name)) = user {
            cfg["editorConfig"]["user"] = json!({"id": id, "name": name});
        }
        jwt::sign(&self.secret, cfg.as_object().unwrap())
    }

    pub fn callbacks(&self) -> Vec<Value> {
        self.log.lock().unwrap().callbacks.clone()
    }

    /// Waits until a callback with `status` arrived (at least `n` of them).
    pub async fn wait_status(&self, status: i64, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got: Vec<Value> = self
                .callbacks()
                .into_iter()
                .filter(|c| c["status"] == status)
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no status {status} callback (have {:?})",
                self.callbacks()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A WOPI client with its own proof keys.
pub struct WopiClient {
    pub current: SigningKey,
    pub old: Option<SigningKey>,
}

impl WopiClient {
    pub fn new() -> WopiClient {
        WopiClient {
            current: SigningKey::generate().unwrap(),
            old: Some(SigningKey::generate().unwrap()),
        }
    }

    /// Its discovery XML, with actions for docx and wopitest pointing at `base`.
    pub fn discovery(&self, base: &str) -> String {
        use wopi::discovery::{Action, App, Discovery, NetZone, ProofKeyAttrs, render};
        let action = |name: &str, ext: &str| Action {
            name: name.into(),
            ext: ext.into(),
            urlsrc: format!("{base}/{name}?<ui=UI_LLCC&><wopisrc=WOPI_SOURCE&>"),
            ..Default::default()
        };
        render(&Discovery {
            net_zones: vec![NetZone {
                name: "external-http".into(),
                apps: vec![App {
                    name: "Word".into(),
                    actions: vec![
                        action("view", "docx"),
                        action("edit", "docx"),
                        action("view", "wopitest"),
                        action("edit", "wopitest"),
                    ],
                    ..Default::default()
                }],
            }],
            proof_key: Some(ProofKeyAttrs::from_keys(
                self.current.public_key(),
                self.old.as_ref().map(SigningKey::public_key),
            )),
        })
    }

    /// Signs and sends a WOPI request (`path_and_query` must hold the access token).
    pub async fn send(
        &self,
        gw_base: &str,
        method: &str,
        path_and_query: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        self.send_at(
            gw_base,
            method,
            path_and_query,
            token,
            headers,
            body,
            wopi::ticks::from_unix_ms(now),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn send_at(
        &self,
        gw_base: &str,
        method: &str,
        path_and_query: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
        ticks: i64,
    ) -> Resp {
        self.send_via(
            gw_base,
            gw_base,
            method,
            path_and_query,
            token,
            headers,
            body,
            ticks,
        )
        .await
    }

    /// Signs for `signed_base` + `path_and_query` but sends to `sent_base` + it, as a front
    /// proxy that strips a path prefix does.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_via(
        &self,
        signed_base: &str,
        sent_base: &str,
        method: &str,
        path_and_query: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
        ticks: i64,
    ) -> Resp {
        let signed = format!("{signed_base}{path_and_query}");
        let url = format!("{sent_base}{path_and_query}");
        let p = self
            .current
            .sign(self.old.as_ref(), token, &signed, ticks)
            .unwrap();
        let mut all: Vec<(&str, &str)> = vec![
            ("x-wopi-timestamp", &p.timestamp),
            ("x-wopi-proof", &p.proof),
            ("x-wopi-proofold", &p.proof_old),
        ];
        all.extend_from_slice(headers);
        super::http::send(method, &url, &all, body).await
    }
}

/// `?access_token=…&access_token_ttl=0` for a path.
pub fn with_token(path: &str, token: &str) -> String {
    let enc: String =
        percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    format!("{path}?access_token={enc}&access_token_ttl=0")
}

pub fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

pub fn hdr(h: &http::HeaderMap, name: &str) -> Option<String> {
    h.get(name).map(|v| v.to_str().unwrap().to_owned())
}

pub fn status_ok(code: u16) -> bool {
    StatusCode::from_u16(code).unwrap().is_success()
}
