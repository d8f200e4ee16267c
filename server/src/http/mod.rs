//! The HTTP front: one [`Router`] built from an `Arc<AppState>`.
//!
//! Each concern has its own file with a `routes()` function returning a
//! `Router<Arc<AppState>>`; [`router`] merges them and adds the layers every route
//! shares. To add an endpoint family (e.g. `tsa.rs` with `POST /tsa`, `GET /tsa/certs`),
//! write its file, add `mod tsa;` and one `.merge(tsa::routes())` line below.
//!
//! ```text
//!   request ─> request_id (X-Request-Id, the request's span) ─> track_metrics
//!           ─> identify (the client model: API key, TLS client certificate -> Identity)
//!           ─> body limit ─> route ─> [authorize] ─> [admit] ─> handler(State<Arc<AppState>>)
//! ```
//!
//! Every route served is described by `GET /openapi.json` (`openapi.rs`); a test holds
//! the two together.
//!
//! `admit` ([`limits`]) guards the signing routes only (`POST /tsa`, `POST /`,
//! `POST /api/v1/seal/cades`, `POST /api/v1/archive/objects` and `POST /api/v1/evidence/renew` (always in the bulk lane), and the CSC API's `signatures/signHash`, `timestamp` and
//! `signDoc` under `/csc/v1` and `/csc/v2`; the seal and CSC
//! routes answer their refusals in JSON,
//! [`json_error`]). Below the
//! router, [`conn`] owns the connections: the accept loops (plain HTTP, and HTTPS with
//! [`tls`]), connection caps, and the deadlines of TLS handshakes, request heads, bodies
//! and idle keep-alive.
//!
//! HTTP status mapping lives here and nowhere else (docs/architecture.md: "one place for each
//! concern").
//!
//! # Refused, or failed: two answers to "cannot sign now"
//! A time-stamp request that cannot be served gets one of two answers, decided by
//! *when* it is known:
//!
//! | when | answer | examples |
//! |---|---|---|
//! | before any work: admission ([`Refusal`], [`refuse`]) | HTTP 503 or 429, `Retry-After`, short text body; `hanko_http_refused_total{reason}` | more than `http.max_in_flight` signing requests in flight (503, `Retry-After: 1`); client over `http.rate_limit_per_sec` (429, `Retry-After` = seconds until its next request is allowed) |
//! | before any work: a client too slow, or too many connections ([`conn`]) | 408 and close (body later than `http.body_timeout_ms`); close (head later than `http.header_timeout_ms`); 503 and close (over `http.max_connections` or `http.max_connections_per_source`); counted in the same metric | a client trickling its request (slowloris), a host opening connections without end |
//! | after admission | HTTP 200 with a TimeStampResp, status rejection, failInfo `systemFailure` (CONFORMANCE 7, 13) | HSM error, timeout or lost token; the signing pool's own `Busy` (`SignErrorKind::Busy`); clock not synchronised (`timeNotAvailable`); log write failed |
//!
//! Admission is an HTTP-level refusal: nothing was decoded, reserved, signed or logged,
//! and under overload the body was not even used (read and dropped when small, so the
//! connection stays usable: `body::discard_body`; an anonymous time-stamp request is
//! refused before the router, [`shed`]) (a signing request takes its in-flight
//! permit only once its body is in, under `http.body_timeout_ms`, so that a client slow
//! to send it holds a connection, never signing capacity: see `http/limits.rs`), so an HTTP error (RFC 9110 §15.6.4 503, RFC 6585 §4 429)
//! with `Retry-After` is the honest answer and costs the server almost nothing. Once a
//! request is admitted its failure is a protocol answer, and RFC 3161 answers every
//! request it can parse with a TimeStampResp (HTTP 200); the pool's `Busy` is one of
//! those, because it comes after the request was decoded (and, with `max_in_flight` at
//! its default `hsm.queue_depth`, only when the in-flight bound and the
//! pool disagree, e.g. `http.max_in_flight` set above it; a client that hung up while
//! its signature waited leaves a job nobody waits for, which the pool drops rather than
//! count as full). 429 rather than 503 for the per-client rate: the client itself is asked to
//! slow down; the server is not overloaded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};

use crate::auth::{Identity, Presented};
use crate::state::AppState;
use peer::PeerCertificate;

mod admin_api;
pub(crate) mod anchor_api;
mod archive_api;
mod archive_rehash;
mod body;
pub mod conn;
mod csc;
mod health;
pub mod json_error;
pub mod limits;
mod log_api;
mod metrics_route;
mod openapi;
pub mod peer;
mod phase;
mod policy;
mod renew_api;
pub mod request_id;
mod seal;
mod seal_pdf;
pub mod shed;
pub mod tls;
pub mod tls_hsm;
mod tsa;
mod verify;

pub use limits::Limits;
pub use shed::EarlyRefusal;

/// Largest request body any route accepts before the handler runs. A time-stamp request
/// is a few hundred bytes; routes that need more set their own limit.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The full router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(metrics_route::routes())
        .merge(tsa::routes(&state))
        .merge(policy::routes())
        .merge(log_api::routes())
        .merge(admin_api::routes())
        .merge(anchor_api::routes())
        .merge(archive_api::routes(state.clone()))
        .merge(renew_api::routes(state.clone()))
        .merge(seal::routes(state.clone()))
        .merge(seal_pdf::routes(state.clone()))
        .merge(csc::routes(&state))
        .merge(verify::routes(&state))
        .merge(openapi::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), identify))
        .layer(middleware::from_fn(track_metrics))
        .layer(middleware::from_fn(request_id::request_id))
        .with_state(state)
}

/// Who sent the request ([`crate::auth::Clients::identify`]: its API key, its verified
/// TLS client certificate), once, before any route: the outcome is the request's
/// [`Identity`] extension, which the routes ask for what they need. A known client's
/// lane is the request's `hanko_hsm::Lane` extension, which admission and the signing
/// pools schedule by (`limits.rs`); its name and lane go on the request span and into
/// `hanko_client_requests_total`.
async fn identify(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let presented = Presented::of(req.headers(), req.extensions().get::<PeerCertificate>());
    let outcome = state.clients.identify(&presented);
    if let Ok(Some(client)) = &outcome {
        let span = tracing::Span::current();
        span.record("client", client.name());
        span.record("lane", client.lane().as_str());
        metrics::counter!("hanko_client_requests_total",
            "client" => client.name().to_owned(), "lane" => client.lane().as_str())
        .increment(1);
        req.extensions_mut().insert(client.lane());
    }
    req.extensions_mut().insert(Identity::new(outcome));
    next.run(req).await
}

/// Why the HTTP layer refused a request (or a connection) before doing any work (see
/// "Refused, or failed" above). Every refusal is counted in
/// `hanko_http_refused_total{reason}` ([`Refusal::reason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// More signing requests in flight than `http.max_in_flight`.
    Overloaded,
    /// The client is over `http.rate_limit_per_sec`; its next request is allowed after
    /// `retry_after`.
    RateLimited {
        /// How long the client must wait.
        retry_after: Duration,
    },
    /// The body did not arrive within `http.body_timeout_ms` of the head: 408, and the
    /// connection is closed.
    BodyTimeout,
    /// The head did not arrive within `http.header_timeout_ms`: the connection is closed
    /// (nothing is sent; the client may not even be reading).
    HeaderTimeout,
    /// The TLS handshake did not complete within `tls.handshake_timeout_ms`: the
    /// connection is closed (nothing can be sent before a handshake).
    HandshakeTimeout,
    /// `http.max_connections` connections are open: the new one gets 503 and is closed.
    Connections,
    /// `http.max_connections_per_source` connections from this client address are open:
    /// the new one gets 503 and is closed.
    ConnectionsPerSource,
}

impl Refusal {
    /// The `reason` label of `hanko_http_refused_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Overloaded => "overload",
            Self::RateLimited { .. } => "rate_limit",
            Self::BodyTimeout => "body_timeout",
            Self::HeaderTimeout => "header_timeout",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::Connections => "connections",
            Self::ConnectionsPerSource => "connections_per_source",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Overloaded | Self::Connections | Self::ConnectionsPerSource => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyTimeout | Self::HeaderTimeout | Self::HandshakeTimeout => {
                StatusCode::REQUEST_TIMEOUT
            }
        }
    }

    /// Whole seconds for `Retry-After` (RFC 9110 §10.2.3: delay-seconds), at least 1;
    /// `None` for a timeout (the client was too slow: retrying soon changes nothing).
    pub fn retry_after_secs(self) -> Option<u64> {
        match self {
            Self::Overloaded | Self::Connections | Self::ConnectionsPerSource => Some(1),
            Self::RateLimited { retry_after } => {
                let whole = retry_after.as_secs();
                let secs = if retry_after.subsec_nanos() > 0 {
                    whole.saturating_add(1)
                } else {
                    whole
                };
                Some(secs.max(1))
            }
            Self::BodyTimeout | Self::HeaderTimeout | Self::HandshakeTimeout => None,
        }
    }

    /// Counts this refusal in `hanko_http_refused_total{reason}`.
    pub fn count(self) {
        metrics::counter!("hanko_http_refused_total", "reason" => self.reason()).increment(1);
    }

    /// The one-line text body.
    pub(crate) fn body(self) -> String {
        match self {
            Self::Overloaded => format!(
                "server busy: too many time-stamp requests in flight; retry in {} s\n",
                self.retry_after_secs().unwrap_or(1)
            ),
            Self::RateLimited { .. } => format!(
                "too many requests from this client; retry in {} s\n",
                self.retry_after_secs().unwrap_or(1)
            ),
            Self::BodyTimeout => "request body not received in time\n".to_owned(),
            Self::HeaderTimeout => "request head not received in time\n".to_owned(),
            Self::HandshakeTimeout => "TLS handshake not completed in time\n".to_owned(),
            Self::Connections => "server busy: too many open connections\n".to_owned(),
            Self::ConnectionsPerSource => "too many open connections from this client\n".to_owned(),
        }
    }

    /// Whether the connection is closed after this answer (a timeout: the rest of the
    /// request is not waited for).
    pub(crate) fn closes(self) -> bool {
        matches!(
            self,
            Self::BodyTimeout
                | Self::HeaderTimeout
                | Self::HandshakeTimeout
                | Self::Connections
                | Self::ConnectionsPerSource
        )
    }
}

/// The response to a refused request: status, `Retry-After` (unless a timeout), a one-line
/// text body, `Connection: close` when the connection ends with it; counted in
/// `hanko_http_refused_total{reason}`.
pub fn refuse(refusal: Refusal) -> Response {
    refusal.count();
    let mut response = (refusal.status(), refusal.body()).into_response();
    if let Some(secs) = refusal.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if refusal.closes() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The same answer as raw HTTP/1.1 bytes, for a connection refused before hyper reads
/// from it ([`conn`]); counted like [`refuse`].
fn refusal_bytes(refusal: Refusal) -> Vec<u8> {
    refusal.count();
    let status = refusal.status();
    let body = refusal.body();
    let retry = refusal
        .retry_after_secs()
        .map(|s| format!("retry-after: {s}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
         {retry}connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

/// Counts requests and their latency per route pattern and status
/// (`hanko_http_requests_total`, `hanko_http_request_duration_seconds`). The label is the
/// route pattern, never the raw path, so scanners cannot blow up the label space.
async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    count_request(route, method, response.status(), start);
    response
}

/// Counts one answered request under its route pattern and method
/// (`hanko_http_requests_total` by status, `hanko_http_request_duration_seconds` since
/// `start`). [`track_metrics`] and the early refusal (`shed.rs`) both count through
/// here, so a refusal lands in the same series whichever answered it.
fn count_request(
    route: impl Into<metrics::SharedString> + Clone,
    method: impl Into<metrics::SharedString> + Clone,
    status: StatusCode,
    start: Instant,
) {
    metrics::counter!("hanko_http_requests_total",
        "route" => route.clone(), "method" => method.clone(), "status" => status.as_u16().to_string())
    .increment(1);
    metrics::histogram!("hanko_http_request_duration_seconds", "route" => route, "method" => method)
        .record(start.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(Refusal::Overloaded.retry_after_secs(), Some(1));
        assert_eq!(
            Refusal::Overloaded.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let rate = |ms| Refusal::RateLimited {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(rate(0).status(), StatusCode::TOO_MANY_REQUESTS);
        for (ms, secs) in [(0, 1), (1, 1), (1000, 1), (1001, 2), (2500, 3)] {
            assert_eq!(rate(ms).retry_after_secs(), Some(secs), "{ms} ms");
        }
        let r = refuse(rate(1500));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        assert!(r.headers().get(header::CONNECTION).is_none());
    }

    #[test]
    fn a_timeout_is_408_without_retry_after_and_closes() {
        let r = refuse(Refusal::BodyTimeout);
        assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(r.headers()[header::CONNECTION], "close");
    }

    #[test]
    fn a_refused_connection_gets_a_complete_503() {
        let raw = String::from_utf8(refusal_bytes(Refusal::ConnectionsPerSource)).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nretry-after: 1\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}\r\n", body.len())),
            "{head}"
        );
    }
}
