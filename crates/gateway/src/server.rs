//! Listeners: accept loops, TLS, timeouts, graceful shutdown.

use crate::settings::TlsSettings;
use bytes::BytesMut;
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
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
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
    /// The front read this request's head with the h1 rules and lent the HTTP server its
    /// canonical form: the stack need not check it again.
    pub framed: bool,
}

/// Connection timing rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// Time to receive a request head (the first one counted from the accept).
    pub header_read_timeout: Duration,
    /// A connection with no bytes moving for this long is closed.
    pub idle_timeout: Duration,
    /// A request body with no bytes moving for this long ends with 408.
    pub body_idle_timeout: Duration,
    /// Head limits (`server.max_head_bytes`, `server.max_headers`).
    pub head: h1::Limits,
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
/// ([`Rewind::one_request`]), it ends its input after that request's body, as the front
/// framed it, and keeps what follows for the front.
#[derive(Debug)]
pub(crate) struct Rewind {
    pre: bytes::Bytes,
    inner: TcpStream,
    /// The body still to come from the socket before the input ends (`None`: no end).
    body: Option<Left>,
    /// Bytes read past the end of a chunked body: the next request's.
    next: BytesMut,
}

/// What is left of a lent request's body.
#[derive(Debug)]
enum Left {
    Length(u64),
    Chunked(Box<h1::chunked::ChunkedDecoder>),
    /// A chunked body that does not parse: the input ends where it broke (the server sees a
    /// cut body and refuses it), and the connection ends after the answer.
    Broken,
}

impl Left {
    fn done(&self) -> bool {
        match self {
            Left::Length(n) => *n == 0,
            Left::Chunked(d) => d.is_done(),
            Left::Broken => false,
        }
    }
}

impl Rewind {
    /// `inner`, whose next bytes are `pre`.
    pub(crate) fn new(inner: TcpStream, pre: bytes::Bytes) -> Self {
        Rewind {
            pre,
            inner,
            body: None,
            next: BytesMut::new(),
        }
    }

    /// `inner` lent to the HTTP server for one request: `head` (the front's canonical head),
    /// then the body as `framing` says — first from `buf` (what already arrived; what of it
    /// follows the body stays there), then from the socket — then an end of input, so the
    /// server answers exactly that request and stops.
    pub(crate) fn one_request(
        inner: TcpStream,
        head: Vec<u8>,
        framing: h1::Framing,
        buf: &mut BytesMut,
    ) -> Self {
        let mut pre = BytesMut::from(&head[..]);
        let mut next = BytesMut::new();
        let body = match framing {
            h1::Framing::None => Left::Length(0),
            h1::Framing::Length(n) => {
                let now = (buf.len() as u64).min(n);
                pre.extend_from_slice(&buf.split_to(now as usize));
                Left::Length(n - now)
            }
            h1::Framing::Chunked => {
                let mut dec = Box::<h1::chunked::ChunkedDecoder>::default();
                match dec.feed(buf, |_| {}) {
                    Ok(p) => {
                        pre.extend_from_slice(&buf.split_to(p.consumed));
                        if dec.is_done() {
                            next = buf.split();
                        }
                        Left::Chunked(dec)
                    }
                    // Passed as far as it is whole; the rest is never read.
                    Err(_) => {
                        buf.clear();
                        Left::Broken
                    }
                }
            }
        };
        // What the front still holds past the head belongs to this body or the next request.
        if !buf.is_empty() {
            next.extend_from_slice(&buf.split());
        }
        Rewind {
            pre: pre.freeze(),
            inner,
            body: Some(body),
            next,
        }
    }

    /// The socket and the bytes of the next request, once the lent request's body was read
    /// to its end; the socket and what is left of the body otherwise.
    fn give_back(self) -> (TcpStream, BytesMut, Option<Left>) {
        let left = self.body.filter(|b| !b.done());
        (self.inner, self.next, left)
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
        let this = &mut *self;
        let Some(body) = this.body.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        match body {
            Left::Length(0) | Left::Broken => Poll::Ready(Ok(())),
            Left::Length(remaining) => {
                let before = buf.filled().len();
                if (buf.remaining() as u64) <= *remaining {
                    std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                } else {
                    // Never past the body: the next request stays on the socket.
                    let mut tmp = vec![0u8; *remaining as usize];
                    let mut small = ReadBuf::new(&mut tmp);
                    std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut small))?;
                    buf.put_slice(small.filled());
                }
                let n = (buf.filled().len() - before) as u64;
                // Nothing read: the client went away mid-body, and the server sees the end
                // of input (and refuses the short body).
                *remaining = if n == 0 {
                    0
                } else {
                    *remaining - n.min(*remaining)
                };
                Poll::Ready(Ok(()))
            }
            Left::Chunked(dec) => {
                if dec.is_done() {
                    return Poll::Ready(Ok(()));
                }
                let mut tmp = vec![0u8; buf.remaining().min(64 * 1024)];
                let mut read = ReadBuf::new(&mut tmp);
                std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
                let got = read.filled();
                if got.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                match dec.feed(got, |_| {}) {
                    Ok(p) => {
                        buf.put_slice(&got[..p.consumed]);
                        if dec.is_done() {
                            this.next.extend_from_slice(&got[p.consumed..]);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "chunked request body refused");
                        this.body = Some(Left::Broken);
                    }
                }
                Poll::Ready(Ok(()))
            }
        }
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
    /// Answers the request of `io` and says what is left of the connection.
    fn serve_one<'a>(
        &'a self,
        io: Rewind,
        peer: SocketAddr,
        limits: ConnLimits,
    ) -> Pin<Box<dyn std::future::Future<Output = Served> + Send + 'a>>;
}

/// What a request served by the HTTP server left of the connection.
#[derive(Debug)]
pub(crate) enum Served {
    /// The connection goes on; the bytes already read of the next request.
    Next(TcpStream, BytesMut),
    /// The answer ended the connection (`Connection: close`, or a body that could not be
    /// read to its end): close it gracefully.
    Close(TcpStream),
    /// An error ended it.
    Gone,
}

/// The most of an unread request body read and dropped after the answer (more: the
/// connection closes instead), and for how long.
const DISCARD_MAX: u64 = 1024 * 1024;
const DISCARD_FOR: Duration = Duration::from_secs(2);

/// Reads and drops the rest of a request body the server answered without reading, so that
/// its bytes are never taken for a request: the bytes after it, or `None` when it is too
/// long, too slow, malformed or cut (then the connection closes).
async fn discard(stream: &mut TcpStream, left: Left, mut next: BytesMut) -> Option<BytesMut> {
    tokio::time::timeout(DISCARD_FOR, async move {
        match left {
            Left::Length(n) if n <= DISCARD_MAX => {
                let mut sink = vec![0u8; (n as usize).min(64 * 1024)];
                let mut n = n;
                while n > 0 {
                    let want = (n as usize).min(sink.len());
                    let got = stream.read(&mut sink[..want]).await.ok()?;
                    if got == 0 {
                        return None;
                    }
                    n -= got as u64;
                }
                Some(next)
            }
            Left::Chunked(mut dec) => {
                let mut seen = 0u64;
                let mut sink = vec![0u8; 64 * 1024];
                loop {
                    let got = stream.read(&mut sink).await.ok()?;
                    if got == 0 {
                        return None;
                    }
                    let p = dec.feed(&sink[..got], |_| {}).ok()?;
                    if p.done {
                        next.extend_from_slice(&sink[p.consumed..got]);
                        return Some(next);
                    }
                    seen += got as u64;
                    if seen > DISCARD_MAX {
                        return None;
                    }
                }
            }
            _ => None,
        }
    })
    .await
    .ok()
    .flatten()
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
    ) -> Pin<Box<dyn std::future::Future<Output = Served> + Send + 'a>> {
        Box::pin(async move {
            let peer = Peer {
                addr: peer,
                tls: false,
                framed: true,
            };
            let (io, service, idle, keep) =
                watched(io, peer, (*self.router).clone(), limits.idle_timeout);
            let conn = self
                .builder
                .serve_connection(io, service)
                .without_shutdown();
            let parts = tokio::select! {
                r = conn => match r {
                    Ok(parts) => parts,
                    Err(e) => {
                        connection_error(&self.metrics, peer.addr, &e);
                        return Served::Gone;
                    }
                },
                () = idle => {
                    tracing::debug!("idle connection closed");
                    return Served::Gone;
                }
            };
            // The input ended with the body: whatever the server read and left unused is
            // body, never the next request.
            let (mut stream, next, left) = parts.io.into_inner().inner.give_back();
            let next = match left {
                None => next,
                Some(left) => match discard(&mut stream, left, next).await {
                    Some(next) => {
                        tracing::debug!("request body the answer left unread was dropped");
                        next
                    }
                    None => {
                        tracing::debug!(
                            "request body the answer left unread was not read to its end; closing"
                        );
                        return Served::Close(stream);
                    }
                },
            };
            if keep.load(Ordering::Relaxed) {
                Served::Next(stream, next)
            } else {
                Served::Close(stream)
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
    /// Starts `n` (≥ 1) threads; each first runs `on_start(i)` (`i` from 0), which picks
    /// the thread's per-thread resources (the proxy's upstream pool lane).
    pub(crate) fn start(n: usize, on_start: fn(usize)) -> std::io::Result<Arc<Self>> {
        let stop = CancellationToken::new();
        let (mut handles, mut threads) = (Vec::new(), Vec::new());
        for i in 0..n {
            let (tx, rx) = std::sync::mpsc::channel();
            let stopped = stop.clone();
            let t = std::thread::Builder::new()
                .name(format!("wopi-gw-conn-{i}"))
                .spawn(move || {
                    on_start(i);
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
    cap: Cap,
) where
    S: RequestPath + Sync,
{
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.head.max_head_bytes.max(8192))
        .max_headers(limits.head.max_headers)
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
    let slots = (cap.max_connections > 0)
        .then(|| Arc::new(tokio::sync::Semaphore::new(cap.max_connections)));
    let mut accept_errors = RateLimited::default();
    loop {
        // At the cap, stop accepting until a connection closes: the descriptors left are
        // the admin listener's, Docs', Redis' and the content files'.
        let slot = match &slots {
            None => None,
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    metrics.connections_limited.inc();
                    tracing::warn!(
                        max_connections = cap.max_connections,
                        "server.max_connections reached: not accepting until a connection closes"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        p = slots.clone().acquire_owned() => match p {
                            Ok(p) => Some(p),
                            Err(_) => break,
                        },
                    }
                }
            },
        };
        let (stream, addr) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: counted, logged at most once a second, and backed
                    // off instead of spinning.
                    metrics.accept_errors.with_label_values(&[cap.role]).inc();
                    if let Some(suppressed) = accept_errors.allow() {
                        tracing::warn!(role = cap.role, error = %e, suppressed, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let open = cap.count.then(|| OpenGuard::new(&metrics.connections_open));
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
            let _held = (slot, open);
            let peer = Peer {
                addr,
                tls: tls.is_some(),
                framed: false,
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

/// A listener's connection cap and how it is counted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cap {
    /// `server.max_connections` (0: no cap).
    pub max_connections: usize,
    /// `public` or `admin` (the accept-error metric's label).
    pub role: &'static str,
    /// Whether open connections are counted in `connections_open`.
    pub count: bool,
}

/// Counts an open connection in a gauge for as long as it lives.
struct OpenGuard(prometheus::IntGauge);

impl OpenGuard {
    fn new(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        OpenGuard(gauge.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// At most one log line a second for a repeated event: `allow` says whether this one may be
/// logged, with how many were not since the last.
#[derive(Debug, Default)]
struct RateLimited {
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn allow(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
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
