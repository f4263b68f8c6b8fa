//! Discovery XML (Microsoft's WOPI docs, "WOPI discovery"): what a WOPI client publishes and a host reads.
//!
//! [`parse`] reads a client's discovery with hard limits, since the document comes over the
//! network: a size cap, a nesting cap, an attribute-length cap, and no DTD (so no entity
//! expansion). Unknown elements and attributes are skipped. [`render`] writes our own.

use crate::proof::keys::KeyError;
use crate::proof::{ProofKeys, PublicKey};
use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};
use std::fmt;

/// Largest discovery document accepted.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Deepest element nesting accepted (real documents nest 4 levels).
pub const MAX_DEPTH: usize = 16;
/// Longest attribute value accepted.
pub const MAX_ATTRIBUTE_BYTES: usize = 64 * 1024;
/// Most elements accepted.
pub const MAX_ELEMENTS: usize = 200_000;

/// A parsed discovery document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// `<net-zone>` elements in document order.
    pub net_zones: Vec<NetZone>,
    /// The `<proof-key>` attributes, if present.
    pub proof_key: Option<ProofKeyAttrs>,
}

/// One `<net-zone>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetZone {
    /// `internal-http`, `external-https`, …
    pub name: String,
    /// Its `<app>` elements.
    pub apps: Vec<App>,
}

/// One `<app>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct App {
    /// `Word`, `Excel`, … or a MIME type.
    pub name: String,
    /// `favIconUrl`.
    pub fav_icon_url: Option<String>,
    /// `checkLicense="true"`.
    pub check_license: bool,
    /// Its `<action>` elements.
    pub actions: Vec<Action>,
}

/// One `<action>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Action {
    /// `view`, `edit`, `embedview`, …
    pub name: String,
    /// Extension without the dot (may be empty).
    pub ext: String,
    /// `progid`, for the few actions that use it.
    pub progid: Option<String>,
    /// `requires`, a comma list (`locks,update`).
    pub requires: Option<String>,
    /// The URL template with its placeholders.
    pub urlsrc: String,
    /// `default="true"`.
    pub default: bool,
    /// `newext`.
    pub newext: Option<String>,
    /// `targetext` (convert actions).
    pub targetext: Option<String>,
}

/// The `<proof-key>` attributes, as Base64 text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ProofKeyAttrs {
    pub value: Option<String>,
    pub modulus: Option<String>,
    pub exponent: Option<String>,
    pub old_value: Option<String>,
    pub old_modulus: Option<String>,
    pub old_exponent: Option<String>,
}

/// Why a discovery document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    /// Larger than [`MAX_BYTES`].
    TooLarge,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// More than [`MAX_ELEMENTS`] elements.
    TooManyElements,
    /// An attribute longer than [`MAX_ATTRIBUTE_BYTES`].
    AttributeTooLong,
    /// A DOCTYPE declaration (refused: no DTDs, no entities).
    Doctype,
    /// Not well-formed XML, or an unknown entity.
    Xml(String),
    /// The root element is not `<wopi-discovery>`.
    NotDiscovery,
    /// An `<action>` lacks `name` or `urlsrc`.
    BadAction,
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::TooLarge => write!(f, "discovery is larger than {MAX_BYTES} bytes"),
            DiscoveryError::TooDeep => {
                write!(f, "discovery nests deeper than {MAX_DEPTH} elements")
            }
            DiscoveryError::TooManyElements => {
                write!(f, "discovery has more than {MAX_ELEMENTS} elements")
            }
            DiscoveryError::AttributeTooLong => {
                write!(f, "an attribute is longer than {MAX_ATTRIBUTE_BYTES} bytes")
            }
            DiscoveryError::Doctype => f.write_str("DOCTYPE declarations are not accepted"),
            DiscoveryError::Xml(e) => write!(f, "malformed XML: {e}"),
            DiscoveryError::NotDiscovery => f.write_str("root element is not <wopi-discovery>"),
            DiscoveryError::BadAction => f.write_str("an <action> lacks name or urlsrc"),
        }
    }
}

impl std::error::Error for DiscoveryError {}

fn attrs(
    reader: &Reader<&[u8]>,
    e: &BytesStart<'_>,
) -> Result<Vec<(String, String)>, DiscoveryError> {
    let mut out = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| DiscoveryError::Xml(err.to_string()))?;
        if attr.value.len() > MAX_ATTRIBUTE_BYTES {
            return Err(DiscoveryError::AttributeTooLong);
        }
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        let value = attr
            .decode_and_unescape_value(reader.decoder())
            .map_err(|err| DiscoveryError::Xml(err.to_string()))?
            .into_owned();
        out.push((key, value));
    }
    Ok(out)
}

fn take(attrs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let at = attrs.iter().position(|(k, _)| k == name)?;
    Some(attrs.swap_remove(at).1)
}

/// Parses a discovery document.
pub fn parse(xml: &[u8]) -> Result<Discovery, DiscoveryError> {
    if xml.len() > MAX_BYTES {
        return Err(DiscoveryError::TooLarge);
    }
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut doc = Discovery::default();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut elements = 0usize;
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| DiscoveryError::Xml(e.to_string()))?;
        let (start, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            Event::DocType(_) => return Err(DiscoveryError::Doctype),
            Event::Eof => break,
            _ => continue,
        };
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(DiscoveryError::TooManyElements);
        }
        let name = start.local_name().as_ref().to_vec();
        if stack.is_empty() {
            if saw_root || name != b"wopi-discovery" {
                return Err(DiscoveryError::NotDiscovery);
            }
            saw_root = true;
        }
        let parent = stack.last().map(Vec::as_slice);
        match (parent, name.as_slice()) {
            (Some(b"wopi-discovery"), b"net-zone") => {
                let mut a = attrs(&reader, start)?;
                doc.net_zones.push(NetZone {
                    name: take(&mut a, "name").unwrap_or_default(),
                    apps: Vec::new(),
                });
            }
            (Some(b"net-zone"), b"app") => {
                let mut a = attrs(&reader, start)?;
                let app = App {
                    name: take(&mut a, "name").unwrap_or_default(),
                    fav_icon_url: take(&mut a, "favIconUrl"),
                    check_license: take(&mut a, "checkLicense")
                        .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                    actions: Vec::new(),
                };
                if let Some(zone) = doc.net_zones.last_mut() {
                    zone.apps.push(app);
                }
            }
            (Some(b"app"), b"action") => {
                let mut a = attrs(&reader, start)?;
                let action = Action {
                    name: take(&mut a, "name").ok_or(DiscoveryError::BadAction)?,
                    ext: take(&mut a, "ext").unwrap_or_default(),
                    progid: take(&mut a, "progid"),
                    requires: take(&mut a, "requires"),
                    urlsrc: take(&mut a, "urlsrc").ok_or(DiscoveryError::BadAction)?,
                    default: take(&mut a, "default")
                        .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                    newext: take(&mut a, "newext"),
                    targetext: take(&mut a, "targetext"),
                };
                if let Some(app) = doc.net_zones.last_mut().and_then(|z| z.apps.last_mut()) {
                    app.actions.push(action);
                }
            }
            (Some(b"wopi-discovery"), b"proof-key") => {
                let mut a = attrs(&reader, start)?;
                doc.proof_key = Some(ProofKeyAttrs {
                    value: take(&mut a, "value"),
                    modulus: take(&mut a, "modulus"),
                    exponent: take(&mut a, "exponent"),
                    old_value: take(&mut a, "oldvalue"),
                    old_modulus: take(&mut a, "oldmodulus"),
                    old_exponent: take(&mut a, "oldexponent"),
                });
            }
            _ => {
                // Unknown elements are skipped, but their attributes still obey the limits.
                attrs(&reader, start)?;
            }
        }
        if !empty {
            stack.push(name);
            if stack.len() > MAX_DEPTH {
                return Err(DiscoveryError::TooDeep);
            }
        }
    }
    if !saw_root {
        return Err(DiscoveryError::NotDiscovery);
    }
    Ok(doc)
}

impl Discovery {
    /// The client's proof keys. Absent keys are `None`; a present but broken key is an error.
    pub fn proof_keys(&self) -> Result<ProofKeys, KeyError> {
        let Some(p) = &self.proof_key else {
            return Ok(ProofKeys::default());
        };
        Ok(ProofKeys {
            current: PublicKey::from_discovery(
                p.value.as_deref(),
                p.modulus.as_deref(),
                p.exponent.as_deref(),
            )?,
            old: PublicKey::from_discovery(
                p.old_value.as_deref(),
                p.old_modulus.as_deref(),
                p.old_exponent.as_deref(),
            )?,
        })
    }

    /// Every (app, action) whose `ext` matches (case-insensitive), across all net zones.
    pub fn actions_for_ext<'a>(
        &'a self,
        ext: &'a str,
    ) -> impl Iterator<Item = (&'a App, &'a Action)> + 'a {
        self.net_zones
            .iter()
            .flat_map(|z| z.apps.iter())
            .flat_map(|app| app.actions.iter().map(move |a| (app, a)))
            .filter(move |(_, a)| a.ext.eq_ignore_ascii_case(ext))
    }
}

fn attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    out.push_str(&escape(value));
    out.push('"');
}

/// Renders a discovery document.
pub fn render(doc: &Discovery) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<wopi-discovery>\n");
    for zone in &doc.net_zones {
        out.push_str("  <net-zone");
        attr(&mut out, "name", &zone.name);
        out.push_str(">\n");
        for app in &zone.apps {
            out.push_str("    <app");
            attr(&mut out, "name", &app.name);
            if let Some(icon) = &app.fav_icon_url {
                attr(&mut out, "favIconUrl", icon);
            }
            if app.check_license {
                attr(&mut out, "checkLicense", "true");
            }
            out.push_str(">\n");
            for a in &app.actions {
                out.push_str("      <action");
                attr(&mut out, "name", &a.name);
                attr(&mut out, "ext", &a.ext);
                if let Some(p) = &a.progid {
                    attr(&mut out, "progid", p);
                }
                if a.default {
                    attr(&mut out, "default", "true");
                }
                if let Some(r) = &a.requires {
                    attr(&mut out, "requires", r);
                }
                if let Some(t) = &a.targetext {
                    attr(&mut out, "targetext", t);
                }
                if let Some(n) = &a.newext {
                    attr(&mut out, "newext", n);
                }
                attr(&mut out, "urlsrc", &a.urlsrc);
                out.push_str("/>\n");
            }
            out.push_str("    </app>\n");
        }
        out.push_str("  </net-zone>\n");
    }
    if let Some(p) = &doc.proof_key {
        out.push_str("  <proof-key");
        for (name, value) in [
            ("oldvalue", &p.old_value),
            ("oldmodulus", &p.old_modulus),
            ("oldexponent", &p.old_exponent),
            ("value", &p.value),
            ("modulus", &p.modulus),
            ("exponent", &p.exponent),
        ] {
            if let Some(v) = value {
                attr(&mut out, name, v);
            }
        }
        out.push_str("/>\n");
    }
    out.push_str("</wopi-discovery>\n");
    out
}

impl ProofKeyAttrs {
    /// The attributes for a current and an optional old key, in both encodings.
    pub fn from_keys(current: &PublicKey, old: Option<&PublicKey>) -> Self {
        ProofKeyAttrs {
            value: Some(current.csp_blob_b64()),
            modulus: Some(current.modulus_b64()),
            exponent: Some(current.exponent_b64()),
            old_value: old.map(PublicKey::csp_blob_b64),
            old_modulus: old.map(PublicKey::modulus_b64),
            old_exponent: old.map(PublicKey::exponent_b64),
        }
    }
}

/// Resolves an urlsrc template (WOPI discovery, "Transforming the urlsrc parameter"): each `<name=PLACEHOLDER&>` becomes `name=value&` when
/// `value_of(PLACEHOLDER)` is known (values must already be URL-encoded), and disappears
/// otherwise. Stray `&`s left at the end or after `?` are removed.
pub fn resolve_urlsrc(template: &str, value_of: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let part = &after[..close];
        if let Some((name, placeholder)) = part.split_once('=') {
            let (placeholder, amp) = match placeholder.strip_suffix('&') {
                Some(p) => (p, "&"),
                None => (placeholder, ""),
            };
            if let Some(value) = value_of(placeholder) {
                out.push_str(name);
                out.push('=');
                out.push_str(&value);
                out.push_str(amp);
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    while out.contains("&&") {
        out = out.replace("&&", "&");
    }
    out = out.replace("?&", "?");
    while out.ends_with('&') || out.ends_with('?') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests;
