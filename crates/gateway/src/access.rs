//! Route groups, client addresses and the per-group IP allowlist (the trusted-IP whitelist).
//!
//! The client address is the TCP peer, unless that peer is a trusted proxy: then it is the
//! right-most address of `X-Forwarded-For` (or, without it, `Forwarded`) that is not itself a
//! trusted proxy. Headers from untrusted peers are ignored, so they cannot be spoofed.

use http::HeaderMap;
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;

/// Who may call a route (docs/architecture.md, "The request path"); each group has its own allowlist and body limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteGroup {
    /// `/wopi/*`: WOPI clients' servers.
    Wopi = 0,
    /// `/api/v1/*`, `/open`: Docs-API integrators.
    Integrator = 1,
    /// `/docs/files/*`, `/docs/callback/*`: ONLYOFFICE Docs servers.
    Docs = 2,
    /// `/hosting/*`: WOPI hosts and their users' browsers.
    Hosting = 3,
    /// Everything else: passed to ONLYOFFICE Docs.
    Proxy = 4,
}

impl RouteGroup {
    /// Number of groups.
    pub const COUNT: usize = 5;
    /// All groups, in index order.
    pub const ALL: [RouteGroup; Self::COUNT] = [
        RouteGroup::Wopi,
        RouteGroup::Integrator,
        RouteGroup::Docs,
        RouteGroup::Hosting,
        RouteGroup::Proxy,
    ];

    /// Classifies a request path.
    pub fn classify(path: &str) -> Self {
        if path.starts_with("/wopi/") || path == "/wopi" {
            RouteGroup::Wopi
        } else if path.starts_with("/api/v1/") || path == "/open" {
            RouteGroup::Integrator
        } else if path.starts_with("/docs/files/")
            || path.starts_with("/docs/callback/")
            || path.starts_with("/docs/convert/")
        {
            RouteGroup::Docs
        } else if path.starts_with("/hosting/")
            || path.starts_with("/cool/convert-to/")
            || path.starts_with("/lool/convert-to/")
        {
            RouteGroup::Hosting
        } else {
            RouteGroup::Proxy
        }
    }

    /// The group's name (TOML key and metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            RouteGroup::Wopi => "wopi",
            RouteGroup::Integrator => "integrator",
            RouteGroup::Docs => "docs",
            RouteGroup::Hosting => "hosting",
            RouteGroup::Proxy => "proxy",
        }
    }

    /// Index into per-group arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RouteGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CIDRs and single addresses; empty means anyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// From parsed networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        AllowList(nets)
    }

    /// Parses `10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`, `::1`.
    pub fn parse_entry(entry: &str) -> Result<IpNet, String> {
        let e = entry.trim();
        if let Ok(net) = e.parse::<IpNet>() {
            return Ok(net.trunc());
        }
        e.parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("`{e}` is neither an IP address nor a CIDR"))
    }

    /// Whether `ip` may pass, and by which rule.
    pub fn admit(&self, ip: IpAddr) -> Admit<'_> {
        if self.0.is_empty() {
            return Admit::Anyone;
        }
        let ip = canonical(ip);
        self.0
            .iter()
            .find(|n| n.contains(&ip))
            .map_or(Admit::Denied, Admit::Rule)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The allowlist's answer for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit<'a> {
    /// The list is empty: anyone may pass.
    Anyone,
    /// This entry matched.
    Rule(&'a IpNet),
    /// No entry matched.
    Denied,
}

impl Admit<'_> {
    /// Whether the request may pass.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Admit::Denied)
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is treated as the IPv4 address.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` is one of the trusted proxies.
pub(crate) fn is_trusted(trusted: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|n| n.contains(&ip))
}

fn parse_forwarded_node(node: &str) -> Option<IpAddr> {
    let n = node.trim().trim_matches('"');
    if let Some(rest) = n.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    if let Ok(ip) = n.parse() {
        return Some(ip);
    }
    // `a.b.c.d:port`
    let (host, _port) = n.rsplit_once(':')?;
    host.parse().ok()
}

fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|s| !s.trim().is_empty())
        .map(parse_forwarded_node)
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|elem| {
            elem.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_forwarded_node(v))
            })
        })
        .collect()
}

/// The client address of a request from `peer`.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(trusted, peer) {
        return canonical(peer);
    }
    let mut client = canonical(peer);
    for hop in forwarded_chain(headers).into_iter().rev() {
        match hop {
            // An unparsable hop ends the chain: nothing left of it can be believed.
            None => break,
            Some(ip) => {
                client = canonical(ip);
                if !is_trusted(trusted, ip) {
                    break;
                }
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| AllowList::parse_entry(s).unwrap())
            .collect()
    }

    #[test]
    fn classify() {
        assert_eq!(RouteGroup::classify("/wopi/files/1"), RouteGroup::Wopi);
        assert_eq!(
            RouteGroup::classify("/api/v1/sessions"),
            RouteGroup::Integrator
        );
        assert_eq!(RouteGroup::classify("/open"), RouteGroup::Integrator);
        assert_eq!(RouteGroup::classify("/docs/callback/x"), RouteGroup::Docs);
        assert_eq!(
            RouteGroup::classify("/hosting/discovery"),
            RouteGroup::Hosting
        );
        assert_eq!(
            RouteGroup::classify("/web-apps/apps/api/documents/api.js"),
            RouteGroup::Proxy
        );
        assert_eq!(RouteGroup::classify("/wopifoo"), RouteGroup::Proxy);
    }

    #[test]
    fn allowlist() {
        let l = AllowList::new(nets(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]));
        assert!(l.admit("10.1.2.3".parse().unwrap()).is_allowed());
        assert!(l.admit("192.0.2.7".parse().unwrap()).is_allowed());
        assert_eq!(l.admit("192.0.2.8".parse().unwrap()), Admit::Denied);
        assert!(l.admit("2001:db8::1".parse().unwrap()).is_allowed());
        assert_eq!(l.admit("2001:db9::1".parse().unwrap()), Admit::Denied);
        assert!(l.admit("::ffff:10.0.0.1".parse().unwrap()).is_allowed());
        assert_eq!(
            AllowList::default().admit("8.8.8.8".parse().unwrap()),
            Admit::Anyone
        );
        assert!(AllowList::parse_entry("nope").is_err());
        assert!(AllowList::parse_entry("10.0.0.0/33").is_err());
    }

    #[test]
    fn client_addresses() {
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.1, 10.0.0.2"),
        );
        // Untrusted peer: header ignored.
        assert_eq!(
            client_ip("192.0.2.1".parse().unwrap(), &h, &trusted),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        // Trusted peer: right-most untrusted.
        assert_eq!(
            client_ip("127.0.0.1".parse().unwrap(), &h, &trusted),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // All trusted: the left-most.
        let mut h2 = HeaderMap::new();
        h2.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.5"));
        assert_eq!(
            client_ip("127.0.0.1".parse().unwrap(), &h2, &trusted),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        // Forwarded, IPv6 with port.
        let mut h3 = HeaderMap::new();
        h3.insert(
            "forwarded",
            HeaderValue::from_static("for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\""),
        );
        assert_eq!(
            client_ip("127.0.0.1".parse().unwrap(), &h3, &trusted),
            "2001:db8:cafe::17".parse::<IpAddr>().unwrap()
        );
        // Garbage hop: stops at the last trusted one.
        let mut h4 = HeaderMap::new();
        h4.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, garbage"),
        );
        assert_eq!(
            client_ip("127.0.0.1".parse().unwrap(), &h4, &trusted),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
