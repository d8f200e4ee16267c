//! Shedding load before the router: an anonymous time-stamp request that arrives while
//! every interactive permit is taken is answered by the connection's service itself
//! (`http/conn.rs`), with the same 503 the router would give it, and none of the
//! router's work.
//!
//! ```text
//!   hyper ─> ConnService ─> EarlyRefusal::answer ── all permits taken ──> 503 + Retry-After: 1
//!                                │                  (counted as the router counts it)
//!                                └─ otherwise ─> router (request_id, track_metrics, identify,
//!                                                route, access, admit, handler)
//! ```
//!
//! Under overload most requests are refusals, and each refusal took the router's
//! layers: a span, an id, three middlewares with their boxed futures, the route's
//! own two, label strings for the metrics. `hanko-bench overload` (issue #17) measured
//! that cost against the signers on the same cores: at 8× the capacity the refusals
//! took a tenth of a core that the HSM's signing threads then lacked.
//!
//! The early answer is given only where the router's answer would be the same 503, so
//! it changes nothing a client or an operator sees:
//! - the route is `POST /tsa` or `POST /` and the server has a TSA (else 404);
//! - the caller presents nothing (no `Authorization` header, no TLS client
//!   certificate) and the TSA is public: such a caller is anonymous, in the interactive
//!   lane, and `access` lets it through; a client with credentials may be in another
//!   lane or be refused with 401 / 403, so the router decides;
//! - no per-address rate limit is configured (`http.rate_limit_per_sec`): with one, a
//!   client over its rate gets 429 first (`http/limits.rs`);
//! - the interactive lane has no permit free, the check `admit` makes before it reads a
//!   body.
//!
//! The answer carries what the router's would: `X-Request-Id` (the client's, if sane,
//! else a fresh one), `Retry-After`, the text body; the request's body is read and
//! dropped when small, as `admit` does (`body::discard_body`); and it is counted in
//! `hanko_http_refused_total{reason="overload"}`, `hanko_http_requests_total` and
//! `hanko_http_request_duration_seconds` under the route's pattern. No request span is
//! made; neither path logs a refusal.

use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use hanko_hsm::Lane;

use super::{Limits, Refusal, count_request, refuse, request_id};
use crate::state::AppState;

/// The early refusal of a server where it can apply (see the module docs).
#[derive(Debug)]
pub struct EarlyRefusal {
    limits: Arc<Limits>,
}

impl EarlyRefusal {
    /// The early refusal for `state`'s server; `None` where the router must answer every
    /// request (no TSA, a TSA that is not public, a per-address rate limit).
    pub fn new(state: &AppState) -> Option<Arc<EarlyRefusal>> {
        let applies = state.issuer.is_some()
            && state.clients.tsa_public()
            && state.limits.settings().rate_limit.is_none();
        applies.then(|| {
            Arc::new(EarlyRefusal {
                limits: state.limits.clone(),
            })
        })
    }

    /// The 503 for `req` when the router would answer it with one before reading its
    /// body; `None`: the router answers. `has_certificate`: the connection presented a
    /// verified TLS client certificate.
    pub fn answer<B>(
        &self,
        req: &axum::http::Request<B>,
        has_certificate: bool,
    ) -> Option<Response> {
        if self.limits.available_in(Lane::Interactive) != 0 {
            return None;
        }
        let route = match req.uri().path() {
            "/tsa" => "/tsa",
            "/" => "/",
            _ => return None,
        };
        if req.method() != Method::POST
            || has_certificate
            || req.headers().contains_key(header::AUTHORIZATION)
        {
            return None;
        }
        let start = Instant::now();
        let id = request_id::of(req.headers());
        let mut response = refuse(Refusal::Overloaded);
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(request_id::HEADER, v);
        }
        count_request(route, "POST", response.status(), start);
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use axum::http::{Request, StatusCode};

    use super::*;
    use crate::config::HttpSettings;

    fn shed(max_in_flight: usize) -> EarlyRefusal {
        EarlyRefusal {
            limits: Arc::new(Limits::new(&HttpSettings::with_max_in_flight(
                max_in_flight,
            ))),
        }
    }

    fn post(path: &str) -> axum::http::request::Builder {
        Request::post(path)
    }

    #[test]
    fn only_anonymous_time_stamp_requests_are_refused_and_only_with_no_permit_free() {
        let s = shed(1);
        let req = post("/tsa").body(()).unwrap();
        assert!(s.answer(&req, false).is_none(), "a permit is free");
        let _held = s.limits.hold(Lane::Interactive);
        for path in ["/tsa", "/"] {
            let r = s.answer(&post(path).body(()).unwrap(), false).unwrap();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers()[header::RETRY_AFTER], "1");
            assert!(r.headers().contains_key(&request_id::HEADER));
        }
        let with_id = post("/tsa")
            .header(&request_id::HEADER, "abc-1")
            .body(())
            .unwrap();
        let r = s.answer(&with_id, false).unwrap();
        assert_eq!(r.headers()[&request_id::HEADER], "abc-1");
        // The router decides everything else.
        let others = [
            post("/api/v1/seal/cades").body(()).unwrap(),
            Request::get("/tsa").body(()).unwrap(),
            post("/tsa")
                .header(header::AUTHORIZATION, "Bearer k")
                .body(())
                .unwrap(),
        ];
        for req in &others {
            assert!(s.answer(req, false).is_none(), "{req:?}");
        }
        assert!(s.answer(&req, true).is_none(), "a client certificate");
    }

    #[test]
    fn the_bulk_lane_being_full_refuses_nothing_early() {
        let s = shed(1);
        let _held = s.limits.hold(Lane::Bulk);
        assert!(s.answer(&post("/tsa").body(()).unwrap(), false).is_none());
    }
}
