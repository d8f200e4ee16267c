//! The SQLite log writer: one OS thread that owns the write connection and runs each
//! group-commit transaction from `BEGIN IMMEDIATE` to `COMMIT` without yielding.
//!
//! Why a thread of its own, and why `rusqlite` here while reads go through sqlx: sqlx runs
//! an SQLite connection on a worker thread and hands every statement to it and its result
//! back, so a batch of N records costs N + 4 round trips between threads. Measured on a
//! 2-core machine (benches/RESULTS.md, 2026-11) that fixed cost, 0.4-0.7 ms of CPU per
//! commit, took 17-48 % off the signing rate when the log was on, because at moderate load
//! batches stay small (about 1.3 records). Here one batch is one message in and one reply
//! out; the statements run back to back on prepared, cached statements.
//!
//! ```text
//!  writer task (tokio) --Cmd::Append(batch)--> [ hanko-log-sqlite thread ]
//!        ^                                       BEGIN IMMEDIATE
//!        |                                       SELECT head; INSERT xN; UPDATE head
//!        '------------ oneshot reply ----------- COMMIT (fsync, synchronous = FULL)
//! ```
//!
//! What it does not do: read. Verification, export and lookups use the sqlx pool, which
//! WAL lets run beside the writer. Both libraries link the same `libsqlite3-sys`.
//!
//! Failure: a statement error rolls the transaction back (rusqlite's `Transaction` drop)
//! and the batch's waiters get the error. If the thread itself ends (it cannot panic on
//! input, but a bug could), every later call gets [`Error::Closed`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::{chain_batch, decode_head, to_i64};
use crate::record::PreparedRecord;
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

/// One request to the writer thread.
enum Cmd {
    Append {
        records: Arc<[PreparedRecord]>,
        reply: oneshot::Sender<Result<Vec<Receipt>, Error>>,
    },
    Reserve {
        name: String,
        n: u64,
        node_id: String,
        now_ns: i64,
        reply: oneshot::Sender<Result<u64, Error>>,
    },
}

/// Handle on the writer thread. Dropping it (or [`SqliteWriter::close`]) lets the thread
/// finish the command in hand and stop.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    tx: Mutex<Option<mpsc::Sender<Cmd>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl SqliteWriter {
    /// Opens the write connection on an existing, migrated database file and starts the
    /// thread. The connection is opened on the thread; this waits for the outcome.
    pub(crate) async fn start(path: &Path, busy_timeout: Duration) -> Result<SqliteWriter, Error> {
        let (tx, rx) = mpsc::channel::<Cmd>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let path: PathBuf = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("hanko-log-sqlite".into())
            .spawn(move || match open(&path, busy_timeout) {
                Ok(conn) => {
                    let _ = ready_tx.send(Ok(()));
                    serve(conn, rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| Error::Io(Arc::new(e)))?;
        ready_rx.await.map_err(|_| Error::Closed)??;
        Ok(SqliteWriter {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn send(&self, cmd: Cmd) -> Result<(), Error> {
        let guard = self.tx.lock().map_err(|_| Error::Closed)?;
        guard
            .as_ref()
            .ok_or(Error::Closed)?
            .send(cmd)
            .map_err(|_| Error::Closed)
    }

    /// Appends one batch in one transaction (see [`super::LogBackend::append_batch`]).
    pub(crate) async fn append(
        &self,
        records: Arc<[PreparedRecord]>,
    ) -> Result<Vec<Receipt>, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Append { records, reply })?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Reserves `n` serials of counter `name` (see [`super::LogBackend::reserve_serials`]).
    pub(crate) async fn reserve(
        &self,
        name: &str,
        n: u64,
        node_id: &str,
        now_ns: i64,
    ) -> Result<u64, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Reserve {
            name: name.to_owned(),
            n,
            node_id: node_id.to_owned(),
            now_ns,
            reply,
        })?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Stops taking commands and waits (off the runtime) for the thread to finish the
    /// command in hand.
    pub(crate) async fn close(&self) {
        drop(self.tx.lock().ok().and_then(|mut t| t.take()));
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tracing::error!("issuance log SQLite writer thread panicked"),
                Err(e) => tracing::error!(error = %e, "joining the SQLite writer thread failed"),
            }
        }
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
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(err)?;
    Ok(conn)
}

/// The thread's loop: one command at a time until every sender is gone.
fn serve(mut conn: Connection, rx: mpsc::Receiver<Cmd>) {
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Cmd::Append { records, reply } => {
                // A waiter that gave up (the group-commit timeout dropped it) was told the
                // batch failed: do not commit it after all. Checked again just before
                // COMMIT; past that point the record may be durable although its waiter
                // timed out, which is the safe direction (see crate::writer).
                let abandoned = || reply.is_closed();
                if abandoned() {
                    continue;
                }
                let outcome = append(&mut conn, &records, &abandoned);
                let _ = reply.send(outcome);
            }
            Cmd::Reserve {
                name,
                n,
                node_id,
                now_ns,
                reply,
            } => {
                let _ = reply.send(reserve(&mut conn, &name, n, &node_id, now_ns));
            }
        }
    }
    tracing::debug!("issuance log SQLite writer stopped");
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
    if abandoned() {
        // Dropping `tx` rolls back; nobody is waiting for the answer.
        return Err(Error::Closed);
    }
    tx.commit().map_err(err)?;
    Ok(receipts)
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
