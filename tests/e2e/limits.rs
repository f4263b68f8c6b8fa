//! Connection and request limits, black-box: `max_connections`, the head timeout counted
//! from the accept, `body_idle_timeout_seconds` (408) and the admission rule that keeps
//! uploads to half of `max_concurrent_requests`. Every wait is bounded; metrics are polled
//! with a deadline, never read after a fixed sleep.

use crate::support::http::get;
use crate::support::{Config, Gateway, upstream};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A gateway in front of the stand-in Docs. The outgoing request timeout is long, so a
/// stalled upload can only end by the gateway's own body rules, not by a 504.
fn gateway(up: SocketAddr, server: &str) -> Gateway {
    gateway_with(up, server, "")
}

/// [`gateway`] with more sections after `[upstream]`.
fn gateway_with(up: SocketAddr, server: &str, extra: &str) -> Gateway {
    Gateway::start(Config {
        server: server.to_owned(),
        rest: format!(
            "[docs]\nurl = \"http://{up}\"\nhealthcheck_interval_seconds = 1\n[upstream]\nrequest_timeout_seconds = 30\n{extra}"
        ),
        ..Default::default()
    })
}

/// What came back on a connection within a bound.
#[derive(Debug)]
enum Got {
    /// A whole answer: its head, its body, and any bytes after it.
    Answer {
        head: String,
        body: Vec<u8>,
        extra: Vec<u8>,
    },
    /// The connection ended (EOF or error) before a whole answer; what came before.
    Closed(String),
    /// Nothing complete within the bound; what came so far.
    Silent(String),
}

impl Got {
    fn status(&self) -> Option<u16> {
        match self {
            Got::Answer { head, .. } => head.split(' ').nth(1)?.parse().ok(),
            _ => None,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one answer (framed by Content-Length or chunks) within `limit`.
async fn read_answer(tcp: &mut TcpStream, limit: Duration) -> Got {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(i) = find(&got, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..i + 4]).into_owned();
            let lower = head.to_ascii_lowercase();
            let start = i + 4;
            let end = if lower.contains("transfer-encoding: chunked") {
                find(&got[start..], b"0\r\n\r\n").map(|j| start + j + 5)
            } else {
                let len = lower
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                (got.len() >= start + len).then_some(start + len)
            };
            if let Some(end) = end {
                return Got::Answer {
                    head,
                    body: got[start..end].to_vec(),
                    extra: got[end..].to_vec(),
                };
            }
        }
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return Got::Silent(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(0) | Err(_)) => return Got::Closed(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Connects to `addr` within 2 s.
async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .unwrap()
}

/// The admin `/metrics` text, fetched within 5 s.
async fn metrics(gw: &Gateway) -> String {
    let (st, _, body) =
        tokio::time::timeout(Duration::from_secs(5), get(&gw.admin_url("/metrics")))
            .await
            .expect("admin /metrics answers in time");
    assert_eq!(st, 200);
    String::from_utf8(body).unwrap()
}

/// One series (full name with labels, as printed); 0 when absent.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

/// The sum of every series of a family (all label sets).
fn family(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls a series until `ok` holds or `limit` passes; returns the last value read.
async fn poll(gw: &Gateway, name: &str, limit: Duration, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + limit;
    loop {
        let v = series(&metrics(gw).await, name);
        if ok(v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const OPEN: &str = "wopi_gateway_connections_open";
const AT_LIMIT: &str = "wopi_gateway_connections_at_limit_total";
const HEAD_TIMEOUTS: &str = "wopi_gateway_http_timeouts_total{phase=\"head\"}";
const BODY_TIMEOUTS: &str = "wopi_gateway_http_timeouts_total{phase=\"body\"}";
const BODY_IDLE_REFUSED: &str =
    "wopi_gateway_http_refused_requests_total{rule=\"body-idle-timeout\"}";
const UPSTREAM_ERRORS: &str = "wopi_gateway_upstream_errors_total";
const LOAD_SHED: &str = "wopi_gateway_load_shed_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_stops_accepting_at_the_cap() {
    let up = upstream::start(0).await;
    let gw = gateway(
        up,
        "max_connections = 20\nheader_read_timeout_seconds = 30\nidle_timeout_seconds = 120",
    );
    let mut conns = Vec::new();
    for _ in 0..20 {
        conns.push(connect(gw.public).await);
    }
    let open = poll(&gw, OPEN, Duration::from_secs(5), |v| v == 20.0).await;
    assert_eq!(open, 20.0, "20 idle connections accepted and counted");

    // The admin listener is not capped.
    let (st, _, _) = tokio::time::timeout(Duration::from_secs(3), get(&gw.admin_url("/healthz")))
        .await
        .expect("admin /healthz answers at the cap");
    assert_eq!(st, 200);

    // A request on one of the open connections is served.
    conns[0]
        .write_all(b"GET /web-apps/a.js HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_answer(&mut conns[0], Duration::from_secs(5)).await;
    assert_eq!(
        got.status(),
        Some(200),
        "an open connection still works: {got:?}"
    );

    // A 21st connection may be taken by the kernel's backlog, but its request is not
    // answered while the cap holds.
    let mut late = connect(gw.public).await;
    late.write_all(b"GET /web-apps/late.js HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_answer(&mut late, Duration::from_secs(1)).await;
    assert!(
        matches!(&got, Got::Silent(s) if s.is_empty()),
        "no answer beyond the cap: {got:?}"
    );
    let at_limit = poll(&gw, AT_LIMIT, Duration::from_secs(5), |v| v >= 1.0).await;
    assert!(at_limit >= 1.0, "connections_at_limit_total = {at_limit}");
    let text = metrics(&gw).await;
    assert_eq!(series(&text, OPEN), 20.0, "still 20 open at the cap");

    // Closing five lets the waiting connection in, and a new one too.
    for c in conns.drain(15..) {
        drop(c);
    }
    let got = read_answer(&mut late, Duration::from_secs(5)).await;
    assert_eq!(
        got.status(),
        Some(200),
        "the waiting connection is served once others close: {got:?}"
    );
    if let Got::Answer { body, .. } = &got {
        assert!(
            String::from_utf8_lossy(body).contains("/web-apps/late.js"),
            "the answer to the waiting request: {got:?}"
        );
    }
    let mut fresh = connect(gw.public).await;
    fresh
        .write_all(b"GET /web-apps/fresh.js HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_answer(&mut fresh, Duration::from_secs(5)).await;
    assert_eq!(
        got.status(),
        Some(200),
        "a new connection is served: {got:?}"
    );
    let open = poll(&gw, OPEN, Duration::from_secs(5), |v| v == 17.0).await;
    assert_eq!(open, 17.0, "15 kept + the waiting one + the new one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_at_the_head_timeout_from_accept() {
    let up = upstream::start(0).await;
    let gw = gateway(
        up,
        "header_read_timeout_seconds = 1\nidle_timeout_seconds = 120",
    );
    let before = series(&metrics(&gw).await, HEAD_TIMEOUTS);
    let mut tcp = connect(gw.public).await;
    let start = Instant::now();
    let got = read_answer(&mut tcp, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert!(
        matches!(&got, Got::Closed(s) if s.is_empty()),
        "closed without an answer: {got:?} after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(800) && took <= Duration::from_secs(3),
        "closed after {took:?}, expected about 1 s"
    );
    let after = poll(&gw, HEAD_TIMEOUTS, Duration::from_secs(5), |v| v > before).await;
    assert!(after > before, "head timeouts {before} -> {after}");
}

/// The rest of a 100-byte body whose first 10 bytes were sent: itself a whole request, so
/// a gateway that parsed it as one would answer it.
fn stray_rest() -> Vec<u8> {
    let base = "GET /web-apps/stray HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n";
    let pad = "p".repeat(90 - base.len());
    let rest = format!("GET /web-apps/stray HTTP/1.1\r\nHost: x\r\nX-Pad: {pad}\r\n\r\n");
    assert_eq!(rest.len(), 90);
    rest.into_bytes()
}

/// After an answer to a request whose body was cut short, the rest of the body must not be
/// taken for a request: no second answer comes.
async fn no_stray_answer(tcp: &mut TcpStream, what: &str) {
    let _ = tcp.write_all(&stray_rest()).await;
    let got = read_answer(tcp, Duration::from_millis(1500)).await;
    assert!(
        matches!(&got, Got::Closed(s) | Got::Silent(s) if s.is_empty()),
        "{what}: the rest of the body was answered as a request: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_ends_with_408() {
    let up = upstream::start(0).await;
    // Proof checks off: the own upload route is refused for its missing token, not for the
    // WOPI client's proof keys this setup has none of (that is a 500).
    let gw = gateway_with(
        up,
        "body_idle_timeout_seconds = 1",
        "[host_face]\nproof = \"off\"\n",
    );
    let text = metrics(&gw).await;
    let upstream_before = family(&text, UPSTREAM_ERRORS);

    // Proxied, framed by length: 10 of 100 bytes, then nothing.
    let mut tcp = connect(gw.public).await;
    tcp.write_all(
        b"POST /web-apps/save HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let got = read_answer(&mut tcp, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert_eq!(
        got.status(),
        Some(408),
        "length-framed: {got:?} after {took:?}"
    );
    assert!(took <= Duration::from_secs(4), "408 after {took:?}");
    if let Got::Answer { extra, .. } = &got {
        assert!(extra.is_empty(), "one answer only: {got:?}");
    }
    no_stray_answer(&mut tcp, "proxied, length-framed").await;
    let v = poll(&gw, BODY_TIMEOUTS, Duration::from_secs(5), |v| v >= 1.0).await;
    assert!(v >= 1.0, "body timeouts: {v}");
    let v = poll(&gw, BODY_IDLE_REFUSED, Duration::from_secs(5), |v| v >= 1.0).await;
    assert!(v >= 1.0, "refused body-idle-timeout: {v}");

    // Proxied, chunked: one chunk, then nothing.
    let mut tcp = connect(gw.public).await;
    tcp.write_all(
        b"POST /web-apps/save HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let got = read_answer(&mut tcp, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert_eq!(got.status(), Some(408), "chunked: {got:?} after {took:?}");
    assert!(took <= Duration::from_secs(4), "408 after {took:?}");
    let v = poll(&gw, BODY_TIMEOUTS, Duration::from_secs(5), |v| v >= 2.0).await;
    assert!(v >= 2.0, "body timeouts: {v}");
    let v = poll(&gw, BODY_IDLE_REFUSED, Duration::from_secs(5), |v| v >= 2.0).await;
    assert!(v >= 2.0, "refused body-idle-timeout: {v}");

    // The gateway's own upload route: answered (refused or 408), and the rest of the body
    // sent afterwards is never parsed as a request.
    let mut tcp = connect(gw.public).await;
    tcp.write_all(
        b"POST /wopi/files/x/contents HTTP/1.1\r\nHost: x\r\nX-WOPI-Override: PUT\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let got = read_answer(&mut tcp, Duration::from_secs(5)).await;
    let took = start.elapsed();
    assert!(
        got.status().is_some_and(|s| (400..500).contains(&s)),
        "own route: {got:?} after {took:?}"
    );
    if let Got::Answer { extra, .. } = &got {
        assert!(extra.is_empty(), "one answer only: {got:?}");
    }
    no_stray_answer(&mut tcp, "own route").await;

    // None of it is a Docs failure.
    let upstream_after = family(&metrics(&gw).await, UPSTREAM_ERRORS);
    assert_eq!(
        upstream_after, upstream_before,
        "upstream_errors_total grew: {upstream_before} -> {upstream_after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_uploads_cannot_starve_other_requests() {
    let up = upstream::start(0).await;
    let gw = gateway(
        up,
        "max_concurrent_requests = 8\nbody_idle_timeout_seconds = 30",
    );
    // Eight uploads, each a byte of a megabyte, then held.
    let mut uploads = Vec::new();
    for i in 0..8 {
        let mut tcp = connect(gw.public).await;
        tcp.write_all(
            format!("POST /web-apps/up{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nu")
                .as_bytes(),
        )
        .await
        .unwrap();
        uploads.push(tcp);
    }
    let shed = poll(&gw, LOAD_SHED, Duration::from_secs(5), |v| v >= 4.0).await;
    assert!(shed >= 4.0, "load_shed_total = {shed} with 8 uploads held");

    // Requests without a body still get in, own and proxied.
    for path in [
        "/hosting/discovery",
        "/web-apps/x.js",
        "/hosting/capabilities",
    ] {
        let mut tcp = connect(gw.public).await;
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let got = read_answer(&mut tcp, Duration::from_secs(5)).await;
        assert_eq!(
            got.status(),
            Some(200),
            "{path} while uploads are held: {got:?}"
        );
    }

    // At least half of the uploads were shed with 503; the rest are still held.
    let mut statuses = Vec::new();
    for tcp in &mut uploads {
        let got = read_answer(tcp, Duration::from_millis(500)).await;
        statuses.push(got.status());
    }
    let shed503 = statuses.iter().filter(|s| **s == Some(503)).count();
    assert!(shed503 >= 4, "upload answers: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, Some(503) | None)),
        "upload answers: {statuses:?}"
    );
    let shed = series(&metrics(&gw).await, LOAD_SHED);
    assert!(shed >= 4.0, "load_shed_total = {shed}");
}
