//! The issuance log in the tests: fresh databases (an SQLite file, or a PostgreSQL
//! database dropped afterwards), raw SQL behind the server's back, `hanko log ...`, one dev
//! data directory shared by the tests that only need a token, `hanko serve --dev` over it
//! logging to a given database, and a load generator whose grants are checked against
//! the log.
//!
//! PostgreSQL: `HANKO_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! must let its user CREATE DATABASE. Unreachable means the test FAILS, unless
//! `HANKO_SKIP_POSTGRES=1` is set (the same rule as hanko-store's tests; CI never sets it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::Connection as _;

use crate::common::tsp::{imprint_request, post_timestamp};
use crate::common::{Server, dev_init, hanko, run, text};

const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A private current-thread runtime for the async bits of a sync test.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Which database a [`TestDb`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh issuance-log database for one test: an SQLite file in a temporary directory,
/// or a PostgreSQL database dropped (WITH FORCE) when this value is dropped, also on panic.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    /// Holds the SQLite file's directory (and anything else the test puts there).
    pub dir: tempfile::TempDir,
    pg_drop: Option<(String, String)>,
}

impl TestDb {
    pub fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite()),
            Backend::Postgres => TestDb::postgres(),
        }
    }

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuance-log.sqlite");
        TestDb {
            backend: Backend::Sqlite,
            url: format!("sqlite://{}?mode=rwc", path.display()),
            dir,
            pg_drop: None,
        }
    }

    /// `None` only when PostgreSQL is unreachable and `HANKO_SKIP_POSTGRES=1`.
    pub fn postgres() -> Option<TestDb> {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = std::env::var("HANKO_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.to_owned());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "hanko_server_t{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let created = block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await?;
            conn.close().await
        });
        if let Err(e) = created {
            if std::env::var("HANKO_SKIP_POSTGRES").as_deref() == Ok("1") {
                eprintln!("PostgreSQL unusable ({e}); SKIPPED (HANKO_SKIP_POSTGRES=1)");
                return None;
            }
            panic!(
                "PostgreSQL at {} is unusable: {e}. Start one (ops/test.sh does: trust auth, \
                 user postgres) or set HANKO_SKIP_POSTGRES=1 to skip deliberately.",
                hanko_store_redact(&admin)
            );
        }
        let base = admin.rsplit_once('/').unwrap().0;
        Some(TestDb {
            backend: Backend::Postgres,
            url: format!("{base}/{name}"),
            dir: tempfile::tempdir().unwrap(),
            pg_drop: Some((admin, name)),
        })
    }

    /// PostgreSQL only: a trigger makes every insert into the log fail ("refused by the
    /// test"), until [`TestDb::accept_log_rows`].
    pub fn refuse_log_rows(&self) {
        self.exec(
            "CREATE FUNCTION refuse_row() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_rows BEFORE INSERT ON log_records \
             FOR EACH ROW EXECUTE FUNCTION refuse_row();",
        );
    }

    /// Drops the trigger of [`TestDb::refuse_log_rows`].
    pub fn accept_log_rows(&self) {
        self.exec("DROP TRIGGER refuse_rows ON log_records;");
    }

    /// Runs raw SQL behind the server's back (tampering).
    pub fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        block_on(async {
            match self.backend {
                Backend::Sqlite => {
                    let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                    sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
                    c.close().await.unwrap();
                }
                Backend::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                    sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
                    c.close().await.unwrap();
                }
            }
        });
    }

    /// `hanko log <args> --database-url <this db>`.
    pub fn log(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = vec!["log"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &self.url]);
        run(&all)
    }

    /// `hanko log export --tokens`: records keyed by serial (hex). Audit records (their
    /// serials are of a counter of their own) are left out.
    pub fn export(&self) -> HashMap<String, serde_json::Value> {
        let out = self.log(&["export", "--tokens"]);
        assert!(out.status.success(), "{}", text(&out));
        let mut by_serial = HashMap::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["kind"] == "audit" {
                continue;
            }
            let serial = v["serial"].as_str().unwrap().to_owned();
            assert!(
                by_serial.insert(serial.clone(), v).is_none(),
                "serial {serial} appears twice in the log"
            );
        }
        by_serial
    }

    /// Asserts that `hanko log verify` passes; returns its stdout.
    pub fn assert_verifies(&self) -> String {
        let out = self.log(&["verify"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg_drop.take() else {
            return;
        };
        // Drop may run inside a panic; a private runtime on its own thread.
        let _ = std::thread::spawn(move || {
            block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                }
            })
        })
        .join();
    }
}

fn hanko_store_redact(url: &str) -> String {
    hanko_store::redact_url(url)
}

/// One dev data directory (`hanko dev-init` once per run) for the tests that need a token
/// but not a data directory of their own: each logs to its own [`TestDb`]. It lives
/// under the target directory, named after this process, so that two runs at once do
/// not share it; directories of runs that are gone are removed.
pub fn shared_dev_data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hanko-dev-data");
        std::fs::create_dir_all(&parent).unwrap();
        for entry in std::fs::read_dir(&parent).unwrap().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = parent.join(std::process::id().to_string());
        dev_init(&dir);
        dir
    })
}

/// A config file for `serve --dev --config`: the data directory's dev `hanko.toml`,
/// changed by `edit` (e.g. `[store] node_id`, `[[api_keys]]`), written to `dest`.
pub fn dev_config_with(
    data_dir: &Path,
    dest: &Path,
    edit: impl FnOnce(&mut toml::Table),
) -> PathBuf {
    let base = std::fs::read_to_string(data_dir.join("hanko.toml")).unwrap();
    let mut table: toml::Table = base.parse().unwrap();
    edit(&mut table);
    std::fs::write(dest, toml::to_string(&table).unwrap()).unwrap();
    dest.to_owned()
}

/// The `[store]` table of a config, created when missing.
pub fn store_table(t: &mut toml::Table) -> &mut toml::Table {
    t.entry("store")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap()
}

/// Turns anchoring off in a config: the own TSA's archive time-stamp of each batch (every
/// 5 s in dev) is a logged token and a commit of its own, which tests that count tokens,
/// log failures or commits must not meet at a random point of a slow run.
pub fn anchoring_off(t: &mut toml::Table) {
    let mut anchor = toml::Table::new();
    anchor.insert("enabled".into(), toml::Value::Boolean(false));
    t.insert("anchor".into(), toml::Value::Table(anchor));
}

/// Starts `hanko serve --dev` over `data_dir`, logging to `db`, with optional config.
pub fn start_dev_server(data_dir: &Path, db: &TestDb, config: Option<&Path>) -> Server {
    start_dev_server_with(hanko(), data_dir, db, config)
}

/// [`start_dev_server`] with a prepared command (e.g. another `RUST_LOG`).
pub fn start_dev_server_with(
    cmd: std::process::Command,
    data_dir: &Path,
    db: &TestDb,
    config: Option<&Path>,
) -> Server {
    let mut args = vec![
        "--dev",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--database-url",
        &db.url,
    ];
    if let Some(c) = config {
        args.extend_from_slice(&["--config", c.to_str().unwrap()]);
    }
    Server::start(cmd, &args)
}

/// `threads` client threads in closed loops until `stop`: each hands `send` one distinct
/// time-stamp request after another (SHA-256 imprint: `tag`, the thread, a counter).
pub fn clients(
    threads: usize,
    tag: u8,
    stop: &Arc<AtomicBool>,
    send: impl Fn(Vec<u8>) + Clone + Send + 'static,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads as u64)
        .map(|t| {
            let (stop, send) = (stop.clone(), send.clone());
            std::thread::spawn(move || {
                let mut i: u64 = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let mut imprint = [tag; 32];
                    imprint[..8].copy_from_slice(&t.to_be_bytes());
                    imprint[8..16].copy_from_slice(&i.to_be_bytes());
                    send(imprint_request(&imprint, (t << 40) | i));
                }
            })
        })
        .collect()
}

/// What a load run's clients received as granted tokens: (serial hex, token DER).
pub type Grants = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// `threads` clients POSTing distinct requests to `addr` in closed loops until `stop`.
/// Only complete HTTP 200 responses that carry a granted token are recorded.
pub struct Load {
    pub grants: Grants,
    pub stop: Arc<AtomicBool>,
    pub failures: Arc<AtomicUsize>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr, threads: usize, tag: u8) -> Load {
        let grants: Grants = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let (g, f) = (grants.clone(), failures.clone());
        let handles = clients(threads, tag, &stop, move |req| {
            match post_timestamp(addr, &req) {
                Some((serial, token, _)) => g.lock().unwrap().push((serial, token)),
                None => {
                    f.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        Load {
            grants,
            stop,
            failures,
            handles,
        }
    }

    /// Waits until at least `n` grants arrived (panics after `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.grants.lock().unwrap().len() < n {
            assert!(
                start.elapsed() < timeout,
                "only {} grants after {timeout:?} ({} failed requests)",
                self.grants.lock().unwrap().len(),
                self.failures.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the clients and returns every grant they received.
    pub fn finish(self) -> Vec<(String, Vec<u8>)> {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            h.join().unwrap();
        }
        std::mem::take(&mut *self.grants.lock().unwrap())
    }
}

/// Asserts every grant is in `log` (export keyed by serial) with exactly its token.
pub fn assert_logged(grants: &[(String, Vec<u8>)], log: &HashMap<String, serde_json::Value>) {
    use base64::Engine as _;
    for (serial, token) in grants {
        let rec = log
            .get(serial)
            .unwrap_or_else(|| panic!("granted serial {serial} is not in the log"));
        let stored = base64::engine::general_purpose::STANDARD
            .decode(rec["token"].as_str().expect("token kept"))
            .unwrap();
        assert!(
            &stored == token,
            "serial {serial}: the logged token differs from the one the client got"
        );
    }
}
