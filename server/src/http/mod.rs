//! The HTTP front: one [`Router`] built from an `Arc<AppState>`.
//!
//! Each concern has its own file with a `routes()` function returning a
//! `Router<Arc<AppState>>`; [`router`] merges them and adds the layers every route
//! shares. To add an endpoint family (e.g. `tsa.rs` with `POST /tsa`, `GET /tsa/certs`),
//! write its file, add `mod tsa;` and one `.merge(tsa::routes())` line below.
//!
//! ```text
//!   request ─> track_metrics ─> body limit ─> route ─> handler(State<Arc<AppState>>)
//! ```
//!
//! HTTP status mapping lives here and nowhere else (shared/DESIGN.md: "one place for each
//! concern").

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::state::AppState;

mod health;
mod log_api;
mod metrics_route;
mod policy;
mod tsa;

/// Largest request body any route accepts before the handler runs. A time-stamp request
/// is a few hundred bytes; routes that need more set their own limit.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The full router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(metrics_route::routes())
        .merge(tsa::routes())
        .merge(policy::routes())
        .merge(log_api::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(track_metrics))
        .with_state(state)
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
