//! Admission control of the signing routes (`POST /tsa`, `POST /`,
//! `POST /api/v1/seal/cades`, the CSC API's `signatures/signHash`, `signatures/timestamp`
//! and `signatures/signDoc`): what the HTTP layer
//! refuses before any work is done (docs/architecture.md: "rate limit + auth (before the body
//! is parsed)").
//!
//! ```text
//!   request ─> per-client rate (governor, keyed by peer IP) ── over ──> 429 + Retry-After
//!           ─> any permit free? (body not used yet)           ── none ──> 503 + Retry-After: 1
//!           ─> body, under http.body_timeout_ms, no permit    ── late ──> 408 + close
//!           ─> in-flight permit (semaphore, try, never wait)  ── none ──> 503 + Retry-After: 1
//!           ─> handler (holds the permit until its response is built)
//! ```
//!
//! The permit is taken once the body is in, not before: a permit taken before the body
//! let 140 clients that trickle their bodies hold every permit for as long as they liked
//! (issue #11), while a permit is meant to stand for signing capacity. Under overload
//! the refusal still comes before the body is read (the check that a permit is free);
//! between that check and the end of the body the permits may run out, and the request
//! is refused then, having cost the server a body of at most 8 KiB.
//!
//! "Before the body is used": a request refused at once (rate, no permit) has its body
//! read and dropped when it is announced at most 64 KiB long (`body::discard_body`), so
//! that its kept-alive connection can carry the client's next request; a larger body is
//! not read, and the refusal says `Connection: close`. Under overload most refusals do
//! not reach this middleware at all: an anonymous time-stamp request is refused before
//! the router ([`super::shed`]), with the same answer.
//!
//! # Lanes
//! A request is in the lane of its client (`hanko_hsm::Lane`, a request extension set by
//! the client model; interactive when none is set). Each lane has its own in-flight
//! permits (`http.max_in_flight`, `http.max_in_flight_bulk`), so a bulk flood is refused
//! with 503 in its own lane while interactive requests are still admitted, and the
//! handler runs inside `hanko_hsm::in_lane`, so its signatures are queued in that lane of
//! the signing pool, where bulk takes at most `hsm.bulk_share` of the workers while
//! interactive work waits.
//!
//! Two limits, two questions:
//! - **In flight** (`http.max_in_flight`, default `hsm.queue_depth`): how
//!   much the server takes on at once. A request beyond it is answered at once (without
//!   using its body when the limit is already reached); nothing waits for a permit, so an overload turns into fast
//!   refusals instead of a queue without bound and timeouts for everybody. Sized to what
//!   one key's signing pool queue holds, so the pool's own `Busy` (a TSP systemFailure after
//!   the request was decoded and a serial reserved) is not what sheds load. Not
//!   `workers + queue_depth`: a worker that has just answered a request has not taken the
//!   next job yet, and on a loaded machine the answered handler can be admitted again and
//!   queue its next job first (`hanko-bench overload` found 98 systemFailures in a 10×
//!   run with that default, none with the queue's size).
//! - **Per client**: a known client (`[[clients]]`, `crate::auth`) with its own
//!   `rate_limit_per_sec` has its own bucket, wherever it connects from; every other
//!   caller is limited per address (`http.rate_limit_per_sec`, `http.rate_limit_burst`;
//!   off by default): one client cannot take all the permits. The key is the TCP peer's address
//!   (an IPv6 address by its /64, which one host usually holds whole), never a header such
//!   as `X-Forwarded-For` that the client writes itself. Behind a reverse proxy every
//!   request shares the proxy's address: rate-limit in the proxy then, or leave this off.
//!   The keyed state is pruned of idle clients every [`PRUNE_EVERY`].
//!
//! The statuses, headers and bodies of the refusals are chosen in `http/mod.rs`
//! ([`super::Refusal`]), with the status mapping of everything else.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hanko_hsm::Lane;
use tokio::sync::Semaphore;

use super::Refusal;
use super::body::BodyError;
use super::json_error::ApiError;
use crate::auth::Identity;
use crate::config::{HttpSettings, RateLimit};

/// How often the per-client state drops clients whose bucket is full again (they would
/// be admitted as if new).
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The admission state of the signing routes; one per server.
#[derive(Debug)]
pub struct Limits {
    /// One permit per signing request in flight, one semaphore per lane (indexed by
    /// `lane_index`): bulk requests never take interactive permits.
    in_flight: [Arc<Semaphore>; 2],
    /// The size of each lane's semaphore.
    max_in_flight: [usize; 2],
    rate: Option<ClientRate>,
    /// As configured; the connection caps and deadlines are `http/conn.rs`'s.
    settings: HttpSettings,
}

#[derive(Debug)]
struct ClientRate {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Last time idle clients were dropped from `limiter`.
    last_prune: Mutex<Instant>,
}

impl Default for Limits {
    /// What a server without `[http]` settings gets when its pool is the default one
    /// (tests that build an `AppState` by hand).
    fn default() -> Self {
        let pool = hanko_hsm::PoolConfig::default();
        Limits::new(&HttpSettings::with_max_in_flight(pool.queue_depth))
    }
}

impl Limits {
    /// Limits as configured.
    pub fn new(settings: &HttpSettings) -> Limits {
        let max_in_flight = [settings.max_in_flight, settings.max_in_flight_bulk]
            .map(|n| n.clamp(1, Semaphore::MAX_PERMITS));
        Limits {
            in_flight: max_in_flight.map(|n| Arc::new(Semaphore::new(n))),
            max_in_flight,
            rate: settings.rate_limit.map(|r| ClientRate {
                limiter: RateLimiter::keyed(quota(r)),
                last_prune: Mutex::new(Instant::now()),
            }),
            settings: *settings,
        }
    }

    /// The `[http]` settings these limits were made from.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// The configured in-flight limit of the interactive lane.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight[lane_index(Lane::Interactive)]
    }

    /// Signing requests in flight now, in both lanes.
    pub fn in_flight(&self) -> usize {
        Lane::ALL.into_iter().map(|l| self.in_flight_in(l)).sum()
    }

    /// Signing requests in flight now in `lane`.
    pub fn in_flight_in(&self, lane: Lane) -> usize {
        let i = lane_index(lane);
        self.max_in_flight[i].saturating_sub(self.in_flight[i].available_permits())
    }

    /// Permits free now in `lane` (0: a signing request of that lane is refused).
    pub fn available_in(&self, lane: Lane) -> usize {
        self.in_flight[lane_index(lane)].available_permits()
    }

    /// Takes a permit of `lane` (tests that need a lane full).
    #[cfg(test)]
    pub(super) fn hold(&self, lane: Lane) -> tokio::sync::OwnedSemaphorePermit {
        self.in_flight[lane_index(lane)]
            .clone()
            .try_acquire_owned()
            .expect("a free permit")
    }

    /// Checks `peer`'s rate; `Err(wait)` when it must wait that long. Without a peer
    /// address (a router driven in-process) every request counts as one client.
    pub(super) fn check_rate(&self, peer: Option<IpAddr>) -> Result<(), Duration> {
        let Some(rate) = &self.rate else {
            return Ok(());
        };
        rate.prune_if_due();
        let key = client_key(peer.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
        rate.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn gauge(&self, lane: Lane) {
        metrics::gauge!("hanko_http_in_flight").set(self.in_flight() as f64);
        metrics::gauge!("hanko_http_in_flight_lane", "lane" => lane.as_str())
            .set(self.in_flight_in(lane) as f64);
    }
}

impl ClientRate {
    fn prune_if_due(&self) {
        // Whoever holds the lock prunes; the others go on (try_lock, never wait).
        let Ok(mut last) = self.last_prune.try_lock() else {
            return;
        };
        if last.elapsed() < PRUNE_EVERY {
            return;
        }
        *last = Instant::now();
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        metrics::gauge!("hanko_http_rate_limited_clients").set(self.limiter.len() as f64);
    }
}

/// A lane's index in [`Limits`]' arrays.
fn lane_index(lane: Lane) -> usize {
    match lane {
        Lane::Interactive => 0,
        Lane::Bulk => 1,
    }
}

fn quota(r: RateLimit) -> Quota {
    Quota::per_second(r.per_sec).allow_burst(r.burst)
}

/// The rate-limit key of a peer (and the connection caps' key, `http/conn.rs`): the IPv4 address, or the /64 of an IPv6 one (an
/// IPv4-mapped IPv6 address counts as the IPv4 address).
pub(super) fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// The middleware of the RFC 3161 signing routes: [`admit_with`], refusals in text.
pub(super) async fn admit(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    admit_with(&limits, req, next, Dialect::Text).await
}

/// The middleware of the JSON signing routes (`POST /api/v1/seal/...`): [`admit_with`],
/// refusals as JSON errors (`http/json_error.rs`), a body over the route's limit as 413
/// with `limit` in its description.
pub(super) async fn admit_json(
    State((limits, body_limit)): State<(Arc<Limits>, usize)>,
    req: Request,
    next: Next,
) -> Response {
    admit_with(&limits, req, next, Dialect::Json { body_limit }).await
}

/// How a route family words a refusal: the same decisions, in its own format.
#[derive(Clone, Copy, Debug)]
enum Dialect {
    /// RFC 3161 routes: a one-line text body ([`super::refuse`]); a bad body as axum
    /// answers it.
    Text,
    /// JSON API routes: [`super::json_error::ApiError`].
    Json {
        /// The route's body limit, for the 413's description.
        body_limit: usize,
    },
}

impl Dialect {
    fn refuse(self, refusal: Refusal) -> Response {
        match self {
            Self::Text => super::refuse(refusal),
            Self::Json { .. } => ApiError::Refused(refusal).into_response(),
        }
    }

    fn body_error(self, e: BodyError) -> Response {
        match (self, e) {
            (_, BodyError::Timeout) => self.refuse(Refusal::BodyTimeout),
            (Self::Text, BodyError::Rejected(r)) => r.into_response(),
            (Self::Json { body_limit }, BodyError::Rejected(r)) => {
                if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::BodyTooLarge { limit: body_limit }.into_response()
                } else {
                    ApiError::BadRequest(r.body_text()).into_response()
                }
            }
        }
    }
}

/// Admission of a signing request: rate; no permit free, refused before the body is
/// used (a small one read and dropped); the body, under its deadline and without a permit; then a permit held until
/// the response is built. A refusal is answered at once (see the module docs).
async fn admit_with(limits: &Limits, req: Request, next: Next, dialect: Dialect) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    // A known client with a rate of its own is limited by it, wherever it connects
    // from; everybody else by the per-address rate.
    let own = Identity::of(req.extensions())
        .client()
        .and_then(|c| c.check_rate());
    if let Err(wait) = own.unwrap_or_else(|| limits.check_rate(peer)) {
        super::body::discard_body(req.into_body()).await;
        return dialect.refuse(Refusal::RateLimited { retry_after: wait });
    }
    // The client's lane, set by whoever authenticated it (the client model); a request
    // no one placed is interactive.
    let lane = req.extensions().get::<Lane>().copied().unwrap_or_default();
    let in_flight = &limits.in_flight[lane_index(lane)];
    if in_flight.available_permits() == 0 {
        super::body::discard_body(req.into_body()).await;
        return dialect.refuse(Refusal::Overloaded);
    }
    let req = match super::body::buffer_body(req).await {
        Ok(req) => req,
        Err(e) => return dialect.body_error(e),
    };
    let Ok(permit) = in_flight.clone().try_acquire_owned() else {
        return dialect.refuse(Refusal::Overloaded);
    };
    limits.gauge(lane);
    // Every signature the handler asks for is queued in the request's lane.
    let response = hanko_hsm::in_lane(lane, next.run(req)).await;
    drop(permit);
    limits.gauge(lane);
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::num::NonZeroU32;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::middleware;
    use axum::routing::post;
    use tokio::sync::Notify;
    use tokio::task::JoinHandle;
    use tower::ServiceExt as _;

    use super::*;

    /// A router whose one route waits for `release` (so that requests overlap for as long
    /// as the test wants), behind [`admit`].
    fn app(limits: Arc<Limits>, release: Arc<Notify>) -> Router {
        Router::new()
            .route(
                "/tsa",
                post(move || {
                    let release = release.clone();
                    async move {
                        release.notified().await;
                        "signed"
                    }
                }),
            )
            .route_layer(middleware::from_fn_with_state(limits, admit))
    }

    fn req(peer: &str) -> Request<Body> {
        let mut r = Request::post("/tsa").body(Body::empty()).unwrap();
        let addr: SocketAddr = peer.parse().unwrap();
        r.extensions_mut().insert(ConnectInfo(addr));
        r
    }

    type Pending = JoinHandle<Result<Response, std::convert::Infallible>>;

    /// Releases waiting handlers until `pending` has answered; its status.
    async fn finish(pending: Pending, release: &Notify) -> StatusCode {
        while !pending.is_finished() {
            release.notify_waiters();
            tokio::task::yield_now().await;
        }
        pending.await.unwrap().unwrap().status()
    }

    fn retry_after(resp: &Response) -> u64 {
        resp.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn a_bulk_flood_is_refused_in_its_own_lane_and_runs_in_it() {
        let limits = Arc::new(Limits::new(&HttpSettings {
            max_in_flight_bulk: 2,
            ..HttpSettings::with_max_in_flight(1)
        }));
        let release = Arc::new(Notify::new());
        // The handler reports the lane its signatures would be queued in.
        let app = Router::new()
            .route(
                "/tsa",
                post({
                    let release = release.clone();
                    move || {
                        let release = release.clone();
                        async move {
                            release.notified().await;
                            hanko_hsm::lane::current().as_str()
                        }
                    }
                }),
            )
            .route_layer(middleware::from_fn_with_state(limits.clone(), admit));
        let bulk = |peer: &str| {
            let mut r = req(peer);
            r.extensions_mut().insert(Lane::Bulk);
            r
        };
        let a = tokio::spawn(app.clone().oneshot(bulk("127.0.0.1:1")));
        let b = tokio::spawn(app.clone().oneshot(bulk("127.0.0.1:2")));
        while limits.in_flight_in(Lane::Bulk) < 2 {
            tokio::task::yield_now().await;
        }
        // Bulk is full: the next bulk request is refused at once ...
        let refused = app.clone().oneshot(bulk("127.0.0.1:3")).await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        // ... while an interactive one is admitted, and runs in the interactive lane.
        let c = tokio::spawn(app.clone().oneshot(req("127.0.0.1:4")));
        while limits.in_flight_in(Lane::Interactive) < 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(limits.in_flight(), 3);
        let body = |r: Response| async move {
            let bytes = axum::body::to_bytes(r.into_body(), 64).await.unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        for (pending, lane) in [(a, "bulk"), (b, "bulk"), (c, "interactive")] {
            while !pending.is_finished() {
                release.notify_waiters();
                tokio::task::yield_now().await;
            }
            let resp = pending.await.unwrap().unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(body(resp).await, lane);
        }
        assert_eq!(limits.in_flight(), 0);
    }

    #[tokio::test]
    async fn beyond_max_in_flight_is_refused_at_once_and_admitted_again_after() {
        let limits = Arc::new(Limits::new(&HttpSettings::with_max_in_flight(2)));
        let release = Arc::new(Notify::new());
        let app = app(limits.clone(), release.clone());
        let a = tokio::spawn(app.clone().oneshot(req("127.0.0.1:1")));
        let b = tokio::spawn(app.clone().oneshot(req("127.0.0.1:2")));
        while limits.in_flight() < 2 {
            tokio::task::yield_now().await;
        }
        let refused = app.clone().oneshot(req("127.0.0.1:3")).await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after(&refused), 1);
        assert_eq!(
            refused.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        // The held requests finish normally and give their permits back.
        assert_eq!(finish(a, &release).await, StatusCode::OK);
        assert_eq!(finish(b, &release).await, StatusCode::OK);
        assert_eq!(limits.in_flight(), 0);
        let c = tokio::spawn(app.clone().oneshot(req("127.0.0.1:4")));
        assert_eq!(finish(c, &release).await, StatusCode::OK);
    }

    #[tokio::test]
    async fn rate_limit_is_per_client_and_says_when_to_retry() {
        let limits = Arc::new(Limits::new(&HttpSettings {
            rate_limit: Some(RateLimit {
                per_sec: NonZeroU32::new(1).unwrap(),
                burst: NonZeroU32::new(2).unwrap(),
            }),
            ..HttpSettings::with_max_in_flight(100)
        }));
        let release = Arc::new(Notify::new());
        let app = app(limits, release.clone());
        let send = |peer: &'static str| tokio::spawn(app.clone().oneshot(req(peer)));
        // A burst of two, then the rate (1/s) applies.
        assert_eq!(
            finish(send("192.0.2.1:1000"), &release).await,
            StatusCode::OK
        );
        assert_eq!(
            finish(send("192.0.2.1:1001"), &release).await,
            StatusCode::OK
        );
        let r = app.clone().oneshot(req("192.0.2.1:1002")).await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&r), 1);
        // The same host over IPv4-mapped IPv6 is the same client.
        let r = app
            .clone()
            .oneshot(req("[::ffff:192.0.2.1]:1003"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        // Another client is not affected.
        assert_eq!(
            finish(send("192.0.2.2:1000"), &release).await,
            StatusCode::OK
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), v4);
    }
}
