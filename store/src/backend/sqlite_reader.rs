//! The SQLite direct reader: read-only `rusqlite` connections for the reads where sqlx's
//! per-row hand-offs cost most: anchoring's range scans (`seq, object_hash` over up to a
//! million rows per batch) and an evidence lookup's record and anchors.
//!
//! Why not the sqlx pool, which serves every other read: sqlx runs an SQLite connection on
//! a worker thread and hands every row back across threads, about 2 µs a row here; a
//! batch of 1,000,000 leaves spent ~1.9 s of its 2.1 s close in those hand-offs
//! (benches/RESULTS.md, 2026-12-03). This connection runs one statement from start to
//! end on a blocking thread and returns its rows whole: one hand-off a read. For an
//! evidence lookup that is fewer thread wake-ups, which is what its tail latency is made
//! of on a busy 2-core machine (issue #15). The range scan reads the covering index
//! `log_records_seq_object_hash` (`migrations/sqlite/0003_leaf_index.sql`), not the
//! table, whose rows carry the tokens.
//!
//! What it does not do: write (the file is opened read-only) or serve a read-only open
//! of the log (`hanko log verify` on an auditor's copy keeps the sqlx pool and its
//! `immutable` fallback; see [`super::sqlite::SqliteBackend::open_read_only`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use super::BoxFut;
use super::ROW_COLUMNS;
use super::anchoring::{ANCHOR_COLUMNS, DirectReads, anchor_from_columns};
use crate::Error;
use crate::anchoring::Anchor;
use crate::record::RawRow;

/// The leaves of a range, in sequence order (see the module docs for the index it uses).
pub(crate) const OBJECT_HASHES: &str = "SELECT seq, object_hash FROM log_records \
     WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3";

/// Connections kept open between reads; more may be open at once (concurrent evidence
/// lookups), the surplus is closed after use.
const MAX_IDLE: usize = 4;

/// Read-only connections opened on demand and reused from one read to the next.
#[derive(Debug, Clone)]
pub(crate) struct SqliteLeafReader {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl SqliteLeafReader {
    pub(crate) fn new(path: &Path, busy_timeout: Duration) -> SqliteLeafReader {
        SqliteLeafReader {
            path: path.to_owned(),
            busy_timeout,
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Rows `after_seq < seq <= to_seq`, at most `limit`, off the async runtime.
    pub(crate) async fn object_hashes(
        &self,
        after_seq: i64,
        to_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, Error> {
        self.run("read object hashes", move |conn| {
            let mut stmt = conn.prepare_cached(OBJECT_HASHES)?;
            let rows = stmt.query_map(params![after_seq, to_seq, limit], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            rows.collect()
        })
        .await
    }

    /// Runs `read` on an idle connection (or a new one) on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let err = |e| Error::sqlite(what, e);
            let conn = match this.idle_list().pop() {
                Some(conn) => conn,
                None => open(&this.path, this.busy_timeout).map_err(err)?,
            };
            let out = read(&conn).map_err(err)?;
            // A connection whose read failed is dropped (above, by `?`): the next read
            // opens a fresh one rather than reuse one in an unknown state.
            let mut idle = this.idle_list();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
            Ok(out)
        })
        .await
        .map_err(|_| Error::Closed)?
    }

    fn idle_list(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A poisoned lock only means a panic elsewhere; an idle connection holds no
        // transaction, so the list is still sound.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

impl DirectReads for SqliteLeafReader {
    fn first_by_object_hash<'a>(&'a self, hash: &'a [u8]) -> BoxFut<'a, Option<RawRow>> {
        let hash = hash.to_vec();
        Box::pin(self.run("find by object hash", move |conn| {
            let sql = format!(
                "SELECT {ROW_COLUMNS} FROM log_records WHERE object_hash = ?1 ORDER BY seq LIMIT 1"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_row(params![hash], |r| {
                Ok(RawRow {
                    seq: r.get(0)?,
                    kind: r.get(1)?,
                    serial: r.get(2)?,
                    object_hash: r.get(3)?,
                    request_hash: r.get(4)?,
                    policy: r.get(5)?,
                    client: r.get(6)?,
                    issued_at_ns: r.get(7)?,
                    node_id: r.get(8)?,
                    token: r.get(9)?,
                    chain_hash: r.get(10)?,
                })
            })
            .optional()
        }))
    }

    fn anchors_of(&self, batch_id: i64) -> BoxFut<'_, Vec<Anchor>> {
        Box::pin(self.run("read anchors", move |conn| {
            let sql =
                format!("SELECT {ANCHOR_COLUMNS} FROM anchors WHERE batch_id = ?1 ORDER BY target");
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![batch_id], |r| {
                Ok(anchor_from_columns(
                    r.get(0)?,
                    r.get(1)?,
                    &r.get::<_, String>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })?;
            rows.collect()
        }))
    }
}
