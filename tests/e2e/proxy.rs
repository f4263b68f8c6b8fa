//! Reverse proxy to ONLYOFFICE Docs, black-box against a stand-in upstream.

use crate::support::http::{get, send};
use crate::support::{Config, Gateway, free_port, upstream};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn gateway_to(up: std::net::SocketAddr, extra: &str) -> Gateway {
    gateway_with(up, "", extra).await
}

async fn gateway_with(up: std::net::SocketAddr, server: &str, extra: &str) -> Gateway {
    Gateway::start(Config {
        server: server.to_owned(),
        rest: format!(
            "[docs]\nurl = \"http://{up}\"\nhealthcheck_interval_seconds = 1\n[upstream]\nrequest_timeout_seconds = 1\n{extra}"
        ),
        ..Default::default()
    })
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_query_and_forwarded_headers() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "").await;
    let (st, h, body) = send(
        "GET",
        &gw.url("/web-apps/apps/api/documents/api.js?v=1&x=%2F"),
        &[
            ("x-custom", "kept"),
            ("x-forwarded-for", "6.6.6.6"),
            ("te", "trailers"),
        ],
        "",
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(h["x-upstream"], "docs");
    assert!(
        h.get("x-hop").is_none(),
        "hop-by-hop response headers removed"
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["path"], "/web-apps/apps/api/documents/api.js");
    assert_eq!(v["query"], "v=1&x=%2F");
    let hs = &v["headers"];
    assert_eq!(hs["x-custom"], "kept");
    assert_eq!(
        hs["x-forwarded-for"], "127.0.0.1",
        "a spoofed X-Forwarded-For from an untrusted peer is replaced"
    );
    assert_eq!(hs["x-forwarded-proto"], "http");
    assert_eq!(hs["x-forwarded-host"], gw.public.to_string());
    assert_eq!(hs["host"], up.to_string());
    assert!(hs.get("te").is_none());
    // The upstream's own errors pass through untouched.
    let (st, _, body) = get(&gw.url("/status/418")).await;
    assert_eq!((st, body.as_slice()), (418, b"teapot".as_slice()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_chain_is_extended() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "[access]\ntrusted_proxies = [\"127.0.0.1\"]\n").await;
    let (_, _, body) = send(
        "GET",
        &gw.url("/cache/x"),
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "office.example.com"),
        ],
        "",
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["headers"]["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(v["headers"]["x-forwarded-proto"], "https");
    assert_eq!(v["headers"]["x-forwarded-host"], "office.example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_both_ways_with_flat_memory() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "").await;
    let pid = gw.child.as_ref().unwrap().id();
    let (st, _, _) = get(&gw.url("/big?n=1024")).await;
    assert_eq!(st, 200);
    let before = rss_kib(pid);
    let n: u64 = 256 * 1024 * 1024;
    // Download: read it chunk by chunk, never holding it whole.
    let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    tcp.write_all(
        format!("GET /big?n={n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = tcp.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        total += k as u64;
    }
    assert!(total > n, "headers plus {n} bytes, got {total}");
    // Upload: a streamed request body of the same size.
    let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    tcp.write_all(
        format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let chunk = vec![b'u'; 1 << 20];
    for _ in 0..(n >> 20) {
        tcp.write_all(&chunk).await.unwrap();
    }
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer).ends_with(&n.to_string()));
    let after = rss_kib(pid);
    assert!(
        after.saturating_sub(before) < 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert!(
        gw.metric("wopi_gateway_proxy_bytes_total{direction=\"upstream\"}")
            .await
            >= n as f64
    );
    assert!(
        gw.metric("wopi_gateway_proxy_bytes_total{direction=\"downstream\"}")
            .await
            >= n as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_through_the_gateway() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "").await;
    let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    tcp.write_all(b"GET /doc/abc/c/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await.unwrap();
    // The stand-in upgrades only /ws; rewrite: use its /ws path.
    let mut head = vec![0u8; 1024];
    let k = tcp.read(&mut head).await.unwrap();
    let text = String::from_utf8_lossy(&head[..k]).to_string();
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "a non-upgrading upstream answer passes through: {text}"
    );
    let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await.unwrap();
    let k = tcp.read(&mut head).await.unwrap();
    let text = String::from_utf8_lossy(&head[..k]).to_string();
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.to_ascii_lowercase().contains("upgrade: websocket"));
    for msg in [&b"hello"[..], b"\x81\x05world", &[7u8; 3000][..]] {
        tcp.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tcp.read_exact(&mut got).await.unwrap();
        assert_eq!(got, msg);
    }
    assert_eq!(gw.metric("wopi_gateway_proxy_tunnels_open").await, 1.0);
    drop(tcp);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gw.metric("wopi_gateway_proxy_tunnels_open").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_502_and_slow_is_504() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "").await;
    let (st, _, _) = get(&gw.url("/slow")).await;
    assert_eq!(st, 504);
    let down = free_port();
    let gw2 = gateway_to(format!("127.0.0.1:{down}").parse().unwrap(), "").await;
    let (st, _, _) = get(&gw2.url("/web-apps/x.js")).await;
    assert_eq!(st, 502);
    assert!(
        gw2.wait_metric(
            "wopi_gateway_upstream_errors_total{kind=\"connect\",op=\"proxy\"}",
            1.0
        )
        .await
            >= 1.0
    );
    assert!(
        gw.wait_metric(
            "wopi_gateway_upstream_errors_total{kind=\"timeout\",op=\"proxy\"}",
            1.0
        )
        .await
            >= 1.0
    );
    assert!(
        gw2.wait_log("upstream Docs unreachable")
            .contains("upstream Docs unreachable")
    );
}

/// Sends `request` on a keep-alive connection and reads its answer (as [`read_answer`]).
async fn ask(
    tcp: &mut tokio::net::TcpStream,
    pending: &mut Vec<u8>,
    request: &[u8],
) -> (String, Vec<u8>) {
    tcp.write_all(request).await.unwrap();
    read_answer(tcp, pending, false).await
}

/// Reads one answer off a keep-alive connection: its head and a body framed by length or
/// chunks (returned de-chunked).
async fn read_answer(
    tcp: &mut tokio::net::TcpStream,
    pending: &mut Vec<u8>,
    head_only: bool,
) -> (String, Vec<u8>) {
    async fn fill(tcp: &mut tokio::net::TcpStream, pending: &mut Vec<u8>) {
        let mut chunk = [0u8; 8192];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed early");
        pending.extend_from_slice(&chunk[..n]);
    }
    let end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(tcp, pending).await;
    };
    let head = String::from_utf8(pending.drain(..end).collect()).unwrap();
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse::<usize>().unwrap());
    let mut body = Vec::new();
    if head_only {
    } else if let Some(n) = length {
        while pending.len() < n {
            fill(tcp, pending).await;
        }
        body = pending.drain(..n).collect();
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let line_end = loop {
                if let Some(i) = pending.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                fill(tcp, pending).await;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&pending[..line_end]).unwrap(), 16)
                    .unwrap();
            while pending.len() < line_end + 2 + size + 2 {
                fill(tcp, pending).await;
            }
            body.extend_from_slice(&pending[line_end + 2..line_end + 2 + size]);
            pending.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    }
    (head, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_mixes_proxied_and_own_requests() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "").await;
    let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    let mut pending = Vec::new();
    // Two pipelined requests in one write, then a chunked answer, a HEAD and a POST body.
    tcp.write_all(b"GET /web-apps/a.js?x=1 HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\nGET /web-apps/b.js HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for expected in ["/web-apps/a.js", "/web-apps/b.js"] {
        let (head, body) = read_answer(&mut tcp, &mut pending, false).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(!head.to_ascii_lowercase().contains("x-hop"), "{head}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["path"], expected);
        assert!(v["headers"].get("te").is_none());
    }
    let (head, body) = ask(
        &mut tcp,
        &mut pending,
        b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert_eq!(body, b"first,second,third");
    tcp.write_all(b"HEAD /web-apps/a.js HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_answer(&mut tcp, &mut pending, true).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // A HEAD answer carries no body even with a length: the next answer follows at once.
    let (head, body) = ask(
        &mut tcp,
        &mut pending,
        b"POST /web-apps/save HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (v["path"].as_str(), v["body"].as_str()),
        (Some("/web-apps/save"), Some("hello"))
    );
    // The gateway's own route on the same connection: answered by the gateway, not Docs.
    let (head, body) = ask(
        &mut tcp,
        &mut pending,
        b"GET /hosting/discovery HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("wopi-discovery"));
    // And proxied requests still work after the hand-over.
    let (_, body) = ask(
        &mut tcp,
        &mut pending,
        b"GET /web-apps/c.js HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["path"], "/web-apps/c.js");
    assert_eq!(
        gw.metric("wopi_gateway_http_requests_total{group=\"proxy\",status_class=\"2xx\"}")
            .await,
        6.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_routes_keep_the_connection_request_after_request() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "").await;
    let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    let mut pending = Vec::new();
    // Two of the gateway's own requests pipelined, the second with a body the gateway
    // refuses; then a proxied one: every answer comes, in order, on the one connection.
    let (head, body) = ask(&mut tcp, &mut pending, b"GET /hosting/capabilities HTTP/1.1\r\nHost: x\r\n\r\nPOST /wopi/files/nope/contents HTTP/1.1\r\nHost: x\r\nX-WOPI-Override: PUT\r\nContent-Length: 4\r\n\r\nbodyGET /web-apps/d.js HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let caps: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(caps["productName"], "wopi-gateway");
    let (head, _) = read_answer(&mut tcp, &mut pending, false).await;
    assert!(
        head.starts_with("HTTP/1.1 4") || head.starts_with("HTTP/1.1 5"),
        "the unsigned PutFile is refused: {head}"
    );
    let (head, body) = read_answer(&mut tcp, &mut pending, false).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["path"], "/web-apps/d.js");
    // A body that arrives in pieces after its head still reaches the handler whole, and an
    // own request asking to close is the connection's last.
    tcp.write_all(b"POST /wopi/files/nope/contents HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\nab")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tcp.write_all(b"cdef").await.unwrap();
    let (head, _) = read_answer(&mut tcp, &mut pending, false).await;
    assert!(!head.starts_with("HTTP/1.1 2"), "{head}");
    let mut rest = Vec::new();
    tcp.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "nothing after the last answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_and_own_requests_share_one_concurrency_limit() {
    let up = upstream::start(0).await;
    let gw = gateway_with(up, "max_concurrent_requests = 1", "").await;
    let slow = tokio::spawn({
        let url = gw.url("/slow");
        async move { get(&url).await.0 }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(&gw.url("/web-apps/x.js")).await.0, 503);
    assert_eq!(get(&gw.url("/hosting/discovery")).await.0, 503);
    assert_eq!(slow.await.unwrap(), 504);
    assert_eq!(gw.metric("wopi_gateway_load_shed_total").await, 2.0);
    assert_eq!(get(&gw.url("/web-apps/x.js")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_answer_cut_short_ends_the_connection_and_is_counted() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "").await;
    let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    tcp.write_all(b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got)).await;
    assert!(
        ended.is_ok(),
        "the connection ends: {:?} {}",
        String::from_utf8_lossy(&got),
        gw.stderr()
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("0123456789"), "only what came: {text}");
    assert!(
        gw.wait_metric(
            "wopi_gateway_upstream_errors_total{kind=\"protocol\",op=\"proxy\"}",
            1.0
        )
        .await
            >= 1.0
    );
    assert!(
        gw.wait_log("upstream Docs answer cut short")
            .contains("upstream Docs answer cut short")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_before_the_whole_upload_reaches_the_client() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "").await;
    const LEN: usize = 64 << 20;
    let tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    // The upload goes on while the answer is read; it stops being read after the answer.
    let upload = tokio::spawn(async move {
        let head = format!("POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: {LEN}\r\n\r\n");
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 256 * 1024];
        for _ in 0..LEN / chunk.len() {
            wr.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut b = [0u8; 4096];
        while !got.windows(9).any(|w| w == b"too large") {
            match rd.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer in time: {}", gw.stderr());
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "Docs' own answer, not a 502: {text} {}",
        gw.stderr()
    );
    assert!(text.contains("too large"), "{text}");
    // The connection ends: the rest of that body is never read.
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the connection ends after the early answer");
    upload.abort();
    // Nothing counted as an upstream failure.
    assert_eq!(
        gw.metric("wopi_gateway_upstream_errors_total{kind=\"protocol\",op=\"proxy\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_heads_after_proxied_requests_get_the_servers_answers() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "").await;
    // A proxied request, then a length that is no number on the same connection: the
    // front refuses it (400), counts it by rule and closes the connection.
    let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    let mut pending = Vec::new();
    let (head, _) = ask(
        &mut tcp,
        &mut pending,
        b"GET /web-apps/a.js HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tcp.write_all(b"POST /web-apps/save HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\nhello")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
    let text = String::from_utf8_lossy(&rest);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    // Two different lengths: refused the same way.
    let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    tcp.write_all(b"POST /web-apps/save HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
    let text = String::from_utf8_lossy(&rest);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    // Counted (waited for, bounded: the count may land after the answer is read).
    for (series, at_least) in [
        (
            "wopi_gateway_http_unrouted_requests_total{status=\"400\"}",
            2.0,
        ),
        (
            "wopi_gateway_http_refused_requests_total{rule=\"content-length-invalid\"}",
            1.0,
        ),
        (
            "wopi_gateway_http_refused_requests_total{rule=\"content-length-repeated\"}",
            1.0,
        ),
    ] {
        assert!(
            gw.wait_metric(series, at_least).await >= at_least,
            "{series}"
        );
    }
    // A chunked body is not lost: the front re-frames it and Docs gets it whole.
    let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    let mut pending = Vec::new();
    let (head, body) = ask(&mut tcp, &mut pending, b"POST /web-apps/save HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nc\r\nchunked body\r\n0\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["body"], "chunked body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_served_with_and_without_connection_threads() {
    let up = upstream::start(0).await;
    for threads in ["connection_threads = 0", "connection_threads = 3"] {
        let gw = gateway_with(up, threads, "").await;
        // Several connections (handed round robin to the threads), each with a proxied
        // request and one of the gateway's own on the same connection.
        for _ in 0..4 {
            let mut tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
            let mut pending = Vec::new();
            let (head, _) = ask(
                &mut tcp,
                &mut pending,
                b"GET /web-apps/a.js HTTP/1.1\r\nHost: x\r\n\r\n",
            )
            .await;
            assert!(head.starts_with("HTTP/1.1 200"), "{threads}: {head}");
            let (head, body) = ask(
                &mut tcp,
                &mut pending,
                b"GET /hosting/discovery HTTP/1.1\r\nHost: x\r\n\r\n",
            )
            .await;
            assert!(head.starts_with("HTTP/1.1 200"), "{threads}: {head}");
            assert!(String::from_utf8_lossy(&body).contains("wopi-discovery"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_allowlist_applies() {
    let up = upstream::start(0).await;
    let gw = gateway_to(up, "[access.allow]\nproxy = [\"10.0.0.0/8\"]\n").await;
    assert_eq!(get(&gw.url("/web-apps/x.js")).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_upstream() {
    let port = free_port();
    let gw = gateway_to(format!("127.0.0.1:{port}").parse().unwrap(), "").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(&gw.admin_url("/readyz")).await.0, 503);
    assert_eq!(gw.metric("wopi_gateway_upstream_up").await, 0.0);
    let _up = upstream::start(port).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get(&gw.admin_url("/readyz")).await.0 != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "readyz never became 200"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gw.metric("wopi_gateway_upstream_up").await, 1.0);
    // The log tells the same story as /readyz: not ready (with the reason) once, then ready
    // once, never "ready" while /readyz said 503.
    let log = gw.settled_log();
    let not_ready: Vec<_> = log
        .lines()
        .filter(|l| l.contains("not ready: upstream Docs unreachable"))
        .collect();
    assert_eq!(not_ready.len(), 1, "{log}");
    let ready: Vec<_> = log
        .lines()
        .filter(|l| l.trim_end().ends_with(" ready") || l.contains("INFO gateway::app: ready"))
        .collect();
    assert_eq!(ready.len(), 1, "{log}");
    assert!(
        log.find("not ready: upstream").unwrap() < log.find(ready[0]).unwrap(),
        "{log}"
    );
}
