//! Proof keys (Microsoft's WOPI docs, "Proof keys"): how a WOPI client proves a request came from it.
//!
//! The client signs `len(token) ‖ token ‖ len(URL) ‖ UPPER(URL) ‖ len(8) ‖ ticks` with RSA
//! PKCS#1 v1.5 / SHA-256 and sends the signature in `X-WOPI-Proof` (current key) and
//! `X-WOPI-ProofOld` (old key). The host accepts any of three combinations within a
//! 20-minute window.
//!
//! Verification runs on `aws-lc-rs` with each key parsed once ([`keys::PublicKey`] holds it):
//! a quarter faster than `ring`, which sets a key up again for every signature, and about ten
//! times faster than the `rsa` crate (docs/benchmarks.md). Its legacy 1024-bit algorithm is
//! used because the WOPI Validator signs with a 1024-bit key. Signing runs on `ring`; the
//! `rsa` crate is used only to read PEM files and to generate keys.
//!
//! # Layout
//! - [`keys`]: a public key from discovery (modulus/exponent or CSP blob), and its encodings.
//! - [`verify`]: the freshness window and the three accepted combinations.
//! - [`sign`]: the gateway's own key pair, producing the proof headers.

pub mod keys;
pub mod sign;
pub mod verify;

pub use keys::PublicKey;
pub use sign::{ProofHeaders, SigningKey};
pub use verify::{ProofError, ProofInput, ProofKeys, Verified};

/// Builds the bytes a WOPI proof signs . `url` is the absolute request URL as the
/// client used it; it is upper-cased here.
pub fn signed_bytes(access_token: &str, url: &str, ticks: i64) -> Vec<u8> {
    let url = url.to_uppercase();
    let mut out = Vec::with_capacity(16 + access_token.len() + url.len());
    out.extend_from_slice(&(access_token.len() as u32).to_be_bytes());
    out.extend_from_slice(access_token.as_bytes());
    out.extend_from_slice(&(url.len() as u32).to_be_bytes());
    out.extend_from_slice(url.as_bytes());
    out.extend_from_slice(&8u32.to_be_bytes());
    out.extend_from_slice(&ticks.to_be_bytes());
    out
}
