//! The SQLite write connection: one `rusqlite` connection that runs each group-commit
//! transaction from `BEGIN IMMEDIATE` to `COMMIT` without yielding, on the log writer's
//! own thread ([`crate::writer::BlockingAppender`]).
//!
//! Why not sqlx here, while reads go through sqlx: sqlx runs an SQLite connection on a
//! worker thread and hands every statement to it and its result back, so a batch of N
//! records costs N + 4 round trips between threads, and the group-commit task adds two
//! more hand-offs. On a 2-core machine that fixed cost took 17-48 % off the signing rate
//! when the log was on (benches/RESULTS.md, 2026-11). Here the writer thread takes the
//! records straight from the queue, runs the statements back to back on prepared, cached
//! statements, and answers the waiters itself.
//!
//! ```text
//!  Store::append --queue--> [ hanko-log-writer thread ]
//!                             BEGIN IMMEDIATE
//!                             SELECT head; INSERT xN; UPDATE head
//!                             COMMIT (WAL frames written, synchronous = NORMAL: no fsync)
//!                                 |  batch N
//!                                 v
//!        ^                  [ hanko-log-sync thread ]  fdatasync(-wal): covers every
//!        '--- oneshot ------  batch committed before it began, then answers them
//! ```
//!
//! Pipelined commits (issue #17): with `synchronous = FULL` the writer waited for the
//! WAL's fsync inside every COMMIT (0.6-1 ms on the VM disk of benches/RESULTS.md), and
//! nothing else was written meanwhile. Here COMMIT only writes the batch's frames, and
//! the syncer thread makes them durable with one `fdatasync` of the `-wal` file while the
//! writer commits the next batch. No waiter is answered before the sync that covers its
//! batch has returned, so a token still never leaves before its record is on disk; what
//! `NORMAL` may lose on power loss (SQLite: "the last transactions") is exactly the
//! batches nobody was answered for. The WAL is a sequence of checksummed frames, so
//! recovery keeps a prefix of the commits: the chain never loses a record in the middle.
//! Checkpoints run on a thread of their own (`sqlite_checkpoint.rs`; SQLite syncs the
//! WAL before and the database file after each). The test:
//! `server/tests/integration/power_loss.rs` drops every write that no fsync covered and
//! restarts on what is left.
//!
//! Serial reservations and key suspensions (rare) use the same connection from the
//! blocking pool, behind the same mutex, and sync before they return: a reserved serial
//! must be durable before any token carries it. What it does not do: read. Verification, export and
//! lookups use the sqlx pool, which WAL lets run beside the writer. Both libraries link
//! the same `libsqlite3-sys`.
//!
//! Failure: a statement error rolls the transaction back (rusqlite's `Transaction` drop)
//! and the batch's waiters get the error.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::sqlite_checkpoint::{Checkpointer, JOURNAL_SIZE_LIMIT};
use super::{
    DELETE_SUSPENSION, INSERT_SUSPENSION, KeyStateOp, KeyStateOutcome, RawSuspension,
    SUSPENSION_COLUMNS, chain_batch, decode_head, to_i64,
};
use crate::record::PreparedRecord;
use crate::syncer::Durability;
use crate::writer::BlockingAppender;
use crate::{Error, Receipt};

const INSERT_RECORD: &str = "INSERT INTO log_records (seq, kind, serial, object_hash, \
     request_hash, policy, client, issued_at_ns, node_id, token, chain_hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const SELECT_HEAD: &str = "SELECT seq, hash FROM chain_head WHERE id = 1";
const UPDATE_HEAD: &str = "UPDATE chain_head SET seq = ?1, hash = ?2 WHERE id = 1";
/// The one atomic statement of a reservation: creates the counter at 1 or advances it,
/// refusing to pass i64::MAX (SQLite would silently turn an overflowing integer into a REAL).
const ADVANCE_COUNTER: &str = "INSERT INTO serial_counters (name, next) VALUES (?1, 1 + ?2) \
     ON CONFLICT (name) DO UPDATE SET next = serial_counters.next + ?2 \
     WHERE serial_counters.next <= 9223372036854775807 - ?2 \
     RETURNING next - ?2";
const RECORD_RANGE: &str = "INSERT INTO serial_ranges \
     (name, first_serial, last_serial, node_id, reserved_at_ns) VALUES (?1, ?2, ?3, ?4, ?5)";

/// The write connection, shared by the writer thread and serial reservations.
#[derive(Debug, Clone)]
pub(crate) struct SqliteWriter {
    conn: Arc<Mutex<Connection>>,
    wal: Arc<WalFile>,
    /// Checkpoints the WAL on a thread of its own (`sqlite_checkpoint.rs`).
    ckpt: Arc<Checkpointer>,
}

/// The log's `-wal` file, opened beside the write connection to `fdatasync` it.
///
/// SQLite removes the `-wal` file only when the last connection to the database closes,
/// and the write connection stays open as long as this: it is the same file for the
/// writer's whole life. Each sync still checks that the path names the file it syncs
/// (device and inode), because syncing a file SQLite no longer writes would answer
/// waiters whose records are not durable.
#[derive(Debug)]
pub(crate) struct WalFile {
    path: PathBuf,
    file: File,
}

impl WalFile {
    /// Opens the `-wal` file of the database at `db` (it exists once a WAL-mode
    /// connection has read the database).
    fn open(db: &Path) -> Result<WalFile, Error> {
        let mut path = db.as_os_str().to_owned();
        path.push("-wal");
        let path = PathBuf::from(path);
        let file = File::open(&path).map_err(|e| Error::Io(Arc::new(e)))?;
        Ok(WalFile { path, file })
    }
}

impl Durability for WalFile {
    fn sync(&self) -> Result<(), Error> {
        let io = |e| Error::Io(Arc::new(e));
        let (named, open) = (
            std::fs::metadata(&self.path).map_err(io)?,
            self.file.metadata().map_err(io)?,
        );
        if (named.dev(), named.ino()) != (open.dev(), open.ino()) {
            return Err(io(std::io::Error::other(format!(
                "{} is no longer the WAL file the log writer opened",
                self.path.display()
            ))));
        }
        self.file.sync_data().map_err(io)
    }
}

impl SqliteWriter {
    /// Opens the write connection on an existing, migrated database file (off the
    /// runtime: opening runs file I/O).
    pub(crate) async fn open(path: &Path, busy_timeout: Duration) -> Result<SqliteWriter, Error> {
        let path: PathBuf = path.to_owned();
        let (conn, wal, ckpt) = tokio::task::spawn_blocking(move || {
            let conn = open(&path, busy_timeout)?;
            let wal = WalFile::open(&path)?;
            Ok::<_, Error>((conn, wal, Checkpointer::start(&path)?))
        })
        .await
        .map_err(|_| Error::Closed)??;
        Ok(SqliteWriter {
            conn: Arc::new(Mutex::new(conn)),
            wal: Arc::new(wal),
            ckpt: Arc::new(ckpt),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock can only come from a bug; the connection itself
        // is still consistent (an open transaction is rolled back when dropped).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves `n` serials of counter `name` (see [`super::LogBackend::reserve_serials`]).
    pub(crate) async fn reserve(
        &self,
        name: &str,
        n: u64,
        node_id: &str,
        now_ns: i64,
    ) -> Result<u64, Error> {
        let this = self.clone();
        let (name, node_id) = (name.to_owned(), node_id.to_owned());
        tokio::task::spawn_blocking(move || {
            let first = reserve(&mut this.lock(), &name, n, &node_id, now_ns)?;
            this.ckpt.committed();
            this.wal.sync()?;
            Ok(first)
        })
        .await
        .map_err(|_| Error::Closed)?
    }
}

impl SqliteWriter {
    /// Suspends or resumes a key with its audit record, in one transaction.
    pub(crate) async fn change_key_state(
        &self,
        op: KeyStateOp,
        audit: PreparedRecord,
    ) -> Result<KeyStateOutcome, Error> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let outcome = change_key_state(&mut this.lock(), &op, &audit)?;
            this.ckpt.committed();
            this.wal.sync()?;
            Ok(outcome)
        })
        .await
        .map_err(|_| Error::Closed)?
    }
}

impl BlockingAppender for SqliteWriter {
    fn append(
        &mut self,
        records: &[PreparedRecord],
        abandoned: &dyn Fn() -> bool,
    ) -> Result<Vec<Receipt>, Error> {
        let receipts = append(&mut self.lock(), records, abandoned)?;
        self.ckpt.committed();
        Ok(receipts)
    }

    fn deferred_sync(&self) -> Option<Arc<dyn Durability>> {
        Some(self.wal.clone())
    }
}

/// Opens the write connection with the durability settings the log needs.
fn open(path: &Path, busy_timeout: Duration) -> Result<Connection, Error> {
    let err = |e| Error::sqlite("open writer connection", e);
    // No CREATE: sqlx created and migrated the file before the writer starts.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(busy_timeout).map_err(err)?;
    // journal_mode is persistent in the file (sqlx set WAL); synchronous is per connection.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::InvalidArgument(format!(
            "the issuance log file cannot use WAL journaling (journal_mode is {mode})"
        )));
    }
    // NORMAL: COMMIT writes the WAL frames without fsync; the syncer makes them durable
    // before anyone is answered (module docs). Reading the head also makes sure that the
    // `-wal` file exists for `WalFile::open`.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    conn.query_row(SELECT_HEAD, [], |_| Ok(()))
        .optional()
        .map_err(err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(err)?;
    // Checkpoints run on the checkpointer's thread, never inside this connection's
    // COMMIT (`sqlite_checkpoint.rs`); a WAL a long reader let grow is cut back when it
    // restarts.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(err)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
        .map_err(err)?;
    Ok(conn)
}

/// One batch, one transaction. The write lock is taken at BEGIN, before the head is read,
/// so another process on the same file serialises instead of forking the chain.
/// `abandoned` is asked once more before COMMIT; if it says yes, the batch rolls back.
fn append(
    conn: &mut Connection,
    records: &[PreparedRecord],
    abandoned: &dyn Fn() -> bool,
) -> Result<Vec<Receipt>, Error> {
    let err = |e| Error::sqlite("append batch", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let receipts = append_rows(&tx, records, "append batch")?;
    if abandoned() {
        // Dropping `tx` rolls back; nobody is waiting for the answer.
        return Err(Error::Closed);
    }
    // Past this point a waiter that gives up may find its record durable anyway: the safe
    // direction (a record without a delivered token, never a token without a record).
    tx.commit().map_err(err)?;
    Ok(receipts)
}

/// Chains `records` after the head and inserts them, in the caller's transaction (which
/// holds the write lock).
fn append_rows(
    tx: &rusqlite::Transaction<'_>,
    records: &[PreparedRecord],
    op: &'static str,
) -> Result<Vec<Receipt>, Error> {
    let err = |e| Error::sqlite(op, e);
    let (seq, hash): (i64, Vec<u8>) = tx
        .prepare_cached(SELECT_HEAD)
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(err)?
        .ok_or_else(|| Error::Corrupt {
            seq: 0,
            reason: "chain_head row is missing".into(),
        })?;
    let (new_head, receipts) = chain_batch(decode_head(seq, hash)?, records)?;
    {
        let mut insert = tx.prepare_cached(INSERT_RECORD).map_err(err)?;
        for (r, rc) in records.iter().zip(&receipts) {
            insert
                .execute(params![
                    to_i64(rc.seq, "sequence number")?,
                    r.kind.as_str(),
                    r.serial.as_slice(),
                    r.object_hash.as_slice(),
                    r.request_hash.as_slice(),
                    r.policy.as_str(),
                    r.client.as_str(),
                    r.issued_at_ns,
                    &*r.node_id,
                    r.token.as_deref(),
                    rc.chain_hash.as_slice(),
                ])
                .map_err(err)?;
        }
    }
    let head_seq = to_i64(new_head.seq, "sequence number")?;
    tx.prepare_cached(UPDATE_HEAD)
        .and_then(|mut s| s.execute(params![head_seq, new_head.hash.as_slice()]))
        .map_err(err)?;
    Ok(receipts)
}

/// Suspends or resumes a key and appends its audit record, in one transaction (see
/// [`super::LogBackend::change_key_state`]).
fn change_key_state(
    conn: &mut Connection,
    op: &KeyStateOp,
    audit: &PreparedRecord,
) -> Result<KeyStateOutcome, Error> {
    const OP: &str = "change key state";
    let err = |e| Error::sqlite(OP, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let existing = tx
        .prepare_cached(&format!(
            "SELECT {SUSPENSION_COLUMNS} FROM key_suspensions WHERE label = ?1"
        ))
        .and_then(|mut s| {
            s.query_row([op.label()], |r| {
                Ok(RawSuspension {
                    label: r.get(0)?,
                    reason: r.get(1)?,
                    suspended_by: r.get(2)?,
                    suspended_at_ns: r.get(3)?,
                    node_id: r.get(4)?,
                    audit_seq: r.get(5)?,
                })
            })
            .optional()
        })
        .map_err(err)?;
    if let Some(unchanged) = op.unchanged(existing) {
        return Ok(unchanged);
    }
    let receipt = append_rows(&tx, std::slice::from_ref(audit), OP)?
        .pop()
        .ok_or_else(|| Error::Corrupt {
            seq: 0,
            reason: "no receipt for the audit record".into(),
        })?;
    let audit_seq = to_i64(receipt.seq, "sequence number")?;
    match op {
        KeyStateOp::Suspend(s) => tx
            .prepare_cached(INSERT_SUSPENSION)
            .and_then(|mut st| {
                st.execute(params![
                    s.label,
                    s.reason,
                    s.suspended_by,
                    s.suspended_at_ns,
                    s.node_id,
                    audit_seq,
                ])
            })
            .map_err(err)?,
        KeyStateOp::Resume { label } => tx
            .prepare_cached(DELETE_SUSPENSION)
            .and_then(|mut st| st.execute([label]))
            .map_err(err)?,
    };
    tx.commit().map_err(err)?;
    Ok(KeyStateOutcome::Changed(receipt))
}

/// Advances the counter and records the range, in one transaction.
fn reserve(
    conn: &mut Connection,
    name: &str,
    n: u64,
    node_id: &str,
    now_ns: i64,
) -> Result<u64, Error> {
    let err = |e| Error::sqlite("reserve serials", e);
    let n_i = to_i64(n, "serial block size")?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let first: Option<i64> = tx
        .prepare_cached(ADVANCE_COUNTER)
        .and_then(|mut s| s.query_row(params![name, n_i], |r| r.get(0)).optional())
        .map_err(err)?;
    let first = first.ok_or_else(|| Error::SerialsExhausted {
        counter: name.to_owned(),
    })?;
    tx.prepare_cached(RECORD_RANGE)
        .and_then(|mut s| s.execute(params![name, first, first + (n_i - 1), node_id, now_ns]))
        .map_err(err)?;
    tx.commit().map_err(err)?;
    u64::try_from(first).map_err(|_| Error::Corrupt {
        seq: 0,
        reason: format!("serial counter {name:?} is not positive"),
    })
}
