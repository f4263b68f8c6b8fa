//! Request framing, routing and forwarding, case by case, against a strict recording upstream.
//!
//! Every case is a raw request byte string sent to the real gateway in three positions (first
//! on a new connection; after a proxied GET on the same connection; after a chunked POST to a
//! proxied path and a GET /hosting/discovery on the same connection). What the client gets
//! and what the recorder (the stand-in for Docs, see `support::recorder`) sees are compared
//! with what RFC 9112 and the gateway's framing rules call for. Every failing case is listed
//! in one table at the end.
//!
//! Each run puts a marker (`@M@` in the case's bytes) into its target or a header so the
//! recorder's requests can be told apart; requests without a known marker are reported too.

use crate::support::recorder::{self, Recorded, Recorder};
use crate::support::{Config, Gateway};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The smuggled request used as a body throughout (35 bytes).
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

/// How long a read may wait for an answer that is still due.
const READ_WAIT: Duration = Duration::from_millis(2000);
/// How long to listen after the expected answers for one that should not come.
const QUIET: Duration = Duration::from_millis(600);
/// Runs at once.
const PARALLEL: usize = 24;

// ---------------------------------------------------------------------------------------
// Cases

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    /// Proxied: the answer carries `x-recorder-seq`.
    Recorder,
    /// The gateway's own answer: no `x-recorder-seq`.
    Gateway,
}

#[derive(Clone, Debug)]
struct AnsExp {
    /// Accepted statuses; empty = any.
    status: Vec<u16>,
    src: Src,
    contains: Option<&'static str>,
    absent: Option<&'static str>,
}

#[derive(Clone, Debug)]
struct Up {
    method: String,
    /// The normalised target (see [`norm`]), `@M@` replaced by the run's marker.
    path: String,
    body: Vec<u8>,
}

/// One acceptable outcome.
#[derive(Clone, Debug, Default)]
struct Exp {
    answers: Vec<AnsExp>,
    up: Vec<Up>,
    /// The connection must be closed after the answers.
    close: bool,
}

#[derive(Clone, Debug)]
struct Case {
    class: &'static str,
    name: String,
    /// (pause before, bytes) in order.
    parts: Vec<(u64, Vec<u8>)>,
    /// Half-close (shut down writing) after the last part.
    half: bool,
    /// Any one of these is acceptable.
    alts: Vec<Exp>,
    /// The X-Forwarded-Host every proxied request of the case must carry (`None`: unchecked).
    xfh: Option<String>,
    /// Header expectations on every proxied request: `Some(v)` equals, `None` absent.
    hdrs: Vec<(&'static str, Option<&'static str>)>,
}

fn c(class: &'static str, name: &str, raw: impl AsRef<[u8]>) -> Case {
    Case {
        class,
        name: name.to_owned(),
        parts: vec![(0, raw.as_ref().to_vec())],
        half: false,
        alts: vec![Exp::default()],
        xfh: Some("x".to_owned()),
        hdrs: Vec::new(),
    }
}

impl Case {
    fn alt(&mut self) -> &mut Exp {
        self.alts.last_mut().unwrap()
    }
    /// A further part sent `ms` after the previous one.
    fn then(mut self, ms: u64, raw: impl AsRef<[u8]>) -> Self {
        self.parts.push((ms, raw.as_ref().to_vec()));
        self
    }
    fn half(mut self) -> Self {
        self.half = true;
        self
    }
    /// Proxied: answered 200 by the recorder, which saw `method path` with `body`.
    fn ok(mut self, method: &str, path: &str, body: impl AsRef<[u8]>) -> Self {
        let a = self.alt();
        a.answers.push(AnsExp {
            status: vec![200],
            src: Src::Recorder,
            contains: None,
            absent: None,
        });
        a.up.push(Up {
            method: method.to_owned(),
            path: path.to_owned(),
            body: body.as_ref().to_vec(),
        });
        self
    }
    /// The gateway's own answer with one of `status` (empty = any).
    fn own(mut self, status: &[u16], contains: Option<&'static str>) -> Self {
        self.alt().answers.push(AnsExp {
            status: status.to_vec(),
            src: Src::Gateway,
            contains,
            absent: None,
        });
        self
    }
    /// The gateway's own answer must not contain `text`.
    fn lacks(mut self, text: &'static str) -> Self {
        self.alt().answers.last_mut().unwrap().absent = Some(text);
        self
    }
    fn err(self, status: &[u16]) -> Self {
        self.own(status, None)
    }
    /// The gateway's discovery XML.
    fn discovery(self) -> Self {
        self.own(&[200], Some("<wopi-discovery"))
    }
    fn caps(self) -> Self {
        self.own(&[200], Some("productName"))
    }
    fn close(mut self) -> Self {
        self.alt().close = true;
        self
    }
    /// Another acceptable outcome follows.
    fn or(mut self) -> Self {
        self.alts.push(Exp::default());
        self
    }
    /// Or: no answer at all, the connection closed.
    fn or_closed(self) -> Self {
        self.or().close()
    }
    fn xfh(mut self, v: Option<&str>) -> Self {
        self.xfh = v.map(str::to_owned);
        self
    }
    fn hdr(mut self, name: &'static str, v: Option<&'static str>) -> Self {
        self.hdrs.push((name, v));
        self
    }
}

fn post(path: &str, extra: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn chunk(body: &str) -> String {
    format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
}

#[allow(clippy::too_many_lines)]
fn corpus() -> Vec<Case> {
    let mut v = Vec::new();
    let p = "/web-apps/@M@";
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let bad = [400u16];
    let bad_version = [400u16, 505];
    let bad_coding = [400u16, 501];

    // --- request-line forms
    let rl = "request-line";
    v.push(c(rl, "origin-form GET", get(p)).ok("GET", p, ""));
    v.push(
        c(
            rl,
            "origin-form with query",
            get(&format!("{p}/a?x=1&y=%2F")),
        )
        .ok("GET", &format!("{p}/a?x=1&y=%2F"), ""),
    );
    v.push(c(rl, "absolute-form", get(&format!("http://x{p}/a"))).ok("GET", &format!("{p}/a"), ""));
    v.push(
        c(
            rl,
            "absolute-form overrides Host",
            format!("GET http://x{p}/b HTTP/1.1\r\nHost: y\r\n\r\n"),
        )
        .ok("GET", &format!("{p}/b"), "")
        .xfh(Some("x")),
    );
    v.push(
        c(
            rl,
            "absolute-form to own discovery",
            get("http://x/hosting/discovery"),
        )
        .discovery(),
    );
    v.push(
        c(
            rl,
            "OPTIONS * answered by the gateway",
            "OPTIONS * HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .own(&[200], None),
    );
    v.push(
        c(
            rl,
            "GET *",
            "GET * HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .err(&bad),
    );
    v.push(
        c(
            rl,
            "POST *",
            "POST * HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nContent-Length: 0\r\n\r\n",
        )
        .err(&bad),
    );
    v.push(
        c(
            rl,
            "CONNECT authority-form",
            "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\nX-Case: @M@\r\n\r\n",
        )
        .err(&[405, 400]),
    );
    v.push(
        c(
            rl,
            "CONNECT to a local port",
            "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nX-Case: @M@\r\n\r\n",
        )
        .err(&[405, 400]),
    );
    v.push(
        c(
            rl,
            "CONNECT with an origin-form target",
            format!("CONNECT {p} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .err(&[405, 400]),
    );
    v.push(
        c(
            rl,
            "HTTP/1.2",
            format!("GET {p} HTTP/1.2\r\nHost: x\r\n\r\n"),
        )
        .err(&bad_version),
    );
    v.push(
        c(
            rl,
            "HTTP/2.0",
            format!("GET {p} HTTP/2.0\r\nHost: x\r\n\r\n"),
        )
        .err(&bad_version),
    );
    v.push(c(rl, "HTTP/0.9 style", format!("GET {p}\r\n\r\n")).err(&bad_version));
    v.push(
        c(
            rl,
            "version in lowercase",
            format!("GET {p} http/1.1\r\nHost: x\r\n\r\n"),
        )
        .err(&bad_version),
    );
    v.push(
        c(
            rl,
            "lowercase method (never turned into GET)",
            format!("get {p} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .err(&[400, 405, 501])
        .or()
        .ok("get", p, ""),
    );
    v.push(c(rl, "garbage line", "GARBAGE\r\n\r\n").err(&bad));
    v.push(
        c(
            rl,
            "TLS ClientHello bytes",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
        )
        .err(&bad)
        .or_closed(),
    );
    v.push(
        c(
            rl,
            "two spaces after the method",
            format!("GET  {p} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            rl,
            "space inside the target",
            format!("GET {p}/a b HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            rl,
            "an empty line before the request-line",
            format!("\r\n{}", get(p)),
        )
        .ok("GET", p, ""),
    );
    v.push(
        c(
            rl,
            "PUT with a body",
            format!("PUT {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
        )
        .ok("PUT", p, "hello"),
    );
    v.push(
        c(
            rl,
            "DELETE",
            format!("DELETE {p} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .ok("DELETE", p, ""),
    );
    v.push(
        c(
            rl,
            "OPTIONS on a path",
            format!("OPTIONS {p} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .ok("OPTIONS", p, ""),
    );

    // --- Host
    let h = "host";
    v.push(
        c(
            h,
            "missing on HTTP/1.1",
            format!("GET {p} HTTP/1.1\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            h,
            "missing on HTTP/1.0 is fine",
            format!("GET {p} HTTP/1.0\r\n\r\n"),
        )
        .ok("GET", p, "")
        .xfh(None),
    );
    v.push(
        c(
            h,
            "repeated identical",
            format!("GET {p} HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            h,
            "repeated differing",
            format!("GET {p} HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            h,
            "repeated in another case",
            format!("GET {p} HTTP/1.1\r\nHost: x\r\nHOST: y\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            h,
            "repeated on HTTP/1.0",
            format!("GET {p} HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(c(h, "empty", format!("GET {p} HTTP/1.1\r\nHost: \r\n\r\n")).err(&bad));
    v.push(
        c(
            h,
            "with a path and a space",
            format!("GET {p} HTTP/1.1\r\nHost: evil.test/x y\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            h,
            "with a path",
            format!("GET {p} HTTP/1.1\r\nHost: evil.test/x\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            h,
            "with userinfo",
            format!("GET {p} HTTP/1.1\r\nHost: user:pw@x\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            h,
            "bad port",
            format!("GET {p} HTTP/1.1\r\nHost: x:80a\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            h,
            "two ports",
            format!("GET {p} HTTP/1.1\r\nHost: x:80:81\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            h,
            "unclosed IPv6 literal",
            format!("GET {p} HTTP/1.1\r\nHost: [::1\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(
        c(
            h,
            "IPv6 literal is fine",
            format!("GET {p} HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
        )
        .ok("GET", p, "")
        .xfh(Some("[::1]:8080")),
    );
    v.push(
        c(
            h,
            "name with a port is fine",
            format!("GET {p} HTTP/1.1\r\nHost: host:8080\r\n\r\n"),
        )
        .ok("GET", p, "")
        .xfh(Some("host:8080")),
    );
    v.push(
        c(
            h,
            "surrounding whitespace is not part of it",
            format!("GET {p} HTTP/1.1\r\nHost:  x \r\n\r\n"),
        )
        .ok("GET", p, ""),
    );

    // --- Content-Length
    let cl = "content-length";
    let with_cl =
        |v: &str| format!("POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: {v}\r\n\r\nhello");
    v.push(c(cl, "5", with_cl("5")).ok("POST", p, "hello"));
    v.push(c(cl, "0 on a POST", post(p, "", "")).ok("POST", p, ""));
    v.push(c(cl, "leading zero 05", with_cl("05")).ok("POST", p, "hello"));
    v.push(c(cl, "OWS around the value", with_cl(" 5 ")).ok("POST", p, "hello"));
    v.push(
        c(
            cl,
            "on a GET",
            format!("GET {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
        )
        .ok("GET", p, "hello"),
    );
    v.push(
        c(cl, "duplicate identical", format!("POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"))
            .err(&bad),
    );
    v.push(
        c(cl, "duplicate differing", format!("POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"))
            .err(&bad),
    );
    v.push(c(cl, "+5", with_cl("+5")).err(&bad));
    v.push(c(cl, "-1", with_cl("-1")).err(&bad));
    v.push(c(cl, "negative -5", with_cl("-5")).err(&bad));
    v.push(c(cl, "0x5", with_cl("0x5")).err(&bad));
    v.push(c(cl, "5,5", with_cl("5,5")).err(&bad));
    v.push(c(cl, "5, 5", with_cl("5, 5")).err(&bad));
    v.push(c(cl, "5 5", with_cl("5 5")).err(&bad));
    v.push(
        c(
            cl,
            "huge 99999999999999999999",
            with_cl("99999999999999999999"),
        )
        .err(&[400, 413]),
    );
    v.push(c(cl, "letters", with_cl("abc")).err(&bad));
    v.push(c(cl, "digits then letters", with_cl("5abc")).err(&bad));
    v.push(c(cl, "5.0", with_cl("5.0")).err(&bad));
    v.push(c(cl, "empty", with_cl("")).err(&bad));
    v.push(
        c(
            cl,
            "body after a pause",
            format!("POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"),
        )
        .then(300, "0123456789")
        .ok("POST", p, "0123456789"),
    );
    v.push(
        c(
            cl,
            "body split in two",
            format!("POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234"),
        )
        .then(300, "56789")
        .ok("POST", p, "0123456789"),
    );

    // --- Transfer-Encoding
    let te = "transfer-encoding";
    let with_te = |v: &str| {
        format!(
            "POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {v}\r\n\r\n{}",
            chunk("hello")
        )
    };
    v.push(c(te, "chunked", with_te("chunked")).ok("POST", p, "hello"));
    v.push(c(te, "Chunked (case-insensitive)", with_te("Chunked")).ok("POST", p, "hello"));
    v.push(c(te, "CHUNKED", with_te("CHUNKED")).ok("POST", p, "hello"));
    v.push(
        c(
            te,
            "tab before chunked",
            format!(
                "POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\n\r\n{}",
                chunk("hello")
            ),
        )
        .ok("POST", p, "hello"),
    );
    v.push(
        c(
            te,
            "chunked on a GET",
            format!(
                "GET {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{}",
                chunk("hello")
            ),
        )
        .ok("GET", p, "hello"),
    );
    v.push(c(te, "chunked, chunked", with_te("chunked, chunked")).err(&bad_coding));
    v.push(c(te, "gzip, chunked", with_te("gzip, chunked")).err(&bad_coding));
    v.push(
        c(
            te,
            "chunked, gzip (chunked not last)",
            with_te("chunked, gzip"),
        )
        .err(&bad),
    );
    v.push(c(te, "xchunked", with_te("xchunked")).err(&bad_coding));
    v.push(c(te, "chunkedx", with_te("chunkedx")).err(&bad_coding));
    v.push(c(te, "identity", with_te("identity")).err(&bad_coding));
    v.push(c(te, "quoted \"chunked\"", with_te("\"chunked\"")).err(&bad_coding));
    v.push(c(te, "empty", with_te("")).err(&bad_coding));
    v.push(
        c(te, "with Content-Length", format!("POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n{}", chunk("hello")))
            .err(&bad),
    );
    v.push(
        c(te, "Content-Length then Transfer-Encoding", format!("POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n{}", chunk("hello")))
            .err(&bad),
    );
    v.push(
        c(
            te,
            "in HTTP/1.0",
            format!(
                "POST {p} HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{}",
                chunk("hello")
            ),
        )
        .err(&bad),
    );
    v.push(
        c(te, "split over two lines: gzip / chunked", format!("POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n{}", chunk("hello")))
            .err(&bad_coding),
    );
    v.push(
        c(te, "split over two lines: chunked / chunked", format!("POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n{}", chunk("hello")))
            .err(&bad_coding),
    );
    v.push(
        c(
            te,
            "body after a pause",
            format!("POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
        )
        .then(300, chunk("hello"))
        .ok("POST", p, "hello"),
    );

    // --- chunked bodies
    let ch = "chunked-body";
    let chunked = |body: &str| {
        format!("POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
    };
    v.push(
        c(
            ch,
            "extensions",
            chunked("5;name=val;flag\r\nhello\r\n0;end=1\r\n\r\n"),
        )
        .ok("POST", p, "hello"),
    );
    v.push(
        c(
            ch,
            "quoted extension",
            chunked("5;n=\"a b\"\r\nhello\r\n0\r\n\r\n"),
        )
        .ok("POST", p, "hello"),
    );
    v.push(
        c(
            ch,
            "trailers",
            chunked("5\r\nhello\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n"),
        )
        .ok("POST", p, "hello"),
    );
    v.push(
        c(
            ch,
            "a Content-Length trailer frames nothing",
            chunked("5\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n"),
        )
        .ok("POST", p, "hello"),
    );
    v.push(
        c(
            ch,
            "several chunks",
            chunked("5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"),
        )
        .ok("POST", p, "hello world"),
    );
    v.push(
        c(ch, "uppercase hex", chunked("A\r\n0123456789\r\n0\r\n\r\n")).ok("POST", p, "0123456789"),
    );
    v.push(
        c(
            ch,
            "leading zeros in the size",
            chunked("0005\r\nhello\r\n0000\r\n\r\n"),
        )
        .ok("POST", p, "hello"),
    );
    v.push(
        c(ch, "split inside a chunk", chunked("a\r\n01234"))
            .then(300, "56789\r\n0\r\n\r\n")
            .ok("POST", p, "0123456789"),
    );
    v.push(
        c(ch, "split inside the size line", chunked("a"))
            .then(300, "\r\n0123456789\r\n0\r\n\r\n")
            .ok("POST", p, "0123456789"),
    );
    v.push(
        c(ch, "bad hex", chunked("zz\r\nhello\r\n0\r\n\r\n"))
            .err(&bad)
            .close(),
    );
    v.push(
        c(ch, "size with 0x", chunked("0x5\r\nhello\r\n0\r\n\r\n"))
            .err(&bad)
            .close(),
    );
    v.push(
        c(ch, "negative size", chunked("-5\r\nhello\r\n0\r\n\r\n"))
            .err(&bad)
            .close(),
    );
    v.push(
        c(
            ch,
            "space before the size",
            chunked(" 5\r\nhello\r\n0\r\n\r\n"),
        )
        .err(&bad)
        .close(),
    );
    v.push(
        c(
            ch,
            "no CRLF after the data",
            chunked("5\r\nhelloXX0\r\n\r\n"),
        )
        .err(&bad)
        .close(),
    );
    v.push(
        c(
            ch,
            "more data than the size",
            chunked("3\r\nhello\r\n0\r\n\r\n"),
        )
        .err(&bad)
        .close(),
    );
    v.push(
        c(
            ch,
            "huge size (overflow)",
            chunked("fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        )
        .err(&[400, 413])
        .close(),
    );
    v.push(
        c(
            ch,
            "bare LF after the size",
            chunked("5\nhello\r\n0\r\n\r\n"),
        )
        .err(&bad)
        .close(),
    );
    v.push(
        c(
            ch,
            "bare CR in an extension",
            chunked("5;a\rb\r\nhello\r\n0\r\n\r\n"),
        )
        .err(&bad)
        .close(),
    );
    v.push(
        c(ch, "premature end, half-closed", chunked("a\r\nhello"))
            .half()
            .err(&bad)
            .close()
            .or_closed(),
    );
    v.push(
        c(ch, "no last chunk, half-closed", chunked("5\r\nhello\r\n"))
            .half()
            .err(&bad)
            .close()
            .or_closed(),
    );

    // --- Connection header abuse
    let cn = "connection";
    v.push(
        c(
            cn,
            "Connection: Content-Length smuggling",
            post(p, "Connection: Content-Length\r\n", SMUGGLED),
        )
        .ok("POST", p, SMUGGLED),
    );
    v.push(
        c(cn, "Connection: Content-Length, body after a pause", format!("POST {p} HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 35\r\n\r\n"))
            .then(400, SMUGGLED)
            .ok("POST", p, SMUGGLED),
    );
    v.push(
        c(
            cn,
            "Connection: keep-alive, content-length",
            post(p, "Connection: keep-alive, content-length\r\n", SMUGGLED),
        )
        .ok("POST", p, SMUGGLED),
    );
    v.push(
        c(cn, "Connection: Content-Length on GET", format!("GET {p} HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 35\r\n\r\n{SMUGGLED}"))
            .ok("GET", p, SMUGGLED),
    );
    v.push(
        c(cn, "Connection: Transfer-Encoding", format!("POST {p} HTTP/1.1\r\nHost: x\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n{}", chunk(SMUGGLED)))
            .ok("POST", p, SMUGGLED),
    );
    v.push(
        c(
            cn,
            "Connection: Host",
            format!("GET {p} HTTP/1.1\r\nHost: x\r\nConnection: Host\r\n\r\n"),
        )
        .ok("GET", p, ""),
    );
    v.push(
        c(cn, "Connection: close, X-Foo", format!("GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close, X-Foo\r\nX-Foo: bar\r\nX-Kept: yes\r\n\r\n"))
            .ok("GET", p, "")
            .hdr("x-foo", None)
            .hdr("x-kept", Some("yes")),
    );
    v.push(
        c(cn, "Connection: X-Forwarded-For", format!("GET {p} HTTP/1.1\r\nHost: x\r\nConnection: X-Forwarded-For\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"))
            .ok("GET", p, ""),
    );
    v.push(
        c(cn, "Connection: Content-Length on an own route", format!("GET /hosting/capabilities HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nConnection: Content-Length\r\nContent-Length: 35\r\n\r\n{SMUGGLED}"))
            .caps(),
    );

    // --- header syntax
    let hs = "header-syntax";
    let with_h = |line: &str| format!("GET {p} HTTP/1.1\r\nHost: x\r\n{line}\r\n\r\n");
    v.push(c(hs, "space before colon", with_h("X-Foo : bar")).err(&bad));
    v.push(
        c(
            hs,
            "space before colon in Content-Length",
            format!("POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello"),
        )
        .err(&bad),
    );
    v.push(c(hs, "obs-fold", with_h("X-Foo: a\r\n b")).err(&bad));
    v.push(c(hs, "obs-fold with a tab", with_h("X-Foo: a\r\n\tb")).err(&bad));
    v.push(
        c(
            hs,
            "whitespace before the first field",
            format!("GET {p} HTTP/1.1\r\n Host: x\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(c(hs, "NUL in a value", with_h("X-Foo: a\0b")).err(&bad));
    v.push(c(hs, "bare CR in a value", with_h("X-Foo: a\rb")).err(&bad));
    v.push(
        c(
            hs,
            "bare CR in the request-line",
            format!("GET {p}\r HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .err(&bad),
    );
    v.push(c(hs, "no colon", with_h("X-Foo bar")).err(&bad));
    v.push(c(hs, "empty field name", with_h(": bar")).err(&bad));
    v.push(c(hs, "bad character in a name", with_h("X(Foo): bar")).err(&bad));
    v.push(
        c(hs, "tab inside a value is fine", with_h("X-Foo: a\tb"))
            .ok("GET", p, "")
            .hdr("x-foo", Some("a\tb")),
    );
    v.push(
        c(
            hs,
            "bare LF line endings",
            format!("GET {p} HTTP/1.1\nHost: x\n\n"),
        )
        .err(&bad)
        .or()
        .ok("GET", p, ""),
    );
    let many = |n: usize| {
        let mut s = format!("GET {p} HTTP/1.1\r\nHost: x\r\n");
        for i in 0..n {
            let _ = write!(s, "X-H{i}: {i}\r\n");
        }
        s + "\r\n"
    };
    v.push(c(hs, "100 header lines are fine", many(99)).ok("GET", p, ""));
    v.push(c(hs, "101 header lines", many(100)).err(&[431]));
    let big = |n: usize| "a".repeat(n);
    v.push(
        c(
            hs,
            "60 KiB head is fine",
            with_h(&format!("X-Big: {}", big(60 * 1024))),
        )
        .ok("GET", p, ""),
    );
    v.push(
        c(
            hs,
            "70 KiB header",
            with_h(&format!("X-Big: {}", big(70 * 1024))),
        )
        .err(&[431]),
    );
    v.push(
        c(
            hs,
            "100 KB header on /hosting/discovery",
            format!(
                "GET /hosting/discovery HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nX-Big: {}\r\n\r\n",
                big(100_000)
            ),
        )
        .err(&[431]),
    );
    let long = format!("{p}/{}", big(10 * 1024));
    v.push(c(hs, "10 KB target", get(&long)).ok("GET", &long, ""));
    v.push(c(hs, "70 KiB target", get(&format!("{p}/{}", big(70 * 1024)))).err(&[431, 414]));

    // --- paths
    let pa = "path";
    v.push(
        c(
            pa,
            "/c/../hosting/discovery",
            "GET /c/../hosting/discovery HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .discovery(),
    );
    v.push(
        c(
            pa,
            "/%68osting/discovery",
            "GET /%68osting/discovery HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .discovery(),
    );
    v.push(
        c(
            pa,
            "/hosting/./discovery",
            "GET /hosting/./discovery HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .discovery(),
    );
    v.push(
        c(
            pa,
            "/./hosting/discovery",
            "GET /./hosting/discovery HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .discovery(),
    );
    v.push(
        c(
            pa,
            "/hosting/%64iscovery",
            "GET /hosting/%64iscovery HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .discovery(),
    );
    v.push(
        c(
            pa,
            "/hosting/discovery#fragment",
            "GET /hosting/discovery#x HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .discovery(),
    );
    v.push(
        c(
            pa,
            "absolute-form with dot-segments",
            "GET http://x/c/../hosting/discovery HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .discovery(),
    );
    v.push(
        c(
            pa,
            "/wopi/../hosting/capabilities",
            "GET /wopi/../hosting/capabilities HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .caps(),
    );
    v.push(
        c(
            pa,
            "/web-apps/%2e%2e/x",
            format!("GET /web-apps/%2e%2e{p}/x HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .ok("GET", &format!("{p}/x"), ""),
    );
    v.push(c(pa, "/web-apps/./a", get(&format!("{p}/./a"))).ok("GET", &format!("{p}/a"), ""));
    v.push(c(pa, "%7E decoded to ~", get(&format!("{p}/%7Euser"))).ok(
        "GET",
        &format!("{p}/~user"),
        "",
    ));
    v.push(c(pa, "%2F stays encoded", get(&format!("{p}/a%2Fb"))).ok(
        "GET",
        &format!("{p}/a%2Fb"),
        "",
    ));
    v.push(
        c(
            pa,
            "fragment on a proxied path",
            get(&format!("{p}/a#frag")),
        )
        .ok("GET", &format!("{p}/a"), ""),
    );
    v.push(
        c(
            pa,
            "/../../etc/passwd",
            "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .err(&bad),
    );
    v.push(
        c(
            pa,
            "/%2e%2e/etc/passwd",
            "GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .err(&bad),
    );
    v.push(
        c(
            pa,
            "/web-apps/../../x",
            "GET /web-apps/../../x HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .err(&bad),
    );
    v.push(
        c(
            pa,
            "/open#x",
            "GET /open#x HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .own(&[], None),
    );
    v.push(
        c(
            pa,
            "/%77opi/files/x",
            "GET /%77opi/files/x HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n",
        )
        .own(&[], None),
    );

    // --- forwarded headers from an untrusted peer
    let fw = "forwarded";
    v.push(
        c(
            fw,
            "X-Forwarded-Prefix removed",
            with_h("X-Forwarded-Prefix: /evil"),
        )
        .ok("GET", p, "")
        .hdr("x-forwarded-prefix", None),
    );
    v.push(
        c(fw, "X-Real-IP removed", with_h("X-Real-IP: 6.6.6.6"))
            .ok("GET", p, "")
            .hdr("x-real-ip", None),
    );
    v.push(
        c(
            fw,
            "Forwarded removed",
            with_h("Forwarded: for=6.6.6.6;host=evil.test;proto=https"),
        )
        .ok("GET", p, "")
        .hdr("forwarded", None),
    );
    v.push(
        c(
            fw,
            "X-Forwarded-Host replaced by Host",
            with_h("X-Forwarded-Host: evil.test"),
        )
        .ok("GET", p, ""),
    );
    v.push(
        c(
            fw,
            "X-Forwarded-For replaced by the peer",
            with_h("X-Forwarded-For: 6.6.6.6"),
        )
        .ok("GET", p, ""),
    );
    v.push(
        c(
            fw,
            "X-Forwarded-Proto replaced",
            with_h("X-Forwarded-Proto: https"),
        )
        .ok("GET", p, "")
        .hdr("x-forwarded-proto", Some("http")),
    );
    v.push(
        c(fw, "all of them, repeated", format!("GET {p} HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: a\r\nX-Forwarded-Host: b\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nX-Forwarded-Prefix: /a\r\nx-forwarded-prefix: /b\r\nX-Real-IP: 3.3.3.3\r\nForwarded: for=4.4.4.4\r\n\r\n"))
            .ok("GET", p, ""),
    );
    v.push(
        c(fw, "own discovery ignores X-Forwarded-Prefix/-Host", "GET /hosting/discovery HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nX-Forwarded-Prefix: /evilprefix\r\nX-Forwarded-Host: evil.test\r\n\r\n")
            .discovery()
            .lacks("evil"),
    );

    // --- own routes answering before their body is read
    let ow = "own-route-body";
    v.push(
        c(ow, "GET /hosting/capabilities, body after 0.4 s", "GET /hosting/capabilities HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nContent-Length: 35\r\n\r\n")
            .then(400, SMUGGLED)
            .caps(),
    );
    v.push(
        c(ow, "POST /hosting/discovery, body after 0.4 s", "POST /hosting/discovery HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nContent-Length: 35\r\n\r\n")
            .then(400, SMUGGLED)
            .own(&[], None),
    );
    v.push(
        c(ow, "POST /wopi/files/x/contents, body after 0.4 s", "POST /wopi/files/x/contents HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nX-WOPI-Override: PUT\r\nContent-Length: 35\r\n\r\n")
            .then(400, SMUGGLED)
            .own(&[], None),
    );
    v.push(
        c(ow, "GET /hosting/capabilities, body at once", format!("GET /hosting/capabilities HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nContent-Length: 35\r\n\r\n{SMUGGLED}"))
            .caps(),
    );
    v.push(
        c(ow, "POST /wopi/files/x/contents, body at once", format!("POST /wopi/files/x/contents HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nX-WOPI-Override: PUT\r\nContent-Length: 35\r\n\r\n{SMUGGLED}"))
            .own(&[], None),
    );
    v.push(
        c(ow, "GET /hosting/capabilities, chunked body after 0.4 s", "GET /hosting/capabilities HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nTransfer-Encoding: chunked\r\n\r\n")
            .then(400, chunk(SMUGGLED))
            .caps(),
    );
    v.push(
        c(
            ow,
            "GET /open, body after 0.4 s",
            "GET /open HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nContent-Length: 35\r\n\r\n",
        )
        .then(400, SMUGGLED)
        .own(&[], None),
    );
    v.push(
        c(ow, "POST /api/v1/sessions, body after 0.4 s", "POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nContent-Length: 35\r\n\r\n")
            .then(400, SMUGGLED)
            .own(&[], None),
    );

    // --- body shorter than declared, then half-close
    let sh = "short-body";
    v.push(
        c(
            sh,
            "proxied POST, 5 of 10 bytes",
            format!("POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"),
        )
        .half()
        .err(&bad)
        .close()
        .or_closed(),
    );
    v.push(
        c(
            sh,
            "proxied POST, head only",
            format!("POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"),
        )
        .half()
        .err(&bad)
        .close()
        .or_closed(),
    );
    v.push(
        c(sh, "own route, 5 of 10 bytes", "POST /wopi/files/x/contents HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nX-WOPI-Override: PUT\r\nContent-Length: 10\r\n\r\nhello")
            .half()
            .own(&[], None)
            .close()
            .or_closed(),
    );

    // --- Expect: 100-continue
    let ex = "expect";
    v.push(
        c(
            ex,
            "100-continue, body after a pause",
            format!(
                "POST {p} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
            ),
        )
        .then(300, "hello")
        .ok("POST", p, "hello"),
    );
    v.push(
        c(ex, "100-continue, body at once", format!("POST {p} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"))
            .ok("POST", p, "hello"),
    );
    v.push(
        c(ex, "100-continue on an own route", "GET /hosting/capabilities HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            .then(300, "hello")
            .caps(),
    );

    // --- Upgrade
    let ug = "upgrade";
    v.push(
        c(ug, "Upgrade: websocket without Connection: upgrade", format!("GET {p}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nGET {p}/next HTTP/1.1\r\nHost: x\r\n\r\n"))
            .ok("GET", &format!("{p}/ws"), "")
            .ok("GET", &format!("{p}/next"), ""),
    );
    v.push(
        c(ug, "upgrade refused by the upstream, the connection stays HTTP", format!("GET {p}/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
            .then(300, get(&format!("{p}/next")))
            .ok("GET", &format!("{p}/ws"), "")
            .ok("GET", &format!("{p}/next"), ""),
    );

    // --- pipelined pairs
    let pi = "pipelined";
    let second = format!("{p}/2");
    v.push(
        c(pi, "GET + GET", format!("{}{}", get(p), get(&second)))
            .ok("GET", p, "")
            .ok("GET", &second, ""),
    );
    v.push(
        c(
            pi,
            "POST + GET",
            format!("{}{}", post(p, "", "hello"), get(&second)),
        )
        .ok("POST", p, "hello")
        .ok("GET", &second, ""),
    );
    v.push(
        c(
            pi,
            "chunked POST + GET",
            format!(
                "POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{}{}",
                chunk("hello"),
                get(&second)
            ),
        )
        .ok("POST", p, "hello")
        .ok("GET", &second, ""),
    );
    v.push(
        c(
            pi,
            "slow + GET keep their order",
            format!("{}{}", get("/slow/@M@"), get(&second)),
        )
        .ok("GET", "/slow/@M@", "")
        .ok("GET", &second, ""),
    );
    v.push(
        c(
            pi,
            "slow + own capabilities",
            format!(
                "{}GET /hosting/capabilities HTTP/1.1\r\nHost: x\r\n\r\n",
                get("/slow/@M@")
            ),
        )
        .ok("GET", "/slow/@M@", "")
        .caps(),
    );
    v.push(
        c(
            pi,
            "own capabilities + GET",
            format!(
                "GET /hosting/capabilities HTTP/1.1\r\nHost: x\r\n\r\n{}",
                get(p)
            ),
        )
        .caps()
        .ok("GET", p, ""),
    );
    v.push(
        c(
            pi,
            "GET + own discovery",
            format!(
                "{}GET /hosting/discovery HTTP/1.1\r\nHost: x\r\n\r\n",
                get(p)
            ),
        )
        .ok("GET", p, "")
        .discovery(),
    );
    v.push(
        c(
            pi,
            "three at once",
            format!(
                "{}{}{}",
                get(p),
                post(&second, "", "abc"),
                get(&format!("{p}/3"))
            ),
        )
        .ok("GET", p, "")
        .ok("POST", &second, "abc")
        .ok("GET", &format!("{p}/3"), ""),
    );
    v.push(
        c(
            pi,
            "GET * + GET",
            format!("GET * HTTP/1.1\r\nHost: x\r\nX-Case: @M@\r\n\r\n{}", get(p)),
        )
        .err(&bad)
        .close()
        .or()
        .err(&bad)
        .ok("GET", p, ""),
    );
    v.push(
        c(
            pi,
            "bad Content-Length + GET",
            format!("{}{}", with_cl("+5"), get(&second)),
        )
        .err(&bad)
        .close(),
    );
    v.push(
        c(
            pi,
            "HTTP/1.0 + GET: the first is the last",
            format!("GET {p} HTTP/1.0\r\nHost: x\r\n\r\n{}", get(&second)),
        )
        .ok("GET", p, "")
        .close(),
    );
    v.push(
        c(
            pi,
            "Connection: close + GET",
            format!(
                "GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n{}",
                get(&second)
            ),
        )
        .ok("GET", p, "")
        .close(),
    );
    v.push(
        c(
            pi,
            "slow + slow",
            format!("{}{}", get("/slow/@M@/1"), get("/slow/@M@/2")),
        )
        .ok("GET", "/slow/@M@/1", "")
        .ok("GET", "/slow/@M@/2", ""),
    );
    v
}

// ---------------------------------------------------------------------------------------
// Running

#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    seq: Option<u64>,
    json: Option<Value>,
    body: Vec<u8>,
}

#[derive(Debug, Default)]
struct Obs {
    /// A failure before the case's bytes were sent (positions 2 and 3).
    pre: Option<String>,
    /// Final answers (1xx left out).
    answers: Vec<Answer>,
    closed: bool,
    junk: Option<String>,
    /// The fresh requests afterwards.
    post: Option<String>,
    /// Seqs of the pre/post requests' answers.
    side_seqs: Vec<u64>,
}

enum Parse {
    Done(Answer, usize),
    More,
    Junk(String),
}

/// One answer from `buf` (`closed`: no more bytes will come).
fn parse_answer(buf: &[u8], closed: bool) -> Parse {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > 1 << 20 {
            Parse::Junk("head over 1 MiB".into())
        } else {
            Parse::More
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
        [v, s, ..] if v.starts_with("HTTP/1.") => s.parse::<u16>().ok(),
        _ => None,
    };
    let Some(status) = status else {
        return Parse::Junk(format!("not a status line: {status_line:?}"));
    };
    let mut headers = Vec::new();
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            return Parse::Junk(format!("bad answer field {l:?}"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let start = end + 4;
    let (body, used) = if (100..200).contains(&status) || status == 204 || status == 304 {
        (Vec::new(), start)
    } else if let Some(n) = find("content-length") {
        let Ok(n) = n.parse::<usize>() else {
            return Parse::Junk(format!("answer Content-Length {n:?}"));
        };
        if buf.len() < start + n {
            return Parse::More;
        }
        (buf[start..start + n].to_vec(), start + n)
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut at = start;
        let mut body = Vec::new();
        loop {
            let Some(le) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                return Parse::More;
            };
            let line = String::from_utf8_lossy(&buf[at..at + le]).into_owned();
            let Ok(size) = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            else {
                return Parse::Junk(format!("answer chunk size {line:?}"));
            };
            at += le + 2;
            if size == 0 {
                // Trailers up to the empty line.
                loop {
                    let Some(le) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                        return Parse::More;
                    };
                    at += le + 2;
                    if le == 0 {
                        break;
                    }
                }
                break (body, at);
            }
            if buf.len() < at + size + 2 {
                return Parse::More;
            }
            body.extend_from_slice(&buf[at..at + size]);
            at += size + 2;
        }
    } else if closed {
        (buf[start..].to_vec(), buf.len())
    } else {
        return Parse::More;
    };
    let seq = find("x-recorder-seq").and_then(|v| v.parse().ok());
    let json = seq.and_then(|_| serde_json::from_slice(&body).ok());
    Parse::Done(
        Answer {
            status,
            seq,
            json,
            body,
        },
        used,
    )
}

/// A client connection that keeps what it read but did not use yet.
struct Conn {
    rd: tokio::net::tcp::OwnedReadHalf,
    buf: Vec<u8>,
    closed: bool,
}

impl Conn {
    /// Reads one final answer (skipping 1xx), waiting up to `wait` for each read.
    async fn answer(&mut self, wait: Duration) -> Result<Option<Answer>, String> {
        loop {
            match parse_answer(&self.buf, self.closed) {
                Parse::Done(a, used) => {
                    self.buf.drain(..used);
                    if (100..200).contains(&a.status) {
                        continue;
                    }
                    return Ok(Some(a));
                }
                Parse::Junk(j) => return Err(j),
                Parse::More => {}
            }
            if self.closed {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(format!(
                    "connection closed inside an answer: {:?}",
                    String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)])
                ));
            }
            let mut chunk = vec![0u8; 64 * 1024];
            match tokio::time::timeout(wait, self.rd.read(&mut chunk)).await {
                Err(_) => return Ok(None),
                Ok(Ok(0) | Err(_)) => self.closed = true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

async fn open(addr: SocketAddr) -> (Conn, tokio::net::tcp::OwnedWriteHalf) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (rd, wr) = tcp.into_split();
    (
        Conn {
            rd,
            buf: Vec::new(),
            closed: false,
        },
        wr,
    )
}

fn fill(raw: &[u8], marker: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(b"@M@") {
            out.extend_from_slice(marker.as_bytes());
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

fn marker(case: usize, pos: usize, kind: &str) -> String {
    format!("zC{case:03}P{pos}{kind}z")
}

/// Sends `req`, expects one proxied 200 answer (its seq) or, with `own`, the gateway's 200
/// containing `own`.
async fn side(
    conn: &mut Conn,
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    req: &str,
    own: Option<&str>,
    seqs: &mut Vec<u64>,
) -> Result<(), String> {
    wr.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let a = conn
        .answer(READ_WAIT)
        .await?
        .ok_or_else(|| format!("no answer to {:?}", req.lines().next().unwrap_or("")))?;
    if a.status != 200 {
        return Err(format!(
            "{} to {:?}",
            a.status,
            req.lines().next().unwrap_or("")
        ));
    }
    match own {
        Some(text) => {
            if a.seq.is_some() {
                return Err(format!("{:?} went to the recorder", req.lines().next()));
            }
            if !String::from_utf8_lossy(&a.body).contains(text) {
                return Err(format!(
                    "{:?}: no {text:?} in the answer",
                    req.lines().next()
                ));
            }
        }
        None => match a.seq {
            Some(s) => seqs.push(s),
            None => return Err(format!("{:?} not proxied", req.lines().next())),
        },
    }
    Ok(())
}

async fn run(gw: SocketAddr, case: Arc<Case>, idx: usize, pos: usize) -> Obs {
    let mut obs = Obs::default();
    let m = marker(idx, pos, "");
    let q = marker(idx, pos, "Q");
    let (mut conn, mut wr) = open(gw).await;
    let pre = async {
        if pos >= 2 {
            side(
                &mut conn,
                &mut wr,
                &format!("GET /web-apps/{q}/pre HTTP/1.1\r\nHost: x\r\n\r\n"),
                None,
                &mut obs.side_seqs,
            )
            .await?;
        }
        if pos >= 3 {
            side(&mut conn, &mut wr, &format!("POST /web-apps/{q}/prechunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{}", chunk("hello")), None, &mut obs.side_seqs).await?;
            side(
                &mut conn,
                &mut wr,
                "GET /hosting/discovery HTTP/1.1\r\nHost: x\r\n\r\n",
                Some("<wopi-discovery"),
                &mut obs.side_seqs,
            )
            .await?;
        }
        Ok::<_, String>(())
    };
    if let Err(e) = pre.await {
        obs.pre = Some(e);
        return obs;
    }
    // The case: written by its own task while answers are read.
    let parts: Vec<(u64, Vec<u8>)> = case.parts.iter().map(|(d, b)| (*d, fill(b, &m))).collect();
    let half = case.half;
    let writer = tokio::spawn(async move {
        for (delay, bytes) in parts {
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if wr.write_all(&bytes).await.is_err() {
                return wr;
            }
        }
        if half {
            let _ = wr.shutdown().await;
        }
        wr
    });
    let expected = case.alts.iter().map(|a| a.answers.len()).max().unwrap_or(0);
    loop {
        let writing = !writer.is_finished();
        let wait = if writing {
            Duration::from_millis(50)
        } else if obs.answers.len() >= expected {
            QUIET
        } else {
            READ_WAIT
        };
        match conn.answer(wait).await {
            Ok(Some(a)) => obs.answers.push(a),
            Ok(None) => {
                if conn.closed || !writing {
                    break;
                }
            }
            Err(j) => {
                obs.junk = Some(j);
                break;
            }
        }
    }
    obs.closed = conn.closed;
    let _wr = writer.await;
    drop(conn);
    // Two fresh requests get their own answers.
    let a = marker(idx, pos, "A");
    let (mut conn, mut wr) = open(gw).await;
    let after = async {
        side(
            &mut conn,
            &mut wr,
            &format!("GET /web-apps/{a}/after HTTP/1.1\r\nHost: x\r\n\r\n"),
            None,
            &mut obs.side_seqs,
        )
        .await?;
        side(
            &mut conn,
            &mut wr,
            "GET /hosting/capabilities HTTP/1.1\r\nHost: x\r\n\r\n",
            Some("productName"),
            &mut obs.side_seqs,
        )
        .await
    };
    if let Err(e) = after.await {
        obs.post = Some(e);
    }
    obs
}

// ---------------------------------------------------------------------------------------
// Judging

/// Percent-encoded unreserved characters decoded, dot-segments removed (RFC 3986 §6.2.2).
fn norm(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let b = path.as_bytes();
    let mut dec = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                    dec.push(v as char);
                    i += 3;
                    continue;
                }
            }
        }
        dec.push(b[i] as char);
        i += 1;
    }
    // RFC 3986 §5.2.4
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = dec.split('/').collect();
    for (k, s) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        match *s {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            _ => out.push(s),
        }
    }
    let mut p = out.join("/");
    if !p.starts_with('/') {
        p.insert(0, '/');
    }
    match query {
        Some(q) => format!("{p}?{q}"),
        None => p,
    }
}

fn has_marker(r: &Recorded, m: &str) -> bool {
    r.target.contains(m) || r.headers.iter().any(|(_, v)| v.contains(m))
}

fn show_answers(o: &Obs) -> String {
    let mut s: Vec<String> = o
        .answers
        .iter()
        .map(|a| match a.seq {
            Some(n) => format!("{}<-recorder#{n}", a.status),
            None => format!("{}<-gateway", a.status),
        })
        .collect();
    if o.closed {
        s.push("closed".into());
    }
    if let Some(j) = &o.junk {
        s.push(format!("junk: {j}"));
    }
    format!("[{}]", s.join(", "))
}

fn show_up(rs: &[&Recorded]) -> String {
    let v: Vec<String> = rs
        .iter()
        .map(|r| format!("{} {} ({} B)", r.method, clip(&r.target, 60), r.body.len()))
        .collect();
    format!("recorder saw [{}]", v.join("; "))
}

fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_owned()
    } else {
        format!("{}…({} B)", &s[..n], s.len())
    }
}

fn show_exp(e: &Exp) -> String {
    let mut s: Vec<String> = e
        .answers
        .iter()
        .map(|a| {
            let st = if a.status.is_empty() {
                "any".to_owned()
            } else {
                a.status
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join("|")
            };
            match a.src {
                Src::Recorder => format!("{st}<-recorder"),
                Src::Gateway => format!(
                    "{st}<-gateway{}",
                    a.contains
                        .map(|c| format!(" with {c:?}"))
                        .unwrap_or_default()
                ),
            }
        })
        .collect();
    if e.close {
        s.push("closed".into());
    }
    let ups: Vec<String> =
        e.up.iter()
            .map(|u| format!("{} {} ({} B)", u.method, clip(&u.path, 60), u.body.len()))
            .collect();
    format!("[{}] recorder [{}]", s.join(", "), ups.join("; "))
}

/// Why `o` (with the recorder's requests `rs` for the run) does not match `e`.
fn mismatch(e: &Exp, o: &Obs, rs: &[&Recorded], m: &str) -> Option<String> {
    if o.answers.len() != e.answers.len() {
        return Some(format!(
            "{} answers, expected {}",
            o.answers.len(),
            e.answers.len()
        ));
    }
    for (i, (a, x)) in o.answers.iter().zip(&e.answers).enumerate() {
        if !x.status.is_empty() && !x.status.contains(&a.status) {
            return Some(format!("answer {} has status {}", i + 1, a.status));
        }
        match (x.src, a.seq) {
            (Src::Recorder, None) => {
                return Some(format!("answer {} not from the recorder", i + 1));
            }
            (Src::Gateway, Some(_)) => {
                return Some(format!("answer {} came from the recorder", i + 1));
            }
            _ => {}
        }
        let text = String::from_utf8_lossy(&a.body);
        if let Some(c) = x.contains {
            if !text.contains(c) {
                return Some(format!("answer {} lacks {c:?}", i + 1));
            }
        }
        if let Some(c) = x.absent {
            if text.contains(c) {
                return Some(format!("answer {} contains {c:?}", i + 1));
            }
        }
    }
    if e.close && !o.closed {
        return Some("connection left open".into());
    }
    if rs.len() != e.up.len() {
        return Some(format!(
            "recorder saw {} requests, expected {}",
            rs.len(),
            e.up.len()
        ));
    }
    for (r, u) in rs.iter().zip(&e.up) {
        let path = u.path.replace("@M@", m);
        if r.method != u.method || norm(&r.target) != path || r.body != u.body {
            return Some(format!(
                "recorder saw {} {} ({} B), expected {} {} ({} B)",
                r.method,
                clip(&r.target, 60),
                r.body.len(),
                u.method,
                clip(&path, 60),
                u.body.len()
            ));
        }
    }
    None
}

struct Failure {
    case: String,
    pos: String,
    expected: String,
    observed: String,
}

#[allow(clippy::too_many_lines)]
fn judge(
    cases: &[Arc<Case>],
    results: &BTreeMap<(usize, usize), Obs>,
    rec: &Recorder,
) -> Vec<Failure> {
    let all = rec.requests();
    let violations = rec.violations();
    let by_seq: HashMap<u64, &Recorded> = all.iter().map(|r| (r.seq, r)).collect();
    let mut fails = Vec::new();
    let mut claimed = std::collections::HashSet::new();
    for (&(idx, pos), o) in results {
        let case = &cases[idx];
        let m = marker(idx, pos, "");
        let name = format!("{:03} {}: {}", idx, case.class, case.name);
        let mut fail = |expected: String, observed: String| {
            fails.push(Failure {
                case: name.clone(),
                pos: pos.to_string(),
                expected,
                observed,
            });
        };
        let (q, a) = (marker(idx, pos, "Q"), marker(idx, pos, "A"));
        for s in &o.side_seqs {
            claimed.insert(*s);
            match by_seq.get(s) {
                Some(r) if has_marker(r, &q) || has_marker(r, &a) => {}
                other => fail(
                    "the requests before and after the case get their own answers".into(),
                    format!(
                        "a side request got answer seq {s}, which is for {}",
                        other.map_or("nothing the recorder saw".to_owned(), |r| format!(
                            "{} {}",
                            r.method,
                            clip(&r.target, 80)
                        ))
                    ),
                ),
            }
        }
        for s in ["Q", "A"] {
            let ms = marker(idx, pos, s);
            for r in all.iter().filter(|r| has_marker(r, &ms)) {
                claimed.insert(r.seq);
            }
        }
        if let Some(e) = &o.pre {
            fail("the requests before the case answered".into(), e.clone());
            continue;
        }
        // The recorder's requests on behalf of this run: by marker, or answered to it.
        let mut mine: Vec<&Recorded> = all.iter().filter(|r| has_marker(r, &m)).collect();
        for a in &o.answers {
            if let Some(r) = a.seq.and_then(|s| by_seq.get(&s)) {
                if !mine.iter().any(|x| x.seq == r.seq) {
                    mine.push(r);
                }
            }
        }
        mine.sort_by_key(|r| r.seq);
        for r in &mine {
            claimed.insert(r.seq);
        }
        let obs_text = format!("{} {}", show_answers(o), show_up(&mine));
        // Invariants.
        for v in violations
            .iter()
            .filter(|v| String::from_utf8_lossy(&v.bytes).contains(&m))
        {
            fail(
                "no recorder violation".into(),
                format!(
                    "VIOLATION: {}: {:?}",
                    v.reason,
                    clip(&String::from_utf8_lossy(&v.bytes), 300)
                ),
            );
        }
        if let Some(j) = &o.junk {
            fail("well-formed answers".into(), j.clone());
        }
        let proxied: Vec<&Answer> = o.answers.iter().filter(|a| a.seq.is_some()).collect();
        if proxied.len() != mine.len() {
            fail(
                "as many proxied answers as recorder requests".into(),
                format!("{} proxied answers, {obs_text}", proxied.len()),
            );
        }
        for a in &proxied {
            let s = a.seq.unwrap();
            match by_seq.get(&s) {
                None => fail(
                    "answers from recorded requests".into(),
                    format!("seq {s} unknown to the recorder"),
                ),
                Some(r) => {
                    let jt = a
                        .json
                        .as_ref()
                        .and_then(|j| j["target"].as_str().map(str::to_owned));
                    if !has_marker(r, &m) || jt.as_deref() != Some(r.target.as_str()) {
                        fail(
                            "each answer belongs to this case's request".into(),
                            format!("answer seq {s} is for {} {}", r.method, clip(&r.target, 80)),
                        );
                    }
                }
            }
        }
        if let Some(r) = mine.iter().find(|r| r.target.contains("/smuggled")) {
            fail(
                "the recorder never sees /smuggled".into(),
                format!("seq {} {} {}", r.seq, r.method, r.target),
            );
        }
        for r in &mine {
            let mut bad = Vec::new();
            for h in ["x-forwarded-prefix", "x-real-ip", "forwarded"] {
                if case.hdrs.iter().any(|(n, _)| *n == h) {
                    continue;
                }
                if !r.header_all(h).is_empty() {
                    bad.push(format!("{h}: {:?}", r.header_all(h)));
                }
            }
            if r.header_all("x-forwarded-for") != ["127.0.0.1"] {
                bad.push(format!(
                    "x-forwarded-for: {:?}",
                    r.header_all("x-forwarded-for")
                ));
            }
            if let Some(x) = &case.xfh {
                if r.header_all("x-forwarded-host") != [x.as_str()] {
                    bad.push(format!(
                        "x-forwarded-host: {:?} (want {x:?})",
                        r.header_all("x-forwarded-host")
                    ));
                }
            }
            for (h, want) in &case.hdrs {
                let got = r.header_all(h);
                let ok = match want {
                    None => got.is_empty(),
                    Some(w) => got == [*w],
                };
                if !ok {
                    bad.push(format!("{h}: {got:?} (want {want:?})"));
                }
            }
            if !bad.is_empty() {
                fail(
                    "forwarded headers by the rules".into(),
                    format!("seq {}: {}", r.seq, bad.join("; ")),
                );
            }
        }
        if let Some(e) = &o.post {
            fail("fresh requests afterwards answered".into(), e.clone());
        }
        // The expected observation.
        let misses: Vec<String> = case
            .alts
            .iter()
            .filter_map(|e| mismatch(e, o, &mine, &m))
            .collect();
        if misses.len() == case.alts.len() {
            let exp: Vec<String> = case.alts.iter().map(show_exp).collect();
            fail(
                exp.join(" OR "),
                format!("{obs_text} — {}", misses.join(" / ")),
            );
        }
    }
    // The same observation in every position.
    for (idx, case) in cases.iter().enumerate() {
        let sig = |pos: usize| {
            results
                .get(&(idx, pos))
                .filter(|o| o.pre.is_none())
                .map(|o| {
                    let m = marker(idx, pos, "");
                    let ups: Vec<String> = all
                        .iter()
                        .filter(|r| has_marker(r, &m))
                        .map(|r| {
                            format!(
                                "{} {} {}",
                                r.method,
                                norm(&r.target).replace(&m, "@M@"),
                                r.body.len()
                            )
                        })
                        .collect();
                    let st: Vec<String> = o
                        .answers
                        .iter()
                        .map(|a| format!("{}{}", a.status, if a.seq.is_some() { "r" } else { "g" }))
                        .collect();
                    format!("{st:?} {ups:?}")
                })
        };
        if let (Some(a), Some(b), Some(c3)) = (sig(1), sig(2), sig(3)) {
            if a != b || a != c3 {
                fails.push(Failure {
                    case: format!("{idx:03} {}: {}", case.class, case.name),
                    pos: "1/2/3".into(),
                    expected: "the same observation in every position".into(),
                    observed: format!("1: {a} | 2: {b} | 3: {c3}"),
                });
            }
        }
    }
    // Requests and violations that belong to no run.
    for r in all
        .iter()
        .filter(|r| !claimed.contains(&r.seq) && r.target != "/healthcheck")
    {
        fails.push(Failure {
            case: "(no case)".into(),
            pos: "-".into(),
            expected: "every recorder request belongs to a case".into(),
            observed: format!(
                "seq {} {} {} ({} B) on the upstream connection after {}",
                r.seq,
                r.method,
                clip(&r.target, 80),
                r.body.len(),
                all.iter()
                    .rfind(|p| p.conn == r.conn && p.seq < r.seq)
                    .map_or("nothing".to_owned(), |p| format!(
                        "seq {} {} {}",
                        p.seq,
                        p.method,
                        clip(&p.target, 80)
                    ))
            ),
        });
    }
    let known = |v: &recorder::Violation| {
        let text = String::from_utf8_lossy(&v.bytes);
        (0..cases.len()).any(|i| (1..=3).any(|p| text.contains(&marker(i, p, ""))))
    };
    for v in violations.iter().filter(|v| !known(v)) {
        fails.push(Failure {
            case: "(no case)".into(),
            pos: "-".into(),
            expected: "no recorder violation".into(),
            observed: format!(
                "VIOLATION: {}: {:?}",
                v.reason,
                clip(&String::from_utf8_lossy(&v.bytes), 300)
            ),
        });
    }
    fails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing() {
    let started = Instant::now();
    let rec = recorder::start().await;
    let gw = Gateway::start(Config {
        rest: format!(
            "[docs]\nurl = \"http://{}\"\nhealthcheck_interval_seconds = 0\n",
            rec.addr
        ),
        ..Default::default()
    });
    let cases: Vec<Arc<Case>> = corpus().into_iter().map(Arc::new).collect();
    let only = std::env::var("FRAMING_CASE").ok();
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut set = tokio::task::JoinSet::new();
    for (idx, case) in cases.iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| !case.name.contains(o.as_str()))
        {
            continue;
        }
        for pos in 1..=3 {
            let (case, limit, addr) = (case.clone(), limit.clone(), gw.public);
            set.spawn(async move {
                let _permit = limit.acquire_owned().await.unwrap();
                let o = run(addr, case, idx, pos).await;
                ((idx, pos), o)
            });
        }
    }
    let mut results = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        let (k, o) = r.unwrap();
        results.insert(k, o);
    }
    // Late arrivals at the recorder.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fails = judge(&cases, &results, &rec);
    let runs = results.len();
    eprintln!(
        "framing: {} cases, {runs} runs, {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    if !fails.is_empty() {
        let mut table = String::new();
        let mut failing_cases = std::collections::BTreeSet::new();
        for f in &fails {
            failing_cases.insert(f.case.clone());
            let _ = writeln!(
                table,
                "| {} | {} | {} | {} |",
                f.case, f.pos, f.expected, f.observed
            );
        }
        panic!(
            "{} failures in {} cases (of {}):\n| case | position | expected | observed |\n|---|---|---|---|\n{table}",
            fails.len(),
            failing_cases.len(),
            cases.len()
        );
    }
}
