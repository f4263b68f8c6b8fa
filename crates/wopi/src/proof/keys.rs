//! RSA public keys as discovery publishes them.

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::fmt;
use std::sync::Arc;

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

/// An RSA public key: big-endian modulus and exponent without leading zeros, checked once,
/// and the key as the verifier holds it, set up once: verifying with a key parsed for each
/// signature (its Montgomery constants computed anew each time) took a quarter more time
/// (docs/benchmarks.md, S2).
#[derive(Clone)]
pub struct PublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
    verifier: Arc<ParsedPublicKey>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n && self.e == other.e
    }
}

impl Eq for PublicKey {}

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
        let verifier = ParsedPublicKey::new(
            &RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            pkcs1_der(&n, &e),
        )
        .map_err(|_| KeyError::BadSize("the RSA verifier refuses the key"))?;
        Ok(PublicKey {
            n,
            e,
            verifier: Arc::new(verifier),
        })
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
        self.verifier.verify_sig(message, signature).is_ok()
    }
}

/// The PKCS#1 `RSAPublicKey` DER of a modulus and an exponent (RFC 8017 §A.1.1): a SEQUENCE
/// of two non-negative INTEGERs, big-endian without leading zeros.
fn pkcs1_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, v: &[u8]) {
        let pad = v.first().is_none_or(|b| b & 0x80 != 0);
        out.push(0x02);
        length(out, v.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    fn length(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let first = bytes
                .iter()
                .position(|&b| b != 0)
                .unwrap_or(bytes.len() - 1);
            out.push(0x80 | (bytes.len() - first) as u8);
            out.extend_from_slice(&bytes[first..]);
        }
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 12);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut der = Vec::with_capacity(body.len() + 4);
    der.push(0x30);
    length(&mut der, body.len());
    der.extend_from_slice(&body);
    der
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;

    #[test]
    fn pkcs1_der_agrees_with_the_rsa_crate() {
        let mut rng = rand::thread_rng();
        for bits in [1024, 2048] {
            let key = rsa::RsaPrivateKey::new(&mut rng, bits).unwrap();
            let public = key.to_public_key();
            let want = public.to_pkcs1_der().unwrap();
            let got = pkcs1_der(&public.n().to_bytes_be(), &public.e().to_bytes_be());
            assert_eq!(got, want.as_bytes(), "{bits} bits");
        }
        // Lengths of every form: short, one byte, two bytes; a value with its high bit set.
        assert_eq!(pkcs1_der(&[0x01], &[0x03]), [0x30, 6, 2, 1, 1, 2, 1, 3]);
        assert_eq!(
            pkcs1_der(&[0x80], &[0x03]),
            [0x30, 7, 2, 2, 0, 0x80, 2, 1, 3]
        );
        let long = pkcs1_der(&[0x7f; 200], &[1, 0, 1]);
        assert_eq!(&long[..3], &[0x30, 0x81, 3 + 200 + 5]);
        assert_eq!(&long[3..6], &[0x02, 0x81, 200]);
    }

    #[test]
    fn verifies_what_the_key_signed_and_nothing_else() {
        let signer = crate::proof::SigningKey::generate().unwrap();
        let public = signer.public_key();
        let sig = signer.sign_bytes(b"proof bytes").unwrap();
        assert!(public.verify(b"proof bytes", &sig));
        assert!(!public.verify(b"proof bytez", &sig));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!public.verify(b"proof bytes", &bad));
        assert!(!public.verify(b"proof bytes", &sig[1..]));
        // Another key of the same size does not verify it; a copy of the key does.
        let other = crate::proof::SigningKey::generate().unwrap();
        assert!(!other.public_key().verify(b"proof bytes", &sig));
        let copy = PublicKey::from_components(public.modulus(), public.exponent()).unwrap();
        assert!(copy == *public && copy.verify(b"proof bytes", &sig));
    }
}
