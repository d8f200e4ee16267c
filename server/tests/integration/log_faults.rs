//! A failing issuance log under a running server: `hanko serve --dev` logging to
//! PostgreSQL, 6 clients sending time-stamp requests all along, and the database refusing
//! every write for a while in the middle of that load. Serials are reserved 8 at a time
//! (`store.serial_block`), so during the fault both writes fail: the log commit of a
//! signed token, and the reservation of the next serials before signing.
//!
//! The fault is PostgreSQL's own answer to a full disk: every INSERT, UPDATE or DELETE
//! on the log's tables fails with SQLSTATE 53100 (`disk_full`), raised by a statement
//! trigger added behind the server's back and dropped again to lift the fault, as freeing
//! space would. The server sees exactly what a full disk gives it (the statement fails,
//! the batch's transaction rolls back, its connections stay up), and the fault starts
//! and ends at a known moment, whoever runs the test: root ignores file modes, so an
//! SQLite file cannot be made unwritable with chmod, and a filesystem to fill would need
//! a mount.
//!
//! Asserted:
//! - every request sent while the fault is on is answered HTTP 200 with a rejection
//!   TimeStampResp, failInfo systemFailure and no token; the server logs both kinds of
//!   failure, and counts the failed commits in `hanko_tsa_log_failures_total`;
//! - every request, before, during and after, gets HTTP 200 (the server stays up);
//! - every token a client received is in the log byte for byte, no serial appears twice,
//!   and `hanko log verify` passes (a rolled-back batch leaves no gap in the chain);
//! - once the fault is lifted, without a restart, every request sent is granted again
//!   (the first within 5 s), as is every request before the fault.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rasn_cms::tsp::PkiStatus;

use crate::common::log::{
    TestDb, assert_logged, clients, dev_config_with, shared_dev_data_dir, start_dev_server,
    store_table,
};
use crate::common::tsp::{granted, status_of};
use crate::common::{http, load_turn, metric};

const SYSTEM_FAILURE: usize = 25;
const CLIENTS: usize = 6;
/// The tables of the issuance log (store/migrations/postgres).
const TABLES: [&str; 4] = [
    "log_records",
    "chain_head",
    "serial_counters",
    "serial_ranges",
];

/// The fault's state, as a client saw it when it sent a request and when the reply came.
/// BREAKING and LIFTING cover the SQL that changes it: a request around them may get
/// either answer.
const HEALTHY: u8 = 0;
const BREAKING: u8 = 1;
const FAULT: u8 = 2;
const LIFTING: u8 = 3;
const LIFTED: u8 = 4;

/// One request and its reply.
struct Exchange {
    sent_in: u8,
    answered_in: u8,
    status: u16,
    body: Vec<u8>,
}

/// `CLIENTS` clients ([`clients`]) until `stop`; every exchange is kept with the fault
/// state around it.
fn start_clients(
    addr: SocketAddr,
    phase: &Arc<AtomicU8>,
    stop: &Arc<AtomicBool>,
    log: &Arc<Mutex<Vec<Exchange>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let (phase, log) = (phase.clone(), log.clone());
    clients(CLIENTS, 0xdf, stop, move |req| {
        let sent_in = phase.load(Ordering::SeqCst);
        let r = http::send(
            addr,
            "POST",
            "/tsa",
            &[("Content-Type", "application/timestamp-query")],
            &req,
        )
        .unwrap();
        let answered_in = phase.load(Ordering::SeqCst);
        log.lock().unwrap().push(Exchange {
            sent_in,
            answered_in,
            status: r.status,
            body: r.body,
        });
    })
}

/// Exchanges recorded so far whose reply carried a token.
fn grants_so_far(log: &Mutex<Vec<Exchange>>) -> usize {
    let log = log.lock().unwrap();
    log.iter().filter(|x| granted(&x.body).is_some()).count()
}

/// Waits until `pred` holds (fails with `what` after `within`); how long it took.
fn wait_until(within: Duration, what: &str, pred: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !pred() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn disk_full(db: &TestDb) {
    let mut sql = String::from(
        "CREATE FUNCTION hanko_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' \
         USING ERRCODE = 'disk_full'; END $$;",
    );
    for t in TABLES {
        sql.push_str(&format!(
            "CREATE TRIGGER hanko_test_disk_full BEFORE INSERT OR UPDATE OR DELETE ON {t} \
             FOR EACH STATEMENT EXECUTE FUNCTION hanko_test_disk_full();"
        ));
    }
    db.exec(&sql);
}

fn space_freed(db: &TestDb) {
    let mut sql = String::new();
    for t in TABLES {
        sql.push_str(&format!("DROP TRIGGER hanko_test_disk_full ON {t};"));
    }
    sql.push_str("DROP FUNCTION hanko_test_disk_full();");
    db.exec(&sql);
}

fn log_failures(server: &crate::common::Server) -> u64 {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    metric(&text, "hanko_tsa_log_failures_total").map_or(0, |v| v as u64)
}

#[test]
fn a_failing_log_write_is_system_failure_and_issuance_resumes_by_itself() {
    let _turn = load_turn();
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let dir = shared_dev_data_dir();
    let cfg = dev_config_with(dir, &db.dir.path().join("block.toml"), |t| {
        store_table(t).insert("serial_block".into(), 8.into());
    });
    let server = start_dev_server(dir, &db, Some(&cfg));
    let failures_before = log_failures(&server);
    let phase = Arc::new(AtomicU8::new(HEALTHY));
    let stop = Arc::new(AtomicBool::new(false));
    let exchanges = Arc::new(Mutex::new(Vec::new()));
    let handles = start_clients(server.addr, &phase, &stop, &exchanges);
    wait_until(
        Duration::from_secs(60),
        "30 tokens before the fault",
        || grants_so_far(&exchanges) >= 30,
    );

    // The disk fills: from here on, every write of the log fails.
    phase.store(BREAKING, Ordering::SeqCst);
    disk_full(&db);
    phase.store(FAULT, Ordering::SeqCst);
    let during = |x: &Exchange| x.sent_in == FAULT && x.answered_in == FAULT;
    wait_until(
        Duration::from_secs(60),
        "40 replies during the fault",
        || {
            exchanges
                .lock()
                .unwrap()
                .iter()
                .filter(|x| during(x))
                .count()
                >= 40
        },
    );

    // Space is freed; no restart.
    phase.store(LIFTING, Ordering::SeqCst);
    space_freed(&db);
    phase.store(LIFTED, Ordering::SeqCst);
    let lifted_grants = |log: &Mutex<Vec<Exchange>>| {
        let log = log.lock().unwrap();
        log.iter()
            .filter(|x| x.sent_in == LIFTED && granted(&x.body).is_some())
            .count()
    };
    let resumed = wait_until(Duration::from_secs(5), "a token after the fault", || {
        lifted_grants(&exchanges) >= 1
    });
    wait_until(Duration::from_secs(60), "30 tokens after the fault", || {
        lifted_grants(&exchanges) >= 30
    });
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    let failures = log_failures(&server) - failures_before;
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    // The failed commit, and the failed reservation of the next serials.
    for failure in ["issuance log write failed", "serial reservation"] {
        assert!(
            out.contains(failure),
            "no {failure:?} in the server's log:\n{out}"
        );
    }

    let exchanges = std::mem::take(&mut *exchanges.lock().unwrap());
    let mut grants = Vec::new();
    let mut refused_during = 0;
    for (i, x) in exchanges.iter().enumerate() {
        assert_eq!(x.status, 200, "request {i}: HTTP {}", x.status);
        let (status, bits) = status_of(&x.body);
        let grant = granted(&x.body);
        if during(x) {
            assert_eq!(status, PkiStatus::Rejection, "request {i} during the fault");
            assert_eq!(bits, vec![SYSTEM_FAILURE], "request {i} during the fault");
            assert!(grant.is_none());
            refused_during += 1;
        } else if x.sent_in == LIFTED || (x.sent_in, x.answered_in) == (HEALTHY, HEALTHY) {
            assert!(
                grant.is_some(),
                "request {i} ({}): {status:?} {bits:?}",
                x.sent_in
            );
        } else if grant.is_none() {
            // Around a change of the fault's state either answer is right, but no other
            // refusal.
            assert_eq!(bits, vec![SYSTEM_FAILURE], "request {i}: {status:?}");
        }
        grants.extend(grant);
    }
    assert!(
        failures > 0,
        "hanko_tsa_log_failures_total did not rise ({refused_during} refused)"
    );
    let serials: HashSet<&String> = grants.iter().map(|(s, _)| s).collect();
    assert_eq!(serials.len(), grants.len(), "a serial was granted twice");
    // `export` asserts that each serial is in the log once.
    let log = db.export();
    assert_logged(&grants, &log);
    let ok = db.assert_verifies();
    eprintln!(
        "log fault: {} granted, {refused_during} systemFailure during the fault, {} records \
         logged, tokens again {resumed:?} after the fault was lifted; {}",
        grants.len(),
        log.len(),
        ok.trim()
    );
}
