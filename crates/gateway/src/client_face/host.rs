//! Calls to WOPI hosts, each signed with the gateway's proof key (spec §7.7).

use crate::app::AppState;
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
pub struct Call<'a> {
    /// `WOPISrc`
    pub wopi_src: &'a str,
    /// Path after WOPISrc: "" or "/contents".
    pub suffix: &'a str,
    /// The user's access token.
    pub token: &'a str,
    /// Metric label and log name.
    pub op: &'static str,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The URL of a call: `{WOPISrc}{suffix}?access_token=…` (query keys of WOPISrc kept).
pub fn url(call: &Call<'_>) -> String {
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
pub async fn send(
    state: &AppState,
    call: &Call<'_>,
    method: http::Method,
    headers: &[(&'static str, String)],
    body: Body,
) -> Result<Response<Incoming>, GatewayError> {
    let url = url(call);
    let cf = state.client.keys();
    let proof = cf
        .current
        .sign(
            cf.old.as_deref(),
            call.token,
            &url,
            wopi::ticks::from_unix_ms(now_ms()),
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
    let status = resp.as_ref().map_or("error", |r| {
        crate::metrics::status_class(r.status().as_u16())
    });
    state
        .metrics
        .host_calls
        .with_label_values(&[call.op, status])
        .inc();
    tracing::info!(
        op = call.op,
        status,
        elapsed_ms = started.elapsed().as_millis() as u64,
        stage = call.op,
        "WOPI call to host"
    );
    resp
}

/// Like [`send`], failing on a non-2xx answer (with its status).
pub async fn send_ok(
    state: &AppState,
    call: &Call<'_>,
    method: http::Method,
    headers: &[(&'static str, String)],
    body: Body,
) -> Result<Response<Incoming>, GatewayError> {
    let resp = send(state, call, method, headers, body).await?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let lock = resp
        .headers()
        .get(h::LOCK)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Err(GatewayError::Upstream {
        op: call.op,
        kind: UpstreamKind::Status(status),
        detail: match lock {
            Some(l) if status == 409 => format!("host answered 409 (current lock `{l}`)"),
            _ => format!("host answered {status}"),
        },
    })
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
pub async fn lock_op(
    state: &AppState,
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
    send_ok(
        state,
        &call,
        http::Method::POST,
        &[
            (h::OVERRIDE, over.to_owned()),
            (h::LOCK, lock_id.to_owned()),
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
