//! The proxy's fast path: plain HTTP/1.1 requests for ONLYOFFICE Docs served at the
//! connection, without the HTTP server, the router or a second task.
//!
//! A plain connection of the public listener meets this path first. While its requests are
//! ordinary HTTP/1.1 requests of the proxy group (editor assets, Docs' own API, co-editing
//! WebSockets), each one is parsed once, checked exactly as the stack would check it (one
//! in-flight count with the stack, the total timeout, the group's allowlist and body limit),
//! rewritten (hop-by-hop headers, `X-Forwarded-*`, `Host`) and written to a pooled upstream
//! connection in the same task; the answer streams back as it comes. Anything else — a route
//! of the gateway's own faces, a chunked or `Expect` request body, HTTP/1.0, a head that does
//! not parse or is over 64 KiB — hands the connection, with the bytes read so far, to the
//! HTTP server at that request boundary, so its answers (and its error answers) are exactly
//! the server's. An idle connection holds no buffer.
//!
//! docs/architecture.md ("The proxy's fast path") describes the same; the upstream side
//! speaks HTTP/1.1 as RFC 9112 frames it (content length, chunked, or until close).

use super::{DocsUpstream, ProxyCtx};
use crate::access::{self, RouteGroup};
use crate::error::{GatewayError, UpstreamKind};
use crate::server::{ConnLimits, Front, Outcome, OwnRoutes, Rewind, Served};
use crate::stack::Admission;
use axum::response::IntoResponse as _;
use bytes::{Buf as _, BytesMut};
use http::HeaderValue;
use prometheus::Histogram;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

/// A request head longer than this goes to the HTTP server (which applies its own limit).
const MAX_HEAD: usize = 64 * 1024;
/// More header lines than this: the HTTP server's business.
const MAX_HEADERS: usize = 96;
/// What a connection reads at a time while it waits for a head.
const HEAD_CHUNK: usize = 4 * 1024;
/// The buffer a body streams through.
const STREAM_CHUNK: usize = 256 * 1024;
/// Idle upstream connections kept, and for how long (the pooled client's values).
const POOL_MAX: usize = 1024;
const POOL_IDLE: Duration = Duration::from_secs(90);
/// How long an answer Docs sent before reading the whole request body may take to arrive
/// once the body could not be sent on (it is normally there already).
const EARLY_ANSWER_WAIT: Duration = Duration::from_secs(1);

/// The fast path: the proxy's handle, the shared in-flight count and the upstream pool.
pub(crate) struct FastProxy {
    ctx: ProxyCtx,
    admission: Arc<Admission>,
    /// `host:port` of Docs; `None` when Docs is reached over TLS: the front still frames
    /// every request, and the HTTP server's path (the pooled client) proxies them.
    connect_to: Option<String>,
    /// Idle upstream connections, one pool per lane (see [`set_lane`]).
    pools: Box<[Pool]>,
    upstream_duration: Histogram,
}

/// Idle upstream connections with the time each went idle.
type Pool = Mutex<VecDeque<(TcpStream, Instant)>>;

/// Lanes of upstream pools: lane 0 for the shared multi-thread runtime, one more for each
/// connection thread (`server.connection_threads`).
const LANES: usize = crate::settings::defaults::MAX_CONNECTION_THREADS + 1;

thread_local! {
    static LANE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Makes the calling thread use upstream pool `lane` (1.. for connection threads, each a
/// runtime of its own: a connection is only ever used by the runtime whose reactor it is
/// registered with).
pub(crate) fn set_lane(lane: usize) {
    LANE.with(|l| l.set(lane.min(LANES - 1)));
}

impl std::fmt::Debug for FastProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastProxy")
            .field("connect_to", &self.connect_to)
            .finish_non_exhaustive()
    }
}

impl FastProxy {
    /// The front for `ctx`'s upstream; its fast path only when Docs is plain `http` (TLS to
    /// Docs goes through the pooled client).
    pub(crate) fn new(ctx: ProxyCtx, admission: Arc<Admission>) -> Arc<Self> {
        let connect_to = ctx
            .face
            .origin
            .parse::<http::Uri>()
            .ok()
            .filter(|uri| uri.scheme_str() == Some("http"))
            .and_then(|uri| Some(format!("{}:{}", uri.host()?, uri.port_u16().unwrap_or(80))));
        Arc::new(FastProxy {
            upstream_duration: ctx.metrics.upstream_duration.with_label_values(&["proxy"]),
            connect_to,
            pools: (0..LANES).map(|_| Mutex::new(VecDeque::new())).collect(),
            admission,
            ctx,
        })
    }

    fn up(&self) -> &DocsUpstream {
        &self.ctx.face
    }

    /// `upstream_errors{op="proxy"}` by kind, as the pooled client counts its failures.
    fn count_error(&self, kind: &UpstreamKind) {
        self.ctx
            .metrics
            .upstream_errors
            .with_label_values(&["proxy", kind.label()])
            .inc();
    }
}

impl Front for FastProxy {
    fn serve<'a>(
        &'a self,
        stream: TcpStream,
        peer: SocketAddr,
        limits: ConnLimits,
        shutdown: &'a CancellationToken,
        watcher: &'a mut Option<hyper_util::server::graceful::Watcher>,
        own_routes: &'a dyn OwnRoutes,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>> {
        Box::pin(self.connection(stream, peer, limits, shutdown, watcher, own_routes))
    }
}

/// A request the fast path serves, parsed and rewritten for Docs.
#[derive(Debug)]
struct Prepared {
    /// Bytes of the client's head.
    head_len: usize,
    /// The head to send upstream.
    out: Vec<u8>,
    method: http::Method,
    client_ip: IpAddr,
    /// How the request body is framed (the front's decision, written to Docs as such).
    body: h1::Framing,
    upgrade: bool,
    /// The client asked to close after this request.
    close: bool,
}

impl Prepared {
    fn has_body(&self) -> bool {
        self.body.has_body()
    }
}

enum Parse {
    Partial,
    /// Not HTTP/1 (the HTTP/2 preface), or an upgrade the fast path cannot carry: the HTTP
    /// server takes the connection.
    HandOver,
    /// A head the rules refuse: answered here, and the connection ends.
    Refuse(h1::Reject),
    /// `OPTIONS *`: the gateway's own answer.
    Options {
        head_len: usize,
        close: bool,
    },
    /// One request the HTTP server answers (the gateway's own routes, and what the fast path
    /// leaves to it): the canonical head it reads instead of the client's, then the body as
    /// framed; the connection comes back afterwards.
    Own {
        head_len: usize,
        canonical: Vec<u8>,
        body: h1::Framing,
        close: bool,
    },
    Ready(Box<Prepared>),
}

/// How a response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// The upstream's answer head, rewritten for the client.
struct Answer {
    status: u16,
    /// The client's head without its final `connection` line and blank line.
    head: Vec<u8>,
    framing: Framing,
    /// Whether the upstream connection may be reused after the body.
    reusable: bool,
    conn: TcpStream,
    /// What was read past the head.
    rest: BytesMut,
    /// Docs answered before it had the whole request body: the rest of the client's body
    /// is never read, so the client connection ends after this answer.
    early: bool,
}

/// What a request left of the connection.
enum After {
    KeepAlive,
    Close,
    /// Close, reading and dropping what the client still sends for a while first (its
    /// request body was not read to the end): closing a socket with unread bytes resets
    /// the connection, and a reset can destroy the answer before the client reads it.
    Drain,
}

/// How long a connection ending with an unread request body is drained.
const DRAIN_FOR: Duration = Duration::from_secs(2);

/// Reads and drops what `client` sends until it closes, for at most [`DRAIN_FOR`].
pub(crate) async fn drain(client: &mut TcpStream) {
    let mut sink = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        while let Ok(n) = client.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

fn lower_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The answer to a head the rules refused: status, `Connection: close`, a one-line body.
fn refusal(reject: h1::Reject) -> Vec<u8> {
    let reason = http::StatusCode::from_u16(reject.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Bad Request");
    let body = format!("request refused: {}\n", reject.rule);
    let allow = if reject.status == 405 {
        format!("allow: {}\r\n", crate::error::ALLOW)
    } else {
        String::new()
    };
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n{allow}connection: close\r\n\r\n{body}",
        reject.status,
        body.len()
    )
    .into_bytes()
}

impl FastProxy {
    async fn connection(
        &self,
        mut client: TcpStream,
        peer: SocketAddr,
        limits: ConnLimits,
        shutdown: &CancellationToken,
        watcher: &mut Option<hyper_util::server::graceful::Watcher>,
        own_routes: &dyn OwnRoutes,
    ) -> Outcome {
        let mut buf = BytesMut::new();
        // The connection's one timer for its idle and request deadlines (see [`until`]).
        let timer = tokio::time::sleep(limits.header_read_timeout);
        tokio::pin!(timer);
        // The first head is due within the head timeout of the accept: a connection that
        // sends nothing is not kept for the idle timeout.
        let mut head_due = Some(Instant::now() + limits.header_read_timeout);
        'requests: loop {
            if buf.is_empty() {
                // Between requests the connection holds no buffer.
                buf = BytesMut::new();
                let wait_until = head_due.unwrap_or_else(|| Instant::now() + limits.idle_timeout);
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return Outcome::Closed,
                    r = until(timer.as_mut(), wait_until, client.readable()) => match r {
                        Some(Ok(())) => {}
                        Some(Err(_)) => return Outcome::Closed,
                        None if head_due.is_some() => {
                            self.ctx.metrics.http_timeouts.with_label_values(&["head"]).inc();
                            tracing::debug!(%peer, "no request head within the head timeout of the accept");
                            return Outcome::Closed;
                        }
                        None => {
                            tracing::debug!("idle connection closed");
                            return Outcome::Closed;
                        }
                    }
                }
            }
            let deadline = head_due
                .take()
                .unwrap_or_else(|| Instant::now() + limits.header_read_timeout);
            let prepared = loop {
                if !buf.is_empty() {
                    match self.parse(&buf, peer, &limits) {
                        Parse::Ready(p) => break p,
                        Parse::Own {
                            head_len,
                            canonical,
                            body,
                            close,
                        } => {
                            buf.advance(head_len);
                            let io = Rewind::one_request(client, canonical, body, &mut buf);
                            match own_routes.serve_one(io, peer, limits).await {
                                Served::Next(stream, next)
                                    if !close && !shutdown.is_cancelled() =>
                                {
                                    client = stream;
                                    buf = next;
                                    continue 'requests;
                                }
                                Served::Next(mut stream, _) | Served::Close(mut stream) => {
                                    let _ = stream.shutdown().await;
                                    drain(&mut stream).await;
                                    return Outcome::Closed;
                                }
                                Served::Gone => return Outcome::Closed,
                            }
                        }
                        Parse::Options { head_len, close } => {
                            buf.advance(head_len);
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\nallow: {}\r\ncontent-length: 0\r\n{}\r\n",
                                crate::error::ALLOW,
                                if close { "connection: close\r\n" } else { "" }
                            );
                            if client.write_all(answer.as_bytes()).await.is_err() || close {
                                return Outcome::Closed;
                            }
                            if buf.is_empty() {
                                continue 'requests;
                            }
                            continue;
                        }
                        Parse::Refuse(reject) => {
                            self.ctx.metrics.count_refused(reject);
                            tracing::debug!(%peer, rule = reject.rule, status = reject.status, "request head refused");
                            let _ = client.write_all(&refusal(reject)).await;
                            let _ = client.shutdown().await;
                            drain(&mut client).await;
                            return Outcome::Closed;
                        }
                        Parse::HandOver => {
                            return Outcome::HandOver(Rewind::new(client, buf.freeze()));
                        }
                        Parse::Partial => {}
                    }
                }
                if buf.capacity() - buf.len() < 512 {
                    buf.reserve(HEAD_CHUNK);
                }
                match tokio::time::timeout_at(deadline, client.read_buf(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Outcome::Closed,
                    Ok(Ok(_)) => {}
                    Err(_) => {
                        self.ctx
                            .metrics
                            .http_timeouts
                            .with_label_values(&["head"])
                            .inc();
                        tracing::debug!(%peer, "request head not received in time");
                        return Outcome::Closed;
                    }
                }
            };
            buf.advance(prepared.head_len);
            // Boxed: the connection's own future stays small while it waits between requests.
            let served = self
                .boxed_request(
                    &mut client,
                    &mut buf,
                    *prepared,
                    (peer, limits, timer.as_mut()),
                    shutdown,
                    watcher,
                )
                .await;
            match served {
                After::KeepAlive if !shutdown.is_cancelled() => {}
                After::Drain => {
                    let _ = client.shutdown().await;
                    drain(&mut client).await;
                    return Outcome::Closed;
                }
                _ => {
                    let _ = client.shutdown().await;
                    return Outcome::Closed;
                }
            }
        }
    }

    /// [`Self::request`], boxed.
    #[allow(clippy::too_many_arguments)]
    fn boxed_request<'a>(
        &'a self,
        client: &'a mut TcpStream,
        buf: &'a mut BytesMut,
        req: Prepared,
        conn: (SocketAddr, ConnLimits, Pin<&'a mut Sleep>),
        shutdown: &'a CancellationToken,
        watcher: &'a mut Option<hyper_util::server::graceful::Watcher>,
    ) -> Pin<Box<dyn Future<Output = After> + Send + 'a>> {
        Box::pin(self.request(client, buf, req, conn, shutdown, watcher))
    }

    /// Reads the head at the start of `buf` with the front's rules (`h1`) and decides who
    /// serves it: this path (HTTP/1.1 requests of the proxy group), the HTTP server for one
    /// request (the gateway's own routes, HTTP/1.0, `Expect`), or nobody (refused).
    fn parse(&self, buf: &[u8], peer: SocketAddr, limits: &ConnLimits) -> Parse {
        if buf.starts_with(b"PRI ") && h1::is_h2_preface(buf) {
            return Parse::HandOver;
        }
        let head = match h1::parse(buf, &limits.head) {
            Ok(Some(h)) => h,
            Ok(None) => return Parse::Partial,
            Err(r) => return Parse::Refuse(r),
        };
        let c = &head.checked;
        if c.form == h1::Form::Asterisk {
            if c.framing.has_body() {
                return Parse::Refuse(h1::Reject::new(400, "asterisk-form-body"));
            }
            return Parse::Options {
                head_len: head.len,
                close: c.close,
            };
        }
        let settings = self.ctx.settings_now();
        let path = crate::stack::route_path(&c.path, &settings);
        let fast = self.connect_to.is_some()
            && head.version == h1::Version::Http11
            && !c.expect_continue
            && RouteGroup::classify(path) == RouteGroup::Proxy
            && !crate::host_face::command::is_command_path(path);
        if !fast {
            if c.upgrade && RouteGroup::classify(path) == RouteGroup::Proxy {
                // A tunnel to Docs over TLS: the HTTP server keeps the connection.
                return Parse::HandOver;
            }
            let mut canonical = Vec::with_capacity(head.len + 32);
            head.write_canonical(&mut canonical);
            return Parse::Own {
                head_len: head.len,
                canonical,
                body: c.framing,
                close: c.close,
            };
        }
        let Ok(method) = http::Method::from_bytes(head.method.as_bytes()) else {
            return Parse::Refuse(h1::Reject::new(400, "method"));
        };
        let trusted = &settings.access.trusted_proxies;
        let trusted_peer = access::is_trusted(trusted, peer.ip());
        let mut sent = super::forward::Sent::default();
        for f in &head.fields {
            sent.see(f.name, f.value);
        }
        let client_ip = if trusted_peer {
            let mut map = http::HeaderMap::new();
            for f in &head.fields {
                if lower_eq(f.name, "x-forwarded-for") || lower_eq(f.name, "forwarded") {
                    if let (Ok(n), Ok(v)) = (
                        http::HeaderName::from_bytes(f.name.as_bytes()),
                        HeaderValue::from_bytes(f.value),
                    ) {
                        map.append(n, v);
                    }
                }
            }
            access::client_ip(peer.ip(), &map, trusted)
        } else {
            access::canonical(peer.ip())
        };
        let up = self.up();
        let public_prefix = settings.server.public_url.path.as_str();
        let mut out = Vec::with_capacity(head.len + 192);
        // The path below the public prefix, as routed.
        head.write_forward(
            &up.prefix,
            path,
            |n| super::forward::replaced(n, trusted_peer, public_prefix),
            &mut out,
        );
        let https = settings.server.public_url.scheme == "https";
        super::forward::write(
            &super::forward::Forwarding {
                peer: peer.ip(),
                trusted: trusted_peer,
                sent,
                authority: c.authority.map(str::as_bytes),
                https,
                prefix: public_prefix,
                docs_authority: up.authority.as_bytes(),
            },
            |n, v| h1::push_field(&mut out, n.as_bytes(), v),
        );
        if c.upgrade {
            for f in &head.fields {
                if lower_eq(f.name, "upgrade") {
                    h1::push_field(&mut out, b"upgrade", f.value);
                }
            }
            out.extend_from_slice(b"connection: upgrade\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Parse::Ready(Box::new(Prepared {
            head_len: head.len,
            out,
            method,
            client_ip,
            body: c.framing,
            upgrade: c.upgrade,
            close: c.close,
        }))
    }

    /// Serves one parsed request: the stack's checks and metrics, the exchange with Docs,
    /// the answer.
    #[allow(clippy::too_many_arguments)]
    async fn request(
        &self,
        client: &mut TcpStream,
        buf: &mut BytesMut,
        req: Prepared,
        (peer, limits, mut timer): (SocketAddr, ConnLimits, Pin<&mut Sleep>),
        shutdown: &CancellationToken,
        watcher: &mut Option<hyper_util::server::graceful::Watcher>,
    ) -> After {
        let core = &self.ctx;
        let id = core.request_ids.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!(
            "request",
            request_id = id,
            group = RouteGroup::Proxy.as_str(),
            method = %req.method,
            allow_rule = tracing::field::Empty
        );
        let started = Instant::now();
        core.metrics.http_in_flight.inc();
        let answer = tracing::Instrument::instrument(
            self.exchange(client, buf, &req, timer.as_mut(), limits.body_idle_timeout),
            span.clone(),
        )
        .await;
        core.metrics.http_in_flight.dec();
        let status = match &answer {
            Ok(a) => a.status,
            Err(e) => e.status().as_u16(),
        };
        crate::stack::count_answer(core, RouteGroup::Proxy, status, started, &span);
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                // A request body may be left on the connection, unread or half sent: the
                // connection ends with this answer, read and dropped for a while first.
                let close = req.close || req.has_body() || shutdown.is_cancelled();
                let out = span.in_scope(|| error_answer(e, close));
                return match client.write_all(&out).await {
                    Ok(()) if !close => After::KeepAlive,
                    Ok(()) if req.has_body() => After::Drain,
                    _ => After::Close,
                };
            }
        };
        if answer.status == 101 {
            // The connection leaves HTTP: a graceful shutdown no longer waits for it.
            drop(watcher.take());
            let rest = std::mem::take(buf);
            self.tunnel(client, answer, rest).await;
            return After::Close;
        }
        let early = answer.early;
        let close =
            req.close || shutdown.is_cancelled() || answer.framing == Framing::UntilClose || early;
        match self
            .respond(client, answer, close, (timer, limits.idle_timeout))
            .await
        {
            Ok(()) if !close => After::KeepAlive,
            Ok(()) if early => After::Drain,
            Ok(()) => After::Close,
            Err(Cut::Client(e)) => {
                tracing::debug!(%peer, error = %e, "client went away during a proxied answer");
                After::Close
            }
            Err(Cut::Upstream(e)) => {
                // The head went out: the client sees the connection end before the body does.
                self.count_error(&UpstreamKind::Protocol);
                tracing::warn!(error = %e, "upstream Docs answer cut short");
                After::Close
            }
        }
    }

    /// Admission (the stack's own function: in-flight count, allowlist, body limit) and the
    /// exchange with Docs up to the answer's head, within the total request timeout.
    async fn exchange(
        &self,
        client: &mut TcpStream,
        buf: &mut BytesMut,
        req: &Prepared,
        timer: Pin<&mut Sleep>,
        body_idle: Duration,
    ) -> Result<Answer, GatewayError> {
        let declared = match req.body {
            h1::Framing::Length(n) => Some(n),
            h1::Framing::None => Some(0),
            h1::Framing::Chunked => None,
        };
        let admitted = crate::stack::admit(
            &self.ctx,
            &self.admission,
            RouteGroup::Proxy,
            req.client_ip,
            declared,
            req.has_body(),
        )?;
        let (total, upstream_timeout, connect_timeout) = (
            admitted.total,
            admitted.upstream_timeout,
            admitted.connect_timeout,
        );
        let started = Instant::now();
        let sent = until(
            timer,
            started + total.min(upstream_timeout),
            self.send(
                client,
                buf,
                req,
                connect_timeout,
                (body_idle, admitted.body_limit),
            ),
        )
        .await
        .ok_or(());
        drop(admitted);
        self.upstream_duration
            .observe(started.elapsed().as_secs_f64());
        let (kind, detail) = match sent {
            Ok(Ok(answer)) => {
                if answer.status == 101 && !req.upgrade {
                    (
                        UpstreamKind::Protocol,
                        "101 without an upgrade request".into(),
                    )
                } else {
                    return Ok(answer);
                }
            }
            Ok(Err(Failed::Client(e))) => return Err(e),
            Ok(Err(Failed::Upstream(kind, detail))) => (kind, detail),
            Err(_) if total < upstream_timeout => return Err(GatewayError::Timeout),
            Err(_) => (
                UpstreamKind::Timeout,
                format!("no answer within {upstream_timeout:?}"),
            ),
        };
        self.count_error(&kind);
        tracing::warn!(kind = kind.label(), error = %detail, "upstream Docs unreachable");
        Err(GatewayError::Upstream {
            op: "proxy",
            kind,
            detail,
        })
    }

    /// A request body the client got wrong: counted by rule, answered with the rule's
    /// status, the Docs connection it was going to dropped (never pooled).
    fn body_refused(&self, reject: h1::Reject, detail: &dyn std::fmt::Display) -> Failed {
        let metrics = &self.ctx.metrics;
        metrics.http_refused.with_label_values(&[reject.rule]).inc();
        if reject.status == 408 {
            metrics.http_timeouts.with_label_values(&["body"]).inc();
        }
        tracing::debug!(rule = reject.rule, error = %detail, "request body refused");
        Failed::Client(GatewayError::Refused(reject))
    }

    /// Writes the request (head and body) to a Docs connection and reads the answer's head.
    /// A pooled connection that turns out closed before any answer byte is replaced once
    /// for a request without a body.
    async fn send(
        &self,
        client: &mut TcpStream,
        buf: &mut BytesMut,
        req: &Prepared,
        connect_timeout: Duration,
        body: (Duration, u64),
    ) -> Result<Answer, Failed> {
        let mut retried = false;
        loop {
            let (mut conn, pooled) = match self.checkout() {
                Some(c) => (c, true),
                None => (
                    self.connect(connect_timeout)
                        .await
                        .map_err(|(k, d)| Failed::Upstream(k, d))?,
                    false,
                ),
            };
            match self.write_request(&mut conn, client, buf, req, body).await {
                Ok(()) => {}
                Err(SendError::Upstream(e)) if pooled && !retried && !req.has_body() => {
                    tracing::debug!(error = %e, "pooled Docs connection closed; reconnecting");
                    retried = true;
                    continue;
                }
                Err(SendError::Answered(first)) => {
                    // Docs answered (a 413, say) before the whole body went out.
                    return match self.early_answer(conn, req, first).await {
                        Some(a) => Ok(a),
                        None => Err(Failed::Upstream(
                            UpstreamKind::Protocol,
                            "Docs stopped reading the request body without an answer".into(),
                        )),
                    };
                }
                Err(SendError::Upstream(e)) => {
                    // Docs may have answered and closed before it read the whole body.
                    if req.has_body() {
                        if let Some(a) = self.early_answer(conn, req, BytesMut::new()).await {
                            return Ok(a);
                        }
                    }
                    return Err(Failed::Upstream(
                        UpstreamKind::Protocol,
                        format!("sending the request: {e}"),
                    ));
                }
                Err(SendError::Client(e)) => {
                    return Err(self.body_refused(h1::Reject::new(400, "body-incomplete"), &e));
                }
                Err(SendError::Malformed(e)) => {
                    return Err(self.body_refused(h1::Reject::new(400, "chunked-malformed"), &e));
                }
                Err(SendError::Stalled) => {
                    return Err(self.body_refused(
                        h1::Reject::new(408, "body-idle-timeout"),
                        &"no byte of the request body within server.body_idle_timeout_seconds",
                    ));
                }
                Err(SendError::TooLarge) => {
                    return Err(Failed::Client(GatewayError::PayloadTooLarge));
                }
            }
            match self.read_answer(conn, req, BytesMut::new()).await {
                Ok(a) => return Ok(a),
                Err((e, nothing)) if nothing && pooled && !retried && !req.has_body() => {
                    tracing::debug!(error = %e, "pooled Docs connection closed; reconnecting");
                    retried = true;
                }
                Err((e, _)) => return Err(Failed::Upstream(UpstreamKind::Protocol, e)),
            }
        }
    }

    /// An answer Docs sent before it had the whole request body, if it sent one: it goes to
    /// the client as is, and neither connection is used again.
    async fn early_answer(
        &self,
        conn: TcpStream,
        req: &Prepared,
        first: BytesMut,
    ) -> Option<Answer> {
        match tokio::time::timeout(EARLY_ANSWER_WAIT, self.read_answer(conn, req, first)).await {
            Ok(Ok(mut a)) => {
                tracing::debug!(
                    status = a.status,
                    "Docs answered before the whole request body was sent"
                );
                a.reusable = false;
                a.early = true;
                Some(a)
            }
            _ => None,
        }
    }

    fn pool(&self) -> &Pool {
        &self.pools[LANE.with(std::cell::Cell::get)]
    }

    fn checkout(&self) -> Option<TcpStream> {
        let mut pool = self
            .pool()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some((conn, since)) = pool.pop_back() {
            if since.elapsed() >= POOL_IDLE {
                continue;
            }
            let mut probe = [0u8; 1];
            // Readable now means closed (or a stray byte): either way unusable.
            match conn.try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(conn),
                _ => continue,
            }
        }
        None
    }

    fn checkin(&self, conn: TcpStream) {
        let mut pool = self
            .pool()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while pool
            .front()
            .is_some_and(|(_, since)| since.elapsed() >= POOL_IDLE)
        {
            pool.pop_front();
        }
        if pool.len() < POOL_MAX {
            pool.push_back((conn, Instant::now()));
        }
    }

    async fn connect(&self, timeout: Duration) -> Result<TcpStream, (UpstreamKind, String)> {
        let Some(connect_to) = self.connect_to.as_deref() else {
            return Err((UpstreamKind::Connect, "Docs is not plain http".into()));
        };
        match tokio::time::timeout(timeout, TcpStream::connect(connect_to)).await {
            Ok(Ok(c)) => {
                let _ = c.set_nodelay(true);
                Ok(c)
            }
            Ok(Err(e)) => Err((
                UpstreamKind::Connect,
                format!("connecting to {connect_to}: {e}"),
            )),
            Err(_) => Err((
                UpstreamKind::Connect,
                format!("connecting to {connect_to}: no connection within {timeout:?}"),
            )),
        }
    }

    /// Writes the head and the body as the front framed it: `Content-Length` bytes, or a
    /// chunked body decoded strictly and re-framed in canonical chunks (a malformed one stops
    /// there, and the Docs connection is dropped with it). Each read of the body waits at
    /// most `body_idle`; an answer from Docs meanwhile stops the upload.
    async fn write_request(
        &self,
        conn: &mut TcpStream,
        client: &mut TcpStream,
        buf: &mut BytesMut,
        req: &Prepared,
        (body_idle, limit): (Duration, u64),
    ) -> Result<(), SendError> {
        let up_bytes = &self.up().up_bytes;
        match req.body {
            h1::Framing::None | h1::Framing::Length(0) => {
                conn.write_all(&req.out).await.map_err(SendError::Upstream)
            }
            h1::Framing::Length(len) => {
                // The head and what already arrived of the body go out in one write.
                let have = (buf.len() as u64).min(len) as usize;
                let mut first = Vec::with_capacity(req.out.len() + have);
                first.extend_from_slice(&req.out);
                first.extend_from_slice(&buf[..have]);
                conn.write_all(&first).await.map_err(SendError::Upstream)?;
                up_bytes.inc_by(have as u64);
                buf.advance(have);
                let mut left = len - have as u64;
                // The rest streams through a buffer that grows with what the client sends
                // (a trickling upload holds little).
                let mut chunk = Vec::new();
                while left > 0 {
                    let want = usize::try_from(left)
                        .unwrap_or(STREAM_CHUNK)
                        .min(STREAM_CHUNK);
                    let n = read_body(conn, client, &mut chunk, want, body_idle).await?;
                    forward_body(conn, &chunk[..n]).await?;
                    up_bytes.inc_by(n as u64);
                    left -= n as u64;
                }
                Ok(())
            }
            h1::Framing::Chunked => {
                let mut dec = h1::chunked::ChunkedDecoder::default();
                let mut out = Vec::with_capacity(req.out.len() + buf.len() + 16);
                out.extend_from_slice(&req.out);
                let p =
                    h1::chunked::reframe(&mut dec, buf, &mut out).map_err(SendError::Malformed)?;
                buf.advance(p.consumed);
                if dec.data > limit {
                    return Err(SendError::TooLarge);
                }
                conn.write_all(&out).await.map_err(SendError::Upstream)?;
                let mut done = p.done;
                let mut chunk = Vec::new();
                while !done {
                    let n = read_body(conn, client, &mut chunk, STREAM_CHUNK, body_idle).await?;
                    out.clear();
                    let p = h1::chunked::reframe(&mut dec, &chunk[..n], &mut out)
                        .map_err(SendError::Malformed)?;
                    if dec.data > limit {
                        return Err(SendError::TooLarge);
                    }
                    forward_body(conn, &out).await?;
                    up_bytes.inc_by(out.len() as u64);
                    done = p.done;
                    if done {
                        // A pipelined request after the body stays for the next round.
                        buf.extend_from_slice(&chunk[p.consumed..n]);
                    }
                }
                Ok(())
            }
        }
    }

    /// Reads the answer's head (informational answers other than 101 are skipped, as the
    /// pooled client does), after `first`, the bytes of it already read. The error says
    /// whether nothing at all arrived.
    async fn read_answer(
        &self,
        mut conn: TcpStream,
        req: &Prepared,
        first: BytesMut,
    ) -> Result<Answer, (String, bool)> {
        let mut any = !first.is_empty();
        let mut rest = first;
        loop {
            if !rest.is_empty() {
                match parse_answer(&rest, &req.method) {
                    Ok(Some((head_len, a))) => {
                        rest.advance(head_len);
                        if (100..200).contains(&a.status) && a.status != 101 {
                            continue;
                        }
                        return Ok(a.into_answer(conn, rest));
                    }
                    Ok(None) if rest.len() < MAX_HEAD => {}
                    Ok(None) => return Err(("answer head over 64 KiB".into(), false)),
                    Err(e) => return Err((format!("unreadable answer head: {e}"), false)),
                }
            }
            if rest.capacity() - rest.len() < 512 {
                rest.reserve(HEAD_CHUNK);
            }
            match conn.read_buf(&mut rest).await {
                Ok(0) => {
                    return Err(("connection closed before an answer".into(), !any));
                }
                Ok(_) => any = true,
                Err(e) => return Err((format!("reading the answer: {e}"), !any)),
            }
        }
    }

    /// Writes the answer's head and streams its body to the client.
    async fn respond(
        &self,
        client: &mut TcpStream,
        answer: Answer,
        close: bool,
        (mut timer, idle): (Pin<&mut Sleep>, Duration),
    ) -> Result<(), Cut> {
        let Answer {
            mut head,
            framing,
            reusable,
            mut conn,
            mut rest,
            ..
        } = answer;
        if close {
            head.extend_from_slice(b"connection: close\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let down = &self.up().down_bytes;
        match framing {
            Framing::Empty => {
                client.write_all(&head).await.map_err(Cut::Client)?;
                if reusable && rest.is_empty() {
                    self.checkin(conn);
                }
                Ok(())
            }
            Framing::Length(len) => {
                let now = (rest.len() as u64).min(len) as usize;
                head.extend_from_slice(&rest[..now]);
                client.write_all(&head).await.map_err(Cut::Client)?;
                down.inc_by(now as u64);
                let extra = rest.len() > now;
                let mut left = len - now as u64;
                if left > 0 {
                    let mut chunk =
                        vec![0u8; STREAM_CHUNK.min(usize::try_from(left).unwrap_or(STREAM_CHUNK))];
                    while left > 0 {
                        let want = chunk
                            .len()
                            .min(usize::try_from(left).unwrap_or(chunk.len()));
                        let n = idle_io(timer.as_mut(), idle, conn.read(&mut chunk[..want]))
                            .await
                            .map_err(Cut::Upstream)?;
                        if n == 0 {
                            return Err(Cut::Upstream(io::ErrorKind::UnexpectedEof.into()));
                        }
                        idle_io(timer.as_mut(), idle, client.write_all(&chunk[..n]))
                            .await
                            .map_err(Cut::Client)?;
                        down.inc_by(n as u64);
                        left -= n as u64;
                    }
                }
                if reusable && !extra {
                    self.checkin(conn);
                }
                Ok(())
            }
            Framing::Chunked => {
                let mut dec = h1::chunked::ChunkedDecoder::default();
                let end = follow(&mut dec, &rest)?;
                let now = end.unwrap_or(rest.len());
                head.extend_from_slice(&rest[..now]);
                client.write_all(&head).await.map_err(Cut::Client)?;
                let mut extra = rest.len() > now;
                if end.is_none() {
                    rest.clear();
                    rest.reserve(STREAM_CHUNK);
                    loop {
                        rest.clear();
                        let n = idle_io(timer.as_mut(), idle, conn.read_buf(&mut rest))
                            .await
                            .map_err(Cut::Upstream)?;
                        if n == 0 {
                            return Err(Cut::Upstream(io::ErrorKind::UnexpectedEof.into()));
                        }
                        let end = follow(&mut dec, &rest)?;
                        let upto = end.unwrap_or(rest.len());
                        idle_io(timer.as_mut(), idle, client.write_all(&rest[..upto]))
                            .await
                            .map_err(Cut::Client)?;
                        if end.is_some() {
                            extra = rest.len() > upto;
                            break;
                        }
                    }
                }
                down.inc_by(dec.data);
                if reusable && !extra {
                    self.checkin(conn);
                }
                Ok(())
            }
            Framing::UntilClose => {
                let now = rest.len();
                head.extend_from_slice(&rest);
                client.write_all(&head).await.map_err(Cut::Client)?;
                down.inc_by(now as u64);
                rest.clear();
                rest.reserve(STREAM_CHUNK);
                loop {
                    rest.clear();
                    let n = idle_io(timer.as_mut(), idle, conn.read_buf(&mut rest))
                        .await
                        .map_err(Cut::Upstream)?;
                    if n == 0 {
                        return Ok(());
                    }
                    idle_io(timer.as_mut(), idle, client.write_all(&rest))
                        .await
                        .map_err(Cut::Client)?;
                    down.inc_by(n as u64);
                }
            }
        }
    }

    /// Writes the 101 and copies both ways until either side closes or nothing moved for
    /// `docs.tunnel_idle_timeout`.
    async fn tunnel(&self, client: &mut TcpStream, answer: Answer, to_up: BytesMut) {
        let Answer {
            mut head,
            mut conn,
            rest: to_down,
            ..
        } = answer;
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(&to_down);
        if client.write_all(&head).await.is_err() {
            return;
        }
        let up = self.up();
        up.down_bytes.inc_by(to_down.len() as u64);
        if !to_up.is_empty() {
            if conn.write_all(&to_up).await.is_err() {
                return;
            }
            up.up_bytes.inc_by(to_up.len() as u64);
        }
        let idle = self.ctx.settings().docs.tunnel_idle_timeout;
        let metrics = &self.ctx.metrics;
        metrics.tunnels.inc();
        let (cr, cw) = client.split();
        let (ur, uw) = conn.split();
        super::tunnel_halves(cr, cw, ur, uw, idle, &up.up_bytes, &up.down_bytes).await;
        metrics.tunnels.dec();
    }
}

/// Which side ended a streamed answer early.
enum Cut {
    Client(io::Error),
    Upstream(io::Error),
}

enum SendError {
    Upstream(io::Error),
    /// The client's body ended before its framing did.
    Client(io::Error),
    /// A chunked body that does not parse.
    Malformed(h1::chunked::ChunkError),
    /// No byte of the body for `server.body_idle_timeout_seconds`.
    Stalled,
    /// A chunked body over the proxy group's body limit.
    TooLarge,
    /// Docs has something to say before it read the whole request body: the first bytes of
    /// an answer (none: it closed the connection).
    Answered(BytesMut),
}

/// Reads the next piece of a request body from `client` into `chunk` (at most `want` bytes;
/// the buffer grows only as reads fill it), while watching `conn` for an early answer.
/// Errors: the client closed (`Client`), nothing came for `idle` (`Stalled`).
async fn read_body(
    conn: &mut TcpStream,
    client: &mut TcpStream,
    chunk: &mut Vec<u8>,
    want: usize,
    idle: Duration,
) -> Result<usize, SendError> {
    // Start small and double while reads fill the buffer.
    let size = if chunk.is_empty() {
        (16 * 1024).min(want)
    } else {
        chunk.len().min(want)
    };
    chunk.resize(size, 0);
    let (up_read, _) = conn.split();
    let deadline = Instant::now() + idle;
    // Both branches are cancel-safe: a read either happened or did not.
    let n = loop {
        tokio::select! {
            biased;
            r = up_read.readable() => heard_from_docs(&up_read, r)?,
            r = client.read(&mut chunk[..size]) => break r.map_err(SendError::Client)?,
            () = tokio::time::sleep_until(deadline) => return Err(SendError::Stalled),
        }
    };
    if n == 0 {
        return Err(SendError::Client(io::ErrorKind::UnexpectedEof.into()));
    }
    if n == size && size < want {
        chunk.resize((size * 2).min(want), 0);
    }
    Ok(n)
}

/// Writes `bytes` of a request body to Docs, stopping when Docs answers first.
async fn forward_body(conn: &mut TcpStream, bytes: &[u8]) -> Result<(), SendError> {
    let (up_read, mut up_write) = conn.split();
    let mut off = 0;
    while off < bytes.len() {
        tokio::select! {
            biased;
            r = up_read.readable() => heard_from_docs(&up_read, r)?,
            r = up_write.write(&bytes[off..]) => match r.map_err(SendError::Upstream)? {
                0 => return Err(SendError::Upstream(io::ErrorKind::WriteZero.into())),
                w => off += w,
            },
        }
    }
    Ok(())
}

/// Why a request got no answer from Docs: the client's fault (answered with the error), or
/// Docs' (counted as an upstream error).
enum Failed {
    Client(GatewayError),
    Upstream(UpstreamKind, String),
}

/// The Docs connection turned readable while the request body was going out: what Docs sent
/// (as [`SendError::Answered`]), or nothing when the readiness was stale.
fn heard_from_docs(
    up: &tokio::net::tcp::ReadHalf<'_>,
    ready: io::Result<()>,
) -> Result<(), SendError> {
    ready.map_err(SendError::Upstream)?;
    let mut first = BytesMut::with_capacity(HEAD_CHUNK);
    match up.try_read_buf(&mut first) {
        Ok(_) => Err(SendError::Answered(first)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(SendError::Upstream(e)),
    }
}

/// One read or write of a streamed body: an error when nothing moved for `idle`.
async fn idle_io<T>(
    timer: Pin<&mut Sleep>,
    idle: Duration,
    f: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match until(timer, Instant::now() + idle, f).await {
        Some(r) => r,
        None => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Runs `f` until `deadline` on the connection's one timer. The timer moves earlier only
/// when `deadline` comes before the time it is set for; when it fires before `deadline` it is
/// set again. A connection serving request after request therefore touches the timer wheel
/// about once per timeout period, not twice per request.
async fn until<F: Future>(
    mut timer: Pin<&mut Sleep>,
    deadline: Instant,
    f: F,
) -> Option<F::Output> {
    if deadline < timer.deadline() {
        timer.as_mut().reset(deadline);
    }
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        while timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Poll::Ready(None);
            }
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    })
    .await
}

/// An answer head, parsed.
struct ParsedAnswer {
    status: u16,
    head: Vec<u8>,
    framing: Framing,
    reusable: bool,
}

impl ParsedAnswer {
    fn into_answer(self, conn: TcpStream, rest: BytesMut) -> Answer {
        Answer {
            status: self.status,
            head: self.head,
            framing: self.framing,
            reusable: self.reusable,
            conn,
            rest,
            early: false,
        }
    }
}

/// Parses an answer head: the status, the head for the client (hop-by-hop headers gone;
/// kept whole for a 101), how the body is framed, and whether the connection may be reused.
fn parse_answer(
    buf: &[u8],
    method: &http::Method,
) -> Result<Option<(usize, ParsedAnswer)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.code.ok_or("no status")?;
    let version = resp.version.unwrap_or(1);
    let headers = &*resp.headers;
    let mut named: Vec<&str> = Vec::new();
    let (mut length, mut chunked, mut te, mut close, mut keep_alive, mut date) =
        (None::<u64>, false, false, false, false, false);
    for h in headers {
        if lower_eq(h.name, "connection") {
            for t in h1::field::tokens(h.value) {
                if lower_eq(t, "close") {
                    close = true;
                } else if lower_eq(t, "keep-alive") {
                    keep_alive = true;
                }
                named.push(t);
            }
        } else if lower_eq(h.name, "transfer-encoding") {
            te = true;
            chunked = h1::field::tokens(h.value)
                .last()
                .is_some_and(|t| lower_eq(t, "chunked"));
        } else if lower_eq(h.name, "content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or("unreadable content-length")?;
            if length.is_some_and(|l| l != v) {
                return Err("conflicting content-length".into());
            }
            length = Some(v);
        } else if lower_eq(h.name, "date") {
            date = true;
        }
    }
    let framing = if *method == http::Method::HEAD
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        Framing::Empty
    } else if te {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let reusable = !close && (version == 1 || keep_alive) && framing != Framing::UntilClose;
    let mut head = Vec::with_capacity(head_len + 64);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.to_string().as_bytes());
    head.push(b' ');
    match resp.reason.filter(|r| !r.is_empty()) {
        Some(r) => head.extend_from_slice(r.as_bytes()),
        None => head.extend_from_slice(
            http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("")
                .as_bytes(),
        ),
    }
    head.extend_from_slice(b"\r\n");
    for h in headers {
        let keep = if status == 101 {
            true
        } else if lower_eq(h.name, "transfer-encoding") {
            // Passed through as it came: the body is copied with its chunks.
            framing == Framing::Chunked
        } else {
            !h1::field::is_hop_by_hop(h.name, &named) && !lower_eq(h.name, "upgrade")
        };
        if keep {
            h1::push_field(&mut head, h.name.as_bytes(), h.value);
        }
    }
    if !date {
        h1::push_field(
            &mut head,
            b"date",
            httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
        );
    }
    Ok(Some((
        head_len,
        ParsedAnswer {
            status,
            head,
            framing,
            reusable,
        },
    )))
}

/// The gateway's own error answer (logged once by the error), as the HTTP server would
/// write it.
fn error_answer(e: GatewayError, close: bool) -> Vec<u8> {
    use futures_util::FutureExt as _;
    let resp = e.into_response();
    let (parts, body) = resp.into_parts();
    // Error bodies are whole in memory: the read completes at once.
    let body = axum::body::to_bytes(body, 1 << 20)
        .now_or_never()
        .and_then(Result::ok)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (n, v) in &parts.headers {
        if n != http::header::CONTENT_LENGTH && n != http::header::CONNECTION {
            h1::push_field(&mut out, n.as_str().as_bytes(), v.as_bytes());
        }
    }
    h1::push_field(
        &mut out,
        b"content-length",
        body.len().to_string().as_bytes(),
    );
    h1::push_field(
        &mut out,
        b"date",
        httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
    );
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out
}

/// Follows a chunked answer as it is copied, with the front's strict decoder: the byte
/// after its end, when it ended in `bytes`.
fn follow(dec: &mut h1::chunked::ChunkedDecoder, bytes: &[u8]) -> Result<Option<usize>, Cut> {
    let p = dec
        .feed(bytes, |_| {})
        .map_err(|e| Cut::Upstream(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    Ok(p.done.then_some(p.consumed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chunked_answers_end_where_they_end() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let mut c = h1::chunked::ChunkedDecoder::default();
        assert_eq!(follow(&mut c, body).ok(), Some(Some(body.len() - 4)));
        assert_eq!(c.data, 9);
        // Malformed framing is an error, not a guess.
        for bad in [&b"x\r\n"[..], b"4\r\nWikiX", b"\r\n", b"0\r\n\n"] {
            let mut c = h1::chunked::ChunkedDecoder::default();
            assert!(follow(&mut c, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn answer_heads_lose_hop_by_hop_headers_and_say_their_framing() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: x-private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nDate: now\r\nX-Kept: yes\r\n\r\nhello";
        let (n, a) = parse_answer(raw, &http::Method::GET).unwrap().unwrap();
        assert_eq!(&raw[n..], b"hello");
        let head = String::from_utf8(a.head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("X-Kept: yes") && head.contains("Content-Length: 5"));
        assert!(!head.to_ascii_lowercase().contains("x-private"));
        assert!(!head.to_ascii_lowercase().contains("keep-alive"));
        assert_eq!(a.framing, Framing::Length(5));
        assert!(a.reusable);
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        let (_, a) = parse_answer(raw, &http::Method::GET).unwrap().unwrap();
        assert_eq!(a.framing, Framing::Chunked);
        assert!(!a.reusable);
        assert!(
            String::from_utf8(a.head)
                .unwrap()
                .contains("Transfer-Encoding: chunked")
        );
        let raw = b"HTTP/1.0 200 OK\r\n\r\n";
        let (_, a) = parse_answer(raw, &http::Method::GET).unwrap().unwrap();
        assert_eq!(a.framing, Framing::UntilClose);
        assert!(String::from_utf8(a.head).unwrap().contains("date: "));
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let (_, a) = parse_answer(raw, &http::Method::HEAD).unwrap().unwrap();
        assert_eq!(a.framing, Framing::Empty);
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert!(parse_answer(raw, &http::Method::GET).is_err());
    }
}
