//! The WOPI protocol, without I/O.
//!
//! Everything the gateway needs to speak WOPI on both faces: the operations a request
//! selects, the lock rules every lock store applies, the CheckFileInfo document, proof keys
//! (verify what WOPI clients send, sign what the gateway sends to WOPI hosts) and discovery
//! XML (parse a client's, render our own). Nothing here touches a socket or a clock: callers
//! pass "now" in, so the crate can be fuzzed, property-tested and benched alone.
//!
//! # Layout
//! - [`headers`]: every `X-WOPI-*` header name, in one place.
//! - [`operation`]: method + path + `X-WOPI-Override` → [`Operation`].
//! - [`lock`]: lock-id validation and the decision table of WOPI locks.
//! - [`file_info`]: the CheckFileInfo JSON document.
//! - [`proof`]: proof keys — public keys from discovery, the signed bytes, verify and sign.
//! - [`discovery`]: discovery XML, parsed and rendered; urlsrc placeholders.
//! - [`utf7`]: RFC 2152 UTF-7, used by the name headers.
//! - [`ticks`]: .NET ticks, the unit of `X-WOPI-TimeStamp`.
#![warn(missing_docs)]

pub mod discovery;
pub mod file_info;
pub mod headers;
pub mod lock;
pub mod operation;
pub mod proof;
pub mod ticks;
pub mod utf7;

pub use file_info::CheckFileInfo;
pub use lock::{LockConflict, LockId};
pub use operation::Operation;

/// Parses a WOPI boolean header value (`True`/`False`, any case). Anything else is `None`.
pub fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_any_case() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool(" true "), Some(true));
        assert_eq!(parse_bool("1"), None);
        assert_eq!(parse_bool(""), None);
    }
}
