//! Merkle anchoring, the server's half (issue #15): the batcher that closes batches of the
//! issuance log, the targets that time-stamp their roots, and evidence-record lookups.
//! The trees and the RFC 4998 encoding are hanko-anchor's (no I/O there); the rows are
//! hanko-store's (`hanko_store::anchoring`); everything that waits, retries or talks to a
//! network is here.
//!
//! ```text
//!   issued tokens/seals ─> log_records (object_hash = leaf)
//!        every second: open range? ─ oldest waits >= anchor.interval or >= max_leaves
//!            ─> batcher (the one holding the batcher lock) reads the leaves block by block
//!               ─> hanko_anchor::tree: block roots, root ─> Store::close_batch
//!                  (batch row + one pending anchor per target, one transaction)
//!   per target, its own task:  pending anchors ─> AnchorTarget::anchor(root) ─> token
//!        ok: Store::anchor_done      failed: Store::anchor_failed (back-off 1 s, 2 s, ...
//!                                            up to anchor.retry_max), only this target waits
//!   check::verify_records: records + their object, offline (`hanko evidence verify`,
//!        the verification page)
//!   GET /api/v1/evidence/...  ─> record ─> batch ─> the leaf's block ─> reduced tree
//!        ─> hanko_anchor::evidence::evidence_record(token of the chosen anchor)
//! ```
//!
//! Crash semantics: closing is one transaction, so after a crash a batch either exists
//! with all its pending anchors or not at all (its range is still open and the next tick
//! closes it again). A target that crashed mid-request simply has its anchor still
//! pending: the next start retries it. The own TSA's archive time-stamps are issued
//! tokens like any other: each goes into the issuance log (kind `archive-stamp`) before
//! it is stored as an anchor, so a crash in between leaves a logged token that is not
//! used, never a used token that is not logged. A range holding only archive
//! time-stamps does not close a batch of its own (else anchoring would feed itself
//! forever); they join the next batch of issued records.
//!
//! Evidence renewal (issue #16, `renewal`): a scheduler renews each (batch, anchor)
//! chain by RFC 4998 time-stamp renewal before the TSA certificate it relies on expires,
//! many chains under one own-TSA time-stamp; the evidence routes serve each record with
//! its chain's renewals.
//!
//! What it does not do: decide readiness (`/readyz` never depends on anchoring: a down
//! anchor target delays evidence, not issuance).
//!
//! Log lines a crash or takeover test can wait for: "anchor batch closed" (after the
//! commit), "anchor done" / "anchor attempt failed" per target, "batcher lock taken" /
//! "batcher lock lost"; with the test hook `HANKO_FAULT_ANCHOR_PAUSE` (`serve --dev` only,
//! see `fault`), "anchor fault point X reached" where the tasks then wait to be killed.

mod batcher;
pub mod check;
pub mod evidence;
mod fault;
pub mod renewal;
mod targets;

pub use batcher::{Anchoring, spawn, tree_of};
pub use fault::{FAULT_ENV, FaultPoint};
pub use targets::{AnchorError, AnchorTarget, ExternalTarget, SelfTarget};

/// The hash algorithm of every batch tree: the log's `object_hash` is SHA-256.
pub const TREE_ALG: hanko_anchor::tree::HashAlg = hanko_anchor::tree::HashAlg::Sha256;

/// [`TREE_ALG`]'s name as stored with each batch.
pub const TREE_ALG_NAME: &str = "sha256";

// The store's block size must be the tree's.
const _: () =
    assert!(hanko_store::anchoring::BLOCK_LEAVES as usize == hanko_anchor::tree::BLOCK_LEAVES);
