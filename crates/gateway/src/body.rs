//! Request bodies read whole (small ones) and the body-limit error they may meet.

use crate::error::GatewayError;
use axum::body::Body;
use http_body_util::BodyExt as _;

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

/// Reads a whole (small) body, refusing more than `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, GatewayError> {
    let collected = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if is_body_limit(e.as_ref()) {
                GatewayError::PayloadTooLarge
            } else {
                GatewayError::BadRequest(format!("request body interrupted: {e}"))
            }
        })?;
    Ok(collected.to_bytes())
}
