//! The HTTP front: one [`Router`] built from an `Arc<AppState>`.
//!
//! Each concern has its own file with a `routes()` function returning a
//! `Router<Arc<AppState>>`; [`router`] merges them and adds the layers every route
//! shares. To add an endpoint family (e.g. `tsa.rs` with `POST /tsa`, `GET /tsa/certs`),
//! write its file, add `mod tsa;` and one `.merge(tsa::routes())` line below.
//!
//! ```text
//!   request ─> track_metrics ─> body limit ─> route ─> [admit] ─> handler(State<Arc<AppState>>)
//! ```
//!
//! `admit` ([`limits`]) guards the signing routes only (`POST /tsa`, `POST /`).
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
//! | after admission | HTTP 200 with a TimeStampResp, status rejection, failInfo `systemFailure` (CONFORMANCE 7, 13) | HSM error, timeout or lost token; the signing pool's own `Busy` (`SignErrorKind::Busy`); clock not synchronised (`timeNotAvailable`); log write failed |
//!
//! Admission is an HTTP-level refusal: the body was not read, nothing was decoded,
//! reserved, signed or logged, so an HTTP error (RFC 9110 §15.6.4 503, RFC 6585 §4 429)
//! with `Retry-After` is the honest answer and costs the server almost nothing. Once a
//! request is admitted its failure is a protocol answer, and RFC 3161 answers every
//! request it can parse with a TimeStampResp (HTTP 200); the pool's `Busy` is one of
//! those, because it comes after the request was decoded (and, with `max_in_flight` at
//! its default `hsm.workers + hsm.queue_depth`, only when the in-flight bound and the
//! pool disagree, e.g. a client that hung up while its signature still waits in the
//! queue). 429 rather than 503 for the per-client rate: the client itself is asked to
//! slow down; the server is not overloaded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};

use crate::state::AppState;

mod health;
pub mod limits;
mod log_api;
mod metrics_route;
mod policy;
mod tsa;

pub use limits::Limits;

/// Largest request body any route accepts before the handler runs. A time-stamp request
/// is a few hundred bytes; routes that need more set their own limit.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The full router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(metrics_route::routes())
        .merge(tsa::routes(state.limits.clone()))
        .merge(policy::routes())
        .merge(log_api::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(track_metrics))
        .with_state(state)
}

/// Why the HTTP layer refused a request before doing any work (see "Refused, or failed"
/// above).
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
}

impl Refusal {
    /// The `reason` label of `hanko_http_refused_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Overloaded => "overload",
            Self::RateLimited { .. } => "rate_limit",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Whole seconds for `Retry-After` (RFC 9110 §10.2.3: delay-seconds), at least 1.
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Self::Overloaded => 1,
            Self::RateLimited { retry_after } => {
                let whole = retry_after.as_secs();
                let secs = if retry_after.subsec_nanos() > 0 {
                    whole.saturating_add(1)
                } else {
                    whole
                };
                secs.max(1)
            }
        }
    }
}

/// The response to a refused request: status, `Retry-After`, a one-line text body; counted
/// in `hanko_http_refused_total{reason}`.
pub fn refuse(refusal: Refusal) -> Response {
    let secs = refusal.retry_after_secs();
    metrics::counter!("hanko_http_refused_total", "reason" => refusal.reason()).increment(1);
    let body = match refusal {
        Refusal::Overloaded => {
            format!("server busy: too many time-stamp requests in flight; retry in {secs} s\n")
        }
        Refusal::RateLimited { .. } => {
            format!("too many requests from this client; retry in {secs} s\n")
        }
    };
    (
        refusal.status(),
        [(header::RETRY_AFTER, HeaderValue::from(secs))],
        body,
    )
        .into_response()
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
    let status = response.status().as_u16().to_string();
    metrics::counter!("hanko_http_requests_total",
        "route" => route.clone(), "method" => method.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("hanko_http_request_duration_seconds", "route" => route, "method" => method)
        .record(start.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(Refusal::Overloaded.retry_after_secs(), 1);
        assert_eq!(
            Refusal::Overloaded.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let rate = |ms| Refusal::RateLimited {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(rate(0).status(), StatusCode::TOO_MANY_REQUESTS);
        for (ms, secs) in [(0, 1), (1, 1), (1000, 1), (1001, 2), (2500, 3)] {
            assert_eq!(rate(ms).retry_after_secs(), secs, "{ms} ms");
        }
        let r = refuse(rate(1500));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }
}
