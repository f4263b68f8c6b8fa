//! The gateway's own proof key pair: signs requests to WOPI hosts (client face).

use super::{PublicKey, signed_bytes};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use std::fmt;

/// Why a private key could not be used.
#[derive(Debug)]
pub enum SignError {
    /// The PEM is neither PKCS#1 (`RSA PRIVATE KEY`) nor PKCS#8 (`PRIVATE KEY`) RSA.
    Pem(String),
    /// ring refused the key (size outside 2048–4096 bits, inconsistent values).
    Rejected(String),
    /// Signing failed (should not happen with a valid key).
    Sign,
    /// Key generation failed.
    Generate(String),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::Pem(e) => write!(f, "not an RSA private key in PEM (PKCS#1 or PKCS#8): {e}"),
            SignError::Rejected(e) => write!(f, "unusable RSA private key: {e}"),
            SignError::Sign => f.write_str("RSA signing failed"),
            SignError::Generate(e) => write!(f, "RSA key generation failed: {e}"),
        }
    }
}

impl std::error::Error for SignError {}

/// An RSA private key ready to sign, with its public half.
pub struct SigningKey {
    pair: RsaKeyPair,
    public: PublicKey,
    pkcs8_pem: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The three headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofHeaders {
    /// `X-WOPI-TimeStamp`.
    pub timestamp: String,
    /// `X-WOPI-Proof`.
    pub proof: String,
    /// `X-WOPI-ProofOld`: signed with the old key, or with the current one while there is
    /// no old key (as ONLYOFFICE Docs does; validators that require all three headers accept it).
    pub proof_old: String,
}

impl SigningKey {
    /// Reads a PEM private key, PKCS#1 or PKCS#8.
    pub fn from_pem(pem: &str) -> Result<Self, SignError> {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|e| SignError::Pem(e.to_string()))?;
        Self::from_rsa(&key)
    }

    fn from_rsa(key: &rsa::RsaPrivateKey) -> Result<Self, SignError> {
        let der = key
            .to_pkcs1_der()
            .map_err(|e| SignError::Pem(e.to_string()))?;
        let pair =
            RsaKeyPair::from_der(der.as_bytes()).map_err(|e| SignError::Rejected(e.to_string()))?;
        let public = PublicKey::from_components(&key.n().to_bytes_be(), &key.e().to_bytes_be())
            .map_err(|e| SignError::Rejected(e.to_string()))?;
        let pkcs8_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| SignError::Pem(e.to_string()))?
            .to_string();
        Ok(SigningKey {
            pair,
            public,
            pkcs8_pem,
        })
    }

    /// Generates a new 2048-bit key.
    pub fn generate() -> Result<Self, SignError> {
        let mut rng = rand::thread_rng();
        let key = rsa::RsaPrivateKey::new(&mut rng, 2048)
            .map_err(|e| SignError::Generate(e.to_string()))?;
        Self::from_rsa(&key)
    }

    /// The key as PKCS#8 PEM (to write to disk).
    pub fn to_pem(&self) -> &str {
        &self.pkcs8_pem
    }

    /// The public half, for discovery.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs arbitrary bytes (RSA PKCS#1 v1.5, SHA-256).
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| SignError::Sign)?;
        Ok(sig)
    }

    /// Signs a request to `url` (absolute, with its query) carrying `access_token`. Without an
    /// `old` key the current key signs `X-WOPI-ProofOld` too (the same bytes: PKCS#1 v1.5
    /// signatures are deterministic, so it is computed once).
    pub fn sign(
        &self,
        old: Option<&SigningKey>,
        access_token: &str,
        url: &str,
        ticks: i64,
    ) -> Result<ProofHeaders, SignError> {
        let message = signed_bytes(access_token, url, ticks);
        let proof = STANDARD.encode(self.sign_bytes(&message)?);
        let proof_old = match old {
            Some(k) => STANDARD.encode(k.sign_bytes(&message)?),
            None => proof.clone(),
        };
        Ok(ProofHeaders {
            timestamp: ticks.to_string(),
            proof,
            proof_old,
        })
    }
}
