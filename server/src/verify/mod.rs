//! The recipient's verification (issue #20): what was uploaded to `/verify` or
//! `POST /api/v1/verify`, checked by `hanko-client`'s verifiers (the ones `hanko verify`
//! and `hanko seal-verify` run), and told as a [`Report`] a person can read.
//!
//! ```text
//!   Upload { file, data? } ─> kind_of(file): %PDF ─> verify_pdf (every signature)
//!                                            DER TimeStampResp / token ─> verify(data)
//!                                            DER CMS SignedData ─> verify_seal(data?)
//!                                            RFC 4998 EvidenceRecord ─> anchor::check::
//!                                              verify_records(data) (`hanko evidence verify`'s)
//!                                            else: BadInput (plain-language message)
//!        the client's Error ─> verdict: changed (digest, imprint, signature)
//!                                       untrusted (no chain to an anchor, validity, usage)
//!                                       unknown (anything malformed)
//!        ─> Report { verdict, signer, sealed_at, time_stamp, trust_anchor, checks, ... }
//!        ─> evidence: Verifier::add_evidence by the object's SHA-256 (the log's
//!           object_hash), through anchor::evidence::LogEvidence when [anchor] is on
//! ```
//!
//! Nothing uploaded is kept: the bytes live for the request and only their SHA-256 and
//! size are put in the report (and in the log line the route writes). Trust anchors are
//! `[verify] trust_anchors`, by default the server's own roots (`startup/parts.rs`).

mod page;
mod picture;
mod report;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hanko_client::Error as VerifyError;
use hanko_client::verify::pdf::rfc3339;
use hanko_pki::HashAlgorithm;
use hanko_pki::cert::Certificate;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use page::{Lang, render_error, render_page, render_report};
pub use report::{Check, FileInfo, Kind, Outcome, Report, Signer, TimeStampInfo, Verdict};
use report::{EVIDENCE_STEPS, SEAL_STEPS, TOKEN_STEPS, ts_info};

/// The page's static files.
pub mod page_assets {
    pub use super::page::{CSS, JS};
}

/// The anchoring record of an object, as the evidence seam gives it (JSON as
/// `GET /api/v1/evidence/sha256/{hex}` answers it).
pub type Evidence = serde_json::Value;

/// The seam to anchoring (#15): the anchoring of an object by its SHA-256, or `None`
/// when the log does not hold it (or anchoring is off). The server's is
/// `crate::anchor::evidence::LogEvidence`.
pub trait EvidenceLookup: Send + Sync + fmt::Debug {
    /// The evidence of the object whose SHA-256 is `sha256`.
    fn evidence_for<'a>(
        &'a self,
        sha256: &'a [u8; 32],
    ) -> Pin<Box<dyn Future<Output = Option<Evidence>> + Send + 'a>>;
}

/// Default largest upload (file and data together), bytes: 20 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;

/// What the verification routes need: the trust anchors, the upload limit, and the
/// evidence seam.
#[derive(Clone, Debug)]
pub struct Verifier {
    anchors: Vec<Certificate>,
    max_upload_bytes: usize,
    evidence: Option<Arc<dyn EvidenceLookup>>,
    /// One permit per verification in progress (`verify.max_in_flight`).
    slots: Arc<Semaphore>,
}

/// Default number of verifications at once (`verify.max_in_flight`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

impl Default for Verifier {
    fn default() -> Self {
        Self::new(Vec::new(), DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_MAX_IN_FLIGHT)
    }
}

/// One uploaded file.
#[derive(Clone, Debug, Default)]
pub struct Upload {
    /// The file's name as the browser sent it (shown back, never stored).
    pub name: Option<String>,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Input the page cannot check, in plain language (`code` for programs, the message
/// in each language from `page`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BadInput {
    /// No file, or an empty one.
    Empty,
    /// Not a PDF, `.p7s`, `.tsr`/`.tst` or `.ers`.
    UnknownType,
    /// A PDF with no seal or signature in it.
    PdfNotSigned,
    /// A detached seal or a time-stamp without the document it is about.
    DataMissing,
    /// Over the upload limit.
    TooLarge,
    /// Not a multipart/form-data upload with a `file` field.
    NotMultipart,
    /// Too many verifications at once, or this client over its rate (the page's
    /// words for a 503 or 429).
    Busy,
}

impl BadInput {
    /// The English message (the JSON answer's `message`).
    pub fn message(self, limit: usize) -> String {
        page::bad_input_message(self, Lang::En, limit)
    }
}

impl Verifier {
    /// A verifier trusting `anchors` (none: every chain is untrusted), taking uploads
    /// of at most `max_upload_bytes`,
    /// and verifying at most `max_in_flight` at once.
    pub fn new(anchors: Vec<Certificate>, max_upload_bytes: usize, max_in_flight: usize) -> Self {
        let mut unique: Vec<Certificate> = Vec::new();
        for a in anchors {
            if !unique.iter().any(|u| u.der() == a.der()) {
                unique.push(a);
            }
        }
        Self {
            anchors: unique,
            max_upload_bytes,
            evidence: None,
            slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }

    /// A verification slot, or `None` when `max_in_flight` are in progress.
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// The same verifier, asking `lookup` for evidence records.
    #[must_use]
    pub fn with_evidence(mut self, lookup: Arc<dyn EvidenceLookup>) -> Self {
        self.evidence = Some(lookup);
        self
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    /// The upload limit, bytes.
    pub fn max_upload_bytes(&self) -> usize {
        self.max_upload_bytes
    }

    /// Verifies `file` (with `data`, the detached document, if any): a report, or the
    /// reason the input cannot be checked at all. CPU only; call it off the runtime's
    /// threads for large files.
    pub fn check(&self, file: &Upload, data: Option<&Upload>) -> Result<Report, BadInput> {
        if file.bytes.is_empty() {
            return Err(BadInput::Empty);
        }
        let data = data.filter(|d| !d.bytes.is_empty());
        match kind_of(&file.bytes) {
            Some(Detected::Pdf) => self.check_pdf(file, data),
            Some(Detected::Cades) => self.check_cades(file, data),
            Some(Detected::TimeStamp { token_only }) => {
                let data = data.ok_or(BadInput::DataMissing)?;
                Ok(self.check_time_stamp(file, data, token_only))
            }
            Some(Detected::EvidenceRecord) => {
                let data = data.ok_or(BadInput::DataMissing)?;
                Ok(self.check_evidence(file, data))
            }
            None => Err(BadInput::UnknownType),
        }
    }

    /// Adds the evidence record of the file, when the seam has one.
    pub async fn add_evidence(&self, report: &mut Report) {
        let Some(lookup) = &self.evidence else {
            return;
        };
        let Ok(bytes) = hex::decode(&report.object_hash) else {
            return;
        };
        let Ok(hash) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            return;
        };
        report.evidence = lookup.evidence_for(&hash).await;
    }

    fn check_pdf(&self, file: &Upload, data: Option<&Upload>) -> Result<Report, BadInput> {
        let sigs = hanko_client::verify::pdf::signatures(&file.bytes);
        if matches!(&sigs, Ok(s) if s.is_empty()) {
            return Err(BadInput::PdfNotSigned);
        }
        let mut r = Report::new(Kind::Pdf, file, data);
        let claimed = sigs
            .as_ref()
            .ok()
            .and_then(|s| s.last())
            .and_then(|s| hanko_client::claimed_signer(&s.cms));
        r.signatures = sigs.as_ref().ok().map(Vec::len);
        let pdf_m = sigs
            .as_ref()
            .ok()
            .and_then(|s| s.last())
            .and_then(|s| s.claimed_time);
        match hanko_client::verify_pdf(&file.bytes, &self.anchors, &self.anchors) {
            Ok(v) => {
                let Some(last) = v.seals.last() else {
                    return Err(BadInput::PdfNotSigned);
                };
                r.genuine_seal(last);
                if last.time_stamp.is_none() {
                    r.time_source = Some(if pdf_m.is_some() { "pdf-m" } else { "none" });
                }
                r.bytes_after_seal = Some(v.appended);
                if v.appended == 0 {
                    r.seal_picture = picture::seal_picture(&file.bytes).map(|png| {
                        use base64::Engine as _;
                        format!(
                            "data:image/png;base64,{}",
                            base64::engine::general_purpose::STANDARD.encode(png)
                        )
                    });
                }
                if v.appended > 0 {
                    r.checks.push(Check {
                        name: "later_revisions",
                        outcome: Outcome::Warning,
                        detail: format!(
                            "{} bytes were added after the last seal (a later revision); \
                             the sealed revision itself is intact",
                            v.appended
                        ),
                    });
                }
            }
            Err(e) => {
                r.failed(&e, claimed.as_ref(), SEAL_STEPS);
                if let Some(t) = pdf_m {
                    r.sealed_at = Some(rfc3339(t));
                    r.time_source = Some("pdf-m");
                }
            }
        }
        Ok(r)
    }

    fn check_cades(&self, file: &Upload, data: Option<&Upload>) -> Result<Report, BadInput> {
        let data_bytes = data.map(|d| d.bytes.as_slice());
        let mut r = Report::new(Kind::Cades, file, data);
        match hanko_client::verify_seal(&file.bytes, data_bytes, &self.anchors, &self.anchors) {
            Ok(v) => r.genuine_seal(&v),
            Err(VerifyError::DetachedWithoutData) => return Err(BadInput::DataMissing),
            Err(e) => r.failed(
                &e,
                hanko_client::claimed_signer(&file.bytes).as_ref(),
                SEAL_STEPS,
            ),
        }
        Ok(r)
    }

    fn check_time_stamp(&self, file: &Upload, data: &Upload, token_only: bool) -> Report {
        let mut r = Report::new(Kind::TimeStamp, file, Some(data));
        let response = if token_only {
            granted_response(&file.bytes)
        } else {
            file.bytes.clone()
        };
        r.object_hash =
            hex::encode(HashAlgorithm::Sha256.digest(crate::anchor::check::object_of(&response)));
        let doc = &data.bytes;
        match hanko_client::verify(
            &response,
            &|alg: HashAlgorithm| Ok(alg.digest(doc)),
            None,
            &self.anchors,
            &[],
        ) {
            Ok(v) => r.existed("time-stamp", ts_info(&v), &v.chain, TOKEN_STEPS),
            Err(e) => r.failed(&e, None, TOKEN_STEPS),
        }
        r
    }

    /// An evidence record with its object (a `.tsr` stands for its token), by the code
    /// `hanko evidence verify` runs.
    fn check_evidence(&self, file: &Upload, data: &Upload) -> Report {
        use crate::anchor::check::{EvidenceCheckError as E, object_of, verify_records};
        let mut r = Report::new(Kind::EvidenceRecord, file, Some(data));
        r.object_hash = hex::encode(HashAlgorithm::Sha256.digest(object_of(&data.bytes)));
        match verify_records(&[&file.bytes], &data.bytes, &self.anchors, &[]) {
            Ok(v) => {
                let Some(first) = v.anchored.first() else {
                    r.failed_with(
                        Verdict::Unknown,
                        "malformed",
                        "the record has no archive time-stamp".to_owned(),
                        EVIDENCE_STEPS,
                    );
                    return r;
                };
                let ts = TimeStampInfo {
                    time: rfc3339(first.gen_time),
                    tsa: first.tsa.clone(),
                    serial: first.serial.clone(),
                    policy: first.policy.clone(),
                };
                r.existed("evidence-record", ts, &first.chain, EVIDENCE_STEPS);
            }
            Err(E::TimeStamp { source, .. }) => r.failed(&source, None, EVIDENCE_STEPS),
            Err(e @ E::Record { .. }) => {
                let (verdict, reason) = match &e {
                    E::Record {
                        source:
                            hanko_anchor::Error::NotInTree { .. }
                            | hanko_anchor::Error::ImprintMismatch { .. },
                        ..
                    } => (Verdict::Changed, "digest_mismatch"),
                    _ => (Verdict::Unknown, "malformed"),
                };
                r.failed_with(verdict, reason, e.to_string(), EVIDENCE_STEPS);
            }
            Err(e @ E::NoRecords) => {
                r.failed_with(Verdict::Unknown, "malformed", e.to_string(), EVIDENCE_STEPS);
            }
        }
        r
    }
}

/// What the uploaded bytes look like.
enum Detected {
    Pdf,
    Cades,
    TimeStamp { token_only: bool },
    EvidenceRecord,
}

/// id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4), DER.
const TST_INFO_OID: &[u8] = &[
    0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
/// id-signedData (1.2.840.113549.1.7.2), DER.
const SIGNED_DATA_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
];

fn kind_of(bytes: &[u8]) -> Option<Detected> {
    let head = &bytes[..bytes.len().min(1024)];
    if head.starts_with(b"%PDF-") {
        return Some(Detected::Pdf);
    }
    let (tag, content, _) = hanko_pki::der::read_tlv(bytes)?;
    if tag != 0x30 {
        return None;
    }
    let (inner_tag, inner, _) = hanko_pki::der::read_tlv(content)?;
    let has_tst = head.windows(TST_INFO_OID.len()).any(|w| w == TST_INFO_OID);
    match inner_tag {
        // TimeStampResp { PKIStatusInfo SEQUENCE, token }; EvidenceRecord { version
        // INTEGER 1, digestAlgorithms SEQUENCE, ... } (RFC 4998).
        0x30 if has_tst => Some(Detected::TimeStamp { token_only: false }),
        0x30 => None,
        0x02 if inner == [1] => Some(Detected::EvidenceRecord),
        // ContentInfo { contentType OID, [0] content }.
        0x06 if content.starts_with(SIGNED_DATA_OID) => Some(if has_tst {
            Detected::TimeStamp { token_only: true }
        } else {
            Detected::Cades
        }),
        _ => None,
    }
}

/// `TimeStampResp { status granted, timeStampToken }` around a bare token.
fn granted_response(token: &[u8]) -> Vec<u8> {
    let mut body = vec![0x30, 0x03, 0x02, 0x01, 0x00];
    body.extend_from_slice(token);
    hanko_pki::der::tlv(hanko_pki::der::tag::SEQUENCE, &body)
}

/// The anchors a server trusts by default: the last certificate of each signing
/// key's chain (its root, or the highest certificate configured), and `extra`.
pub fn default_anchors<'a>(
    chains: impl IntoIterator<Item = &'a [Certificate]>,
    extra: &[Certificate],
) -> Vec<Certificate> {
    chains
        .into_iter()
        .filter_map(|c| c.last().cloned())
        .chain(extra.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn up(bytes: &[u8]) -> Upload {
        Upload {
            name: Some("x".to_owned()),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn bad_input_is_named_not_panicked_on() {
        let v = Verifier::default();
        assert_eq!(v.check(&up(b""), None).unwrap_err(), BadInput::Empty);
        assert_eq!(
            v.check(&up(b"hello"), None).unwrap_err(),
            BadInput::UnknownType
        );
        assert_eq!(
            v.check(&up(&[0x30, 0x80, 0x01]), None).unwrap_err(),
            BadInput::UnknownType
        );
        assert_eq!(
            v.check(&up(b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF"), None)
                .unwrap_err(),
            BadInput::PdfNotSigned
        );
        // RFC 4998 EvidenceRecord { version 1, ... }: without its object, data missing;
        // with one, a malformed record is "cannot tell", not an error.
        let ers = [0x30, 0x05, 0x02, 0x01, 0x01, 0x30, 0x00];
        assert_eq!(v.check(&up(&ers), None).unwrap_err(), BadInput::DataMissing);
        let r = v.check(&up(&ers), Some(&up(b"doc"))).unwrap();
        assert_eq!(r.kind, Kind::EvidenceRecord);
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.reason, Some("malformed"));
        assert_eq!(
            r.object_hash,
            hex::encode(HashAlgorithm::Sha256.digest(b"doc"))
        );
    }

    /// An anchoring seam that knows one object.
    #[derive(Debug)]
    struct OneRecord([u8; 32]);

    impl EvidenceLookup for OneRecord {
        fn evidence_for<'a>(
            &'a self,
            sha256: &'a [u8; 32],
        ) -> Pin<Box<dyn Future<Output = Option<Evidence>> + Send + 'a>> {
            Box::pin(async move { (*sha256 == self.0).then(|| serde_json::json!({"root": "r"})) })
        }
    }

    #[tokio::test]
    async fn the_evidence_seam_is_asked_by_the_object_hash() {
        let pdf = b"%PDF-1.7\n<< /ByteRange [0 10 5000 10] /Contents <00> >>";
        let hash: [u8; 32] = HashAlgorithm::Sha256.digest(pdf).try_into().unwrap();
        let known = Verifier::default().with_evidence(Arc::new(OneRecord(hash)));
        let mut r = known.check(&up(pdf), None).unwrap();
        assert_eq!(r.object_hash, hex::encode(hash));
        known.add_evidence(&mut r).await;
        assert_eq!(r.evidence, Some(serde_json::json!({"root": "r"})));
        let other = Verifier::default().with_evidence(Arc::new(OneRecord([0; 32])));
        let mut r = other.check(&up(pdf), None).unwrap();
        other.add_evidence(&mut r).await;
        assert_eq!(r.evidence, None);
    }

    #[test]
    fn the_token_of_a_response_is_what_evidence_is_looked_up_by() {
        let token = [0x30, 0x03, 0x06, 0x01, 0x2a];
        let response = granted_response(&token);
        assert_eq!(crate::anchor::check::object_of(&response), token.as_slice());
    }

    #[test]
    fn a_broken_pdf_signature_is_unknown_not_an_error() {
        let v = Verifier::default();
        let r = v
            .check(
                &up(b"%PDF-1.7\n<< /ByteRange [0 10 5000 10] /Contents <00> >>"),
                None,
            )
            .unwrap();
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.reason, Some("malformed"));
        assert_eq!(r.checks[0].outcome, Outcome::Fail);
    }
}
