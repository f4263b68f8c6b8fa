//! The peers of the load benchmarks (benches/load.sh), in one program:
//!
//! - `bench_peer serve PORT KEYFILE`: a bare hyper server. `/json` answers a fixed
//!   CheckFileInfo-sized JSON (the "bare hyper" baseline), `/small` 100 bytes, `/big?n=N`
//!   streams N bytes, `/healthcheck`; as a Docs-API integrator it serves `/doc/bench.docx`,
//!   answers `/callback` with `{"error":0}`, and publishes `/hosting/discovery` with KEYFILE's
//!   public key (the fake WOPI client whose proofs the gateway checks).
//! - `bench_peer headers GATEWAY PEER KEYFILE`: opens a host-face session on the gateway and
//!   prints, one per line, the CheckFileInfo path and its signed proof headers, then the
//!   contents path (GetFile/PutFile) and its headers (valid for 20 minutes), for wrk and curl.
//!   An optional 5th argument names the document (`big.bin` streams 1 GiB).
//! - `bench_peer callback KEY URL SECRET`: prints a signed status-2 callback body.
//! - `bench_peer wsload HOST:PORT SOCKETS SECONDS`: WebSocket echo load against `/ws` (which
//!   `serve` answers with a byte echo after the handshake); prints messages per second.
//! - `bench_peer proofs GATEWAY|bare:PEER PEER KEYFILE N [PATH]`: a CheckFileInfo path and N
//!   fresh proofs (one per request). Against `bare:`, `serve` answers `/bare/…` itself: it
//!   verifies the proof with the same `wopi` crate (RSA by ring) and returns the JSON of the
//!   file named by `BARE_JSON` (the gateway's own CheckFileInfo answer), the S2 baseline.
//!   PATH (the gateway's CheckFileInfo path) makes the bare proofs sign the same file id and
//!   access token, so both sides hash inputs of the same length.
//! - `bench_peer bare-ring PORT KEYFILE JSONFILE BASE`: the second S2 baseline, a bare hyper
//!   HTTP/1.1 server that checks the proof itself with ring (the signed bytes built from
//!   `access_token`, `BASE` + the request target and `X-WOPI-TimeStamp`, the 20-minute window,
//!   one RSA PKCS#1 v1.5 SHA-256 verify with KEYFILE's public key) and answers JSONFILE (a
//!   CheckFileInfo JSON) or 500. With `BASE` the gateway's public URL it verifies the very
//!   proofs signed for the gateway's CheckFileInfo path.
//!
//! For the client face it also plays the WOPI host (`/wopi/files/bench`, no proof check) and
//! Docs' cache (`/cache/big`, 100 MiB).

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;

type B = BoxBody<Bytes, std::io::Error>;
const SECRET: &str = "bench-integrator-secret-0123456789";

fn full(body: impl Into<Bytes>, ctype: &'static str) -> Response<B> {
    Response::builder()
        .header("content-type", ctype)
        .body(Full::new(body.into()).map_err(|e| match e {}).boxed())
        .expect("response")
}

/// The bare verifier: the same proof check as the gateway's (the `wopi` crate's, RSA by ring)
/// and a fixed JSON answer.
struct Bare {
    keys: wopi::proof::ProofKeys,
    json: Bytes,
}

fn bare_check(req: &Request<Incoming>, bare: &Bare) -> Response<B> {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    let query = req.uri().query().unwrap_or("");
    let token = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("access_token="))
        .unwrap_or("");
    let url = format!(
        "http://{}{}",
        header("host").unwrap_or(""),
        req.uri().path_and_query().map_or("", |p| p.as_str())
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let input = wopi::proof::ProofInput {
        access_token: token,
        url: &url,
        timestamp: header("x-wopi-timestamp"),
        proof: header("x-wopi-proof"),
        proof_old: header("x-wopi-proofold"),
    };
    let window = Some(wopi::proof::verify::Window {
        now_ticks: wopi::ticks::from_unix_ms(now),
        future_skew_ticks: 300 * wopi::ticks::TICKS_PER_SECOND,
    });
    match bare.keys.verify(&input, window) {
        Ok(_) => full(bare.json.clone(), "application/json"),
        Err(_) => Response::builder()
            .status(500)
            .body(Full::new(Bytes::new()).map_err(|e| match e {}).boxed())
            .expect("response"),
    }
}

/// The `bare-ring` baseline's key and answer.
struct RingBare {
    n: Vec<u8>,
    e: Vec<u8>,
    base: String,
    json: Bytes,
}

/// One proof check as a bare WOPI host would write it with ring alone: no wopi crate, no
/// router, one verify with the current key.
fn ring_check(req: &Request<Incoming>, bare: &RingBare) -> bool {
    use base64::Engine as _;
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    let Some(pq) = req.uri().path_and_query() else {
        return false;
    };
    let token = pq
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("access_token="))
        .unwrap_or("");
    let Some(ticks) = header("x-wopi-timestamp").and_then(|t| t.trim().parse::<i64>().ok()) else {
        return false;
    };
    let now = wopi::ticks::from_unix_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64,
    );
    let tps = wopi::ticks::TICKS_PER_SECOND;
    if ticks < now - 20 * 60 * tps || ticks > now + 300 * tps {
        return false;
    }
    let Some(sig) = header("x-wopi-proof").and_then(|p| {
        base64::engine::general_purpose::STANDARD
            .decode(p.trim())
            .ok()
    }) else {
        return false;
    };
    let url = format!("{}{}", bare.base, pq.as_str()).to_uppercase();
    let mut msg = Vec::with_capacity(16 + token.len() + url.len());
    msg.extend_from_slice(&(token.len() as u32).to_be_bytes());
    msg.extend_from_slice(token.as_bytes());
    msg.extend_from_slice(&(url.len() as u32).to_be_bytes());
    msg.extend_from_slice(url.as_bytes());
    msg.extend_from_slice(&8u32.to_be_bytes());
    msg.extend_from_slice(&ticks.to_be_bytes());
    ring::signature::RsaPublicKeyComponents {
        n: &bare.n,
        e: &bare.e,
    }
    .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &msg, &sig)
    .is_ok()
}

/// `bench_peer bare-ring PORT KEYFILE JSONFILE BASE`: hyper's HTTP/1.1 server on tokio's
/// multi-thread runtime, every request answered by [`ring_check`].
async fn bare_ring(port: u16, keyfile: &str, json: &str, base: &str) {
    let key =
        wopi::proof::SigningKey::from_pem(&std::fs::read_to_string(keyfile).expect("key file"))
            .expect("key");
    let bare = Arc::new(RingBare {
        n: key.public_key().modulus().to_vec(),
        e: key.public_key().exponent().to_vec(),
        base: base.trim_end_matches('/').to_owned(),
        json: Bytes::from(std::fs::read(json).expect("json file")),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!("listening addr={}", listener.local_addr().expect("addr"));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let bare = bare.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = if ring_check(&req, &bare) {
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(bare.json.clone()))
                } else {
                    Response::builder()
                        .status(500)
                        .body(Full::new(Bytes::new()))
                };
                async move { Ok::<_, std::convert::Infallible>(resp.expect("response")) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// `GET /ws` with `Upgrade: websocket`: the handshake (RFC 6455 §4.2.2), then every byte
/// back as it came (frames included): the proxy in between only tunnels bytes.
fn ws_echo(req: Request<Incoming>) -> Response<B> {
    use base64::Engine as _;
    let key = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let accept = base64::engine::general_purpose::STANDARD.encode(
        ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
        )
        .as_ref(),
    );
    tokio::spawn(async move {
        if let Ok(up) = hyper::upgrade::on(req).await {
            let (mut r, mut w) = tokio::io::split(TokioIo::new(up));
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }
    });
    Response::builder()
        .status(101)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", accept)
        .body(Full::new(Bytes::new()).map_err(|e| match e {}).boxed())
        .expect("response")
}

/// `bench_peer wsload HOST:PORT SOCKETS SECONDS`: opens SOCKETS WebSockets to `/ws`, each
/// sending a 16-byte masked text frame and waiting for it to come back, for SECONDS; prints
/// messages per second.
async fn ws_load(addr: &str, sockets: usize, seconds: u64) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..sockets {
        let (addr, count, stop, failed) =
            (addr.to_owned(), count.clone(), stop.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let run = async {
                let mut s = tokio::net::TcpStream::connect(&addr).await?;
                s.set_nodelay(true)?;
                let hello = format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
                s.write_all(hello.as_bytes()).await?;
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    s.read_exact(&mut byte).await?;
                    head.push(byte[0]);
                }
                if !head.starts_with(b"HTTP/1.1 101") {
                    return Err(std::io::Error::other(String::from_utf8_lossy(&head).into_owned()));
                }
                // FIN + text, masked, 16 bytes: the mask is 0, so the payload is as written.
                let mut frame = vec![0x81u8, 0x80 | 16, 0, 0, 0, 0];
                frame.extend_from_slice(b"wopi-gateway-ws!");
                let mut back = vec![0u8; frame.len()];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    s.write_all(&frame).await?;
                    s.read_exact(&mut back).await?;
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok::<(), std::io::Error>(())
            };
            if let Err(e) = run.await {
                if !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = e;
                }
            }
        }));
    }
    // Connections first, then the measured window.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let start = count.load(std::sync::atomic::Ordering::Relaxed);
    let t0 = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    let n = count.load(std::sync::atomic::Ordering::Relaxed) - start;
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    if failed > 0 {
        eprintln!("{failed} of {sockets} sockets failed");
    }
    println!("{:.0}", n as f64 / secs);
    std::process::exit(0);
}

async fn handle(
    req: Request<Incoming>,
    discovery: Arc<String>,
    json: Bytes,
    doc: Bytes,
    bare: Arc<Bare>,
) -> Response<B> {
    if req.uri().path().starts_with("/bare/") {
        return bare_check(&req, &bare);
    }
    if req.uri().path() == "/ws" {
        return ws_echo(req);
    }
    match req.uri().path() {
        "/json" => full(json, "application/json"),
        "/small" | "/web-apps/small" => full(Bytes::from_static(&[b's'; 100]), "text/plain"),
        "/healthcheck" => full("true", "text/plain"),
        p if p.starts_with("/doc/bench") && p.ends_with(".docx") => {
            full(doc, "application/octet-stream")
        }
        "/callback" => {
            let _ = req.into_body().collect().await;
            full(r#"{"error":0}"#, "application/json")
        }
        "/hosting/discovery" => full(discovery.as_bytes().to_vec(), "text/xml"),
        // A WOPI host for the client-face benchmark (no proof check: the gateway's signing cost
        // is still paid).
        "/wopi/files/bench" if req.method() == http::Method::GET => full(
            serde_json::json!({"BaseFileName": "bench.docx", "OwnerId": "o", "Size": 4096, "UserId": "u1",
                "UserFriendlyName": "Bench User", "Version": "1", "SupportsLocks": true, "SupportsUpdate": true, "UserCanWrite": true})
            .to_string(),
            "application/json",
        ),
        "/wopi/files/bench" | "/wopi/files/bench/contents" => {
            let _ = req.into_body().collect().await;
            full("{}", "application/json")
        }
        p if p.ends_with("/big") || p == "/doc/big.bin" || p == "/cache/big" => {
            let n: u64 = if req.uri().path() == "/doc/big.bin" {
                1 << 30
            } else if req.uri().path() == "/cache/big" {
                100 << 20
            } else {
                req.uri()
                    .query()
                    .and_then(|q| q.strip_prefix("n="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let chunk = Bytes::from(vec![b'z'; 256 * 1024]);
            let count = n.div_ceil(chunk.len() as u64);
            let stream = futures_util::stream::iter((0..count).map(move |i| {
                let len = if i + 1 == count {
                    n - i * chunk.len() as u64
                } else {
                    chunk.len() as u64
                };
                Ok::<_, std::io::Error>(Frame::data(chunk.slice(..len as usize)))
            }));
            Response::builder()
                .header("content-length", n)
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .expect("response")
        }
        _ => full("not found", "text/plain"),
    }
}

async fn serve(port: u16, keyfile: &str) {
    let key =
        wopi::proof::SigningKey::from_pem(&std::fs::read_to_string(keyfile).expect("key file"))
            .expect("key");
    use wopi::discovery::*;
    let discovery = render(&Discovery {
        net_zones: vec![NetZone {
            name: "internal-http".into(),
            apps: vec![App {
                name: "Word".into(),
                actions: vec![Action {
                    name: "edit".into(),
                    ext: "docx".into(),
                    urlsrc: "http://client.invalid/edit?<wopisrc=WOPI_SOURCE&>".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }],
        proof_key: Some(ProofKeyAttrs::from_keys(key.public_key(), None)),
    });
    let discovery = Arc::new(discovery);
    let json = Bytes::from(
        serde_json::json!({"BaseFileName": "bench.docx", "OwnerId": "owner", "Size": 4096, "UserId": "u1", "Version": "v1",
            "SupportsLocks": true, "SupportsGetLock": true, "SupportsExtendedLockLength": true, "SupportsUpdate": true,
            "SupportsRename": false, "SupportsDeleteFile": false, "SupportsUserInfo": true, "UserCanWrite": true, "ReadOnly": false,
            "UserCanNotWriteRelative": true, "UserCanRename": false, "UserFriendlyName": "Bench User",
            "LastModifiedTime": "2026-11-27T05:00:00.0000000Z", "SHA256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "FileExtension": ".docx"})
        .to_string(),
    );
    let doc = Bytes::from(vec![b'd'; 4096]);
    // The gateway's CheckFileInfo answer, when the bench script saved one (BARE_JSON).
    let bare = Arc::new(Bare {
        keys: wopi::proof::ProofKeys {
            current: Some(key.public_key().clone()),
            old: None,
        },
        json: std::env::var("BARE_JSON")
            .ok()
            .and_then(|p| std::fs::read(p).ok())
            .map_or_else(|| json.clone(), Bytes::from),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!("listening addr={}", listener.local_addr().expect("addr"));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (d, j, doc, bare) = (discovery.clone(), json.clone(), doc.clone(), bare.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let (d, j, doc, bare) = (d.clone(), j.clone(), doc.clone(), bare.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(req, d, j, doc, bare).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Opens a host-face session for `doc` (served by the peer) on the gateway: its access
/// token and file id.
async fn open_session(gateway: &str, peer: &str, doc: &str) -> (String, String) {
    let config = serde_json::json!({
        "document": {"fileType": "docx", "key": format!("bench-key-{doc}"), "title": "bench.docx",
                     "url": format!("{peer}/doc/{doc}"), "permissions": {"edit": true}},
        "editorConfig": {"callbackUrl": format!("{peer}/callback"), "mode": "edit", "user": {"id": "u1", "name": "Bench User"}},
    });
    let token = docs_api::jwt::sign(
        &docs_api::Secret::new(SECRET),
        config.as_object().expect("object"),
    );
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let req = Request::post(format!("{gateway}/api/v1/sessions?integrator=bench"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::json!({"token": token}).to_string(),
        )))
        .expect("request");
    let resp = client.request(req).await.expect("open session");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    (
        v["access_token"].as_str().expect("token").to_owned(),
        v["file_id"].as_str().expect("file id").to_owned(),
    )
}

async fn headers(gateway: &str, peer: &str, keyfile: &str, doc: &str) {
    let key =
        wopi::proof::SigningKey::from_pem(&std::fs::read_to_string(keyfile).expect("key file"))
            .expect("key");
    let (access, fid) = open_session(gateway, peer, doc).await;
    let (access, fid) = (access.as_str(), fid.as_str());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    // CheckFileInfo (also Lock/Unlock: same URL), then GetFile/PutFile (…/contents).
    for suffix in ["", "/contents"] {
        let path = format!("/wopi/files/{fid}{suffix}?access_token={access}&access_token_ttl=0");
        let p = key
            .sign(
                None,
                access,
                &format!("{gateway}{path}"),
                wopi::ticks::from_unix_ms(now),
            )
            .expect("sign");
        println!("{path}");
        println!("X-WOPI-TimeStamp: {}", p.timestamp);
        println!("X-WOPI-Proof: {}", p.proof);
    }
}

/// Prints a CheckFileInfo path, then `n` lines of `timestamp proof`, each signed at its own
/// timestamp (a fresh proof per request for wrk). `base` is the gateway (a session is opened
/// there) or `bare:URL` for the bare verifier (a fixed token).
async fn proofs(base: &str, peer: &str, keyfile: &str, n: usize, like: Option<&str>) {
    let key =
        wopi::proof::SigningKey::from_pem(&std::fs::read_to_string(keyfile).expect("key file"))
            .expect("key");
    let (signed_base, path, access) = match base.strip_prefix("bare:") {
        Some(b) => match like {
            Some(gw_path) => {
                let token = gw_path
                    .split_once('?')
                    .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("access_token=")))
                    .expect("the gateway path's access_token");
                (b.to_owned(), format!("/bare{gw_path}"), token.to_owned())
            }
            None => (
                b.to_owned(),
                "/bare/wopi/files/bare?access_token=bare-token&access_token_ttl=0".to_owned(),
                "bare-token".to_owned(),
            ),
        },
        None => {
            let (access, fid) = open_session(base, peer, "bench-proofs.docx").await;
            let path = format!("/wopi/files/{fid}?access_token={access}&access_token_ttl=0");
            (base.to_owned(), path, access)
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    println!("{path}");
    let url = format!("{signed_base}{path}");
    for i in 0..n {
        // One tick apart: distinct signed bytes, every proof inside the 20-minute window.
        let ticks = wopi::ticks::from_unix_ms(now) - i as i64;
        let p = key.sign(None, &access, &url, ticks).expect("sign");
        println!("{} {}", p.timestamp, p.proof);
    }
}

/// Prints a status-2 callback body as Document Server signs it (body token), for curl.
fn callback(key: &str, url: &str, secret: &str) {
    let body = serde_json::json!({"key": key, "status": 2, "url": url, "filetype": "docx", "users": ["u1"],
        "actions": [{"type": 0, "userid": "u1"}], "notmodified": false});
    let token = docs_api::jwt::sign(
        &docs_api::Secret::new(secret),
        body.as_object().expect("object"),
    );
    let mut with = body;
    with["token"] = serde_json::json!(token);
    println!("{with}");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(args[2].parse().expect("port"), &args[3]).await,
        Some("callback") => callback(&args[2], &args[3], &args[4]),
        Some("bare-ring") => {
            bare_ring(args[2].parse().expect("port"), &args[3], &args[4], &args[5]).await
        }
        Some("wsload") => {
            ws_load(
                &args[2],
                args[3].parse().expect("sockets"),
                args[4].parse().expect("seconds"),
            )
            .await
        }
        Some("proofs") => {
            proofs(
                &args[2],
                &args[3],
                &args[4],
                args[5].parse().expect("count"),
                args.get(6).map(String::as_str),
            )
            .await
        }
        Some("headers") => {
            headers(
                &args[2],
                &args[3],
                &args[4],
                args.get(5).map_or("bench.docx", String::as_str),
            )
            .await
        }
        _ => eprintln!(
            "usage: bench_peer serve PORT KEYFILE | bench_peer headers GATEWAY PEER KEYFILE"
        ),
    }
}
