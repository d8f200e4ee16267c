//! Offline verification of RFC 4998 evidence records against their object: the one code
//! path `hanko evidence verify` and the verification page (`/verify`) both run.
//!
//! ```text
//!   object (a .tsr stands for its token) ─> SHA-256 = the leaf
//!   each record: hanko_anchor::evidence::check_data (tree from the leaf to every imprint)
//!                hanko_client::verify_evidence: every archive time-stamp's token
//!                (signature, timeStamping EKU, chain to a root valid at its genTime),
//!                its chain also valid at the next one's genTime, the last one's now
//!                (RFC 4998 §5.3, CONFORMANCE 67)
//!   ─> Anchored per record (its first time-stamp: TSA, genTime, chain; a line per step)
//! ```
//!
//! No I/O: the caller reads the files.

use std::time::SystemTime;

use hanko_pki::HashAlgorithm;
use hanko_pki::cert::Certificate;
use hanko_pki::der::{Cursor, tag};

/// Why evidence records do not prove their object.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceCheckError {
    /// No record was given.
    #[error("no evidence record was given")]
    NoRecords,
    /// Record `index` does not lead from the object to its time-stamps (wrong object,
    /// changed tree, malformed DER).
    #[error("record {index}: the record does not lead from this data to its time-stamps: {source}")]
    Record {
        /// Which record (0-based, in the order given).
        index: usize,
        /// hanko-anchor's reason.
        source: hanko_anchor::Error,
    },
    /// An archive time-stamp of record `index` does not verify.
    #[error("record {index}: archive time-stamp {time_stamp} of chain {chain}: {source}")]
    TimeStamp {
        /// Which record.
        index: usize,
        /// Its ArchiveTimeStampChain.
        chain: usize,
        /// The time-stamp in that chain.
        time_stamp: usize,
        /// hanko-client's reason.
        source: hanko_client::Error,
    },
}

impl EvidenceCheckError {
    /// The time-stamp verifier's error, when that is what failed.
    pub fn token_error(&self) -> Option<&hanko_client::Error> {
        match self {
            Self::TimeStamp { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One record's anchor: its first archive time-stamp, verified.
#[derive(Clone, Debug)]
pub struct Anchored {
    /// Which record (0-based, in the order given).
    pub index: usize,
    /// The time-stamp's genTime.
    pub gen_time: SystemTime,
    /// The TSA's subject.
    pub tsa: String,
    /// The TSA's chain, leaf first (subjects).
    pub chain: Vec<String>,
    /// The token's serial (hex).
    pub serial: String,
    /// Its policy OID.
    pub policy: String,
    /// Every archive time-stamp of the record as relied on, one line each
    /// (`hanko_client::VerifiedStep::line`: TSA, algorithms, chain, until when).
    pub steps: Vec<String>,
}

/// Records that prove their object.
#[derive(Clone, Debug)]
pub struct EvidenceVerified {
    /// The object's SHA-256 (the leaf).
    pub object_hash: Vec<u8>,
    /// Each record's anchor, in the order given.
    pub anchored: Vec<Anchored>,
}

impl EvidenceVerified {
    /// The earliest anchoring time: the object existed then.
    pub fn existed_at(&self) -> Option<SystemTime> {
        self.anchored.iter().map(|a| a.gen_time).min()
    }
}

/// The object a file stands for: a granted TimeStampResp's token, else the file itself.
pub fn object_of(bytes: &[u8]) -> &[u8] {
    token_of(bytes).unwrap_or(bytes)
}

/// The timeStampToken of a DER TimeStampResp whose status is granted (0) or
/// grantedWithMods (1), as received.
fn token_of(response: &[u8]) -> Option<&[u8]> {
    let resp = Cursor::new(response, 0..response.len()).next_tlv()?;
    if resp.tag != tag::SEQUENCE || resp.whole.end != response.len() {
        return None;
    }
    let mut fields = Cursor::new(response, resp.content);
    let status = fields.next_tlv()?;
    let status_value = Cursor::new(response, status.content).next_tlv()?;
    if status.tag != tag::SEQUENCE
        || status_value.tag != tag::INTEGER
        || !matches!(response.get(status_value.content)?, [0] | [1])
    {
        return None;
    }
    let token = fields.next_tlv()?;
    if token.tag != tag::SEQUENCE {
        return None;
    }
    response.get(token.whole)
}

/// Verifies `records` (DER EvidenceRecords, one per anchor) against `data` (the object,
/// or a `.tsr` standing for its token, or for itself when the record is of the whole
/// file, as an archive submits it): every tree and every archive time-stamp, each
/// token's chain up to one of `roots`.
pub fn verify_records(
    records: &[&[u8]],
    data: &[u8],
    roots: &[Certificate],
    untrusted: &[Certificate],
) -> Result<EvidenceVerified, EvidenceCheckError> {
    if records.is_empty() {
        return Err(EvidenceCheckError::NoRecords);
    }
    let object = object_of(data);
    let mut anchored = Vec::new();
    for (index, der) in records.iter().enumerate() {
        // With the data rather than its hash: a record renewed with another algorithm
        // hashes the data again (RFC 4998 5.3); the first chain's hash is the leaf.
        // A `.tsr` stands for its token (what the log holds for a time-stamp), but an
        // archive may have submitted the file itself (`hanko archive submit`): the
        // whole file is tried when its token does not match.
        let checked = hanko_anchor::evidence::check_data(der, object)
            .or_else(|e| {
                if object.len() == data.len() {
                    return Err(e);
                }
                hanko_anchor::evidence::check_data(der, data).map_err(|_| e)
            })
            .map_err(|source| EvidenceCheckError::Record { index, source })?;
        let steps = steps(&checked);
        let verified = hanko_client::verify_evidence(&steps, roots, untrusted, SystemTime::now())
            .map_err(|e| match e {
            hanko_client::Error::ArchiveTimeStamp {
                chain,
                index: time_stamp,
                source,
            } => EvidenceCheckError::TimeStamp {
                index,
                chain,
                time_stamp,
                source: *source,
            },
            hanko_client::Error::ArchiveTimeStampsOutOfOrder {
                chain,
                index: time_stamp,
            } => EvidenceCheckError::TimeStamp {
                index,
                chain,
                time_stamp,
                source: e,
            },
            other => EvidenceCheckError::TimeStamp {
                index,
                chain: 0,
                time_stamp: 0,
                source: other,
            },
        })?;
        if let Some(first) = verified.iter().find(|v| v.chain == 0 && v.index == 0) {
            let t = &first.token;
            anchored.push(Anchored {
                index,
                gen_time: t.gen_time,
                tsa: t.tsa_subject.clone(),
                chain: t.chain.clone(),
                serial: t.serial.clone(),
                policy: t.policy.clone(),
                steps: verified
                    .iter()
                    .map(hanko_client::VerifiedStep::line)
                    .collect(),
            });
        }
    }
    Ok(EvidenceVerified {
        object_hash: HashAlgorithm::Sha256.digest(object),
        anchored,
    })
}

/// The archive time-stamps a checked record leads to, for `hanko_client::verify_evidence`
/// (here and in evidence renewal, `crate::renewal`).
pub fn steps(checked: &hanko_anchor::Checked) -> Vec<hanko_client::EvidenceStep<'_>> {
    checked
        .time_stamps
        .iter()
        .map(|ts| hanko_client::EvidenceStep {
            chain: ts.chain,
            index: ts.index,
            hash: ts.alg.pki(),
            imprint: &ts.imprint,
            token_der: &ts.token_der,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn a_granted_response_stands_for_its_token() {
        let resp = [
            0x30, 0x09, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x02, 0x05, 0x00,
        ];
        assert_eq!(object_of(&resp), [0x30, 0x02, 0x05, 0x00]);
        // A refusal, trailing bytes or any other file stand for themselves.
        let refused = [
            0x30, 0x09, 0x30, 0x03, 0x02, 0x01, 0x02, 0x30, 0x02, 0x05, 0x00,
        ];
        assert_eq!(object_of(&refused), refused);
        let mut trailing = resp.to_vec();
        trailing.push(0);
        assert_eq!(object_of(&trailing), trailing.as_slice());
        assert_eq!(object_of(b"%PDF-1.7"), b"%PDF-1.7");
    }

    #[test]
    fn no_records_or_garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            verify_records(&[], b"x", &[], &[]),
            Err(EvidenceCheckError::NoRecords)
        ));
        let garbage: &[u8] = &[0x30, 0x05, 0x02, 0x01, 0x01, 0x30, 0x00];
        assert!(matches!(
            verify_records(&[garbage], b"x", &[], &[]),
            Err(EvidenceCheckError::Record { index: 0, .. })
        ));
    }
}
