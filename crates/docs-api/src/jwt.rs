//! HS256 JWTs as Document Server uses them (ONLYOFFICE Docs API docs, "Signature").

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};
use std::fmt;

/// Seconds of clock skew tolerated when verifying (Document Server's `clockTolerance`).
pub const CLOCK_TOLERANCE_SECONDS: u64 = 60;

/// A shared HMAC secret. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `candidate` equals the secret, in time that does not depend on where they differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        if candidate.len() != self.0.len() {
            return false;
        }
        self.0
            .iter()
            .zip(candidate)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not three Base64url parts, or not JSON.
    Malformed,
    /// `alg` is not HS256/HS384/HS512.
    Algorithm,
    /// The signature does not match the secret.
    Signature,
    /// `exp` has passed.
    Expired,
    /// `nbf` lies in the future.
    NotYetValid,
    /// The payload is not a JSON object.
    NotAnObject,
}

impl JwtError {
    /// Bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::Malformed => "malformed",
            JwtError::Algorithm => "algorithm",
            JwtError::Signature => "signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::NotAnObject => "not_an_object",
        }
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwtError::Malformed => "token is not a well-formed JWT",
            JwtError::Algorithm => "token algorithm is not HMAC (HS256/HS384/HS512)",
            JwtError::Signature => "token signature does not match the secret",
            JwtError::Expired => "token has expired",
            JwtError::NotYetValid => "token is not valid yet",
            JwtError::NotAnObject => "token payload is not a JSON object",
        })
    }
}

impl std::error::Error for JwtError {}

/// Signs a JSON object with HS256.
pub fn sign(secret: &Secret, claims: &Map<String, Value>) -> String {
    // Encoding a JSON map with an HMAC key cannot fail.
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(&secret.0),
    )
    .unwrap_or_default()
}

/// Signs with `iat` and `exp` = now + `ttl_seconds` added.
pub fn sign_with_expiry(
    secret: &Secret,
    claims: &Map<String, Value>,
    now_unix: u64,
    ttl_seconds: u64,
) -> String {
    let mut claims = claims.clone();
    claims.insert("iat".into(), Value::from(now_unix));
    claims.insert("exp".into(), Value::from(now_unix + ttl_seconds));
    sign(secret, &claims)
}

/// Verifies an HMAC token and returns its payload. `exp`/`nbf` are checked when present
/// (with [`CLOCK_TOLERANCE_SECONDS`]); a token without `exp` is accepted, as Document Server does.
pub fn verify(secret: &Secret, token: &str) -> Result<Map<String, Value>, JwtError> {
    let header = jsonwebtoken::decode_header(token.trim()).map_err(|_| JwtError::Malformed)?;
    if !matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(JwtError::Algorithm);
    }
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.leeway = CLOCK_TOLERANCE_SECONDS;
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<Value>(
        token.trim(),
        &DecodingKey::from_secret(&secret.0),
        &validation,
    )
    .map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => JwtError::Signature,
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidAlgorithm => JwtError::Algorithm,
            _ => JwtError::Malformed,
        }
    })?;
    match data.claims {
        Value::Object(map) => Ok(map),
        _ => Err(JwtError::NotAnObject),
    }
}

/// Takes the token out of a header value: `Bearer <jwt>` (prefix case-insensitive) or a bare JWT.
pub fn token_from_header(value: &str) -> &str {
    let v = value.trim();
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => v[7..].trim(),
        _ => v,
    }
}

/// Signs a request token the way Document Server signs its outgoing requests:
/// `{"payload": <body>, "iat", "exp"}`.
pub fn sign_payload(secret: &Secret, payload: Value, now_unix: u64, ttl_seconds: u64) -> String {
    let mut claims = Map::new();
    claims.insert("payload".into(), payload);
    sign_with_expiry(secret, &claims, now_unix, ttl_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = Secret::new("s3cret-s3cret-s3cret");
        let t = sign(&s, &obj(json!({"a": 1})));
        assert_eq!(verify(&s, &t).unwrap()["a"], 1);
        assert_eq!(verify(&Secret::new("other"), &t), Err(JwtError::Signature));
        assert_eq!(verify(&s, "abc"), Err(JwtError::Malformed));
        let expired = sign(&s, &obj(json!({"exp": 1000})));
        assert_eq!(verify(&s, &expired), Err(JwtError::Expired));
        // alg "none" is refused.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhIjoxfQ.";
        assert!(verify(&s, none).is_err());
        assert_eq!(token_from_header("Bearer abc"), "abc");
        assert_eq!(token_from_header("bearer  abc "), "abc");
        assert_eq!(token_from_header("abc"), "abc");
        assert!(format!("{s:?}").contains("redacted"));
    }

    #[test]
    fn rsa_algorithms_are_refused() {
        // Header {"alg":"RS256"}; the signature is irrelevant.
        let rs = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhIjoxfQ.c2ln";
        assert_eq!(verify(&Secret::new("k"), rs), Err(JwtError::Algorithm));
    }
}
