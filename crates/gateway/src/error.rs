//! [`GatewayError`]: the one place an error becomes an HTTP response, and is logged once.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use std::fmt;

/// Who is at fault (log level and metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The caller sent something wrong.
    Client,
    /// A peer we called failed.
    Upstream,
    /// Our own failure.
    Internal,
}

/// How an outgoing request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// Connection refused or reset, DNS failure.
    Connect,
    /// No answer in time.
    Timeout,
    /// An answer with an unexpected status.
    Status(u16),
    /// A malformed answer.
    Protocol,
}

impl UpstreamKind {
    /// Bounded metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            UpstreamKind::Connect => "connect",
            UpstreamKind::Timeout => "timeout",
            UpstreamKind::Status(_) => "status",
            UpstreamKind::Protocol => "protocol",
        }
    }
}

/// Everything a request can fail with.
#[derive(Debug)]
pub enum GatewayError {
    /// The IP allowlist of the route group refused the client.
    IpDenied,
    /// Malformed request (missing header, bad JSON, …).
    BadRequest(String),
    /// Missing, invalid or expired credentials.
    Unauthorized(String),
    /// Credentials valid but not for this (origin refused, wrong secret scope).
    Forbidden(String),
    /// Unknown file or resource.
    NotFound(&'static str),
    /// Wrong method for the endpoint.
    MethodNotAllowed,
    /// A WOPI lock conflict: 409 with `X-WOPI-Lock`.
    LockConflict(wopi::LockConflict),
    /// GetFile larger than `X-WOPI-MaxExpectedSize`.
    PreconditionFailed(String),
    /// Body over the route group's limit.
    PayloadTooLarge,
    /// Proof check failed: 500 with `X-WOPI-ServerError` (WOPI proof keys: a failed check answers 500).
    Proof(wopi::proof::ProofError),
    /// The lock store (Redis) cannot be reached.
    LockStoreUnavailable(String),
    /// Too many requests in flight.
    Overloaded,
    /// The request took longer than the total timeout.
    Timeout,
    /// Operation not implemented (WOPI 501).
    NotImplemented(&'static str),
    /// A peer we called failed.
    Upstream {
        /// What we were doing (bounded label).
        op: &'static str,
        /// How it failed.
        kind: UpstreamKind,
        /// Detail for the log.
        detail: String,
    },
    /// A WOPI host refused a call the gateway made (client face).
    HostRefused {
        /// The WOPI operation (bounded label).
        op: &'static str,
        /// What the host answered.
        refusal: HostRefusal,
    },
    /// Our own failure (I/O, invariant).
    Internal(String),
}

impl GatewayError {
    /// The response status. Exhaustive on purpose: a new variant must choose one.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            GatewayError::IpDenied => StatusCode::FORBIDDEN,
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::LockConflict(_) => StatusCode::CONFLICT,
            GatewayError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            GatewayError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::Proof(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::LockStoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Timeout => StatusCode::REQUEST_TIMEOUT,
            GatewayError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            GatewayError::Upstream {
                kind: UpstreamKind::Timeout,
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Upstream { .. } | GatewayError::HostRefused { .. } => {
                StatusCode::BAD_GATEWAY
            }
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Who is at fault.
    pub(crate) fn fault(&self) -> Fault {
        match self {
            GatewayError::IpDenied
            | GatewayError::BadRequest(_)
            | GatewayError::Unauthorized(_)
            | GatewayError::Forbidden(_)
            | GatewayError::NotFound(_)
            | GatewayError::MethodNotAllowed
            | GatewayError::LockConflict(_)
            | GatewayError::PreconditionFailed(_)
            | GatewayError::PayloadTooLarge
            | GatewayError::Proof(_)
            | GatewayError::NotImplemented(_)
            | GatewayError::Timeout => Fault::Client,
            GatewayError::Upstream { .. }
            | GatewayError::HostRefused { .. }
            | GatewayError::LockStoreUnavailable(_) => Fault::Upstream,
            GatewayError::Overloaded | GatewayError::Internal(_) => Fault::Internal,
        }
    }

    /// Bounded label for metrics and logs.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            GatewayError::IpDenied => "ip_denied",
            GatewayError::BadRequest(_) => "bad_request",
            GatewayError::Unauthorized(_) => "unauthorized",
            GatewayError::Forbidden(_) => "forbidden",
            GatewayError::NotFound(_) => "not_found",
            GatewayError::MethodNotAllowed => "method_not_allowed",
            GatewayError::LockConflict(_) => "lock_conflict",
            GatewayError::PreconditionFailed(_) => "precondition_failed",
            GatewayError::PayloadTooLarge => "payload_too_large",
            GatewayError::Proof(_) => "proof",
            GatewayError::LockStoreUnavailable(_) => "lock_store_unavailable",
            GatewayError::Overloaded => "overloaded",
            GatewayError::Timeout => "timeout",
            GatewayError::NotImplemented(_) => "not_implemented",
            GatewayError::Upstream { .. } => "upstream",
            GatewayError::HostRefused { .. } => "host_refused",
            GatewayError::Internal(_) => "internal",
        }
    }

    /// The short text a client may see (never internals).
    fn public_message(&self) -> String {
        match self {
            GatewayError::IpDenied => "forbidden: client address not allowed for this route".into(),
            GatewayError::BadRequest(m)
            | GatewayError::Unauthorized(m)
            | GatewayError::Forbidden(m) => m.clone(),
            GatewayError::PreconditionFailed(m) => m.clone(),
            GatewayError::NotFound(what) => format!("{what} not found"),
            GatewayError::MethodNotAllowed => "method not allowed".into(),
            GatewayError::LockConflict(c) => format!("lock conflict: {}", c.reason),
            GatewayError::PayloadTooLarge => "request body too large".into(),
            GatewayError::Proof(e) => format!("proof verification failed: {e}"),
            GatewayError::LockStoreUnavailable(_) => "lock store unavailable".into(),
            GatewayError::Overloaded => "overloaded, retry later".into(),
            GatewayError::Timeout => "request timed out".into(),
            GatewayError::NotImplemented(what) => format!("not implemented: {what}"),
            GatewayError::Upstream {
                op,
                kind: UpstreamKind::Timeout,
                ..
            } => format!("upstream timeout during {op}"),
            GatewayError::Upstream { op, .. } => format!("upstream failure during {op}"),
            GatewayError::HostRefused { op, refusal } => {
                format!("the WOPI host refused {op}: {refusal}")
            }
            GatewayError::Internal(_) => "internal error".into(),
        }
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayError::Upstream { op, kind, detail } => {
                write!(f, "upstream {op} failed ({}): {detail}", kind.label())
            }
            GatewayError::LockStoreUnavailable(d) => write!(f, "lock store unavailable: {d}"),
            GatewayError::Internal(d) => write!(f, "internal: {d}"),
            other => f.write_str(&other.public_message()),
        }
    }
}

impl std::error::Error for GatewayError {}

/// What a WOPI host answered when it refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRefusal {
    /// The HTTP status.
    pub status: u16,
    /// `X-WOPI-Lock` of the answer (the lock the host holds; empty: none).
    pub lock: Option<String>,
    /// `X-WOPI-LockFailureReason`, the host's words.
    pub reason: Option<String>,
}

impl HostRefusal {
    /// Reads the refusal headers of an answer.
    pub(crate) fn of<B>(resp: &http::Response<B>) -> Self {
        let get = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        HostRefusal {
            status: resp.status().as_u16(),
            lock: get(wopi::headers::LOCK),
            reason: get(wopi::headers::LOCK_FAILURE_REASON).filter(|r| !r.is_empty()),
        }
    }

    /// A 409 with an empty (or no) `X-WOPI-Lock`: the file is not locked at all — the host's
    /// lock expired or was cleaned up.
    pub(crate) fn lock_lost(&self) -> bool {
        self.status == 409 && self.lock.as_deref().unwrap_or("").is_empty()
    }
}

impl std::fmt::Display for HostRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host answered {}", self.status)?;
        if self.status == 409 {
            match self.lock.as_deref().filter(|l| !l.is_empty()) {
                Some(l) => write!(f, " (the file is locked by `{l}`)")?,
                None => f.write_str(" (the file is not locked)")?,
            }
        }
        if let Some(r) = &self.reason {
            write!(f, " (X-WOPI-LockFailureReason: {r})")?;
        }
        Ok(())
    }
}

impl From<locks::LockError> for GatewayError {
    fn from(e: locks::LockError) -> Self {
        match e {
            locks::LockError::Conflict(c) => GatewayError::LockConflict(c),
            locks::LockError::Unavailable(d) => GatewayError::LockStoreUnavailable(d),
        }
    }
}

impl From<std::io::Error> for GatewayError {
    fn from(e: std::io::Error) -> Self {
        GatewayError::Internal(format!("I/O: {e}"))
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = crate::urls::redact(&self.to_string()).into_owned();
        match self.fault() {
            Fault::Client => {
                tracing::info!(status = status.as_u16(), kind = self.kind(), %error, "request refused")
            }
            Fault::Upstream => {
                tracing::warn!(status = status.as_u16(), kind = self.kind(), %error, "upstream failure")
            }
            Fault::Internal => {
                tracing::error!(status = status.as_u16(), kind = self.kind(), %error, "request failed")
            }
        }
        let mut resp = (
            status,
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.public_message() + "\n",
        )
            .into_response();
        let headers = resp.headers_mut();
        match &self {
            GatewayError::LockConflict(c) => {
                headers.insert(
                    wopi::headers::LOCK,
                    HeaderValue::from_str(&c.current).unwrap_or(HeaderValue::from_static("")),
                );
                headers.insert(
                    wopi::headers::LOCK_FAILURE_REASON,
                    HeaderValue::from_static(c.reason),
                );
            }
            GatewayError::Proof(e) => {
                if let Ok(v) = HeaderValue::from_str(&format!("proof verification failed: {e}")) {
                    headers.insert(wopi::headers::SERVER_ERROR, v);
                }
            }
            GatewayError::Internal(_) | GatewayError::LockStoreUnavailable(_) => {
                headers.insert(
                    wopi::headers::SERVER_ERROR,
                    HeaderValue::from_static("internal error"),
                );
            }
            _ => {}
        }
        resp
    }
}
