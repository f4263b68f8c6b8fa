//! Authentication of the client face's callers, as extractors that hand typed claims to the
//! handlers: ONLYOFFICE Docs' JWT on its own requests (document.url, conversion sources), and
//! the editor page's action token (Save As, Rename). Callbacks carry their token in the body
//! and are verified where the body is read (`docs::verified_callback`).

use super::ClientCtx;
use crate::error::{Credential, GatewayError};
use axum::extract::{FromRequestParts, Path};
use docs_api::jwt;
use http::request::Parts;
use serde_json::Value;

/// A request of ONLYOFFICE Docs whose header JWT verified and names this very URL
/// (`payload.url` ends with the request's path).
#[derive(Debug)]
pub(crate) struct DocsRequest;

impl FromRequestParts<ClientCtx> for DocsRequest {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ClientCtx,
    ) -> Result<Self, GatewayError> {
        let payload = super::docs::header_payload(state, &parts.headers, "docs_download")?
            .ok_or_else(|| GatewayError::Forbidden("Docs token missing".into()))?;
        let url = payload.get("url").and_then(Value::as_str).unwrap_or("");
        let signed_path = url.split(['?', '#']).next().unwrap_or("");
        if signed_path.is_empty() || !signed_path.ends_with(parts.uri.path()) {
            return Err(GatewayError::Forbidden(
                "Docs token is for another document".into(),
            ));
        }
        Ok(DocsRequest)
    }
}

/// The user of an editor page's action (`?t=`, a JWT over the Docs key and the user id,
/// signed with `docs.jwt_secret`), for the document of the path's `{key}`.
#[derive(Debug)]
pub(crate) struct ActionUser {
    /// The Docs key of the path.
    pub(crate) key: String,
    /// The user id the token names.
    pub(crate) uid: String,
}

impl FromRequestParts<ClientCtx> for ActionUser {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ClientCtx,
    ) -> Result<Self, GatewayError> {
        let Path(key) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| GatewayError::BadRequest(e.body_text()))?;
        let t = parts
            .uri
            .query()
            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("t=")))
            .unwrap_or("");
        let secret = state.settings().docs.jwt_secret.clone().ok_or_else(|| {
            GatewayError::NotConfigured("the client face needs docs.jwt_secret".into())
        })?;
        let claims =
            jwt::verify(&secret, t).map_err(GatewayError::token(Credential::ActionToken))?;
        if claims.get("key").and_then(Value::as_str) != Some(key.as_str()) {
            return Err(GatewayError::Forbidden(
                "action token is for another document".into(),
            ));
        }
        let uid = claims
            .get("uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Ok(ActionUser { key, uid })
    }
}
