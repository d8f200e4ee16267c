//! `POST /csc/v2/signatures/signDoc`: CAdES seals (B-B or B-T) of documents or of
//! digests the caller computed, through the same `Sealer::seal` as
//! `POST /api/v1/seal/cades`, and PAdES seals of PDF documents through the same
//! `Sealer::seal_checked_pdf` as `POST /api/v1/seal/pdf`: each seal is recorded in the
//! issuance log before it is returned, and a seal whose record fails is not returned
//! (503, retryable).
//!
//! ```text
//!   body ─> credential (400 unknown, 403 foreign) ─> operationMode "S"
//!        ─> each entry of documents, then of documentDigests:
//!             signature_format "C" (CAdES) | "P" (PAdES, documents only)  400
//!             conformance_level AdES-B-B (default) | AdES-B-T, allowed by
//!               the credential's [keys.seal] levels                      400
//!             signAlgo (+ signAlgoParams) = the credential's algorithm   400
//!             signed_envelope_property: CAdES documents Attached
//!               (default) | Detached; digests Detached (the default, and
//!               only); PAdES Revision (default) | Certification          400
//!             document / hashes base64, hashes of the credential's hash  400
//!             CAdES: hanko_seal::SealRequest::check                      400
//!             PAdES: hanko_seal::CheckedPdf::new (parses; encrypted,
//!               damaged, DocMDP forbids, certification not first)       400
//!        ─> at most http.csc_max_hashes seals in all                     400
//!        ─> SAD taken (sad.rs): count, and its hashes when bound         400
//!        ─> Sealer::seal / seal_checked_pdf each, in order (seal.rs)     503 / 500
//!        ─> {"DocumentWithSignature": [...], "SignatureObject": [...]}
//! ```
//!
//! Every request is checked whole before the SAD is taken and before the first seal,
//! so a caller's mistake in the last entry costs nothing: a PDF is parsed and judged
//! once, and the parsed file is what is sealed. A system fault in the middle
//! of a batch (HSM, TSA, log) fails the call: the seals made before it are in the log
//! but not returned, as happens to any seal whose client hangs up after its record
//! committed; the log never lacks a seal that was returned.
//!
//! # PAdES (`signature_format` "P")
//! The seal is the PDF route's invisible seal on page 1 (an incremental update, the
//! original bytes untouched), at the level `conformance_level` names (CSC v2 writes
//! `Ades-B-B`, `Ades-B-T`; the B-T time-stamp from the server's TSA or `seal.tsa_url`).
//! CSC v2 gives PAdES two envelope properties: `Revision`, an approval seal, and
//! `Certification`, a certification (DocMDP P=2) seal that must be the document's
//! first signature. Hanko takes `Revision` when none is given, as the PDF route does
//! without `certify=true`: a certification seal refuses every PDF already signed,
//! so it must be asked for. A visible seal is the PDF route's alone (CSC v2 has no
//! parameter for a page and a rectangle). A PAdES seal of `documentDigests` is
//! refused: the server writes the PDF's update itself, so it needs the document.
//!
//! # Output (CSC v2 §11.11)
//! - `DocumentWithSignature`: for each document sealed `Attached` (CAdES enveloping:
//!   the document inside the CMS), its DER CMS in base64, and for each PDF sealed
//!   (PAdES), the sealed PDF in base64; in the order of `documents`.
//! - `SignatureObject`: the detached seals, in base64 DER: first those of the documents
//!   sealed `Detached`, in their order, then one per hash of each `documentDigests`
//!   entry, in order.
//!
//! Each key is present when it holds at least one seal. A SAD bound to hashes (SCAL 2)
//! covers a document, PDF or not, by the digest of the document as sent with the
//! credential's hash algorithm.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hanko_pki::alg::DigestSignAlgorithm;
use hanko_seal::{
    CheckedPdf, CommitmentType, Fault, Level, Packaging, PdfSealRequest, Placement, RawContent,
    RawSealRequest, SealCredential, SealRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::methods::{self, Version};
use super::sad::Sads;
use super::{answer, base64_param, body, credential_of};
use crate::auth::Identity;
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
    /// Where in the request it comes from (`documents[2]`), for its errors.
    at: String,
    level: Level,
    shape: Shape,
    content: Content,
}

/// The form of a seal and how it is packaged.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    /// A CMS seal, enveloping (attached) or detached.
    Cades(Packaging),
    /// A sealed PDF; `certify`: a certification (DocMDP) seal.
    Pades { certify: bool },
}

#[derive(Debug)]
enum Content {
    Document(Vec<u8>),
    Digest { hash_oid: String, digest: Vec<u8> },
}

/// A job once its content is checked too: what the sealer takes.
#[derive(Debug)]
enum Checked<'a> {
    Cades(SealRequest<'a>),
    /// Boxed: the parsed document is large beside a seal request.
    Pades(Box<CheckedPdf<'a>>),
}

pub(super) async fn sign_doc(
    State(state): State<Arc<AppState>>,
    Extension(sads): Extension<Arc<Sads>>,
    identity: Identity,
    bytes: Bytes,
) -> Response {
    answer(async { seal_all(&state, &sads, &identity, body(&bytes)?).await }.await)
}

async fn seal_all(
    state: &AppState,
    sads: &Sads,
    identity: &Identity,
    req: SignDocRequest,
) -> Result<Value, ApiError> {
    if req.credential_id.is_none() && req.signature_qualifier.is_some() {
        return Err(ApiError::BadRequest(
            "signatureQualifier is not served; name the credential with credentialID".to_owned(),
        ));
    }
    let (key, credential) = credential_of(state, identity, req.credential_id.as_deref())?;
    let credential = &credential;
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
        .collect::<Result<Vec<Checked<'_>>, ApiError>>()?;
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
    for request in requests {
        match request {
            Checked::Cades(request) => {
                let der = sealer.seal(credential, &request, key.name()).await?;
                match request.packaging() {
                    Packaging::Enveloping => with_document.push(STANDARD.encode(der)),
                    _ => detached.push(STANDARD.encode(der)),
                }
            }
            Checked::Pades(pdf) => {
                let original = pdf.bytes();
                let sealed = sealer
                    .seal_checked_pdf(credential, *pdf, key.name(), None)
                    .await?;
                with_document.push(base64_of(&[original, &sealed.update]));
            }
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

/// The base64 of `parts` one after the other, without joining them first (a sealed PDF
/// is the original followed by its update). Each part but the last is encoded up to
/// a multiple of 3 bytes, the rest carried into the next, so the output is that of the
/// whole.
fn base64_of(parts: &[&[u8]]) -> String {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = String::with_capacity(total.div_ceil(3) * 4);
    let mut carry: Vec<u8> = Vec::with_capacity(3);
    for part in parts {
        let mut rest = *part;
        if !carry.is_empty() {
            let take = (3 - carry.len()).min(rest.len());
            carry.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if carry.len() < 3 {
                continue;
            }
            STANDARD.encode_string(&carry, &mut out);
            carry.clear();
        }
        let whole = rest.len() - rest.len() % 3;
        STANDARD.encode_string(&rest[..whole], &mut out);
        carry.extend_from_slice(&rest[whole..]);
    }
    STANDARD.encode_string(&carry, &mut out);
    out
}

/// The jobs of a request in the order of the output: the documents sealed `Attached`
/// and the PDFs (both answered in `DocumentWithSignature`), those sealed `Detached`,
/// then one per hash of each digest entry; every parameter but the content judged here.
fn jobs(credential: &SealCredential, req: &SignDocRequest) -> Result<Vec<Job>, ApiError> {
    let mut jobs = Vec::new();
    let mut detached_docs = Vec::new();
    for (i, d) in req.documents.iter().flatten().enumerate() {
        let at = format!("documents[{i}]");
        let (level, shape) = format_of(credential, &d.format, None, &at)?;
        let b64 = d.document.as_deref().ok_or_else(|| {
            ApiError::BadRequest(format!("{at}: missing string parameter document"))
        })?;
        let job = Job {
            content: Content::Document(base64_param(&format!("{at}.document"), b64)?),
            at,
            level,
            shape,
        };
        match shape {
            Shape::Cades(Packaging::Detached) => detached_docs.push(job),
            _ => jobs.push(job),
        }
    }
    jobs.append(&mut detached_docs);
    for (i, d) in req.document_digests.iter().flatten().enumerate() {
        let at = format!("documentDigests[{i}]");
        let oid = d.hash_algorithm_oid.as_deref().ok_or_else(|| {
            ApiError::BadRequest(format!("{at}: missing string parameter hashAlgorithmOID"))
        })?;
        let alg = methods::hash_algorithm(oid, V)?;
        let (level, shape) = format_of(credential, &d.format, Some(oid), &at)?;
        let list = d
            .hashes
            .as_deref()
            .ok_or_else(|| ApiError::BadRequest(format!("{at}: missing array parameter hashes")))?;
        for digest in methods::decode_hashes(list, Some(alg), V).map_err(|e| prefixed(&at, e))? {
            jobs.push(Job {
                at: at.clone(),
                level,
                shape,
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

/// The level and shape of an entry, after checking its format, level, algorithm and
/// properties. `hash_oid`: a digest entry's `hashAlgorithmOID` (a document is hashed
/// with the credential's algorithm).
fn format_of(
    credential: &SealCredential,
    f: &Format,
    hash_oid: Option<&str>,
    at: &str,
) -> Result<(Level, Shape), ApiError> {
    let bad = |why: String| ApiError::BadRequest(format!("{at}: {why}"));
    let pades = match f.signature_format.as_deref() {
        Some("C") => false,
        Some("P") if hash_oid.is_some() => {
            return Err(bad(
                "signature_format \"P\" (PAdES) seals documents, not digests: the server \
                 writes the PDF's update, so it needs the PDF"
                    .to_owned(),
            ));
        }
        Some("P") => true,
        Some(other) => {
            return Err(bad(format!(
                "signature_format {other:?} is not supported; \"C\" (CAdES) or \"P\" (PAdES)"
            )));
        }
        None => return Err(bad("missing string parameter signature_format".to_owned())),
    };
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
    credential
        .check_level(level)
        .map_err(|e| bad(e.to_string()))?;
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
    let envelope = f.signed_envelope_property.as_deref();
    let shape = match (pades, envelope) {
        (false, None) if hash_oid.is_some() => Shape::Cades(Packaging::Detached),
        (false, None | Some("Attached" | "Enveloping")) => Shape::Cades(Packaging::Enveloping),
        (false, Some("Detached")) => Shape::Cades(Packaging::Detached),
        (false, Some(other)) => {
            return Err(bad(format!(
                "signed_envelope_property {other:?} is not supported for CAdES; \
                 Attached or Detached"
            )));
        }
        (true, None | Some("Revision")) => Shape::Pades { certify: false },
        (true, Some("Certification")) => Shape::Pades { certify: true },
        (true, Some(other)) => {
            return Err(bad(format!(
                "signed_envelope_property {other:?} is not supported for PAdES; \
                 Revision or Certification"
            )));
        }
    };
    Ok((level, shape))
}

/// The job as a checked seal request (proof of origin, as the seal routes): a CAdES
/// request, or the PDF parsed and judged for an invisible seal on page 1. A refusal
/// that is the caller's names the entry it is about.
fn check(job: &Job) -> Result<Checked<'_>, ApiError> {
    let refused = |e: hanko_seal::Error| match e.fault() {
        Fault::Caller => ApiError::BadRequest(format!("{}: {e}", job.at)),
        _ => ApiError::Seal(e.into()),
    };
    let commitment = Some(CommitmentType::ProofOfOrigin);
    let packaging = match (job.shape, &job.content) {
        (Shape::Cades(packaging), _) => packaging,
        (Shape::Pades { certify }, Content::Document(pdf)) => {
            let request = PdfSealRequest {
                level: job.level,
                placement: Placement::Invisible { page: 1 },
                certify,
                commitment,
            };
            return CheckedPdf::new(pdf, &request)
                .map(|pdf| Checked::Pades(Box::new(pdf)))
                .map_err(refused);
        }
        (Shape::Pades { .. }, Content::Digest { .. }) => {
            return Err(ApiError::BadRequest(format!(
                "{}: PAdES seals documents, not digests",
                job.at
            )));
        }
    };
    let content = match &job.content {
        Content::Document(d) => RawContent::Document(d),
        Content::Digest { hash_oid, digest } => RawContent::Digest { hash_oid, digest },
    };
    SealRequest::check(RawSealRequest {
        level: job.level,
        packaging,
        content,
        mime_type: None,
        content_description: None,
        commitment,
    })
    .map(Checked::Cades)
    .map_err(refused)
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

    #[test]
    fn base64_of_parts_is_the_base64_of_the_whole() {
        let whole: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for split in [0, 1, 2, 3, 4, 5, 500, 998, 999, 1000] {
            for second in [split, (split + 1).min(1000), (split + 2).min(1000)] {
                let (a, rest) = whole.split_at(split);
                let (b, c) = rest.split_at(second - split);
                assert_eq!(
                    base64_of(&[a, b, c]),
                    STANDARD.encode(&whole),
                    "{split} {second}"
                );
            }
        }
        assert_eq!(base64_of(&[]), "");
    }
}
