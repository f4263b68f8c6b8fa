//! A fake WOPI host: verifies every proof against the gateway's published discovery, keeps
//! locks with WOPI semantics, stores one file; plus a Docs simulator origin serving saved files.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use wopi::proof::ProofKeys;

#[derive(Default)]
pub struct HostState {
    pub content: Vec<u8>,
    pub version: u64,
    pub lock: Option<String>,
    /// Path and query of every request that reached the host, in order.
    pub paths: Vec<String>,
    /// (operation, X-WOPI-Lock, headers) of every call, in order.
    pub calls: Vec<(String, Option<String>, HashMap<String, String>)>,
    pub bad_proofs: usize,
    /// Answer the next PutFile with this status.
    pub fail_put: Option<u16>,
    /// Extra CheckFileInfo properties.
    pub info: serde_json::Map<String, Value>,
    /// Files created by PutRelativeFile.
    pub relative: Vec<(String, Vec<u8>)>,
    pub renamed: Option<String>,
    /// Saved files Docs serves (path → bytes), for the Docs simulator.
    pub docs_files: HashMap<String, Vec<u8>>,
    /// Answer the next PutRelativeFile with this status.
    pub fail_relative: Option<u16>,
    /// The Docs simulator's converter.
    pub converter: Converter,
    /// Commands the Docs simulator's command service received, verified (body and header
    /// token), in order.
    pub commands: Vec<Value>,
}

/// The Docs simulator's `/converter`: async jobs that finish after `polls` requests.
#[derive(Default)]
pub struct Converter {
    /// Verified request bodies, in order.
    pub requests: Vec<Value>,
    /// Requests whose JWT did not verify.
    pub bad_tokens: usize,
    /// Answer every request with `{"error": n}`.
    pub fail_with: Option<i64>,
    /// Requests a job takes before it ends (0 or 1: at once).
    pub polls: usize,
    /// Never end (for timeouts).
    pub hang: bool,
    /// Sources downloaded from the gateway, by key.
    pub sources: HashMap<String, Vec<u8>>,
    seen: HashMap<String, usize>,
}

pub struct WopiHost {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<HostState>>,
    pub keys: Arc<Mutex<Option<ProofKeys>>>,
    /// The gateway's public base, for rebuilding signed URLs.
    pub gateway: Arc<Mutex<String>>,
}

fn resp(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

fn conflict(lock: &Option<String>, reason: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(409)
        .header("x-wopi-lock", lock.clone().unwrap_or_default())
        .header("x-wopi-lockfailurereason", reason)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// Docs' conversion API as the simulator plays it: the body token must verify with the Docs
/// secret; the source is downloaded from `url` with Docs' JWT header, as Docs does; the
/// "converted" file is `converted:` + the source, served under `/cache/conv/`.
async fn converter(
    st: &Arc<Mutex<HostState>>,
    addr: &Arc<Mutex<Option<SocketAddr>>>,
    req: &Request<Bytes>,
) -> Response<Full<Bytes>> {
    use docs_api::{Secret, jwt};
    let secret = Secret::new(super::upstream::DOCS_SECRET);
    let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
    let header_ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| jwt::verify(&secret, jwt::token_from_header(v)).ok())
        .is_some_and(|c| c.get("payload").and_then(|p| p.get("url")) == body.get("url"));
    let body_ok = body
        .get("token")
        .and_then(Value::as_str)
        .and_then(|t| jwt::verify(&secret, t).ok())
        .is_some_and(|c| c.get("url") == body.get("url"));
    if !(header_ok && body_ok) {
        st.lock().unwrap().converter.bad_tokens += 1;
        return resp(200, json!({"error": -8}).to_string());
    }
    let key = body["key"].as_str().unwrap_or("").to_owned();
    let (fail, done, hang) = {
        let mut s = st.lock().unwrap();
        let c = &mut s.converter;
        c.requests.push(body.clone());
        let n = c.seen.entry(key.clone()).or_insert(0);
        *n += 1;
        (c.fail_with, *n >= c.polls.max(1), c.hang)
    };
    if let Some(code) = fail {
        return resp(200, json!({"error": code}).to_string());
    }
    if hang || !done {
        return resp(200, json!({"endConvert": false, "percent": 50}).to_string());
    }
    let url = body["url"].as_str().unwrap_or("").to_owned();
    let mut claims = serde_json::Map::new();
    claims.insert("payload".into(), json!({"url": url}));
    let auth = format!("Bearer {}", jwt::sign(&secret, &claims));
    let (code, _, bytes) = super::http::send("GET", &url, &[("authorization", &auth)], "").await;
    if code != 200 {
        return resp(200, json!({"error": -4}).to_string());
    }
    let out = body["outputtype"].as_str().unwrap_or("bin").to_owned();
    let mut converted = b"converted:".to_vec();
    converted.extend_from_slice(&bytes);
    let file = format!("conv/{key}.{out}");
    let origin = addr.lock().unwrap().unwrap();
    {
        let mut s = st.lock().unwrap();
        s.converter.sources.insert(key, bytes);
        s.docs_files.insert(file.clone(), converted);
    }
    resp(
        200,
        json!({"endConvert": true, "fileType": out, "percent": 100, "fileUrl": format!("http://{origin}/cache/{file}")}).to_string(),
    )
}

impl WopiHost {
    pub async fn start(content: &[u8]) -> WopiHost {
        let state = Arc::new(Mutex::new(HostState {
            content: content.to_vec(),
            version: 1,
            ..Default::default()
        }));
        let keys: Arc<Mutex<Option<ProofKeys>>> = Arc::new(Mutex::new(None));
        let gateway = Arc::new(Mutex::new(String::new()));
        let (st, ks) = (state.clone(), keys.clone());
        let addr_cell: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let ac = addr_cell.clone();
        let handler: super::fakes::Handler = Arc::new(move |req: Request<Bytes>| {
            let (st, ks, ac) = (st.clone(), ks.clone(), ac.clone());
            Box::pin(async move {
                let path = req.uri().path().to_owned();
                st.lock().unwrap().paths.push(
                    req.uri()
                        .path_and_query()
                        .map_or(path.clone(), |p| p.to_string()),
                );
                if path == "/web-apps/apps/api/documents/api.js" {
                    // A stub of Docs' api.js: records what DocEditor receives in the DOM, calls
                    // onAppReady, and records the message shown. With onRequestInsertImage it
                    // asks for an image as Docs does (`{c: 'add'}`); what insertImage and then
                    // refreshFile (asked for with onRequestRefreshFile after the insert)
                    // receive is posted to the parent frame as Stub_InsertImage and
                    // Stub_RefreshFile, for a host frame to record.
                    let js = "window.DocsAPI = {DocEditor: function (id, config) { var el = document.getElementById(id); var ev = config.events || {}; function tell(m, d) { if (window.parent !== window) window.parent.postMessage(JSON.stringify({MessageId: m, data: d}), '*'); } el.setAttribute('data-config', JSON.stringify(config)); el.setAttribute('data-events', Object.keys(ev).sort().join(',')); document.title = 'DocEditor:' + config.document.key; setTimeout(function () { if (ev.onAppReady) ev.onAppReady(); if (ev.onRequestInsertImage) ev.onRequestInsertImage({data: {c: 'add'}}); }, 0); return {showMessage: function (m) { el.setAttribute('data-message', m); tell('Stub_Message', m); }, grabFocus: function () {}, blurFocus: function () {}, insertImage: function (d) { tell('Stub_InsertImage', d); if (ev.onRequestRefreshFile) ev.onRequestRefreshFile({}); }, refreshFile: function (d) { tell('Stub_RefreshFile', d); }}; }};";
                    return Response::builder()
                        .status(200)
                        .header("content-type", "application/javascript")
                        .body(Full::new(Bytes::from(js)))
                        .unwrap();
                }
                if path == "/host-frame" {
                    // The host's page framing the editor (`?src=` its URL): records the
                    // MessageIds it receives, answers UI_InsertGraphic with an image of its
                    // own (Action_InsertGraphic), and records what the api.js stub reports.
                    let html = r#"<!DOCTYPE html><html><body><iframe id="f" style="width:800px;height:600px"></iframe><script>
var f = document.getElementById('f'); var got = [];
window.addEventListener('message', function (ev) {
  var m; try { m = JSON.parse(ev.data); } catch (x) { return; }
  got.push(m.MessageId); document.body.setAttribute('data-got', got.join(','));
  if (m.MessageId === 'UI_InsertGraphic') f.contentWindow.postMessage(JSON.stringify({MessageId: 'Action_InsertGraphic', SendTime: Date.now(), Values: {url: location.origin + '/cache/img/pic.png', filename: 'pic.png'}}), '*');
  if (m.MessageId.indexOf('Stub_') === 0) document.body.setAttribute('data-' + m.MessageId.toLowerCase(), JSON.stringify(m.data));
});
f.src = new URLSearchParams(location.search).get('src');
</script></body></html>"#;
                    return Response::builder()
                        .status(200)
                        .header("content-type", "text/html")
                        .body(Full::new(Bytes::from_static(html.as_bytes())))
                        .unwrap();
                }
                if path == "/edit/new" {
                    // The host's editor page for a new file (HostEditUrl), for browsers.
                    return Response::builder()
                        .status(200)
                        .header("content-type", "text/html")
                        .body(Full::new(Bytes::from_static(
                            b"<!DOCTYPE html><html><body><p id=\"host\">HOST EDIT PAGE</p></body></html>",
                        )))
                        .unwrap();
                }
                if path == "/converter" {
                    return converter(&st, &ac, &req).await;
                }
                if path == "/coauthoring/CommandService.ashx" {
                    use docs_api::{Secret, jwt};
                    let secret = Secret::new(super::upstream::DOCS_SECRET);
                    let mut body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
                    let token = body.as_object_mut().and_then(|m| m.remove("token"));
                    let body_ok = token
                        .as_ref()
                        .and_then(Value::as_str)
                        .and_then(|t| jwt::verify(&secret, t).ok())
                        .is_some_and(|c| {
                            c.get("c") == body.get("c") && c.get("key") == body.get("key")
                        });
                    let header_ok = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| jwt::verify(&secret, jwt::token_from_header(v)).ok())
                        .is_some_and(|c| c.get("payload") == Some(&body));
                    if !(body_ok && header_ok) {
                        return resp(200, json!({"error": 6}).to_string());
                    }
                    st.lock().unwrap().commands.push(body);
                    return resp(200, json!({"error": 0}).to_string());
                }
                if let Some(rest) = path.strip_prefix("/cache/") {
                    return match st.lock().unwrap().docs_files.get(rest) {
                        Some(b) => resp(200, b.clone()),
                        None => resp(404, ""),
                    };
                }
                let addr = ac.lock().unwrap().unwrap();
                // Proof check against the gateway's discovery keys.
                let url = format!("http://{addr}{}", req.uri());
                let token = req
                    .uri()
                    .query()
                    .unwrap_or("")
                    .split('&')
                    .find_map(|p| p.strip_prefix("access_token="))
                    .map(|t| {
                        percent_encoding::percent_decode_str(t)
                            .decode_utf8_lossy()
                            .into_owned()
                    })
                    .unwrap_or_default();
                let h = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let (ts, proof, proof_old) = (
                    h("x-wopi-timestamp"),
                    h("x-wopi-proof"),
                    h("x-wopi-proofold"),
                );
                let input = wopi::proof::ProofInput {
                    access_token: &token,
                    url: &url,
                    timestamp: ts.as_deref(),
                    proof: proof.as_deref(),
                    proof_old: proof_old.as_deref(),
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64;
                let window = Some(wopi::proof::verify::Window {
                    now_ticks: wopi::ticks::from_unix_ms(now),
                    future_skew_ticks: 60 * wopi::ticks::TICKS_PER_SECOND,
                });
                let verified = ks
                    .lock()
                    .unwrap()
                    .as_ref()
                    .map(|k| k.verify(&input, window));
                let mut s = st.lock().unwrap();
                // Strict, like the Node.js validators many hosts use: all three headers.
                if proof_old.is_none() || !matches!(verified, Some(Ok(_))) {
                    s.bad_proofs += 1;
                    return resp(500, "bad proof");
                }
                if token != "tok-alice" && token != "tok-bob" && token != "tok-viewer" {
                    return resp(401, "");
                }
                let over = h("x-wopi-override").unwrap_or_default();
                let lock = h("x-wopi-lock");
                let op = match (
                    req.method().as_str(),
                    path.ends_with("/contents"),
                    over.as_str(),
                ) {
                    ("GET", false, _) => "CheckFileInfo",
                    ("GET", true, _) => "GetFile",
                    ("POST", true, "PUT") => "PutFile",
                    ("POST", false, o) => match o {
                        "LOCK" => "Lock",
                        "REFRESH_LOCK" => "RefreshLock",
                        "UNLOCK" => "Unlock",
                        "PUT_RELATIVE" => "PutRelativeFile",
                        "RENAME_FILE" => "RenameFile",
                        _ => "Unknown",
                    },
                    _ => "Unknown",
                };
                let headers: HashMap<String, String> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                s.calls.push((op.to_owned(), lock.clone(), headers));
                let writer = token != "tok-viewer";
                match op {
                    "CheckFileInfo" => {
                        let mut info = json!({
                            "BaseFileName": "Quarterly Report.docx", "OwnerId": "owner", "Size": s.content.len(), "UserId": if token == "tok-bob" { "bob" } else if writer { "alice" } else { "viewer" },
                            "UserFriendlyName": if token == "tok-bob" { "Bob" } else { "Alice" }, "Version": s.version.to_string(),
                            "SupportsLocks": true, "SupportsUpdate": true, "SupportsRename": true, "UserCanRename": true, "UserCanWrite": writer,
                            "CloseUrl": null, "LastModifiedTime": "Mon, 01 Jan 2024 00:00:00 GMT", "BreadcrumbFolderName": "Reports",
                        });
                        for (k, v) in s.info.clone() {
                            info[k] = v;
                        }
                        resp(200, info.to_string())
                    }
                    "GetFile" => Response::builder()
                        .status(200)
                        .body(Full::new(Bytes::from(s.content.clone())))
                        .unwrap(),
                    "Lock" if !writer => resp(401, ""),
                    "Lock" => match &s.lock {
                        None => {
                            s.lock = lock;
                            resp(200, "")
                        }
                        Some(l) if Some(l) == lock.as_ref() => resp(200, ""),
                        _ => conflict(&s.lock, "Locked by another client"),
                    },
                    "RefreshLock" | "Unlock" => {
                        if s.lock.is_some() && s.lock == lock {
                            if op == "Unlock" {
                                s.lock = None;
                            }
                            resp(200, "")
                        } else if s.lock.is_none() {
                            conflict(&s.lock, "File is not locked")
                        } else {
                            conflict(&s.lock, "Lock mismatch")
                        }
                    }
                    "PutFile" => {
                        if req.headers().get("content-length").is_none() {
                            return resp(411, "chunked bodies are refused");
                        }
                        if let Some(code) = s.fail_put {
                            return if code == 409 {
                                conflict(
                                    &Some("someone-else".into()),
                                    "The file being edited got moved or overwritten",
                                )
                            } else {
                                resp(code, "")
                            };
                        }
                        // WOPI: an unlocked file takes a PutFile only while it is 0 bytes.
                        let new_file = s.lock.is_none() && s.content.is_empty();
                        if !new_file && (s.lock.is_none() || s.lock != lock) {
                            return conflict(&s.lock, "Lock mismatch");
                        }
                        s.content = req.body().to_vec();
                        s.version += 1;
                        resp(200, json!({"LastModifiedTime": format!("2024-01-0{}T00:00:00Z", s.version.min(9))}).to_string())
                    }
                    "PutRelativeFile" => {
                        if let Some(code) = s.fail_relative {
                            return resp(code, "");
                        }
                        let mut name =
                            wopi::utf7::decode(&h("x-wopi-suggestedtarget").unwrap_or_default())
                                .unwrap();
                        if name.starts_with('.') {
                            // A suggested extension: the host names the file.
                            name = format!("Quarterly Report{name}");
                        }
                        s.relative.push((name.clone(), req.body().to_vec()));
                        resp(200, json!({"Name": name, "Url": format!("http://{addr}/wopi/files/new?access_token=x"), "HostEditUrl": format!("http://{addr}/edit/new")}).to_string())
                    }
                    "RenameFile" => {
                        let name =
                            wopi::utf7::decode(&h("x-wopi-requestedname").unwrap_or_default())
                                .unwrap();
                        s.renamed = Some(name.clone());
                        resp(200, json!({"Name": name}).to_string())
                    }
                    _ => resp(501, ""),
                }
            })
        });
        let addr = super::fakes::serve(0, handler).await;
        *addr_cell.lock().unwrap() = Some(addr);
        WopiHost {
            addr,
            state,
            keys,
            gateway,
        }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn wopi_src(&self) -> String {
        format!("http://{}/wopi/files/doc!42", self.addr)
    }

    /// Fetches and trusts the gateway's discovery keys.
    pub async fn trust(&self, gateway_base: &str) {
        let (st, _, body) = super::http::get(&format!("{gateway_base}/hosting/discovery")).await;
        assert_eq!(st, 200);
        let d = wopi::discovery::parse(&body).unwrap();
        *self.keys.lock().unwrap() = Some(d.proof_keys().unwrap());
        *self.gateway.lock().unwrap() = gateway_base.to_owned();
    }

    pub fn ops(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }
}
