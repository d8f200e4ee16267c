//! The connections under the router: the accept loop, how many connections may be open,
//! and how long a client may take to send a request. This is what keeps a few slow
//! clients from taking the server (issue #11: 140 connections trickling one byte every
//! 10 s held every admission permit and every other client got 503).
//!
//! ```text
//!   accept ─> connection cap (all, per source) ── over ──> 503 + close   {connections, connections_per_source}
//!          │                                      (HTTPS listener: close, no plain-text 503)
//!          ─> HTTPS only: TLS handshake ── not done within handshake_timeout ──> close {handshake_timeout}
//!          ─> task: hyper HTTP/1.1 over TrackedStream, ConnService, watchdog
//!               phase Head ── head not in within header_timeout ──> close   {header_timeout}
//!               phase Busy ── request in the router; its body under a deadline:
//!                             body not in within body_timeout ──> 408 + close {body_timeout}
//!               phase Idle ── no new request within keepalive_timeout ──> close
//! ```
//!
//! A connection starts in `Head` (the deadline runs from the accept: a connection that
//! sends nothing is a slow head); the first byte after a response moves `Idle` to
//! `Head`; hyper handing a request to the service moves it to `Busy`, and its response
//! to `Idle`. The head and idle deadlines belong to the connection (a watchdog per
//! connection ends it); the body deadline belongs to the request (`DeadlineBody`,
//! running from the end of the head), so that whoever reads a body meets it:
//! `buffer_body` answers 408. A response to a request whose body was not read to its
//! end says `Connection: close`: hyper closes such a connection after the response, and
//! the client must know not to send its next request on it (refusals read small bodies
//! first, `discard_body`, so that their connections stay usable). hyper's own
//! `header_read_timeout` is not used because it also runs while a kept-alive connection
//! is idle, which would tie the idle timeout to the head's.
//!
//! Connections beyond `http.max_connections`, or beyond `http.max_connections_per_source`
//! from one client address (keyed as the rate limit keys clients: an IPv6 address by its
//! /64), are refused as cheaply as possible: one non-blocking write of a 503 and a close,
//! before hyper or a task is involved. Every refusal is counted in
//! `hanko_http_refused_total{reason}`; `hanko_http_open_connections` is the gauge of
//! open connections.
//!
//! Every listener (plain HTTP, HTTPS: [`Listener`]) has its own accept loop; the caps,
//! deadlines and shutdown are shared, so everything above holds over TLS too. On HTTPS
//! the head's deadline runs from the end of the handshake, which has its own
//! (`tls.handshake_timeout_ms`, see [`super::tls`]). Only HTTP/1.1 is served (HTTP/2
//! would need deadlines per stream; ALPN offers `http/1.1` only). Shutdown, like mini-redis: stop accepting, tell every connection to
//! finish its request and close (hyper's graceful shutdown), wait until the connection
//! cap has every slot back or `drain_timeout` passes, then close what is left.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody as _};
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::body::{DeadlineBody, discard_body};
use super::peer::PeerCertificate;
use super::phase::{Deadlines, Phase, PhaseCell, TrackedStream, watchdog};
use super::tls::TlsServer;
use super::{EarlyRefusal, Refusal};
use crate::config::HttpSettings;
use crate::logging::LogLimiter;

/// A socket to accept connections on: plain HTTP, or HTTPS with `tls`.
#[derive(Debug)]
pub struct Listener {
    /// The bound socket.
    pub tcp: TcpListener,
    /// The TLS side of an HTTPS listener; `None`: plain HTTP.
    pub tls: Option<Arc<TlsServer>>,
}

/// What every connection of every listener shares.
struct Shared {
    caps: Arc<ConnectionCaps>,
    router: Router,
    early: Option<Arc<EarlyRefusal>>,
    deadlines: Deadlines,
}

/// Serves `router` on every listener until `shutdown` completes, then drains (see the
/// module docs) for at most `drain_timeout`. `early`: the refusals answered before the
/// router under overload (`http/shed.rs`; `None`: the router answers everything). The
/// connection caps are shared by all the listeners: they protect the process's
/// descriptors, whichever socket a client used.
pub async fn serve(
    listeners: Vec<Listener>,
    router: Router,
    early: Option<Arc<EarlyRefusal>>,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()>,
    drain_timeout: Duration,
) {
    let shared = Arc::new(Shared {
        caps: Arc::new(ConnectionCaps::new(settings)),
        router,
        early,
        deadlines: Deadlines {
            header: settings.header_timeout,
            body: settings.body_timeout,
            idle: settings.keepalive_timeout,
        },
    });
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|l| tokio::spawn(accept_loop(l, shared.clone(), stop_rx.clone())))
        .collect();
    shutdown.await;
    tracing::info!("shutting down: no new connections, draining requests in flight");
    stop_tx.send_replace(Stop::Draining);
    for l in loops {
        let _ = l.await;
    }
    if tokio::time::timeout(drain_timeout, shared.caps.all_closed())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?drain_timeout, "drain timeout: closing remaining connections");
        stop_tx.send_replace(Stop::Closing);
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.caps.all_closed()).await;
    }
}

/// Accepts on one listener until the server stops, each connection under the caps.
async fn accept_loop(listener: Listener, shared: Arc<Shared>, mut stop: watch::Receiver<Stop>) {
    static ACCEPT_ERRORS: LogLimiter = LogLimiter::new(Duration::from_secs(10));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = ACCEPT_BACKOFF_MIN;
                a
            }
            // The peer gave up before we took its connection: nothing is wrong here.
            Err(e) if is_connection_error(&e) => continue,
            // Out of file descriptors or memory: wait a little, or the loop spins.
            Err(e) => {
                metrics::counter!("hanko_http_accept_errors_total").increment(1);
                if let Some(suppressed) = ACCEPT_ERRORS.check() {
                    tracing::error!(error = %e, suppressed, retry_in = ?backoff, "cannot accept connections");
                }
                tokio::select! {
                    () = stopped(&mut stop) => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let slot = match shared.caps.take(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                match listener.tls {
                    // One attempt, never a wait: a client that does not read loses the answer.
                    None => {
                        let _ = stream.try_write(&super::refusal_bytes(refusal));
                    }
                    // No plain-text answer inside a TLS port: a close, counted.
                    Some(_) => refusal.count(),
                }
                continue;
            }
        };
        match &listener.tls {
            None => {
                tokio::spawn(connection(
                    stream,
                    peer,
                    None,
                    slot,
                    shared.clone(),
                    stop.clone(),
                ));
            }
            Some(tls) => {
                tokio::spawn(tls_connection(
                    stream,
                    peer,
                    tls.clone(),
                    slot,
                    shared.clone(),
                    stop.clone(),
                ));
            }
        }
    }
}

/// Completes once the server is no longer [`Stop::Running`].
async fn stopped(stop: &mut watch::Receiver<Stop>) {
    while *stop.borrow_and_update() == Stop::Running {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// A TLS connection: the handshake under `tls.handshake_timeout_ms` (from the accept;
/// a client that trickles its ClientHello holds a slot no longer than that), then HTTP
/// as on a plain connection, with the verified client certificate, if any, handed to
/// every request ([`PeerCertificate`]).
async fn tls_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Arc<TlsServer>,
    slot: ConnectionSlot,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<Stop>,
) {
    let handshake = tokio::time::timeout(
        tls.settings().handshake_timeout,
        tls.acceptor().accept(stream),
    );
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                metrics::counter!("hanko_tls_handshake_failures_total").increment(1);
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                Refusal::HandshakeTimeout.count();
                return;
            }
        },
        // No request was in flight: nothing to drain.
        () = stopped(&mut stop) => return,
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| PeerCertificate(Arc::from(leaf.as_ref())));
    connection(stream, peer, certificate, slot, shared, stop).await;
}

/// First wait after an accept error other than a peer's; doubled up to
/// [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest wait between accepts after errors.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// An accept error that concerns one connection only.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What the accept loop tells its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Serve as usual.
    Running,
    /// Finish the request in hand, then close.
    Draining,
    /// Close now (the drain timeout passed).
    Closing,
}

/// Serves HTTP on one connection (plain, or TLS after its handshake) until it closes,
/// a deadline passes, or the server stops.
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    certificate: Option<PeerCertificate>,
    slot: ConnectionSlot,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<Stop>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadlines = shared.deadlines;
    let phase = Arc::new(PhaseCell::new(Phase::Head(Instant::now())));
    let io = TokioIo::new(TrackedStream {
        inner: stream,
        phase: phase.clone(),
    });
    let service = ConnService {
        router: shared.router.clone(),
        early: shared.early.clone(),
        peer,
        certificate,
        phase: phase.clone(),
        unread: Arc::new(AtomicBool::new(false)),
        body_timeout: deadlines.body,
    };
    let conn = hyper::server::conn::http1::Builder::new()
        // The watchdog below keeps the head's deadline (see the module docs).
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut watchdog = std::pin::pin!(watchdog(phase, deadlines));
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            cut = &mut watchdog => {
                match cut {
                    Phase::Head(_) => Refusal::HeaderTimeout.count(),
                    Phase::Idle(_) => metrics::counter!("hanko_http_idle_closed_total").increment(1),
                    Phase::Busy => {}
                }
                break;
            }
            changed = stop.changed() => {
                let now = if changed.is_ok() { *stop.borrow_and_update() } else { Stop::Closing };
                match now {
                    Stop::Running => {}
                    Stop::Draining => conn.as_mut().graceful_shutdown(),
                    Stop::Closing => break,
                }
            }
        }
    }
    drop(slot);
}

/// The router as one connection's hyper service: the peer address for the rate limit
/// (`ConnectInfo`) and its verified TLS client certificate ([`PeerCertificate`]), the
/// body under its deadline, the phase for the watchdog.
#[derive(Clone)]
struct ConnService {
    router: Router,
    early: Option<Arc<EarlyRefusal>>,
    peer: SocketAddr,
    certificate: Option<PeerCertificate>,
    phase: Arc<PhaseCell>,
    /// Whether the request now in the service has a body not read to its end (set by
    /// [`DeadlineBody`]): its response then says `Connection: close`, as hyper will
    /// close the connection after it.
    unread: Arc<AtomicBool>,
    body_timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.phase.set(Phase::Busy);
        let deadline = Instant::now() + self.body_timeout;
        self.unread
            .store(!req.body().is_end_stream(), Ordering::Relaxed);
        let early = self
            .early
            .as_ref()
            .and_then(|e| e.answer(&req, self.certificate.is_some()));
        let unread = self.unread.clone();
        let mut req = req.map(|body| Body::new(DeadlineBody::new(body, deadline, unread.clone())));
        let phase = self.phase.clone();
        if let Some(refused) = early {
            // Answered without the router.
            return Box::pin(async move {
                discard_body(req.into_body()).await;
                Ok(finish(refused, &unread, &phase))
            });
        }
        req.extensions_mut().insert(ConnectInfo(self.peer));
        if let Some(c) = &self.certificate {
            req.extensions_mut().insert(c.clone());
        }
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(req).await?;
            Ok(finish(response, &unread, &phase))
        })
    }
}

/// A response on its way out: `Connection: close` if the request's body was not read to
/// its end (hyper closes such a connection; the client is told so), and the connection
/// idle again.
fn finish(mut response: Response, unread: &AtomicBool, phase: &PhaseCell) -> Response {
    if unread.load(Ordering::Relaxed) {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    phase.set(Phase::Idle(Instant::now()));
    response
}

/// How many connections are open, in all and per client address.
#[derive(Debug)]
struct ConnectionCaps {
    /// One permit per open connection.
    slots: Arc<Semaphore>,
    max: usize,
    per_source_max: usize,
    /// Open connections per client key; an entry goes with its last connection.
    per_source: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionCaps {
    fn new(settings: &HttpSettings) -> Self {
        let max = settings.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            per_source_max: settings.max_connections_per_source.max(1),
            per_source: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for a new connection from `peer`, or why there is none.
    fn take(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return Err(Refusal::Connections);
        };
        let key = super::limits::client_key(peer);
        {
            let mut per_source = self.per_source.lock().unwrap_or_else(|e| e.into_inner());
            let open = per_source.entry(key).or_insert(0);
            if *open >= self.per_source_max {
                return Err(Refusal::ConnectionsPerSource);
            }
            *open += 1;
        }
        self.gauge();
        Ok(ConnectionSlot {
            caps: self.clone(),
            key,
            _permit: permit,
        })
    }

    /// Completes once every connection is closed (no new ones are accepted by then).
    async fn all_closed(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.slots.acquire_many(all).await;
    }

    fn gauge(&self) {
        let open = self.max.saturating_sub(self.slots.available_permits());
        metrics::gauge!("hanko_http_open_connections").set(open as f64);
    }
}

/// An open connection's place in [`ConnectionCaps`]; given back on drop.
struct ConnectionSlot {
    caps: Arc<ConnectionCaps>,
    key: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        {
            let mut per_source = self
                .caps
                .per_source
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(open) = per_source.get_mut(&self.key) {
                *open = open.saturating_sub(1);
                if *open == 0 {
                    per_source.remove(&self.key);
                }
            }
        }
        // The permit goes back after this body; count it as gone already.
        let open = self
            .caps
            .max
            .saturating_sub(self.caps.slots.available_permits() + 1);
        metrics::gauge!("hanko_http_open_connections").set(open as f64);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn caps(max: usize, per_source: usize) -> Arc<ConnectionCaps> {
        let mut s = HttpSettings::with_max_in_flight(1);
        s.max_connections = max;
        s.max_connections_per_source = per_source;
        Arc::new(ConnectionCaps::new(&s))
    }

    #[test]
    fn connections_are_capped_per_source_and_in_all() {
        let caps = caps(5, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let a6: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b_same_64: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let a1 = caps.take(a).unwrap();
        let _a2 = caps.take(a6).unwrap();
        assert_eq!(caps.take(a).err(), Some(Refusal::ConnectionsPerSource));
        let _b1 = caps.take(b).unwrap();
        let _b2 = caps.take(b).unwrap();
        assert_eq!(
            caps.take(b_same_64).err(),
            Some(Refusal::ConnectionsPerSource),
            "an IPv6 client is its /64"
        );
        let _c1 = caps.take(c).unwrap();
        assert_eq!(caps.take(c).err(), Some(Refusal::Connections));
        drop(a1);
        let _a3 = caps.take(a).unwrap();
        assert_eq!(caps.per_source.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_source_leaves_no_entry_behind() {
        let caps = caps(4, 2);
        let slot = caps.take("192.0.2.9".parse().unwrap()).unwrap();
        drop(slot);
        assert!(caps.per_source.lock().unwrap().is_empty());
        assert_eq!(caps.slots.available_permits(), 4);
    }
}
