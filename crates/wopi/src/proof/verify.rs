//! Verifying a WOPI client's proof headers (WOPI proof keys: the accepted key combinations and the 20-minute window).

use super::{PublicKey, signed_bytes};
use crate::ticks::TICKS_PER_SECOND;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// Proofs older than this are refused.
pub const MAX_AGE_TICKS: i64 = 20 * 60 * TICKS_PER_SECOND;

/// The current and old public keys of one WOPI client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProofKeys {
    /// The unprefixed discovery key.
    pub current: Option<PublicKey>,
    /// The `old*` discovery key.
    pub old: Option<PublicKey>,
}

/// The inputs of one check, straight from the request.
#[derive(Debug, Clone, Copy)]
pub struct ProofInput<'a> {
    /// The access token exactly as issued (not URL-encoded).
    pub access_token: &'a str,
    /// The absolute URL as the client used it.
    pub url: &'a str,
    /// `X-WOPI-TimeStamp`, as sent.
    pub timestamp: Option<&'a str>,
    /// `X-WOPI-Proof`.
    pub proof: Option<&'a str>,
    /// `X-WOPI-ProofOld`.
    pub proof_old: Option<&'a str>,
}

/// Which of the three accepted combinations verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// `X-WOPI-Proof` with the current key: the normal case.
    ProofWithCurrent,
    /// `X-WOPI-ProofOld` with the current key: the client rotated, our discovery copy is stale.
    ProofOldWithCurrent,
    /// `X-WOPI-Proof` with the old key: we rotated before the signing machine did.
    ProofWithOld,
}

impl Verified {
    /// Whether the host should re-fetch discovery (after a success only when it needed a rotated key).
    pub fn suggests_refresh(self) -> bool {
        !matches!(self, Verified::ProofWithCurrent)
    }

    /// Short name (metric label, CLI output).
    pub fn as_str(self) -> &'static str {
        match self {
            Verified::ProofWithCurrent => "proof_with_current_key",
            Verified::ProofOldWithCurrent => "proof_old_with_current_key",
            Verified::ProofWithOld => "proof_with_old_key",
        }
    }
}

/// Why a proof was refused. Every variant answers 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// A header is absent or empty.
    Missing(&'static str),
    /// `X-WOPI-TimeStamp` is not a decimal 64-bit integer.
    BadTimestamp,
    /// Neither signature header is valid Base64.
    BadBase64,
    /// Older than 20 minutes.
    Stale,
    /// Further in the future than the allowed skew.
    Future,
    /// No accepted combination verified.
    Signature,
    /// No public key is known for the client.
    NoKeys,
}

impl ProofError {
    /// Bounded metric label.
    pub fn reason(self) -> &'static str {
        match self {
            ProofError::Missing(_) => "missing",
            ProofError::BadTimestamp => "bad_timestamp",
            ProofError::BadBase64 => "bad_base64",
            ProofError::Stale => "stale",
            ProofError::Future => "future",
            ProofError::Signature => "signature",
            ProofError::NoKeys => "no_keys",
        }
    }
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::Missing(h) => write!(f, "proof header {h} is missing"),
            ProofError::BadTimestamp => f.write_str("X-WOPI-TimeStamp is not a 64-bit integer"),
            ProofError::BadBase64 => f.write_str("proof signatures are not valid base64"),
            ProofError::Stale => f.write_str("X-WOPI-TimeStamp is older than 20 minutes"),
            ProofError::Future => {
                f.write_str("X-WOPI-TimeStamp is in the future beyond the allowed skew")
            }
            ProofError::Signature => {
                f.write_str("no proof signature verifies with the current or old key")
            }
            ProofError::NoKeys => f.write_str("no proof keys are known for the WOPI client"),
        }
    }
}

impl std::error::Error for ProofError {}

/// The freshness window: `now_ticks` is the host's clock; `None` skips the check
/// (test vectors, the CLI's `--ignore-time`).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The host's "now" in .NET ticks.
    pub now_ticks: i64,
    /// Tolerated clock skew into the future, in ticks.
    pub future_skew_ticks: i64,
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

/// Parses `X-WOPI-TimeStamp` and checks it against the window.
pub fn verify_timestamp(
    timestamp: Option<&str>,
    window: Option<Window>,
) -> Result<i64, ProofError> {
    let text = non_empty(timestamp).ok_or(ProofError::Missing("X-WOPI-TimeStamp"))?;
    let ticks: i64 = text.parse().map_err(|_| ProofError::BadTimestamp)?;
    if let Some(w) = window {
        if ticks < w.now_ticks.saturating_sub(MAX_AGE_TICKS) {
            return Err(ProofError::Stale);
        }
        if ticks > w.now_ticks.saturating_add(w.future_skew_ticks) {
            return Err(ProofError::Future);
        }
    }
    Ok(ticks)
}

impl ProofKeys {
    /// Whether any key is known.
    pub fn is_empty(&self) -> bool {
        self.current.is_none() && self.old.is_none()
    }

    /// Verifies one request (WOPI proof keys: the accepted key combinations and the 20-minute window).
    pub fn verify(
        &self,
        input: &ProofInput<'_>,
        window: Option<Window>,
    ) -> Result<Verified, ProofError> {
        let proof_text = non_empty(input.proof).ok_or(ProofError::Missing("X-WOPI-Proof"))?;
        let ticks = verify_timestamp(input.timestamp, window)?;
        if self.is_empty() {
            return Err(ProofError::NoKeys);
        }
        // Base64 or length errors count as "not verified" (the validator sends "SU5WQUxJRA==").
        let proof = STANDARD.decode(proof_text).ok();
        let proof_old = non_empty(input.proof_old).and_then(|p| STANDARD.decode(p).ok());
        if proof.is_none() && proof_old.is_none() {
            return Err(ProofError::BadBase64);
        }
        let message = signed_bytes(input.access_token, input.url, ticks);
        let try_key = |key: &Option<PublicKey>, sig: &Option<Vec<u8>>| match (key, sig) {
            (Some(k), Some(s)) => k.verify(&message, s),
            _ => false,
        };
        if try_key(&self.current, &proof) {
            Ok(Verified::ProofWithCurrent)
        } else if try_key(&self.current, &proof_old) {
            Ok(Verified::ProofOldWithCurrent)
        } else if try_key(&self.old, &proof) {
            Ok(Verified::ProofWithOld)
        } else {
            Err(ProofError::Signature)
        }
    }
}
