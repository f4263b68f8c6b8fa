//! What goes to ONLYOFFICE Docs with a proxied request — one rule set for both proxy paths
//! (the fast path writes bytes, the HTTP server's path a header map):
//!
//! - hop-by-hop fields go ([`h1::field::is_hop_by_hop`]: the fixed list and what `Connection`
//!   names, never the framing fields or `Host`); the framing is the one the front decided;
//! - `Host` is Docs' own authority;
//! - `X-Forwarded-For` is the peer's address, appended to the client's list only when the
//!   peer is a trusted proxy;
//! - `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Real-IP` and `Forwarded` are kept as sent
//!   only from a trusted proxy; otherwise the first two are written by the gateway (the
//!   listener's scheme, the request's validated authority) and the last two removed;
//! - `X-Forwarded-Prefix` is `server.public_url`'s path when it has one; otherwise only a
//!   trusted proxy's passes.

use std::io::Write as _;
use std::net::IpAddr;

fn is(name: &str, other: &str) -> bool {
    name.eq_ignore_ascii_case(other)
}

/// Whether the client's field `name` stays out of the forwarded request because the gateway
/// writes its own or trusts it only from a trusted proxy (hop-by-hop fields aside).
pub(crate) fn replaced(name: &str, trusted: bool, prefix: &str) -> bool {
    is(name, "host")
        || is(name, "x-forwarded-for")
        || (is(name, "x-forwarded-prefix") && (!trusted || !prefix.is_empty()))
        || (!trusted
            && (is(name, "x-forwarded-proto")
                || is(name, "x-forwarded-host")
                || is(name, "x-real-ip")
                || is(name, "forwarded")))
}

/// The forwarding fields a client sent (the first of each).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sent<'a> {
    pub xff: Option<&'a [u8]>,
    pub proto: bool,
    pub host: bool,
}

impl<'a> Sent<'a> {
    /// Notes field `name` with `value`.
    pub(crate) fn see(&mut self, name: &str, value: &'a [u8]) {
        if is(name, "x-forwarded-for") {
            self.xff = self.xff.or(Some(value));
        } else if is(name, "x-forwarded-proto") {
            self.proto = true;
        } else if is(name, "x-forwarded-host") {
            self.host = true;
        }
    }
}

/// The request as the forwarding rules see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarding<'a> {
    pub peer: IpAddr,
    pub trusted: bool,
    pub sent: Sent<'a>,
    /// The request's authority (validated by the front; `None` for HTTP/1.0 without `Host`).
    pub authority: Option<&'a [u8]>,
    pub https: bool,
    /// `server.public_url`'s path.
    pub prefix: &'a str,
    /// Docs' authority.
    pub docs_authority: &'a [u8],
}

/// Writes the fields the gateway adds, through `emit(name, value)`.
pub(crate) fn write(f: &Forwarding<'_>, mut emit: impl FnMut(&'static str, &[u8])) {
    emit("host", f.docs_authority);
    let mut xff: Vec<u8> = Vec::with_capacity(48);
    if let Some(prev) = f.sent.xff.filter(|_| f.trusted) {
        xff.extend_from_slice(prev);
        xff.extend_from_slice(b", ");
    }
    let _ = write!(xff, "{}", f.peer);
    emit("x-forwarded-for", &xff);
    if !(f.trusted && f.sent.proto) {
        emit(
            "x-forwarded-proto",
            if f.https { b"https" } else { b"http" },
        );
    }
    if !(f.trusted && f.sent.host) {
        if let Some(a) = f.authority {
            emit("x-forwarded-host", a);
        }
    }
    if !f.prefix.is_empty() {
        emit("x-forwarded-prefix", f.prefix.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(f: &Forwarding<'_>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        write(f, |n, v| {
            out.push((n.to_owned(), String::from_utf8_lossy(v).into_owned()))
        });
        out
    }

    #[test]
    fn untrusted_peers_cannot_set_forwarding_fields() {
        for name in [
            "Host",
            "X-Forwarded-For",
            "X-Forwarded-Proto",
            "X-Forwarded-Host",
            "X-Forwarded-Prefix",
            "X-Real-IP",
            "Forwarded",
        ] {
            assert!(replaced(name, false, ""), "{name}");
        }
        assert!(!replaced("X-Custom", false, ""));
        // A trusted proxy's pass, except what the gateway always writes.
        assert!(!replaced("X-Real-IP", true, ""));
        assert!(!replaced("Forwarded", true, ""));
        assert!(!replaced("X-Forwarded-Prefix", true, ""));
        assert!(replaced("X-Forwarded-Prefix", true, "/office"));
        assert!(replaced("X-Forwarded-For", true, ""));
    }

    #[test]
    fn written_fields() {
        let mut sent = Sent::default();
        sent.see("X-Forwarded-For", b"6.6.6.6");
        sent.see("x-forwarded-proto", b"https");
        let base = Forwarding {
            peer: IpAddr::from([10, 0, 0, 1]),
            trusted: false,
            sent,
            authority: Some(b"gw.example"),
            https: false,
            prefix: "",
            docs_authority: b"docs:80",
        };
        assert_eq!(
            fields(&base),
            [
                ("host".into(), "docs:80".into()),
                ("x-forwarded-for".into(), "10.0.0.1".into()),
                ("x-forwarded-proto".into(), "http".into()),
                ("x-forwarded-host".into(), "gw.example".into()),
            ]
        );
        let trusted = Forwarding {
            trusted: true,
            prefix: "/office",
            ..base
        };
        assert_eq!(
            fields(&trusted),
            [
                ("host".into(), "docs:80".into()),
                ("x-forwarded-for".into(), "6.6.6.6, 10.0.0.1".into()),
                ("x-forwarded-host".into(), "gw.example".into()),
                ("x-forwarded-prefix".into(), "/office".into()),
            ]
        );
    }
}
