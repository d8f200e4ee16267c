//! `POST /tsa` (and `POST /`) and `GET /tsa/certs`: RFC 3161 over HTTP (RFC 3161 §3.4).
//!
//! Everything that can be answered with a TimeStampResp is: HTTP 200 carries grants and
//! rejections alike (CONFORMANCE 13), and the PKIFailureInfo says what was wrong. HTTP
//! errors are kept for what has no TimeStampResp: a caller the client model refuses
//! (401 unknown credentials or, with `tsa.public = false`, none; 403 a client without
//! the scope `tsa`), another content type (415), a body
//! above [`MAX_REQUEST_BYTES`] (413), a server without a TSA (404), and a request the
//! admission control refused (503 / 429 with `Retry-After`, 408 for a body too slow; see
//! `http/limits.rs` and "Refused, or failed" in `http/mod.rs`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::auth::Identity;
use crate::state::AppState;

/// The media type of a request (RFC 3161 §3.4).
pub const QUERY_TYPE: &str = "application/timestamp-query";
/// The media type of a reply (RFC 3161 §3.4).
pub const REPLY_TYPE: &str = "application/timestamp-reply";
/// Largest request body accepted. A TimeStampReq with a SHA-512 imprint, a 64-byte nonce
/// and a policy is under 200 bytes; 8 KiB leaves room and still refuses floods early.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// The signing routes sit behind `limits` (admission, which reads the body under its
/// deadline);
/// `/tsa/certs` does not.
pub(super) fn routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/tsa", post(timestamp))
        .route("/", post(timestamp))
        .route_layer(middleware::from_fn_with_state(
            state.limits.clone(),
            super::limits::admit,
        ))
        // Outside `admit`: a refused client is answered before its body is read.
        .route_layer(middleware::from_fn_with_state(state.clone(), access))
        // Outside `admit`, which reads the body within this limit.
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .route("/tsa/certs", get(certs))
}

/// Whether the Content-Type names `application/timestamp-query` (parameters and case
/// ignored).
fn is_query(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(QUERY_TYPE))
}

/// Who may time-stamp: anonymous callers while `tsa.public` (the default), known
/// clients with the scope `tsa`; unknown credentials 401 (`crate::auth`).
async fn access(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    req: Request,
    next: Next,
) -> Response {
    match identity.for_tsa(state.clients.tsa_public()) {
        Ok(_) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn timestamp(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(issuer) = &state.issuer else {
        return (
            StatusCode::NOT_FOUND,
            "this server has no time-stamp authority configured\n",
        )
            .into_response();
    };
    if !is_query(&headers) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            [(header::ACCEPT, HeaderValue::from_static(QUERY_TYPE))],
            format!("expected Content-Type: {QUERY_TYPE}\n"),
        )
            .into_response();
    }
    // `access` let only an anonymous caller or a client with the scope through.
    let client = identity.client().map_or("anonymous", |c| c.name());
    let der = issuer.timestamp(&body, client).await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(REPLY_TYPE))],
        der,
    )
        .into_response()
}

/// The certificate chains of the TSA's units, as PEM: each unit's certificate, then its
/// issuers (the root is the relying party's trust anchor and is left out unless the
/// chain file has it). Each certificate appears once. The units that sign now come
/// first; a unit a key rollover retired follows until its certificate expires (its
/// tokens are still checked against it).
async fn certs(State(state): State<Arc<AppState>>) -> Response {
    let Some(issuer) = &state.issuer else {
        return (
            StatusCode::NOT_FOUND,
            "this server has no time-stamp authority configured\n",
        )
            .into_response();
    };
    let units = issuer.published_units(std::time::SystemTime::now());
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut pem = String::new();
    for unit in &units {
        for cert in unit.chain() {
            if !seen.contains(&cert.der()) {
                seen.push(cert.der());
                pem.push_str(&cert.to_pem());
            }
        }
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pem-certificate-chain"),
        )],
        pem,
    )
        .into_response()
}
