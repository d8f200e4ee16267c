//! `POST /api/v1/seal/cades?credential=NAME&level=B-B|B-T[&attached=true]`: the binary
//! endpoint for issuance systems. Any bytes in, the DER CMS of a CAdES seal out
//! (`application/pkcs7-signature`), detached unless `attached=true`.
//!
//! ```text
//!   request ─> authorize (before the body is read):
//!                API key + scope seal (auth.rs)       401 / 403
//!                query: credential, level, attached, commitment      400
//!                credential configured?                               404
//!                credential in the key's list?                        403
//!           ─> admit_json (http/limits.rs): rate, permit, body under its deadline and
//!                http.max_seal_body_bytes              429 / 503 / 408 / 413
//!           ─> cades: SealRequest::check (mime type from Content-Type)   400
//!                Sealer::seal (seal.rs): seal, B-T stamp, record durable  503 / 500
//!           ─> 200 application/pkcs7-signature
//! ```
//!
//! Every error is a JSON body in the CSC format (`http/json_error.rs`). Query
//! parameters besides the four are refused (a typo such as `levle=B-T` must not
//! quietly give a B-B seal). The commitment type defaults to proof-of-origin, the usual
//! one for an organisation's seal; `commitment=none` leaves the attribute out.
//!
//! The document's mime type (the signed mime-type attribute) comes from the request's
//! `Content-Type` when it is a valid `type/subtype`, except the two that describe the
//! transport, not the document: `application/octet-stream` and
//! `application/x-www-form-urlencoded` (curl's default for `--data-binary`). An invalid
//! one is left out, not refused: it says nothing the seal could vouch for.

use std::str::FromStr as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, body::Body};
use hanko_seal::{
    CommitmentType, Level, Packaging, RawContent, RawSealRequest, SealCredential, SealRequest,
};
use serde::Deserialize;

use super::json_error::ApiError;
use crate::auth::{Client, Identity, SCOPE_SEAL};
use crate::logging::LogLimiter;
use crate::state::AppState;

/// The media type of the answer (RFC 5751 §3.2.1: a detached or enveloping
/// SignedData in DER).
pub const SEAL_TYPE: &str = "application/pkcs7-signature";

/// The seal route: `authorize` first (no body read for a refused client), then
/// admission, then the handler.
pub(super) fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let body_limit = state.limits.settings().max_seal_body_bytes;
    let router = Router::new().route("/api/v1/seal/cades", post(cades));
    guarded(
        router,
        &state,
        body_limit,
        middleware::from_fn_with_state(state.clone(), authorize),
    )
}

/// The layers of every seal route, outermost first: `authorize` (the route's own:
/// API key, query, credential, before the body is read), then `admit_json` (rate,
/// permit, the body within `body_limit`), then the handler.
pub(super) fn guarded<L>(
    router: Router<Arc<AppState>>,
    state: &AppState,
    body_limit: usize,
    authorize: L,
) -> Router<Arc<AppState>>
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service:
        tower::Service<Request, Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
    <L::Service as tower::Service<Request>>::Response: IntoResponse + 'static,
    <L::Service as tower::Service<Request>>::Future: Send + 'static,
{
    router
        .route_layer(middleware::from_fn_with_state(
            (state.limits.clone(), body_limit),
            super::limits::admit_json,
        ))
        .route_layer(authorize)
        // Outside `admit_json`, which reads the body within this limit.
        .layer(DefaultBodyLimit::max(body_limit))
}

/// The query string as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CadesQuery {
    credential: Option<String>,
    level: Option<String>,
    attached: Option<bool>,
    commitment: Option<String>,
}

/// What `authorize` established, for the handler.
#[derive(Clone, Debug)]
struct Authorized {
    /// The API key's name: the client identity recorded in the log.
    client: String,
    credential: Arc<SealCredential>,
    level: Level,
    packaging: Packaging,
    commitment: Option<CommitmentType>,
}

/// Authenticates, authorises and reads the query, all before the body; see the module
/// documentation for the order.
async fn authorize(
    State(state): State<Arc<AppState>>,
    query: Result<Query<CadesQuery>, QueryRejection>,
    req: Request,
    next: Next,
) -> Response {
    let authorized = authorized(&state, &Identity::of(req.extensions()), query);
    proceed(authorized, req, next).await
}

/// Hands what a route's `authorize` established to its handler (a request extension),
/// or answers its refusal.
pub(super) async fn proceed<A: Clone + Send + Sync + 'static>(
    authorized: Result<A, ApiError>,
    mut req: Request,
    next: Next,
) -> Response {
    match authorized {
        Ok(a) => {
            req.extensions_mut().insert(a);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

fn authorized(
    state: &AppState,
    identity: &Identity,
    query: Result<Query<CadesQuery>, QueryRejection>,
) -> Result<Authorized, ApiError> {
    let (key, q) = authorized_query(identity, query)?;
    let (client, credential) = authorized_credential(state, key, q.credential.as_deref())?;
    let level = parse_level(q.level.as_deref())?;
    let packaging = match q.attached {
        Some(true) => Packaging::Enveloping,
        Some(false) | None => Packaging::Detached,
    };
    let commitment = parse_commitment(q.commitment.as_deref())?;
    Ok(Authorized {
        client,
        credential,
        level,
        packaging,
        commitment,
    })
}

/// A client with the scope `seal`, then the query string (in this order: a client
/// without the scope learns nothing of the query's checks).
pub(super) fn authorized_query<Q>(
    identity: &Identity,
    query: Result<Query<Q>, QueryRejection>,
) -> Result<(&Arc<Client>, Q), ApiError> {
    let key = identity.require(SCOPE_SEAL)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok((key, q))
}

/// The credential named in the query: configured (else 404), and allowed for the key
/// (else 403). Returns the client's name and the credential.
pub(super) fn authorized_credential(
    state: &AppState,
    key: &Client,
    name: Option<&str>,
) -> Result<(String, Arc<SealCredential>), ApiError> {
    let name = name.ok_or_else(|| {
        ApiError::BadRequest("the query parameter credential=NAME is required".to_owned())
    })?;
    let credential = state
        .sealer
        .as_ref()
        .and_then(|s| s.credential(name))
        .ok_or_else(|| ApiError::UnknownCredential(name.to_owned()))?;
    if !key.may_use(name) {
        static FOREIGN: LogLimiter = LogLimiter::new(std::time::Duration::from_secs(10));
        metrics::counter!("hanko_api_auth_refused_total", "reason" => "credential").increment(1);
        if let Some(suppressed) = FOREIGN.check() {
            tracing::info!(client = %key.name(), credential = %name, suppressed,
                "seal refused: credential not allowed for this key");
        }
        return Err(ApiError::ForeignCredential(name.to_owned()));
    }
    Ok((key.name().to_owned(), credential.clone()))
}

/// `level=`: B-B when absent.
pub(super) fn parse_level(level: Option<&str>) -> Result<Level, ApiError> {
    match level {
        None => Ok(Level::BB),
        Some(l) => Level::from_str(l).map_err(|e| ApiError::BadRequest(e.to_string())),
    }
}

/// `commitment=`: proof-of-origin when absent, none for `none`.
pub(super) fn parse_commitment(c: Option<&str>) -> Result<Option<CommitmentType>, ApiError> {
    match c {
        None => Ok(Some(CommitmentType::ProofOfOrigin)),
        Some("none") => Ok(None),
        Some(c) => CommitmentType::from_str(c)
            .map(Some)
            .map_err(|e| ApiError::BadRequest(e.to_string())),
    }
}

/// The document's mime type from `Content-Type`, unless it names the transport (see the
/// module documentation).
fn document_mime_type(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?.trim();
    let essence = value.split(';').next().unwrap_or("").trim();
    let transport = [
        "application/octet-stream",
        "application/x-www-form-urlencoded",
    ];
    if essence.is_empty() || transport.iter().any(|t| essence.eq_ignore_ascii_case(t)) {
        return None;
    }
    Some(value)
}

async fn cades(
    State(state): State<Arc<AppState>>,
    Extension(a): Extension<Authorized>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match seal(&state, &a, &headers, &body).await {
        Ok(der) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(SEAL_TYPE))],
            Body::from(der),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn seal(
    state: &AppState,
    a: &Authorized,
    headers: &HeaderMap,
    document: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let raw = RawSealRequest {
        level: a.level,
        packaging: a.packaging,
        content: RawContent::Document(document),
        mime_type: document_mime_type(headers),
        content_description: None,
        commitment: a.commitment,
    };
    let request = match SealRequest::check(raw) {
        Ok(r) => r,
        // A Content-Type that is no valid mime type is left out, not refused.
        Err(hanko_seal::Error::BadMimeType(_)) => SealRequest::check(RawSealRequest {
            mime_type: None,
            ..raw
        })
        .map_err(|e| ApiError::Seal(e.into()))?,
        Err(e) => return Err(ApiError::Seal(e.into())),
    };
    let sealer = state
        .sealer
        .as_ref()
        .ok_or_else(|| ApiError::UnknownCredential(a.credential.name().to_owned()))?;
    Ok(sealer.seal(&a.credential, &request, &a.client).await?)
}
