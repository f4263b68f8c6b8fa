//! RSA public keys as discovery publishes them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// Why a public key from discovery is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// An attribute is not valid Base64.
    Base64(&'static str),
    /// The CSP blob's header, length or bit length is wrong.
    BadBlob(&'static str),
    /// The modulus is outside 1024–4096 bits or the exponent is unusable.
    BadSize(&'static str),
    /// The blob and modulus/exponent describe different keys.
    Disagree,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Base64(what) => write!(f, "{what} is not valid base64"),
            KeyError::BadBlob(why) => write!(f, "CSP public key blob: {why}"),
            KeyError::BadSize(why) => write!(f, "RSA key: {why}"),
            KeyError::Disagree => {
                f.write_str("the value blob and modulus/exponent describe different keys")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// An RSA public key: big-endian modulus and exponent without leading zeros, checked once.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &self.bits())
            .finish()
    }
}

fn strip_zeros(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

impl PublicKey {
    /// From big-endian modulus and exponent bytes.
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
        if !(1024..=4096).contains(&bits) {
            return Err(KeyError::BadSize("modulus must have 1024 to 4096 bits"));
        }
        if e.is_empty() || e.len() > 4 || e.last().is_some_and(|b| b & 1 == 0) {
            return Err(KeyError::BadSize(
                "exponent must be odd and at most 32 bits",
            ));
        }
        Ok(PublicKey { n, e })
    }

    /// From discovery's Base64 `modulus` and `exponent` attributes.
    pub fn from_modulus_exponent(modulus_b64: &str, exponent_b64: &str) -> Result<Self, KeyError> {
        let n = STANDARD
            .decode(modulus_b64.trim())
            .map_err(|_| KeyError::Base64("modulus"))?;
        let e = STANDARD
            .decode(exponent_b64.trim())
            .map_err(|_| KeyError::Base64("exponent"))?;
        Self::from_components(&n, &e)
    }

    /// From discovery's Base64 `value` attribute: a CryptoAPI PUBLICKEYBLOB (WOPI discovery `proof-key` element).
    pub fn from_csp_blob_b64(value_b64: &str) -> Result<Self, KeyError> {
        let blob = STANDARD
            .decode(value_b64.trim())
            .map_err(|_| KeyError::Base64("value"))?;
        Self::from_csp_blob(&blob)
    }

    /// From a CryptoAPI PUBLICKEYBLOB: `06 02 00 00 | 00 A4 00 00 | "RSA1" | bitlen | exp | n (LE)`.
    pub fn from_csp_blob(blob: &[u8]) -> Result<Self, KeyError> {
        if blob.len() < 20 {
            return Err(KeyError::BadBlob("shorter than its 20-byte header"));
        }
        if blob[0] != 0x06 || blob[1] != 0x02 {
            return Err(KeyError::BadBlob(
                "not a PUBLICKEYBLOB (type 06, version 02)",
            ));
        }
        if &blob[8..12] != b"RSA1" {
            return Err(KeyError::BadBlob("magic is not RSA1"));
        }
        let bitlen = u32::from_le_bytes([blob[12], blob[13], blob[14], blob[15]]) as usize;
        if !bitlen.is_multiple_of(8) || blob.len() != 20 + bitlen / 8 {
            return Err(KeyError::BadBlob("length does not match its bit length"));
        }
        let exponent = u32::from_le_bytes([blob[16], blob[17], blob[18], blob[19]]);
        let mut n = blob[20..].to_vec();
        n.reverse();
        Self::from_components(&n, &exponent.to_be_bytes())
    }

    /// From both encodings; when both are given they must describe the same key.
    pub fn from_discovery(
        value: Option<&str>,
        modulus: Option<&str>,
        exponent: Option<&str>,
    ) -> Result<Option<Self>, KeyError> {
        let blob = value
            .filter(|v| !v.trim().is_empty())
            .map(Self::from_csp_blob_b64)
            .transpose()?;
        let components = match (
            modulus.filter(|m| !m.trim().is_empty()),
            exponent.filter(|e| !e.trim().is_empty()),
        ) {
            (Some(m), Some(e)) => Some(Self::from_modulus_exponent(m, e)?),
            _ => None,
        };
        match (blob, components) {
            (Some(a), Some(b)) if a != b => Err(KeyError::Disagree),
            (Some(a), _) => Ok(Some(a)),
            (None, b) => Ok(b),
        }
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.n.len() * 8 - self.n.first().map_or(8, |b| b.leading_zeros() as usize)
    }

    /// Big-endian modulus.
    pub fn modulus(&self) -> &[u8] {
        &self.n
    }

    /// Big-endian exponent.
    pub fn exponent(&self) -> &[u8] {
        &self.e
    }

    /// Base64 of the modulus, as discovery's `modulus`.
    pub fn modulus_b64(&self) -> String {
        STANDARD.encode(&self.n)
    }

    /// Base64 of the exponent, as discovery's `exponent` (`AQAB` for 65537).
    pub fn exponent_b64(&self) -> String {
        STANDARD.encode(&self.e)
    }

    /// Base64 of the CSP PUBLICKEYBLOB, as discovery's `value`.
    pub fn csp_blob_b64(&self) -> String {
        let bytes = self.bits().div_ceil(8);
        let mut blob = Vec::with_capacity(20 + bytes);
        blob.extend_from_slice(&[0x06, 0x02, 0x00, 0x00, 0x00, 0xA4, 0x00, 0x00]);
        blob.extend_from_slice(b"RSA1");
        blob.extend_from_slice(&((bytes * 8) as u32).to_le_bytes());
        let mut e = [0u8; 4];
        e[4 - self.e.len()..].copy_from_slice(&self.e);
        blob.extend_from_slice(&u32::from_be_bytes(e).to_le_bytes());
        let mut n = self.n.clone();
        n.reverse();
        n.resize(bytes, 0);
        blob.extend_from_slice(&n);
        STANDARD.encode(blob)
    }

    /// Verifies an RSA PKCS#1 v1.5 SHA-256 signature.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let components = ring::signature::RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        };
        components
            .verify(
                &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                message,
                signature,
            )
            .is_ok()
    }
}
