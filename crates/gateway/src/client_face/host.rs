//! Calls to WOPI hosts, each signed with the gateway's proof key (Microsoft's WOPI docs, "Proof keys").

use crate::client_face::ClientCtx;
pub(crate) use crate::error::HostRefusal;
use crate::error::{GatewayError, UpstreamKind};
use axum::body::Body;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use std::time::Duration;
use wopi::headers as h;

/// Time allowed for one call to a host.
const HOST_TIMEOUT: Duration = Duration::from_secs(120);

/// What to call.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    /// `WOPISrc`
    pub wopi_src: &'a str,
    /// Path after WOPISrc: "" or "/contents".
    pub suffix: &'a str,
    /// The user's access token.
    pub token: &'a str,
    /// Metric label and log name.
    pub op: &'static str,
}

/// The URL of a call: `{WOPISrc}{suffix}?access_token=…` (query keys of WOPISrc kept).
pub(crate) fn url(call: &Call<'_>) -> String {
    let token = utf8_percent_encode(call.token, NON_ALPHANUMERIC);
    let (base, query) = match call.wopi_src.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (call.wopi_src, None),
    };
    match query {
        Some(q) if !q.is_empty() => format!("{base}{}?{q}&access_token={token}", call.suffix),
        _ => format!("{base}{}?access_token={token}", call.suffix),
    }
}

/// Sends a signed request; `build` adds method-specific headers and the body.
pub(crate) async fn send(
    state: &ClientCtx,
    call: &Call<'_>,
    method: http::Method,
    headers: &[(&'static str, String)],
    body: Body,
) -> Result<Response<Incoming>, GatewayError> {
    let url = url(call);
    let cf = state.face.keys();
    let proof = cf
        .current
        .sign(
            cf.old.as_deref(),
            call.token,
            &url,
            wopi::ticks::from_unix_ms(state.now_ms() as i64),
        )
        .map_err(|e| GatewayError::Internal(format!("signing a WOPI request: {e}")))?;
    let mut req = Request::builder().method(method).uri(&url);
    req = req
        .header(h::TIMESTAMP, &proof.timestamp)
        .header(h::PROOF, &proof.proof)
        .header(h::PROOF_OLD, &proof.proof_old)
        .header(
            h::CLIENT_VERSION,
            concat!("wopi-gateway/", env!("CARGO_PKG_VERSION")),
        )
        .header(h::CORRELATION_ID, correlation_id()?)
        .header(
            http::header::USER_AGENT,
            concat!("wopi-gateway/", env!("CARGO_PKG_VERSION")),
        );
    if state.settings().client_face.send_authorization_header {
        let bearer = HeaderValue::from_str(&format!("Bearer {}", call.token)).map_err(|_| {
            GatewayError::BadRequest("the access token cannot be sent as a header".into())
        })?;
        req = req.header(http::header::AUTHORIZATION, bearer);
    }
    for (k, v) in headers {
        let value = HeaderValue::from_str(v)
            .map_err(|_| GatewayError::BadRequest(format!("{k} cannot be sent as a header")))?;
        req = req.header(*k, value);
    }
    let req = req
        .body(body)
        .map_err(|e| GatewayError::BadRequest(format!("bad WOPISrc: {e}")))?;
    let started = tokio::time::Instant::now();
    let resp = state
        .http
        .send_with_timeout("wopi_host", req, HOST_TIMEOUT)
        .await;
    let code = resp.as_ref().map_or(0, |r| r.status().as_u16());
    let class = if code == 0 {
        "error"
    } else {
        crate::metrics::status_class(code)
    };
    state
        .metrics
        .host_calls
        .with_label_values(&[call.op, class])
        .inc();
    let reason = resp.as_ref().ok().and_then(|r| {
        r.headers()
            .get(h::LOCK_FAILURE_REASON)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    tracing::info!(
        op = call.op,
        status = code,
        lock_failure_reason = reason.as_deref(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        stage = call.op,
        "WOPI call to host"
    );
    resp
}

/// Like [`send`], failing on a non-2xx answer (with its status).
pub(crate) async fn send_ok(
    state: &ClientCtx,
    call: &Call<'_>,
    method: http::Method,
    headers: &[(&'static str, String)],
    body: Body,
) -> Result<Response<Incoming>, GatewayError> {
    let resp = send(state, call, method, headers, body).await?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(GatewayError::HostRefused {
        op: call.op,
        refusal: HostRefusal::of(&resp),
    })
}

/// Signed CheckFileInfo (extra headers such as `X-WOPI-SessionContext` in `headers`).
pub(crate) async fn check_file_info(
    state: &ClientCtx,
    wopi_src: &str,
    token: &str,
    headers: &[(&'static str, String)],
) -> Result<wopi::CheckFileInfo, GatewayError> {
    let call = Call {
        wopi_src,
        suffix: "",
        token,
        op: "CheckFileInfo",
    };
    let resp = send_ok(state, &call, http::Method::GET, headers, Body::empty()).await?;
    let protocol = |detail: String| GatewayError::Upstream {
        op: "CheckFileInfo",
        kind: UpstreamKind::Protocol,
        detail,
    };
    let json = http_body_util::BodyExt::collect(http_body_util::Limited::new(
        resp.into_body(),
        4 * 1024 * 1024,
    ))
    .await
    .map_err(|e| protocol(format!("CheckFileInfo body: {e}")))?
    .to_bytes();
    serde_json::from_slice(&json)
        .map_err(|e| protocol(format!("CheckFileInfo is not valid JSON: {e}")))
}

/// What the file must still be for a lost lock to be taken again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expected {
    /// `Version` at open or after the gateway's last PutFile (when the host said).
    pub version: Option<String>,
    /// `LastModifiedTime` at open or from the last PutFile answer.
    pub last_modified: Option<String>,
}

/// Why a lost lock was not taken again.
#[derive(Debug)]
pub(crate) enum RelockError {
    /// The file changed since this session opened or last saved it: a save now would
    /// overwrite someone else's edit.
    Changed(String),
    /// A host call failed.
    Host(GatewayError),
}

impl std::fmt::Display for RelockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelockError::Changed(why) => write!(f, "not re-locked: {why}"),
            RelockError::Host(e) => write!(f, "not re-locked: {e}"),
        }
    }
}

/// Re-acquires a lock the host lost (it answered 409 with no lock) with the same lock id,
/// when the file is still the one this session opened or last saved.
pub(crate) async fn relock(
    state: &ClientCtx,
    wopi_src: &str,
    token: &str,
    lock_id: &str,
    expected: &Expected,
) -> Result<(), RelockError> {
    let info = check_file_info(
        state,
        wopi_src,
        token,
        &[(h::SESSION_ID, lock_id.to_owned())],
    )
    .await
    .map_err(RelockError::Host)?;
    let same = match (&expected.version, &expected.last_modified) {
        (Some(v), _) if !info.version.is_empty() => *v == info.version,
        (_, Some(t)) => info.last_modified_time.as_deref() == Some(t.as_str()),
        _ => false,
    };
    if !same {
        return Err(RelockError::Changed(format!(
            "the file's version is `{}` (last modified {}), expected `{}` (last modified {})",
            info.version,
            info.last_modified_time.as_deref().unwrap_or("?"),
            expected.version.as_deref().unwrap_or("?"),
            expected.last_modified.as_deref().unwrap_or("?"),
        )));
    }
    lock_op(state, wopi_src, token, "Lock", lock_id)
        .await
        .map_err(RelockError::Host)?;
    state
        .metrics
        .lock_refreshes
        .with_label_values(&["relocked"])
        .inc();
    tracing::info!(
        stage = "relock",
        "the host had lost the lock: locked again with the same id"
    );
    Ok(())
}

fn correlation_id() -> Result<String, GatewayError> {
    let hex = crate::random::hex::<16>()?;
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// A lock operation (LOCK, REFRESH_LOCK, UNLOCK) with the session's lock id.
pub(crate) async fn lock_op(
    state: &ClientCtx,
    wopi_src: &str,
    token: &str,
    op: &'static str,
    lock_id: &str,
) -> Result<(), GatewayError> {
    let call = Call {
        wopi_src,
        suffix: "",
        token,
        op,
    };
    let over = match op {
        "Lock" => "LOCK",
        "RefreshLock" => "REFRESH_LOCK",
        _ => "UNLOCK",
    };
    // The lock id is the session's Docs key: it is the session id too.
    send_ok(
        state,
        &call,
        http::Method::POST,
        &[
            (h::OVERRIDE, over.to_owned()),
            (h::LOCK, lock_id.to_owned()),
            (h::SESSION_ID, lock_id.to_owned()),
            ("content-length", "0".to_owned()),
        ],
        Body::empty(),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = Call {
            wopi_src: "https://h/wopi/files/a!b",
            suffix: "/contents",
            token: "t k/=",
            op: "GetFile",
        };
        assert_eq!(
            url(&c),
            "https://h/wopi/files/a!b/contents?access_token=t%20k%2F%3D"
        );
        let c = Call {
            wopi_src: "https://h/wopi/files/1?tenant=x",
            suffix: "",
            token: "t",
            op: "CheckFileInfo",
        };
        assert_eq!(url(&c), "https://h/wopi/files/1?tenant=x&access_token=t");
    }
}
