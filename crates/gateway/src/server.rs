//! Listeners: accept loops, TLS, timeouts, graceful shutdown.

use crate::settings::TlsSettings;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// The TCP peer of a connection, put into every request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    /// Remote address.
    pub addr: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// Connection timing rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// Time to receive a request head.
    pub header_read_timeout: Duration,
    /// A connection with no bytes moving for this long is closed.
    pub idle_timeout: Duration,
}

/// Serves the certificate in force; a reload swaps it without touching connections.
#[derive(Debug)]
pub struct CertResolver {
    current: arc_swap::ArcSwap<rustls::sign::CertifiedKey>,
}

impl rustls::server::ResolvesServerCert for CertResolver {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl CertResolver {
    /// Reads a PEM certificate chain and key into a certified key.
    pub fn load(tls: &TlsSettings) -> Result<Arc<rustls::sign::CertifiedKey>, String> {
        let certs_pem = std::fs::read(&tls.cert_file)
            .map_err(|e| format!("{}: {e}", tls.cert_file.display()))?;
        let key_pem =
            std::fs::read(&tls.key_file).map_err(|e| format!("{}: {e}", tls.key_file.display()))?;
        let certs = rustls_pemfile::certs(&mut certs_pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", tls.cert_file.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "{}: no PEM certificate found",
                tls.cert_file.display()
            ));
        }
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .map_err(|e| format!("{}: {e}", tls.key_file.display()))?
            .ok_or_else(|| format!("{}: no PEM private key found", tls.key_file.display()))?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| format!("{}: {e}", tls.key_file.display()))?;
        let ck = rustls::sign::CertifiedKey::new(certs, signing);
        ck.keys_match()
            .map_err(|e| format!("certificate and key do not match: {e}"))?;
        Ok(Arc::new(ck))
    }

    /// Installs a certified key prepared by [`Self::load`].
    pub fn store(&self, key: Arc<rustls::sign::CertifiedKey>) {
        self.current.store(key);
    }
}

/// A rustls acceptor (HTTP/2 and HTTP/1.1 over ALPN) and the resolver that can swap its cert.
pub(crate) fn tls_acceptor(tls: &TlsSettings) -> Result<(TlsAcceptor, Arc<CertResolver>), String> {
    let resolver = Arc::new(CertResolver {
        current: arc_swap::ArcSwap::new(CertResolver::load(tls)?),
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), resolver))
}

/// A TCP stream with bytes already read from it in front: what a [`Front`] read of a
/// connection before handing it to the HTTP server. Lent for one request
/// ([`Rewind::one_request`]), it ends its input after that request's body.
#[derive(Debug)]
pub(crate) struct Rewind {
    pre: bytes::Bytes,
    inner: TcpStream,
    /// Body bytes still to come from the socket before the input ends (`None`: no end).
    remaining: Option<u64>,
}

impl Rewind {
    /// `inner`, whose next bytes are `pre`.
    pub(crate) fn new(inner: TcpStream, pre: bytes::Bytes) -> Self {
        Rewind {
            pre,
            inner,
            remaining: None,
        }
    }

    /// `inner` lent to the HTTP server for one request: `pre` (the head and what arrived of
    /// the body), then `remaining` body bytes from the socket, then an end of input, so the
    /// server answers exactly that request and stops.
    pub(crate) fn one_request(inner: TcpStream, pre: bytes::Bytes, remaining: u64) -> Self {
        Rewind {
            pre,
            inner,
            remaining: Some(remaining),
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            let pre = self.pre.split_to(n);
            buf.put_slice(&pre);
            return Poll::Ready(Ok(()));
        }
        let Some(remaining) = self.remaining else {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        };
        if remaining == 0 {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        if (buf.remaining() as u64) <= remaining {
            std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        } else {
            // Never past the body: the next request stays on the socket.
            let mut tmp = vec![0u8; remaining as usize];
            let mut small = ReadBuf::new(&mut tmp);
            std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, &mut small))?;
            buf.put_slice(small.filled());
        }
        let n = (buf.filled().len() - before) as u64;
        // Nothing read: the client went away mid-body, and the server sees the end of input.
        self.remaining = Some(if n == 0 {
            0
        } else {
            remaining - n.min(remaining)
        });
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The request path as the HTTP server calls it (the public stack, or the admin router).
pub(crate) trait RequestPath:
    tower::Service<
        http::Request<axum::body::Body>,
        Response = http::Response<axum::body::Body>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> RequestPath for S
where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = http::Response<axum::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
}

/// The HTTP server and the request path, for one request at a time ([`Rewind::one_request`]).
pub(crate) trait OwnRoutes: Send + Sync {
    /// Answers the request of `io` and gives the stream back when the connection may go on
    /// (the answer did not close it and no error ended it).
    fn serve_one<'a>(
        &'a self,
        io: Rewind,
        peer: SocketAddr,
        limits: ConnLimits,
    ) -> Pin<Box<dyn std::future::Future<Output = Option<TcpStream>> + Send + 'a>>;
}

struct Own<S> {
    router: Arc<S>,
    builder: hyper::server::conn::http1::Builder,
    metrics: Arc<crate::metrics::Metrics>,
}

impl<S> OwnRoutes for Own<S>
where
    S: RequestPath + Sync,
{
    fn serve_one<'a>(
        &'a self,
        io: Rewind,
        peer: SocketAddr,
        limits: ConnLimits,
    ) -> Pin<Box<dyn std::future::Future<Output = Option<TcpStream>> + Send + 'a>> {
        Box::pin(async move {
            let peer = Peer {
                addr: peer,
                tls: false,
            };
            let (io, service, idle, keep) =
                watched(io, peer, (*self.router).clone(), limits.idle_timeout);
            let conn = self
                .builder
                .serve_connection(io, service)
                .without_shutdown();
            tokio::select! {
                r = conn => match r {
                    Ok(parts) if parts.read_buf.is_empty() && keep.load(Ordering::Relaxed) => {
                        Some(parts.io.into_inner().inner.inner)
                    }
                    Ok(_) => None,
                    Err(e) => {
                        connection_error(&self.metrics, peer.addr, &e);
                        None
                    }
                },
                () = idle => {
                    tracing::debug!("idle connection closed");
                    None
                }
            }
        })
    }
}

/// Threads that each run a runtime of their own and serve the connections the accept loop
/// hands them, in turn (`server.connection_threads`): a connection lives on one thread from
/// accept to close, so its requests never wake another thread, and each thread keeps its own
/// upstream pool for the proxy (lane `i + 1`).
pub(crate) struct ConnThreads {
    handles: Vec<tokio::runtime::Handle>,
    next: std::sync::atomic::AtomicUsize,
    stop: CancellationToken,
    threads: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl ConnThreads {
    /// Starts `n` (≥ 1) threads.
    pub(crate) fn start(n: usize) -> std::io::Result<Arc<Self>> {
        let stop = CancellationToken::new();
        let (mut handles, mut threads) = (Vec::new(), Vec::new());
        for i in 0..n {
            let (tx, rx) = std::sync::mpsc::channel();
            let stopped = stop.clone();
            let t = std::thread::Builder::new()
                .name(format!("wopi-gw-conn-{i}"))
                .spawn(move || {
                    crate::proxy::fast::set_lane(i + 1);
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => {
                            let _ = tx.send(Ok(rt.handle().clone()));
                            rt.block_on(stopped.cancelled());
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                })?;
            let handle = rx
                .recv()
                .map_err(|_| std::io::Error::other("connection thread ended at start"))??;
            handles.push(handle);
            threads.push(t);
        }
        Ok(Arc::new(ConnThreads {
            handles,
            next: std::sync::atomic::AtomicUsize::new(0),
            stop,
            threads: std::sync::Mutex::new(threads),
        }))
    }

    fn next(&self) -> &tokio::runtime::Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.handles[i % self.handles.len()]
    }

    /// Ends the threads and waits for them; connections still on them are dropped (call it
    /// after the server's graceful shutdown).
    pub(crate) fn stop(&self) {
        self.stop.cancel();
        let threads = std::mem::take(
            &mut *self
                .threads
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in threads {
            let _ = t.join();
        }
    }
}

/// How a [`Front`] left a connection.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// It served the connection to its end.
    Closed,
    /// The next request is not one it serves: the HTTP server takes the connection over,
    /// with what was read of it.
    HandOver(Rewind),
}

/// Serves plain-HTTP connections of the public listener before the HTTP server does (the
/// proxy's fast path): it may answer any number of requests, then end the connection or
/// hand it over at a request boundary.
pub(crate) trait Front: Send + Sync + 'static {
    /// Serves `stream` from `peer`. `watcher` keeps a graceful shutdown waiting; a front
    /// drops it when the connection leaves HTTP (an upgrade).
    fn serve<'a>(
        &'a self,
        stream: TcpStream,
        peer: SocketAddr,
        limits: ConnLimits,
        shutdown: &'a CancellationToken,
        watcher: &'a mut Option<hyper_util::server::graceful::Watcher>,
        own_routes: &'a dyn OwnRoutes,
    ) -> Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>>;
}

/// An I/O wrapper that records when bytes last moved, for the idle timeout.
struct IdleIo<T> {
    inner: T,
    last: Arc<AtomicU64>,
    epoch: tokio::time::Instant,
}

impl<T> IdleIo<T> {
    fn touch(&self) {
        self.last
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves `router` (any clonable service: the public stack, the admin router) on `listener`
/// until `shutdown` is cancelled, then lets open requests finish for up to `grace`. Plain
/// connections meet `front` first, when there is one.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<S>(
    listener: TcpListener,
    router: S,
    front: Option<Arc<dyn Front>>,
    tls: Option<TlsAcceptor>,
    limits: ConnLimits,
    metrics: crate::metrics::Metrics,
    shutdown: CancellationToken,
    grace: Duration,
    threads: Option<Arc<ConnThreads>>,
) where
    S: RequestPath + Sync,
{
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    // Cloned for a connection only when the HTTP server serves it.
    let router = Arc::new(router);
    let metrics = Arc::new(metrics);
    // The gateway's own routes, one request at a time, for connections the front keeps.
    let own: Arc<dyn OwnRoutes> = {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .keep_alive(true)
            // The end of input comes right after the request: the answer still goes out.
            .half_close(true);
        Arc::new(Own {
            router: router.clone(),
            builder,
            metrics: metrics.clone(),
        })
    };
    loop {
        let (stream, addr) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let metrics = metrics.clone();
        let front = front.clone();
        let shutdown = shutdown.clone();
        let own = own.clone();
        let fut = move |stream: TcpStream| async move {
            let peer = Peer {
                addr,
                tls: tls.is_some(),
            };
            // The HTTP server's state for the connection is built, boxed, only when it
            // serves the connection: one the fast path keeps stays small while idle.
            let result = match tls {
                None => {
                    let (inner, watcher) = match front {
                        Some(front) => {
                            let mut watcher = Some(watcher);
                            let outcome = front
                                .serve(stream, addr, limits, &shutdown, &mut watcher, &*own)
                                .await;
                            match (outcome, watcher) {
                                (Outcome::HandOver(rewind), Some(w)) => (rewind, w),
                                _ => return,
                            }
                        }
                        None => (Rewind::new(stream, bytes::Bytes::new()), watcher),
                    };
                    Box::pin(http_conn(
                        inner,
                        peer,
                        (*router).clone(),
                        &builder,
                        watcher,
                        limits,
                    ))
                    .await
                }
                Some(acceptor) => {
                    let tls_conn: Pin<Box<dyn std::future::Future<Output = _> + Send>> =
                        Box::pin(async move {
                            let handshake = tokio::time::timeout(
                                limits.header_read_timeout,
                                acceptor.accept(stream),
                            )
                            .await;
                            let stream = match handshake {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "TLS handshake failed");
                                    return Ok(());
                                }
                                Err(_) => {
                                    tracing::debug!("TLS handshake timed out");
                                    return Ok(());
                                }
                            };
                            http_conn(stream, peer, (*router).clone(), &builder, watcher, limits)
                                .await
                        });
                    tls_conn.await
                }
            };
            if let Err(e) = result {
                connection_error(&metrics, addr, &*e);
            }
        };
        match &threads {
            None => {
                tokio::spawn(fut(stream));
            }
            // The connection moves to one connection thread's runtime for good.
            Some(threads) => match stream.into_std() {
                Ok(std) => {
                    threads.next().spawn(async move {
                        match TcpStream::from_std(std) {
                            Ok(stream) => fut(stream).await,
                            Err(e) => tracing::warn!(error = %e, "connection hand-off failed"),
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "connection hand-off failed"),
            },
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!(grace_seconds = grace.as_secs(), "shutdown grace period over; closing remaining connections"),
    }
}

/// Serves a connection with hyper and `router` (the request path), with the idle timeout.
async fn http_conn<T, S>(
    inner: T,
    peer: Peer,
    router: S,
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    limits: ConnLimits,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: RequestPath,
{
    let (io, service, idle, _) = watched(inner, peer, router, limits.idle_timeout);
    drive(io, builder, service, watcher, idle).await
}

/// hyper's side of one connection: `inner` wrapped to record when bytes move; the request
/// path as a hyper service (each request carries the peer and counts as activity while its
/// handler runs, and the flag turns false when an answer says `Connection: close`); and the
/// watch that resolves once nothing moved for `idle_timeout` with no handler running.
#[allow(clippy::type_complexity)]
fn watched<T, S>(
    inner: T,
    peer: Peer,
    router: S,
    idle_timeout: Duration,
) -> (
    TokioIo<IdleIo<T>>,
    impl hyper::service::Service<
        http::Request<Incoming>,
        Response = http::Response<axum::body::Body>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Send
    + 'static,
    impl std::future::Future<Output = ()> + Send + 'static,
    Arc<std::sync::atomic::AtomicBool>,
)
where
    S: RequestPath,
{
    let last = Arc::new(AtomicU64::new(0));
    let active = Arc::new(AtomicU64::new(0));
    let epoch = tokio::time::Instant::now();
    let keep = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (active_in, keep_in) = (active.clone(), keep.clone());
    let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(peer);
        // A request waiting for its handler is not idle, even when no byte moves.
        let guard = ActiveGuard::new(active_in.clone());
        let fut = router.clone().oneshot(req.map(axum::body::Body::new));
        let keep = keep_in.clone();
        async move {
            let r = fut.await;
            if let Ok(resp) = &r {
                if has_token(resp.headers(), http::header::CONNECTION, "close") {
                    keep.store(false, Ordering::Relaxed);
                }
            }
            drop(guard);
            r
        }
    });
    let idle = idle_watch(last.clone(), active, epoch, idle_timeout);
    (
        TokioIo::new(IdleIo { inner, last, epoch }),
        service,
        idle,
        keep,
    )
}

/// Whether a comma-separated header (`Connection`, …) lists `token`.
pub(crate) fn has_token(
    headers: &http::HeaderMap,
    name: http::header::HeaderName,
    token: &str,
) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A connection ended with an error. Heads the HTTP parser refused (hyper answered 400, 414
/// or 431 itself, before any layer saw a request) are logged and counted: nothing else would.
fn connection_error(
    metrics: &crate::metrics::Metrics,
    peer: SocketAddr,
    e: &(dyn std::error::Error + Send + Sync + 'static),
) {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_parse()
        {
            let status: u16 = if !h.is_parse_too_large() {
                400
            } else if h.to_string().contains("URI too long") {
                414
            } else {
                431
            };
            metrics.count_unrouted(status);
            tracing::debug!(%peer, status, error = %h, "request head refused by the HTTP parser");
            return;
        }
        cur = err.source();
    }
    tracing::debug!(%peer, error = %e, "connection ended with an error");
}

/// Serves one connection until it ends, shutdown closes it, or `idle` fires.
async fn drive<I, S>(
    io: I,
    builder: &auto::Builder<TokioExecutor>,
    service: S,
    watcher: hyper_util::server::graceful::Watcher,
    idle: impl std::future::Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<
            http::Request<Incoming>,
            Response = http::Response<axum::body::Body>,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = watcher.watch(
        builder
            .serve_connection_with_upgrades(io, service)
            .into_owned(),
    );
    tokio::select! {
        r = conn => r,
        () = idle => {
            tracing::debug!("idle connection closed");
            Ok(())
        }
    }
}

struct ActiveGuard(Arc<AtomicU64>);

impl ActiveGuard {
    fn new(active: Arc<AtomicU64>) -> Self {
        active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(active)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves when no byte moved for `idle` and no handler is running.
async fn idle_watch(
    last: Arc<AtomicU64>,
    active: Arc<AtomicU64>,
    epoch: tokio::time::Instant,
    idle: Duration,
) {
    let idle_ms = idle.as_millis() as u64;
    loop {
        let now = epoch.elapsed().as_millis() as u64;
        let quiet = now.saturating_sub(last.load(Ordering::Relaxed));
        if quiet >= idle_ms && active.load(Ordering::Relaxed) == 0 {
            return;
        }
        if quiet >= idle_ms {
            tokio::time::sleep(Duration::from_millis(idle_ms.max(10))).await;
            continue;
        }
        tokio::time::sleep(Duration::from_millis((idle_ms - quiet).max(10))).await;
    }
}
