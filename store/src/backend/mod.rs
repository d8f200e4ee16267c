//! The one trait both databases implement, and what they share.
//!
//! What it is for: [`LogBackend`] is the storage contract of the log: append a batch in one
//! transaction under the chain-head lock, reserve a serial range with one atomic statement,
//! read rows back by sequence, time or serial. `sqlite.rs` and `postgres.rs` implement it;
//! everything above (group commit, verification, export, serial allocation) is written once
//! against the trait.
//!
//! Why a trait object rather than generic code over `sqlx::Database`: the two backends differ
//! exactly where it matters (SQLite takes the file's write lock with `BEGIN IMMEDIATE`,
//! PostgreSQL locks the chain-head row with `SELECT ... FOR UPDATE` and inserts a batch with
//! one `UNNEST` statement), and sqlx's generic bounds would cost more code than two plain
//! implementations. The trait is crate-private: the public face is [`crate::Store`].
//!
//! # How a batch keeps the chain linear, also with several nodes
//!
//! ```text
//! BEGIN (SQLite: IMMEDIATE = take the write lock now)
//!   SELECT seq, hash FROM chain_head WHERE id = 1 [FOR UPDATE]   -- other nodes wait here
//!   for each record: seq += 1; hash = chain_hash(hash, record); INSERT
//!   UPDATE chain_head SET seq, hash
//! COMMIT                                                         -- durable, then reply
//! ```
//!
//! Sequence numbers and hashes are computed while holding the lock, so the chain order is
//! the sequence order whatever node wrote a row, and nothing of a failed batch is visible.

pub(crate) mod anchoring;
pub(crate) mod postgres;
pub(crate) mod renewal;
pub(crate) mod sqlite;
mod sqlite_checkpoint;
mod sqlite_reader;
mod sqlite_writer;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::chain::{ChainHead, ChainInput, chain_hash};
use crate::record::{PreparedRecord, RawRow, RecordKind};
use crate::{Error, Receipt};

/// A boxed future, so the trait stays object safe.
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Which rows to read (all bounds inclusive, `None` = unbounded).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RowFilter {
    pub to_seq: Option<u64>,
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
}

/// The storage contract (see the module docs).
pub(crate) trait LogBackend: Send + Sync + 'static {
    /// Appends `records` in one transaction; returns one receipt per record, in order.
    /// (Shared ownership, so a backend can hand the batch to a thread of its own.)
    fn append_batch(&self, records: Arc<[PreparedRecord]>) -> BoxFut<'_, Vec<Receipt>>;

    /// Advances counter `name` by `n` in one atomic statement and records the range;
    /// returns the first serial of the reserved range `first..first + n`.
    fn reserve_serials<'a>(
        &'a self,
        name: &'a str,
        n: u64,
        node_id: &'a str,
        now_ns: i64,
    ) -> BoxFut<'a, u64>;

    /// The chain head record.
    fn head(&self) -> BoxFut<'_, ChainHead>;

    /// Up to `limit` rows with `seq > after_seq` matching `filter`, in sequence order.
    fn read_rows<'a>(
        &'a self,
        filter: &'a RowFilter,
        after_seq: u64,
        limit: u32,
    ) -> BoxFut<'a, Vec<RawRow>>;

    /// Rows with this serial (of this kind, if given), in sequence order.
    fn find_by_serial<'a>(
        &'a self,
        kind: Option<RecordKind>,
        serial: &'a [u8],
    ) -> BoxFut<'a, Vec<RawRow>>;

    /// Closes the connection pool.
    fn close(&self) -> BoxFut<'_, ()>;

    /// Batches, anchors and evidence lookups (`backend/anchoring.rs`).
    fn anchoring(&self) -> &dyn anchoring::AnchorBackend;

    /// Tries to take the one-batcher lock (see [`crate::Store::batcher_lock`]).
    fn batcher_lock(&self) -> BoxFut<'_, Option<crate::BatcherLock>>;

    /// Evidence renewal (`backend/renewal.rs`).
    fn renewal(&self) -> &dyn renewal::RenewalBackend;

    /// Tries to take the one-renewal-scheduler lock (see [`crate::Store::renewal_lock`]).
    fn renewal_lock(&self) -> BoxFut<'_, Option<crate::BatcherLock>>;

    /// Suspends or resumes a key (`op`) and appends `audit`, its audit record, in one
    /// transaction under the chain lock: a suspension that already exists (or a resume of
    /// a key that is not suspended) changes nothing and appends nothing.
    fn change_key_state(
        &self,
        op: KeyStateOp,
        audit: PreparedRecord,
    ) -> BoxFut<'_, KeyStateOutcome>;

    /// Every suspended key, by label.
    fn key_suspensions(&self) -> BoxFut<'_, Vec<RawSuspension>>;

    /// A synchronous appender for the writer's own thread, for backends whose appends
    /// are cheaper run in one go than as async round trips (SQLite). `None` (the default):
    /// the writer is a tokio task calling [`LogBackend::append_batch`].
    fn blocking_appender(&self) -> Option<Box<dyn crate::writer::BlockingAppender>> {
        None
    }
}

/// The columns every read selects, in [`RawRow`] order.
pub(crate) const ROW_COLUMNS: &str = "seq, kind, serial, object_hash, request_hash, policy, \
     client, issued_at_ns, node_id, token, chain_hash";

/// The columns of `key_suspensions`, in [`RawSuspension`] order.
pub(crate) const SUSPENSION_COLUMNS: &str =
    "label, reason, suspended_by, suspended_at_ns, node_id, audit_seq";
/// Inserts a suspension (both databases take `$n` and `?n` alike).
pub(crate) const INSERT_SUSPENSION: &str = "INSERT INTO key_suspensions \
     (label, reason, suspended_by, suspended_at_ns, node_id, audit_seq) \
     VALUES ($1, $2, $3, $4, $5, $6)";
/// Lifts a suspension.
pub(crate) const DELETE_SUSPENSION: &str = "DELETE FROM key_suspensions WHERE label = $1";

/// A row of `key_suspensions` as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawSuspension {
    pub label: String,
    pub reason: String,
    pub suspended_by: String,
    pub suspended_at_ns: i64,
    pub node_id: String,
    pub audit_seq: i64,
}

/// What [`LogBackend::change_key_state`] is asked to do.
#[derive(Debug, Clone)]
pub(crate) enum KeyStateOp {
    /// Insert this suspension (its `audit_seq` is filled in with the audit record's).
    Suspend(RawSuspension),
    /// Delete the suspension of this key.
    Resume { label: String },
}

impl KeyStateOp {
    pub(crate) fn label(&self) -> &str {
        match self {
            KeyStateOp::Suspend(s) => &s.label,
            KeyStateOp::Resume { label } => label,
        }
    }

    /// Given the key's current suspension, the outcome when there is nothing to do: a
    /// second suspension, or the resume of a key that is not suspended.
    pub(crate) fn unchanged(&self, existing: Option<RawSuspension>) -> Option<KeyStateOutcome> {
        match (self, existing) {
            (KeyStateOp::Suspend(_), Some(s)) => Some(KeyStateOutcome::Unchanged(Some(s))),
            (KeyStateOp::Resume { .. }, None) => Some(KeyStateOutcome::Unchanged(None)),
            _ => None,
        }
    }
}

/// What [`LogBackend::change_key_state`] did.
#[derive(Debug, Clone)]
pub(crate) enum KeyStateOutcome {
    /// The state changed; the audit record's receipt.
    Changed(Receipt),
    /// Nothing to do; the key's suspension, if it has one.
    Unchanged(Option<RawSuspension>),
}

/// Assigns sequence numbers and chained hashes to a batch, starting after `head`.
/// Returns the new head and one receipt per record.
pub(crate) fn chain_batch(
    head: ChainHead,
    records: &[PreparedRecord],
) -> Result<(ChainHead, Vec<Receipt>), Error> {
    let mut prev = head.hash;
    let mut seq = head.seq;
    let mut receipts = Vec::with_capacity(records.len());
    for r in records {
        seq = seq
            .checked_add(1)
            .filter(|s| i64::try_from(*s).is_ok())
            .ok_or(Error::Corrupt {
                seq,
                reason: "sequence number overflow".into(),
            })?;
        prev = chain_hash(
            &prev,
            &ChainInput {
                seq,
                kind: r.kind.as_str(),
                serial: &r.serial,
                object_hash: &r.object_hash,
                request_hash: &r.request_hash,
                policy: &r.policy,
                client: &r.client,
                issued_at_ns: r.issued_at_ns,
                node_id: &r.node_id,
            },
        );
        receipts.push(Receipt {
            seq,
            chain_hash: prev,
        });
    }
    Ok((ChainHead { seq, hash: prev }, receipts))
}

/// The query both backends use to read which migrations a database has applied.
pub(crate) const APPLIED_MIGRATIONS: &str =
    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";

/// Compares the migrations a database has applied (`applied`, or the error reading them)
/// with the ones this build embeds; a read-only open accepts exactly the same set.
pub(crate) fn compare_schema(
    applied: Result<Vec<i64>, sqlx::Error>,
    migrator: &sqlx::migrate::Migrator,
    target: &str,
) -> Result<(), Error> {
    let expected: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    let latest = expected.last().copied().unwrap_or(0);
    let found = match applied {
        Ok(v) if v == expected => return Ok(()),
        Ok(v) => match v.last() {
            Some(last) => format!("version {last} ({} migrations)", v.len()),
            None => "empty (never migrated)".to_owned(),
        },
        // No _sqlx_migrations table: not a Hanko log, or never started.
        Err(e) if is_missing_table(&e) => "empty (never migrated)".to_owned(),
        // Anything else (no access to the file or table, a broken connection) is not a
        // schema question; say what failed.
        Err(e) => return Err(Error::db("read the schema version", e)),
    };
    Err(Error::Schema {
        target: target.to_owned(),
        found,
        expected: latest,
    })
}

/// The table queried does not exist (PostgreSQL `undefined_table`; SQLite has no
/// specific code, only its message).
fn is_missing_table(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.code().as_deref() == Some("42P01") || d.message().starts_with("no such table")
        }
        _ => false,
    }
}

/// Decodes the stored head columns.
pub(crate) fn decode_head(seq: i64, hash: Vec<u8>) -> Result<ChainHead, Error> {
    let seq = u64::try_from(seq).map_err(|_| Error::Corrupt {
        seq: 0,
        reason: format!("chain head has negative sequence number {seq}"),
    })?;
    let hash: [u8; 32] = hash.as_slice().try_into().map_err(|_| Error::Corrupt {
        seq,
        reason: "chain head hash is not 32 bytes".into(),
    })?;
    Ok(ChainHead { seq, hash })
}

/// `u64` to the `BIGINT` both databases store, refusing values above `i64::MAX`.
pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64, Error> {
    i64::try_from(v).map_err(|_| Error::InvalidArgument(format!("{what} {v} is too large")))
}

/// Decodes one row of [`ROW_COLUMNS`] from any sqlx row type.
macro_rules! decode_raw_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let r = $row;
        (|| -> Result<$crate::record::RawRow, sqlx::Error> {
            Ok($crate::record::RawRow {
                seq: r.try_get(0)?,
                kind: r.try_get(1)?,
                serial: r.try_get(2)?,
                object_hash: r.try_get(3)?,
                request_hash: r.try_get(4)?,
                policy: r.try_get(5)?,
                client: r.try_get(6)?,
                issued_at_ns: r.try_get(7)?,
                node_id: r.try_get(8)?,
                token: r.try_get(9)?,
                chain_hash: r.try_get(10)?,
            })
        })()
    }};
}
pub(crate) use decode_raw_row;

/// Decodes one row of [`SUSPENSION_COLUMNS`] from any sqlx row type.
macro_rules! decode_suspension {
    ($row:expr) => {{
        use sqlx::Row as _;
        let r = $row;
        (|| -> Result<$crate::backend::RawSuspension, sqlx::Error> {
            Ok($crate::backend::RawSuspension {
                label: r.try_get(0)?,
                reason: r.try_get(1)?,
                suspended_by: r.try_get(2)?,
                suspended_at_ns: r.try_get(3)?,
                node_id: r.try_get(4)?,
                audit_seq: r.try_get(5)?,
            })
        })()
    }};
}
pub(crate) use decode_suspension;

/// Every row of `key_suspensions`, by label, through a sqlx pool of either database (the
/// SQL is the same).
macro_rules! read_key_suspensions {
    ($pool:expr) => {{
        let err = |e| $crate::Error::db("read key suspensions", e);
        let sql = format!(
            "SELECT {} FROM key_suspensions ORDER BY label",
            $crate::backend::SUSPENSION_COLUMNS
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all($pool)
            .await
            .map_err(err)?;
        rows.iter()
            .map(|r| $crate::backend::decode_suspension!(r).map_err(err))
            .collect()
    }};
}
pub(crate) use read_key_suspensions;
