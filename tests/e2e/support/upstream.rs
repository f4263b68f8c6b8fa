//! A small stand-in for ONLYOFFICE Docs behind the proxy.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type B = BoxBody<Bytes, std::io::Error>;

/// The JWT secret of the stand-in Docs.
pub const DOCS_SECRET: &str = "docs-secret-0123456789abcdef-0123456789";

fn full(status: u16, body: impl Into<Bytes>) -> Response<B> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()).map_err(|e| match e {}).boxed())
        .unwrap()
}

async fn handle(mut req: Request<Incoming>) -> Response<B> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    match path.as_str() {
        "/healthcheck" => full(200, "true"),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            full(200, "late")
        }
        "/status/418" => full(418, "teapot"),
        "/coauthoring/CommandService.ashx" => {
            // Document Server's command service: the body token must verify with its secret.
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let ok = v.get("token").and_then(Value::as_str).is_some_and(|t| {
                docs_api::jwt::verify(&docs_api::Secret::new(DOCS_SECRET), t).is_ok()
            });
            full(
                200,
                if ok {
                    json!({"error": 0, "version": "9.3.1.1"})
                } else {
                    json!({"error": 6})
                }
                .to_string(),
            )
        }
        "/big" => {
            let n: u64 = query
                .strip_prefix("n=")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
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
                .unwrap()
        }
        "/cut" => {
            // Promises 1,000 bytes, sends 10, then fails: the connection ends mid-body.
            let frames = futures_util::stream::unfold(0, |i| async move {
                match i {
                    0 => Some((Ok(Frame::data(Bytes::from_static(b"0123456789"))), 1)),
                    1 => {
                        // After the head and the first bytes are out.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Some((Err(std::io::Error::other("cut")), 2))
                    }
                    _ => None,
                }
            });
            Response::builder()
                .header("content-length", 1000)
                .body(BodyExt::boxed(StreamBody::new(frames)))
                .unwrap()
        }
        "/refuse" => {
            // Answers at once without reading the body (as Docs' nginx does with a body over
            // its limit); hyper then closes the connection with the body unread.
            full(413, "too large")
        }
        "/chunked" => {
            // No length: hyper frames it in chunks, with a trailer-free last chunk.
            let parts = ["first,", "second,", "third"];
            let stream =
                futures_util::stream::iter(parts.map(|p| {
                    Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(p.as_bytes())))
                }));
            Response::builder()
                .header("x-upstream", "docs")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
        "/upload" => {
            let mut body = req.into_body();
            let mut total = 0u64;
            while let Some(frame) = body.frame().await {
                if let Ok(d) = frame.unwrap().into_data() {
                    total += d.len() as u64;
                }
            }
            full(200, total.to_string())
        }
        "/ws" => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = on.await {
                    let mut io = TokioIo::new(up);
                    let mut buf = [0u8; 4096];
                    loop {
                        match io.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if io.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                .body(Full::new(Bytes::new()).map_err(|e| match e {}).boxed())
                .unwrap()
        }
        _ => {
            let headers: serde_json::Map<String, Value> = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        Value::String(v.to_str().unwrap_or("").to_owned()),
                    )
                })
                .collect();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let v = json!({"path": path, "query": query, "headers": headers, "body": String::from_utf8_lossy(&body)});
            let mut r = full(200, v.to_string());
            r.headers_mut()
                .insert("x-upstream", "docs".parse().unwrap());
            r.headers_mut()
                .insert("connection", "x-hop".parse().unwrap());
            r.headers_mut().insert("x-hop", "1".parse().unwrap());
            r
        }
    }
}

/// Starts the stand-in on `port` (0 = any); it runs until the test's runtime ends.
pub async fn start(port: u16) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req| async move {
                    Ok::<_, std::convert::Infallible>(handle(req).await)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}
