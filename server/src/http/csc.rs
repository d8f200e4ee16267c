//! The Cloud Signature Consortium API, version 2 (`/csc/v2/...`): remote signing of
//! hashes the client computed, with the seal credentials of `seal.rs`.
//!
//! ```text
//!   POST /csc/v2/info                     no auth      what this service is and serves
//!   POST /csc/v2/credentials/list         API key      the caller's credential IDs
//!   POST /csc/v2/credentials/info         API key      key, certificate(s), SCAL, multisign
//!   POST /csc/v2/credentials/authorize    API key      SAD + expiresIn
//!   POST /csc/v2/signatures/signHash      API key + admission (http/limits.rs)
//!        body ─> credential (400 unknown, 403 foreign) ─> signAlgo/hashAlgorithmOID/
//!        signAlgoParams (pki DigestSignAlgorithm::from_oids, key type) ─> hashes
//!        (base64, length of the hash) ─> SAD taken (Sads::take) ─> Signer::sign_digests
//!        ─> {"signatures": [...]} in the order of the hashes
//! ```
//!
//! # Authentication
//! The caller's access token is its API key (`auth.rs`, scope `seal`), sent as
//! `Authorization: Bearer`. CSC v2 `info` names it `authType: ["external"]`: the token
//! is obtained outside the API (`hanko api-key new`), not by its `auth/login` or OAuth 2.0
//! methods, which are not served. A credential's `authMode` is `implicit`: the client
//! needs no PIN or OTP of its own to get a SAD, its API key (and the credential being in
//! its `credentials` list) is the authorisation.
//!
//! # Signature Activation Data
//! `credentials/authorize` returns a SAD: 256 random bits, base64url. The server keeps
//! only its SHA-256 ([`Sads`]), with the client, the credential, `numSignatures`, and,
//! when `hashes` were given (SCAL 2), exactly those hashes and their algorithm. A SAD
//! expires after `http.csc_sad_lifetime_secs` and is used once: `signHash` removes it
//! before signing, whether the signing succeeds or not. A SAD of another client or
//! credential is refused without being spent (so that a leaked SAD cannot be burnt by
//! someone else). The SADs live in memory: a restart voids them, and a cluster needs its
//! clients to stick to one node between `authorize` and `signHash`.
//!
//! # What is logged
//! `signHash` returns raw signatures over hashes, not issued objects: the server never
//! sees the document or the object the signature ends up in, so there is nothing of the
//! kind the issuance log holds (the object's hash) to record. Each call is counted in
//! `hanko_csc_signatures_total{credential}` (one per signature) and logged at INFO (client,
//! credential, algorithm, number of hashes); see docs/architecture.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
#[cfg(test)]
use std::time::Duration;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hanko_pki::alg::DigestSignAlgorithm;
use hanko_pki::{HashAlgorithm, KeyType};
use hanko_seal::SealCredential;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::json_error::ApiError;
use crate::auth::{ApiKey, SCOPE_SEAL};
use crate::state::AppState;

/// The CSC specification version served.
const SPECS: &str = "2.0.0.0";

/// The methods served, as `info` lists them.
const METHODS: [&str; 5] = [
    "info",
    "credentials/list",
    "credentials/info",
    "credentials/authorize",
    "signatures/signHash",
];

/// Most SADs outstanding at once; beyond it `authorize` answers 503 until some expire
/// or are used (bounds the memory a client can make the server hold).
const MAX_OUTSTANDING_SADS: usize = 100_000;

/// The CSC v2 routes; `signHash` goes through admission control like every signing
/// route.
pub(super) fn routes(state: &AppState) -> Router<Arc<AppState>> {
    let sads = Arc::new(Sads::default());
    let sign = Router::new()
        .route("/csc/v2/signatures/signHash", post(sign_hash))
        .route_layer(middleware::from_fn_with_state(
            (state.limits.clone(), super::MAX_BODY_BYTES),
            super::limits::admit_json,
        ));
    Router::new()
        .route("/csc/v2/info", post(info))
        .route("/csc/v2/credentials/list", post(credentials_list))
        .route("/csc/v2/credentials/info", post(credentials_info))
        .route("/csc/v2/credentials/authorize", post(authorize))
        .merge(sign)
        .layer(Extension(sads))
}

/// One SAD's bindings.
#[derive(Debug)]
struct Grant {
    client: String,
    credential: String,
    num_signatures: usize,
    /// SCAL 2: the hashes (and their algorithm) the SAD is for.
    hashes: Option<(HashAlgorithm, Vec<Vec<u8>>)>,
    expires: Instant,
}

/// The outstanding SADs, by the SHA-256 of the SAD.
#[derive(Debug, Default)]
struct Sads(Mutex<HashMap<[u8; 32], Grant>>);

impl Sads {
    fn digest(sad: &str) -> [u8; 32] {
        Sha256::digest(sad.as_bytes()).into()
    }

    /// Stores `grant` under a fresh SAD and returns the SAD.
    fn issue(&self, grant: Grant) -> Result<String, ApiError> {
        use rand::Rng as _;
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let sad = URL_SAFE_NO_PAD.encode(raw);
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_OUTSTANDING_SADS {
            map.retain(|_, g| g.expires > now);
            if map.len() >= MAX_OUTSTANDING_SADS {
                return Err(ApiError::Refused(super::Refusal::Overloaded));
            }
        }
        map.insert(Self::digest(&sad), grant);
        Ok(sad)
    }

    /// Takes the SAD for `client` on `credential`: refused (and kept) if it is another
    /// client's or credential's, refused (and dropped) if expired.
    fn take(&self, sad: &str, client: &str, credential: &str) -> Result<Grant, ApiError> {
        let key = Self::digest(sad);
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let grant = map
            .get(&key)
            .ok_or(ApiError::InvalidSad("unknown or already used"))?;
        if grant.client != client || grant.credential != credential {
            return Err(ApiError::InvalidSad(
                "issued for another client or credential",
            ));
        }
        let expired = grant.expires <= Instant::now();
        let grant = map
            .remove(&key)
            .ok_or(ApiError::InvalidSad("unknown or already used"))?;
        if expired {
            return Err(ApiError::InvalidSad("expired"));
        }
        Ok(grant)
    }
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

/// The caller (scope `seal`) and the credential it names, which it must be allowed.
fn credential_of<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Result<(&'s ApiKey, &'s Arc<SealCredential>), ApiError> {
    let key = state.api_keys.require(headers, SCOPE_SEAL)?;
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

async fn info() -> Response {
    Json(json!({
        "specs": SPECS,
        "name": "Hanko",
        "logo": "",
        "region": "",
        "lang": "en-US",
        "description": "Hanko organisational e-seal service",
        "authType": ["external"],
        "methods": METHODS,
    }))
    .into_response()
}

async fn credentials_list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    answer((|| {
        let key = state.api_keys.require(&headers, SCOPE_SEAL)?;
        let _: Value = body(&bytes)?;
        let ids: Vec<&str> = state
            .sealer
            .as_ref()
            .map(|s| s.credentials())
            .unwrap_or_default()
            .iter()
            .map(|c| c.name())
            .filter(|n| key.may_use(n))
            .collect();
        Ok(json!({ "credentialIDs": ids }))
    })())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    certificates: Option<String>,
    cert_info: Option<bool>,
    auth_info: Option<bool>,
    #[allow(dead_code, reason = "accepted, one language is served")]
    lang: Option<String>,
}

/// GeneralizedTime text (`YYYYMMDDHHMMSSZ`), as CSC gives certificate validity.
fn generalized_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y%m%d%H%M%SZ").to_string())
        .unwrap_or_default()
}

async fn credentials_info(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    answer((|| {
        let req: InfoRequest = body(&bytes)?;
        let (_, credential) = credential_of(&state, &headers, req.credential_id.as_deref())?;
        let cert = credential.certificate();
        let chain: Vec<String> = match req.certificates.as_deref().unwrap_or("single") {
            "none" => Vec::new(),
            "single" => vec![STANDARD.encode(cert.der())],
            "chain" => credential
                .chain()
                .iter()
                .map(|c| STANDARD.encode(c.der()))
                .collect(),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "invalid parameter certificates: {other:?} (none, single or chain)"
                )));
            }
        };
        let key_type = cert.key_type();
        let mut algos: Vec<&str> = key_type
            .map(DigestSignAlgorithm::for_key)
            .unwrap_or_default()
            .into_iter()
            .map(DigestSignAlgorithm::sign_algo_oid)
            .collect();
        algos.dedup();
        let mut key = json!({
            "status": if credential.signer().is_ready() { "enabled" } else { "disabled" },
            "algo": algos,
        });
        match key_type {
            Some(KeyType::Rsa { bits }) => key["len"] = json!(bits),
            Some(KeyType::EcP256) => {
                key["len"] = json!(256);
                key["curve"] = json!(hanko_pki::oid::dotted::SECP256R1);
            }
            Some(KeyType::EcP384) => {
                key["len"] = json!(384);
                key["curve"] = json!(hanko_pki::oid::dotted::SECP384R1);
            }
            _ => {}
        }
        let now = SystemTime::now();
        let valid = cert.not_before() <= now && now < cert.not_after();
        let mut cert_json = json!({
            "status": if valid { "valid" } else { "expired" },
            "certificates": chain,
        });
        if req.cert_info == Some(true) {
            let tbs = cert.parsed().tbs_certificate();
            cert_json["issuerDN"] = json!(tbs.issuer().to_string());
            cert_json["subjectDN"] = json!(tbs.subject().to_string());
            cert_json["serialNumber"] = json!(hex::encode(tbs.serial_number().as_bytes()));
            cert_json["validFrom"] = json!(generalized_time(cert.not_before()));
            cert_json["validTo"] = json!(generalized_time(cert.not_after()));
        }
        let mut out = json!({
            "key": key,
            "cert": cert_json,
            "SCAL": "1",
            "multisign": state.limits.settings().csc_max_hashes,
            "lang": "en-US",
        });
        if req.auth_info != Some(false) {
            out["auth"] = json!({ "mode": "implicit" });
        }
        Ok(out)
    })())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizeRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    num_signatures: Option<u64>,
    hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
}

async fn authorize(
    State(state): State<Arc<AppState>>,
    Extension(sads): Extension<Arc<Sads>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    answer((|| {
        let req: AuthorizeRequest = body(&bytes)?;
        let (key, credential) = credential_of(&state, &headers, req.credential_id.as_deref())?;
        let settings = state.limits.settings();
        let max = settings.csc_max_hashes;
        let n = req
            .num_signatures
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("numSignatures must be a number in 1..={max}"))
            })?;
        let hashes = match req.hashes {
            None => None,
            Some(list) => {
                let oid = req.hash_algorithm_oid.as_deref().ok_or_else(|| {
                    ApiError::BadRequest("hashes need a hashAlgorithmOID".to_owned())
                })?;
                let alg = HashAlgorithm::from_oid(oid)
                    .map_err(|e| ApiError::BadRequest(format!("hashAlgorithmOID: {e}")))?;
                let decoded = decode_hashes(&list, alg)?;
                if decoded.len() != n {
                    return Err(ApiError::BadRequest(format!(
                        "numSignatures is {n} but {} hashes were given",
                        decoded.len()
                    )));
                }
                Some((alg, decoded))
            }
        };
        let lifetime = settings.csc_sad_lifetime;
        let sad = sads.issue(Grant {
            client: key.name().to_owned(),
            credential: credential.name().to_owned(),
            num_signatures: n,
            hashes,
            expires: Instant::now() + lifetime,
        })?;
        Ok(json!({ "SAD": sad, "expiresIn": lifetime.as_secs() }))
    })())
}

/// The base64 hashes of a request, each of the length of `alg`; at least one.
fn decode_hashes(list: &[String], alg: HashAlgorithm) -> Result<Vec<Vec<u8>>, ApiError> {
    if list.is_empty() {
        return Err(ApiError::BadRequest("hashes is empty".to_owned()));
    }
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            let d = base64_param(&format!("hashes[{i}]"), h)?;
            if d.len() != alg.output_len() {
                return Err(ApiError::BadRequest(format!(
                    "hashes[{i}] is {} bytes; a {alg} hash is {}",
                    d.len(),
                    alg.output_len()
                )));
            }
            Ok(d)
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignHashRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "SAD")]
    sad: Option<String>,
    hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    sign_algo: Option<String>,
    sign_algo_params: Option<String>,
    operation_mode: Option<String>,
}

async fn sign_hash(
    State(state): State<Arc<AppState>>,
    Extension(sads): Extension<Arc<Sads>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    answer(sign(&state, &sads, &headers, &bytes).await)
}

async fn sign(
    state: &AppState,
    sads: &Sads,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Value, ApiError> {
    let req: SignHashRequest = body(bytes)?;
    let (key, credential) = credential_of(state, headers, req.credential_id.as_deref())?;
    if req.operation_mode.as_deref().is_some_and(|m| m != "S") {
        return Err(ApiError::BadRequest(
            "only operationMode \"S\" (synchronous) is served".to_owned(),
        ));
    }
    let sign_algo = req
        .sign_algo
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("missing string parameter signAlgo".to_owned()))?;
    let params = req
        .sign_algo_params
        .as_deref()
        .map(|p| base64_param("signAlgoParams", p))
        .transpose()?;
    let alg = DigestSignAlgorithm::from_oids(
        sign_algo,
        req.hash_algorithm_oid.as_deref(),
        params.as_deref(),
    )
    .map_err(|e| ApiError::BadRequest(format!("signAlgo: {e}")))?;
    if !credential
        .certificate()
        .key_type()
        .is_some_and(|k| alg.fits(k))
    {
        return Err(ApiError::BadRequest(format!(
            "signAlgo: {alg} does not fit the key of credential {:?}",
            credential.name()
        )));
    }
    let list = req
        .hashes
        .ok_or_else(|| ApiError::BadRequest("missing array parameter hashes".to_owned()))?;
    let max = state.limits.settings().csc_max_hashes;
    if list.len() > max {
        return Err(ApiError::BadRequest(format!(
            "{} hashes; at most {max} per call",
            list.len()
        )));
    }
    let hashes = decode_hashes(&list, alg.hash())?;
    let sad = req.sad.as_deref().ok_or(ApiError::InvalidSad("missing"))?;
    let grant = sads.take(sad, key.name(), credential.name())?;
    if hashes.len() > grant.num_signatures {
        return Err(ApiError::InvalidSad("more hashes than it authorises"));
    }
    if let Some((h, allowed)) = &grant.hashes
        && (*h != alg.hash() || !hashes.iter().all(|d| allowed.contains(d)))
    {
        return Err(ApiError::InvalidSad("not issued for these hashes"));
    }
    let signatures = credential
        .signer()
        .sign_digests(alg, &hashes)
        .await
        .map_err(|e| ApiError::Seal(hanko_seal::Error::Signer(e).into()))?;
    metrics::counter!("hanko_csc_signatures_total", "credential" => credential.name().to_owned())
        .increment(signatures.len() as u64);
    tracing::info!(client = %key.name(), credential = %credential.name(), alg = %alg,
        hashes = signatures.len(), "csc signHash");
    let encoded: Vec<String> = signatures.iter().map(|s| STANDARD.encode(s)).collect();
    Ok(json!({ "signatures": encoded }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn grant(lifetime: Duration) -> Grant {
        Grant {
            client: "a".into(),
            credential: "c".into(),
            num_signatures: 1,
            hashes: None,
            expires: Instant::now() + lifetime,
        }
    }

    #[test]
    fn a_sad_is_kept_as_a_digest_used_once_and_not_spent_by_a_stranger() {
        let sads = Sads::default();
        let sad = sads.issue(grant(Duration::from_secs(60))).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&sad).unwrap().len(), 32);
        let stored: [u8; 32] = Sha256::digest(sad.as_bytes()).into();
        assert!(sads.0.lock().unwrap().contains_key(&stored));
        assert!(matches!(
            sads.take(&sad, "b", "c"),
            Err(ApiError::InvalidSad(_))
        ));
        assert!(matches!(
            sads.take(&sad, "a", "d"),
            Err(ApiError::InvalidSad(_))
        ));
        assert_eq!(sads.take(&sad, "a", "c").unwrap().num_signatures, 1);
        assert!(matches!(
            sads.take(&sad, "a", "c"),
            Err(ApiError::InvalidSad("unknown or already used"))
        ));
    }

    #[test]
    fn an_expired_sad_is_refused_and_dropped() {
        let sads = Sads::default();
        let sad = sads.issue(grant(Duration::ZERO)).unwrap();
        assert!(matches!(
            sads.take(&sad, "a", "c"),
            Err(ApiError::InvalidSad("expired"))
        ));
        assert!(sads.0.lock().unwrap().is_empty());
    }
}
