//! The gateway's WOPI access tokens: HS256 JWTs carrying what CheckFileInfo and the
//! callbacks need, so a token stays usable across restarts.

use crate::translate::permissions::Grant;
use docs_api::Secret;
use docs_api::jwt::{self, JwtError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The claims of an access token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Changes the document through the WOPI client (Lock, PutFile): edit, review only,
    /// comment only or fill forms only ([`Grant::saves`]).
    pub w: bool,
    /// What CheckFileInfo grants (absent in tokens from before grants: see [`Self::grant`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub g: Option<Grant>,
    /// `document.info.owner` of the integrator's config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own: Option<String>,
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
    /// The breadcrumbs of `editorConfig.customization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub br: Option<crate::translate::branding::Branding>,
    /// editorConfig.lang (the action URL's `UI_LLCC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui: Option<String>,
    /// editorConfig.region, else the language (`DC_LLCC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dc: Option<String>,
    /// `customization.uiTheme` as `THEME_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thm: Option<String>,
    /// The config asks for a close button (CheckFileInfo's `ClosePostMessage`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cpm: bool,
    /// `customization.goback.url` where the breadcrumbs leave it out (`goback.requestClose`):
    /// see [`Self::close_url`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cu: Option<String>,
    /// The session's host page is the gateway's `/open` (CheckFileInfo's
    /// `PostMessageOrigin`); not for a session opened through `POST /api/v1/sessions`,
    /// whose host page is the integrator's, on an origin the gateway does not know.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hp: bool,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

impl AccessClaims {
    /// What CheckFileInfo grants.
    pub(crate) fn grant(&self) -> Grant {
        self.g.unwrap_or_else(|| Grant::legacy(self.w))
    }

    /// `customization.goback.url` of the config (absolute http(s)): where the gateway's host
    /// page goes on close when nothing frames it. The breadcrumbs' folder URL carries it,
    /// unless `goback.requestClose` kept it out of them.
    pub(crate) fn close_url(&self) -> Option<&str> {
        self.cu
            .as_deref()
            .or_else(|| self.br.as_ref().and_then(|b| b.folder_url.as_deref()))
    }
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

/// Access tokens already verified, with their claims: a WOPI client sends the same token on
/// every call of a session, and the HMAC, base64 and JSON of a full check cost more than the
/// lookup. A hit is taken only while the token is unexpired (strictly: the leeway of a full
/// check is not extended to hits); the table is emptied when it reaches its bound.
#[derive(Debug, Default)]
pub(crate) struct VerifiedTokens {
    map: dashmap::DashMap<Box<str>, std::sync::Arc<AccessClaims>, TableHasher>,
}

/// The hasher of the token tables: foldhash, seeded per table (SipHash, the default, was 1 %
/// of a CheckFileInfo's CPU). Only tokens that verified are inserted, so a client cannot fill
/// a table with keys of its choosing.
type TableHasher = foldhash::quality::RandomState;

/// Entries kept before the table is emptied.
const VERIFIED_TOKENS_MAX: usize = 16_384;

impl VerifiedTokens {
    /// The claims of `token`, from the table or from a full [`verify`] (then remembered).
    pub(crate) fn verify(
        &self,
        secret: &Secret,
        token: &str,
        now_s: u64,
    ) -> Result<std::sync::Arc<AccessClaims>, JwtError> {
        if let Some(c) = self.map.get(token) {
            if c.exp > now_s {
                return Ok(c.clone());
            }
        }
        let claims = std::sync::Arc::new(verify(secret, token)?);
        if claims.exp > now_s {
            if self.map.len() >= VERIFIED_TOKENS_MAX {
                self.map.clear();
            }
            self.map.insert(token.into(), claims.clone());
        }
        Ok(claims)
    }
}

/// Signed tokens by claims, for tokens minted again and again with the same claims (the
/// FileUrl of every CheckFileInfo within one second): HS256 is deterministic, so a hit returns
/// exactly the string a fresh signature would. Emptied when it reaches its bound.
#[derive(Debug, Default)]
pub(crate) struct SignedTokens {
    map: dashmap::DashMap<u64, (AccessClaims, String), TableHasher>,
}

impl SignedTokens {
    /// `sign(secret, claims)`, remembered. `secret` must be the same for every call on one
    /// table.
    pub(crate) fn sign(&self, secret: &Secret, claims: &AccessClaims) -> String {
        use std::hash::BuildHasher as _;
        let key = self.map.hasher().hash_one(claims);
        if let Some(e) = self.map.get(&key) {
            if e.0 == *claims {
                return e.1.clone();
            }
        }
        let token = sign(secret, claims);
        if self.map.len() >= VERIFIED_TOKENS_MAX {
            self.map.clear();
        }
        self.map.insert(key, (claims.clone(), token.clone()));
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            int: "nc".into(),
            fid: "f".into(),
            uid: "u".into(),
            un: "U".into(),
            w: true,
            url: "http://x/doc".into(),
            key: "k".into(),
            title: "a.docx".into(),
            ft: "docx".into(),
            exp: 4_000_000_000,
            ..AccessClaims::default()
        }
    }

    #[test]
    fn verified_tokens_are_remembered_only_while_valid() {
        let s = Secret::new("0123456789abcdef0123456789abcdef");
        let mut c = claims();
        let cache = VerifiedTokens::default();
        let t = sign(&s, &c);
        assert_eq!(*cache.verify(&s, &t, 1_000).unwrap(), c);
        assert_eq!(*cache.verify(&s, &t, 1_000).unwrap(), c, "a hit");
        // Past its expiry (by the caller's clock) a remembered token is checked in full again.
        assert_eq!(cache.map.len(), 1);
        assert!(
            cache.verify(&s, &t, 4_000_000_100).is_ok(),
            "the full check still passes"
        );
        // Another secret never gets a hit for a token it did not sign.
        let other = Secret::new("fedcba9876543210fedcba9876543210");
        let cache2 = VerifiedTokens::default();
        assert!(cache2.verify(&other, &t, 1_000).is_err());
        c.exp = 10;
        let old = sign(&s, &c);
        assert!(cache.verify(&s, &old, 1_000).is_err(), "expired");
    }

    #[test]
    fn remembered_signatures_are_the_fresh_ones() {
        let s = Secret::new("0123456789abcdef0123456789abcdef");
        let mut c = claims();
        let t = SignedTokens::default();
        assert_eq!(t.sign(&s, &c), sign(&s, &c));
        assert_eq!(t.sign(&s, &c), sign(&s, &c), "a hit");
        c.exp += 1;
        assert_eq!(t.sign(&s, &c), sign(&s, &c), "other claims, another token");
    }

    #[test]
    fn round_trip_and_expiry() {
        let s = Secret::new("0123456789abcdef0123456789abcdef");
        let c = claims();
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
