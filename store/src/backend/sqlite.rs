//! The SQLite backend: the embedded default, one file under the data directory.
//!
//! What it does: opens the file in WAL mode with `synchronous = FULL` (in WAL mode `NORMAL`
//! may lose the last commits on power loss, and a response is released only after its
//! record is durable), runs the embedded migrations, and implements [`LogBackend`].
//! Appends and reservations run in `BEGIN IMMEDIATE` transactions: the file's write lock is
//! taken before the chain head is read, so two processes on one file (which is not a
//! supported deployment, but must not corrupt the chain) serialise instead of forking it.
//! Readers (verify, export, lookups) run concurrently thanks to WAL.
//!
//! What it does not do: serve several nodes. A shared SQLite file over a network file
//! system is not safe; use PostgreSQL for more than one node.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};

use super::{
    BoxFut, LogBackend, ROW_COLUMNS, RowFilter, chain_batch, decode_head, decode_raw_row, to_i64,
};
use crate::chain::ChainHead;
use crate::record::{PreparedRecord, RawRow, RecordKind};
use crate::{Error, Receipt};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A pool on one SQLite file.
#[derive(Debug)]
pub(crate) struct SqliteBackend {
    pool: SqlitePool,
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
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            // One connection writes (the log writer); the others serve readers.
            .max_connections(max_connections.max(2))
            .acquire_timeout(acquire_timeout)
            .connect_with(opts)
            .await
            .map_err(|e| Error::Connect {
                target: target.to_owned(),
                source: e.into(),
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::Migrate { source: e.into() })?;
        Ok(SqliteBackend { pool })
    }

    /// Parses a `sqlite:` URL.
    pub(crate) fn options_from_url(url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
        SqliteConnectOptions::from_str(url)
    }

    async fn append(&self, records: &[PreparedRecord]) -> Result<Vec<Receipt>, Error> {
        const OP: &str = "append batch";
        let err = |e| Error::db(OP, e);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        let row = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?
            .ok_or_else(|| Error::Corrupt {
                seq: 0,
                reason: "chain_head row is missing".into(),
            })?;
        let head = decode_head(row.try_get(0).map_err(err)?, row.try_get(1).map_err(err)?)?;
        let (new_head, receipts) = chain_batch(head, records)?;
        for (r, rc) in records.iter().zip(&receipts) {
            sqlx::query(
                "INSERT INTO log_records (seq, kind, serial, object_hash, request_hash, policy, \
                 client, issued_at_ns, node_id, token, chain_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(to_i64(rc.seq, "sequence number")?)
            .bind(r.kind.as_str())
            .bind(r.serial.as_slice())
            .bind(r.object_hash.as_slice())
            .bind(r.request_hash.as_slice())
            .bind(r.policy.as_str())
            .bind(r.client.as_str())
            .bind(r.issued_at_ns)
            .bind(&*r.node_id)
            .bind(r.token.as_deref())
            .bind(rc.chain_hash.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        sqlx::query("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(to_i64(new_head.seq, "sequence number")?)
            .bind(new_head.hash.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(receipts)
    }

    async fn reserve(&self, name: &str, n: u64, node_id: &str, now_ns: i64) -> Result<u64, Error> {
        const OP: &str = "reserve serials";
        let err = |e| Error::db(OP, e);
        let n_i = to_i64(n, "serial block size")?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        // The one atomic statement: creates the counter at 1 or advances it, refusing to
        // pass i64::MAX (SQLite would silently turn an overflowing integer into a REAL).
        let first: Option<i64> = sqlx::query_scalar(
            "INSERT INTO serial_counters (name, next) VALUES ($1, 1 + $2) \
             ON CONFLICT (name) DO UPDATE SET next = serial_counters.next + $2 \
             WHERE serial_counters.next <= 9223372036854775807 - $2 \
             RETURNING next - $2",
        )
        .bind(name)
        .bind(n_i)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
        let first = first.ok_or_else(|| Error::SerialsExhausted {
            counter: name.to_owned(),
        })?;
        sqlx::query(
            "INSERT INTO serial_ranges (name, first_serial, last_serial, node_id, reserved_at_ns) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name)
        .bind(first)
        .bind(first + (n_i - 1))
        .bind(node_id)
        .bind(now_ns)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        u64::try_from(first).map_err(|_| Error::Corrupt {
            seq: 0,
            reason: format!("serial counter {name:?} is not positive"),
        })
    }
}

impl LogBackend for SqliteBackend {
    fn append_batch<'a>(&'a self, records: &'a [PreparedRecord]) -> BoxFut<'a, Vec<Receipt>> {
        Box::pin(self.append(records))
    }

    fn reserve_serials<'a>(
        &'a self,
        name: &'a str,
        n: u64,
        node_id: &'a str,
        now_ns: i64,
    ) -> BoxFut<'a, u64> {
        Box::pin(self.reserve(name, n, node_id, now_ns))
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
}
