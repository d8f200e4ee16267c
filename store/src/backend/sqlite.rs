//! The SQLite backend: the embedded default, one file under the data directory.
//!
//! What it does: opens the file in WAL mode, runs the embedded migrations, and implements
//! [`LogBackend`]. The reader pool (and the migrations) commit with `synchronous = FULL`;
//! the writer's connection with `NORMAL` and a sync of the WAL of its own before any
//! waiter is answered (pipelined commits, [`super::sqlite_writer`]): in WAL mode `NORMAL`
//! alone may lose the last commits on power loss, and a response is released only after
//! its record is durable.
//! Appends and reservations run on the writer thread ([`super::sqlite_writer`], one
//! connection, no per-statement thread hand-offs) in `BEGIN IMMEDIATE` transactions: the
//! file's write lock is taken before the chain head is read, so two processes on one file
//! (which is not a supported deployment, but must not corrupt the chain) serialise instead
//! of forking it. Readers (verify, export, lookups) use a sqlx pool beside it, concurrently
//! thanks to WAL.
//!
//! Read-only ([`SqliteBackend::open_read_only`], for auditors' `hanko log verify|export`):
//! no migrations, no writer thread, the file opened `mode=ro`; the schema version must be
//! the one this build knows.
//!
//! What it does not do: serve several nodes. A shared SQLite file over a network file
//! system is not safe; use PostgreSQL for more than one node.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};

use std::sync::Arc;

use super::anchoring::DirectReads;
use super::sqlite_reader::{OBJECT_HASHES, SqliteLeafReader};
use super::sqlite_writer::SqliteWriter;
use super::{
    APPLIED_MIGRATIONS, BoxFut, KeyStateOp, KeyStateOutcome, LogBackend, ROW_COLUMNS,
    RawSuspension, RowFilter, compare_schema, decode_head, decode_raw_row, read_key_suspensions,
    to_i64,
};
use crate::chain::ChainHead;
use crate::record::{PreparedRecord, RawRow, RecordKind};
use crate::writer::BlockingAppender;
use crate::{Error, Receipt};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// One SQLite file: a reader pool and (unless read-only) the writer thread.
#[derive(Debug)]
pub(crate) struct SqliteBackend {
    pool: SqlitePool,
    writer: Option<SqliteWriter>,
    /// Anchoring's range scans; `None` on a read-only open, which reads through the pool.
    leaves: Option<SqliteLeafReader>,
}

impl SqliteBackend {
    /// Opens (creating if missing) the database described by `opts`, then migrates it.
    pub(crate) async fn open(
        opts: SqliteConnectOptions,
        target: &str,
        max_connections: u32,
        acquire_timeout: Duration,
        busy_timeout: Duration,
    ) -> Result<SqliteBackend, Error> {
        reject_in_memory(&opts, target)?;
        let path = opts.get_filename().to_owned();
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        // The writer has a connection of its own (rusqlite); these serve readers and
        // the migrations.
        let pool = connect_pool(opts, target, max_connections.max(2), acquire_timeout).await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::Migrate { source: e.into() })?;
        let writer = match SqliteWriter::open(&path, busy_timeout).await {
            Ok(w) => w,
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        Ok(SqliteBackend {
            pool,
            writer: Some(writer),
            leaves: Some(SqliteLeafReader::new(&path, busy_timeout)),
        })
    }

    /// Opens an existing log file read-only: no migrations, no writer. Fails unless the
    /// file's schema is exactly the one this build writes.
    ///
    /// An auditor may have read access to the log but not write access to its directory.
    /// A WAL-mode file then reads normally while the server runs (its `-wal` and `-shm`
    /// files exist), but once the server has stopped and removed them, SQLite cannot
    /// create the `-shm` index (`SQLITE_READONLY_DIRECTORY`). With no `-wal` file every
    /// commit is in the main file, so it is opened `immutable` instead (no locks, no
    /// index); if a `-wal` file exists, the user is told what read access is missing.
    pub(crate) async fn open_read_only(
        opts: SqliteConnectOptions,
        target: &str,
        acquire_timeout: Duration,
        busy_timeout: Duration,
    ) -> Result<SqliteBackend, Error> {
        reject_in_memory(&opts, target)?;
        let opts = opts
            .create_if_missing(false)
            .read_only(true)
            .busy_timeout(busy_timeout);
        let mut pool = connect_pool(opts.clone(), target, 2, acquire_timeout).await?;
        let mut applied = sqlx::query_scalar(APPLIED_MIGRATIONS)
            .fetch_all(&pool)
            .await;
        if applied.as_ref().is_err_and(is_access_error) {
            pool.close().await;
            let mut wal = opts.get_filename().as_os_str().to_owned();
            wal.push("-wal");
            if std::path::Path::new(&wal).exists() {
                return Err(Error::NoReadAccess {
                    target: target.to_owned(),
                    reason: "the log is in WAL mode and a -wal file exists, but its -shm \
                             index cannot be opened or created with this user's rights; \
                             give read access to the -wal and -shm files (while the \
                             server runs) or stop the server cleanly first"
                        .into(),
                });
            }
            tracing::info!(
                target,
                "no write access beside the log and no -wal file: reading it immutable"
            );
            pool = connect_pool(opts.immutable(true), target, 2, acquire_timeout).await?;
            applied = sqlx::query_scalar(APPLIED_MIGRATIONS)
                .fetch_all(&pool)
                .await;
        }
        if let Err(e) = compare_schema(applied, &MIGRATOR, target) {
            pool.close().await;
            return Err(e);
        }
        Ok(SqliteBackend {
            pool,
            writer: None,
            leaves: None,
        })
    }

    /// The evidence lookups' reads on the direct reader (see [`DirectReads`]); none on a
    /// read-only open.
    pub(crate) fn direct_reads(&self) -> Option<&dyn DirectReads> {
        self.leaves.as_ref().map(|r| r as &dyn DirectReads)
    }

    fn writer(&self) -> Result<&SqliteWriter, Error> {
        self.writer.as_ref().ok_or(Error::ReadOnly)
    }

    /// The leaves `after_seq < seq <= to_seq` (at most `limit`) for anchoring: through the
    /// leaf reader's own connection when there is one, else through the pool.
    pub(crate) async fn read_object_hashes(
        &self,
        after_seq: i64,
        to_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, Error> {
        if let Some(leaves) = &self.leaves {
            return leaves.object_hashes(after_seq, to_seq, limit).await;
        }
        sqlx::query_as(OBJECT_HASHES)
            .bind(after_seq)
            .bind(to_seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| Error::db("read object hashes", e))
    }

    /// Parses a `sqlite:` URL.
    pub(crate) fn options_from_url(url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
        SqliteConnectOptions::from_str(url)
    }
}

/// The sqlx pool on the file (readers, migrations; 2 connections for a read-only open).
async fn connect_pool(
    opts: SqliteConnectOptions,
    target: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<SqlitePool, Error> {
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_with(opts)
        .await
        .map_err(|e| Error::Connect {
            target: target.to_owned(),
            source: e.into(),
        })
}

/// This user may not open the file or its WAL companions: `SQLITE_CANTOPEN` (14, any
/// extended code) or `SQLITE_READONLY_DIRECTORY` (8 | 6 << 8: the WAL index cannot be
/// created beside the file).
fn is_access_error(e: &sqlx::Error) -> bool {
    const SQLITE_CANTOPEN: i32 = 14;
    const SQLITE_READONLY_DIRECTORY: i32 = 8 | (6 << 8);
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    d.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == SQLITE_CANTOPEN || c == SQLITE_READONLY_DIRECTORY)
}

/// The log must outlive the process: an in-memory database (`sqlite::memory:`,
/// `mode=memory`) would also not be shared between the reader pool and the writer.
fn reject_in_memory(opts: &SqliteConnectOptions, target: &str) -> Result<(), Error> {
    let name = opts.get_filename().to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.starts_with("file:sqlx-in-memory") {
        return Err(Error::InvalidUrl {
            target: target.to_owned(),
            reason: "the issuance log needs a file, not an in-memory database".into(),
        });
    }
    Ok(())
}

impl LogBackend for SqliteBackend {
    fn append_batch(&self, records: Arc<[PreparedRecord]>) -> BoxFut<'_, Vec<Receipt>> {
        // Normally unused: the store's writer runs on its own thread through
        // `blocking_appender`. Kept so the trait's contract holds for any caller.
        Box::pin(async move {
            let mut w = self.writer()?.clone();
            tokio::task::spawn_blocking(move || w.append(&records, &|| false))
                .await
                .map_err(|_| Error::Closed)?
        })
    }

    fn reserve_serials<'a>(
        &'a self,
        name: &'a str,
        n: u64,
        node_id: &'a str,
        now_ns: i64,
    ) -> BoxFut<'a, u64> {
        Box::pin(async move { self.writer()?.reserve(name, n, node_id, now_ns).await })
    }

    fn head(&self) -> BoxFut<'_, ChainHead> {
        Box::pin(async move {
            let err = |e| Error::db("read chain head", e);
            let row = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(err)?
                .ok_or_else(|| Error::Corrupt {
                    seq: 0,
                    reason: "chain_head row is missing".into(),
                })?;
            decode_head(row.try_get(0).map_err(err)?, row.try_get(1).map_err(err)?)
        })
    }

    fn read_rows<'a>(
        &'a self,
        filter: &'a RowFilter,
        after_seq: u64,
        limit: u32,
    ) -> BoxFut<'a, Vec<RawRow>> {
        Box::pin(async move {
            let err = |e| Error::db("read rows", e);
            let sql = format!(
                "SELECT {ROW_COLUMNS} FROM log_records \
                 WHERE seq > $1 AND ($2 IS NULL OR seq <= $2) \
                 AND ($3 IS NULL OR issued_at_ns >= $3) AND ($4 IS NULL OR issued_at_ns <= $4) \
                 ORDER BY seq LIMIT $5"
            );
            let to_seq = filter
                .to_seq
                .map(|s| to_i64(s, "sequence number"))
                .transpose()?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(to_i64(after_seq, "sequence number")?)
                .bind(to_seq)
                .bind(filter.from_ns)
                .bind(filter.to_ns)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
            rows.iter()
                .map(|r| decode_raw_row!(r).map_err(err))
                .collect()
        })
    }

    fn find_by_serial<'a>(
        &'a self,
        kind: Option<RecordKind>,
        serial: &'a [u8],
    ) -> BoxFut<'a, Vec<RawRow>> {
        Box::pin(async move {
            let err = |e| Error::db("find by serial", e);
            let sql = format!(
                "SELECT {ROW_COLUMNS} FROM log_records \
                 WHERE serial = $1 AND ($2 IS NULL OR kind = $2) ORDER BY seq"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(serial)
                .bind(kind.map(RecordKind::as_str))
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
            rows.iter()
                .map(|r| decode_raw_row!(r).map_err(err))
                .collect()
        })
    }

    fn close(&self) -> BoxFut<'_, ()> {
        Box::pin(async move {
            self.pool.close().await;
            Ok(())
        })
    }

    fn anchoring(&self) -> &dyn super::anchoring::AnchorBackend {
        self
    }

    fn batcher_lock(&self) -> BoxFut<'_, Option<crate::BatcherLock>> {
        // One node per SQLite file: this process is the only batcher.
        Box::pin(async move {
            Ok(Some(crate::BatcherLock {
                inner: crate::anchoring::BatcherLockInner::Local,
            }))
        })
    }

    fn renewal(&self) -> &dyn super::renewal::RenewalBackend {
        self
    }

    fn renewal_lock(&self) -> BoxFut<'_, Option<crate::BatcherLock>> {
        // One node per SQLite file, as for the batcher.
        self.batcher_lock()
    }

    fn change_key_state(
        &self,
        op: KeyStateOp,
        audit: PreparedRecord,
    ) -> BoxFut<'_, KeyStateOutcome> {
        Box::pin(async move { self.writer()?.change_key_state(op, audit).await })
    }

    fn key_suspensions(&self) -> BoxFut<'_, Vec<RawSuspension>> {
        Box::pin(async move { read_key_suspensions!(&self.pool) })
    }

    fn blocking_appender(&self) -> Option<Box<dyn BlockingAppender>> {
        self.writer
            .as_ref()
            .map(|w| Box::new(w.clone()) as Box<dyn BlockingAppender>)
    }
}

// Closing a batch takes the file's write lock first, like the log writer's batches.
super::anchoring::impl_anchor_backend!(SqliteBackend, |pool| pool.begin_with("BEGIN IMMEDIATE"));
super::renewal::impl_renewal_backend!(SqliteBackend, |pool| pool.begin_with("BEGIN IMMEDIATE"));
