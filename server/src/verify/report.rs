//! What a verification tells: the [`Report`] (its verdict, the signer, the times, each
//! check with its outcome) and how a verifier's findings and errors become one. The
//! checking itself is the parent module's [`super::Verifier`].

use hanko_client::Error as VerifyError;
use hanko_client::verify::pdf::rfc3339;
use hanko_pki::HashAlgorithm;
use hanko_pki::cert::Certificate;
use serde::Serialize;

use super::{Evidence, Upload};

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

/// The steps of a seal's verification (hanko_client::verify_seal's order), each
/// with the reason codes that fail it.
pub(super) const SEAL_STEPS: &[(&str, &[&str])] = &[
    ("format", &["malformed"]),
    ("integrity", &["digest_mismatch"]),
    ("signature", &["bad_signature"]),
    ("chain", &["no_chain", "not_valid_then", "key_usage"]),
    ("time_stamp", &["time_stamp"]),
];

/// The steps of an evidence record's verification: a time-stamp's, with `integrity`
/// the tree from the document to the time-stamp's imprint.
pub(super) const EVIDENCE_STEPS: &[(&str, &[&str])] = TOKEN_STEPS;

/// The steps of a time-stamp's verification (hanko_client::verify's order).
pub(super) const TOKEN_STEPS: &[(&str, &[&str])] = &[
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

pub(super) fn ts_info(v: &hanko_client::Verified) -> TimeStampInfo {
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
    pub(super) fn new(kind: Kind, file: &Upload, data: Option<&Upload>) -> Self {
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
    pub(super) fn genuine_seal(&mut self, v: &hanko_client::VerifiedSeal) {
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
    pub(super) fn existed(
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
    pub(super) fn failed(
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
    pub(super) fn failed_with(
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
