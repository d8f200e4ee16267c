//! A connection's phase and its deadlines (`http.header_timeout_ms`,
//! `http.keepalive_timeout_ms`): where the connection is (a head on its way, a request in
//! the router, idle between requests), kept by its stream and service, and the watchdog
//! that ends it when the phase's deadline passes. The connection itself, its caps and the
//! body's deadline are in `conn.rs`, whose module docs describe the deadlines.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The three deadlines of a connection (`http.*_timeout_ms`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Deadlines {
    pub(super) header: Duration,
    pub(super) body: Duration,
    pub(super) idle: Duration,
}

/// Where a connection is, as its deadlines see it (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// A request head is on its way since then.
    Head(Instant),
    /// A request is in the router.
    Busy,
    /// Kept alive, waiting for the next request since then.
    Idle(Instant),
}

/// A connection's [`Phase`], written by its stream and service and read by its
/// watchdog only when a wake-up it set comes due: a request changes the phase three
/// times and wakes nobody (issue #17: a `watch` channel here woke the watchdog task
/// three times per request, with a timer set and cancelled each time).
#[derive(Debug)]
pub(super) struct PhaseCell(std::sync::Mutex<Phase>);

impl PhaseCell {
    pub(super) fn new(phase: Phase) -> PhaseCell {
        PhaseCell(std::sync::Mutex::new(phase))
    }

    pub(super) fn get(&self) -> Phase {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn set(&self, phase: Phase) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = phase;
    }

    /// `Idle` becomes `Head` (the first byte of the next request); other phases stay.
    pub(super) fn head_arrives(&self) {
        let mut p = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Phase::Idle(_) = *p {
            *p = Phase::Head(Instant::now());
        }
    }
}

/// Completes with the phase whose deadline passed; never while a request is in the
/// router (its body has a deadline of its own).
///
/// It is not told when the phase changes. It wakes at the deadline of the phase it last
/// saw, or sooner: at most `min(header, idle)` after it looked, because any phase that
/// begins later (a head arriving on an idle connection moves the deadline from `idle` to
/// `header` away) has a deadline at least that far off. So no deadline is ever passed
/// unnoticed, and a connection costs a wake-up per deadline instead of three per request.
pub(super) async fn watchdog(phase: Arc<PhaseCell>, deadlines: Deadlines) -> Phase {
    let horizon = deadlines.header.min(deadlines.idle);
    loop {
        let seen = phase.get();
        let looked = Instant::now();
        let deadline = match seen {
            Phase::Head(since) => Some(since + deadlines.header),
            Phase::Idle(since) => Some(since + deadlines.idle),
            Phase::Busy => None,
        };
        let wake = deadline.map_or(looked + horizon, |d| d.min(looked + horizon));
        tokio::time::sleep_until(wake).await;
        if let Some(d) = deadline
            && phase.get() == seen
            && Instant::now() >= d
        {
            return seen;
        }
    }
}

/// The socket (or the TLS stream over it), telling the watchdog when the first byte of a
/// new request arrives.
pub(super) struct TrackedStream<S> {
    pub(super) inner: S,
    pub(super) phase: Arc<PhaseCell>,
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.phase.head_arrives();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TrackedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
