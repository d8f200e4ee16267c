//! `POST /api/v1/archive/objects`: archive systems submit the hashes of the objects they
//! keep, to be anchored (issue #16; the service is [`crate::archive`]).
//!
//! ```text
//!   request ─> authorize (before the body is read): client with scope archive  401 / 403
//!              the request is put in the bulk lane, whatever the client's lane
//!           ─> admit_json (http/limits.rs): rate, a bulk-lane permit
//!              (http.max_in_flight_bulk), body under http.body_timeout_ms and
//!              archive.max_hashes_per_request × 256 + 4096 bytes      429 / 503 / 408 / 413
//!           ─> parse, ALL hashes checked before anything is logged:
//!                Content-Type application/json:
//!                  {"hashes":[{"alg":"sha256","hex":"<64 hex>"}, ...]}
//!                Content-Type application/octet-stream, ?alg=sha256:
//!                  the digests concatenated (32 bytes each)
//!                other Content-Type                                             415
//!                bad JSON, unknown field or query parameter, unknown alg, bad hex,
//!                wrong digest length, body not a whole number of digests, empty  400
//!                sha384 / sha512 (the trees are SHA-256 until hash-tree renewal) 422
//!                more than archive.max_hashes_per_request                        413
//!           ─> anchoring off                                                     404
//!           ─> Archive::submit: existing ids kept, new hashes logged   503 (Retry-After) / 500
//!           ─> 200 {"objects":[{"id":"0a","alg":"sha256","hex":"..","status":"new"|"existing",
//!                   "expected_by":RFC 3339 (while its batch is open),
//!                   "evidence":"/api/v1/evidence/sha256/<hex>"}, ...],
//!               "new":N,"existing":M}
//! ```
//!
//! Every error is a JSON body in the API's format (`http/json_error.rs`), and every
//! refusal is counted in `hanko_archive_refused_total{reason}` (`invalid`,
//! `unsupported_alg`, `too_many`, `too_large`, `media_type`, `disabled`, `log`); each
//! object logged in `hanko_archive_objects_total`. A refused request logs nothing.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json_error::ApiError;
use crate::archive::{ALG, Submitted};
use crate::auth::{Identity, Lane, SCOPE_ARCHIVE};
use crate::state::AppState;

/// The route.
pub const PATH: &str = "/api/v1/archive/objects";

/// The route: `authorize` (scope, bulk lane) before the body is read, then admission,
/// then the handler; a 413 from admission worded for archives.
pub(super) fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let settings = state
        .archive
        .as_ref()
        .map(|a| *a.settings())
        .unwrap_or_default();
    let router = Router::new()
        .route("/api/v1/archive/objects", post(submit))
        .route(
            "/api/v1/archive/objects/rehash",
            post(super::archive_rehash::rehash),
        );
    super::seal::guarded(
        router,
        &state,
        settings.max_body_bytes(),
        middleware::from_fn(authorize),
    )
    .route_layer(middleware::from_fn_with_state(
        settings.max_hashes_per_request,
        too_large,
    ))
}

/// What `authorize` established: the client's name (the records' `client`).
#[derive(Clone, Debug)]
pub(super) struct ArchiveClient(pub(super) String);

impl ArchiveClient {
    /// The client's name.
    pub(super) fn name(&self) -> &str {
        &self.0
    }
}

/// A client with the scope `archive`; its request goes into the bulk lane (also
/// `POST /api/v1/evidence/renew`'s guard).
pub(super) async fn authorize(mut req: Request, next: Next) -> Response {
    let identity = Identity::of(req.extensions());
    let client = identity
        .require(SCOPE_ARCHIVE)
        .map(|c| ArchiveClient(c.name().to_owned()))
        .map_err(ApiError::from);
    // Whatever the client's configured lane: an archive flood never takes the
    // interactive lane's permits (admission) or workers (the signing pools).
    req.extensions_mut().insert(Lane::Bulk);
    super::seal::proceed(client, req, next).await
}

/// Marks the answers of the handler itself (see [`too_large`]).
#[derive(Clone, Copy, Debug)]
struct Answered;

/// Rewords admission's 413 (a body over the limit) for archives, and counts it; the
/// handler's own 413 (too many hashes) is left alone.
async fn too_large(State(max): State<usize>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE
        || response.extensions().get::<Answered>().is_some()
    {
        return response;
    }
    refused(Refused::TooLarge(max)).into_response()
}

/// Why a submission was refused before anything was logged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refused {
    /// Malformed: the text says what.
    Invalid(String),
    /// A known algorithm the trees do not use yet.
    UnsupportedAlg(String),
    /// More hashes than allowed (the count, the limit).
    TooMany(usize, usize),
    /// A body over the limit (the hash limit).
    TooLarge(usize),
    /// Neither JSON nor octet-stream.
    MediaType(String),
}

impl Refused {
    fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::UnsupportedAlg(_) => "unsupported_alg",
            Self::TooMany(..) => "too_many",
            Self::TooLarge(_) => "too_large",
            Self::MediaType(_) => "media_type",
        }
    }
}

fn refused(r: Refused) -> ApiError {
    metrics::counter!("hanko_archive_refused_total", "reason" => r.reason()).increment(1);
    match r {
        Refused::Invalid(why) => ApiError::BadRequest(why),
        Refused::UnsupportedAlg(alg) => ApiError::Unprocessable(format!(
            "{alg} is a valid hash algorithm, but this server's hash trees are SHA-256 until \
             hash-tree renewal: submit the objects' SHA-256 (alg sha256)"
        )),
        Refused::TooMany(n, max) => ApiError::TooMuch(format!(
            "{n} hashes in one request; at most {max} (archive.max_hashes_per_request): \
             split the submission"
        )),
        Refused::TooLarge(max) => ApiError::TooMuch(format!(
            "the body is larger than this server takes for {max} hashes \
             (archive.max_hashes_per_request): split the submission, or use the binary \
             form (application/octet-stream, ?alg=sha256)"
        )),
        Refused::MediaType(got) => ApiError::UnsupportedMediaType(format!(
            "Content-Type {got:?}: send application/json ({{\"hashes\":[{{\"alg\":\"sha256\",\
             \"hex\":\"...\"}}]}}) or application/octet-stream with ?alg=sha256 (the digests \
             concatenated)"
        )),
    }
}

/// The JSON form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonBody {
    hashes: Vec<JsonHash>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonHash {
    alg: String,
    hex: String,
}

/// The digest length of a hash algorithm name: `Ok` for the trees' (SHA-256), a refusal
/// naming the others.
fn digest_len(alg: &str) -> Result<usize, Refused> {
    match alg {
        "sha256" => Ok(32),
        "sha384" | "sha512" => Err(Refused::UnsupportedAlg(alg.to_owned())),
        other => Err(Refused::Invalid(format!(
            "unknown hash algorithm {other:?} (sha256; sha384 and sha512 are not served yet)"
        ))),
    }
}

/// A `Content-Type`'s media type, lower case, without parameters (`""` when absent).
pub(super) fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The submitted hashes, every one checked, or the first reason to refuse them all.
fn parse(
    content_type: Option<&str>,
    query: Option<&str>,
    body: &[u8],
    max: usize,
) -> Result<Vec<[u8; 32]>, Refused> {
    match media_type(content_type).as_str() {
        "application/json" => {
            if let Some(q) = query.filter(|q| !q.is_empty()) {
                return Err(Refused::Invalid(format!(
                    "unknown query parameter {q:?} (the JSON form names the algorithm per hash)"
                )));
            }
            parse_json(body, max)
        }
        "application/octet-stream" => parse_binary(query, body, max),
        other => Err(Refused::MediaType(other.to_owned())),
    }
}

fn parse_json(body: &[u8], max: usize) -> Result<Vec<[u8; 32]>, Refused> {
    let parsed: JsonBody = serde_json::from_slice(body).map_err(|e| {
        Refused::Invalid(format!(
            "the body is not {{\"hashes\":[{{\"alg\":..,\"hex\":..}}]}}: {e}"
        ))
    })?;
    check_count(parsed.hashes.len(), max)?;
    parsed
        .hashes
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let at = |why: String| Refused::Invalid(format!("hashes[{i}]: {why}"));
            let len = digest_len(&h.alg).map_err(|e| match e {
                Refused::Invalid(why) => at(why),
                other => other,
            })?;
            let bytes = hex::decode(&h.hex)
                .map_err(|_| at(format!("hex is not hexadecimal: {:?}", clip(&h.hex))))?;
            if bytes.len() != len {
                return Err(at(format!(
                    "a {} digest is {len} bytes ({} hex digits), got {} bytes",
                    h.alg,
                    2 * len,
                    bytes.len()
                )));
            }
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| at("not a 32-byte digest".to_owned()))
        })
        .collect()
}

fn parse_binary(query: Option<&str>, body: &[u8], max: usize) -> Result<Vec<[u8; 32]>, Refused> {
    let mut alg = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("alg", v)) => alg = Some(v),
            _ => {
                return Err(Refused::Invalid(format!(
                    "unknown query parameter {:?} (only alg)",
                    clip(pair)
                )));
            }
        }
    }
    let alg = alg.ok_or_else(|| {
        Refused::Invalid("the binary form needs ?alg=sha256 (the digests' algorithm)".to_owned())
    })?;
    let len = digest_len(alg)?;
    if body.is_empty() {
        return Err(Refused::Invalid("no hashes: the body is empty".to_owned()));
    }
    if !body.len().is_multiple_of(len) {
        return Err(Refused::Invalid(format!(
            "the body is {} bytes, not a whole number of {len}-byte {alg} digests",
            body.len()
        )));
    }
    check_count(body.len() / len, max)?;
    Ok(body
        .chunks_exact(len)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok())
        .collect())
}

fn check_count(n: usize, max: usize) -> Result<(), Refused> {
    if n == 0 {
        return Err(Refused::Invalid("no hashes: the list is empty".to_owned()));
    }
    if n > max {
        return Err(Refused::TooMany(n, max));
    }
    Ok(())
}

/// At most 80 characters of a caller's text, for an error message.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn object_json(s: &Submitted) -> Value {
    let hex = hex::encode(s.hash);
    let mut v = json!({
        "id": hex::encode(&s.id),
        "alg": ALG,
        "hex": hex,
        "status": if s.new { "new" } else { "existing" },
        "evidence": format!("/api/v1/evidence/sha256/{hex}"),
    });
    if let (Some(m), Some(t)) = (v.as_object_mut(), s.expected_by) {
        m.insert("expected_by".into(), super::anchor_api::rfc3339(t).into());
    }
    v
}

async fn submit(
    State(state): State<Arc<AppState>>,
    client: Extension<ArchiveClient>,
    headers: HeaderMap,
    query: RawQuery,
    body: Bytes,
) -> Response {
    let mut r = answer(&state, client, &headers, query, &body).await;
    r.extensions_mut().insert(Answered);
    r
}

async fn answer(
    state: &AppState,
    Extension(ArchiveClient(client)): Extension<ArchiveClient>,
    headers: &HeaderMap,
    RawQuery(query): RawQuery,
    body: &[u8],
) -> Response {
    let Some(archive) = &state.archive else {
        metrics::counter!("hanko_archive_refused_total", "reason" => "disabled").increment(1);
        return ApiError::NotEnabled(
            "archive submissions need anchoring, which is not enabled on this server \
             ([anchor] enabled = false)"
                .to_owned(),
        )
        .into_response();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let hashes = match parse(
        content_type,
        query.as_deref(),
        body,
        archive.settings().max_hashes_per_request,
    ) {
        Ok(h) => h,
        Err(r) => return refused(r).into_response(),
    };
    match archive.submit(&client, &hashes).await {
        Ok(objects) => {
            let new = objects.iter().filter(|o| o.new).count();
            tracing::info!(client = %client, hashes = objects.len(), new, "archive objects submitted");
            let body = json!({
                "objects": objects.iter().map(object_json).collect::<Vec<_>>(),
                "new": new,
                "existing": objects.len() - new,
            });
            let mut r = (StatusCode::OK, Json(body)).into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(e) => {
            metrics::counter!("hanko_archive_refused_total", "reason" => "log").increment(1);
            tracing::warn!(client = %client, error = %e, "archive submission not (fully) logged");
            // As the seal routes answer a failed log write: 503 with Retry-After,
            // whatever the cause. Sending the request again is safe (idempotent).
            ApiError::LogUnavailable { retryable: true }.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const JSON: Option<&str> = Some("application/json");
    const BIN: Option<&str> = Some("application/octet-stream");

    fn json_of(entries: &[(&str, String)]) -> Vec<u8> {
        let hashes: Vec<Value> = entries
            .iter()
            .map(|(alg, hex)| json!({"alg": alg, "hex": hex}))
            .collect();
        serde_json::to_vec(&json!({ "hashes": hashes })).unwrap()
    }

    fn invalid(r: Result<Vec<[u8; 32]>, Refused>, says: &str) {
        match r {
            Err(Refused::Invalid(why)) => assert!(why.contains(says), "{why}"),
            other => panic!("expected Invalid({says}), got {other:?}"),
        }
    }

    #[test]
    fn json_form() {
        let a = "ab".repeat(32);
        let b = "CD".repeat(32);
        let body = json_of(&[("sha256", a.clone()), ("sha256", b)]);
        let got = parse(Some("application/json; charset=utf-8"), None, &body, 10).unwrap();
        assert_eq!(got, vec![[0xab; 32], [0xcd; 32]]);
        // Unsupported, unknown, bad hex, wrong length, empty, too many, unknown fields.
        let body = json_of(&[("sha256", a.clone()), ("sha512", "00".repeat(64))]);
        assert_eq!(
            parse(JSON, None, &body, 10),
            Err(Refused::UnsupportedAlg("sha512".into()))
        );
        let body = json_of(&[("sha384", "00".repeat(48))]);
        assert_eq!(
            parse(JSON, None, &body, 10),
            Err(Refused::UnsupportedAlg("sha384".into()))
        );
        invalid(
            parse(JSON, None, &json_of(&[("md5", "00".repeat(16))]), 10),
            "hashes[0]: unknown hash algorithm \"md5\"",
        );
        invalid(
            parse(JSON, None, &json_of(&[("sha256", "zz".repeat(32))]), 10),
            "not hexadecimal",
        );
        invalid(
            parse(JSON, None, &json_of(&[("sha256", "ab".repeat(31))]), 10),
            "32 bytes (64 hex digits), got 31",
        );
        invalid(parse(JSON, None, &json_of(&[]), 10), "empty");
        let three = json_of(&[
            ("sha256", a.clone()),
            ("sha256", a.clone()),
            ("sha256", a.clone()),
        ]);
        assert_eq!(parse(JSON, None, &three, 2), Err(Refused::TooMany(3, 2)));
        invalid(
            parse(JSON, None, br#"{"hashes":[],"extra":1}"#, 10),
            "unknown field",
        );
        invalid(
            parse(JSON, None, br#"{"hashes":[{"alg":"sha256"}]}"#, 10),
            "missing field",
        );
        invalid(parse(JSON, None, b"not json", 10), "the body is not");
        invalid(parse(JSON, Some("alg=sha256"), &three, 10), "query");
    }

    #[test]
    fn binary_form() {
        let mut body = vec![1u8; 32];
        body.extend([2u8; 32]);
        assert_eq!(
            parse(BIN, Some("alg=sha256"), &body, 10).unwrap(),
            vec![[1; 32], [2; 32]]
        );
        invalid(parse(BIN, Some("alg=sha256"), &body[..63], 10), "63 bytes");
        invalid(parse(BIN, Some("alg=sha256"), b"", 10), "empty");
        invalid(parse(BIN, None, &body, 10), "needs ?alg=sha256");
        invalid(parse(BIN, Some("alg=sha256&x=1"), &body, 10), "only alg");
        invalid(parse(BIN, Some("alg=blake3"), &body, 10), "unknown hash");
        assert_eq!(
            parse(BIN, Some("alg=sha512"), &[0; 64], 10),
            Err(Refused::UnsupportedAlg("sha512".into()))
        );
        assert_eq!(
            parse(BIN, Some("alg=sha256"), &body, 1),
            Err(Refused::TooMany(2, 1))
        );
    }

    #[test]
    fn other_media_types_are_refused() {
        let body = json_of(&[("sha256", "ab".repeat(32))]);
        assert_eq!(
            parse(Some("text/plain"), None, &body, 10),
            Err(Refused::MediaType("text/plain".into()))
        );
        assert_eq!(
            parse(None, None, &body, 10),
            Err(Refused::MediaType(String::new()))
        );
    }

    /// An archive request runs in the bulk lane although its client is interactive:
    /// admission counts it there and its work is queued there.
    #[tokio::test]
    async fn archive_requests_run_in_the_bulk_lane_whatever_the_clients_lane() {
        use axum::body::Body;
        use tower::ServiceExt as _;

        use crate::auth::{ClientSection, Clients, key_digest_hex};
        use crate::http::Limits;

        let section = |name: &str, key: &str, scope: &str| ClientSection {
            name: name.to_owned(),
            api_key_sha256: Some(key_digest_hex(key)),
            scopes: vec![scope.to_owned()],
            lane: Some("interactive".to_owned()),
            ..ClientSection::default()
        };
        let clients = Clients::from_config(
            &[
                section("archiver", "k-archiver", SCOPE_ARCHIVE),
                section("auditor", "k-auditor", crate::auth::SCOPE_LOG_READ),
            ],
            &[],
            true,
        )
        .unwrap();
        let limits = Arc::new(Limits::default());
        let app: Router = Router::new()
            .route("/x", post(|| async { hanko_hsm::lane::current().as_str() }))
            .route_layer(middleware::from_fn_with_state(
                (limits.clone(), 1024usize),
                super::super::limits::admit_json,
            ))
            .route_layer(middleware::from_fn(authorize));
        let request = |key: &str| {
            let mut r = axum::http::Request::post("/x").body(Body::empty()).unwrap();
            let presented = crate::auth::Presented::of(
                &[(
                    header::AUTHORIZATION,
                    axum::http::HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
                )]
                .into_iter()
                .collect(),
                None,
            );
            let identity = Identity::new(clients.identify(&presented));
            // What the router's `identify` puts on a known client's request.
            let lane = identity.client().unwrap().lane();
            assert_eq!(lane, Lane::Interactive);
            r.extensions_mut().insert(lane);
            r.extensions_mut().insert(identity);
            r
        };
        let r = app.clone().oneshot(request("k-archiver")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = axum::body::to_bytes(r.into_body(), 64).await.unwrap();
        assert_eq!(&body[..], b"bulk");
        let r = app.oneshot(request("k-auditor")).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn refusals_map_to_their_statuses() {
        let status = |r: Refused| refused(r).into_response().status().as_u16();
        assert_eq!(status(Refused::Invalid("x".into())), 400);
        assert_eq!(status(Refused::UnsupportedAlg("sha512".into())), 422);
        assert_eq!(status(Refused::TooMany(3, 2)), 413);
        assert_eq!(status(Refused::TooLarge(2)), 413);
        assert_eq!(status(Refused::MediaType("text/plain".into())), 415);
    }
}
