//! Issue #16 acceptance: the renewal scheduler, SIGKILLed at several points of a renewal
//! of 10,000 evidence chains, renews each chain exactly once after restart; the renewed
//! records verify with `hanko evidence verify` and Bouncy Castle. On SQLite and
//! PostgreSQL.
//!
//! The 10,000 due chains are made through the store directly, before the server starts:
//! 10,000 archive objects logged, each closed into a one-leaf batch anchored (target
//! `self`) by a token of a test TSA (an openssl-made root and TSA certificate that
//! expires in 30 days, inside the default renewal window of 365 days) signed in-process
//! by hanko-tsa over a software key. The dev server's own TSA (certificate for 730 days)
//! then renews them, 1,000 chains a run. The server is killed: (1) with the run planned
//! and no token asked for (`HANKO_FAULT_ANCHOR_PAUSE=renewal-planned`), (2) with the
//! run's token issued and logged but not stored (`renewal-stamped`), (3) without a hook
//! after three runs are done, while the next are under way; the fourth start finishes.
//! And two nodes on one PostgreSQL: one renews, the other takes over after SIGKILL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hanko_anchor::test_support::{BcCase, bouncy_castle};
use hanko_pki::HashAlgorithm;
use hanko_pki::soft::SoftwareSigner;
use hanko_store::{NewRecord, RecordKind, Store, StoreOptions, serial_to_bytes};
use hanko_tsa::{
    ClockGuard, ClockGuardConfig, CountingSerials, ManualClock, Outcome, TimeStampUnit, Tsa,
    TsaConfig,
};
use sqlx::Connection as _;

use crate::common::log::{
    Backend, TestDb, block_on, dev_config_with, shared_dev_data_dir, start_dev_server, store_table,
};
use crate::common::tsp::imprint_request;
use crate::common::{Server, hanko, load_turn, text};

const HOOK: &str = "HANKO_FAULT_ANCHOR_PAUSE";
const CHAINS: u64 = 10_000;

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
}

/// A root and a TSA certificate for 30 days (openssl), and a TSA over its key.
fn short_lived_tsa(dir: &Path) -> (Tsa, PathBuf, PathBuf) {
    std::fs::write(
        dir.join("tsa.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=critical,timeStamping\nsubjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    openssl(
        dir,
        &[
            &["req", "-x509", "-nodes"][..],
            &ec,
            &[
                "-keyout",
                "root.key",
                "-subj",
                "/C=JP/O=Hanko Test/CN=Renewal Test Root",
                "-days",
                "3650",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                "root.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req", "-new", "-nodes"][..],
            &ec,
            &[
                "-keyout",
                "tsa.key",
                "-subj",
                "/C=JP/O=Hanko Test/CN=Renewal Test TSA",
                "-out",
                "tsa.csr",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "tsa.cnf",
            "-out",
            "tsa.pem",
        ],
    );
    let key = std::fs::read_to_string(dir.join("tsa.key")).unwrap();
    let signer = Arc::new(
        SoftwareSigner::from_pkcs8_pem(
            &key,
            hanko_pki::SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        )
        .unwrap(),
    );
    let chain =
        hanko_pki::cert::load_pem_chain(&std::fs::read_to_string(dir.join("tsa.pem")).unwrap())
            .unwrap();
    let config = TsaConfig::default();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let guard = ClockGuard::new(clock, ClockGuardConfig::for_accuracy(config.accuracy));
    let policies = config.policies();
    let tsa = Tsa::new(config, guard, Arc::new(CountingSerials::default())).unwrap();
    let unit = Arc::new(TimeStampUnit::new(signer, chain, SystemTime::now()).unwrap());
    for p in &policies {
        tsa.install_unit(p, unit.clone()).unwrap();
    }
    (tsa, dir.join("root.pem"), dir.join("tsa.pem"))
}

/// The data of object `i`.
fn data(i: u64) -> Vec<u8> {
    format!("renewal test object {i}").into_bytes()
}

/// Logs `n` archive objects and anchors each in a one-leaf batch of its own with a token
/// of `tsa`: the batches and anchors in one transaction behind the store's back.
fn make_due_chains(db: &TestDb, tsa: &Tsa, n: u64) {
    block_on(async {
        let store = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        let appends = (1..=n).map(|i| {
            store.append(NewRecord {
                kind: RecordKind::ArchiveObject,
                serial: serial_to_bytes(i),
                object_hash: NewRecord::object_hash_of(&data(i)),
                request_hash: NewRecord::object_hash_of(&data(i)).to_vec(),
                policy: "archive".into(),
                client: "renewal-test".into(),
                issued_at: SystemTime::now(),
                token: None,
            })
        });
        let receipts = futures_util::future::join_all(appends).await;
        let mut by_seq = vec![[0u8; 32]; n as usize];
        for (i, r) in (1..=n).zip(receipts) {
            by_seq[(r.unwrap().seq - 1) as usize] = NewRecord::object_hash_of(&data(i));
        }
        store.close().await;
        let mut rows = Vec::with_capacity(n as usize);
        for (i, leaf) in by_seq.iter().enumerate() {
            let resp = tsa.respond(&imprint_request(leaf, i as u64 + 1)).await;
            let Outcome::Granted(token) = resp.outcome else {
                panic!("test TSA refused");
            };
            rows.push((i as i64 + 1, leaf.to_vec(), token.token_der));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        macro_rules! insert_all {
            ($conn:ty) => {{
                let mut conn = <$conn>::connect(&db.url).await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                for (seq, leaf, token) in &rows {
                    sqlx::query(
                        "INSERT INTO anchor_batches (id, first_seq, last_seq, prev_last_seq, \
                         leaf_count, hash_alg, root, block_roots, closed_at_ns, closed_by) \
                         VALUES ($1, $1, $1, (SELECT last_seq FROM anchor_batches \
                         WHERE last_seq = $2), 1, 'sha256', $3, $3, $4, 'test')",
                    )
                    .bind(*seq)
                    .bind(*seq - 1)
                    .bind(leaf.as_slice())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    sqlx::query(
                        "INSERT INTO anchors (batch_id, target, state, attempts, \
                         next_attempt_at_ns, token, anchored_at_ns) \
                         VALUES ($1, 'self', 'done', 1, $2, $3, $2)",
                    )
                    .bind(*seq)
                    .bind(now)
                    .bind(token.as_slice())
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                }
                tx.commit().await.unwrap();
            }};
        }
        match db.backend {
            Backend::Sqlite => insert_all!(sqlx::SqliteConnection),
            Backend::Postgres => insert_all!(sqlx::PgConnection),
        }
    });
}

/// One integer the database answers to `sql`.
fn count(db: &TestDb, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    block_on(async {
        match db.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        }
    })
}

fn wait_for_line(server: &Server, line: &str, n: usize) {
    let start = Instant::now();
    while server.output().matches(line).count() < n {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{line:?} x{n} never logged:\n{}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `n` chains have one renewal each and no run is planned.
fn wait_all_renewed(db: &TestDb, server: &Server, n: u64, within: Duration) {
    let start = Instant::now();
    let renewed = "SELECT COUNT(*) FROM evidence_chains WHERE renewals = 1";
    while count(db, renewed) < n as i64 || count(db, PLANNED) > 0 {
        assert!(
            start.elapsed() < within,
            "not all renewed:\n{}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start_with_hook(dir: &Path, db: &TestDb, point: &str) -> Server {
    let mut cmd = hanko();
    cmd.env(HOOK, point);
    crate::common::log::start_dev_server_with(cmd, dir, db, None)
}

const PLANNED: &str = "SELECT COUNT(*) FROM renewal_runs WHERE state = 'planned'";
const DONE: &str = "SELECT COUNT(*) FROM renewal_runs WHERE state = 'done'";
const RENEWAL_STAMPS: &str = "SELECT COUNT(*) FROM log_records WHERE kind = 'archive-stamp' \
     AND client = 'renewal'";

fn crash_during_renewal(backend: Backend) {
    let _turn = load_turn();
    let dir = shared_dev_data_dir();
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let work = db.dir.path().to_owned();
    let (tsa, test_root, test_tsa_cert) = short_lived_tsa(&work);
    let made = Instant::now();
    make_due_chains(&db, &tsa, CHAINS);
    eprintln!(
        "{backend:?}: {CHAINS} due chains made in {:?}",
        made.elapsed()
    );

    // (1) Killed with the first run planned: nothing stamped.
    let server = start_with_hook(dir, &db, "renewal-planned");
    wait_for_line(&server, "anchor fault point renewal-planned reached", 1);
    drop(server);
    assert_eq!(count(&db, PLANNED), 1);
    assert_eq!(count(&db, DONE), 0);
    assert_eq!(count(&db, RENEWAL_STAMPS), 0);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM evidence_chains WHERE run_id IS NOT NULL"
        ),
        1000
    );

    // (2) Restarted, the planned run is finished, not planned again: killed with its
    // token logged but not stored.
    let server = start_with_hook(dir, &db, "renewal-stamped");
    wait_for_line(&server, "anchor fault point renewal-stamped reached", 1);
    drop(server);
    assert_eq!((count(&db, PLANNED), count(&db, DONE)), (1, 0));
    assert_eq!(
        count(&db, RENEWAL_STAMPS),
        1,
        "the token is logged before it is used"
    );

    // (3) Killed without a hook after three runs, the next under way.
    let server = start_dev_server(dir, &db, None);
    wait_for_line(&server, "renewal run done", 3);
    drop(server);
    let done_at_kill = count(&db, DONE);
    assert!(done_at_kill >= 3, "{done_at_kill}");

    // (4) Finishes: every chain renewed exactly once.
    let server = start_dev_server(dir, &db, None);
    wait_all_renewed(&db, &server, CHAINS, Duration::from_secs(300));
    let start = Instant::now();
    let mut metrics = server.get("/metrics").1;
    while crate::common::metric(&metrics, "hanko_renewal_chains_due") != Some(0.0) {
        assert!(start.elapsed() < Duration::from_secs(60), "{metrics}");
        std::thread::sleep(Duration::from_millis(200));
        metrics = server.get("/metrics").1;
    }
    assert_eq!(
        crate::common::metric(&metrics, "hanko_renewal_oldest_overdue_seconds"),
        Some(0.0)
    );

    // The renewed record of a few objects: hanko and Bouncy Castle.
    let url = format!("http://{}", server.addr);
    let dev_root = dir.join("dev-pki/root.pem");
    let mut cases = Vec::new();
    for i in [1, CHAINS / 2, CHAINS] {
        let data_file = work.join(format!("object-{i}.bin"));
        std::fs::write(&data_file, data(i)).unwrap();
        let ers = work.join(format!("object-{i}.ers"));
        let out = hanko()
            .args(["evidence", "get", "--file"])
            .arg(&data_file)
            .args(["--url", &url, "-o"])
            .arg(&ers)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let checked = hanko_anchor::check_data(&std::fs::read(&ers).unwrap(), &data(i)).unwrap();
        assert_eq!(checked.time_stamps.len(), 2, "the anchor and one renewal");
        let out = hanko()
            .args(["evidence", "verify"])
            .arg(&ers)
            .arg("--data")
            .arg(&data_file)
            .arg("--ca")
            .arg(&test_root)
            .arg("--ca")
            .arg(&dev_root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        for (who, cert) in [
            ("test", test_tsa_cert.clone()),
            ("dev", dir.join("dev-pki/tsa-rsa3072.pem")),
        ] {
            cases.push(BcCase {
                name: format!("object-{i}-{who}"),
                record: ers.clone(),
                data: data_file.clone(),
                tsa_cert: cert,
            });
        }
    }
    let verdicts = bouncy_castle(&work, &cases);
    for pair in verdicts.chunks(2) {
        for v in pair {
            assert_eq!(v.right, "valid", "{v:?}");
            assert!(v.wrong.starts_with("invalid"), "{v:?}");
        }
        assert!(
            pair.iter().any(|v| v.sig == "valid"),
            "no TSA certificate validates the signature: {pair:?}"
        );
    }
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    // Exactly once: one renewal per chain, every run done once, its token logged.
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM chain_renewals"),
        CHAINS as i64
    );
    assert_eq!(count(&db, "SELECT MAX(n) FROM chain_renewals"), 1);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM evidence_chains WHERE renewals <> 1 OR run_id IS NOT NULL"
        ),
        0
    );
    let runs = count(&db, DONE);
    assert_eq!(runs, CHAINS.div_ceil(1000) as i64);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM renewal_runs r WHERE NOT EXISTS \
             (SELECT 1 FROM log_records l WHERE l.token = r.token)"
        ),
        0,
        "every stored renewal token is logged"
    );
    let stamps = count(&db, RENEWAL_STAMPS);
    assert!(
        (runs..=runs + 2).contains(&stamps),
        "{stamps} renewal tokens for {runs} runs"
    );
    let verified = db.assert_verifies();
    eprintln!(
        "{backend:?}: {runs} runs, {stamps} renewal tokens logged, {done_at_kill} runs done at \
         the third kill; {}",
        verified.trim().replace('\n', "; ")
    );
}

#[test]
fn sigkill_during_renewal_renews_each_chain_once_sqlite() {
    crash_during_renewal(Backend::Sqlite);
}

#[test]
fn sigkill_during_renewal_renews_each_chain_once_postgres() {
    crash_during_renewal(Backend::Postgres);
}

/// Two nodes on one PostgreSQL: one renews (the renewal lock), the other takes over
/// after the holder is SIGKILLed mid-way; every chain renewed once.
#[test]
fn two_nodes_on_one_postgres_renew_one_at_a_time_and_take_over() {
    const N: u64 = 3_000;
    let _turn = load_turn();
    let dir = shared_dev_data_dir();
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let work = db.dir.path().to_owned();
    let (tsa, _, _) = short_lived_tsa(&work);
    make_due_chains(&db, &tsa, N);
    let config = |node: &str| {
        dev_config_with(dir, &work.join(format!("{node}.toml")), |t| {
            store_table(t).insert("node_id".into(), node.into());
        })
    };
    let a = start_dev_server(dir, &db, Some(&config("node-a")));
    let b = start_dev_server(dir, &db, Some(&config("node-b")));
    let start = Instant::now();
    let holds = |s: &Server| s.output().contains("renewal lock taken");
    while !holds(&a) && !holds(&b) {
        assert!(start.elapsed() < Duration::from_secs(60), "no node renews");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (holder, other) = if holds(&a) { (a, b) } else { (b, a) };
    wait_for_line(&holder, "renewal run done", 1);
    assert!(!holds(&other), "both renew:\n{}", other.output());
    drop(holder);
    wait_all_renewed(&db, &other, N, Duration::from_secs(120));
    assert!(holds(&other), "{}", other.output());
    let (exit, out) = other.stop();
    assert!(exit.success(), "{out}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM chain_renewals"), N as i64);
    assert_eq!(count(&db, "SELECT MAX(n) FROM chain_renewals"), 1);
    assert_eq!(count(&db, DONE), N.div_ceil(1000) as i64);
}
