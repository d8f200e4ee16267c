//! Issue #15 acceptance: SIGKILL during batch closing under load. The test hook
//! `HANKO_FAULT_ANCHOR_PAUSE` (`serve --dev` only) stops the anchoring at one point —
//! before a batch's root is stored, right after it is stored (no anchor attempted), or
//! while the own TSA's archive time-stamp over the root is logged but not yet stored as
//! the anchor — and logs "anchor fault point X reached"; the test SIGKILLs the server there
//! while eight clients keep stamping, restarts it without the hook, and, once its
//! anchors are done, checks through the batches API, `hanko log export` and `hanko log
//! verify` that the batches cover every record from seq 1 on exactly once, each batch's
//! anchors done, the records after the last batch only archive time-stamps (they wait
//! for the next issued record, by design), no serial logged twice, and every token a
//! client received logged as it received it. On SQLite and on PostgreSQL. Production
//! (`serve` without `--dev`) refuses to start with the hook set, and `--dev` refuses a
//! point it does not know.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hanko_pki::HashAlgorithm;
use serde_json::Value;

use crate::common::http::send;
use crate::common::log::{
    Backend, Load, TestDb, assert_logged, dev_config_with, shared_dev_data_dir, start_dev_server,
    start_dev_server_with,
};
use crate::common::{Server, hanko, load_turn, text};

const HOOK: &str = "HANKO_FAULT_ANCHOR_PAUSE";

/// Every batch, oldest first, through the paged batches API.
fn all_batches(server: &Server) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = "/api/v1/batches?limit=100".to_owned();
    loop {
        let (status, body) = server.get(&path);
        assert_eq!(status, 200, "{path}: {body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        all.extend(page["batches"].as_array().unwrap().iter().cloned());
        match page["next_before"].as_u64() {
            Some(b) => path = format!("/api/v1/batches?limit=100&before={b}"),
            None => break,
        }
    }
    all.sort_by_key(|b| b["first_seq"].as_u64().unwrap());
    all
}

fn all_done(batch: &Value) -> bool {
    let anchors = batch["anchors"].as_array().unwrap();
    !anchors.is_empty() && anchors.iter().all(|a| a["state"] == "done")
}

/// One exported record: (seq, kind, serial hex, token DER base64).
fn exported(db: &TestDb) -> Vec<(u64, String, String, String)> {
    let out = db.log(&["export", "--tokens"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["seq"].as_u64().unwrap(),
                v["kind"].as_str().unwrap().to_owned(),
                v["serial"].as_str().unwrap().to_owned(),
                v["token"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn crash_at(point: &str, backend: Backend) {
    let _turn = load_turn();
    let dir = shared_dev_data_dir();
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let cfg = dev_config_with(dir, &db.dir.path().join("anchor.toml"), |t| {
        let mut anchor = toml::Table::new();
        anchor.insert("interval_secs".into(), 1.into());
        t.insert("anchor".into(), toml::Value::Table(anchor));
    });

    // Under load until the hook's point is reached, and a while after it.
    let mut cmd = hanko();
    cmd.env(HOOK, point);
    let server = start_dev_server_with(cmd, dir, &db, Some(&cfg));
    let load = Load::start(server.addr, 8, 3);
    let reached = format!("anchor fault point {point} reached");
    let start = Instant::now();
    while !server.output().contains(&reached) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{reached:?} never logged:\n{}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let so_far = load.grants.lock().unwrap().len();
    load.wait_for(so_far + 20, Duration::from_secs(120));
    let at_crash = server.output();
    drop(server); // SIGKILL (Server's Drop), the clients still sending
    let mut grants = load.finish();
    assert!(!grants.is_empty());

    // What the crash left, as the point says.
    let closed = at_crash.matches("anchor batch closed").count();
    let done = at_crash.matches("anchor done").count();
    match point {
        "before-close" => assert_eq!((closed, done), (0, 0), "{at_crash}"),
        "after-close" => assert_eq!((closed, done), (1, 0), "{at_crash}"),
        _ => assert!(closed >= 1 && done == 0, "{at_crash}"),
    }
    let left = exported(&db);
    let archive_stamps = left.iter().filter(|r| r.1 == "archive-stamp").count();
    assert_eq!(
        archive_stamps,
        usize::from(point == "during-anchor"),
        "only during-anchor had its archive time-stamp logged"
    );

    // Restart without the hook; a few more tokens so that a lone archive time-stamp of
    // the crash has issued records to join.
    let server = start_dev_server(dir, &db, Some(&cfg));
    let load = Load::start(server.addr, 2, 4);
    load.wait_for(10, Duration::from_secs(120));
    grants.extend(load.finish());
    let last = &grants.last().unwrap().1;
    let hash = hex::encode(HashAlgorithm::Sha256.digest(last));
    let start = Instant::now();
    let batches = loop {
        let r = send(
            server.addr,
            "GET",
            &format!("/api/v1/evidence/sha256/{hash}"),
            &[],
            b"",
        )
        .unwrap();
        if r.status == 200 {
            let batches = all_batches(&server);
            if batches.iter().all(all_done) {
                break batches;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not all anchored after the restart:\n{}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    // The batches cover 1..=L contiguously: every record in exactly one batch.
    let mut next = 1;
    for b in &batches {
        assert_eq!(b["first_seq"].as_u64(), Some(next), "gap or overlap: {b}");
        let last_seq = b["last_seq"].as_u64().unwrap();
        assert_eq!(b["leaf_count"].as_u64(), Some(last_seq - next + 1), "{b}");
        next = last_seq + 1;
    }
    let records = exported(&db);
    let head = records.last().unwrap().0;
    assert_eq!(records.len() as u64, head, "the log has gaps");
    // Only an anchor's own stamp and the service's audit events (its stop) close no
    // batch of their own.
    for r in records.iter().filter(|r| r.0 >= next) {
        assert!(
            r.1 == "archive-stamp" || r.1 == "audit",
            "{} record {} after the last batch",
            r.1,
            r.0
        );
    }
    // No serial twice (per kind), and every grant logged as the client got it.
    let mut seen = HashSet::new();
    for r in &records {
        assert!(seen.insert((&r.1, &r.2)), "{} serial {} twice", r.1, r.2);
    }
    let by_serial: HashMap<String, Value> = records
        .iter()
        .filter(|r| r.1 == "timestamp")
        .map(|r| (r.2.clone(), serde_json::json!({ "token": r.3 })))
        .collect();
    assert_logged(&grants, &by_serial);
    let verified = db.assert_verifies();
    assert!(
        verified.contains(&format!(
            "batches intact: {} batches cover seq 1..={}",
            batches.len(),
            next - 1
        )),
        "{verified}"
    );
    eprintln!(
        "{point} {backend:?}: {} grants, {} records, {} batches; {}",
        grants.len(),
        records.len(),
        batches.len(),
        verified.trim().replace('\n', "; ")
    );
}

#[test]
fn sigkill_before_the_root_is_stored_sqlite() {
    crash_at("before-close", Backend::Sqlite);
}

#[test]
fn sigkill_after_the_root_is_stored_sqlite() {
    crash_at("after-close", Backend::Sqlite);
}

#[test]
fn sigkill_during_anchoring_sqlite() {
    crash_at("during-anchor", Backend::Sqlite);
}

#[test]
fn sigkill_before_the_root_is_stored_postgres() {
    crash_at("before-close", Backend::Postgres);
}

#[test]
fn sigkill_after_the_root_is_stored_postgres() {
    crash_at("after-close", Backend::Postgres);
}

#[test]
fn sigkill_during_anchoring_postgres() {
    crash_at("during-anchor", Backend::Postgres);
}

/// Runs `hanko serve ARGS` with the hook set to `value`; it must exit with 2 within a
/// minute (a server that starts instead is killed and fails the test). Its output.
fn refused(value: &str, pin_file: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = hanko();
    cmd.env(HOOK, value)
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = pin_file {
        cmd.env("HANKO_PIN_FILE", p);
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("started with {HOOK}={value}:\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    text(&out)
}

#[test]
fn the_hook_is_refused_in_production_and_unknown_points_in_dev() {
    let dir = shared_dev_data_dir();
    let db = TestDb::sqlite();
    let prod = db.dir.path().join("prod.toml");
    let cfg = std::fs::read_to_string(dir.join("hanko.toml"))
        .unwrap()
        .replace("dev = true", "dev = false");
    std::fs::write(
        &prod,
        format!("data_dir = {:?}\n{cfg}", dir.to_str().unwrap()),
    )
    .unwrap();
    let msg = refused(
        "before-close",
        Some(&dir.join("dev-pin")),
        &[
            "--config",
            prod.to_str().unwrap(),
            "--database-url",
            &db.url,
        ],
    );
    assert!(
        msg.contains(
            "HANKO_FAULT_ANCHOR_PAUSE is a test hook honoured only by `hanko serve --dev`"
        ),
        "{msg}"
    );
    let msg = refused(
        "mid-close",
        None,
        &[
            "--dev",
            "--tls-listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
            "--database-url",
            &db.url,
        ],
    );
    assert!(
        msg.contains("expected before-close, after-close, during-anchor"),
        "{msg}"
    );
}
