//! Host face: what the gateway's host page (`/open`) needs to relay a WOPI client's
//! messages to the integrator's page as Docs API events — the origins involved and the close
//! target. A browser delivers a `postMessage` only to a window of the target origin, and a
//! page accepts a message only after checking its sender's origin: every origin here comes
//! from the gateway's settings or the client's discovery, none from a message.

use serde_json::{Value, json};

/// `scheme://host[:port]` of an absolute http(s) URL, as a browser writes an origin (lower
/// case, default port dropped, no path); `None` for anything else.
pub(crate) fn web_origin(url: &str) -> Option<String> {
    let o = crate::urls::origin_of(url);
    (o.starts_with("http://") || o.starts_with("https://")).then_some(o)
}

/// The origins of an integrator's `allowed_origins` (URL prefixes that may have a path), each
/// once, in their order: where its pages that frame `/open` may be.
pub(crate) fn relay_origins<S: AsRef<str>>(allowed: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in allowed.iter().filter_map(|a| web_origin(a.as_ref())) {
        if !out.contains(&o) {
            out.push(o);
        }
    }
    out
}

/// What the host page's script is given: `client`, the origin of the WOPI action URL (the
/// only sender it listens to, `""` when the URL has none: then it listens to nobody);
/// `parents`, the integrator's origins ([`relay_origins`]); `close`, where the page goes on
/// `UI_Close` when nothing frames it (`customization.goback.url`, absolute http(s) only).
pub(crate) fn relay_config<S: AsRef<str>>(
    action_url: &str,
    allowed_origins: &[S],
    close_url: Option<&str>,
) -> Value {
    json!({
        "client": web_origin(action_url).unwrap_or_default(),
        "parents": relay_origins(allowed_origins),
        "close": close_url.and_then(super::opening::web_url),
    })
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

    #[test]
    fn relay_origins_are_the_allowed_origins_without_paths_once_each() {
        assert_eq!(
            relay_origins(&[
                "https://cloud.example.com/files",
                "https://cloud.example.com/",
                "http://cloud.example.com:8080/a/b",
                "not a url",
                "https://other.example.com",
            ]),
            [
                "https://cloud.example.com",
                "http://cloud.example.com:8080",
                "https://other.example.com"
            ]
        );
        assert!(relay_origins::<&str>(&[]).is_empty());
    }

    #[test]
    fn the_script_is_given_the_client_origin_the_parents_and_a_web_close_url_only() {
        let allowed = ["https://cloud.example.com/nc"];
        assert_eq!(
            relay_config(
                "https://office.example.com/hosting/wopi/word/edit?wopisrc=x",
                &allowed,
                Some("https://cloud.example.com/folders/7"),
            ),
            json!({"client": "https://office.example.com", "parents": ["https://cloud.example.com"],
                   "close": "https://cloud.example.com/folders/7"})
        );
        for bad in ["javascript:history.back()", "/folders/7", "data:,x"] {
            assert_eq!(
                relay_config("https://o/e", &allowed, Some(bad))["close"],
                Value::Null,
                "{bad}"
            );
        }
        // An action URL without an origin: the script listens to nobody.
        assert_eq!(relay_config("about:blank", &allowed, None)["client"], "");
    }
}
