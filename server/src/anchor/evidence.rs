//! Evidence-record lookups: from a logged record to the DER RFC 4998 EvidenceRecord of
//! one of its batch's anchors, or the reason there is none yet.
//!
//! ```text
//!   record (by object_hash or serial) ─> batch containing its seq?  no ─> Open (expected by)
//!      ─> the batch's anchors: ?anchor=NAME, else the first done one in configuration
//!         order (self first)                       not done ─> Pending (its state)
//!      ─> the leaf's block of object hashes (<= 1024 rows) + the tree over the block
//!         roots (kept per batch in a [`BatchCache`]: a closed batch never changes)
//!      ─> hanko_anchor::tree::BlockProofs ─> evidence::evidence_record(token)
//!      ─> + the chain's renewals (issue #16, `super::renewal::renewed_record`)
//! ```
//!
//! Each anchor gives its own EvidenceRecord: RFC 4998 chains are sequential renewals, so
//! parallel witnesses are separate records (`hanko evidence verify` takes several).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hanko_anchor::{evidence, tree};
use hanko_store::{Anchor, AnchorState, Batch, Store, StoredRecord};

use super::TREE_ALG;
use crate::config::AnchorSettings;

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The evidence record.
    Found {
        /// DER EvidenceRecord.
        der: Vec<u8>,
        /// The batch it proves membership in.
        batch: Arc<Batch>,
        /// The anchor whose time-stamp it carries.
        anchor: String,
    },
    /// The record's batch is still open.
    Open {
        /// When its batch is expected to close (the oldest open record's issue time plus
        /// `anchor.interval`; a little later if the batcher is busy).
        expected_by: SystemTime,
    },
    /// The batch is closed, but the chosen (or every) anchor is still pending.
    Pending {
        /// The batch.
        batch: Arc<Batch>,
        /// The pending anchors asked about (one with `?anchor=`, else all of them).
        anchors: Vec<Anchor>,
    },
    /// `?anchor=NAME` names no anchor of this batch.
    UnknownAnchor {
        /// The name asked for.
        name: String,
        /// The batch's anchors' names.
        known: Vec<String>,
    },
}

/// Looks up the evidence record of `record` (see the module docs).
pub async fn lookup(
    store: &Store,
    settings: &AnchorSettings,
    batches: &BatchCache,
    record: &StoredRecord,
    anchor: Option<&str>,
) -> anyhow::Result<Lookup> {
    let Some(closed) = batches.containing(store, record.seq).await? else {
        let open = store.open_range().await?;
        let since = open.map_or_else(SystemTime::now, |o| o.first_issued_at);
        let expected_by =
            (since + settings.interval).max(SystemTime::now() + Duration::from_secs(1));
        return Ok(Lookup::Open { expected_by });
    };
    let batch = closed.batch.clone();
    let anchors = store.anchors(batch.id).await?;
    let chosen = match anchor {
        Some(name) => match anchors.iter().find(|a| a.target == name) {
            Some(a) => a.clone(),
            None => {
                return Ok(Lookup::UnknownAnchor {
                    name: name.to_owned(),
                    known: anchors.into_iter().map(|a| a.target).collect(),
                });
            }
        },
        None => {
            let order = settings.target_names();
            let rank = |a: &Anchor| {
                order
                    .iter()
                    .position(|n| *n == a.target)
                    .unwrap_or(usize::MAX)
            };
            let mut done: Vec<&Anchor> = anchors
                .iter()
                .filter(|a| a.state == AnchorState::Done)
                .collect();
            done.sort_by_key(|a| (rank(a), a.target.clone()));
            match done.first() {
                Some(a) => (*a).clone(),
                None => return Ok(Lookup::Pending { batch, anchors }),
            }
        }
    };
    let Some(token) = chosen
        .token
        .as_deref()
        .filter(|_| chosen.state == AnchorState::Done)
    else {
        return Ok(Lookup::Pending {
            batch,
            anchors: vec![chosen],
        });
    };
    let der = evidence_record(store, &closed, record.seq, token).await?;
    let der =
        super::renewal::renewed_record(store, der, batch.id, &chosen.target, record.seq).await?;
    Ok(Lookup::Found {
        der,
        batch,
        anchor: chosen.target,
    })
}

/// The DER EvidenceRecord of leaf `seq` of a cached batch, with the anchor token `token`.
async fn evidence_record(
    store: &Store,
    closed: &CachedBatch,
    seq: u64,
    token: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let batch = &closed.batch;
    let leaves = store.block_leaves(batch, seq).await?;
    let index = seq - batch.first_seq;
    let proofs = tree::BlockProofs::with_roots(
        TREE_ALG,
        &leaves,
        closed.roots.clone(),
        index / tree::BLOCK_LEAVES as u64,
    )?;
    let reduced = proofs.reduced_hashtree(index)?;
    Ok(evidence::evidence_record(TREE_ALG, &reduced, token)?)
}

/// How many closed batches a [`BatchCache`] keeps: lookups cluster in the recent ones;
/// each entry is a batch row and the tree over its block roots (~100 KB at 1,000,000
/// leaves).
const CACHED_BATCHES: usize = 8;

/// Closed batches with the tree over their block roots, most recently used first. A
/// closed batch never changes (the schema has no update of it), so an entry never goes
/// stale; without it every evidence lookup read the batch row (31 KB of block roots at
/// 1,000,000 leaves) and hashed its 977 block roots again.
#[derive(Debug, Default)]
pub struct BatchCache {
    entries: Mutex<VecDeque<Arc<CachedBatch>>>,
}

/// One entry of a [`BatchCache`].
#[derive(Debug)]
pub struct CachedBatch {
    batch: Arc<Batch>,
    roots: Arc<tree::BlockRootsTree>,
}

impl BatchCache {
    /// The closed batch holding `seq`, from the cache or the store (then kept); `None`
    /// while `seq` is in no closed batch.
    async fn containing(
        &self,
        store: &Store,
        seq: u64,
    ) -> anyhow::Result<Option<Arc<CachedBatch>>> {
        if let Some(hit) = self.find(seq) {
            return Ok(Some(hit));
        }
        let Some(batch) = store.batch_containing(seq).await? else {
            return Ok(None);
        };
        let roots = tree::BlockRootsTree::new(TREE_ALG, &batch.block_roots)?;
        if roots.root() != batch.root.as_slice() {
            anyhow::bail!(
                "batch {}: its block roots do not lead to its root",
                batch.id
            );
        }
        let entry = Arc::new(CachedBatch {
            batch: Arc::new(batch),
            roots: Arc::new(roots),
        });
        let mut entries = self.lock();
        if !entries.iter().any(|e| e.batch.id == entry.batch.id) {
            entries.push_front(entry.clone());
            entries.truncate(CACHED_BATCHES);
        }
        Ok(Some(entry))
    }

    fn find(&self, seq: u64) -> Option<Arc<CachedBatch>> {
        let mut entries = self.lock();
        let at = entries.iter().position(|e| e.batch.contains(seq))?;
        let hit = entries.remove(at)?;
        entries.push_front(hit.clone());
        Some(hit)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<CachedBatch>>> {
        // Entries are immutable: a panic elsewhere cannot leave the list unsound.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The verification page's evidence seam over the log (`crate::verify::EvidenceLookup`):
/// the object's record by its SHA-256, then [`lookup`] as `GET /api/v1/evidence` does,
/// told as JSON: `state` = `anchored` (the batch, its anchors, the record's URL),
/// `open` (`expected_by`) or `pending` (the batch and its anchors' states).
#[derive(Clone, Debug)]
pub struct LogEvidence {
    store: Store,
    settings: AnchorSettings,
    batches: Arc<BatchCache>,
}

impl LogEvidence {
    /// The seam over `store`'s anchoring with `settings`, sharing `batches` with the
    /// evidence routes.
    pub fn new(store: Store, settings: AnchorSettings, batches: Arc<BatchCache>) -> Self {
        Self {
            store,
            settings,
            batches,
        }
    }

    async fn evidence(&self, sha256: &[u8; 32]) -> anyhow::Result<Option<serde_json::Value>> {
        use crate::http::anchor_api::{batch_json, rfc3339};
        use serde_json::json;
        let Some(record) = self.store.find_by_object_hash(sha256).await? else {
            return Ok(None);
        };
        let hex = hex::encode(sha256);
        let found = lookup(&self.store, &self.settings, &self.batches, &record, None).await?;
        Ok(Some(match found {
            Lookup::Found { batch, anchor, .. } => {
                let anchors = self.store.anchors(batch.id).await?;
                json!({
                    "state": "anchored",
                    "seq": record.seq,
                    "anchor": anchor,
                    "batch": batch_json(&batch, &anchors),
                    "record_url": format!("/api/v1/evidence/sha256/{hex}"),
                })
            }
            Lookup::Open { expected_by } => json!({
                "state": "open",
                "seq": record.seq,
                "expected_by": rfc3339(expected_by),
            }),
            Lookup::Pending { batch, .. } => {
                let anchors = self.store.anchors(batch.id).await?;
                json!({
                    "state": "pending",
                    "seq": record.seq,
                    "batch": batch_json(&batch, &anchors),
                })
            }
            // Not asked for by name: cannot happen; told as pending rather than hidden.
            Lookup::UnknownAnchor { .. } => json!({ "state": "pending", "seq": record.seq }),
        }))
    }
}

impl crate::verify::EvidenceLookup for LogEvidence {
    fn evidence_for<'a>(
        &'a self,
        sha256: &'a [u8; 32],
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Option<crate::verify::Evidence>> + Send + 'a>,
    > {
        Box::pin(async move {
            match self.evidence(sha256).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "verification page: the evidence lookup failed");
                    None
                }
            }
        })
    }
}
