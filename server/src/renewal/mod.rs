//! Renewal of RFC 4998 evidence records that an archive holds itself, made by Hanko or by
//! another product (issue #16; `POST /api/v1/evidence/renew`, `hanko evidence renew`).
//!
//! ```text
//!   DER record + data hashes (alg, H(d)) + force
//!     -> hanko_anchor::evidence::check_hashes    the trees, data -> every imprint      400/422
//!     -> hanko_client::verify_evidence           every token: signature, timeStamping,
//!          chain to a trusted root valid at its genTime, at the next one's, and now     422
//!     -> policy::Policy::due (RecordFacts)       what is due; not due and no force      409
//!     -> the own TSA (Issuer::issue_archive_stamp: logged as `archive-stamp`, client =
//!        the caller) over the renewal hash       F.65 time-stamp / F.66 hash tree      5xx
//!     -> the renewed DER record
//! ```
//!
//! Every refusal comes before the time-stamp: a refused request issues and logs nothing.
//!
//! # Trust
//! A record's tokens must chain to the renewal trust anchors ([`crate::config::RenewalSettings`]):
//! the roots of the server's own TSA chains (the top of each `usage = "tsa"` key's chain),
//! plus the PEM files of `renewal.trust_anchors` for records other TSAs made (an
//! imported record's, e.g. Bouncy Castle's). A token that chains to none is refused:
//! renewing it would extend evidence nobody checked.
//!
//! # What it does not do
//! It keeps nothing: the archive holds the record and sends it again for the next
//! renewal. It never sees the data, only its hashes. Renewing the records Hanko keeps
//! itself (batches' anchors, archive objects) is the scheduler's, which shares
//! [`policy`].

pub mod policy;

use std::sync::Arc;
use std::time::SystemTime;

use hanko_anchor::HashAlg;
use hanko_anchor::evidence::{
    hash_tree_renewal_hash, renew_hash_tree, renew_time_stamp, time_stamp_renewal_hash,
};
use hanko_pki::cert::Certificate;
use hanko_tsa::Rejection;

use crate::issuance::Issuer;
pub use policy::{Due, Policy, RecordFacts};

/// Renews records with the own TSA under a [`Policy`].
#[derive(Debug)]
pub struct Renewer {
    issuer: Arc<Issuer>,
    policy: Policy,
    roots: Arc<[Certificate]>,
}

/// One renewal request, parsed.
#[derive(Clone, Debug, Default)]
pub struct RenewRequest {
    /// The DER EvidenceRecord.
    pub record: Vec<u8>,
    /// H(d) per algorithm: for the record's chains (checked), and at most one of an
    /// algorithm no chain uses, which asks for a hash-tree renewal to it.
    pub data_hashes: Vec<(HashAlg, Vec<u8>)>,
    /// Renew even when the policy says it is not due.
    pub force: bool,
}

/// A renewed record.
#[derive(Clone, Debug)]
pub struct Renewed {
    /// The DER EvidenceRecord with the new archive time-stamp.
    pub record: Vec<u8>,
    /// `time-stamp` or `hash-tree`.
    pub kind: &'static str,
    /// Why: the policy's reason, or `forced`.
    pub reason: String,
    /// The new token's serial (hex), as logged.
    pub serial: String,
}

/// Why a record was not renewed.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    /// The request itself is wrong (two new algorithms, a hash of the wrong length).
    #[error("{0}")]
    BadRequest(String),
    /// Not an EvidenceRecord in DER.
    #[error("the evidence record does not parse: {0}")]
    Malformed(hanko_anchor::Error),
    /// The record's trees do not lead to its time-stamps (or from the given hashes).
    #[error("the evidence record does not check: {0}")]
    Inconsistent(hanko_anchor::Error),
    /// A time-stamp does not verify (signature, chain, validity, trust).
    #[error("the evidence record does not verify: {0}")]
    Unverified(hanko_client::Error),
    /// A hash-tree renewal is due (or asked) and needs what was not given.
    #[error("{0}")]
    Unprocessable(String),
    /// The policy says it is not due, and `force` was not given.
    #[error("{0}")]
    NotDue(String),
    /// The own TSA gave no token.
    #[error("the own TSA refused: {0}")]
    TimeStamp(Rejection),
    /// Building the renewed record failed (a bug, or a token over another hash).
    #[error("the renewed record could not be built: {0}")]
    Build(hanko_anchor::Error),
    /// The check did not finish (a panic on the blocking pool: a bug).
    #[error("{0}")]
    Internal(String),
}

impl RenewError {
    /// The metric label of the outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Malformed(_) => "malformed",
            Self::Inconsistent(_) => "inconsistent",
            Self::Unverified(_) => "unverified",
            Self::Unprocessable(_) => "unprocessable",
            Self::NotDue(_) => "not_due",
            Self::TimeStamp(_) => "tsa_failed",
            Self::Build(_) | Self::Internal(_) => "failed",
        }
    }
}

impl Renewer {
    /// A renewer over the own TSA, trusting `roots` for the records' tokens.
    pub fn new(issuer: Arc<Issuer>, policy: Policy, roots: Vec<Certificate>) -> Self {
        Renewer {
            issuer,
            policy,
            roots: roots.into(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Checks, decides and renews `req` for `client` at `now`: see the module docs. The
    /// check (a token's signatures twice each, a record of up to 1 MiB) runs on the
    /// blocking pool, not on the runtime's workers.
    pub async fn renew(
        &self,
        client: &str,
        req: &RenewRequest,
        now: SystemTime,
    ) -> Result<Renewed, RenewError> {
        let (roots, policy, owned) = (self.roots.clone(), self.policy.clone(), req.clone());
        let (plan, reason) =
            tokio::task::spawn_blocking(move || examine(&roots, &policy, &owned, now))
                .await
                .map_err(|e| RenewError::Internal(format!("the check did not finish: {e}")))??;
        let er = &req.record;
        match plan {
            Plan::HashTree {
                alg,
                data_hash,
                hash,
            } => {
                let (token, serial) = self.stamp(client, alg, &hash).await?;
                let record =
                    renew_hash_tree(er, alg, &data_hash, &[], &token).map_err(RenewError::Build)?;
                Ok(Renewed {
                    record,
                    kind: "hash-tree",
                    reason,
                    serial,
                })
            }
            Plan::TimeStamp { alg, hash } => {
                let (token, serial) = self.stamp(client, alg, &hash).await?;
                let record = renew_time_stamp(er, &[], &token).map_err(RenewError::Build)?;
                Ok(Renewed {
                    record,
                    kind: "time-stamp",
                    reason,
                    serial,
                })
            }
        }
    }

    /// A token of the own TSA over `hash`, logged as an `archive-stamp` of `client`.
    async fn stamp(
        &self,
        client: &str,
        alg: HashAlg,
        hash: &[u8],
    ) -> Result<(Vec<u8>, String), RenewError> {
        let issued = self
            .issuer
            .issue_archive_stamp(alg.pki(), hash, client)
            .await
            .map_err(RenewError::TimeStamp)?;
        Ok((issued.token.token_der, issued.token.serial.to_hex()))
    }
}

/// The renewal [`examine`] decided on: what to time-stamp.
#[derive(Debug)]
enum Plan {
    /// A new archive time-stamp over `hash` (F.65).
    TimeStamp { alg: HashAlg, hash: Vec<u8> },
    /// A new chain of `alg` whose first time-stamp is over `hash` (F.66).
    HashTree {
        alg: HashAlg,
        data_hash: Vec<u8>,
        hash: Vec<u8>,
    },
}

/// Everything before the time-stamp (module docs): the record checked and verified
/// against `roots`, the policy asked; the plan and its reason, or why not.
fn examine(
    roots: &[Certificate],
    policy: &Policy,
    req: &RenewRequest,
    now: SystemTime,
) -> Result<(Plan, String), RenewError> {
    let er = &req.record;
    hanko_anchor::evidence::EvidenceRecord::from_der(er).map_err(RenewError::Malformed)?;
    for (alg, h) in &req.data_hashes {
        if h.len() != alg.len() {
            return Err(RenewError::BadRequest(format!(
                "a {} hash is {} bytes, got {}",
                policy::alg_name(*alg),
                alg.len(),
                h.len()
            )));
        }
    }
    let checked =
        hanko_anchor::evidence::check_hashes(er, &req.data_hashes).map_err(|e| match e {
            hanko_anchor::Error::DataNeeded(alg) => RenewError::Unprocessable(format!(
                "the record has a chain of {0}: give the data's {0} hash (data_hash) to check \
                 it",
                policy::alg_name(alg)
            )),
            e => RenewError::Inconsistent(e),
        })?;
    let steps = crate::anchor::check::steps(&checked);
    let verified =
        hanko_client::verify_evidence(&steps, roots, &[], now).map_err(RenewError::Unverified)?;
    let (Some(last), Some(last_ts)) = (verified.last(), checked.time_stamps.last()) else {
        return Err(RenewError::Inconsistent(hanko_anchor::Error::EmptySequence));
    };
    if last.token.gen_time > now {
        return Err(RenewError::Unprocessable(format!(
            "the record's last archive time-stamp (genTime {}) is later than this server's \
             clock: a renewal now would come before it",
            last.token.gen_time_text
        )));
    }
    let facts = RecordFacts {
        alg: last_ts.alg,
        last_chain_not_after: last.token.chain_not_after,
    };
    let used: Vec<HashAlg> = checked.time_stamps.iter().map(|t| t.alg).collect();
    let new: Vec<&(HashAlg, Vec<u8>)> = req
        .data_hashes
        .iter()
        .filter(|(a, _)| !used.contains(a))
        .collect();
    let new = match new.as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => {
            return Err(RenewError::BadRequest(
                "data hashes of two algorithms no chain of the record uses: a hash-tree \
                 renewal takes one new algorithm"
                    .to_owned(),
            ));
        }
    };
    let due = policy.due(&facts, now);
    let reason = match (&due, req.force) {
        (Some(d), _) => d.to_string(),
        (None, true) => "forced".to_owned(),
        (None, false) => return Err(RenewError::NotDue(policy.not_due_reason(&facts))),
    };
    let plan = match (new, &due) {
        (Some((alg, data_hash)), _) => {
            policy
                .accepts_new(*alg, now)
                .map_err(RenewError::Unprocessable)?;
            let hash = hash_tree_renewal_hash(er, *alg, data_hash).map_err(RenewError::Build)?;
            Plan::HashTree {
                alg: *alg,
                data_hash: data_hash.clone(),
                hash,
            }
        }
        (None, Some(Due::HashTree { reason })) if !req.force => {
            return Err(RenewError::Unprocessable(format!(
                "hash-tree renewal due: {reason}; send the data's hash under a stronger \
                 algorithm (data_hash, e.g. sha512), or force a time-stamp renewal"
            )));
        }
        (None, _) => {
            let (alg, hash) = time_stamp_renewal_hash(er).map_err(RenewError::Build)?;
            Plan::TimeStamp { alg, hash }
        }
    };
    Ok((plan, reason))
}
