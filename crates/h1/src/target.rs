//! Request targets (RFC 9112 §3.2) and the path a request is routed by.

use crate::Reject;
use std::borrow::Cow;

/// The form of a request target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `/path?query`
    Origin,
    /// `http://authority/path?query`
    Absolute,
    /// `*` (only for `OPTIONS`)
    Asterisk,
    /// `host:port` (only for `CONNECT`)
    Authority,
}

/// A request target taken apart: its form, the authority of an absolute-form target, the
/// normalised path (see [`normalise_path`]) and the query. A fragment, which a request target
/// cannot carry, is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub form: Form,
    pub authority: Option<&'a str>,
    pub path: Cow<'a, str>,
    pub query: Option<&'a str>,
}

/// Splits `target` by its form. `method` decides whether `*` and authority-form are allowed.
pub fn parse_target<'a>(method: &str, target: &'a str) -> Result<Target<'a>, Reject> {
    if target == "*" {
        if method != "OPTIONS" {
            return Err(Reject::new(400, "asterisk-form-not-options"));
        }
        return Ok(Target {
            form: Form::Asterisk,
            authority: None,
            path: Cow::Borrowed("*"),
            query: None,
        });
    }
    if target.starts_with('/') {
        let (path, query) = split_path(target);
        return Ok(Target {
            form: Form::Origin,
            authority: None,
            path: normalise_path(path)?,
            query,
        });
    }
    if let Some(rest) = strip_scheme(target) {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if !crate::field::valid_host(authority.as_bytes()) {
            return Err(Reject::new(400, "absolute-form-authority"));
        }
        let after = &rest[end..];
        let (path, query) = split_path(after);
        let path = if path.is_empty() {
            Cow::Borrowed("/")
        } else if path.starts_with('/') {
            normalise_path(path)?
        } else {
            // `http://host?q` has an empty path: it is `/`.
            Cow::Borrowed("/")
        };
        return Ok(Target {
            form: Form::Absolute,
            authority: Some(authority),
            path,
            query,
        });
    }
    if method == "CONNECT" {
        return Ok(Target {
            form: Form::Authority,
            authority: Some(target),
            path: Cow::Borrowed(""),
            query: None,
        });
    }
    Err(Reject::new(400, "request-target"))
}

fn strip_scheme(target: &str) -> Option<&str> {
    for scheme in ["http://", "https://"] {
        // Compared as bytes: the target may hold UTF-8 (httparse takes bytes over 0x7f), and
        // `scheme.len()` need not fall on a character boundary of it.
        if target
            .as_bytes()
            .get(..scheme.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(scheme.as_bytes()))
        {
            return Some(&target[scheme.len()..]);
        }
    }
    None
}

/// `path?query#fragment` → (`path`, `query`), the fragment dropped.
fn split_path(s: &str) -> (&str, Option<&str>) {
    let s = match s.find('#') {
        Some(i) => &s[..i],
        None => s,
    };
    match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The path a request is routed by and forwarded with (RFC 3986 §6.2.2): percent-encoded
/// unreserved characters decoded (`%68` → `h`, `%2E` → `.`), then dot-segments removed
/// (§5.2.4). Other percent-encodings (`%2F`, `%20`) stay as they are. A `%` not followed by
/// two hex digits, and a `..` that climbs above the root, are refused (400), as nginx does.
pub fn normalise_path(path: &str) -> Result<Cow<'_, str>, Reject> {
    let bytes = path.as_bytes();
    let has_pct = memchr_byte(b'%', bytes);
    if !has_pct && !has_dot_segment(bytes) {
        return Ok(Cow::Borrowed(path));
    }
    let mut decoded: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(Reject::new(400, "path-percent-encoding"));
            };
            let c = h * 16 + l;
            if unreserved(c) {
                decoded.push(c);
            } else {
                decoded.extend_from_slice(&bytes[i..i + 3]);
            }
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    let out = remove_dot_segments(&decoded)?;
    // Only ASCII went in and only ASCII bytes were decoded.
    Ok(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

fn memchr_byte(b: u8, s: &[u8]) -> bool {
    s.contains(&b)
}

/// Whether a segment of `p` is `.` or `..`.
fn has_dot_segment(p: &[u8]) -> bool {
    p.split(|&b| b == b'/').any(|s| s == b"." || s == b"..")
}

/// RFC 3986 §5.2.4 on an absolute path; `..` above the root is an error.
fn remove_dot_segments(p: &[u8]) -> Result<Vec<u8>, Reject> {
    let segments: Vec<&[u8]> = p.split(|&b| b == b'/').skip(1).collect();
    let mut out: Vec<&[u8]> = Vec::with_capacity(segments.len());
    let last = segments.len().saturating_sub(1);
    let mut trailing = false;
    for (i, s) in segments.iter().enumerate() {
        match *s {
            b"." => trailing = i == last,
            b".." => {
                if out.pop().is_none() {
                    return Err(Reject::new(400, "path-above-root"));
                }
                trailing = i == last;
            }
            s => {
                out.push(s);
                trailing = false;
            }
        }
    }
    let mut path = Vec::with_capacity(p.len());
    for s in &out {
        path.push(b'/');
        path.extend_from_slice(s);
    }
    if trailing || path.is_empty() {
        path.push(b'/');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_as_rfc_3986_says() {
        let cases = [
            ("/a/b", "/a/b"),
            ("/c/../hosting/discovery", "/hosting/discovery"),
            ("/%68osting/discovery", "/hosting/discovery"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/%2e%2e/b", "/b"),
            ("/a/%2E%2E/b", "/b"),
            ("/a%2Fb", "/a%2Fb"),
            ("/a%20b", "/a%20b"),
            ("/%7Euser", "/~user"),
            ("/", "/"),
            ("/.", "/"),
            ("/a//b", "/a//b"),
            ("/a/..", "/"),
            ("/a/.../b", "/a/.../b"),
        ];
        for (input, want) in cases {
            assert_eq!(normalise_path(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn climbing_above_the_root_and_bad_escapes_are_refused() {
        for p in [
            "/..",
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/x",
            "/%",
            "/%4",
            "/%zz",
        ] {
            assert_eq!(normalise_path(p).unwrap_err().status, 400, "{p}");
        }
    }

    #[test]
    fn target_forms() {
        let t = parse_target("GET", "/open#x").unwrap();
        assert_eq!((t.form, &*t.path, t.query), (Form::Origin, "/open", None));
        let t = parse_target("GET", "/a?b=1#frag").unwrap();
        assert_eq!((&*t.path, t.query), ("/a", Some("b=1")));
        let t = parse_target("GET", "http://Example.com:80/web-apps/a?x").unwrap();
        assert_eq!(t.form, Form::Absolute);
        assert_eq!(t.authority, Some("Example.com:80"));
        assert_eq!((&*t.path, t.query), ("/web-apps/a", Some("x")));
        let t = parse_target("GET", "HTTP://h").unwrap();
        assert_eq!(&*t.path, "/");
        assert_eq!(parse_target("OPTIONS", "*").unwrap().form, Form::Asterisk);
        assert_eq!(parse_target("GET", "*").unwrap_err().status, 400);
        assert_eq!(
            parse_target("CONNECT", "h:443").unwrap().form,
            Form::Authority
        );
        assert_eq!(parse_target("GET", "h:443").unwrap_err().status, 400);
        assert_eq!(parse_target("GET", "http://a b/").unwrap_err().status, 400);
        assert_eq!(parse_target("GET", "http://u@h/").unwrap_err().status, 400);
    }

    /// Found by the `head` fuzz target: a target with a multi-byte character across the
    /// length of `http://` panicked (a `str` sliced inside a character).
    #[test]
    fn scheme_check_does_not_slice_inside_a_character() {
        for t in ["http:/ջocs/x", "httpsջ", "é", "/ջ"] {
            let _ = parse_target("GET", t);
        }
        assert_eq!(
            parse_target("GET", "http:/ջocs/x").unwrap_err().rule,
            "request-target"
        );
    }
}
