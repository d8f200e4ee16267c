//! The SQLite leaf reader: one read-only `rusqlite` connection for the range scans of
//! anchoring (`seq, object_hash` over up to a million rows per batch).
//!
//! Why not the sqlx pool, which serves every other read: sqlx runs an SQLite connection on
//! a worker thread and hands every row back across threads, about 2 µs a row here; a
//! batch of 1,000,000 leaves spent ~1.9 s of its 2.1 s close in those hand-offs
//! (benches/RESULTS.md, 2026-12-03). This connection runs one chunk's statement from
//! start to end on a blocking thread and returns the chunk whole: one hand-off a chunk.
//! The scan reads the covering index `log_records_seq_object_hash`
//! (`migrations/sqlite/0003_leaf_index.sql`), not the table, whose rows carry the tokens.
//!
//! What it does not do: write (the file is opened read-only) or serve a read-only open
//! of the log (`hanko log verify` on an auditor's copy keeps the sqlx pool and its
//! `immutable` fallback; see [`super::sqlite::SqliteBackend::open_read_only`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};

use crate::Error;

/// The leaves of a range, in sequence order (see the module docs for the index it uses).
pub(crate) const OBJECT_HASHES: &str = "SELECT seq, object_hash FROM log_records \
     WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3";

/// Connections kept open between reads; more may be open at once (concurrent evidence
/// lookups), the surplus is closed after use.
const MAX_IDLE: usize = 4;

/// Read-only connections opened on demand and reused from one chunk to the next.
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
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read(after_seq, to_seq, limit))
            .await
            .map_err(|_| Error::Closed)?
    }

    fn read(&self, after_seq: i64, to_seq: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>, Error> {
        let err = |e| Error::sqlite("read object hashes", e);
        let conn = match self.idle_list().pop() {
            Some(conn) => conn,
            None => open(&self.path, self.busy_timeout).map_err(err)?,
        };
        let rows = (|| {
            let mut stmt = conn.prepare_cached(OBJECT_HASHES)?;
            let rows = stmt.query_map(params![after_seq, to_seq, limit], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })()
        .map_err(err)?;
        // A connection whose read failed is dropped (above, by `?`): the next read opens
        // a fresh one rather than reuse one in an unknown state.
        let mut idle = self.idle_list();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(rows)
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
