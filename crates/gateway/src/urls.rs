//! URL checks the gateway makes before it calls anyone (SSRF guards), and redaction of
//! secrets from anything that reaches a log line.
//!
//! An allowed origin is a URL prefix (`https://host[:port][/path]`): a URL is under it when
//! scheme, host and effective port are equal and the prefix's path segments are the first
//! segments of the URL's path. A trailing slash on the prefix does not matter. URLs that could
//! mean a different path to another parser are refused outright: dot segments (`.`, `..`, also
//! percent-encoded or behind an encoded slash), backslashes, user info, and schemes other than http(s).
//! See docs/configuration.md ("Allowed origins").

use std::borrow::Cow;
use std::fmt;

/// Why a URL is not under any allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not an absolute URL.
    NotAUrl,
    /// A scheme other than http or https.
    Scheme(String),
    /// `user:password@` before the host.
    UserInfo,
    /// A backslash anywhere before the query.
    Backslash,
    /// A `.` or `..` path segment, plain or percent-encoded (also behind an encoded `/`).
    DotSegment,
    /// Well-formed, but under none of the allowed origins.
    NotAllowed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAUrl => f.write_str("it is not an absolute URL"),
            Refusal::Scheme(s) => write!(f, "its scheme `{s}` is not http or https"),
            Refusal::UserInfo => f.write_str("it carries user info before the host"),
            Refusal::Backslash => f.write_str("it contains a backslash"),
            Refusal::DotSegment => {
                f.write_str("its path has a dot segment (`.` or `..`, plain or percent-encoded)")
            }
            Refusal::NotAllowed => f.write_str("it is not under any allowed origin"),
        }
    }
}

/// A parsed allowed origin (prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Prefix {
    scheme: String,
    host: String,
    port: u16,
    segments: Vec<String>,
}

fn parse_strict(raw: &str) -> Result<Prefix, Refusal> {
    let before_query = raw.split(['?', '#']).next().unwrap_or("");
    if before_query.contains('\\') {
        return Err(Refusal::Backslash);
    }
    // The raw path (after `scheme://authority`), looked at before any normalisation: the `url`
    // crate resolves `..` away, which is exactly what must not be accepted silently.
    let raw_path = before_query
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map_or("", |i| &rest[i..]))
        .ok_or(Refusal::NotAUrl)?;
    for seg in raw_path.split('/') {
        let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
        // An encoded slash is data, but `%2e%2e%2f` must not become a dot segment elsewhere.
        if decoded
            .split(['/', '\\'])
            .any(|part| part == "." || part == "..")
        {
            return Err(Refusal::DotSegment);
        }
    }
    let u = ::url::Url::parse(raw).map_err(|_| Refusal::NotAUrl)?;
    let scheme = u.scheme().to_owned();
    if scheme != "http" && scheme != "https" {
        return Err(Refusal::Scheme(scheme));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Refusal::UserInfo);
    }
    let host = u.host_str().ok_or(Refusal::NotAUrl)?.to_owned();
    let port = u.port_or_known_default().ok_or(Refusal::NotAUrl)?;
    let segments = u
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Prefix {
        scheme,
        host,
        port,
        segments,
    })
}

/// Checks that `url` is well-formed and under one of `allowed`.
pub(crate) fn check_under<S: AsRef<str>>(url: &str, allowed: &[S]) -> Result<(), Refusal> {
    let u = parse_strict(url)?;
    let under = allowed.iter().any(|a| {
        parse_strict(a.as_ref()).is_ok_and(|p| {
            p.scheme == u.scheme
                && p.host == u.host
                && p.port == u.port
                && u.segments.len() >= p.segments.len()
                && u.segments.iter().zip(&p.segments).all(|(x, y)| x == y)
        })
    });
    if under {
        Ok(())
    } else {
        Err(Refusal::NotAllowed)
    }
}

/// Whether `url` is under `allowed` (see [`check_under`]).
pub(crate) fn is_under(url: &str, allowed: &str) -> bool {
    check_under(url, &[allowed]).is_ok()
}

/// `scheme://host[:port]` of a URL (empty when it has none), for messages and metadata.
pub(crate) fn origin_of(url: &str) -> String {
    ::url::Url::parse(url)
        .ok()
        .filter(|u| u.has_host())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .unwrap_or_default()
}

/// Query keys whose values are secrets (`access_token_ttl` is not one: `=` must follow).
const SECRET_KEYS: [&str; 2] = ["access_token", "token"];

/// Scrubs secrets from free text: values of `access_token=` / `token=` query parameters,
/// `Bearer` credentials, anything shaped like a JWT (`eyJ….….…`) and passwords in URLs
/// (`rediss://user:password@…`). Used on every log line.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !needs_redaction(text) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        // key=value where key is a secret query key and the key starts after a separator.
        if let Some(skip) = secret_param_at(text, i) {
            out.push_str(&text[i..i + skip]);
            out.push_str("REDACTED");
            i += skip;
            while i < bytes.len() && !is_value_end(bytes[i]) {
                i += 1;
            }
            continue;
        }
        if let Some(len) = bearer_at(text, i) {
            out.push_str("Bearer REDACTED");
            i += len;
            continue;
        }
        if let Some(len) = jwt_at(bytes, i) {
            out.push_str("REDACTED");
            i += len;
            continue;
        }
        if let Some((user, len)) = userinfo_password_at(text, i) {
            out.push_str("://");
            out.push_str(user);
            out.push_str(":REDACTED@");
            i += len;
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    Cow::Owned(out)
}

fn needs_redaction(text: &str) -> bool {
    unredacted_token_param(text)
        || text.contains("eyJ")
        || text.contains("Bearer ")
        || text.contains("bearer ")
        || (text.contains("://") && text.contains('@'))
}

/// Whether `token=` appears with a value other than `REDACTED` (a line whose call site already
/// redacted it comes out of [`redact`] unchanged, so it need not be rebuilt character by
/// character: the log writer runs this over every line).
fn unredacted_token_param(text: &str) -> bool {
    text.match_indices("token=").any(|(i, m)| {
        let value = &text.as_bytes()[i + m.len()..];
        !(value.starts_with(b"REDACTED") && value.get(8).is_none_or(|b| is_value_end(*b)))
    })
}

/// At `i`, `://user:password@` of a URL (a Redis URL's password): the user and the length up
/// to and with the `@`.
fn userinfo_password_at(text: &str, i: usize) -> Option<(&str, usize)> {
    let rest = text.get(i..)?.strip_prefix("://")?;
    let authority_end = rest
        .find(|c: char| {
            matches!(
                c,
                '/' | '?' | '#' | ' ' | '"' | '\'' | '\n' | '\t' | '>' | '<'
            )
        })
        .unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    let (user, _password) = rest[..at].split_once(':')?;
    Some((user, 3 + at + 1))
}

fn is_value_end(b: u8) -> bool {
    matches!(
        b,
        b'&' | b'#' | b' ' | b'"' | b'\'' | b'\n' | b'\t' | b'>' | b'<' | b',' | b'\\'
    )
}

/// At `i`, a secret key followed by `=` that starts a parameter: returns the length of `key=`.
fn secret_param_at(text: &str, i: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        return None;
    }
    SECRET_KEYS.iter().find_map(|k| {
        let end = i + k.len();
        (text.get(i..end).is_some_and(|s| s.eq_ignore_ascii_case(k))
            && bytes.get(end) == Some(&b'='))
        .then_some(k.len() + 1)
    })
}

fn bearer_at(text: &str, i: usize) -> Option<usize> {
    let s = text.get(i..i + 7)?;
    if !s.eq_ignore_ascii_case("bearer ") {
        return None;
    }
    let rest = &text.as_bytes()[i + 7..];
    let n = rest.iter().take_while(|b| !is_value_end(**b)).count();
    (n > 0).then_some(7 + n)
}

/// A JWT-shaped run at `i`: `eyJ` + base64url, two dots.
fn jwt_at(bytes: &[u8], i: usize) -> Option<usize> {
    if !bytes[i..].starts_with(b"eyJ") {
        return None;
    }
    let b64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_' || *b == b'.';
    let n = bytes[i..].iter().take_while(|b| b64(b)).count();
    let dots = bytes[i..i + n].iter().filter(|b| **b == b'.').count();
    (dots >= 1 && n >= 16).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_already_redacted_are_left_as_they_are() {
        for done in [
            "GET /wopi/files/1?access_token=REDACTED&x=1",
            "url=http://h/p?token=REDACTED",
            "token=REDACTED",
        ] {
            assert!(matches!(redact(done), Cow::Borrowed(_)), "{done}");
        }
        for (raw, want) in [
            (
                "a?access_token=REDACTED&token=abc",
                "a?access_token=REDACTED&token=REDACTED",
            ),
            ("token=REDACTEDabc", "token=REDACTED"),
            ("x token=secret", "x token=REDACTED"),
        ] {
            assert_eq!(redact(raw), want, "{raw}");
        }
    }

    #[test]
    fn under() {
        assert!(is_under(
            "https://cloud.example.com/doc?x=1",
            "https://cloud.example.com"
        ));
        assert!(is_under(
            "https://cloud.example.com:443/a/b",
            "https://CLOUD.example.com/a"
        ));
        assert!(is_under(
            "https://cloud.example.com/a/b",
            "https://cloud.example.com/a/"
        ));
        assert!(is_under(
            "https://cloud.example.com/a",
            "https://cloud.example.com/a/"
        ));
        assert!(!is_under(
            "https://cloud.example.com/ab",
            "https://cloud.example.com/a"
        ));
        assert!(!is_under(
            "http://cloud.example.com/",
            "https://cloud.example.com"
        ));
        assert!(!is_under(
            "https://cloud.example.com:8443/",
            "https://cloud.example.com"
        ));
        assert!(!is_under(
            "https://cloud.example.com.evil.net/",
            "https://cloud.example.com"
        ));
        assert!(!is_under(
            "https://evil.net/?https://cloud.example.com",
            "https://cloud.example.com"
        ));
        assert!(!is_under("not a url", "https://cloud.example.com"));
    }

    #[test]
    fn escapes_are_refused() {
        let allowed = ["http://h:81/wopi"];
        for (url, why) in [
            ("http://h:81/wopi/../admin/files/1", Refusal::DotSegment),
            ("http://h:81/wopi/./files/1", Refusal::DotSegment),
            ("http://h:81/wopi/%2e%2e/admin/files/1", Refusal::DotSegment),
            ("http://h:81/wopi/%2E%2E/admin/files/1", Refusal::DotSegment),
            (
                "http://h:81/wopi/%2E%2E%2Fadmin/files/1",
                Refusal::DotSegment,
            ),
            ("http://h:81/wopi/.%2e/admin", Refusal::DotSegment),
            ("http://h:81/wopi/files%2F..%2Fx", Refusal::DotSegment),
            ("http://h:81/wopi\\..\\admin", Refusal::Backslash),
            ("http://user:pw@h:81/wopi/files/1", Refusal::UserInfo),
            ("http://h:81@evil.net/wopi/files/1", Refusal::UserInfo),
            ("file:///etc/passwd", Refusal::Scheme("file".into())),
            ("ftp://h:81/wopi/files/1", Refusal::Scheme("ftp".into())),
            (
                "gopher://h:81/wopi/files/1",
                Refusal::Scheme("gopher".into()),
            ),
            ("http://h:81/wopifiles/1", Refusal::NotAllowed),
            ("http://h:82/wopi/files/1", Refusal::NotAllowed),
            ("//h:81/wopi/files/1", Refusal::NotAUrl),
        ] {
            assert_eq!(check_under(url, &allowed), Err(why), "{url}");
        }
        assert_eq!(check_under("http://h:81/wopi/files/1", &allowed), Ok(()));
        assert_eq!(
            check_under("http://H:81/wopi/files/a%20b", &allowed),
            Ok(())
        );
        assert_eq!(
            check_under("http://h:81/wopi/files/a%2Fb", &allowed),
            Ok(())
        );
    }

    #[test]
    fn origins() {
        assert_eq!(origin_of("https://a.example:443/x?y"), "https://a.example");
        assert_eq!(origin_of("http://a.example:81/x"), "http://a.example:81");
        assert_eq!(origin_of("nope"), "");
    }

    #[test]
    fn redaction() {
        let t = "url=https://h/wopi/files/1?access_token=secret123&x=1 done";
        assert_eq!(
            redact(t),
            "url=https://h/wopi/files/1?access_token=REDACTED&x=1 done"
        );
        assert_eq!(redact("/d/1?token=abc.def"), "/d/1?token=REDACTED");
        assert_eq!(
            redact("Authorization: Bearer abc.def.ghi"),
            "Authorization: Bearer REDACTED"
        );
        assert_eq!(
            redact("got eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.sig-_x here"),
            "got REDACTED here"
        );
        assert_eq!(redact("access_token_ttl=5"), "access_token_ttl=5");
        assert_eq!(redact("mytoken=1"), "mytoken=1");
        assert_eq!(
            redact("cluster: rediss://gw:s3cr3t@redis:6380/0 down; redis://:pw@h/ too"),
            "cluster: rediss://gw:REDACTED@redis:6380/0 down; redis://:REDACTED@h/ too"
        );
        assert_eq!(
            redact("mail me@example.com via https://h/"),
            "mail me@example.com via https://h/"
        );
        assert_eq!(redact("plain text é"), "plain text é");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }
}
