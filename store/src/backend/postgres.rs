//! The PostgreSQL backend: for one node or several on one database.
//!
//! What it does: connects a pool, runs the embedded migrations (sqlx takes an advisory
//! lock, so nodes starting together migrate once) and implements [`LogBackend`]. Each batch
//! locks the single `chain_head` row with `SELECT ... FOR UPDATE` before it assigns
//! sequence numbers: batches of all nodes queue on that row lock, so the chain stays linear
//! and gapless across nodes, and a batch is inserted with one `INSERT ... SELECT FROM
//! UNNEST(...)` statement whatever its size (one round trip, one prepared statement).
//! Serial ranges come from one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` statement,
//! which PostgreSQL executes atomically under the counter row's lock: two nodes can never
//! receive overlapping ranges.
//!
//! What it does not do: replicate. Durability is the server's (`synchronous_commit = on`,
//! the default; with a standby, `synchronous_standby_names` if the operator wants it).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row as _};

use super::anchoring::DirectReads;
use super::{
    APPLIED_MIGRATIONS, BoxFut, DELETE_SUSPENSION, INSERT_SUSPENSION, KeyStateOp, KeyStateOutcome,
    LogBackend, ROW_COLUMNS, RawSuspension, RowFilter, SUSPENSION_COLUMNS, chain_batch,
    compare_schema, decode_head, decode_raw_row, decode_suspension, read_key_suspensions, to_i64,
};
use crate::chain::ChainHead;
use crate::record::{PreparedRecord, RawRow, RecordKind};
use crate::{Error, Receipt};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A pool on one PostgreSQL database.
#[derive(Debug)]
pub(crate) struct PgBackend {
    pool: PgPool,
    /// Opened by [`PgBackend::open_read_only`]: appends and reservations are refused here
    /// (and the sessions are read-only in the database too).
    read_only: bool,
}

impl PgBackend {
    /// None: every read goes through the pool (see [`DirectReads`]).
    pub(crate) fn direct_reads(&self) -> Option<&dyn DirectReads> {
        None
    }

    /// The leaves `after_seq < seq <= to_seq` (at most `limit`) for anchoring; an
    /// index-only scan of `log_records_seq_object_hash` where the visibility map allows
    /// (`migrations/postgres/0003_leaf_index.sql`).
    pub(crate) async fn read_object_hashes(
        &self,
        after_seq: i64,
        to_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, Error> {
        sqlx::query_as(
            "SELECT seq, object_hash FROM log_records WHERE seq > $1 AND seq <= $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(after_seq)
        .bind(to_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| Error::db("read object hashes", e))
    }

    /// Connects to the database described by `opts`, then migrates it.
    pub(crate) async fn open(
        opts: PgConnectOptions,
        target: &str,
        max_connections: u32,
        acquire_timeout: Duration,
        db_timeout: Duration,
    ) -> Result<PgBackend, Error> {
        let pool = connect(opts, target, max_connections, acquire_timeout, db_timeout).await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::Migrate { source: e.into() })?;
        Ok(PgBackend {
            pool,
            read_only: false,
        })
    }

    /// Connects without migrating, with `default_transaction_read_only = on`, and checks
    /// that the schema is exactly the one this build reads. A role with SELECT on the log's
    /// tables (and `_sqlx_migrations`) is enough: what an auditor is given.
    pub(crate) async fn open_read_only(
        opts: PgConnectOptions,
        target: &str,
        acquire_timeout: Duration,
        db_timeout: Duration,
    ) -> Result<PgBackend, Error> {
        let opts = opts.options([("default_transaction_read_only", "on")]);
        let pool = connect(opts, target, 2, acquire_timeout, db_timeout).await?;
        let applied = sqlx::query_scalar(APPLIED_MIGRATIONS)
            .fetch_all(&pool)
            .await;
        if let Err(e) = compare_schema(applied, &MIGRATOR, target) {
            pool.close().await;
            return Err(e);
        }
        Ok(PgBackend {
            pool,
            read_only: true,
        })
    }

    /// Parses a `postgres:` URL.
    pub(crate) fn options_from_url(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
        PgConnectOptions::from_str(url)
    }

    async fn append(&self, records: &[PreparedRecord]) -> Result<Vec<Receipt>, Error> {
        const OP: &str = "append batch";
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let err = |e| Error::db(OP, e);
        let mut tx = self.pool.begin().await.map_err(err)?;
        let receipts = append_rows(&mut tx, records, OP).await?;
        tx.commit().await.map_err(err)?;
        Ok(receipts)
    }

    async fn change_state(
        &self,
        op: KeyStateOp,
        audit: PreparedRecord,
    ) -> Result<KeyStateOutcome, Error> {
        const OP: &str = "change key state";
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let err = |e| Error::db(OP, e);
        let mut tx = self.pool.begin().await.map_err(err)?;
        // The chain lock first, as every append takes it: two nodes changing the same key
        // serialise here, and the second sees the first's row.
        sqlx::query("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let sql = format!("SELECT {SUSPENSION_COLUMNS} FROM key_suspensions WHERE label = $1");
        let existing = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(op.label())
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?
            .map(|r| decode_suspension!(&r).map_err(err))
            .transpose()?;
        if let Some(unchanged) = op.unchanged(existing) {
            return Ok(unchanged);
        }
        let receipt = append_rows(&mut tx, std::slice::from_ref(&audit), OP)
            .await?
            .pop()
            .ok_or_else(|| Error::Corrupt {
                seq: 0,
                reason: "no receipt for the audit record".into(),
            })?;
        match &op {
            KeyStateOp::Suspend(s) => sqlx::query(INSERT_SUSPENSION)
                .bind(&s.label)
                .bind(&s.reason)
                .bind(&s.suspended_by)
                .bind(s.suspended_at_ns)
                .bind(&s.node_id)
                .bind(to_i64(receipt.seq, "sequence number")?),
            KeyStateOp::Resume { label } => sqlx::query(DELETE_SUSPENSION).bind(label),
        }
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(KeyStateOutcome::Changed(receipt))
    }

    async fn reserve(&self, name: &str, n: u64, node_id: &str, now_ns: i64) -> Result<u64, Error> {
        const OP: &str = "reserve serials";
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let err = |e| Error::db(OP, e);
        let n_i = to_i64(n, "serial block size")?;
        let mut tx = self.pool.begin().await.map_err(err)?;
        // The one atomic statement: creates the counter at 1 or advances it under the
        // counter row's lock, refusing to pass i64::MAX.
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

/// Chains `records` after the head and inserts them, in the caller's transaction: the
/// chain-head row is locked first, so the batches of every node queue here.
async fn append_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    records: &[PreparedRecord],
    op: &'static str,
) -> Result<Vec<Receipt>, Error> {
    let err = |e| Error::db(op, e);
    let row = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE")
        .fetch_optional(&mut **tx)
        .await
        .map_err(err)?
        .ok_or_else(|| Error::Corrupt {
            seq: 0,
            reason: "chain_head row is missing".into(),
        })?;
    let head = decode_head(row.try_get(0).map_err(err)?, row.try_get(1).map_err(err)?)?;
    let (new_head, receipts) = chain_batch(head, records)?;
    let mut seqs = Vec::with_capacity(records.len());
    for rc in &receipts {
        seqs.push(to_i64(rc.seq, "sequence number")?);
    }
    let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    let serials: Vec<&[u8]> = records.iter().map(|r| r.serial.as_slice()).collect();
    let objects: Vec<&[u8]> = records.iter().map(|r| r.object_hash.as_slice()).collect();
    let requests: Vec<&[u8]> = records.iter().map(|r| r.request_hash.as_slice()).collect();
    let policies: Vec<&str> = records.iter().map(|r| r.policy.as_str()).collect();
    let clients: Vec<&str> = records.iter().map(|r| r.client.as_str()).collect();
    let times: Vec<i64> = records.iter().map(|r| r.issued_at_ns).collect();
    let nodes: Vec<&str> = records.iter().map(|r| &*r.node_id).collect();
    let tokens: Vec<Option<&[u8]>> = records.iter().map(|r| r.token.as_deref()).collect();
    let chains: Vec<&[u8]> = receipts.iter().map(|r| r.chain_hash.as_slice()).collect();
    sqlx::query(
        "INSERT INTO log_records (seq, kind, serial, object_hash, request_hash, policy, \
         client, issued_at_ns, node_id, token, chain_hash) \
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::bytea[], $4::bytea[], \
         $5::bytea[], $6::text[], $7::text[], $8::int8[], $9::text[], $10::bytea[], \
         $11::bytea[])",
    )
    .bind(seqs)
    .bind(kinds)
    .bind(serials)
    .bind(objects)
    .bind(requests)
    .bind(policies)
    .bind(clients)
    .bind(times)
    .bind(nodes)
    .bind(tokens)
    .bind(chains)
    .execute(&mut **tx)
    .await
    .map_err(err)?;
    sqlx::query("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(to_i64(new_head.seq, "sequence number")?)
        .bind(new_head.hash.as_slice())
        .execute(&mut **tx)
        .await
        .map_err(err)?;
    Ok(receipts)
}

/// The pool both opens share.
async fn connect(
    opts: PgConnectOptions,
    target: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    db_timeout: Duration,
) -> Result<PgPool, Error> {
    // Let the server abort a statement or lock wait that runs too long (a stuck node
    // holding the chain lock), so the transaction ends cleanly with an error before
    // the writer's own commit timeout has to abandon it mid-protocol.
    let ms = db_timeout.as_millis().max(1);
    let opts = opts.options([
        ("lock_timeout", format!("{ms}ms")),
        ("statement_timeout", format!("{ms}ms")),
    ]);
    PgPoolOptions::new()
        // One connection writes (the log writer); the others serve readers.
        .max_connections(max_connections.max(2))
        .acquire_timeout(acquire_timeout)
        .connect_with(opts)
        .await
        .map_err(|e| Error::Connect {
            target: target.to_owned(),
            source: e.into(),
        })
}

impl LogBackend for PgBackend {
    fn append_batch(&self, records: Arc<[PreparedRecord]>) -> BoxFut<'_, Vec<Receipt>> {
        Box::pin(async move { self.append(&records).await })
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
                 WHERE seq > $1 AND ($2::int8 IS NULL OR seq <= $2) \
                 AND ($3::int8 IS NULL OR issued_at_ns >= $3) \
                 AND ($4::int8 IS NULL OR issued_at_ns <= $4) \
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
                 WHERE serial = $1 AND ($2::text IS NULL OR kind = $2) ORDER BY seq"
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

    fn change_key_state(
        &self,
        op: KeyStateOp,
        audit: PreparedRecord,
    ) -> BoxFut<'_, KeyStateOutcome> {
        Box::pin(self.change_state(op, audit))
    }

    fn key_suspensions(&self) -> BoxFut<'_, Vec<RawSuspension>> {
        Box::pin(async move { read_key_suspensions!(&self.pool) })
    }

    fn batcher_lock(&self) -> BoxFut<'_, Option<crate::BatcherLock>> {
        Box::pin(self.advisory_lock(BATCHER_LOCK_KEY))
    }

    fn renewal(&self) -> &dyn super::renewal::RenewalBackend {
        self
    }

    fn renewal_lock(&self) -> BoxFut<'_, Option<crate::BatcherLock>> {
        Box::pin(self.advisory_lock(RENEWAL_LOCK_KEY))
    }
}

impl PgBackend {
    /// `pg_try_advisory_lock(key)` on a session of its own (see
    /// [`crate::Store::batcher_lock`]).
    async fn advisory_lock(&self, key: i64) -> Result<Option<crate::BatcherLock>, Error> {
        use sqlx::Connection as _;
        let err = |e| Error::db("take an advisory lock", e);
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        // A session of its own, outside the pool: the lock lives exactly as long as
        // it, and the pool's idle reaping can never end it behind our back.
        let opts = self.pool.connect_options();
        let mut conn = sqlx::PgConnection::connect_with(&opts).await.map_err(err)?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut conn)
            .await
            .map_err(err)?;
        if !got {
            let _ = conn.close().await;
            return Ok(None);
        }
        Ok(Some(crate::BatcherLock {
            inner: crate::anchoring::BatcherLockInner::Postgres(conn, key),
        }))
    }
}

/// The advisory lock key of the one batcher per database ("hanko-ba" in ASCII).
const BATCHER_LOCK_KEY: i64 = 0x68616e6b6f2d6261;
/// The advisory lock key of the one renewal scheduler per database ("hanko-re").
const RENEWAL_LOCK_KEY: i64 = 0x68616e6b6f2d7265;

/// Whether this session still holds advisory lock `key`; false when the session is gone.
pub(crate) async fn advisory_lock_held(conn: &mut sqlx::PgConnection, key: i64) -> bool {
    let held: Result<bool, _> = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
         AND pid = pg_backend_pid() AND granted \
         AND ((classid::int8 << 32) | objid::int8) = $1)",
    )
    .bind(key)
    .fetch_one(conn)
    .await;
    held.unwrap_or(false)
}

/// Unlocks `key` and closes its session (closing alone would release it too).
pub(crate) async fn advisory_unlock(mut conn: sqlx::PgConnection, key: i64) {
    use sqlx::Connection as _;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
}

super::anchoring::impl_anchor_backend!(PgBackend, |pool| pool.begin());
super::renewal::impl_renewal_backend!(PgBackend, |pool| pool.begin());
