//! Host face: the origins of the gateway's host page (`/open`), which frames the WOPI client
//! and receives its messages (CheckFileInfo's `PostMessageOrigin`).

/// `scheme://host[:port]` of an absolute http(s) URL, as a browser writes an origin (lower
/// case, default port dropped, no path); `None` for anything else.
pub(crate) fn web_origin(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") || !u.has_host() {
        return None;
    }
    Some(u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for (url, origin) in [
            (
                "https://Office.Example.com/hosting/edit?x=1",
                Some("https://office.example.com"),
            ),
            (
                "https://office.example.com:443/x",
                Some("https://office.example.com"),
            ),
            (
                "http://127.0.0.1:8080/office/",
                Some("http://127.0.0.1:8080"),
            ),
            ("http://[::1]:81", Some("http://[::1]:81")),
            (
                "https://xn--bcher-kva.example/",
                Some("https://xn--bcher-kva.example"),
            ),
            (
                "https://bücher.example/",
                Some("https://xn--bcher-kva.example"),
            ),
            ("javascript:alert(1)", None),
            ("data:text/html,x", None),
            ("file:///etc/passwd", None),
            ("ftp://example.com/", None),
            ("/relative", None),
            ("", None),
        ] {
            assert_eq!(web_origin(url).as_deref(), origin, "{url}");
        }
    }
}
