//! The CSC methods once, for both versions: `v1.rs` and `v2.rs` read their JSON shapes
//! into the parameter structs here and render the answers; everything that decides
//! (who may use what, which algorithm, which hashes, the SAD, signing, time-stamping)
//! is in this file. Parameter names in error descriptions are the caller's version's
//! ([`Version::hashes`], [`Version::hash_algo`]).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hanko_pki::alg::{DigestSignAlgorithm, SignAlgoRejection};
use hanko_pki::{HashAlgorithm, KeyType};
use hanko_seal::SealCredential;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::sad::{BoundHashes, Grant, Sads};
use super::{base64_param, body, credential_of};
use crate::auth::{Identity, SCOPE_CSC};
use crate::http::json_error::ApiError;
use crate::state::AppState;

/// The CSC API version a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Version {
    /// CSC API 1.0.4.0 (`/csc/v1/...`).
    V1,
    /// CSC API 2.0.0.x (`/csc/v2/...`).
    V2,
}

impl Version {
    /// `info.specs`.
    fn specs(self) -> &'static str {
        match self {
            Self::V1 => "1.0.4.0",
            Self::V2 => "2.0.0.0",
        }
    }

    /// The name of the hash list parameter.
    pub fn hashes(self) -> &'static str {
        match self {
            Self::V1 => "hash",
            Self::V2 => "hashes",
        }
    }

    /// The name of the hash algorithm parameter.
    pub fn hash_algo(self) -> &'static str {
        match self {
            Self::V1 => "hashAlgo",
            Self::V2 => "hashAlgorithmOID",
        }
    }
}

/// A version's shapes: its number and how its `credentials/info` names the
/// authorisation.
pub(super) trait Shaped {
    /// The version.
    const VERSION: Version;
    /// Adds the authorisation fields of `credentials/info` to `out`.
    fn add_auth(req: &InfoRequest, out: &mut Value);
}

/// A version's `credentials/authorize` body.
pub(super) trait AuthorizeShape: DeserializeOwned {
    /// Its parameters.
    fn params(&self) -> AuthorizeParams<'_>;
}

/// A version's `signatures/signHash` body.
pub(super) trait SignHashShape: DeserializeOwned {
    /// Its parameters.
    fn params(&self) -> SignHashParams<'_>;
}

/// A version's `signatures/timestamp` body.
pub(super) trait TimestampShape: DeserializeOwned {
    /// Its parameters.
    fn params(&self) -> TimestampParams<'_>;
}

/// `info`: the service as `[csc]` describes it, and the methods served (`timestamp`
/// only with a TSA, `signDoc` only in v2).
pub(super) fn info(state: &AppState, v: Version) -> Value {
    let mut methods = vec![
        "info",
        "credentials/list",
        "credentials/info",
        "credentials/authorize",
        "signatures/signHash",
    ];
    if state.issuer.is_some() {
        methods.push("signatures/timestamp");
    }
    if v == Version::V2 {
        methods.push("signatures/signDoc");
    }
    let i = &state.csc_info;
    json!({
        "specs": v.specs(),
        "name": i.name,
        "logo": i.logo,
        "region": i.region,
        "lang": i.lang,
        "description": i.description,
        "authType": ["external"],
        "methods": methods,
    })
}

/// `credentials/list` (the same in both versions): the caller's credential IDs.
pub(super) fn credentials_list(
    state: &AppState,
    identity: &Identity,
    bytes: &[u8],
) -> Result<Value, ApiError> {
    let key = identity.require(SCOPE_CSC)?;
    let _: Value = body(bytes)?;
    let ids: Vec<String> = state
        .sealer
        .as_ref()
        .map(|s| s.names())
        .unwrap_or_default()
        .into_iter()
        .filter(|n| key.may_use(n))
        .collect();
    Ok(json!({ "credentialIDs": ids }))
}

/// A `credentials/info` request; v1 and v2 name its parameters alike.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InfoRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    certificates: Option<String>,
    cert_info: Option<bool>,
    /// Whether to describe the authorisation (v2 `auth`; v1 `authMode` is always there).
    pub auth_info: Option<bool>,
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

/// `credentials/info` without the authorisation fields, which the versions name
/// differently (v1 `authMode`, v2 `auth.mode`).
pub(super) fn credential_info(
    state: &AppState,
    identity: &Identity,
    req: &InfoRequest,
) -> Result<Value, ApiError> {
    let (_, credential) = credential_of(state, identity, req.credential_id.as_deref())?;
    let credential = &credential;
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
        .map(|k| credential.metadata().digest_algorithms_for(k))
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
        "lang": state.csc_info.lang,
    });
    if let Some(d) = &credential.metadata().description {
        out["description"] = json!(d);
    }
    Ok(out)
}

/// `credentials/authorize`, as either version words it.
#[derive(Debug)]
pub(super) struct AuthorizeParams<'a> {
    pub credential_id: Option<&'a str>,
    pub num_signatures: Option<u64>,
    /// The hashes to bind the SAD to (SCAL 2), base64.
    pub hashes: Option<&'a [String]>,
    /// Their algorithm (v2 only: v1 has no such parameter).
    pub hash_oid: Option<&'a str>,
}

pub(super) fn authorize(
    state: &AppState,
    sads: &Sads,
    identity: &Identity,
    p: &AuthorizeParams<'_>,
    v: Version,
) -> Result<Value, ApiError> {
    let (key, credential) = credential_of(state, identity, p.credential_id)?;
    let credential = &credential;
    let settings = state.limits.settings();
    let max = settings.csc_max_hashes;
    let n = p
        .num_signatures
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::BadRequest(format!("numSignatures must be a number in 1..={max}"))
        })?;
    let hashes = match p.hashes {
        None => None,
        Some(list) => {
            let alg = match (v, p.hash_oid) {
                (Version::V1, _) => None,
                (Version::V2, None) => {
                    return Err(ApiError::BadRequest(format!(
                        "{} need a {}",
                        v.hashes(),
                        v.hash_algo()
                    )));
                }
                (Version::V2, Some(oid)) => Some(hash_algorithm(oid, v)?),
            };
            let decoded = decode_hashes(list, alg, v)?;
            if decoded.len() != n {
                return Err(ApiError::BadRequest(format!(
                    "numSignatures is {n} but {} {} were given",
                    decoded.len(),
                    v.hashes()
                )));
            }
            Some(BoundHashes {
                alg,
                hashes: decoded,
            })
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
}

/// The hash algorithm of a dotted OID (SHA-256, -384, -512; weaker ones refused).
pub(super) fn hash_algorithm(oid: &str, v: Version) -> Result<HashAlgorithm, ApiError> {
    HashAlgorithm::from_oid(oid)
        .map_err(|e| ApiError::BadRequest(format!("{}: {e}", v.hash_algo())))
}

/// The base64 hashes of a request, at least one, each of the length of `alg` (without
/// one, of some accepted algorithm).
pub(super) fn decode_hashes(
    list: &[String],
    alg: Option<HashAlgorithm>,
    v: Version,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let name = v.hashes();
    if list.is_empty() {
        return Err(ApiError::BadRequest(format!("{name} is empty")));
    }
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            let d = base64_param(&format!("{name}[{i}]"), h)?;
            let fits = match alg {
                Some(a) => d.len() == a.output_len(),
                None => HashAlgorithm::ALL.iter().any(|a| a.output_len() == d.len()),
            };
            if !fits {
                return Err(ApiError::BadRequest(match alg {
                    Some(a) => format!(
                        "{name}[{i}] is {} bytes; a {a} hash is {}",
                        d.len(),
                        a.output_len()
                    ),
                    None => format!(
                        "{name}[{i}] is {} bytes; no accepted hash algorithm (SHA-256, \
                         SHA-384, SHA-512) gives that",
                        d.len()
                    ),
                }));
            }
            Ok(d)
        })
        .collect()
}

/// The digest-signing algorithm a request names (`signAlgo`, the hash algorithm,
/// `signAlgoParams` in base64), which must fit the credential's key. `default_hash`
/// completes a `signAlgo` that names no hash (`rsaEncryption`) when the request has no
/// hash algorithm parameter (signDoc's `documents`).
pub(super) fn sign_algorithm(
    credential: &SealCredential,
    sign_algo: Option<&str>,
    hash_oid: Option<&str>,
    default_hash: Option<HashAlgorithm>,
    params_b64: Option<&str>,
) -> Result<DigestSignAlgorithm, ApiError> {
    let sign_algo = sign_algo
        .ok_or_else(|| ApiError::BadRequest("missing string parameter signAlgo".to_owned()))?;
    let params = params_b64
        .map(|p| base64_param("signAlgoParams", p))
        .transpose()?;
    let params = params.as_deref();
    let alg = match DigestSignAlgorithm::from_oids(sign_algo, hash_oid, params) {
        Err(SignAlgoRejection::HashAlgoMissing { .. }) if default_hash.is_some() => {
            DigestSignAlgorithm::from_oids(sign_algo, default_hash.map(HashAlgorithm::oid), params)
        }
        other => other,
    }
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
    // The credential's `[keys.seal] algorithms`.
    credential
        .check_digest_algorithm(alg)
        .map_err(|e| ApiError::BadRequest(format!("signAlgo: {e}")))?;
    Ok(alg)
}

/// `operationMode`: only `"S"` (synchronous) is served.
pub(super) fn synchronous_only(operation_mode: Option<&str>) -> Result<(), ApiError> {
    if operation_mode.is_some_and(|m| m != "S") {
        return Err(ApiError::BadRequest(
            "only operationMode \"S\" (synchronous) is served".to_owned(),
        ));
    }
    Ok(())
}

/// `signatures/signHash`, as either version words it.
#[derive(Debug)]
pub(super) struct SignHashParams<'a> {
    pub credential_id: Option<&'a str>,
    pub sad: Option<&'a str>,
    pub hashes: Option<&'a [String]>,
    pub hash_oid: Option<&'a str>,
    pub sign_algo: Option<&'a str>,
    pub sign_algo_params: Option<&'a str>,
    pub operation_mode: Option<&'a str>,
}

/// Checks everything, then takes the SAD (so that a request refused for its hashes or
/// algorithm leaves the SAD usable), then signs: `{"signatures": [...]}` in the order of
/// the hashes.
pub(super) async fn sign_hash(
    state: &AppState,
    sads: &Sads,
    identity: &Identity,
    p: &SignHashParams<'_>,
    v: Version,
) -> Result<Value, ApiError> {
    let (key, credential) = credential_of(state, identity, p.credential_id)?;
    let credential = &credential;
    synchronous_only(p.operation_mode)?;
    let alg = sign_algorithm(
        credential,
        p.sign_algo,
        p.hash_oid,
        None,
        p.sign_algo_params,
    )?;
    let list = p
        .hashes
        .ok_or_else(|| ApiError::BadRequest(format!("missing array parameter {}", v.hashes())))?;
    let max = state.limits.settings().csc_max_hashes;
    if list.len() > max {
        return Err(ApiError::BadRequest(format!(
            "{} {}; at most {max} per call",
            list.len(),
            v.hashes()
        )));
    }
    let hashes = decode_hashes(list, Some(alg.hash()), v)?;
    let grant = take_sad(sads, p.sad, key.name(), credential)?;
    grant.covers(alg.hash(), &hashes)?;
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

/// Takes the request's SAD for `client` on `credential` (see [`Sads::take`]).
pub(super) fn take_sad(
    sads: &Sads,
    sad: Option<&str>,
    client: &str,
    credential: &Arc<SealCredential>,
) -> Result<Grant, ApiError> {
    let sad = sad.ok_or(ApiError::InvalidSad("missing"))?;
    sads.take(sad, client, credential.name())
}

/// `signatures/timestamp`, as either version words it.
#[derive(Debug)]
pub(super) struct TimestampParams<'a> {
    pub hash: Option<&'a str>,
    pub hash_oid: Option<&'a str>,
    /// Hexadecimal, at most 64 bits.
    pub nonce: Option<&'a str>,
}

/// An RFC 3161 token over the caller's hash from the server's own TSA, issued and
/// logged by `Issuer::issue_imprint` like every token (client: the API key's name).
pub(super) async fn timestamp(
    state: &AppState,
    identity: &Identity,
    p: &TimestampParams<'_>,
    v: Version,
) -> Result<Value, ApiError> {
    let key = identity.require(SCOPE_CSC)?;
    let issuer = state.issuer.as_deref().ok_or_else(|| {
        ApiError::BadRequest(
            "signatures/timestamp is not served: this server has no time-stamp authority"
                .to_owned(),
        )
    })?;
    let oid = p.hash_oid.ok_or_else(|| {
        ApiError::BadRequest(format!("missing string parameter {}", v.hash_algo()))
    })?;
    let alg = hash_algorithm(oid, v)?;
    let hash = p
        .hash
        .ok_or_else(|| ApiError::BadRequest("missing string parameter hash".to_owned()))?;
    let digest = base64_param("hash", hash)?;
    if digest.len() != alg.output_len() {
        return Err(ApiError::BadRequest(format!(
            "hash is {} bytes; a {alg} hash is {}",
            digest.len(),
            alg.output_len()
        )));
    }
    let nonce = p.nonce.map(parse_nonce).transpose()?;
    let issued = issuer
        .issue_imprint(alg, &digest, nonce, key.name())
        .await
        .map_err(ApiError::TimeStamp)?;
    Ok(json!({ "timestamp": STANDARD.encode(&issued.token.token_der) }))
}

/// A `nonce`: hexadecimal, 1 to 16 digits (the TSA's nonces are 64-bit), not zero.
fn parse_nonce(hex_nonce: &str) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::BadRequest(
            "nonce must be 1 to 16 hexadecimal digits (a 64-bit number), not zero".to_owned(),
        )
    };
    if hex_nonce.is_empty()
        || hex_nonce.len() > 16
        || !hex_nonce.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(bad());
    }
    match u64::from_str_radix(hex_nonce, 16) {
        Ok(0) | Err(_) => Err(bad()),
        Ok(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn nonces_are_hex_and_64_bits() {
        assert_eq!(parse_nonce("01ff").unwrap(), 0x1ff);
        assert_eq!(parse_nonce("ffffffffffffffff").unwrap(), u64::MAX);
        for bad in ["", "0", "1ffffffffffffffff", "xyz", "-1", "+1"] {
            assert!(parse_nonce(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn v1_hashes_without_an_algorithm_have_the_length_of_an_accepted_one() {
        let b64 = |n: usize| STANDARD.encode(vec![7u8; n]);
        for n in [32, 48, 64] {
            assert!(decode_hashes(&[b64(n)], None, Version::V1).is_ok());
        }
        let err = decode_hashes(&[b64(20)], None, Version::V1).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(ref m) if m.starts_with("hash[0] is 20 bytes")));
        let err = decode_hashes(&[], None, Version::V2).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(ref m) if m == "hashes is empty"));
    }
}
