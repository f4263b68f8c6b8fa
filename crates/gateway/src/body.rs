//! Request bodies read whole (small ones) and the body-limit error they may meet.

use crate::error::GatewayError;
use axum::body::Body;
use http_body_util::BodyExt as _;
use std::future::Future as _;

/// Whether a body error came from the body limit (→ 413).
pub(crate) fn is_body_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A request body that stalled: no byte for `server.body_idle_timeout_seconds`.
#[derive(Debug, thiserror::Error)]
#[error("request body stalled: no byte within {0:?}")]
pub(crate) struct BodyStalled(pub std::time::Duration);

/// Whether a body error is a stalled body (→ 408).
pub(crate) fn is_body_stalled(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<BodyStalled>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A request body that fails with [`BodyStalled`] when no frame arrives for `idle`
/// (counted in `http_timeouts_total{phase="body"}`).
pub(crate) struct IdleBody {
    inner: Body,
    idle: std::time::Duration,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    timeouts: prometheus::IntCounter,
}

impl IdleBody {
    pub(crate) fn new(
        inner: Body,
        idle: std::time::Duration,
        timeouts: prometheus::IntCounter,
    ) -> Self {
        IdleBody {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            timeouts,
        }
    }
}

impl http_body::Body for IdleBody {
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            std::task::Poll::Ready(r) => {
                let deadline = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(deadline);
                std::task::Poll::Ready(r.map(|f| f.map_err(Into::into)))
            }
            std::task::Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.timeouts.inc();
                    tracing::info!(idle_seconds = this.idle.as_secs(), "request body stalled");
                    return std::task::Poll::Ready(Some(Err(Box::new(BodyStalled(this.idle)))));
                }
                std::task::Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A request body streamed into the content store that stopped: the answer (413 over the
/// limit, 408 stalled, 400 cut short, the content store's error for a failed write).
pub(crate) fn upload_error(err: crate::spool::StreamError<axum::Error>) -> GatewayError {
    use crate::spool::StreamError;
    match err {
        StreamError::TooLarge => GatewayError::PayloadTooLarge,
        StreamError::Source(s) if is_body_limit(&s) => GatewayError::PayloadTooLarge,
        StreamError::Source(s) if is_body_stalled(&s) => {
            GatewayError::Refused(h1::Reject::new(408, "body-idle-timeout"))
        }
        StreamError::Source(s) => {
            GatewayError::BadRequest(format!("request body interrupted: {s}"))
        }
        StreamError::Io(io) => GatewayError::content(io),
    }
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, GatewayError> {
    let collected = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if is_body_limit(e.as_ref()) {
                GatewayError::PayloadTooLarge
            } else if is_body_stalled(e.as_ref()) {
                GatewayError::Refused(h1::Reject::new(408, "body-idle-timeout"))
            } else {
                GatewayError::BadRequest(format!("request body interrupted: {e}"))
            }
        })?;
    Ok(collected.to_bytes())
}
