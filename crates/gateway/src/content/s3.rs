//! `store = "s3"`: an S3-compatible bucket, spoken to with presigned requests (signed by
//! `rusty-s3`, sent by the gateway's own HTTP client). Writes are streamed: bodies up to one
//! part go up as one PutObject, larger ones as a multipart upload of [`PART_SIZE`] parts, one
//! part in memory at a time; a write is durable once S3 answered the PutObject or the
//! CompleteMultipartUpload (AWS S3 API reference).

use crate::http_client::HttpClient;
use crate::settings::S3Settings;
use crate::spool::{StreamError, Written};
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use http_body_util::BodyExt as _;
use ring::digest::{Context, SHA256};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Size of one multipart part (S3's minimum is 5 MiB, except the last).
pub(crate) const PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's smallest part but the last.
const MIN_PART: usize = 5 * 1024 * 1024;
/// Lifetime of a presigned request.
const SIGN_TTL: Duration = Duration::from_secs(600);
/// Largest S3 answer read whole (listings, errors, upload ids).
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// The bucket and how to reach it.
#[derive(Clone)]
pub(crate) struct S3Store {
    bucket: Arc<Bucket>,
    credentials: Arc<Credentials>,
    http: HttpClient,
    describe: String,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl S3Store {
    /// The bucket of `s` (nothing is sent yet).
    pub(crate) fn new(s: &S3Settings, http: HttpClient) -> io::Result<Self> {
        let endpoint: url::Url = s.endpoint.parse().map_err(other)?;
        let style = if s.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket =
            Bucket::new(endpoint, style, s.bucket.clone(), s.region.clone()).map_err(other)?;
        Ok(S3Store {
            bucket: Arc::new(bucket),
            credentials: Arc::new(Credentials::new(
                s.access_key_id.clone(),
                s.secret_access_key.clone(),
            )),
            http,
            describe: format!("S3 bucket {} at {}", s.bucket, s.endpoint),
        })
    }

    pub(crate) fn locate(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket.name())
    }

    pub(crate) fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn call(
        &self,
        method: http::Method,
        url: url::Url,
        body: Body,
    ) -> io::Result<http::Response<hyper::body::Incoming>> {
        let req = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .body(body)
            .map_err(other)?;
        self.http
            .send("s3", req)
            .await
            .map_err(|e| other(e.chain()))
    }

    /// Sends, reads the whole answer, and fails unless it is a success.
    async fn call_ok(
        &self,
        method: http::Method,
        url: url::Url,
        body: Body,
    ) -> io::Result<(http::HeaderMap, Bytes)> {
        let resp = self.call(method.clone(), url, body).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(other)?
            .to_bytes();
        if !status.is_success() {
            return Err(other(format!(
                "S3 {method} answered {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            )));
        }
        Ok((headers, bytes))
    }

    pub(crate) async fn write<S, E>(
        &self,
        key: &str,
        mut body: S,
        limit: u64,
    ) -> Result<Written, StreamError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let mut hash = Context::new(&SHA256);
        let mut size = 0u64;
        let mut buf = BytesMut::with_capacity(PART_SIZE);
        let mut upload: Option<(String, Vec<String>)> = None;
        let result = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(StreamError::Source)?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(StreamError::TooLarge);
                }
                hash.update(&chunk);
                // A part goes up before the buffer would grow past PART_SIZE: the buffer is
                // allocated once at its final size and never reallocated while it fills.
                if buf.len() >= MIN_PART && buf.len() + chunk.len() > PART_SIZE {
                    let part = std::mem::take(&mut buf).freeze();
                    self.upload_part(key, &mut upload, part.clone())
                        .await
                        .map_err(StreamError::Io)?;
                    // The sent part's memory holds the next one (one buffer per upload).
                    buf = part.try_into_mut().map_or_else(
                        |_| BytesMut::with_capacity(PART_SIZE),
                        |mut b| {
                            b.clear();
                            b
                        },
                    );
                }
                buf.extend_from_slice(&chunk);
            }
            let rest = buf.split().freeze();
            match &mut upload {
                None => {
                    let url = self
                        .bucket
                        .put_object(Some(&self.credentials), key)
                        .sign(SIGN_TTL);
                    self.call_ok(http::Method::PUT, url, Body::from(rest))
                        .await
                        .map_err(StreamError::Io)?;
                }
                Some(_) => {
                    if !rest.is_empty() {
                        self.upload_part(key, &mut upload, rest)
                            .await
                            .map_err(StreamError::Io)?;
                    }
                    let Some((id, etags)) = &upload else {
                        unreachable!()
                    };
                    let complete = self.bucket.complete_multipart_upload(
                        Some(&self.credentials),
                        key,
                        id,
                        etags.iter().map(String::as_str),
                    );
                    let url = complete.sign(SIGN_TTL);
                    let xml = complete.body();
                    let (_, answer) = self
                        .call_ok(http::Method::POST, url, Body::from(xml))
                        .await
                        .map_err(StreamError::Io)?;
                    // S3 may answer 200 with an error document for a failed completion.
                    if String::from_utf8_lossy(&answer).contains("<Error>") {
                        return Err(StreamError::Io(other(format!(
                            "S3 CompleteMultipartUpload failed: {}",
                            String::from_utf8_lossy(&answer)
                        ))));
                    }
                }
            }
            Ok(())
        }
        .await;
        if let (Err(_), Some((id, _))) = (&result, &upload) {
            let url = self
                .bucket
                .abort_multipart_upload(Some(&self.credentials), key, id)
                .sign(SIGN_TTL);
            if let Err(e) = self.call_ok(http::Method::DELETE, url, Body::empty()).await {
                tracing::warn!(key, error = %e, "cannot abort a failed multipart upload; the bucket's lifecycle rules clean it up");
            }
        }
        result.map(|()| Written {
            size,
            sha256: {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(hash.finish().as_ref())
            },
        })
    }

    async fn upload_part(
        &self,
        key: &str,
        upload: &mut Option<(String, Vec<String>)>,
        part: Bytes,
    ) -> io::Result<()> {
        if upload.is_none() {
            let url = self
                .bucket
                .create_multipart_upload(Some(&self.credentials), key)
                .sign(SIGN_TTL);
            let (_, answer) = self.call_ok(http::Method::POST, url, Body::empty()).await?;
            let created =
                rusty_s3::actions::CreateMultipartUpload::parse_response(&answer).map_err(other)?;
            *upload = Some((created.upload_id().to_owned(), Vec::new()));
        }
        let Some((id, etags)) = upload else {
            return Err(other("no multipart upload"));
        };
        let number = u16::try_from(etags.len() + 1).map_err(|_| other("more than 65535 parts"))?;
        let url = self
            .bucket
            .upload_part(Some(&self.credentials), key, number, id)
            .sign(SIGN_TTL);
        let (headers, _) = self
            .call_ok(http::Method::PUT, url, Body::from(part))
            .await?;
        let etag = headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| other("S3 UploadPart answered without an ETag"))?;
        etags.push(etag.to_owned());
        Ok(())
    }

    pub(crate) async fn open(&self, key: &str) -> io::Result<Option<super::Content>> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(SIGN_TTL);
        let resp = self.call(http::Method::GET, url, Body::empty()).await?;
        match resp.status() {
            http::StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => return Err(other(format!("S3 GET answered {s}"))),
            _ => {}
        }
        let size = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| other("S3 GET answered without Content-Length"))?;
        let stream = resp
            .into_body()
            .into_data_stream()
            .map(|r| r.map_err(other));
        Ok(Some(super::Content {
            size,
            stream: Box::pin(stream),
        }))
    }

    pub(crate) async fn delete(&self, key: &str) -> io::Result<()> {
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), key)
            .sign(SIGN_TTL);
        let resp = self.call(http::Method::DELETE, url, Body::empty()).await?;
        match resp.status() {
            s if s.is_success() || s == http::StatusCode::NOT_FOUND => Ok(()),
            s => Err(other(format!("S3 DELETE answered {s}"))),
        }
    }

    pub(crate) async fn list(&self, prefix: &str) -> io::Result<Vec<super::Listed>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut list = self.bucket.list_objects_v2(Some(&self.credentials));
            list.with_prefix(prefix);
            if let Some(t) = &token {
                list.with_continuation_token(t.clone());
            }
            let url = list.sign(SIGN_TTL);
            let (_, answer) = self.call_ok(http::Method::GET, url, Body::empty()).await?;
            let parsed =
                rusty_s3::actions::ListObjectsV2::parse_response(&answer).map_err(other)?;
            for o in parsed.contents {
                let modified_ms = time::OffsetDateTime::parse(
                    &o.last_modified,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000) as u64);
                out.push(super::Listed {
                    key: o.key,
                    modified_ms,
                });
            }
            match parsed.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    pub(crate) async fn check(&self) -> io::Result<()> {
        let url = self
            .bucket
            .head_bucket(Some(&self.credentials))
            .sign(SIGN_TTL);
        let resp = self.call(http::Method::HEAD, url, Body::empty()).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(other(format!("S3 HEAD bucket answered {}", resp.status())))
        }
    }
}
