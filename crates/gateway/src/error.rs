//! [`GatewayError`]: the one place an error becomes an HTTP response, and is logged once.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

/// The methods the public listener serves (`Allow` of a 405 for CONNECT, and of `OPTIONS *`).
pub(crate) const ALLOW: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

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

/// Which credential an authentication failure concerns. This is the one table of how such
/// failures answer (docs/architecture.md, "The request path"): tokens the gateway issued and
/// the admin token answer 401; signatures of a peer over its own request (ONLYOFFICE Docs'
/// JWTs) answer 403, as Docs' integrations expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The host face's WOPI access token.
    AccessToken,
    /// The token of a delivery's download URL.
    DownloadToken,
    /// The token of a CheckFileInfo `FileUrl`.
    FileUrlToken,
    /// The editor page's action token (Save As, Rename).
    ActionToken,
    /// The session token of a CheckFileInfo `HostEditUrl` / `HostViewUrl`.
    HostPageToken,
    /// An integrator's signed editor config.
    IntegratorConfig,
    /// ONLYOFFICE Docs' JWT on its requests (document.url, conversions).
    DocsRequest,
    /// ONLYOFFICE Docs' JWT on a callback.
    DocsCallback,
}

impl Credential {
    /// What the message calls it.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Credential::AccessToken => "access token",
            Credential::DownloadToken => "download token",
            Credential::FileUrlToken => "FileUrl token",
            Credential::ActionToken => "action token",
            Credential::HostPageToken => "host page token",
            Credential::IntegratorConfig => "editor config token",
            Credential::DocsRequest => "Docs token",
            Credential::DocsCallback => "callback token",
        }
    }

    /// The status a refusal of this credential answers.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Credential::DocsRequest | Credential::DocsCallback => StatusCode::FORBIDDEN,
            Credential::AccessToken
            | Credential::DownloadToken
            | Credential::FileUrlToken
            | Credential::ActionToken
            | Credential::HostPageToken
            | Credential::IntegratorConfig => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Everything a request can fail with. `Display` is the text for the log (with the source
/// chain logged after it); `GatewayError::public_message` what a client may see.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The IP allowlist of the route group refused the client.
    #[error("client address not allowed for this route")]
    IpDenied,
    /// Malformed request (missing header, bad JSON, …).
    #[error("{0}")]
    BadRequest(String),
    /// A body of a type the route does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Missing credentials (or ones refused for a reason not in a JWT).
    #[error("{0}")]
    Unauthorized(String),
    /// A credential that did not verify.
    #[error("{} refused: {source}", credential.what())]
    Token {
        /// Which credential.
        credential: Credential,
        /// Why it did not verify.
        #[source]
        source: docs_api::JwtError,
    },
    /// Credentials valid but not for this (origin refused, wrong secret scope).
    #[error("{0}")]
    Forbidden(String),
    /// Unknown file or resource.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No route for this (with the reason).
    #[error("{0}")]
    NoRoute(String),
    /// Wrong method for the endpoint.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A request refused by a rule of HTTP/1.1 framing (the `h1` module): a head the front
    /// does not pass on, a malformed or short body, a stalled body (408).
    #[error("request refused by the HTTP rule {}", .0.rule)]
    Refused(h1::Reject),
    /// A WOPI lock conflict: 409 with `X-WOPI-Lock`.
    #[error("lock conflict: {}", .0.reason)]
    LockConflict(wopi::LockConflict),
    /// GetFile larger than `X-WOPI-MaxExpectedSize`.
    #[error("{0}")]
    PreconditionFailed(String),
    /// Body over the route group's limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Proof check failed: 500 with `X-WOPI-ServerError` (WOPI proof keys: a failed check answers 500).
    #[error("proof verification failed")]
    Proof(#[source] wopi::proof::ProofError),
    /// The lock store (Redis) cannot be reached.
    #[error("lock store unavailable: {0}")]
    LockStoreUnavailable(String),
    /// Shared state or content cannot be reached: `service` names which (Redis, the
    /// content store). Answered 503; never replaced by a local fallback.
    #[error("{service} unavailable: {detail}")]
    Unavailable {
        /// "Redis", "Redis replication", "local state", "shared state" or "content store".
        service: &'static str,
        /// What failed.
        detail: String,
    },
    /// A feature needs a setting that is not there.
    #[error("{0}")]
    NotConfigured(String),
    /// Too many requests in flight.
    #[error("overloaded, retry later")]
    Overloaded,
    /// The request took longer than the total timeout.
    #[error("request timed out")]
    Timeout,
    /// Operation not implemented (WOPI 501).
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// A peer we called failed.
    #[error("upstream {op} failed ({}): {detail}", kind.label())]
    Upstream {
        /// What we were doing (bounded label).
        op: &'static str,
        /// How it failed.
        kind: UpstreamKind,
        /// Detail for the log.
        detail: String,
    },
    /// A WOPI host refused a call the gateway made (client face).
    #[error("the WOPI host refused {op}: {refusal}")]
    HostRefused {
        /// The WOPI operation (bounded label).
        op: &'static str,
        /// What the host answered.
        refusal: HostRefusal,
    },
    /// Local I/O failed (spool, data directory).
    #[error("I/O failed")]
    Io(#[from] std::io::Error),
    /// Our own failure (an invariant).
    #[error("internal: {0}")]
    Internal(String),
}

impl GatewayError {
    /// A refusal of `credential` (for `map_err`).
    pub(crate) fn token(credential: Credential) -> impl FnOnce(docs_api::JwtError) -> Self {
        move |source| GatewayError::Token { credential, source }
    }

    /// The response status. Exhaustive on purpose: a new variant must choose one.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            GatewayError::IpDenied => StatusCode::FORBIDDEN,
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            GatewayError::Token { credential, .. } => credential.status(),
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::NotFound(_) | GatewayError::NoRoute(_) => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::Refused(r) => {
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            GatewayError::LockConflict(_) => StatusCode::CONFLICT,
            GatewayError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            GatewayError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::Proof(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::LockStoreUnavailable(_)
            | GatewayError::Unavailable { .. }
            | GatewayError::NotConfigured(_)
            | GatewayError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Timeout => StatusCode::REQUEST_TIMEOUT,
            GatewayError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            GatewayError::Upstream {
                kind: UpstreamKind::Timeout,
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Upstream { .. } | GatewayError::HostRefused { .. } => {
                StatusCode::BAD_GATEWAY
            }
            GatewayError::Io(_) | GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Who is at fault.
    pub(crate) fn fault(&self) -> Fault {
        match self {
            GatewayError::IpDenied
            | GatewayError::BadRequest(_)
            | GatewayError::UnsupportedMediaType(_)
            | GatewayError::Unauthorized(_)
            | GatewayError::Token { .. }
            | GatewayError::Forbidden(_)
            | GatewayError::NotFound(_)
            | GatewayError::NoRoute(_)
            | GatewayError::MethodNotAllowed
            | GatewayError::Refused(_)
            | GatewayError::LockConflict(_)
            | GatewayError::PreconditionFailed(_)
            | GatewayError::PayloadTooLarge
            | GatewayError::Proof(_)
            | GatewayError::NotImplemented(_)
            | GatewayError::Timeout => Fault::Client,
            GatewayError::Upstream { .. }
            | GatewayError::HostRefused { .. }
            | GatewayError::LockStoreUnavailable(_)
            | GatewayError::Unavailable { .. } => Fault::Upstream,
            GatewayError::NotConfigured(_)
            | GatewayError::Overloaded
            | GatewayError::Io(_)
            | GatewayError::Internal(_) => Fault::Internal,
        }
    }

    /// Bounded label for metrics and logs.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            GatewayError::IpDenied => "ip_denied",
            GatewayError::BadRequest(_) | GatewayError::UnsupportedMediaType(_) => "bad_request",
            GatewayError::Unauthorized(_) | GatewayError::Token { .. } => "unauthorized",
            GatewayError::Forbidden(_) => "forbidden",
            GatewayError::NotFound(_) | GatewayError::NoRoute(_) => "not_found",
            GatewayError::MethodNotAllowed => "method_not_allowed",
            GatewayError::Refused(_) => "refused",
            GatewayError::LockConflict(_) => "lock_conflict",
            GatewayError::PreconditionFailed(_) => "precondition_failed",
            GatewayError::PayloadTooLarge => "payload_too_large",
            GatewayError::Proof(_) => "proof",
            GatewayError::LockStoreUnavailable(_) => "lock_store_unavailable",
            GatewayError::Unavailable { service, .. } => match *service {
                "Redis" => "redis_unavailable",
                "Redis replication" => "redis_replication_unavailable",
                "local state" => "local_state_unavailable",
                "shared state" => "shared_state_busy",
                _ => "content_store_unavailable",
            },
            GatewayError::NotConfigured(_) => "not_configured",
            GatewayError::Overloaded => "overloaded",
            GatewayError::Timeout => "timeout",
            GatewayError::NotImplemented(_) => "not_implemented",
            GatewayError::Upstream { .. } => "upstream",
            GatewayError::HostRefused { .. } => "host_refused",
            GatewayError::Io(_) | GatewayError::Internal(_) => "internal",
        }
    }

    /// The short text a client may see (never internals).
    pub(crate) fn public_message(&self) -> String {
        match self {
            GatewayError::IpDenied => "forbidden: client address not allowed for this route".into(),
            GatewayError::Token { credential, source } => {
                format!("{} refused: {source}", credential.what())
            }
            GatewayError::Proof(e) => format!("proof verification failed: {e}"),
            GatewayError::LockStoreUnavailable(_) => "lock store unavailable".into(),
            GatewayError::Unavailable { service, .. } => {
                format!("{service} unavailable, retry later")
            }
            GatewayError::Upstream {
                op,
                kind: UpstreamKind::Timeout,
                ..
            } => format!("upstream timeout during {op}"),
            GatewayError::Upstream { op, .. } => format!("upstream failure during {op}"),
            GatewayError::Io(_) | GatewayError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }

    /// The error and every source under it, for the one log line.
    pub(crate) fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            s.push_str(": ");
            s.push_str(&e.to_string());
            cur = e.source();
        }
        s
    }

    /// Logs the error once, with its chain, at the level its fault deserves.
    fn log(&self, status: StatusCode) {
        let error = crate::urls::redact(&self.chain()).into_owned();
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
    }

    /// The HTML rendering for browser routes (editor and conversion pages): the same status
    /// and public message, as a page a person reads. Logged once, like the plain rendering.
    pub(crate) fn into_page(self) -> Response {
        let status = self.status();
        self.log(status);
        crate::html::error_page(status, &self.public_message())
    }

    /// The `result` label of the client face's page metrics.
    pub(crate) fn page_result(&self) -> &'static str {
        match self {
            GatewayError::Forbidden(_) | GatewayError::IpDenied => "refused",
            GatewayError::Upstream { .. } | GatewayError::HostRefused { .. } => "host_error",
            GatewayError::NotConfigured(_) => "not_configured",
            GatewayError::Io(_) | GatewayError::Internal(_) => "error",
            _ => "bad_request",
        }
    }
}

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

impl From<crate::cluster::SharedError> for GatewayError {
    fn from(e: crate::cluster::SharedError) -> Self {
        GatewayError::Unavailable {
            service: e.service,
            detail: e.detail,
        }
    }
}

impl From<crate::random::RandomError> for GatewayError {
    fn from(e: crate::random::RandomError) -> Self {
        GatewayError::Internal(e.to_string())
    }
}

impl GatewayError {
    /// A content-store failure.
    pub(crate) fn content(e: std::io::Error) -> Self {
        GatewayError::Unavailable {
            service: "content store",
            detail: e.to_string(),
        }
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

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        self.log(status);
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
            GatewayError::Refused(r) => {
                // The bytes after a refused head cannot be trusted to start a request.
                headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                if r.status == 405 {
                    headers.insert(http::header::ALLOW, HeaderValue::from_static(ALLOW));
                }
            }
            GatewayError::Internal(_)
            | GatewayError::Io(_)
            | GatewayError::LockStoreUnavailable(_) => {
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
