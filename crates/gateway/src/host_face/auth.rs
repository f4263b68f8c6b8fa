//! Authentication of WOPI calls, as an extractor: the proof first (the caller is a trusted
//! WOPI client; Microsoft's WOPI docs, "Proof keys"), then the access token (the user and
//! the file). Handlers get typed claims and never parse a token themselves.

use super::HostCtx;
use super::token::{self, AccessClaims};
use crate::error::{Credential, GatewayError};
use crate::settings::ProofMode;
use axum::extract::{FromRequestParts, Path};
use docs_api::jwt;
use http::HeaderMap;
use http::request::Parts;
use wopi::headers as h;
use wopi::proof::ProofInput;
use wopi::proof::verify::{ProofError, Window};

/// A WOPI request whose proof verified and whose access token is valid.
#[derive(Debug)]
pub(crate) struct WopiAuth(pub(crate) std::sync::Arc<AccessClaims>);

impl FromRequestParts<HostCtx> for WopiAuth {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, state: &HostCtx) -> Result<Self, GatewayError> {
        let token = parts
            .uri
            .query()
            .and_then(query_token)
            .or_else(|| {
                header(&parts.headers, "authorization")
                    .map(|a| jwt::token_from_header(a).to_owned())
            })
            .filter(|t| !t.is_empty());
        // Proof first: it authenticates the WOPI client before anything else is looked at.
        let target = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
        verify_proof(
            state,
            &parts.headers,
            &target,
            token.as_deref().unwrap_or(""),
        )
        .await?;
        let token =
            token.ok_or_else(|| GatewayError::Unauthorized("access_token is missing".into()))?;
        let now_s = state.now_ms() / 1000;
        let claims = state
            .metrics
            .count_jwt(
                "access_token",
                state
                    .face
                    .verified_tokens
                    .verify(&state.face.token_secret, &token, now_s),
            )
            .map_err(GatewayError::token(Credential::AccessToken))?;
        Ok(WopiAuth(claims))
    }
}

/// The `?token=` of a URL.
fn token_param(parts: &Parts) -> Option<&str> {
    parts
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("token=")))
        .filter(|t| !t.is_empty())
}

/// A CheckFileInfo `FileUrl` download: its token (signed with the FileUrl key, not the
/// access-token one) is unexpired and names the path's file.
#[derive(Debug)]
pub(crate) struct FileUrlAuth(pub(crate) AccessClaims);

impl FromRequestParts<HostCtx> for FileUrlAuth {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, state: &HostCtx) -> Result<Self, GatewayError> {
        let Path(fid) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| GatewayError::BadRequest(e.body_text()))?;
        let claims = state
            .metrics
            .count_jwt(
                "fileurl",
                token::verify(&state.face.fileurl_secret, token_param(parts).unwrap_or("")),
            )
            .map_err(GatewayError::token(Credential::FileUrlToken))?;
        // The gateway signed it with its own clock: no leeway past its expiry.
        if claims.exp < state.now_ms() / 1000 {
            return Err(GatewayError::Unauthorized("the FileUrl has expired".into()));
        }
        if claims.fid != fid {
            return Err(GatewayError::Forbidden(
                "the FileUrl token is for another file".into(),
            ));
        }
        Ok(FileUrlAuth(claims))
    }
}

/// A delivery's download URL (`/api/v1/download/{id}?token=`): the token names the path's
/// delivery. Holds the delivery id.
#[derive(Debug)]
pub(crate) struct DownloadAuth(pub(crate) String);

impl FromRequestParts<HostCtx> for DownloadAuth {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, state: &HostCtx) -> Result<Self, GatewayError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| GatewayError::BadRequest(e.body_text()))?;
        let token = token_param(parts)
            .ok_or_else(|| GatewayError::Unauthorized("download token missing".into()))?;
        let claims = state
            .metrics
            .count_jwt("download", jwt::verify(&state.face.token_secret, token))
            .map_err(GatewayError::token(Credential::DownloadToken))?;
        // `ck`: the content-store key; the path names its last segment (without `.bin`).
        let key = claims
            .get("ck")
            .and_then(serde_json::Value::as_str)
            .filter(|k| {
                k.rsplit('/').next().and_then(|n| n.strip_suffix(".bin")) == Some(id.as_str())
            });
        match (key, claims.get("exp")) {
            (Some(key), Some(_)) => Ok(DownloadAuth(key.to_owned())),
            _ => Err(GatewayError::Forbidden(
                "download token is for another file".into(),
            )),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The raw `access_token` query value, percent-decoded (the token as issued).
fn query_token(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "access_token").then(|| {
            if memchr::memchr2(b'%', b'+', v.as_bytes()).is_none() {
                // Nothing to decode (a JWT's alphabet): the common case, without copies.
                return v.to_owned();
            }
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Verifies the proof headers against every trusted WOPI client's keys (Microsoft's WOPI docs, "Proof keys").
async fn verify_proof(
    state: &HostCtx,
    headers: &HeaderMap,
    target: &str,
    token: &str,
) -> Result<(), GatewayError> {
    if state.settings().host_face.proof == ProofMode::Off {
        state.metrics.proof.with_label_values(&["off"]).inc();
        return Ok(());
    }
    // The URL as the client signed it: a base (with its path prefix, which the stack has
    // stripped from `target` when the request carried it) and the raw target. Clients on
    // the servers' side sign `internal_url`, the others `public_url`: the base whose
    // authority the request names is tried first, the other one after a failure.
    let settings = state.settings();
    let (public, internal) = (&settings.server.public_url, &settings.server.internal_url);
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut bases = vec![public.base()];
    if internal != public {
        if internal.has_authority(host) && !public.has_authority(host) {
            bases.insert(0, internal.base());
        } else {
            bases.push(internal.base());
        }
    }
    let urls: Vec<String> = bases.iter().map(|b| format!("{b}{target}")).collect();
    drop(settings);
    // The first candidate's failure is the one reported (the URL the request names).
    let mut outcome: Result<_, Option<ProofError>> = Err(None);
    for url in &urls {
        match verify_one(state, headers, url, token).await {
            Ok(v) => {
                outcome = Ok(v);
                break;
            }
            Err(e) => {
                if let Err(first @ None) = &mut outcome {
                    *first = Some(e);
                }
            }
        }
    }
    match outcome.map_err(|e| e.unwrap_or(ProofError::NoKeys)) {
        Ok(v) => {
            state
                .metrics
                .proof
                .with_label_values(&[if v.suggests_refresh() {
                    "ok_old_key"
                } else {
                    "ok"
                }])
                .inc();
            if v.suggests_refresh() {
                let cache = state.face.discovery.clone();
                tokio::spawn(async move { cache.refresh_rate_limited().await });
            }
            Ok(())
        }
        Err(e) => {
            state.metrics.proof.with_label_values(&[e.reason()]).inc();
            tracing::warn!(reason = e.reason(), signed_url = %crate::urls::redact(&urls[0]), "WOPI proof refused: {e}");
            Err(GatewayError::Proof(e))
        }
    }
}

/// Checks the proof headers for one candidate URL against every trusted client's keys,
/// re-fetching discovery (rate-limited) once when no key verifies.
async fn verify_one(
    state: &HostCtx,
    headers: &HeaderMap,
    url: &str,
    token: &str,
) -> Result<wopi::proof::verify::Verified, ProofError> {
    let input = ProofInput {
        access_token: token,
        url,
        timestamp: header(headers, h::TIMESTAMP),
        proof: header(headers, h::PROOF),
        proof_old: header(headers, h::PROOF_OLD),
    };
    let window = Some(Window {
        now_ticks: wopi::ticks::from_unix_ms(state.now_ms() as i64),
        future_skew_ticks: state.settings().host_face.proof_future_skew.as_secs() as i64
            * wopi::ticks::TICKS_PER_SECOND,
    });
    let check = |state: &HostCtx| {
        let mut first_err = ProofError::NoKeys;
        for (i, client) in state.face.discovery.clients().iter().enumerate() {
            match client.keys.verify(&input, window) {
                Ok(v) => return Ok(v),
                Err(e) if i == 0 => first_err = e,
                Err(_) => {}
            }
        }
        Err(first_err)
    };
    let mut result = check(state);
    if matches!(result, Err(ProofError::Signature | ProofError::NoKeys))
        && state.face.discovery.is_configured()
    {
        // The client may have rotated its keys: re-fetch (rate-limited) and try once more.
        if state.face.discovery.refresh_rate_limited().await {
            result = check(state);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_from_the_query() {
        assert_eq!(
            query_token("a=1&access_token=x%2By&access_token_ttl=0").as_deref(),
            Some("x+y")
        );
        assert_eq!(query_token("a=1"), None);
    }
}
