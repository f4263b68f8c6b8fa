//! HTTP/1.1 request heads as RFC 9112 frames them — every decision the gateway makes about a
//! request head, in one place, with no knowledge of the gateway:
//!
//! - [`parse`] reads a head off the wire (request line, fields, the head limits) and
//!   [`check`] applies the rules to a head already parsed (by the HTTP server, for TLS
//!   connections): the request-target's form and the path to route by ([`target`]), `Host`,
//!   message framing (`Content-Length`, `Transfer-Encoding`), `Connection`, `Expect`,
//!   `Upgrade` ([`field`]);
//! - [`chunked`] decodes chunked bodies strictly and re-frames them;
//! - [`Head::write_forward`] writes the head a proxy sends on: origin-form, hop-by-hop fields
//!   removed, the framing it decided.
//!
//! A refused head is a [`Reject`]: the status to answer and the name of the rule (for a log
//! line and a metric label).

pub mod chunked;
pub mod field;
pub mod target;

use std::borrow::Cow;
pub use target::Form;

/// Head limits (`server.max_head_bytes`, `server.max_headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// A refused request: the status to answer it with and the rule it broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub rule: &'static str,
}

impl Reject {
    pub const fn new(status: u16, rule: &'static str) -> Self {
        Reject { status, rule }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.rule, self.status)
    }
}

impl std::error::Error for Reject {}

/// The protocol version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How a request body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl Framing {
    /// Whether a body follows the head.
    pub fn has_body(self) -> bool {
        !matches!(self, Framing::None | Framing::Length(0))
    }
}

/// What the rules decided about a request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked<'a> {
    pub form: Form,
    /// The normalised path to route by and to forward (`*` for asterisk-form).
    pub path: Cow<'a, str>,
    pub query: Option<&'a str>,
    /// The request's authority: an absolute-form target's, else `Host` (validated).
    pub authority: Option<&'a str>,
    pub framing: Framing,
    /// The connection ends after this request (`Connection: close`, or HTTP/1.0 without
    /// `keep-alive`).
    pub close: bool,
    /// `Upgrade` with `Connection: upgrade` (HTTP/1.1).
    pub upgrade: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// One header field as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

/// A request head read off the wire and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    /// Bytes of the head, up to and including its empty line.
    pub len: usize,
    pub method: &'a str,
    pub version: Version,
    pub checked: Checked<'a>,
    pub fields: Vec<Field<'a>>,
}

/// Stack room for the fields of a head; more (up to the limit) go on the heap.
const STACK_FIELDS: usize = 128;

/// Reads the request head at the start of `buf`: `Ok(None)` while it is incomplete (and
/// within the limits), the head when it is complete and every rule holds, the rule it broke
/// otherwise. A head over `max_head_bytes` is 431 (414 when the request line alone is);
/// more than `max_headers` fields is 431; a version other than HTTP/1.0 or 1.1 is 505; any
/// other syntax error (space before a colon, obs-fold, bare CR, a control character, a field
/// without a colon) is 400.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<Head<'a>>, Reject> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_FIELDS];
    let mut heap;
    let room = limits.max_headers.saturating_add(1);
    let headers: &mut [httparse::Header<'a>] = if room <= STACK_FIELDS {
        &mut stack[..room]
    } else {
        heap = vec![httparse::EMPTY_HEADER; room];
        &mut heap
    };
    let mut req = httparse::Request::new(headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= limits.max_head_bytes {
                return Err(if buf[..limits.max_head_bytes].contains(&b'\n') {
                    Reject::new(431, "head-too-large")
                } else {
                    Reject::new(414, "target-too-long")
                });
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(Reject::new(431, "too-many-fields")),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(_) => return Err(Reject::new(400, "malformed-head")),
    };
    if len > limits.max_head_bytes {
        return Err(Reject::new(431, "head-too-large"));
    }
    if req.headers.len() > limits.max_headers {
        return Err(Reject::new(431, "too-many-fields"));
    }
    let (Some(method), Some(target), Some(v)) = (req.method, req.path, req.version) else {
        return Err(Reject::new(400, "malformed-head"));
    };
    let version = if v == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    let fields: Vec<Field<'a>> = req
        .headers
        .iter()
        .map(|h| Field {
            name: h.name,
            value: h.value,
        })
        .collect();
    let checked = check(method, target, version, fields.iter().copied())?;
    Ok(Some(Head {
        len,
        method,
        version,
        checked,
        fields,
    }))
}

/// A request line whose version httparse did not take: 505 for a well-formed `HTTP/x.y`
/// other than 1.0 and 1.1, 400 otherwise (HTTP/0.9's versionless line, garbage).
fn version_error(buf: &[u8]) -> Reject {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    // `method SP target SP version`, nothing more: a space inside the target is no version.
    let version = if parts.len() == 3 { parts[2] } else { b"" };
    match version {
        [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Reject::new(505, "http-version")
        }
        _ => Reject::new(400, "malformed-head"),
    }
}

/// The rules for a request head already split into method, target, version and fields
/// (RFC 9112 §3, §6, §7; RFC 9110 §7.2, §7.6.1, §10.1.1):
///
/// - `CONNECT` is refused (405); `*` is only for `OPTIONS`; absolute-form is routed by its
///   path; the path is normalised ([`target::normalise_path`]);
/// - HTTP/1.1 needs exactly one `Host`; any `Host` must be `uri-host [":" port]`;
/// - `Transfer-Encoding` must be exactly `chunked` (a coding the gateway does not implement
///   is 501, `chunked` not last or twice is 400), never with `Content-Length`, never in
///   HTTP/1.0; `Content-Length` must be one field of digits;
/// - `Connection` must be text (UTF-8), else 400;
/// - `Expect` other than `100-continue` is 417.
pub fn check<'a>(
    method: &'a str,
    target: &'a str,
    version: Version,
    fields: impl Iterator<Item = Field<'a>>,
) -> Result<Checked<'a>, Reject> {
    if method == "CONNECT" {
        return Err(Reject::new(405, "connect"));
    }
    let t = target::parse_target(method, target)?;
    let (mut host, mut hosts) = (None::<&'a [u8]>, 0u32);
    let (mut length, mut lengths) = (None::<u64>, 0u32);
    let (mut te, mut chunked, mut other_coding, mut chunked_last) = (false, 0u32, false, false);
    let (mut close, mut keep_alive, mut conn_upgrade, mut has_upgrade) =
        (false, false, false, false);
    let mut expect_continue = false;
    for f in fields {
        let n = f.name;
        if n.eq_ignore_ascii_case("host") {
            hosts += 1;
            host = Some(f.value);
        } else if n.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            length = field::content_length(f.value);
            if length.is_none() {
                return Err(Reject::new(400, "content-length-invalid"));
            }
        } else if n.eq_ignore_ascii_case("transfer-encoding") {
            te = true;
            for coding in field::tokens(f.value) {
                // A coding may carry parameters (`gzip;q=1`): its name decides.
                let name = coding.split(';').next().unwrap_or("").trim();
                if name.eq_ignore_ascii_case("chunked") && name.len() == coding.len() {
                    chunked += 1;
                    chunked_last = true;
                } else {
                    other_coding = true;
                    chunked_last = false;
                }
            }
        } else if n.eq_ignore_ascii_case("connection") {
            // `field::tokens` reads a value that is not UTF-8 as no tokens at all: the
            // options and field names it lists would be ignored (found by fuzzing).
            if std::str::from_utf8(f.value).is_err() {
                return Err(Reject::new(400, "connection-invalid"));
            }
            for t in field::tokens(f.value) {
                if t.eq_ignore_ascii_case("close") {
                    close = true;
                } else if t.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                } else if t.eq_ignore_ascii_case("upgrade") {
                    conn_upgrade = true;
                }
            }
        } else if n.eq_ignore_ascii_case("upgrade") {
            has_upgrade = true;
        } else if n.eq_ignore_ascii_case("expect") {
            if f.value.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(Reject::new(417, "expect"));
            }
        }
    }
    if hosts > 1 {
        return Err(Reject::new(400, "host-repeated"));
    }
    if let Some(h) = host {
        if !field::valid_host(h) {
            return Err(Reject::new(400, "host-invalid"));
        }
    } else if version == Version::Http11 {
        return Err(Reject::new(400, "host-missing"));
    }
    let framing = if te {
        if version == Version::Http10 {
            return Err(Reject::new(400, "transfer-encoding-http10"));
        }
        if lengths > 0 {
            return Err(Reject::new(400, "transfer-encoding-and-content-length"));
        }
        if chunked > 1 || (chunked == 1 && !chunked_last) {
            return Err(Reject::new(400, "transfer-encoding-chunked-not-last"));
        }
        if other_coding {
            return Err(Reject::new(501, "transfer-encoding-unsupported"));
        }
        if chunked == 0 {
            return Err(Reject::new(400, "transfer-encoding-empty"));
        }
        Framing::Chunked
    } else if lengths > 1 {
        return Err(Reject::new(400, "content-length-repeated"));
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::None,
        }
    };
    let authority = match t.authority {
        Some(a) => Some(a),
        // Valid, so ASCII.
        None => host.and_then(|h| std::str::from_utf8(h).ok()),
    };
    Ok(Checked {
        form: t.form,
        path: t.path,
        query: t.query,
        authority,
        framing,
        close: close || (version == Version::Http10 && !keep_alive),
        upgrade: version == Version::Http11 && has_upgrade && conn_upgrade,
        expect_continue,
    })
}

impl Head<'_> {
    /// The `Connection` tokens of the request (the fields they name are hop-by-hop).
    pub fn connection_tokens(&self) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("connection"))
            .flat_map(|f| field::tokens(f.value))
            .collect()
    }

    /// Writes the head a proxy sends on: `method prefix+path[?query] HTTP/1.1` (`path`: the
    /// checked path, or the part of it the proxy routes by), the request's
    /// fields without the hop-by-hop ones ([`field::is_hop_by_hop`]), without `Host`,
    /// `Content-Length`, `Expect` and any field `skip` names (the caller writes its own), then
    /// the framing decided here (`content-length` or `transfer-encoding: chunked`); no
    /// empty line: the caller adds its fields and ends the head.
    pub fn write_forward(
        &self,
        prefix: &str,
        path: &str,
        skip: impl Fn(&str) -> bool,
        out: &mut Vec<u8>,
    ) {
        let named = self.connection_tokens();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(path.as_bytes());
        if let Some(q) = self.checked.query {
            out.push(b'?');
            out.extend_from_slice(q.as_bytes());
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for f in &self.fields {
            let n = f.name;
            if field::is_hop_by_hop(n, &named)
                || n.eq_ignore_ascii_case("host")
                || n.eq_ignore_ascii_case("content-length")
                || n.eq_ignore_ascii_case("expect")
                || skip(n)
            {
                continue;
            }
            push_field(out, n.as_bytes(), f.value);
        }
        match self.checked.framing {
            Framing::None => {}
            Framing::Length(n) => {
                use std::io::Write as _;
                let _ = write!(out, "content-length: {n}\r\n");
            }
            Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
    }

    /// The head as the gateway understood it, for the HTTP server to read: the request line
    /// with the normalised origin-form target (`*` for asterisk-form) and every field as
    /// received. Parsing it again gives the same [`Checked`] (the fuzz target checks this).
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.checked.path.as_bytes());
        if let Some(q) = self.checked.query {
            out.push(b'?');
            out.extend_from_slice(q.as_bytes());
        }
        out.extend_from_slice(match self.version {
            Version::Http10 => b" HTTP/1.0\r\n",
            Version::Http11 => b" HTTP/1.1\r\n",
        });
        let absolute = self.checked.form == Form::Absolute;
        for f in &self.fields {
            if absolute && f.name.eq_ignore_ascii_case("host") {
                // An absolute-form target's authority replaces Host (RFC 9112 §3.2.2).
                continue;
            }
            push_field(out, f.name.as_bytes(), f.value);
        }
        if absolute {
            if let Some(a) = self.checked.authority {
                push_field(out, b"host", a.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `name: value\r\n`.
pub fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Whether `buf` starts like the HTTP/2 connection preface (`PRI * HTTP/2.0`), which is no
/// HTTP/1 request: a server that speaks HTTP/2 over cleartext takes such a connection.
pub fn is_h2_preface(buf: &[u8]) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let n = buf.len().min(PREFACE.len());
    n > 0 && buf[..n] == PREFACE[..n]
}

#[cfg(test)]
mod tests;
