//! A request's body on its way in: the deadline it must meet (`http.body_timeout_ms`,
//! running from the end of its head: [`DeadlineBody`]), reading it whole for a handler
//! ([`buffer_body`]), and dropping it for a refusal ([`discard_body`]). The connection
//! that sets the deadline and says `Connection: close` for a body left unread is
//! `conn.rs`'s.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest as _, Request};
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error of a body that was not complete by its deadline.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within http.body_timeout_ms")]
pub struct BodyTimeout;

/// A request body that fails with [`BodyTimeout`] once its deadline passes. The timer is
/// armed only when the body is awaited and not there yet: most bodies never need one.
/// It also clears the connection's `unread` flag once the body has been read to its end.
pub(super) struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    unread: Arc<AtomicBool>,
}

impl DeadlineBody {
    pub(super) fn new(inner: Incoming, deadline: Instant, unread: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            deadline,
            timer: None,
            unread,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() || this.inner.is_end_stream() {
                this.unread.store(false, Ordering::Relaxed);
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyTimeout))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `err`, or an error under it, is a [`BodyTimeout`].
fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<BodyTimeout>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Why a body could not be read ([`buffer_body`]); the route family decides how to
/// answer (`http/limits.rs`).
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Later than its deadline: [`Refusal::BodyTimeout`].
    Timeout,
    /// Over the route's limit (413) or broken (400), as axum's `Bytes` extractor says.
    Rejected(axum::extract::rejection::BytesRejection),
}

/// Reads the whole body of `req` (within the route's `DefaultBodyLimit`) and gives the
/// request back with the body in memory, or says why it could not.
pub(crate) async fn buffer_body(req: Request) -> Result<Request, BodyError> {
    let (parts, body) = req.into_parts();
    // The extractor finds the route's body limit in the extensions.
    let probe = Request::from_parts(parts.clone(), body);
    match Bytes::from_request(probe, &()).await {
        Ok(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Err(rejection) if is_body_timeout(&rejection) => Err(BodyError::Timeout),
        Err(rejection) => Err(BodyError::Rejected(rejection)),
    }
}

/// The largest body a refusal reads to keep its connection usable ([`discard_body`]):
/// every signing request but a large document to seal is smaller.
pub(crate) const DISCARD_MAX_BYTES: u64 = 64 * 1024;

/// Reads and drops the body of a request refused before its body was read, when it is
/// announced at most [`DISCARD_MAX_BYTES`] long, so that the connection stays usable.
///
/// hyper keeps a connection alive after a response only if the request's body was read
/// to its end; a body still on its way when the response goes out (a client's segment
/// split, a slow sender) made hyper close the connection after a response that had
/// announced keep-alive, and the client's next request on it failed as a broken
/// connection (`hanko-bench overload` counted up to 15 in a 15 s run). A body larger,
/// chunked, or not in by the request's body deadline is left: the connection's service
/// (`conn.rs`) then
/// answers with `Connection: close`, which tells the client not to reuse the connection.
pub(crate) async fn discard_body(body: Body) {
    let small = body
        .size_hint()
        .exact()
        .is_some_and(|n| n <= DISCARD_MAX_BYTES);
    if small {
        let _ = axum::body::to_bytes(body, DISCARD_MAX_BYTES as usize).await;
    }
}
