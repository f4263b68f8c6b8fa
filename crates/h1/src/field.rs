//! The header fields that decide how a request is framed and routed: `Host`,
//! `Content-Length`, `Transfer-Encoding`, `Connection` (RFC 9112 §3.2, §6; RFC 9110 §7.6.1).

/// Whether `v` is `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2): a reg-name
/// (unreserved, percent-encoded or sub-delims characters), an IPv4 address (a reg-name by
/// syntax) or a bracketed IPv6 literal, and a port of at most five digits up to 65535. An
/// empty host, userinfo (`@`), a path, spaces and controls are not.
pub fn valid_host(v: &[u8]) -> bool {
    let (host, port) = if v.first() == Some(&b'[') {
        let Some(close) = v.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = &v[1..close];
        let ok = std::str::from_utf8(inner)
            .ok()
            .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
            .is_some();
        if !ok {
            return false;
        }
        match &v[close + 1..] {
            [] => return true,
            [b':', port @ ..] => (&v[..=close], Some(port)),
            _ => return false,
        }
    } else {
        match v.iter().rposition(|&b| b == b':') {
            Some(i) => (&v[..i], Some(&v[i + 1..])),
            None => (v, None),
        }
    };
    if let Some(port) = port {
        if port.len() > 5
            || !port.iter().all(u8::is_ascii_digit)
            || (!port.is_empty()
                && std::str::from_utf8(port)
                    .ok()
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_none_or(|p| p > 65535))
        {
            return false;
        }
    }
    if host.first() == Some(&b'[') {
        return true;
    }
    if host.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < host.len() {
        let b = host[i];
        if b == b'%' {
            if !(host.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && host.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
            continue;
        }
        let ok = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// A `Content-Length` value: digits only, at most 19 of them (RFC 9110 §8.6). A list (`5, 5`),
/// a sign, spaces inside or hex are not lengths.
pub fn content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The comma-separated tokens of a list field, trimmed, empty elements skipped (RFC 9110 §5.6.1).
pub fn tokens(v: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(v)
        .unwrap_or("")
        .split(',')
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
}

/// Hop-by-hop fields (RFC 9110 §7.6.1), and the fields a proxy must not forward as sent.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Fields that frame or address the message: `Connection` may never remove them (the
/// message's framing is decided by them, and naming them there is how request smuggling
/// through a proxy begins).
pub const NEVER_REMOVED: [&str; 3] = ["content-length", "transfer-encoding", "host"];

/// Whether a field named `name` is hop-by-hop: listed in [`HOP_BY_HOP`], or named by the
/// request's `Connection` (`named`), unless it is one of [`NEVER_REMOVED`].
pub fn is_hop_by_hop(name: &str, named: &[&str]) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
        || (named.iter().any(|h| h.eq_ignore_ascii_case(name))
            && !NEVER_REMOVED.iter().any(|h| h.eq_ignore_ascii_case(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "example.com",
            "example.com:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:443",
            "a-b_c~d",
            "xn--bcher-kva.example",
            "h%41st",
            "host:",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "evil.test/x y",
            "evil.test/x",
            "user@host",
            "host:port",
            "host:123456",
            "host:65536",
            "[::1",
            "[zz]",
            "[::1]x",
            "a b",
            "h\tx",
            "h%4",
            "a:b:c",
            ":80",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(content_length(b"0"), Some(0));
        assert_eq!(content_length(b"35"), Some(35));
        assert_eq!(content_length(b"0035"), Some(35));
        for bad in [
            &b""[..],
            b"+5",
            b"-1",
            b"0x5",
            b" 5",
            b"5,5",
            b"5 5",
            b"99999999999999999999",
            b"abc",
        ] {
            assert_eq!(content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn connection_never_removes_framing_or_host() {
        let named = ["content-length", "Transfer-Encoding", "host", "x-foo"];
        assert!(!is_hop_by_hop("Content-Length", &named));
        assert!(!is_hop_by_hop("host", &named));
        assert!(is_hop_by_hop("X-Foo", &named));
        assert!(is_hop_by_hop("keep-alive", &[]));
        assert!(!is_hop_by_hop("x-custom", &[]));
    }
}
