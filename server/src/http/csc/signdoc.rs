//! `POST /csc/v2/signatures/signDoc`: CAdES seals (B-B or B-T) of documents or of
//! digests the caller computed, through the same `Sealer::seal` as
//! `POST /api/v1/seal/cades`: each seal is recorded in the issuance log before it is
//! returned, and a seal whose record fails is not returned (503, retryable).
//!
//! ```text
//!   body ─> credential (400 unknown, 403 foreign) ─> operationMode "S"
//!        ─> each entry of documents, then of documentDigests:
//!             signature_format "C" (PAdES "P": not supported yet)       400
//!             conformance_level AdES-B-B (default) | AdES-B-T            400
//!             signAlgo (+ signAlgoParams) = the credential's algorithm   400
//!             signed_envelope_property: documents Attached (default) |
//!               Detached; digests Detached (the default, and only)     400
//!             document / hashes base64, hashes of the credential's hash  400
//!             hanko_seal::SealRequest::check                             400
//!        ─> at most http.csc_max_hashes seals in all                     400
//!        ─> SAD taken (sad.rs): count, and its hashes when bound         400
//!        ─> Sealer::seal each, in order (seal.rs)                        503 / 500
//!        ─> {"DocumentWithSignature": [...], "SignatureObject": [...]}
//! ```
//!
//! Every request is checked whole before the SAD is taken and before the first seal,
//! so a caller's mistake in the last entry costs nothing. A system fault in the middle
//! of a batch (HSM, TSA, log) fails the call: the seals made before it are in the log
//! but not returned, as happens to any seal whose client hangs up after its record
//! committed; the log never lacks a seal that was returned.
//!
//! # Output (CSC v2 §11.11)
//! - `DocumentWithSignature`: for each document sealed `Attached` (CAdES enveloping:
//!   the document inside the CMS), its DER CMS in base64, in the order of `documents`.
//! - `SignatureObject`: the detached seals, in base64 DER: first those of the documents
//!   sealed `Detached`, in their order, then one per hash of each `documentDigests`
//!   entry, in order.
//!
//! Each key is present when it holds at least one seal. A SAD bound to hashes (SCAL 2)
//! covers a document by its digest with the credential's hash algorithm.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hanko_pki::alg::DigestSignAlgorithm;
use hanko_seal::{
    CommitmentType, Level, Packaging, RawContent, RawSealRequest, SealCredential, SealRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::methods::{self, Version};
use super::sad::Sads;
use super::{answer, base64_param, body, credential_of};
use crate::http::json_error::ApiError;
use crate::state::AppState;

const V: Version = Version::V2;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignDocRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    signature_qualifier: Option<String>,
    #[serde(rename = "SAD")]
    sad: Option<String>,
    document_digests: Option<Vec<DocumentDigests>>,
    documents: Option<Vec<Document>>,
    operation_mode: Option<String>,
    return_validation_information: Option<bool>,
}

/// What a `documents` and a `documentDigests` entry share.
#[derive(Debug, Deserialize)]
struct Format {
    signature_format: Option<String>,
    conformance_level: Option<String>,
    #[serde(rename = "signAlgo")]
    sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    sign_algo_params: Option<String>,
    signed_props: Option<Vec<Value>>,
    signed_envelope_property: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Document {
    document: Option<String>,
    #[serde(flatten)]
    format: Format,
}

#[derive(Debug, Deserialize)]
struct DocumentDigests {
    hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    #[serde(flatten)]
    format: Format,
}

/// One seal to make, checked except for its content.
#[derive(Debug)]
struct Job {
    level: Level,
    packaging: Packaging,
    content: Content,
}

#[derive(Debug)]
enum Content {
    Document(Vec<u8>),
    Digest { hash_oid: String, digest: Vec<u8> },
}

pub(super) async fn sign_doc(
    State(state): State<Arc<AppState>>,
    Extension(sads): Extension<Arc<Sads>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    answer(async { seal_all(&state, &sads, &headers, body(&bytes)?).await }.await)
}

async fn seal_all(
    state: &AppState,
    sads: &Sads,
    headers: &HeaderMap,
    req: SignDocRequest,
) -> Result<Value, ApiError> {
    if req.credential_id.is_none() && req.signature_qualifier.is_some() {
        return Err(ApiError::BadRequest(
            "signatureQualifier is not served; name the credential with credentialID".to_owned(),
        ));
    }
    let (key, credential) = credential_of(state, headers, req.credential_id.as_deref())?;
    methods::synchronous_only(req.operation_mode.as_deref())?;
    if req.return_validation_information == Some(true) {
        return Err(ApiError::BadRequest(
            "returnValidationInformation is not supported".to_owned(),
        ));
    }
    let jobs = jobs(credential, &req)?;
    let max = state.limits.settings().csc_max_hashes;
    if jobs.is_empty() {
        return Err(ApiError::BadRequest(
            "nothing to seal: give documents or documentDigests".to_owned(),
        ));
    }
    if jobs.len() > max {
        return Err(ApiError::BadRequest(format!(
            "{} seals asked; at most {max} per call",
            jobs.len()
        )));
    }
    let requests = jobs
        .iter()
        .map(check)
        .collect::<Result<Vec<SealRequest<'_>>, ApiError>>()?;
    let hash = credential.hash_algorithm();
    let digests: Vec<Vec<u8>> = jobs
        .iter()
        .map(|j| match &j.content {
            Content::Document(d) => hash.digest(d),
            Content::Digest { digest, .. } => digest.clone(),
        })
        .collect();
    let grant = methods::take_sad(sads, req.sad.as_deref(), key.name(), credential)?;
    grant.covers(hash, &digests)?;
    let sealer = state
        .sealer
        .as_ref()
        .ok_or_else(|| ApiError::UnknownCredential(credential.name().to_owned()))?;
    let (mut with_document, mut detached) = (Vec::new(), Vec::new());
    for request in &requests {
        let der = sealer.seal(credential, request, key.name()).await?;
        match request.packaging() {
            Packaging::Enveloping => with_document.push(STANDARD.encode(der)),
            _ => detached.push(STANDARD.encode(der)),
        }
    }
    let mut out = json!({});
    if !with_document.is_empty() {
        out["DocumentWithSignature"] = json!(with_document);
    }
    if !detached.is_empty() {
        out["SignatureObject"] = json!(detached);
    }
    Ok(out)
}

/// The jobs of a request in the order of the output: the documents sealed `Attached`,
/// those sealed `Detached`, then one per hash of each digest entry; every parameter
/// but the content judged here.
fn jobs(credential: &SealCredential, req: &SignDocRequest) -> Result<Vec<Job>, ApiError> {
    let mut jobs = Vec::new();
    let mut detached_docs = Vec::new();
    for (i, d) in req.documents.iter().flatten().enumerate() {
        let at = format!("documents[{i}]");
        let (level, packaging) =
            format_of(credential, &d.format, None, Packaging::Enveloping, &at)?;
        let b64 = d.document.as_deref().ok_or_else(|| {
            ApiError::BadRequest(format!("{at}: missing string parameter document"))
        })?;
        let job = Job {
            level,
            packaging,
            content: Content::Document(base64_param(&format!("{at}.document"), b64)?),
        };
        match packaging {
            Packaging::Enveloping => jobs.push(job),
            _ => detached_docs.push(job),
        }
    }
    jobs.append(&mut detached_docs);
    for (i, d) in req.document_digests.iter().flatten().enumerate() {
        let at = format!("documentDigests[{i}]");
        let oid = d.hash_algorithm_oid.as_deref().ok_or_else(|| {
            ApiError::BadRequest(format!("{at}: missing string parameter hashAlgorithmOID"))
        })?;
        let alg = methods::hash_algorithm(oid, V)?;
        let (level, packaging) =
            format_of(credential, &d.format, Some(oid), Packaging::Detached, &at)?;
        let list = d
            .hashes
            .as_deref()
            .ok_or_else(|| ApiError::BadRequest(format!("{at}: missing array parameter hashes")))?;
        for digest in methods::decode_hashes(list, Some(alg), V).map_err(|e| prefixed(&at, e))? {
            jobs.push(Job {
                level,
                packaging,
                content: Content::Digest {
                    hash_oid: oid.to_owned(),
                    digest,
                },
            });
        }
    }
    Ok(jobs)
}

/// An error's description prefixed with where in the request it is.
fn prefixed(at: &str, e: ApiError) -> ApiError {
    match e {
        ApiError::BadRequest(why) => ApiError::BadRequest(format!("{at}: {why}")),
        other => other,
    }
}

/// The level and packaging of an entry, after checking its format, algorithm and
/// properties. `hash_oid`: a digest entry's `hashAlgorithmOID` (a document is hashed
/// with the credential's algorithm).
fn format_of(
    credential: &SealCredential,
    f: &Format,
    hash_oid: Option<&str>,
    default_packaging: Packaging,
    at: &str,
) -> Result<(Level, Packaging), ApiError> {
    let bad = |why: String| ApiError::BadRequest(format!("{at}: {why}"));
    match f.signature_format.as_deref() {
        Some("C") => {}
        Some("P") => {
            return Err(bad(
                "signature_format \"P\" (PAdES) is not supported yet; only \"C\" (CAdES)"
                    .to_owned(),
            ));
        }
        Some(other) => {
            return Err(bad(format!(
                "signature_format {other:?} is not supported; only \"C\" (CAdES)"
            )));
        }
        None => return Err(bad("missing string parameter signature_format".to_owned())),
    }
    let level = match f
        .conformance_level
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("ADES-B-B" | "ADES-B") => Level::BB,
        Some("ADES-B-T" | "ADES-T") => Level::BT,
        Some("ADES-B-LT" | "ADES-B-LTA" | "ADES-LT" | "ADES-LTA") => {
            return Err(bad(format!(
                "conformance_level {:?} is not supported; AdES-B-B or AdES-B-T",
                f.conformance_level.as_deref().unwrap_or_default()
            )));
        }
        Some(_) => {
            return Err(bad(format!(
                "unknown conformance_level {:?}; AdES-B-B or AdES-B-T",
                f.conformance_level.as_deref().unwrap_or_default()
            )));
        }
    };
    let asked = methods::sign_algorithm(
        credential,
        f.sign_algo.as_deref(),
        hash_oid,
        Some(credential.hash_algorithm()),
        f.sign_algo_params.as_deref(),
    )
    .map_err(|e| prefixed(at, e))?;
    let sealed_with =
        DigestSignAlgorithm::from_signature_algorithm(credential.signer().algorithm());
    if sealed_with != Some(asked) {
        return Err(bad(format!(
            "signAlgo: credential {:?} seals with {}, not {asked}",
            credential.name(),
            credential.signer().algorithm().name()
        )));
    }
    if f.signed_props.as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(bad("signed_props are not supported".to_owned()));
    }
    let packaging = match f.signed_envelope_property.as_deref() {
        None => default_packaging,
        Some("Attached" | "Enveloping") => Packaging::Enveloping,
        Some("Detached") => Packaging::Detached,
        Some(other) => {
            return Err(bad(format!(
                "signed_envelope_property {other:?} is not supported for CAdES; \
                 Attached or Detached"
            )));
        }
    };
    Ok((level, packaging))
}

/// The job as a checked seal request (proof of origin, as the binary seal route).
fn check(job: &Job) -> Result<SealRequest<'_>, ApiError> {
    let content = match &job.content {
        Content::Document(d) => RawContent::Document(d),
        Content::Digest { hash_oid, digest } => RawContent::Digest { hash_oid, digest },
    };
    SealRequest::check(RawSealRequest {
        level: job.level,
        packaging: job.packaging,
        content,
        mime_type: None,
        content_description: None,
        commitment: Some(CommitmentType::ProofOfOrigin),
    })
    .map_err(|e| ApiError::Seal(e.into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use hanko_pki::HashAlgorithm;

    use super::*;

    #[test]
    fn entries_parse_with_the_spec_s_mixed_case_names() {
        let req: SignDocRequest = serde_json::from_value(json!({
            "credentialID": "c",
            "SAD": "s",
            "documents": [{
                "document": "AA==",
                "signature_format": "C",
                "conformance_level": "Ades-B-T",
                "signAlgo": "1.2.840.10045.4.3.2",
                "signed_envelope_property": "Detached",
            }],
            "documentDigests": [{
                "hashes": ["AA=="],
                "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
                "signature_format": "P",
            }],
        }))
        .unwrap();
        let d = &req.documents.as_ref().unwrap()[0];
        assert_eq!(d.format.conformance_level.as_deref(), Some("Ades-B-T"));
        assert_eq!(d.format.sign_algo.as_deref(), Some("1.2.840.10045.4.3.2"));
        assert_eq!(
            d.format.signed_envelope_property.as_deref(),
            Some("Detached")
        );
        let g = &req.document_digests.as_ref().unwrap()[0];
        assert_eq!(g.format.signature_format.as_deref(), Some("P"));
        assert_eq!(
            g.hash_algorithm_oid.as_deref(),
            Some(HashAlgorithm::Sha256.oid())
        );
    }
}
