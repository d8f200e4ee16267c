//! Merkle anchoring's rows: batches of the log and the anchors (time-stamps) over their
//! roots, in the same database as the log (`migrations/*/0002_anchoring.sql`).
//!
//! What it is for: the server's batcher reads the open range ([`Store::open_range`]),
//! streams its leaves ([`Store::object_hashes`]), computes the tree with hanko-anchor and
//! closes the batch ([`Store::close_batch`]: the batch row and one pending anchor per
//! target in one transaction). Each target's task then takes its pending anchors
//! ([`Store::pending_anchors`]) and records a token ([`Store::anchor_done`]) or a failure
//! with its next attempt ([`Store::anchor_failed`]). Evidence lookups find a record
//! ([`Store::find_by_object_hash`], [`Store::get_by_serial`]), its batch
//! ([`Store::batch_containing`]) and only the leaf's block of object hashes
//! ([`Store::block_leaves`]).
//!
//! ```text
//!  log_records  seq 1 ........ 1000 | 1001 ....... 2500 | 2501 ... head   (open)
//!  anchor_batches   id 1 (prev NULL) | id 2 (prev 1000)  |
//!  anchors          (1,self) (1,tsa2)| (2,self) (2,tsa2) |
//!                    done     done   |  done    pending  |
//! ```
//!
//! Invariants the schema enforces (not only this code): batches tile the log from seq 1
//! without gap or overlap (each names the last seq of the batch before it, uniquely), a
//! batch ends at a logged record, and a done anchor has its token. A second close of an
//! overlapping range fails with [`Error::BatchConflict`] and writes nothing.
//!
//! What it does not do: hash trees (it stores the roots it is given; `hanko log verify`
//! recomputes them), or decide when to close. Exactly one batcher per database is the
//! server's job, with [`Store::batcher_lock`]: on PostgreSQL an advisory lock held on a
//! dedicated connection, so the lock ends with the holder's session.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::backend::anchoring::{AnchorUpdate, BatchBy};
use crate::record::{RawRow, system_time_to_ns};
use crate::{Error, Store, StoredRecord};

/// Leaves per block: a batch stores one root per block of this many leaves (the last may
/// be short), so an evidence lookup reads at most this many object hashes. Equal to
/// `hanko_anchor::tree::BLOCK_LEAVES`.
pub const BLOCK_LEAVES: u64 = 1024;

/// Hashes per query of [`Store::archive_objects`] (bound parameters: SQLite allows
/// 32,766, PostgreSQL 65,535).
pub const ARCHIVE_LOOKUP_CHUNK: usize = 500;

/// Longest anchor target name, in bytes.
pub const MAX_TARGET_LEN: usize = 64;

/// The range of the log not yet in any batch (see [`Store::open_range`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRange {
    /// First unbatched sequence number (the last batch's `last_seq` + 1).
    pub first_seq: u64,
    /// The chain head: every seq up to it is committed.
    pub head_seq: u64,
    /// When the first unbatched record that is not an audit event was issued.
    pub first_issued_at: SystemTime,
    /// Whether any unbatched record is something other than an archive time-stamp (the
    /// anchors' own tokens) or an audit event (the service's own): a range of only those
    /// is not worth a batch of its own.
    pub has_issued: bool,
}

impl OpenRange {
    /// Records in the range.
    pub fn len(&self) -> u64 {
        self.head_seq + 1 - self.first_seq
    }

    /// Never true (an open range has at least one record); for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A batch to close: a range of the log with the tree the caller computed over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    /// First sequence number: must be the last closed batch's `last_seq` + 1 (1 at first).
    pub first_seq: u64,
    /// Last sequence number, at most the chain head.
    pub last_seq: u64,
    /// The tree's hash algorithm: `"sha256"`, `"sha384"` or `"sha512"`.
    pub hash_alg: String,
    /// The root over the range's object hashes.
    pub root: Vec<u8>,
    /// One root per block of [`BLOCK_LEAVES`] leaves, in order; each as long as `root`.
    pub block_roots: Vec<Vec<u8>>,
    /// When the batch was closed.
    pub closed_at: SystemTime,
    /// The anchor targets, one pending anchor each.
    pub targets: Vec<String>,
}

/// Checked column values of a [`NewBatch`].
pub(crate) struct BatchColumns {
    pub first_seq: i64,
    pub last_seq: i64,
    pub leaf_count: i64,
    pub block_roots: Vec<u8>,
    pub closed_at_ns: i64,
}

impl NewBatch {
    /// Checks the batch against the last closed batch's end and the chain head.
    pub(crate) fn columns(&self, last_batched: i64, head: i64) -> Result<BatchColumns, Error> {
        let conflict = |m: String| Err(Error::BatchConflict(m));
        let expected = last_batched + 1;
        let first = i64::try_from(self.first_seq).unwrap_or(i64::MAX);
        let last = i64::try_from(self.last_seq).unwrap_or(i64::MAX);
        if first != expected {
            return conflict(format!(
                "a batch must start at seq {expected} (after the last closed batch), not {first}"
            ));
        }
        if last < first || last > head {
            return conflict(format!(
                "batch {first}..={last} is empty or ends past the chain head {head}"
            ));
        }
        if !matches!(
            (self.hash_alg.as_str(), self.root.len()),
            ("sha256", 32) | ("sha384", 48) | ("sha512", 64)
        ) {
            return Err(Error::InvalidArgument(format!(
                "hash algorithm {:?} with a {}-byte root",
                self.hash_alg,
                self.root.len()
            )));
        }
        let leaf_count = last - first + 1;
        let blocks = (leaf_count as u64).div_ceil(BLOCK_LEAVES);
        if self.block_roots.len() as u64 != blocks
            || self.block_roots.iter().any(|r| r.len() != self.root.len())
        {
            return Err(Error::InvalidArgument(format!(
                "{leaf_count} leaves need {blocks} block roots of {} bytes",
                self.root.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.targets {
            if t.is_empty() || t.len() > MAX_TARGET_LEN || !seen.insert(t) {
                return Err(Error::InvalidArgument(format!(
                    "anchor target {t:?} is empty, longer than {MAX_TARGET_LEN} bytes or repeated"
                )));
            }
        }
        Ok(BatchColumns {
            first_seq: first,
            last_seq: last,
            leaf_count,
            block_roots: self.block_roots.concat(),
            closed_at_ns: system_time_to_ns(self.closed_at)
                .ok_or_else(|| Error::InvalidArgument("closing time before 1970".into()))?,
        })
    }
}

/// A closed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Batch number, from 1 in closing order.
    pub id: u64,
    /// First sequence number in the batch.
    pub first_seq: u64,
    /// Last sequence number in the batch.
    pub last_seq: u64,
    /// `last_seq - first_seq + 1`.
    pub leaf_count: u64,
    /// The tree's hash algorithm (`"sha256"`, ...).
    pub hash_alg: String,
    /// The root the anchors time-stamp.
    pub root: Vec<u8>,
    /// One root per block of [`BLOCK_LEAVES`] leaves.
    pub block_roots: Vec<Vec<u8>>,
    /// When it was closed, ns since 1970.
    pub closed_at_ns: i64,
    /// The node that closed it.
    pub closed_by: String,
}

impl Batch {
    /// Decodes the stored columns.
    pub(crate) fn from_columns(
        (id, first, last, count, hash_alg, root, blocks, closed_at_ns, closed_by): (
            i64,
            i64,
            i64,
            i64,
            String,
            Vec<u8>,
            Vec<u8>,
            i64,
            String,
        ),
    ) -> Result<Batch, Error> {
        let corrupt = |reason: &str| Error::Corrupt {
            seq: u64::try_from(first).unwrap_or(0),
            reason: format!("anchor batch {id}: {reason}"),
        };
        let u = |v: i64| u64::try_from(v).map_err(|_| corrupt("negative number"));
        if root.is_empty() || blocks.len() % root.len() != 0 {
            return Err(corrupt("block roots are not a whole number of hashes"));
        }
        Ok(Batch {
            id: u(id)?,
            first_seq: u(first)?,
            last_seq: u(last)?,
            leaf_count: u(count)?,
            hash_alg,
            block_roots: blocks.chunks(root.len()).map(<[u8]>::to_vec).collect(),
            root,
            closed_at_ns,
            closed_by,
        })
    }

    /// When it was closed.
    pub fn closed_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(u64::try_from(self.closed_at_ns).unwrap_or(0))
    }

    /// Whether `seq` is in this batch.
    pub fn contains(&self, seq: u64) -> bool {
        (self.first_seq..=self.last_seq).contains(&seq)
    }
}

/// Where an anchor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnchorState {
    /// Not yet time-stamped by its target.
    Pending,
    /// Time-stamped; the token is stored.
    Done,
}

impl AnchorState {
    /// The stored text: `"pending"` or `"done"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnchorState::Pending => "pending",
            AnchorState::Done => "done",
        }
    }
}

/// One target's anchor of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The batch.
    pub batch_id: u64,
    /// The target's configured name (`"self"` for the own TSA).
    pub target: String,
    /// Pending or done.
    pub state: AnchorState,
    /// Attempts so far (the successful one included).
    pub attempts: u32,
    /// Earliest next attempt while pending, ns since 1970.
    pub next_attempt_at_ns: i64,
    /// The DER TimeStampToken over the root, once done.
    pub token: Option<Vec<u8>>,
    /// When the token was stored, ns since 1970.
    pub anchored_at_ns: Option<i64>,
    /// The last failure's message (kept after success until overwritten: none then).
    pub last_error: Option<String>,
}

/// A pending anchor with what its target needs to time-stamp it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAnchor {
    /// The batch.
    pub batch_id: u64,
    /// The tree's hash algorithm.
    pub hash_alg: String,
    /// The root to time-stamp.
    pub root: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Earliest next attempt, ns since 1970.
    pub next_attempt_at_ns: i64,
}

/// The object hashes of a range of the log, read a chunk at a time (see
/// [`Store::object_hashes`]).
#[derive(Debug)]
pub struct ObjectHashes<'a> {
    store: &'a Store,
    next_seq: u64,
    last_seq: u64,
}

impl ObjectHashes<'_> {
    /// The next up to `max` object hashes in sequence order; `None` after the last. Fails
    /// with [`Error::Corrupt`] if a sequence number in the range is missing.
    pub async fn next_chunk(&mut self, max: u32) -> Result<Option<Vec<[u8; 32]>>, Error> {
        if self.next_seq > self.last_seq || max == 0 {
            return Ok(None);
        }
        let rows = self
            .store
            .backend()
            .anchoring()
            .object_hashes(
                to_i64(self.next_seq - 1)?,
                to_i64(self.last_seq)?,
                i64::from(max),
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, hash) in rows {
            if u64::try_from(seq).ok() != Some(self.next_seq) {
                return Err(Error::Corrupt {
                    seq: self.next_seq,
                    reason: "sequence number missing from the log".into(),
                });
            }
            out.push(hash.as_slice().try_into().map_err(|_| Error::Corrupt {
                seq: self.next_seq,
                reason: "object_hash is not 32 bytes".into(),
            })?);
            self.next_seq += 1;
        }
        if out.is_empty() {
            return Err(Error::Corrupt {
                seq: self.next_seq,
                reason: "sequence number missing from the log".into(),
            });
        }
        Ok(Some(out))
    }
}

fn to_i64(v: u64) -> Result<i64, Error> {
    crate::backend::to_i64(v, "sequence number")
}

fn ns(t: SystemTime) -> Result<i64, Error> {
    system_time_to_ns(t).ok_or_else(|| Error::InvalidArgument("time before 1970".into()))
}

impl Store {
    /// The range not yet in any batch, `None` when every record is batched.
    pub async fn open_range(&self) -> Result<Option<OpenRange>, Error> {
        let info = self.backend().anchoring().range_info().await?;
        if info.head <= info.last_batched {
            return Ok(None);
        }
        let first_ns = info.first_issued_at_ns.unwrap_or(0);
        Ok(Some(OpenRange {
            first_seq: u64::try_from(info.last_batched + 1).unwrap_or(1),
            head_seq: u64::try_from(info.head).unwrap_or(0),
            first_issued_at: UNIX_EPOCH
                + Duration::from_nanos(u64::try_from(first_ns).unwrap_or(0)),
            // An issued record has its issue time in the same snapshot; were the two ever
            // to disagree, the range is not due yet (the next tick reads again), rather
            // than due since the epoch.
            has_issued: info.has_issued && info.first_issued_at_ns.is_some(),
        }))
    }

    /// The object hashes (the leaves) of `first_seq..=last_seq`, read in chunks so that
    /// even a batch of millions of records needs no more memory than a chunk.
    pub fn object_hashes(&self, first_seq: u64, last_seq: u64) -> ObjectHashes<'_> {
        ObjectHashes {
            store: self,
            next_seq: first_seq.max(1),
            last_seq,
        }
    }

    /// The object hashes of the block of [`BLOCK_LEAVES`] leaves of `batch` that holds
    /// `seq` (what an evidence record's reduced tree needs besides the block roots).
    pub async fn block_leaves(&self, batch: &Batch, seq: u64) -> Result<Vec<[u8; 32]>, Error> {
        if !batch.contains(seq) {
            return Err(Error::InvalidArgument(format!(
                "seq {seq} is not in batch {}",
                batch.id
            )));
        }
        let block = (seq - batch.first_seq) / BLOCK_LEAVES;
        let first = batch.first_seq + block * BLOCK_LEAVES;
        let last = (first + BLOCK_LEAVES - 1).min(batch.last_seq);
        let mut out = Vec::with_capacity((last - first + 1) as usize);
        let mut chunks = self.object_hashes(first, last);
        while let Some(c) = chunks.next_chunk(BLOCK_LEAVES as u32).await? {
            out.extend(c);
        }
        Ok(out)
    }

    /// Closes `batch` atomically: the batch row and one pending anchor per target, in one
    /// transaction, written as closed by this node. [`Error::BatchConflict`] (nothing
    /// written) when the range does not start right after the last batch, ends past the
    /// head, or another batcher closed it first.
    pub async fn close_batch(&self, batch: &NewBatch) -> Result<Batch, Error> {
        if self.inner_read_only() {
            return Err(Error::ReadOnly);
        }
        let now = ns(SystemTime::now())?;
        self.backend()
            .anchoring()
            .insert_batch(batch, self.node_id(), now)
            .await
    }

    /// The batch with this id.
    pub async fn batch(&self, id: u64) -> Result<Option<Batch>, Error> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let mut v = self.backend().anchoring().batch_by(BatchBy::Id(id)).await?;
        Ok(v.pop())
    }

    /// The batch whose range holds `seq`, `None` while its batch is open.
    pub async fn batch_containing(&self, seq: u64) -> Result<Option<Batch>, Error> {
        let seq = to_i64(seq)?;
        let mut v = self
            .backend()
            .anchoring()
            .batch_by(BatchBy::Containing(seq))
            .await?;
        Ok(v.pop())
    }

    /// Up to `limit` batches, newest first, with ids below `before` (all when `None`).
    pub async fn batches(&self, before: Option<u64>, limit: u32) -> Result<Vec<Batch>, Error> {
        let before = before.map_or(Ok(i64::MAX), to_i64)?;
        self.backend()
            .anchoring()
            .batch_by(BatchBy::Page {
                before,
                limit: i64::from(limit),
            })
            .await
    }

    /// Up to `limit` batches, oldest first, with ids above `after` (auditors' walk).
    pub async fn batches_ascending(&self, after: u64, limit: u32) -> Result<Vec<Batch>, Error> {
        self.backend()
            .anchoring()
            .batch_by(BatchBy::Ascending {
                after: to_i64(after)?,
                limit: i64::from(limit),
            })
            .await
    }

    /// The anchors of a batch, by target name.
    pub async fn anchors(&self, batch_id: u64) -> Result<Vec<Anchor>, Error> {
        self.backend()
            .anchoring()
            .anchors_of(to_i64(batch_id)?)
            .await
    }

    /// Up to `limit` pending anchors of `target`, oldest batch first (due or not: the
    /// caller compares `next_attempt_at_ns` with its clock).
    pub async fn pending_anchors(
        &self,
        target: &str,
        limit: u32,
    ) -> Result<Vec<PendingAnchor>, Error> {
        self.backend()
            .anchoring()
            .pending_anchors(target, i64::from(limit))
            .await
    }

    /// Records `target`'s time-stamp token over `batch_id`'s root: the anchor is done.
    pub async fn anchor_done(
        &self,
        batch_id: u64,
        target: &str,
        token: &[u8],
        at: SystemTime,
    ) -> Result<(), Error> {
        self.update_anchor(AnchorUpdate::Done {
            batch_id: to_i64(batch_id)?,
            target: target.to_owned(),
            token: token.to_vec(),
            at_ns: ns(at)?,
        })
        .await
    }

    /// Records a failed attempt of `target` on `batch_id`: the message (no secrets: the
    /// batch API shows it) and when to try again.
    pub async fn anchor_failed(
        &self,
        batch_id: u64,
        target: &str,
        error: &str,
        next_attempt: SystemTime,
    ) -> Result<(), Error> {
        self.update_anchor(AnchorUpdate::Failed {
            batch_id: to_i64(batch_id)?,
            target: target.to_owned(),
            error: error.chars().take(1000).collect(),
            next_attempt_at_ns: ns(next_attempt)?,
        })
        .await
    }

    async fn update_anchor(&self, update: AnchorUpdate) -> Result<(), Error> {
        if self.inner_read_only() {
            return Err(Error::ReadOnly);
        }
        self.backend().anchoring().update_anchor(&update).await
    }

    /// The first record (lowest seq) whose `object_hash` is `hash`.
    pub async fn find_by_object_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<StoredRecord>, Error> {
        let row = self
            .backend()
            .anchoring()
            .first_by_object_hash(hash)
            .await?;
        row.map(RawRow::into_stored).transpose()
    }

    /// The `archive-object` records already logged for `hashes`: for each hash found, its
    /// serial (the object's id) and seq, the first record when a hash was logged twice.
    /// Reads in chunks of [`ARCHIVE_LOOKUP_CHUNK`] hashes, through the object hash index.
    pub async fn archive_objects(
        &self,
        hashes: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], (Vec<u8>, u64)>, Error> {
        let mut found = HashMap::new();
        for chunk in hashes.chunks(ARCHIVE_LOOKUP_CHUNK) {
            let rows = self.backend().anchoring().archive_objects(chunk).await?;
            for (hash, serial, seq) in rows {
                let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) else {
                    continue;
                };
                found
                    .entry(hash)
                    .or_insert((serial, u64::try_from(seq).unwrap_or(0)));
            }
        }
        Ok(found)
    }

    /// The oldest record not yet covered by a done anchor (in a closed batch all of whose
    /// anchors are pending, or not yet batched): its seq and issue time. `None` when every
    /// record is anchored. Unbatched archive time-stamps (the anchors' own tokens, which
    /// wait for the next issued record to join a batch) do not count, so an idle server's
    /// age stays 0.
    pub async fn oldest_unanchored(&self) -> Result<Option<(u64, SystemTime)>, Error> {
        let r = self.backend().anchoring().oldest_unanchored().await?;
        Ok(r.map(|(seq, t)| {
            (
                u64::try_from(seq).unwrap_or(0),
                UNIX_EPOCH + Duration::from_nanos(u64::try_from(t).unwrap_or(0)),
            )
        }))
    }

    /// Tries to become this database's one batcher. SQLite (one node per file): always
    /// granted. PostgreSQL: `pg_try_advisory_lock` on a connection of its own, held until
    /// the returned lock is dropped or its session ends (the node died, the connection
    /// broke); `None` while another session holds it.
    pub async fn batcher_lock(&self) -> Result<Option<BatcherLock>, Error> {
        self.backend().batcher_lock().await
    }
}

/// The right to close batches (see [`Store::batcher_lock`]).
#[derive(Debug)]
pub struct BatcherLock {
    pub(crate) inner: BatcherLockInner,
}

#[derive(Debug)]
pub(crate) enum BatcherLockInner {
    /// SQLite: one node per file, nothing to hold.
    Local,
    /// PostgreSQL: the session holding the advisory lock, and the lock's key.
    Postgres(sqlx::PgConnection, i64),
}

impl BatcherLock {
    /// Whether the lock is still held: on PostgreSQL a round trip on its session, which
    /// fails when the connection was lost (the server then released the lock, and another
    /// node may have taken it). Check before each close; a `false` means stop batching and
    /// try [`Store::batcher_lock`] again.
    pub async fn still_held(&mut self) -> bool {
        match &mut self.inner {
            BatcherLockInner::Local => true,
            BatcherLockInner::Postgres(conn, key) => {
                crate::backend::postgres::advisory_lock_held(conn, *key).await
            }
        }
    }

    /// Releases the lock (PostgreSQL: unlocks and closes the session).
    pub async fn release(self) {
        if let BatcherLockInner::Postgres(conn, key) = self.inner {
            crate::backend::postgres::advisory_unlock(conn, key).await;
        }
    }
}
