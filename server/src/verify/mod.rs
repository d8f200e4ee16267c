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
//! `[verify] trust_anchors`, by default the server's own roots (`startup.rs`).

mod page;
mod picture;

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

/// The verdict a person reads first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed, up to one of the trust anchors.
    Genuine,
    /// The document (or the seal) is not what was sealed.
    Changed,
    /// Intact, but not by anyone the server trusts (no chain to an anchor, or a
    /// certificate not valid then).
    Untrusted,
    /// The file could not be checked (malformed or unsupported).
    Unknown,
}

/// What was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A sealed PDF (PAdES).
    Pdf,
    /// A CAdES seal (`.p7s`), detached or enveloping.
    Cades,
    /// An RFC 3161 time-stamp (`.tsr` response or `.tst` token).
    TimeStamp,
    /// An RFC 4998 evidence record (`.ers`) with the object it is about.
    EvidenceRecord,
}

impl Kind {
    /// Whether the report is about a time the document existed at (a time-stamp or an
    /// evidence record), not a seal.
    pub fn is_existence(self) -> bool {
        matches!(self, Self::TimeStamp | Self::EvidenceRecord)
    }
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Failed: the first failure decides the verdict.
    Fail,
    /// Not reached, because an earlier check failed.
    NotChecked,
    /// Worth knowing, not a failure (bytes added after a PDF seal).
    Warning,
}

/// One check of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// A stable name (`integrity`, `signature`, `chain`, ...).
    pub name: &'static str,
    /// Its outcome.
    pub outcome: Outcome,
    /// What was found (English, technical).
    pub detail: String,
}

/// Who sealed (or time-stamped).
#[derive(Clone, Debug, Serialize)]
pub struct Signer {
    /// The subject's organisation (O=), when it has one.
    pub organisation: Option<String>,
    /// The subject (RFC 4514).
    pub subject: String,
    /// The issuer (RFC 4514).
    pub issuer: String,
    /// notBefore (RFC 3339).
    pub not_before: String,
    /// notAfter (RFC 3339).
    pub not_after: String,
    /// Whether this was established by a verified signature (`false`: only claimed,
    /// by a seal that did not verify).
    pub verified: bool,
}

/// The time-stamp of a B-T seal, or the time-stamp checked.
#[derive(Clone, Debug, Serialize)]
pub struct TimeStampInfo {
    /// genTime (RFC 3339).
    pub time: String,
    /// The TSA certificate's subject.
    pub tsa: String,
    /// The token's serial number (hex).
    pub serial: String,
    /// The policy OID.
    pub policy: String,
}

/// The uploaded file as the report names it: never its content.
#[derive(Clone, Debug, Serialize)]
pub struct FileInfo {
    /// The name the browser gave.
    pub name: Option<String>,
    /// Size in bytes.
    pub size: usize,
    /// SHA-256, hex.
    pub sha256: String,
}

/// The verification report (`POST /api/v1/verify`'s JSON, the page's HTML).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// What was checked.
    pub kind: Kind,
    /// Why, in one English sentence (the page words it per language from `verdict`
    /// and `reason`).
    pub summary: String,
    /// A stable reason code when the verdict is not `genuine` (`digest_mismatch`,
    /// `no_chain`, ...).
    pub reason: Option<&'static str>,
    /// The file.
    pub file: FileInfo,
    /// The detached document, when one was given.
    pub data: Option<FileInfo>,
    /// The sealer, or the TSA of a time-stamp.
    pub signer: Option<Signer>,
    /// When it was sealed or time-stamped (RFC 3339): the time-stamp's time when there
    /// is one, else the claimed signing time.
    pub sealed_at: Option<String>,
    /// Where `sealed_at` comes from: `time-stamp`, `signing-time` (claimed by the
    /// sealer) or `pdf-m` (the PDF signature dictionary's /M, claimed).
    pub time_source: Option<&'static str>,
    /// Whether the document is unchanged since it was sealed (`None`: not known).
    pub document_unchanged: Option<bool>,
    /// PDF: bytes a later revision added after the last seal (0: none).
    pub bytes_after_seal: Option<usize>,
    /// PDF: how many seals or signatures it carries.
    pub signatures: Option<usize>,
    /// The seal's CAdES/PAdES level (`B-B`, `B-T`).
    pub level: Option<&'static str>,
    /// The time-stamp (of a B-T seal, or the one checked).
    pub time_stamp: Option<TimeStampInfo>,
    /// The trust anchor the chain ends at (its subject).
    pub trust_anchor: Option<String>,
    /// The chain, leaf first, up to the anchor.
    pub chain: Vec<String>,
    /// The SHA-256 (hex) the evidence record is looked up by: the object as the log
    /// records it (the sealed PDF or `.p7s` as delivered; a time-stamp's token, also
    /// inside a `.tsr` response).
    pub object_hash: String,
    /// The evidence record of the object, when it has been anchored (#15).
    pub evidence: Option<Evidence>,
    /// The picture of a visible PDF seal (`data:image/png;base64,...`), only for a seal
    /// that verified and covers the whole file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_picture: Option<String>,
    /// Each check with its outcome, in order.
    pub checks: Vec<Check>,
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

/// The steps of a seal's verification (hanko_client::verify_seal's order), each
/// with the reason codes that fail it.
const SEAL_STEPS: &[(&str, &[&str])] = &[
    ("format", &["malformed"]),
    ("integrity", &["digest_mismatch"]),
    ("signature", &["bad_signature"]),
    ("chain", &["no_chain", "not_valid_then", "key_usage"]),
    ("time_stamp", &["time_stamp"]),
];

/// The steps of an evidence record's verification: a time-stamp's, with `integrity`
/// the tree from the document to the time-stamp's imprint.
const EVIDENCE_STEPS: &[(&str, &[&str])] = TOKEN_STEPS;

/// The steps of a time-stamp's verification (hanko_client::verify's order).
const TOKEN_STEPS: &[(&str, &[&str])] = &[
    ("format", &["malformed"]),
    ("integrity", &["digest_mismatch"]),
    ("signature", &["bad_signature"]),
    ("chain", &["no_chain", "not_valid_then", "key_usage"]),
];

fn pass(name: &'static str, detail: &str) -> Check {
    Check {
        name,
        outcome: Outcome::Pass,
        detail: detail.to_owned(),
    }
}

/// The verdict and reason code of a verification error.
fn classify(e: &VerifyError) -> (Verdict, &'static str) {
    use VerifyError as E;
    match e {
        E::SealDataMismatch(_)
        | E::ImprintNotOfTheData(_)
        | E::AttachedContentDiffers
        | E::MessageDigestMismatch(_) => (Verdict::Changed, "digest_mismatch"),
        E::SealBadSignature(_) | E::BadSignature(_) | E::EssCertHashMismatch(_) => {
            (Verdict::Changed, "bad_signature")
        }
        E::NoChain(_) | E::ChainTooLong(_) | E::NoTrustAnchor => (Verdict::Untrusted, "no_chain"),
        E::NotValidAtSigningTime(_) | E::NotValidAtGenTime(_) => {
            (Verdict::Untrusted, "not_valid_then")
        }
        E::SealKeyUsage
        | E::ExtendedKeyUsageCount(_)
        | E::ExtendedKeyUsageNotCritical
        | E::ExtendedKeyUsageNotTimeStamping
        | E::MalformedExtendedKeyUsage(_) => (Verdict::Untrusted, "key_usage"),
        E::SealTimeStamp(inner) => match classify(inner) {
            (Verdict::Unknown, _) => (Verdict::Unknown, "time_stamp"),
            (v, _) => (v, "time_stamp"),
        },
        E::TimeStampBeforeSigningTime => (Verdict::Unknown, "time_stamp"),
        _ => (Verdict::Unknown, "malformed"),
    }
}

fn ts_info(v: &hanko_client::Verified) -> TimeStampInfo {
    TimeStampInfo {
        time: rfc3339(v.gen_time),
        tsa: v.tsa_subject.clone(),
        serial: v.serial.clone(),
        policy: v.policy.clone(),
    }
}

fn file_info(u: &Upload) -> FileInfo {
    FileInfo {
        name: u.name.clone(),
        size: u.bytes.len(),
        sha256: hex::encode(HashAlgorithm::Sha256.digest(&u.bytes)),
    }
}

fn signer_of(cert: &Certificate, verified: bool) -> Signer {
    let subject = cert.subject_string();
    let organisation = subject
        .split(',')
        .find_map(|rdn| rdn.trim().strip_prefix("O="))
        .map(str::to_owned);
    Signer {
        organisation,
        subject,
        issuer: cert.parsed().tbs_certificate().issuer().to_string(),
        not_before: rfc3339(cert.not_before()),
        not_after: rfc3339(cert.not_after()),
        verified,
    }
}

impl Report {
    fn new(kind: Kind, file: &Upload, data: Option<&Upload>) -> Self {
        Self {
            verdict: Verdict::Unknown,
            kind,
            summary: String::new(),
            reason: None,
            object_hash: hex::encode(HashAlgorithm::Sha256.digest(&file.bytes)),
            file: file_info(file),
            data: data.map(file_info),
            signer: None,
            sealed_at: None,
            time_source: None,
            document_unchanged: None,
            bytes_after_seal: None,
            signatures: None,
            level: None,
            time_stamp: None,
            trust_anchor: None,
            chain: Vec::new(),
            evidence: None,
            seal_picture: None,
            checks: Vec::new(),
        }
    }

    /// A seal that verified.
    fn genuine_seal(&mut self, v: &hanko_client::VerifiedSeal) {
        self.verdict = Verdict::Genuine;
        self.signer = Some(signer_of(&v.signer_certificate, true));
        self.document_unchanged = Some(true);
        self.level = Some(v.level);
        self.trust_anchor = v.chain.last().cloned();
        self.chain.clone_from(&v.chain);
        match &v.time_stamp {
            Some(ts) => {
                self.sealed_at = Some(rfc3339(ts.gen_time));
                self.time_source = Some("time-stamp");
                self.time_stamp = Some(ts_info(ts));
            }
            None => {
                self.sealed_at = Some(rfc3339(v.signing_time));
                self.time_source = Some("signing-time");
            }
        }
        self.summary = format!(
            "Sealed by {} and unchanged since; the chain ends at a trusted anchor.",
            v.signer_subject
        );
        self.checks = SEAL_STEPS
            .iter()
            .map(|(name, _)| {
                if *name == "time_stamp" && v.time_stamp.is_none() {
                    Check {
                        name,
                        outcome: Outcome::NotChecked,
                        detail: "no time-stamp (level B-B): the time is the sealer's claim"
                            .to_owned(),
                    }
                } else {
                    pass(name, "verified")
                }
            })
            .collect();
    }

    /// A time-stamp or evidence record that verified: the document existed at `ts`'s
    /// time (`source`: `time-stamp` or `evidence-record`), `chain` up to the anchor.
    fn existed(
        &mut self,
        source: &'static str,
        ts: TimeStampInfo,
        chain: &[String],
        steps: &[(&'static str, &[&str])],
    ) {
        let by = if source == "evidence-record" {
            "anchored"
        } else {
            "time-stamped"
        };
        self.verdict = Verdict::Genuine;
        self.summary = format!("The document existed at {}, {by} by {}.", ts.time, ts.tsa);
        self.document_unchanged = Some(true);
        self.sealed_at = Some(ts.time.clone());
        self.time_source = Some(source);
        self.trust_anchor = chain.last().cloned();
        self.chain = chain.to_vec();
        self.time_stamp = Some(ts);
        self.checks = steps
            .iter()
            .map(|(name, _)| pass(name, "verified"))
            .collect();
    }

    /// A verification that failed with `e`: the verdict, the claimed signer, and the
    /// checks before the failing one passed, those after it not checked.
    fn failed(
        &mut self,
        e: &VerifyError,
        claimed: Option<&Certificate>,
        steps: &[(&'static str, &[&str])],
    ) {
        let (verdict, reason) = classify(e);
        self.signer = claimed.map(|c| signer_of(c, false));
        self.failed_with(verdict, reason, e.to_string(), steps);
    }

    /// A verification that failed with `verdict` for `reason` (`message`, English).
    fn failed_with(
        &mut self,
        verdict: Verdict,
        reason: &'static str,
        message: String,
        steps: &[(&'static str, &[&str])],
    ) {
        self.verdict = verdict;
        self.reason = Some(reason);
        self.summary.clone_from(&message);
        self.document_unchanged = match reason {
            "digest_mismatch" | "bad_signature" => Some(false),
            "no_chain" | "not_valid_then" | "key_usage" => Some(true),
            _ => None,
        };
        let failing = steps
            .iter()
            .position(|(_, reasons)| reasons.contains(&reason))
            .unwrap_or(0);
        self.checks = steps
            .iter()
            .enumerate()
            .map(|(i, (name, _))| match i.cmp(&failing) {
                std::cmp::Ordering::Less => pass(name, "verified"),
                std::cmp::Ordering::Equal => Check {
                    name,
                    outcome: Outcome::Fail,
                    detail: message.clone(),
                },
                std::cmp::Ordering::Greater => Check {
                    name,
                    outcome: Outcome::NotChecked,
                    detail: "not checked: an earlier check failed".to_owned(),
                },
            })
            .collect();
    }
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
