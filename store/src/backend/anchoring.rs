//! Storage of Merkle anchoring (`migrations/*/0002_anchoring.sql`): batches, their anchors,
//! and the lookups evidence records need, for both databases.
//!
//! What it is for: [`AnchorBackend`] is the crate-private contract [`crate::anchoring`]
//! is written against. The SQL is the same text on SQLite and PostgreSQL (no nullable
//! parameters, so PostgreSQL needs no casts), so one macro implements the trait for both
//! pools; only how a closing transaction begins differs (SQLite takes the write lock at
//! once with `BEGIN IMMEDIATE`, so the read of the last batch and the insert cannot be
//! split by another writer; PostgreSQL relies on the table's unique constraints, which
//! make a concurrent second close fail).
//!
//! What it does not do: compute trees (the server does, with hanko-anchor) or decide when
//! to close (the server's batcher). The batcher's PostgreSQL advisory lock lives in
//! `postgres.rs`, beside the pool whose options it reuses.

use crate::Error;
use crate::anchoring::{Anchor, AnchorState, Batch, NewBatch, PendingAnchor};
use crate::backend::BoxFut;
use crate::record::RawRow;

/// What [`crate::Store::open_range`] needs, read in one go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RangeInfo {
    /// Last sequence number of the newest batch, 0 if none.
    pub last_batched: i64,
    /// The chain head's sequence number.
    pub head: i64,
    /// `issued_at_ns` of the first unbatched record that is not an audit event, if any.
    pub first_issued_at_ns: Option<i64>,
    /// Whether any unbatched record is of a kind other than `archive-stamp` and `audit`
    /// (an anchor's own stamp and the service's events ride along in the next batch an
    /// issued object closes; alone they close none).
    pub has_issued: bool,
}

/// The anchoring half of the storage contract (see the module docs).
pub(crate) trait AnchorBackend: Send + Sync {
    fn range_info(&self) -> BoxFut<'_, RangeInfo>;
    fn object_hashes(
        &self,
        after_seq: i64,
        to_seq: i64,
        limit: i64,
    ) -> BoxFut<'_, Vec<(i64, Vec<u8>)>>;
    fn insert_batch<'a>(
        &'a self,
        batch: &'a NewBatch,
        closed_by: &'a str,
        now_ns: i64,
    ) -> BoxFut<'a, Batch>;
    fn batch_by(&self, by: BatchBy) -> BoxFut<'_, Vec<Batch>>;
    fn anchors_of(&self, batch_id: i64) -> BoxFut<'_, Vec<Anchor>>;
    fn pending_anchors<'a>(&'a self, target: &'a str, limit: i64)
    -> BoxFut<'a, Vec<PendingAnchor>>;
    fn update_anchor<'a>(&'a self, update: &'a AnchorUpdate) -> BoxFut<'a, ()>;
    fn first_by_object_hash<'a>(&'a self, hash: &'a [u8]) -> BoxFut<'a, Option<RawRow>>;
    /// The `archive-object` records whose object hash is one of `hashes` (at most
    /// [`crate::anchoring::ARCHIVE_LOOKUP_CHUNK`] of them).
    fn archive_objects<'a>(&'a self, hashes: &'a [[u8; 32]]) -> BoxFut<'a, Vec<ArchiveRow>>;
    fn oldest_unanchored(&self) -> BoxFut<'_, Option<(i64, i64)>>;
}

/// `(object_hash, serial, seq)` of an `archive-object` record.
pub(crate) type ArchiveRow = (Vec<u8>, Vec<u8>, i64);

/// Which batches [`AnchorBackend::batch_by`] reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BatchBy {
    Id(i64),
    /// The batch whose range holds this sequence number.
    Containing(i64),
    /// Newest first, ids below `before`, at most `limit`.
    Page {
        before: i64,
        limit: i64,
    },
    /// Oldest first, ids above `after`, at most `limit` (auditors).
    Ascending {
        after: i64,
        limit: i64,
    },
}

/// A change of one anchor row.
#[derive(Debug, Clone)]
pub(crate) enum AnchorUpdate {
    Done {
        batch_id: i64,
        target: String,
        token: Vec<u8>,
        at_ns: i64,
    },
    Failed {
        batch_id: i64,
        target: String,
        error: String,
        next_attempt_at_ns: i64,
    },
}

pub(crate) const BATCH_COLUMNS: &str = "id, first_seq, last_seq, leaf_count, hash_alg, root, \
     block_roots, closed_at_ns, closed_by";
pub(crate) const ANCHOR_COLUMNS: &str = "batch_id, target, state, attempts, \
     next_attempt_at_ns, token, anchored_at_ns, last_error";

/// Decodes [`BATCH_COLUMNS`] (any sqlx row type).
macro_rules! decode_batch {
    ($r:expr) => {{
        use sqlx::Row as _;
        let r = $r;
        (|| -> Result<(i64, i64, i64, i64, String, Vec<u8>, Vec<u8>, i64, String), sqlx::Error> {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
                r.try_get(7)?,
                r.try_get(8)?,
            ))
        })()
        .map_err(|e| $crate::Error::db("read anchor batch", e))
        .and_then($crate::anchoring::Batch::from_columns)
    }};
}

/// Decodes [`ANCHOR_COLUMNS`] (any sqlx row type).
macro_rules! decode_anchor {
    ($r:expr) => {{
        use sqlx::Row as _;
        let r = $r;
        (|| -> Result<$crate::anchoring::Anchor, sqlx::Error> {
            Ok($crate::backend::anchoring::anchor_from_columns(
                r.try_get(0)?,
                r.try_get(1)?,
                &r.try_get::<String, _>(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
                r.try_get(7)?,
            ))
        })()
        .map_err(|e| $crate::Error::db("read anchors", e))
    }};
}

/// An [`Anchor`] from the columns of [`ANCHOR_COLUMNS`], as either driver reads them.
#[allow(
    clippy::too_many_arguments,
    reason = "one argument a column, in column order"
)]
pub(crate) fn anchor_from_columns(
    batch_id: i64,
    target: String,
    state: &str,
    attempts: i64,
    next_attempt_at_ns: i64,
    token: Option<Vec<u8>>,
    anchored_at_ns: Option<i64>,
    last_error: Option<String>,
) -> Anchor {
    Anchor {
        batch_id: u64::try_from(batch_id).unwrap_or(0),
        target,
        state: if state == "done" {
            AnchorState::Done
        } else {
            AnchorState::Pending
        },
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at_ns,
        token,
        anchored_at_ns,
        last_error,
    }
}

/// The two reads of an evidence lookup that a backend may serve off its sqlx pool, for
/// latency: SQLite answers them on a read-only `rusqlite` connection in one blocking
/// hand-off (`sqlite_reader.rs`) instead of sqlx's worker thread and channel, which
/// under CPU contention put the lookups' p99 over 5 ms (benches/RESULTS.md, issue #15).
/// A backend without them ([`None`] from its `direct_reads`) uses the pool.
pub(crate) trait DirectReads: Send + Sync {
    fn first_by_object_hash<'a>(&'a self, hash: &'a [u8]) -> BoxFut<'a, Option<RawRow>>;
    fn anchors_of(&self, batch_id: i64) -> BoxFut<'_, Vec<Anchor>>;
}

/// Implements [`AnchorBackend`] for a backend with a sqlx `pool` field and a
/// `direct_reads` method ([`DirectReads`]); `$begin` starts the closing transaction on
/// the pool.
macro_rules! impl_anchor_backend {
    ($backend:ty, |$pool:ident| $begin:expr) => {
        impl $crate::backend::anchoring::AnchorBackend for $backend {
            fn range_info(&self) -> $crate::backend::BoxFut<'_, $crate::backend::anchoring::RangeInfo> {
                Box::pin(async move {
                    // One statement, so one snapshot on both backends (SQLite's read
                    // transaction, PostgreSQL's statement snapshot). Separate reads
                    // raced appends: a token committed after the read of the first
                    // issue time and before the read of `has_issued` left the range
                    // "issued" with no issue time, which read as issued at the epoch and
                    // closed the batch at once (seen in CI); read before the records, the
                    // head could end a range before a record found after it.
                    let (last_batched, first_issued_at_ns, has_issued, head): (
                        i64,
                        Option<i64>,
                        Option<i64>,
                        i64,
                    ) = sqlx::query_as(
                        "WITH b AS (SELECT COALESCE((SELECT MAX(last_seq) FROM anchor_batches), 0) AS done_seq) \
                         SELECT b.done_seq, \
                         (SELECT issued_at_ns FROM log_records WHERE seq > b.done_seq \
                          AND kind <> 'audit' ORDER BY seq LIMIT 1), \
                         (SELECT seq FROM log_records WHERE seq > b.done_seq \
                          AND kind NOT IN ('archive-stamp', 'audit') ORDER BY seq LIMIT 1), \
                         (SELECT seq FROM chain_head WHERE id = 1) \
                         FROM b",
                    )
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| $crate::Error::db("read the open batch range", e))?;
                    Ok($crate::backend::anchoring::RangeInfo {
                        last_batched,
                        head,
                        first_issued_at_ns,
                        has_issued: has_issued.is_some(),
                    })
                })
            }

            fn object_hashes(
                &self,
                after_seq: i64,
                to_seq: i64,
                limit: i64,
            ) -> $crate::backend::BoxFut<'_, Vec<(i64, Vec<u8>)>> {
                // Each backend reads its leaves its own way (SQLite off the sqlx pool).
                Box::pin(self.read_object_hashes(after_seq, to_seq, limit))
            }

            fn insert_batch<'a>(
                &'a self,
                batch: &'a $crate::anchoring::NewBatch,
                closed_by: &'a str,
                now_ns: i64,
            ) -> $crate::backend::BoxFut<'a, $crate::anchoring::Batch> {
                Box::pin(async move {
                    use sqlx::Row as _;
                    const OP: &str = "close anchor batch";
                    let err = |e| $crate::backend::anchoring::close_error(e);
                    let $pool = &self.pool;
                    let mut tx = $begin.await.map_err(|e| $crate::Error::db(OP, e))?;
                    let row = sqlx::query(
                        "SELECT COALESCE((SELECT MAX(last_seq) FROM anchor_batches), 0), \
                         COALESCE((SELECT MAX(id) FROM anchor_batches), 0), \
                         (SELECT seq FROM chain_head WHERE id = 1)",
                    )
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| $crate::Error::db(OP, e))?;
                    let last: i64 = row.try_get(0).map_err(|e| $crate::Error::db(OP, e))?;
                    let max_id: i64 = row.try_get(1).map_err(|e| $crate::Error::db(OP, e))?;
                    let head: i64 = row.try_get(2).map_err(|e| $crate::Error::db(OP, e))?;
                    let cols = batch.columns(last, head)?;
                    let id = max_id + 1;
                    sqlx::query(
                        "INSERT INTO anchor_batches (id, first_seq, last_seq, prev_last_seq, \
                         leaf_count, hash_alg, root, block_roots, closed_at_ns, closed_by) \
                         VALUES ($1, $2, $3, (SELECT last_seq FROM anchor_batches WHERE last_seq = $4), \
                         $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(id)
                    .bind(cols.first_seq)
                    .bind(cols.last_seq)
                    .bind(last)
                    .bind(cols.leaf_count)
                    .bind(batch.hash_alg.as_str())
                    .bind(batch.root.as_slice())
                    .bind(cols.block_roots.as_slice())
                    .bind(cols.closed_at_ns)
                    .bind(closed_by)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                    for target in &batch.targets {
                        sqlx::query(
                            "INSERT INTO anchors (batch_id, target, state, attempts, \
                             next_attempt_at_ns) VALUES ($1, $2, 'pending', 0, $3)",
                        )
                        .bind(id)
                        .bind(target.as_str())
                        .bind(now_ns)
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                    }
                    tx.commit().await.map_err(err)?;
                    $crate::anchoring::Batch::from_columns((
                        id,
                        cols.first_seq,
                        cols.last_seq,
                        cols.leaf_count,
                        batch.hash_alg.clone(),
                        batch.root.clone(),
                        cols.block_roots,
                        cols.closed_at_ns,
                        closed_by.to_owned(),
                    ))
                })
            }

            fn batch_by(
                &self,
                by: $crate::backend::anchoring::BatchBy,
            ) -> $crate::backend::BoxFut<'_, Vec<$crate::anchoring::Batch>> {
                use $crate::backend::anchoring::{BATCH_COLUMNS, BatchBy};
                Box::pin(async move {
                    let (cond, a, b) = match by {
                        BatchBy::Id(id) => ("id = $1 AND $2 = 0 ORDER BY id", id, 0),
                        BatchBy::Containing(seq) => (
                            "last_seq >= $1 AND first_seq <= $1 AND $2 = 0 ORDER BY last_seq",
                            seq,
                            0,
                        ),
                        BatchBy::Page { before, limit } => {
                            ("id < $1 ORDER BY id DESC LIMIT $2", before, limit)
                        }
                        BatchBy::Ascending { after, limit } => {
                            ("id > $1 ORDER BY id LIMIT $2", after, limit)
                        }
                    };
                    let sql = format!("SELECT {BATCH_COLUMNS} FROM anchor_batches WHERE {cond}");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(a)
                        .bind(b)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| $crate::Error::db("read anchor batches", e))?;
                    rows.iter().map(|r| $crate::backend::anchoring::decode_batch!(r)).collect()
                })
            }

            fn anchors_of(
                &self,
                batch_id: i64,
            ) -> $crate::backend::BoxFut<'_, Vec<$crate::anchoring::Anchor>> {
                use $crate::backend::anchoring::ANCHOR_COLUMNS;
                Box::pin(async move {
                    if let Some(direct) = self.direct_reads() {
                        return direct.anchors_of(batch_id).await;
                    }
                    let sql = format!(
                        "SELECT {ANCHOR_COLUMNS} FROM anchors WHERE batch_id = $1 ORDER BY target"
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(batch_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| $crate::Error::db("read anchors", e))?;
                    rows.iter().map(|r| $crate::backend::anchoring::decode_anchor!(r)).collect()
                })
            }

            fn pending_anchors<'a>(
                &'a self,
                target: &'a str,
                limit: i64,
            ) -> $crate::backend::BoxFut<'a, Vec<$crate::anchoring::PendingAnchor>> {
                Box::pin(async move {
                    use sqlx::Row as _;
                    let err = |e| $crate::Error::db("read pending anchors", e);
                    let rows = sqlx::query(
                        "SELECT a.batch_id, b.hash_alg, b.root, a.attempts, a.next_attempt_at_ns \
                         FROM anchors a JOIN anchor_batches b ON b.id = a.batch_id \
                         WHERE a.target = $1 AND a.state = 'pending' ORDER BY a.batch_id LIMIT $2",
                    )
                    .bind(target)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(err)?;
                    rows.iter()
                        .map(|r| {
                            Ok($crate::anchoring::PendingAnchor {
                                batch_id: u64::try_from(r.try_get::<i64, _>(0).map_err(err)?)
                                    .unwrap_or(0),
                                hash_alg: r.try_get(1).map_err(err)?,
                                root: r.try_get(2).map_err(err)?,
                                attempts: u32::try_from(r.try_get::<i64, _>(3).map_err(err)?)
                                    .unwrap_or(u32::MAX),
                                next_attempt_at_ns: r.try_get(4).map_err(err)?,
                            })
                        })
                        .collect()
                })
            }

            fn update_anchor<'a>(
                &'a self,
                update: &'a $crate::backend::anchoring::AnchorUpdate,
            ) -> $crate::backend::BoxFut<'a, ()> {
                use $crate::backend::anchoring::AnchorUpdate;
                Box::pin(async move {
                    let err = |e| $crate::Error::db("record anchor", e);
                    let (q, batch_id, target) = match update {
                        AnchorUpdate::Done { batch_id, target, token, at_ns } => (
                            sqlx::query(
                                "UPDATE anchors SET state = 'done', token = $3, \
                                 anchored_at_ns = $4, attempts = attempts + 1, last_error = NULL \
                                 WHERE batch_id = $1 AND target = $2 AND state = 'pending'",
                            )
                            .bind(*batch_id)
                            .bind(target.as_str())
                            .bind(token.as_slice())
                            .bind(*at_ns),
                            batch_id,
                            target,
                        ),
                        AnchorUpdate::Failed { batch_id, target, error, next_attempt_at_ns } => (
                            sqlx::query(
                                "UPDATE anchors SET last_error = $3, next_attempt_at_ns = $4, \
                                 attempts = attempts + 1 \
                                 WHERE batch_id = $1 AND target = $2 AND state = 'pending'",
                            )
                            .bind(*batch_id)
                            .bind(target.as_str())
                            .bind(error.as_str())
                            .bind(*next_attempt_at_ns),
                            batch_id,
                            target,
                        ),
                    };
                    let done = q.execute(&self.pool).await.map_err(err)?;
                    if done.rows_affected() != 1 {
                        return Err($crate::Error::InvalidArgument(format!(
                            "no pending anchor of batch {batch_id} for target {target:?}"
                        )));
                    }
                    Ok(())
                })
            }

            fn first_by_object_hash<'a>(
                &'a self,
                hash: &'a [u8],
            ) -> $crate::backend::BoxFut<'a, Option<$crate::record::RawRow>> {
                Box::pin(async move {
                    if let Some(direct) = self.direct_reads() {
                        return direct.first_by_object_hash(hash).await;
                    }
                    let err = |e| $crate::Error::db("find by object hash", e);
                    let sql = format!(
                        "SELECT {} FROM log_records WHERE object_hash = $1 ORDER BY seq LIMIT 1",
                        $crate::backend::ROW_COLUMNS
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(hash)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(err)?;
                    row.map(|r| $crate::backend::decode_raw_row!(&r).map_err(err))
                        .transpose()
                })
            }

            fn archive_objects<'a>(
                &'a self,
                hashes: &'a [[u8; 32]],
            ) -> $crate::backend::BoxFut<'a, Vec<$crate::backend::anchoring::ArchiveRow>> {
                Box::pin(async move {
                    if hashes.is_empty() {
                        return Ok(Vec::new());
                    }
                    let params: Vec<String> =
                        (1..=hashes.len()).map(|i| format!("${i}")).collect();
                    // The object_hash index (0002) finds each; only the kind is filtered.
                    let sql = format!(
                        "SELECT object_hash, serial, seq FROM log_records \
                         WHERE object_hash IN ({}) AND kind = 'archive-object' ORDER BY seq",
                        params.join(", ")
                    );
                    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                    for h in hashes {
                        q = q.bind(h.as_slice());
                    }
                    q.fetch_all(&self.pool)
                        .await
                        .map_err(|e| $crate::Error::db("find archive objects", e))
                })
            }

            fn oldest_unanchored(&self) -> $crate::backend::BoxFut<'_, Option<(i64, i64)>> {
                Box::pin(async move {
                    sqlx::query_as(
                        "SELECT r.seq, r.issued_at_ns FROM log_records r WHERE r.seq = \
                         COALESCE((SELECT MIN(b.first_seq) FROM anchor_batches b WHERE NOT EXISTS \
                         (SELECT 1 FROM anchors a WHERE a.batch_id = b.id AND a.state = 'done')), \
                         (SELECT MIN(u.seq) FROM log_records u \
                         WHERE u.kind NOT IN ('archive-stamp', 'audit') \
                         AND u.seq > (SELECT COALESCE(MAX(last_seq), 0) FROM anchor_batches)))",
                    )
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::Error::db("read the oldest unanchored record", e))
                })
            }
        }
    };
}
pub(crate) use {decode_anchor, decode_batch, impl_anchor_backend};

/// A failed close: a constraint of `anchor_batches` / `anchors` that fired means another
/// batcher closed an overlapping range first (or the range is not after the last batch).
pub(crate) fn close_error(e: sqlx::Error) -> Error {
    match constraint_refusal(&e) {
        Some(why) => Error::BatchConflict(format!("the database refused the batch: {why}")),
        None => Error::db("close anchor batch", e),
    }
}

/// The message of a unique, foreign-key or CHECK constraint that refused a statement
/// (the schema keeping batches and renewals honest), `None` for any other failure.
pub(crate) fn constraint_refusal(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d)
            if matches!(
                d.kind(),
                sqlx::error::ErrorKind::UniqueViolation
                    | sqlx::error::ErrorKind::ForeignKeyViolation
                    | sqlx::error::ErrorKind::CheckViolation
            ) =>
        {
            Some(d.message().to_owned())
        }
        _ => None,
    }
}
