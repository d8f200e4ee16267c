//! Helpers of the `log_*` test binaries, on top of `integration/common.rs` (running the
//! binary, `Server`): fresh databases (SQLite file or a PostgreSQL database dropped
//! afterwards), raw SQL for tampering, `hanko log ...`, one dev data directory per test
//! binary, RFC 3161 requests and a minimal DER walk of the responses, and a load
//! generator.
//!
//! PostgreSQL: `HANKO_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! must let its user CREATE DATABASE. Unreachable means the test FAILS, unless
//! `HANKO_SKIP_POSTGRES=1` is set (the same rule as hanko-store's tests; CI never sets it).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::Connection as _;

use crate::common::{hanko, run, text};

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

    /// `hanko log export --tokens`: records keyed by serial (hex).
    pub fn export(&self) -> HashMap<String, serde_json::Value> {
        let out = self.log(&["export", "--tokens"]);
        assert!(out.status.success(), "{}", text(&out));
        let mut by_serial = HashMap::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
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

/// One dev data directory per test binary (`hanko dev-init` once per run), under the
/// target directory; made afresh by every run, so no state leaks from an earlier one.
pub fn dev_data_dir(binary: &str) -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("hanko-log-tests")
            .join(binary);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let out = run(&["dev-init", "--data-dir", dir.to_str().unwrap()]);
        assert!(out.status.success(), "dev-init: {}", text(&out));
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

/// Starts `hanko serve --dev` over `data_dir`, logging to `db`, with optional config.
pub fn start_dev_server(
    data_dir: &Path,
    db: &TestDb,
    config: Option<&Path>,
) -> crate::common::Server {
    start_dev_server_with(hanko(), data_dir, db, config)
}

/// [`start_dev_server`] with a prepared command (e.g. another `RUST_LOG`).
pub fn start_dev_server_with(
    cmd: std::process::Command,
    data_dir: &Path,
    db: &TestDb,
    config: Option<&Path>,
) -> crate::common::Server {
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
    crate::common::Server::start(cmd, &args)
}

// ---------------------------------------------------------------------------------------
// RFC 3161 on the wire

/// A DER TimeStampReq: SHA-256 imprint `imprint`, nonce, certReq TRUE (what
/// `openssl ts -query -sha256 -cert` sends, with an 8-byte nonce).
pub fn timestamp_request(imprint: &[u8; 32], nonce: u64) -> Vec<u8> {
    // A positive 8-byte INTEGER in minimal form: top byte 0x01..=0x7f.
    let mut n = nonce.to_be_bytes();
    n[0] = (n[0] & 0x7f) | 0x01;
    let mut der = vec![0x30, 0x43, 0x02, 0x01, 0x01];
    der.extend_from_slice(&[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ]);
    der.extend_from_slice(imprint);
    der.extend_from_slice(&[0x02, 0x08]);
    der.extend_from_slice(&n);
    der.extend_from_slice(&[0x01, 0x01, 0xff]);
    assert_eq!(der.len(), 0x45);
    der
}

/// One DER TLV: (tag, whole TLV, contents, rest).
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn tlv(b: &[u8]) -> Option<Tlv<'_>> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    Some((tag, &b[..end], &b[hdr..end], &b[end..]))
}

/// A granted token from a TimeStampResp: (serial as stored in the log, lowercase hex of
/// big-endian bytes without leading zeros; the DER TimeStampToken). `None` when the
/// response is not a grant (status 0 or 1 with a token).
pub fn granted(resp: &[u8]) -> Option<(String, Vec<u8>)> {
    let (0x30, _, body, _) = tlv(resp)? else {
        return None;
    };
    let (0x30, _, status_info, rest) = tlv(body)? else {
        return None;
    };
    let (0x02, _, status, _) = tlv(status_info)? else {
        return None;
    };
    if status != [0] && status != [1] {
        return None;
    }
    let (0x30, token, content_info, _) = tlv(rest)? else {
        return None;
    };
    // ContentInfo { OID, [0] { SignedData { version, digestAlgorithms, encap { OID, [0] { OCTET STRING }}}}}
    let (0x06, _, _, ci_rest) = tlv(content_info)? else {
        return None;
    };
    let (0xa0, _, explicit, _) = tlv(ci_rest)? else {
        return None;
    };
    let (0x30, _, signed_data, _) = tlv(explicit)? else {
        return None;
    };
    let (0x02, _, _, sd_rest) = tlv(signed_data)? else {
        return None;
    };
    let (0x31, _, _, sd_rest) = tlv(sd_rest)? else {
        return None;
    };
    let (0x30, _, encap, _) = tlv(sd_rest)? else {
        return None;
    };
    let (0x06, _, _, encap_rest) = tlv(encap)? else {
        return None;
    };
    let (0xa0, _, econtent, _) = tlv(encap_rest)? else {
        return None;
    };
    let (0x04, _, tst_info_der, _) = tlv(econtent)? else {
        return None;
    };
    // TSTInfo { version, policy, messageImprint, serialNumber, ... }
    let (0x30, _, tst, _) = tlv(tst_info_der)? else {
        return None;
    };
    let (0x02, _, _, r) = tlv(tst)? else {
        return None;
    };
    let (0x06, _, _, r) = tlv(r)? else {
        return None;
    };
    let (0x30, _, _, r) = tlv(r)? else {
        return None;
    };
    let (0x02, _, serial, _) = tlv(r)? else {
        return None;
    };
    let serial = hanko_store::normalize_serial(serial);
    Some((hex::encode(serial), token.to_vec()))
}

/// (status, headers with lowercased names, body).
pub type HttpResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// Raw HTTP/1.1 request with `Connection: close`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut all = req.into_bytes();
    all.extend_from_slice(body);
    s.write_all(&all)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let hdrs: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    // A response cut short by a killed server is not a response.
    if let Some((_, len)) = hdrs.iter().find(|(k, _)| k == "content-length") {
        let len: usize = len.parse().map_err(std::io::Error::other)?;
        if body.len() != len {
            return Err(std::io::Error::other("truncated body"));
        }
        body.truncate(len);
    }
    Ok((status, hdrs, body))
}

/// POSTs one time-stamp request; the grant (serial hex, token DER, whole response) when
/// a complete HTTP 200 carried one.
pub fn post_timestamp(addr: SocketAddr, req: &[u8]) -> Option<(String, Vec<u8>, Vec<u8>)> {
    let (status, _, body) = http(
        addr,
        "POST",
        "/tsa",
        &[("Content-Type", "application/timestamp-query")],
        req,
    )
    .ok()?;
    if status != 200 {
        return None;
    }
    let (serial, token) = granted(&body)?;
    Some((serial, token, body))
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
        let handles = (0..threads)
            .map(|t| {
                let (grants, stop, failures) = (grants.clone(), stop.clone(), failures.clone());
                std::thread::spawn(move || {
                    let mut i: u64 = 0;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let mut imprint = [tag; 32];
                        imprint[..8].copy_from_slice(&(t as u64).to_be_bytes());
                        imprint[8..16].copy_from_slice(&i.to_be_bytes());
                        let req = timestamp_request(&imprint, ((t as u64) << 40) | i);
                        match post_timestamp(addr, &req) {
                            Some((serial, token, _)) => {
                                grants.lock().unwrap().push((serial, token));
                            }
                            None => {
                                failures.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(5));
                            }
                        }
                    }
                })
            })
            .collect();
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
