//! Heads from RFC 9112's rules and from published request-smuggling cases: each row is what
//! the RFC (or, where the RFC lets a server choose, nginx) answers.

use super::*;

fn head(raw: &str) -> Result<Option<Head<'_>>, Reject> {
    parse(raw.as_bytes(), &Limits::default())
}

fn status(raw: &str) -> u16 {
    match head(raw) {
        Ok(Some(_)) => 200,
        Ok(None) => 0,
        Err(r) => r.status,
    }
}

#[test]
fn table_of_heads() {
    let rows: &[(&str, u16)] = &[
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200),
        ("GET / HTTP/1.0\r\n\r\n", 200),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: evil.test/x y\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: \r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 200),
        ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 200),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405),
        ("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 405),
        ("GET http://x/web-apps/a HTTP/1.1\r\nHost: y\r\n\r\n", 200),
        ("GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET /\r\n\r\n", 400),
        ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            200,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
            200,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
            501,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
            501,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n",
            400,
        ),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
        ("GET / HTTP/1.1\nHost: a\n\n", 200),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            200,
        ),
        ("GET / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\n\r\n", 417),
        ("GET /../x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /a/%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ];
    let mut wrong = Vec::new();
    for (raw, want) in rows {
        let got = status(raw);
        if got != *want {
            wrong.push(format!("{raw:?}: want {want}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Defect 1 of the framing review: `Connection: Content-Length` must not unframe a body.
#[test]
fn connection_cannot_remove_the_body_length() {
    let raw = "POST /web-apps/a HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 35\r\n\r\n";
    let h = head(raw).unwrap().unwrap();
    assert_eq!(h.checked.framing, Framing::Length(35));
    let mut out = Vec::new();
    h.write_forward("", &h.checked.path, |_| false, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("content-length: 35\r\n"), "{out}");
    assert!(!out.to_ascii_lowercase().contains("connection"), "{out}");
}

/// Defects 3 and 4: asterisk-form and CONNECT.
#[test]
fn asterisk_and_connect() {
    let h = head("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!((h.checked.form, &*h.checked.path), (Form::Asterisk, "*"));
    assert_eq!(status("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(
        status("CONNECT docs:80 HTTP/1.1\r\nHost: docs:80\r\n\r\n"),
        405
    );
}

/// Defect 5: Host missing, repeated or malformed.
#[test]
fn host_must_be_one_valid_authority() {
    assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
    assert_eq!(status("GET / HTTP/1.1\r\nHost: evil.test/x y\r\n\r\n"), 400);
    let h = head("GET / HTTP/1.1\r\nHost: docs.example:8080\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.checked.authority, Some("docs.example:8080"));
}

#[test]
fn absolute_form_is_routed_by_its_path_and_its_authority_wins() {
    let h = head("GET http://x.test/c/../hosting/discovery?a HTTP/1.1\r\nHost: y\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(&*h.checked.path, "/hosting/discovery");
    assert_eq!(h.checked.authority, Some("x.test"));
    let mut out = Vec::new();
    h.write_canonical(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET /hosting/discovery?a HTTP/1.1\r\nhost: x.test\r\n\r\n"
    );
}

#[test]
fn limits() {
    let limits = Limits {
        max_head_bytes: 1024,
        max_headers: 3,
    };
    let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(parse(many.as_bytes(), &limits).unwrap_err().status, 431);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "x".repeat(2000)
    );
    assert_eq!(parse(big.as_bytes(), &limits).unwrap_err().status, 431);
    let partial = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "x".repeat(2000));
    assert_eq!(parse(partial.as_bytes(), &limits).unwrap_err().status, 431);
    let target = format!("GET /{} HTTP/1.1\r\n", "x".repeat(2000));
    assert_eq!(parse(target.as_bytes(), &limits).unwrap_err().status, 414);
    assert_eq!(parse(b"GET / HTTP/1.1\r\nHo", &limits), Ok(None));
}

#[test]
fn http10_closes_unless_kept_alive() {
    let h = head("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(h.checked.close);
    let h = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!h.checked.close);
    let h = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: x, Close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.checked.close);
}

#[test]
fn forwarded_head_keeps_end_to_end_fields_only() {
    let raw = "POST /a/./b?q HTTP/1.1\r\nHost: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Bar: 2\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
    let h = head(raw).unwrap().unwrap();
    let mut out = Vec::new();
    h.write_forward(
        "/pre",
        &h.checked.path,
        |n| n.eq_ignore_ascii_case("x-bar"),
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "POST /pre/a/b?q HTTP/1.1\r\ntransfer-encoding: chunked\r\n"
    );
}

proptest::proptest! {
    /// Whatever a head is, the canonical head parses to the same decision.
    #[test]
    fn canonical_heads_parse_the_same(
        method in "(GET|POST|OPTIONS|PUT)",
        path in "/[a-z%0-9./]{0,12}",
        host in "[a-z]{1,5}(:[0-9]{1,4})?",
        cl in proptest::option::of(0u64..100),
    ) {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        if let Some(n) = cl {
            raw.push_str(&format!("Content-Length: {n}\r\n"));
        }
        raw.push_str("\r\n");
        if let Ok(Some(h)) = head(&raw) {
            let mut out = Vec::new();
            h.write_canonical(&mut out);
            let again = parse(&out, &Limits::default()).unwrap().unwrap();
            proptest::prop_assert_eq!(&again.checked, &h.checked);
        }
    }
}

/// Found by the `head` fuzz target: a `Connection` value with one byte that is not UTF-8 was
/// read as no options at all, so `close` was ignored and the fields it named were forwarded.
#[test]
fn connection_that_is_not_utf8_is_refused() {
    let raw =
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Foo, X-\xacBar\r\nX-Foo: 1\r\n\r\n";
    assert_eq!(
        parse(raw, &Limits::default()),
        Err(Reject::new(400, "connection-invalid"))
    );
    let h = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.checked.close);
}
