//! `X-Request-Id`: one id per request, on every log line written while the request is
//! served (the `request` span) and in the response header, so that an operator can find
//! a client's complaint in the logs and a client can quote what it got.
//!
//! A client (or the proxy in front) may send its own id: one of at most
//! [`MAX_LEN`] characters from `A-Z a-z 0-9 - _ . :` is kept, anything else is replaced by
//! a fresh one (so nobody can put line breaks, quotes or megabytes into the logs). The
//! id is a correlation label only: nothing is ever authorised by it, and two requests
//! may carry the same client-chosen id.
//!
//! ```text
//!   request ─> X-Request-Id sane? keep : 16 random bytes in hex
//!           ─> span "request" {request_id, method, route, client, lane} around the rest
//!           ─> response + X-Request-Id
//! ```

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

/// The header, request and response.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id kept.
pub const MAX_LEN: usize = 128;

/// The id of a request, also a request extension for handlers that quote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Whether a client-supplied id is kept.
pub fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A fresh id: 16 random bytes in lowercase hex.
pub fn generate() -> String {
    use rand::Rng as _;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The id of a request with `headers`: the client's, if sane, else a fresh one.
pub fn of(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map_or_else(generate, str::to_owned)
}

/// The middleware: the id, the span, the header.
pub(super) async fn request_id(mut req: Request, next: Next) -> Response {
    let id = of(req.headers());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = %route,
        client = tracing::field::Empty,
        lane = tracing::field::Empty,
    );
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_kept() {
        assert!(is_sane("abc-123_x.y:z"));
        assert!(is_sane(&"a".repeat(MAX_LEN)));
        assert!(!is_sane(""));
        assert!(!is_sane(&"a".repeat(MAX_LEN + 1)));
        assert!(!is_sane("a b"));
        assert!(!is_sane("a\"b"));
        assert!(!is_sane("é"));
        let g = generate();
        assert!(is_sane(&g) && g.len() == 32, "{g}");
        assert_ne!(g, generate());
    }
}
