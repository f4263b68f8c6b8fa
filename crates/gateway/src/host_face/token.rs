//! The gateway's WOPI access tokens: HS256 JWTs carrying what CheckFileInfo and the
//! callbacks need, so a token stays usable across restarts.

use docs_api::Secret;
use docs_api::jwt::{self, JwtError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    /// Integrator name.
    pub int: String,
    /// File id.
    pub fid: String,
    /// User id.
    pub uid: String,
    /// User display name.
    #[serde(default)]
    pub un: String,
    /// Anonymous user.
    #[serde(default)]
    pub anon: bool,
    /// May write (permissions.edit and mode edit).
    pub w: bool,
    /// document.url
    pub url: String,
    /// document.key
    pub key: String,
    /// document.title
    pub title: String,
    /// document.fileType
    pub ft: String,
    /// editorConfig.callbackUrl
    #[serde(default)]
    pub cb: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

/// Signs claims.
pub(crate) fn sign(secret: &Secret, claims: &AccessClaims) -> String {
    let map = match serde_json::to_value(claims) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    jwt::sign(secret, &map)
}

/// Verifies a token (signature, algorithm, expiry) and reads its claims.
pub(crate) fn verify(secret: &Secret, token: &str) -> Result<AccessClaims, JwtError> {
    let map = jwt::verify(secret, token)?;
    if !map.contains_key("exp") {
        return Err(JwtError::Malformed);
    }
    serde_json::from_value(Value::Object(map)).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_expiry() {
        let s = Secret::new("0123456789abcdef0123456789abcdef");
        let c = AccessClaims {
            int: "nc".into(),
            fid: "f".into(),
            uid: "u".into(),
            un: "U".into(),
            anon: false,
            w: true,
            url: "http://x/doc".into(),
            key: "k".into(),
            title: "a.docx".into(),
            ft: "docx".into(),
            cb: None,
            exp: 4_000_000_000,
        };
        assert_eq!(verify(&s, &sign(&s, &c)).unwrap(), c);
        let old = AccessClaims {
            exp: 1000,
            ..c.clone()
        };
        assert_eq!(verify(&s, &sign(&s, &old)), Err(JwtError::Expired));
        assert_eq!(
            verify(&Secret::new("another-secret-another"), &sign(&s, &c)),
            Err(JwtError::Signature)
        );
    }
}
