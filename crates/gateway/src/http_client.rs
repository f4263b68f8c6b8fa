//! Outgoing HTTP: one pooled client (keep-alive, HTTP/1.1 and HTTP/2, rustls for https)
//! shared by everything the gateway calls — integrators, WOPI clients' discovery, Docs.

use crate::error::{GatewayError, UpstreamKind};
use crate::metrics::Metrics;
use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Request body type of outgoing requests.
pub use axum::body::Body as OutBody;
use std::time::Duration;

type ClientType = Client<HttpsConnector<HttpConnector>, Body>;

/// The shared outgoing client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    request_timeout: Duration,
    metrics: Metrics,
}

impl HttpClient {
    /// Builds the client; https trusts the system's CA certificates.
    pub fn new(connect_timeout: Duration, request_timeout: Duration, metrics: Metrics) -> Self {
        let client = Self::build(
            connect_timeout,
            Self::roots(None).unwrap_or_else(|e| {
                tracing::error!(error = %e, "TLS roots");
                rustls::RootCertStore::empty()
            }),
        );
        HttpClient {
            client,
            request_timeout,
            metrics,
        }
    }

    /// Builds the client trusting the system's CA certificates plus those in `ca_file` (PEM).
    pub fn with_ca(
        connect_timeout: Duration,
        request_timeout: Duration,
        metrics: Metrics,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let client = Self::build(connect_timeout, Self::roots(ca_file)?);
        Ok(HttpClient {
            client,
            request_timeout,
            metrics,
        })
    }

    fn roots(ca_file: Option<&std::path::Path>) -> Result<rustls::RootCertStore, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("{}: no PEM certificate found", path.display()));
            }
        }
        Ok(roots)
    }

    fn build(connect_timeout: Duration, roots: rustls::RootCertStore) -> ClientType {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        #[allow(clippy::expect_used)]
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .build(connector)
    }

    /// Sends a request; fails with a typed upstream error on connect failure or timeout
    /// (to the response head). Any status is returned as is.
    pub async fn send(
        &self,
        op: &'static str,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, GatewayError> {
        self.send_with_timeout(op, req, self.request_timeout).await
    }

    /// Like [`Self::send`] with an explicit timeout.
    pub async fn send_with_timeout(
        &self,
        op: &'static str,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, GatewayError> {
        let started = tokio::time::Instant::now();
        let result = tokio::time::timeout(timeout, self.client.request(req)).await;
        self.metrics
            .upstream_duration
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        let err = match result {
            Ok(Ok(resp)) => return Ok(resp),
            Ok(Err(e)) => {
                let detail = error_chain(&e);
                let kind = if e.is_connect() {
                    UpstreamKind::Connect
                } else {
                    UpstreamKind::Protocol
                };
                GatewayError::Upstream { op, kind, detail }
            }
            Err(_) => GatewayError::Upstream {
                op,
                kind: UpstreamKind::Timeout,
                detail: format!("no answer within {timeout:?}"),
            },
        };
        if let GatewayError::Upstream { kind, .. } = &err {
            self.metrics
                .upstream_errors
                .with_label_values(&[op, kind.label()])
                .inc();
        }
        Err(err)
    }

    /// Sends and reads the whole body (at most `limit` bytes); non-2xx is an error.
    pub async fn send_read(
        &self,
        op: &'static str,
        req: Request<Body>,
        limit: usize,
    ) -> Result<(StatusCode, Bytes), GatewayError> {
        let resp = self.send(op, req).await?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| GatewayError::Upstream {
                op,
                kind: UpstreamKind::Protocol,
                detail: format!("reading body: {e}"),
            })?
            .to_bytes();
        if !status.is_success() {
            self.metrics
                .upstream_errors
                .with_label_values(&[op, "status"])
                .inc();
            return Err(GatewayError::Upstream {
                op,
                kind: UpstreamKind::Status(status.as_u16()),
                detail: format!("answered {status}"),
            });
        }
        Ok((status, body))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
