//! A strict recording upstream: the stand-in for ONLYOFFICE Docs in the framing tests.
//!
//! Written over raw `TcpStream`s (no hyper) so that it frames what the gateway forwards
//! independently of the gateway's own HTTP stack, and strictly by RFC 9112 §6-7: a
//! request-line, header lines ending in CRLF, exactly one Host, and either one
//! Content-Length of digits or `Transfer-Encoding: chunked` (never both), the chunked body
//! decoded strictly. Every request it frames is recorded and answered `200` with
//! `x-recorder-seq: N` and a JSON body; anything it cannot frame strictly is recorded as a
//! [`Violation`] (the gateway forwarded something unframeable) and the connection closed.
//! A target starting with `/slow/` is answered after one second.

use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request the recorder framed completely.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub seq: u64,
    pub conn: u64,
    pub method: String,
    pub target: String,
    /// In order, names as sent (compare case-insensitively).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// Every value of the header `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).first().copied()
    }
}

/// Bytes the recorder could not frame strictly: a gateway bug.
#[derive(Clone, Debug)]
pub struct Violation {
    pub conn: u64,
    pub reason: String,
    /// The start of the offending request as received (at most 4 KiB).
    pub bytes: Vec<u8>,
}

/// A request cut off by the end of the connection (not a violation: the sender gave up).
#[derive(Clone, Debug)]
pub struct Aborted {
    pub conn: u64,
    pub bytes: Vec<u8>,
}

#[derive(Default, Debug)]
pub struct Log {
    pub requests: Vec<Recorded>,
    pub violations: Vec<Violation>,
    pub aborted: Vec<Aborted>,
}

#[derive(Clone, Debug)]
pub struct Recorder {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
}

impl Recorder {
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().requests.clone()
    }
    pub fn violations(&self) -> Vec<Violation> {
        self.log.lock().unwrap().violations.clone()
    }
    pub fn aborted(&self) -> Vec<Aborted> {
        self.log.lock().unwrap().aborted.clone()
    }
}

/// Starts the recorder on 127.0.0.1 (an ephemeral port); it runs until the runtime ends.
pub async fn start() -> Recorder {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let seq = Arc::new(AtomicU64::new(0));
    let rec = Recorder {
        addr,
        log: log.clone(),
    };
    tokio::spawn(async move {
        let mut conn_id = 0u64;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            conn_id += 1;
            let (log, seq) = (log.clone(), seq.clone());
            tokio::spawn(serve(stream, conn_id, log, seq));
        }
    });
    rec
}

/// The largest head the recorder takes (the gateway's own limit is 64 KiB).
const MAX_HEAD: usize = 1 << 20;
/// The largest body the recorder keeps.
const MAX_BODY: u64 = 64 << 20;

enum Step {
    /// A complete request, and how many buffered bytes it used.
    Done(Parsed, usize),
    /// More bytes needed.
    More,
    Bad(String),
}

struct Parsed {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

async fn serve(mut tcp: TcpStream, conn: u64, log: Arc<Mutex<Log>>, seq: Arc<AtomicU64>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Frame as many requests as the buffer holds, answering each in turn.
        loop {
            match parse(&buf) {
                Step::Done(p, used) => {
                    buf.drain(..used);
                    let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
                    let host = p
                        .headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let body = json!({
                        "seq": n,
                        "method": p.method,
                        "target": p.target,
                        "host": host,
                        "headers": p.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                        "body_len": p.body.len(),
                    })
                    .to_string();
                    let slow = p.target.starts_with("/slow/");
                    log.lock().unwrap().requests.push(Recorded {
                        seq: n,
                        conn,
                        method: p.method,
                        target: p.target,
                        headers: p.headers,
                        body: p.body,
                    });
                    if slow {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nx-recorder-seq: {n}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n{body}",
                        body.len(),
                        if p.close { "connection: close\r\n" } else { "" }
                    );
                    if tcp.write_all(answer.as_bytes()).await.is_err() || p.close {
                        return;
                    }
                }
                Step::More => break,
                Step::Bad(reason) => {
                    log.lock().unwrap().violations.push(Violation {
                        conn,
                        reason,
                        bytes: buf[..buf.len().min(4096)].to_vec(),
                    });
                    return;
                }
            }
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    log.lock().unwrap().aborted.push(Aborted {
                        conn,
                        bytes: buf[..buf.len().min(4096)].to_vec(),
                    });
                }
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// One line ending in CRLF starting at `at`: `Ok(Some(end of line content))`, `Ok(None)`
/// when incomplete; a bare CR or a bare LF is an error.
fn line(buf: &[u8], at: usize) -> Result<Option<usize>, String> {
    let mut i = at;
    while i < buf.len() {
        match buf[i] {
            b'\r' => {
                if i + 1 >= buf.len() {
                    return Ok(None);
                }
                if buf[i + 1] != b'\n' {
                    return Err(format!("bare CR at byte {i}"));
                }
                return Ok(Some(i));
            }
            b'\n' => return Err(format!("bare LF at byte {i}")),
            _ => i += 1,
        }
    }
    if buf.len() - at > MAX_HEAD {
        return Err("line too long".into());
    }
    Ok(None)
}

/// Header fields from `at` up to and including the empty line: `(fields, next)`.
type Fields = (Vec<(String, String)>, usize);

fn fields(buf: &[u8], mut at: usize) -> Result<Option<Fields>, String> {
    let mut out = Vec::new();
    loop {
        let Some(end) = line(buf, at)? else {
            return Ok(None);
        };
        let l = &buf[at..end];
        at = end + 2;
        if l.is_empty() {
            return Ok(Some((out, at)));
        }
        if l[0] == b' ' || l[0] == b'\t' {
            return Err("obs-fold (a line starting with whitespace)".into());
        }
        let Some(colon) = l.iter().position(|&c| c == b':') else {
            return Err(format!("no colon in {:?}", String::from_utf8_lossy(l)));
        };
        let name = &l[..colon];
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Err(format!(
                "bad field name {:?}",
                String::from_utf8_lossy(name)
            ));
        }
        let value = &l[colon + 1..];
        if value
            .iter()
            .any(|&c| c == 0 || c == 0x7f || (c < 0x20 && c != b'\t'))
        {
            return Err(format!(
                "control character in field {:?}",
                String::from_utf8_lossy(name)
            ));
        }
        let value = value.trim_ascii();
        out.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
        if out.len() > 1000 {
            return Err("more than 1000 fields".into());
        }
    }
}

fn parse(buf: &[u8]) -> Step {
    match parse_inner(buf) {
        Ok(Some((p, used))) => Step::Done(p, used),
        Ok(None) => Step::More,
        Err(e) => Step::Bad(e),
    }
}

fn parse_inner(buf: &[u8]) -> Result<Option<(Parsed, usize)>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Request-line: method SP request-target SP HTTP-version.
    let Some(end) = line(buf, 0)? else {
        return Ok(None);
    };
    let rl = &buf[..end];
    let parts: Vec<&[u8]> = rl.split(|&c| c == b' ').collect();
    if parts.len() != 3 {
        return Err(format!(
            "request-line is not three parts: {:?}",
            String::from_utf8_lossy(rl)
        ));
    }
    let (method, target, version) = (parts[0], parts[1], parts[2]);
    if method.is_empty() || !method.iter().all(|&c| is_tchar(c)) {
        return Err("bad method".into());
    }
    if target.is_empty() || !target.iter().all(|&c| (0x21..0x7f).contains(&c)) {
        return Err("bad request-target".into());
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err(format!(
            "bad version {:?}",
            String::from_utf8_lossy(version)
        ));
    }
    let Some((headers, body_at)) = fields(buf, end + 2)? else {
        if buf.len() > MAX_HEAD {
            return Err("head over 1 MiB".into());
        }
        return Ok(None);
    };
    let count = |n: &str| {
        headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(n))
            .count()
    };
    let value = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    if count("host") != 1 {
        return Err(format!("{} Host fields", count("host")));
    }
    let host = value("host").unwrap_or("");
    if host.is_empty()
        || !host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-:[]_~%!$&'()*+,;=".contains(&c))
    {
        return Err(format!("bad Host {host:?}"));
    }
    let (cl, te) = (count("content-length"), count("transfer-encoding"));
    if cl > 0 && te > 0 {
        return Err("both Content-Length and Transfer-Encoding".into());
    }
    let close = value("connection")
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
        || version == b"HTTP/1.0";
    let head = |body: Vec<u8>| Parsed {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        headers: headers.clone(),
        body,
        close,
    };
    if te > 0 {
        if te != 1
            || !value("transfer-encoding")
                .unwrap_or("")
                .eq_ignore_ascii_case("chunked")
        {
            return Err(format!(
                "Transfer-Encoding other than one `chunked`: {:?}",
                headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
                    .map(|(_, v)| v)
                    .collect::<Vec<_>>()
            ));
        }
        return Ok(chunked(buf, body_at)?.map(|(body, used)| (head(body), used)));
    }
    if cl > 0 {
        if cl != 1 {
            return Err(format!("{cl} Content-Length fields"));
        }
        let v = value("content-length").unwrap_or("");
        if v.is_empty() || v.len() > 19 || !v.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("bad Content-Length {v:?}"));
        }
        let n: u64 = v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?;
        if n > MAX_BODY {
            return Err(format!("Content-Length {n} over the recorder's limit"));
        }
        let n = n as usize;
        if buf.len() < body_at + n {
            return Ok(None);
        }
        return Ok(Some((
            head(buf[body_at..body_at + n].to_vec()),
            body_at + n,
        )));
    }
    Ok(Some((head(Vec::new()), body_at)))
}

/// A chunked body from `at`: `(decoded, next)`.
fn chunked(buf: &[u8], mut at: usize) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    loop {
        let Some(end) = line(buf, at)? else {
            return Ok(None);
        };
        let l = &buf[at..end];
        let digits = l.iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 16 {
            return Err(format!(
                "bad chunk size line {:?}",
                String::from_utf8_lossy(l)
            ));
        }
        let ext = &l[digits..];
        if !ext.is_empty() {
            // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
            let t = ext.trim_ascii_start();
            if !t.starts_with(b";")
                || t.iter()
                    .any(|&c| c == 0 || c == 0x7f || (c < 0x20 && c != b'\t'))
            {
                return Err(format!(
                    "bad chunk extension {:?}",
                    String::from_utf8_lossy(ext)
                ));
            }
        }
        let size = u64::from_str_radix(std::str::from_utf8(&l[..digits]).unwrap_or("x"), 16)
            .map_err(|_| "chunk size overflow".to_owned())?;
        if size > MAX_BODY {
            return Err(format!("chunk size {size} over the recorder's limit"));
        }
        let size = size as usize;
        at = end + 2;
        if size == 0 {
            // Trailer section, then the end.
            let Some((_trailers, next)) = fields(buf, at)? else {
                return Ok(None);
            };
            return Ok(Some((body, next)));
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err("no CRLF after chunk data".into());
        }
        at += size + 2;
        if body.len() as u64 > MAX_BODY {
            return Err("chunked body over the recorder's limit".into());
        }
    }
}
