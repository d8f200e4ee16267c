//! Integration tests of the issuance log, each scenario run against SQLite (a fresh file)
//! and a real PostgreSQL (a fresh database, dropped afterwards), like ripgrep's `rgtest!`.
//!
//! PostgreSQL: `HANKO_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! must reach a server where that user may CREATE DATABASE. If none is reachable the
//! PostgreSQL half of every scenario FAILS, unless `HANKO_SKIP_POSTGRES=1` is set.
#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_store::{
    BackendKind, BadReason, Error, ExportRange, NewRecord, RecordKind, Store, StoreOptions,
    Upstream, serial_to_bytes,
};
use sqlx::Connection as _;

// ---------------------------------------------------------------------------------------
// Harness

const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh database for one test: an SQLite file in a temporary directory, or a PostgreSQL
/// database created for the test and dropped (WITH FORCE) when this value is dropped, also
/// when the test panics.
struct TestDb {
    kind: BackendKind,
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>, // (admin url, database name)
}

impl TestDb {
    fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("data").join("issuance-log.sqlite");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        TestDb {
            kind: BackendKind::Sqlite,
            url: format!("sqlite://{}?mode=rwc", path.display()),
            _dir: Some(dir),
            pg_drop: None,
        }
    }

    /// `None` only when PostgreSQL is unreachable and HANKO_SKIP_POSTGRES=1.
    async fn postgres() -> Option<TestDb> {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = std::env::var("HANKO_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.to_owned());
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("HANKO_SKIP_POSTGRES").as_deref() == Ok("1") {
                    eprintln!("PostgreSQL unreachable ({e}); skipped (HANKO_SKIP_POSTGRES=1)");
                    return None;
                }
                panic!(
                    "PostgreSQL test database unreachable at {}: {e}. Start PostgreSQL \
                     (trust auth, user postgres) or set HANKO_SKIP_POSTGRES=1 to skip.",
                    hanko_store::redact_url(&admin)
                );
            }
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "hanko_store_t{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        Some(TestDb {
            kind: BackendKind::Postgres,
            url: format!("{base}/{name}"),
            _dir: None,
            pg_drop: Some((admin, name)),
        })
    }

    async fn open(&self, opts: StoreOptions) -> Store {
        let s = Store::open(&self.url, opts).await.unwrap();
        assert_eq!(s.backend_kind(), self.kind);
        s
    }

    /// Runs raw SQL behind the store's back (tampering, fault injection).
    async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.kind {
            BackendKind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
            _ => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }

    /// Another connection takes the lock every batch needs (SQLite: the write lock;
    /// PostgreSQL: the chain-head row, as a stuck node would) until the value is dropped.
    async fn hold_write_lock(&self) -> Box<dyn std::any::Any + Send> {
        if self.is_pg() {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql("BEGIN; SELECT * FROM chain_head FOR UPDATE;")
                .execute(&mut c)
                .await
                .unwrap();
            Box::new(c)
        } else {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            Box::new(c)
        }
    }

    /// Runs raw SQL behind the store's back; the database's answer.
    async fn try_exec(&self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if self.is_pg() {
            let mut c = sqlx::PgConnection::connect(&self.url).await?;
            sqlx::raw_sql(sql).execute(&mut c).await.map(drop)
        } else {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
            sqlx::raw_sql("PRAGMA foreign_keys = ON")
                .execute(&mut c)
                .await?;
            sqlx::raw_sql(sql).execute(&mut c).await.map(drop)
        }
    }

    /// One integer from raw SQL.
    async fn count(&self, sql: &'static str) -> i64 {
        match self.kind {
            BackendKind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            _ => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        }
    }

    /// The PostgreSQL database's name (unique per test).
    fn name(&self) -> &str {
        &self.pg_drop.as_ref().unwrap().1
    }

    fn is_pg(&self) -> bool {
        self.kind == BackendKind::Postgres
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg_drop.take() else {
            return;
        };
        // Drop runs outside async context; use a private runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                }
            });
        })
        .join();
    }
}

/// Runs scenario `$name(TestDb)` once on SQLite and once on PostgreSQL.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::TestDb::sqlite()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = super::TestDb::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}

fn record(serial: u64, client: &str) -> NewRecord {
    let token = format!("token #{serial} for {client}").into_bytes();
    NewRecord {
        kind: RecordKind::Timestamp,
        serial: serial_to_bytes(serial),
        object_hash: NewRecord::object_hash_of(&token),
        request_hash: vec![(serial % 251) as u8; 32],
        policy: "1.3.6.1.4.1.99999.1".into(),
        client: client.into(),
        issued_at: UNIX_EPOCH + Duration::from_nanos(1_795_000_000_123_456_789 + serial),
        token: Some(token),
    }
}

/// A statement failed in the database while the store was doing `op` (PostgreSQL and the
/// SQLite reader pool report through sqlx, the SQLite writer thread through rusqlite).
fn is_db_error(e: &Error, want: &str) -> bool {
    match e {
        Error::Database { op, .. } | Error::Sqlite { op, .. } => *op == want,
        _ => false,
    }
}

async fn fill(store: &Store, n: u64) {
    for i in 1..=n {
        store.append(record(i, "alice")).await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Appending, reading back, exporting

both!(append_read_export);
async fn append_read_export(db: TestDb) {
    let store = db.open(StoreOptions::with_node_id("node-a")).await;
    let mut last = None;
    for i in 1..=12u64 {
        let r = store.append(record(i, "alice")).await.unwrap();
        assert_eq!(r.seq, i, "sequence numbers are gapless from 1");
        last = Some(r);
    }
    let head = store.head().await.unwrap();
    assert_eq!(head.seq, 12);
    assert_eq!(head.hash, last.unwrap().chain_hash);

    let got = store
        .get_by_serial(RecordKind::Timestamp, &serial_to_bytes(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.seq, 5);
    assert_eq!(got.node_id, "node-a");
    assert_eq!(got.token.as_deref(), record(5, "alice").token.as_deref());
    assert_eq!(
        got.issued_at(),
        record(5, "alice").issued_at,
        "ns precision kept"
    );
    assert!(
        store
            .get_by_serial(RecordKind::Seal, &serial_to_bytes(5))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.find_by_serial(&[5]).await.unwrap().len(), 1);

    let page = store.read_range(10, 100).await.unwrap();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![11, 12]);

    let report = store.verify_chain().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.rows_checked, 12);

    let all = store.export_lines(ExportRange::All, true).await.unwrap();
    assert_eq!(all.len(), 12);
    let first: serde_json::Value = serde_json::from_str(&all[0]).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["kind"], "timestamp");
    assert_eq!(first["serial"], "01");
    assert_eq!(first["client"], "alice");
    // 1_795_000_000.123456790 s (RFC 3339, trailing fraction zeros trimmed).
    assert_eq!(first["issued_at"], "2026-11-18T11:06:40.12345679Z");
    assert_eq!(first["issued_at_ns"], 1_795_000_000_123_456_790i64);
    assert!(first["token"].is_string());
    let no_tokens = store.export_lines(ExportRange::All, false).await.unwrap();
    assert!(no_tokens.iter().all(|l| !l.contains("\"token\"")));

    let seq = store
        .export_lines(ExportRange::Seq { from: 3, to: 5 }, false)
        .await
        .unwrap();
    let seqs: Vec<i64> = seq
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![3, 4, 5]);

    let t = |i: u64| UNIX_EPOCH + Duration::from_nanos(1_795_000_000_123_456_789 + i);
    let by_time = store
        .export_lines(
            ExportRange::Time {
                from: t(7),
                to: t(9),
            },
            false,
        )
        .await
        .unwrap();
    assert_eq!(by_time.len(), 3);
    store.close().await;
}

both!(tokens_not_kept);
async fn tokens_not_kept(db: TestDb) {
    let mut opts = StoreOptions::with_node_id("node-a");
    opts.keep_tokens = false;
    let store = db.open(opts).await;
    fill(&store, 3).await;
    let r = store.read_range(0, 10).await.unwrap();
    assert!(r.iter().all(|r| r.token.is_none()));
    assert_eq!(r[0].object_hash, record(1, "alice").object_hash);
    assert!(store.verify_chain().await.unwrap().is_ok());
    assert_eq!(
        db.count("SELECT COUNT(*) FROM log_records WHERE token IS NOT NULL")
            .await,
        0
    );
}

both!(invalid_records_refused_alone);
async fn invalid_records_refused_alone(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    let mut wrong_hash = record(1, "x");
    wrong_hash.object_hash = [0; 32];
    let mut empty_serial = record(2, "x");
    empty_serial.serial.clear();
    let mut pre_epoch = record(3, "x");
    pre_epoch.issued_at = UNIX_EPOCH - Duration::from_secs(1);
    for r in [wrong_hash, empty_serial, pre_epoch] {
        let e = store.append(r).await.unwrap_err();
        assert!(matches!(e, Error::InvalidRecord(_)), "{e}");
        assert!(!e.is_retryable());
    }
    assert_eq!(store.head().await.unwrap().seq, 0);
    assert_eq!(store.append(record(4, "x")).await.unwrap().seq, 1);
}

both!(duplicate_serial_refused);
async fn duplicate_serial_refused(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    store.append(record(7, "a")).await.unwrap();
    let e = store.append(record(7, "b")).await.unwrap_err();
    assert!(matches!(e, Error::DuplicateSerial { .. }), "{e}");
    assert!(!e.is_retryable());
    // Same serial, other kind: allowed (unique per kind).
    let mut seal = record(7, "c");
    seal.kind = RecordKind::Seal;
    assert_eq!(store.append(seal).await.unwrap().seq, 2);
    assert!(store.verify_chain().await.unwrap().is_ok());
    assert_eq!(store.writer_stats().failed_records, 1);
}

// ---------------------------------------------------------------------------------------
// Group commit

both!(group_commit_batches_under_concurrency);
async fn group_commit_batches_under_concurrency(db: TestDb) {
    let store = db.open(StoreOptions::with_node_id("node-a")).await;
    let n = 600u64;
    let mut tasks = Vec::new();
    for i in 1..=n {
        let s = store.clone();
        tasks.push(tokio::spawn(
            async move { s.append(record(i, "load")).await },
        ));
    }
    let mut seqs = HashSet::new();
    for t in tasks {
        seqs.insert(t.await.unwrap().unwrap().seq);
    }
    assert_eq!(seqs, (1..=n).collect::<HashSet<_>>());
    let stats = store.writer_stats();
    eprintln!(
        "{:?} group commit: {} records in {} batches, mean {:.1}, max {}",
        db.kind,
        stats.records,
        stats.batches,
        stats.mean_batch(),
        stats.max_batch
    );
    assert_eq!(stats.records, n);
    assert!(stats.max_batch > 1, "no batching under load: {stats:?}");
    assert!(stats.batches < n, "{stats:?}");
    let report = store.verify_chain().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.rows_checked, n);
}

both!(group_commit_closed_loop_clients);
async fn group_commit_closed_loop_clients(db: TestDb) {
    // Closer to a server: 32 clients, each waiting for its record before sending the next.
    // Batches form only because records arrive while the previous commit is in flight.
    let store = db.open(StoreOptions::with_node_id("node-a")).await;
    let (clients, each) = (32u64, 25u64);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                s.append(record(1 + c * each + i, "client")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let stats = store.writer_stats();
    eprintln!(
        "{:?} closed loop, {clients} clients: {} records in {} batches, mean {:.1}, max {}, \
         {:.0} records/s",
        db.kind,
        stats.records,
        stats.batches,
        stats.mean_batch(),
        stats.max_batch,
        stats.records as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(stats.records, clients * each);
    assert!(stats.max_batch > 1, "no batching under load: {stats:?}");
    assert!(store.verify_chain().await.unwrap().is_ok());
}

/// An upstream (the server's signing pools) whose busyness the test sets.
#[derive(Debug, Default)]
struct TestUpstream(AtomicBool);

impl Upstream for TestUpstream {
    fn busy(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Far longer than any test: a record that waited for the whole linger would hang it.
const HOUR: Duration = Duration::from_secs(3600);
/// Bound on operations that must not wait for a linger (generous: slow CI machines).
const PROMPTLY: Duration = Duration::from_secs(30);

both!(linger_holds_a_batch_only_while_upstream_busy);
async fn linger_holds_a_batch_only_while_upstream_busy(db: TestDb) {
    let upstream = Arc::new(TestUpstream::default());
    let mut opts = StoreOptions::with_node_id("node-a");
    opts.linger = HOUR;
    opts.upstream = Some(upstream.clone());
    let store = db.open(opts).await;

    // Upstream idle: committed at once, the hour-long linger is not waited for.
    tokio::time::timeout(PROMPTLY, store.append(record(1, "alice")))
        .await
        .expect("an idle upstream must not make a record wait")
        .unwrap();

    // Upstream busy: the writer holds the next batch open.
    upstream.0.store(true, Ordering::SeqCst);
    let s = store.clone();
    let held = tokio::spawn(async move { s.append(record(2, "alice")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "committed while the upstream was busy");

    // The upstream drains: the next append releases the batch, both records in one commit.
    upstream.0.store(false, Ordering::SeqCst);
    let third = tokio::time::timeout(PROMPTLY, store.append(record(3, "alice")))
        .await
        .expect("a drained upstream must release the batch")
        .unwrap();
    let second = tokio::time::timeout(PROMPTLY, held)
        .await
        .expect("the held record must be committed with the releasing one")
        .unwrap()
        .unwrap();
    assert_eq!((second.seq, third.seq), (2, 3));
    let stats = store.writer_stats();
    assert_eq!(
        (stats.records, stats.batches, stats.max_batch),
        (3, 2, 2),
        "{stats:?}"
    );
    assert!(store.verify_chain().await.unwrap().is_ok());
}

both!(linger_is_bounded_while_upstream_stays_busy);
async fn linger_is_bounded_while_upstream_stays_busy(db: TestDb) {
    let mut opts = StoreOptions::with_node_id("node-a");
    opts.linger = Duration::from_millis(200);
    opts.upstream = Some(Arc::new(TestUpstream(AtomicBool::new(true))));
    let store = db.open(opts).await;
    for i in 1..=3 {
        tokio::time::timeout(PROMPTLY, store.append(record(i, "alice")))
            .await
            .expect("the linger is an upper bound even while the upstream is busy")
            .unwrap();
    }
    assert_eq!(store.writer_stats().records, 3);
}

/// Busy, with a shallow queue: it allows a linger of `bound` only.
#[derive(Debug)]
struct ShallowUpstream {
    bound: Duration,
}

impl Upstream for ShallowUpstream {
    fn busy(&self) -> bool {
        true
    }

    fn linger_bound(&self, _linger: Duration) -> Duration {
        self.bound
    }
}

both!(the_upstream_bounds_the_linger);
async fn the_upstream_bounds_the_linger(db: TestDb) {
    // Busy the whole time and the store's linger an hour: only the upstream's own bound
    // (a signer whose queue will be through in a moment) lets these records through.
    let mut opts = StoreOptions::with_node_id("node-a");
    opts.linger = HOUR;
    opts.upstream = Some(Arc::new(ShallowUpstream {
        bound: Duration::from_millis(1),
    }));
    let store = db.open(opts).await;
    for i in 1..=3 {
        tokio::time::timeout(PROMPTLY, store.append(record(i, "alice")))
            .await
            .expect("the upstream's bound must end the linger")
            .unwrap();
    }
    assert_eq!(store.writer_stats().records, 3);
    assert!(store.verify_chain().await.unwrap().is_ok());
}

both!(failed_batch_fails_every_waiter_and_records_nothing);
async fn failed_batch_fails_every_waiter_and_records_nothing(db: TestDb) {
    // A trigger refuses one record. To put 20 appends into one batch deterministically,
    // the writer is held up on a first record while the 20 queue behind it.
    let store = db.open(StoreOptions::default()).await;
    if db.is_pg() {
        db.exec(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.client = 'poison' THEN RAISE EXCEPTION 'poisoned record'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER poison BEFORE INSERT ON log_records \
             FOR EACH ROW EXECUTE FUNCTION poison();",
        )
        .await;
    } else {
        db.exec(
            "CREATE TRIGGER poison BEFORE INSERT ON log_records WHEN NEW.client = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned record'); END;",
        )
        .await;
    }
    let blocker = db.hold_write_lock().await;
    let first = {
        let s = store.clone();
        tokio::spawn(async move { s.append(record(100, "first")).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut tasks = Vec::new();
    for i in 1..=20u64 {
        let s = store.clone();
        let client = if i == 10 { "poison" } else { "innocent" };
        tasks.push(tokio::spawn(
            async move { s.append(record(i, client)).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(blocker);
    assert_eq!(first.await.unwrap().unwrap().seq, 1);
    for t in tasks {
        let e = t.await.unwrap().unwrap_err();
        assert!(is_db_error(&e, "append batch"), "{e:?}");
        assert!(e.to_string().contains("poisoned record"), "{e}");
    }
    let stats = store.writer_stats();
    assert_eq!(stats.failed_records, 20, "{stats:?}");
    assert_eq!(stats.failed_batches, 1, "{stats:?}");
    assert_eq!(stats.records, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM log_records").await, 1);
    assert_eq!(store.head().await.unwrap().seq, 1, "head untouched");

    // The store recovers: the next batch continues the chain.
    if db.is_pg() {
        db.exec("DROP TRIGGER poison ON log_records").await;
    } else {
        db.exec("DROP TRIGGER poison").await;
    }
    assert_eq!(store.append(record(1, "after")).await.unwrap().seq, 2);
    assert!(store.verify_chain().await.unwrap().is_ok());
}

both!(hung_database_times_out_then_recovers);
async fn hung_database_times_out_then_recovers(db: TestDb) {
    let mut opts = StoreOptions::default();
    opts.commit_timeout = Duration::from_millis(500);
    let store = db.open(opts).await;
    fill(&store, 1).await;
    let blocker = db.hold_write_lock().await;
    let started = std::time::Instant::now();
    let e = store.append(record(2, "x")).await.unwrap_err();
    // PostgreSQL aborts the lock wait itself (lock_timeout = 3/4 of commit_timeout);
    // SQLite's busy_timeout is longer here, so the writer's own timeout fires.
    if db.is_pg() {
        assert!(is_db_error(&e, "append batch"), "{e:?}");
        assert!(e.to_string().contains("timeout"), "{e}");
    } else {
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
    }
    assert!(e.is_retryable(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(blocker); // closing the connection releases its lock
    let mut seq = 0;
    for _ in 0..50 {
        match store.append(record(3, "x")).await {
            Ok(r) => {
                seq = r.seq;
                break;
            }
            Err(e) => assert!(e.is_retryable(), "{e}"),
        }
    }
    assert_eq!(seq, 2, "the timed-out record left nothing behind");
    assert!(store.verify_chain().await.unwrap().is_ok());
}

both!(storage_failure_is_an_error_for_every_request);
async fn storage_failure_is_an_error_for_every_request(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    fill(&store, 2).await;
    // The table disappears under the running store (with, on PostgreSQL, the anchoring
    // tables' foreign keys onto it).
    db.exec(if db.is_pg() {
        "DROP TABLE log_records CASCADE"
    } else {
        "DROP TABLE log_records"
    })
    .await;
    let mut tasks = Vec::new();
    for i in 10..40u64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.append(record(i, "x")).await }));
    }
    for t in tasks {
        let e = t.await.unwrap().unwrap_err();
        assert!(is_db_error(&e, "append batch"), "{e:?}");
    }
    assert_eq!(store.head().await.unwrap().seq, 2, "head untouched");
    assert!(store.writer_stats().failed_batches >= 1);
}

// ---------------------------------------------------------------------------------------
// Tamper evidence

async fn tampered(db: &TestDb, sql: &str) -> hanko_store::VerifyReport {
    let store = db.open(StoreOptions::default()).await;
    fill(&store, 20).await;
    assert!(store.verify_chain().await.unwrap().is_ok());
    db.exec(sql).await;
    let report = store.verify_chain().await.unwrap();
    eprintln!("{:?}: {}", db.kind, report.first_bad.as_ref().unwrap());
    report
}

both!(tamper_edit_detected);
async fn tamper_edit_detected(db: TestDb) {
    let r = tampered(
        &db,
        "UPDATE log_records SET client = 'mallory' WHERE seq = 7",
    )
    .await;
    let bad = r.first_bad.unwrap();
    assert_eq!((bad.seq, bad.reason), (7, BadReason::ChainHashMismatch));
    assert_eq!(r.rows_checked, 6);
}

both!(tamper_edit_with_recomputed_hash_detected_at_next_row);
async fn tamper_edit_with_recomputed_hash_detected_at_next_row(db: TestDb) {
    // The forger edits row 7 AND stores a correctly recomputed chain hash for it: row 7
    // then verifies, but row 8 no longer chains from it.
    let store = db.open(StoreOptions::default()).await;
    fill(&store, 20).await;
    let rows = store.read_range(5, 2).await.unwrap();
    let (row6, row7) = (&rows[0], &rows[1]);
    let forged = hanko_store::chain::chain_hash(
        &row6.chain_hash,
        &hanko_store::chain::ChainInput {
            seq: 7,
            kind: row7.kind.as_str(),
            serial: &row7.serial,
            object_hash: &row7.object_hash,
            request_hash: &row7.request_hash,
            policy: &row7.policy,
            client: "mallory",
            issued_at_ns: row7.issued_at_ns,
            node_id: &row7.node_id,
        },
    );
    let literal = if db.is_pg() {
        format!("'\\x{}'::bytea", hex::encode(forged))
    } else {
        format!("x'{}'", hex::encode(forged))
    };
    db.exec(&format!(
        "UPDATE log_records SET client = 'mallory', chain_hash = {literal} WHERE seq = 7"
    ))
    .await;
    let r = store.verify_chain().await.unwrap();
    let bad = r.first_bad.unwrap();
    assert_eq!((bad.seq, bad.reason), (8, BadReason::ChainHashMismatch));
    assert_eq!(r.rows_checked, 7);
}

both!(tamper_delete_detected);
async fn tamper_delete_detected(db: TestDb) {
    let r = tampered(&db, "DELETE FROM log_records WHERE seq = 7").await;
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.seq, 7);
    assert_eq!(
        bad.reason,
        BadReason::Missing {
            next_present: Some(8)
        }
    );
    assert!(bad.to_string().contains("row 7"), "{bad}");
}

both!(tamper_delete_last_row_detected);
async fn tamper_delete_last_row_detected(db: TestDb) {
    let r = tampered(&db, "DELETE FROM log_records WHERE seq = 20").await;
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.seq, 20);
    assert_eq!(bad.reason, BadReason::Missing { next_present: None });
}

both!(tamper_token_detected);
async fn tamper_token_detected(db: TestDb) {
    let sql = if db.is_pg() {
        "UPDATE log_records SET token = '\\x00'::bytea WHERE seq = 3"
    } else {
        "UPDATE log_records SET token = x'00' WHERE seq = 3"
    };
    let r = tampered(&db, sql).await;
    let bad = r.first_bad.unwrap();
    assert_eq!((bad.seq, bad.reason), (3, BadReason::TokenMismatch));
}

both!(tamper_head_detected);
async fn tamper_head_detected(db: TestDb) {
    let r = tampered(
        &db,
        "UPDATE chain_head SET hash = (SELECT chain_hash FROM log_records WHERE seq = 1)",
    )
    .await;
    let bad = r.first_bad.unwrap();
    assert_eq!((bad.seq, bad.reason), (20, BadReason::HeadMismatch));
}

both!(export_verifies_independently);
async fn export_verifies_independently(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    fill(&store, 25).await;
    let head = store.head().await.unwrap();
    let run = |lines: Vec<String>, extra: Vec<String>| {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("export.jsonl");
        std::fs::write(&f, lines.join("\n") + "\n").unwrap();
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tools/verify_export.py"
            ))
            .args(extra)
            .arg(&f)
            .output()
            .expect("python3 must be installed for this test");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let lines = store.export_lines(ExportRange::All, true).await.unwrap();
    let (code, out) = run(lines, vec!["--expect-head".into(), hex::encode(head.hash)]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("OK 25 rows"), "{out}");

    // A partial export verifies from the previous row's hash.
    let prev = store.read_range(9, 1).await.unwrap()[0].chain_hash;
    let part = store
        .export_lines(ExportRange::Seq { from: 11, to: 25 }, false)
        .await
        .unwrap();
    let (code, out) = run(part, vec!["--prev".into(), hex::encode(prev)]);
    assert_eq!(code, Some(0), "{out}");

    db.exec("UPDATE log_records SET policy = '1.2.3' WHERE seq = 13")
        .await;
    let lines = store.export_lines(ExportRange::All, true).await.unwrap();
    let (code, out) = run(lines, vec![]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("BAD row 13"), "{out}");
}

// ---------------------------------------------------------------------------------------
// Serials

both!(serial_ranges_never_overlap_or_reuse);
async fn serial_ranges_never_overlap_or_reuse(db: TestDb) {
    let store = db.open(StoreOptions::with_node_id("node-a")).await;
    let a = store.reserve_serials("timestamp", 10).await.unwrap();
    assert_eq!((a.first, a.last()), (1, 10));
    let b = store.reserve_serials("timestamp", 5).await.unwrap();
    assert_eq!((b.first, b.last()), (11, 15));
    let other = store.reserve_serials("seal", 3).await.unwrap();
    assert_eq!(other.first, 1, "counters are independent");
    assert!(matches!(
        store.reserve_serials("timestamp", 0).await,
        Err(Error::InvalidArgument(_))
    ));

    // A node takes a block of 100, uses 3, and crashes (the allocator is dropped).
    let alloc = store.serial_allocator("timestamp", 100);
    let used: Vec<u64> = vec![
        alloc.next().await.unwrap(),
        alloc.next().await.unwrap(),
        alloc.next().await.unwrap(),
    ];
    assert_eq!(used, vec![16, 17, 18]);
    drop(alloc);
    store.close().await;
    // After the restart the rest of that block (19..=115) is skipped, never reused.
    let store = db.open(StoreOptions::with_node_id("node-a")).await;
    let alloc = store.serial_allocator("timestamp", 100);
    assert_eq!(alloc.next().await.unwrap(), 116);
    assert_eq!(alloc.next_bytes().await.unwrap(), vec![117]);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM serial_ranges WHERE name = 'timestamp'")
            .await,
        4
    );
}

both!(the_next_serial_block_is_reserved_ahead);
/// The next block is reserved ahead once half of the current one is handed out, so no
/// caller waits for a reservation while serials are left; serials still only grow.
async fn the_next_serial_block_is_reserved_ahead(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    let ranges = || db.count("SELECT COUNT(*) FROM serial_ranges WHERE name = 'timestamp'");
    let alloc = store.serial_allocator("timestamp", 4);
    assert_eq!(alloc.next().await.unwrap(), 1);
    assert_eq!(
        ranges().await,
        1,
        "half of the block is left: nothing reserved ahead"
    );
    assert_eq!(alloc.next().await.unwrap(), 2);
    // Half handed out: the spare block 5..=8 is being reserved by a task of its own.
    wait_reserved_ahead(&alloc).await;
    assert_eq!(ranges().await, 2);
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(alloc.next().await.unwrap());
    }
    assert_eq!(
        got,
        vec![3, 4, 5, 6, 7, 8],
        "the spare block follows the first"
    );
    wait_reserved_ahead(&alloc).await;
    assert_eq!(ranges().await, 3);
    assert_eq!(alloc.next().await.unwrap(), 9);
}

async fn wait_reserved_ahead(alloc: &hanko_store::SerialAllocator) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !alloc.reserved_ahead().await {
        assert!(
            std::time::Instant::now() < deadline,
            "no block reserved ahead"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

both!(serial_counter_exhaustion_refused);
async fn serial_counter_exhaustion_refused(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    store.reserve_serials("timestamp", 1).await.unwrap();
    db.exec("UPDATE serial_counters SET next = 9223372036854775000 WHERE name = 'timestamp'")
        .await;
    let e = store.reserve_serials("timestamp", 1000).await.unwrap_err();
    assert!(matches!(e, Error::SerialsExhausted { .. }), "{e}");
    let r = store.reserve_serials("timestamp", 100).await.unwrap();
    assert_eq!(r.last(), 9223372036854775099);
}

both!(two_nodes_one_database_no_duplicate_serials);
async fn two_nodes_one_database_no_duplicate_serials(db: TestDb) {
    // Two Store instances = two nodes, each with its own writer, pool and allocator.
    let a = db.open(StoreOptions::with_node_id("node-a")).await;
    let b = db.open(StoreOptions::with_node_id("node-b")).await;
    let alloc_a = Arc::new(a.serial_allocator("timestamp", 7));
    let alloc_b = Arc::new(b.serial_allocator("timestamp", 7));
    let per_node = 400u64;
    let mut tasks = Vec::new();
    for (store, alloc) in [(a.clone(), alloc_a), (b.clone(), alloc_b)] {
        for _ in 0..per_node {
            let store = store.clone();
            let alloc = alloc.clone();
            tasks.push(tokio::spawn(async move {
                let serial = alloc.next().await?;
                store
                    .append(record(serial, "load"))
                    .await
                    .map(|r| (serial, r.seq))
            }));
        }
    }
    let mut serials = HashSet::new();
    let mut seqs = HashSet::new();
    for t in tasks {
        let (serial, seq) = t.await.unwrap().unwrap();
        assert!(serials.insert(serial), "serial {serial} issued twice");
        assert!(seqs.insert(seq), "sequence number {seq} twice");
    }
    assert_eq!(serials.len() as u64, 2 * per_node);
    assert_eq!(seqs, (1..=2 * per_node).collect::<HashSet<_>>());
    assert_eq!(
        db.count("SELECT COUNT(DISTINCT serial) FROM log_records")
            .await,
        i64::try_from(2 * per_node).unwrap()
    );
    assert!(
        db.count("SELECT COUNT(*) FROM log_records WHERE node_id = 'node-a'")
            .await
            > 0
    );
    assert!(
        db.count("SELECT COUNT(*) FROM log_records WHERE node_id = 'node-b'")
            .await
            > 0
    );
    // One linear chain across both nodes.
    let report = a.verify_chain().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.rows_checked, 2 * per_node);
    eprintln!(
        "{:?} two nodes: node-a {:?}, node-b {:?}",
        db.kind,
        a.writer_stats(),
        b.writer_stats()
    );
}

// ---------------------------------------------------------------------------------------
// Lifecycle and errors

both!(close_drains_then_refuses);
async fn close_drains_then_refuses(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    let mut tasks = Vec::new();
    for i in 1..=50u64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.append(record(i, "x")).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    store.close().await;
    assert!(matches!(
        store.append(record(99, "x")).await,
        Err(Error::Closed)
    ));
    // Reopening continues the same chain.
    let store = db.open(StoreOptions::default()).await;
    assert_eq!(store.append(record(100, "x")).await.unwrap().seq, 51);
    assert!(store.verify_chain().await.unwrap().is_ok());
}

// ---------------------------------------------------------------------------------------
// Read-only opening (auditors)

both!(read_only_open_verifies_and_refuses_writes);
async fn read_only_open_verifies_and_refuses_writes(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    fill(&store, 25).await;
    store.close().await;

    // PostgreSQL: through a role that may only SELECT, as an auditor would get.
    let url = if db.is_pg() {
        let role = format!("{}_auditor", db.name());
        db.exec(&format!(
            "CREATE ROLE {role} LOGIN;              GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
        ))
        .await;
        let (scheme, rest) = db.url.split_once("://").unwrap();
        let host_db = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        format!("{scheme}://{role}@{host_db}")
    } else {
        db.url.clone()
    };
    let ro = Store::open_read_only(&url, StoreOptions::default())
        .await
        .unwrap();
    let report = ro.verify_chain().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.rows_checked, 25);
    let mut out = Vec::new();
    let n = ro.export(ExportRange::All, true, &mut out).await.unwrap();
    assert_eq!(n, 25);
    assert!(matches!(
        ro.append(record(26, "x")).await,
        Err(Error::ReadOnly)
    ));
    let e = ro
        .serial_allocator("timestamp", 10)
        .next_bytes()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ReadOnly), "{e:?}");
    ro.close().await;

    // The read-write role opening the same database afterwards sees nothing changed.
    let store = db.open(StoreOptions::default()).await;
    assert_eq!(store.head().await.unwrap().seq, 25);
    store.close().await;
    if db.is_pg() {
        let role = format!("{}_auditor", db.name());
        db.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
            .await;
    }
}

both!(read_only_open_refuses_an_unmigrated_database);
async fn read_only_open_refuses_an_unmigrated_database(db: TestDb) {
    // A database that exists but never held a Hanko log.
    db.exec("CREATE TABLE unrelated (x INTEGER)").await;
    let e = Store::open_read_only(&db.url, StoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Schema { .. }), "{e:?}");
    assert!(e.to_string().contains("hanko serve"), "{e}");
    // Nothing was created by the read-only open.
    assert_eq!(
        db.count("SELECT COUNT(*) FROM unrelated").await,
        0,
        "the database is untouched"
    );
}

#[tokio::test]
async fn in_memory_sqlite_refused() {
    for url in ["sqlite::memory:", "sqlite://log?mode=memory"] {
        let e = Store::open(url, StoreOptions::default()).await.unwrap_err();
        assert!(matches!(e, Error::InvalidUrl { .. }), "{url}: {e:?}");
    }
}

#[tokio::test]
async fn unreachable_postgres_error_hides_password() {
    let mut opts = StoreOptions::default();
    opts.acquire_timeout = Duration::from_secs(3);
    let e = Store::open(
        "postgres://hanko:hunter2@127.0.0.1:1/log?password=hunter2",
        opts,
    )
    .await
    .unwrap_err();
    assert!(e.is_retryable(), "connection refused is transient: {e:?}");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("postgres://hanko:***@127.0.0.1:1/log"),
        "{shown}"
    );
}

#[tokio::test]
async fn unknown_scheme_refused() {
    let e = Store::open("mysql://u:pw@h/db", StoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidUrl { .. }), "{e}");
    assert!(!e.to_string().contains("pw"), "{e}");
}

#[tokio::test]
async fn open_sqlite_creates_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("new-data-dir")
        .join(hanko_store::SQLITE_FILE_NAME);
    let store = Store::open_sqlite(&path, StoreOptions::default())
        .await
        .unwrap();
    store.append(record(1, "x")).await.unwrap();
    store.close().await;
    assert!(path.exists());
}

/// The writer's connection never checkpoints (`wal_autocheckpoint = 0`); the
/// checkpointer thread copies its commits into the database file while the store runs,
/// so the main file grows before the store is closed.
#[tokio::test]
async fn the_wal_is_checkpointed_off_the_writer_while_the_store_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(hanko_store::SQLITE_FILE_NAME);
    let store = Store::open_sqlite(&path, StoreOptions::default())
        .await
        .unwrap();
    let main_len = || std::fs::metadata(&path).unwrap().len();
    let before = main_len();
    for i in 1..=300 {
        store.append(record(i, &"c".repeat(200))).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while main_len() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint copied the 300 records into the database file ({before} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines = store.export_lines(ExportRange::All, false).await.unwrap();
    assert_eq!(lines.len(), 300);
    store.close().await;
}

// Merkle anchoring's batches and anchors (issue #15).
#[path = "log/anchoring.rs"]
mod anchoring;

// Archive objects and migration 4 (issue #16).
#[path = "log/archive.rs"]
mod archive;

// Evidence renewal's runs and chains, migration 5 (issue #16).
#[path = "log/renewal.rs"]
mod renewal;

// Audit events and key suspensions, migration 6 (issue #18).
#[path = "log/audit.rs"]
mod audit;
