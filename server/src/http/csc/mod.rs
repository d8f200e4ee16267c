//! The Cloud Signature Consortium API, versions 1.0.4 (`/csc/v1/...`) and 2
//! (`/csc/v2/...`): remote signing of hashes the client computed, time-stamps from the
//! server's own TSA, and (v2) CAdES seals of documents or their digests, with the seal
//! credentials of `seal.rs`.
//!
//! ```text
//!   POST /csc/v{1,2}/info                    no auth   what this service is and serves
//!   POST /csc/v{1,2}/credentials/list        API key   the caller's credential IDs
//!   POST /csc/v{1,2}/credentials/info        API key   key, certificate(s), SCAL, multisign
//!   POST /csc/v{1,2}/credentials/authorize   API key   SAD + expiresIn
//!   POST /csc/v{1,2}/signatures/signHash     API key + admission (http/limits.rs)
//!        body ─> credential (400 unknown, 403 foreign) ─> signAlgo / hash algorithm /
//!        signAlgoParams (pki DigestSignAlgorithm::from_oids, key type) ─> hashes
//!        (base64, length of the hash) ─> SAD taken (sad.rs) ─> Signer::sign_digests
//!        ─> {"signatures": [...]} in the order of the hashes
//!   POST /csc/v{1,2}/signatures/timestamp    API key + admission
//!        hash + algorithm (+ nonce) ─> Issuer::issue_imprint (issuance.rs: the TSA,
//!        the token logged before it leaves) ─> {"timestamp": base64 TimeStampToken}
//!   POST /csc/v2/signatures/signDoc          API key + admission (signdoc.rs)
//!        documents / documentDigests ─> every SealRequest checked ─> SAD taken
//!        ─> Sealer::seal each (seal.rs: logged before release)
//!        ─> {"DocumentWithSignature": [...], "SignatureObject": [...]}
//! ```
//!
//! # Layout
//! - `methods.rs`: each method once, over version-neutral parameters.
//! - `v1.rs`, `v2.rs`: each version's JSON request shapes, read into those parameters,
//!   and how its `credentials/info` names the authorisation; the handlers here are
//!   generic over them, so a method has one handler for both versions.
//! - `sad.rs`: the Signature Activation Data store.
//! - `signdoc.rs`: v2 `signatures/signDoc`.
//!
//! Errors are `http/json_error.rs`'s `ApiError`, one table for the seal route and both
//! CSC versions: `{"error": ..., "error_description": ...}`.
//!
//! # Authentication
//! The caller is a client of the one client model (`auth/`, scope `csc`): its access
//! token is its API key, sent as `Authorization: Bearer`, or its TLS client certificate. `info` names it `authType: ["external"]`: the token is
//! obtained outside the API (`hanko api-key new`), not by its `auth/login` or OAuth 2.0
//! methods, which are not served. A credential's authorisation mode is `implicit`: the
//! client needs no PIN or OTP of its own to get a SAD, its API key (and the credential
//! being in its `credentials` list) is the authorisation.
//!
//! # What is logged
//! `signHash` returns raw signatures over hashes, not issued objects: the server never
//! sees the document or the object the signature ends up in, so there is nothing of the
//! kind the issuance log holds (the object's hash) to record. Each call is counted in
//! `hanko_csc_signatures_total{credential}` (one per signature) and logged at INFO
//! (client, credential, algorithm, number of hashes); see docs/architecture.md.
//! `timestamp` tokens and `signDoc` seals are issued objects and take the same path as
//! every token and seal: recorded in the issuance log before they are returned.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hanko_seal::SealCredential;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::json_error::ApiError;
use crate::auth::{Client, Identity, SCOPE_CSC};
use crate::state::AppState;

mod methods;
mod sad;
mod signdoc;
mod v1;
mod v2;

use methods::{AuthorizeShape, InfoRequest, Shaped, SignHashShape, TimestampShape};
use sad::Sads;

/// The CSC routes of both versions; the signing methods go through admission control
/// like every signing route, `signDoc` with the seal route's body limit
/// (`http.max_seal_body_bytes`: its documents travel in the JSON body).
pub(super) fn routes(state: &AppState) -> Router<Arc<AppState>> {
    let sads = Arc::new(Sads::default());
    let doc_limit = state.limits.settings().max_seal_body_bytes;
    let sign_doc = Router::new()
        .route("/csc/v2/signatures/signDoc", post(signdoc::sign_doc))
        .route_layer(middleware::from_fn_with_state(
            (state.limits.clone(), doc_limit),
            super::limits::admit_json,
        ))
        .route_layer(middleware::from_fn(csc_access))
        // Outside `admit_json`, which reads the body within this limit.
        .layer(DefaultBodyLimit::max(doc_limit));
    Router::new()
        .merge(version::<
            v1::V1,
            v1::AuthorizeRequest,
            v1::SignHashRequest,
            v1::TimestampRequest,
        >("/csc/v1", state))
        .merge(version::<
            v2::V2,
            v2::AuthorizeRequest,
            v2::SignHashRequest,
            v2::TimestampRequest,
        >("/csc/v2", state))
        .merge(sign_doc)
        .layer(Extension(sads))
}

/// One version's routes under `prefix`, over its request shapes.
fn version<S, A, H, T>(prefix: &str, state: &AppState) -> Router<Arc<AppState>>
where
    S: Shaped + Send + 'static,
    A: AuthorizeShape + Send + 'static,
    H: SignHashShape + Send + 'static,
    T: TimestampShape + Send + 'static,
{
    let sign = Router::new()
        .route(
            &format!("{prefix}/signatures/signHash"),
            post(sign_hash::<S, H>),
        )
        .route(
            &format!("{prefix}/signatures/timestamp"),
            post(timestamp::<S, T>),
        )
        .route_layer(middleware::from_fn_with_state(
            (state.limits.clone(), super::MAX_BODY_BYTES),
            super::limits::admit_json,
        ))
        .route_layer(middleware::from_fn(csc_access));
    Router::new()
        .route(&format!("{prefix}/info"), post(info::<S>))
        .route(
            &format!("{prefix}/credentials/list"),
            post(credentials_list),
        )
        .route(
            &format!("{prefix}/credentials/info"),
            post(credentials_info::<S>),
        )
        .route(
            &format!("{prefix}/credentials/authorize"),
            post(authorize::<S, A>),
        )
        .merge(sign)
}

/// Parses a JSON body, refusing with a description of what is wrong.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Base64 (standard alphabet, padded) of a named parameter.
fn base64_param(name: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    STANDARD
        .decode(value)
        .map_err(|_| ApiError::BadRequest(format!("{name} is not valid base64")))
}

/// Outside admission on the signing methods: a caller without the scope `csc` (or with
/// unknown credentials) is refused with 401/403 before it takes an in-flight permit or
/// a token of its rate, as on the seal routes; else a refused client that kept trying
/// would read 429 or 503 instead of being told it may not. The handlers check again
/// (with the credential), so this layer only moves the refusal earlier.
async fn csc_access(req: axum::extract::Request, next: middleware::Next) -> Response {
    match Identity::of(req.extensions()).require(SCOPE_CSC) {
        Ok(_) => next.run(req).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The caller (scope `csc`) and the credential it names, which it must be allowed.
fn credential_of<'i>(
    state: &AppState,
    identity: &'i Identity,
    id: Option<&str>,
) -> Result<(&'i Arc<Client>, Arc<SealCredential>), ApiError> {
    let key = identity.require(SCOPE_CSC)?;
    let id =
        id.ok_or_else(|| ApiError::BadRequest("missing string parameter credentialID".to_owned()))?;
    let credential = state
        .sealer
        .as_ref()
        .and_then(|s| s.credential(id))
        .ok_or_else(|| ApiError::BadRequest(format!("invalid parameter credentialID: {id:?}")))?;
    if !key.may_use(id) {
        metrics::counter!("hanko_api_auth_refused_total", "reason" => "credential").increment(1);
        return Err(ApiError::ForeignCredential(id.to_owned()));
    }
    Ok((key, credential))
}

fn answer(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn info<S: Shaped>(State(state): State<Arc<AppState>>) -> Response {
    Json(methods::info(&state, S::VERSION)).into_response()
}

async fn credentials_list(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    bytes: Bytes,
) -> Response {
    answer(methods::credentials_list(&state, &identity, &bytes))
}

async fn credentials_info<S: Shaped>(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    bytes: Bytes,
) -> Response {
    answer((|| {
        let req: InfoRequest = body(&bytes)?;
        let mut out = methods::credential_info(&state, &identity, &req)?;
        S::add_auth(&req, &mut out);
        Ok(out)
    })())
}

async fn authorize<S: Shaped, A: AuthorizeShape>(
    State(state): State<Arc<AppState>>,
    Extension(sads): Extension<Arc<Sads>>,
    identity: Identity,
    bytes: Bytes,
) -> Response {
    answer(
        body::<A>(&bytes).and_then(|req| {
            methods::authorize(&state, &sads, &identity, &req.params(), S::VERSION)
        }),
    )
}

async fn sign_hash<S: Shaped, H: SignHashShape>(
    State(state): State<Arc<AppState>>,
    Extension(sads): Extension<Arc<Sads>>,
    identity: Identity,
    bytes: Bytes,
) -> Response {
    answer(
        async {
            let req: H = body(&bytes)?;
            methods::sign_hash(&state, &sads, &identity, &req.params(), S::VERSION).await
        }
        .await,
    )
}

async fn timestamp<S: Shaped, T: TimestampShape>(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    bytes: Bytes,
) -> Response {
    answer(
        async {
            let req: T = body(&bytes)?;
            methods::timestamp(&state, &identity, &req.params(), S::VERSION).await
        }
        .await,
    )
}
