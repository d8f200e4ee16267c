//! Renewal of the evidence Hanko keeps (RFC 4998 section 5; `migrations/*/0005_evidence_renewal.sql`):
//! the evidence chains of done anchors, the renewal runs that renew many of them under one
//! time-stamp, and the renewals each chain (or archive object) received.
//!
//! What it is for: the server's renewal scheduler indexes done anchors as chains
//! ([`Store::unindexed_anchors`], [`Store::index_chains`]), reads those due
//! ([`Store::due_chains`]), records a run in two atomic steps ([`Store::plan_renewal`]:
//! the run, its tree's root and one renewal per chain; [`Store::complete_renewal`]: the
//! token, every chain moved on) and finishes, after a crash, the runs still planned
//! ([`Store::planned_runs`]). Evidence lookups read a chain's renewals
//! ([`Store::chain_renewals`]) and an archive object's hash-tree renewals
//! ([`Store::hash_tree_renewals`]).
//!
//! ```text
//!  anchors (done), hash-tree runs (done) ─> evidence_chains (next_hash, not_after,
//!                                          renewals, run_id)
//!     due: run_id NULL, not_after <= horizon
//!  plan:     renewal_runs (planned, root) + chain_renewals (chain, n = renewals + 1)
//!            + evidence_chains.run_id = run                       one transaction
//!  complete: renewal_runs (done, token) + evidence_chains (renewals + 1, next_hash,
//!            not_after, run_id NULL)                              one transaction
//! ```
//!
//! Invariants the schema enforces (not only this code): a chain has at most one renewal
//! of each number, a leaf of a run's tree belongs to one chain, and a done run has its
//! token. A chain already in a run, or a renewal number taken, makes a plan fail with
//! [`Error::RenewalConflict`], writing nothing; completing a run that is not planned
//! fails the same way. So whatever crashes where, a chain is renewed once per due period.
//!
//! What it does not do: trees, tokens, certificates (the server computes the renewal
//! hashes, the trees and their reduced paths, and reads the notAfter of each token), or
//! decide what is due beyond the comparison of a stored notAfter with a horizon.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::record::system_time_to_ns;
use crate::{Error, Store};

/// A done anchor without its evidence chain row yet (see [`Store::unindexed_anchors`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnindexedAnchor {
    /// The batch.
    pub batch_id: u64,
    /// The anchor target.
    pub target: String,
    /// The batch tree's algorithm (`"sha256"`, ...).
    pub hash_alg: String,
    /// The anchor's TimeStampToken.
    pub token: Vec<u8>,
}

/// Where an evidence chain starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainOrigin {
    /// A done anchor: the chain ends the record of every leaf of the batch.
    Anchor {
        /// The batch.
        batch_id: u64,
        /// The anchor target.
        target: String,
    },
    /// A done hash-tree renewal run: its new chain ends the record of every object it
    /// renewed.
    Rehash {
        /// The run.
        run_id: u64,
    },
}

/// One evidence chain whose renewal Hanko keeps, as indexed or as due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceChain {
    /// The chain's number (0 in a chain to index: the database assigns it).
    pub id: u64,
    /// Where it starts.
    pub origin: ChainOrigin,
    /// The chain's algorithm.
    pub hash_alg: String,
    /// Time-stamp renewals appended so far.
    pub renewals: u64,
    /// H(DER of its last archive time-stamp's token): its next renewal's leaf.
    pub next_hash: Vec<u8>,
    /// notAfter of that token's TSA certificate, if the token carries it.
    pub not_after: Option<SystemTime>,
}

/// What a renewal run renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenewalKind {
    /// Time-stamp renewals of evidence chains (RFC 4998 section 5.2).
    TimeStamp,
    /// Hash-tree renewals of archive objects' records (RFC 4998 section 5.3).
    HashTree,
}

impl RenewalKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            RenewalKind::TimeStamp => "time-stamp",
            RenewalKind::HashTree => "hash-tree",
        }
    }

    fn parse(s: &str) -> RenewalKind {
        if s == "hash-tree" {
            RenewalKind::HashTree
        } else {
            RenewalKind::TimeStamp
        }
    }
}

/// One chain's renewal in a run to plan: the chain, its leaf's place in the run's tree
/// and the reduced hash tree from that leaf to the root (DER, empty for a one-leaf run).
/// The renewal's number is the chain's `renewals + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChain {
    /// The chain ([`EvidenceChain::id`]).
    pub chain_id: u64,
    /// The renewals the chain had when it was found due: the plan fails if it has
    /// changed since.
    pub renewals: u64,
    /// The leaf's index in the run's tree.
    pub leaf_index: u64,
    /// DER reduced hash tree.
    pub reduced: Vec<u8>,
}

/// One archive object's hash-tree renewal in a run to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedHashTree {
    /// The object's record.
    pub seq: u64,
    /// The chain whose record is renewed, with that many time-stamp renewals.
    pub batch_id: u64,
    /// Its anchor target.
    pub target: String,
    /// Time-stamp renewals of that chain the renewed record holds.
    pub renewals: u64,
    /// h(d) with the run's algorithm, as the archive sent it.
    pub data_hash: Vec<u8>,
    /// The leaf's index in the run's tree.
    pub leaf_index: u64,
    /// DER reduced hash tree.
    pub reduced: Vec<u8>,
}

/// A renewal run to plan (see [`Store::plan_renewal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// What it renews: `chains` (time-stamp) or `hash_trees` (hash-tree), never both.
    pub kind: RenewalKind,
    /// The tree's algorithm.
    pub hash_alg: String,
    /// The tree's root, which the run's token will time-stamp.
    pub root: Vec<u8>,
    /// Time-stamp renewals.
    pub chains: Vec<PlannedChain>,
    /// Hash-tree renewals.
    pub hash_trees: Vec<PlannedHashTree>,
}

impl NewRun {
    /// Leaves of the run's tree.
    pub fn leaf_count(&self) -> usize {
        self.chains.len() + self.hash_trees.len()
    }
}

/// A stored renewal run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalRun {
    /// Run number, from 1.
    pub id: u64,
    /// What it renews.
    pub kind: RenewalKind,
    /// The tree's algorithm.
    pub hash_alg: String,
    /// The root to time-stamp.
    pub root: Vec<u8>,
    /// Leaves of its tree.
    pub leaf_count: u64,
    /// Its token, once done.
    pub token: Option<Vec<u8>>,
    /// When it was planned.
    pub planned_at: SystemTime,
}

/// One renewal of a chain or an object, with its run's token (done runs only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRenewal {
    /// The renewal's number in its chain (1, 2, ...; hash-tree renewals: the renewed
    /// chain's time-stamp renewals it covers).
    pub n: u64,
    /// The run.
    pub run_id: u64,
    /// DER reduced hash tree from the leaf to the run's root (empty: none).
    pub reduced: Vec<u8>,
    /// The run's TimeStampToken.
    pub token: Vec<u8>,
    /// Hash-tree renewals: the algorithm and h(d); empty for time-stamp renewals.
    pub hash_alg: String,
    /// Hash-tree renewals: h(d) as the archive sent it.
    pub data_hash: Vec<u8>,
    /// Hash-tree renewals: the renewed chain.
    pub batch_id: u64,
    /// Hash-tree renewals: the renewed chain's target.
    pub target: String,
}

/// The figures of the renewal metrics (see [`Store::renewal_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenewalStats {
    /// Chains whose notAfter is at or before the horizon (in a planned run or not).
    pub due: u64,
    /// The earliest notAfter among them.
    pub earliest_not_after: Option<SystemTime>,
    /// Runs planned and not yet done.
    pub planned_runs: u64,
}

pub(crate) fn ns(t: SystemTime) -> Result<i64, Error> {
    system_time_to_ns(t).ok_or_else(|| Error::InvalidArgument("time before 1970".into()))
}

pub(crate) fn time(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

fn to_i64(v: u64) -> Result<i64, Error> {
    crate::backend::to_i64(v, "renewal value")
}

impl Store {
    /// Up to `limit` done anchors that have no evidence chain row yet, oldest batch first.
    pub async fn unindexed_anchors(&self, limit: u32) -> Result<Vec<UnindexedAnchor>, Error> {
        self.backend()
            .renewal()
            .unindexed_anchors(i64::from(limit))
            .await
    }

    /// Adds the chains of done anchors (zero renewals; `chains`' origins must be
    /// anchors); those indexed already are left alone.
    pub async fn index_chains(&self, chains: &[EvidenceChain]) -> Result<(), Error> {
        if self.inner_read_only() {
            return Err(Error::ReadOnly);
        }
        if chains
            .iter()
            .any(|c| !matches!(c.origin, ChainOrigin::Anchor { .. }))
        {
            return Err(Error::InvalidArgument(
                "only anchors' chains are indexed; a hash-tree run's chain is added as it \
                 completes"
                    .into(),
            ));
        }
        self.backend().renewal().index_chains(chains).await
    }

    /// Up to `limit` chains of `hash_alg` due for a time-stamp renewal: in no planned run,
    /// their notAfter at or before `horizon` and before `renewable_before` (the notAfter
    /// of the certificate a renewal would be made with: a renewal that expires no later
    /// gains nothing), earliest notAfter first.
    pub async fn due_chains(
        &self,
        hash_alg: &str,
        horizon: SystemTime,
        renewable_before: SystemTime,
        limit: u32,
    ) -> Result<Vec<EvidenceChain>, Error> {
        let horizon = ns(horizon)?;
        let before = ns(renewable_before)?;
        self.backend()
            .renewal()
            .due_chains(hash_alg, horizon, before, i64::from(limit))
            .await
    }

    /// Plans `run` atomically: the run (planned), one renewal row per chain or object,
    /// each chain marked as in the run. [`Error::RenewalConflict`] (nothing written) if a
    /// chain is in another run or its renewal count changed, or an object already has a
    /// hash-tree renewal with this algorithm.
    pub async fn plan_renewal(&self, run: &NewRun) -> Result<RenewalRun, Error> {
        if self.inner_read_only() {
            return Err(Error::ReadOnly);
        }
        let leaves = run.leaf_count();
        let mixed = !run.chains.is_empty() && !run.hash_trees.is_empty();
        let kind_ok = match run.kind {
            RenewalKind::TimeStamp => run.hash_trees.is_empty(),
            RenewalKind::HashTree => run.chains.is_empty(),
        };
        if leaves == 0 || mixed || !kind_ok {
            return Err(Error::InvalidArgument(format!(
                "a {} run of {} chains and {} objects",
                run.kind.as_str(),
                run.chains.len(),
                run.hash_trees.len()
            )));
        }
        let now = ns(SystemTime::now())?;
        self.backend()
            .renewal()
            .plan(run, self.node_id(), now)
            .await
    }

    /// Completes planned run `run_id` atomically with its token: the run done, each of
    /// its chains one renewal further, with `next_hash` (H of the token) and `not_after`
    /// (its TSA certificate's), out of the run; for a hash-tree run, its new chain added
    /// (due in turn). [`Error::RenewalConflict`] if the run is not planned (done already,
    /// or unknown).
    pub async fn complete_renewal(
        &self,
        run_id: u64,
        token: &[u8],
        next_hash: &[u8],
        not_after: SystemTime,
    ) -> Result<(), Error> {
        if self.inner_read_only() {
            return Err(Error::ReadOnly);
        }
        let now = ns(SystemTime::now())?;
        self.backend()
            .renewal()
            .complete(to_i64(run_id)?, token, next_hash, ns(not_after)?, now)
            .await
    }

    /// The runs planned and not done, oldest first (to finish after a restart).
    pub async fn planned_runs(&self) -> Result<Vec<RenewalRun>, Error> {
        self.backend().renewal().planned_runs().await
    }

    /// The done time-stamp renewals of the chain starting at `origin`, in order.
    pub async fn chain_renewals(&self, origin: &ChainOrigin) -> Result<Vec<StoredRenewal>, Error> {
        let (a, b) = match origin {
            ChainOrigin::Anchor { batch_id, target } => (to_i64(*batch_id)?, target.as_str()),
            ChainOrigin::Rehash { run_id } => (to_i64(*run_id)?, ""),
        };
        let anchor = matches!(origin, ChainOrigin::Anchor { .. });
        self.backend().renewal().chain_renewals(anchor, a, b).await
    }

    /// The done hash-tree renewals of the object at `seq`, oldest run first.
    pub async fn hash_tree_renewals(&self, seq: u64) -> Result<Vec<StoredRenewal>, Error> {
        self.backend()
            .renewal()
            .hash_tree_renewals(to_i64(seq)?)
            .await
    }

    /// The renewal metrics' figures with the due `horizon`.
    pub async fn renewal_stats(&self, horizon: SystemTime) -> Result<RenewalStats, Error> {
        self.backend().renewal().stats(ns(horizon)?).await
    }

    /// Tries to become this database's one renewal scheduler: as
    /// [`Store::batcher_lock`], with a lock of its own.
    pub async fn renewal_lock(&self) -> Result<Option<crate::BatcherLock>, Error> {
        self.backend().renewal_lock().await
    }
}

impl RenewalRun {
    pub(crate) fn from_columns(
        (id, kind, hash_alg, root, leaf_count, token, planned_at_ns): (
            i64,
            String,
            String,
            Vec<u8>,
            i64,
            Option<Vec<u8>>,
            i64,
        ),
    ) -> RenewalRun {
        RenewalRun {
            id: u64::try_from(id).unwrap_or(0),
            kind: RenewalKind::parse(&kind),
            hash_alg,
            root,
            leaf_count: u64::try_from(leaf_count).unwrap_or(0),
            token,
            planned_at: time(planned_at_ns),
        }
    }
}
