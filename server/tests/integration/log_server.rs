//! The issuance log under a running `hanko serve --dev` (real SoftHSM token, real
//! SQLite / PostgreSQL), checked from outside through HTTP and `hanko log ...`:
//!
//! - the log API: 401 without or with a wrong key, 403 without the scope, 200 with the
//!   record and the exact token, 404 for an unknown serial; keys never reach the logs;
//! - crash: SIGKILL in the middle of a concurrent load; every token a client received
//!   is in the log with exactly its bytes, no serial repeats after the restart, and
//!   `hanko log verify` passes (SQLite and PostgreSQL);
//! - two server processes on one PostgreSQL database under concurrent load: no
//!   duplicate serial, one verifying chain, each record carries its node's id;
//! - the group-commit linger is held only while the signers are backlogged: one client
//!   at a time is never held for it;
//! - `hanko_tsa_tokens_total` counts tokens sent: none while commits fail (issue #11).
//!
//! One dev data directory (`common::log::shared_dev_data_dir`, one `dev-init`) serves
//! every test here, each logging to a database of its own; the load tests take turns
//! (`common::load_turn`).

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine as _;

use crate::common::http;
use crate::common::log::{
    Backend, Load, TestDb, anchoring_off, assert_logged, dev_config_with, shared_dev_data_dir,
    start_dev_server, start_dev_server_with, store_table,
};
use crate::common::tsp::{imprint_request, post_timestamp};
use crate::common::{hanko, load_turn, metric, run, text};

/// `hanko api-key new ...`: (the key, the `[[clients]]` table it printed).
pub(crate) fn new_api_key(args: &[&str]) -> (String, toml::Table) {
    let mut all = vec!["api-key", "new"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout
        .lines()
        .find(|l| l.starts_with("hanko_"))
        .unwrap()
        .to_owned();
    assert_eq!(stdout.matches(&key).count(), 1, "the key is printed once");
    let snippet = &stdout[stdout.find("[[clients]]").unwrap()..];
    assert!(!snippet.contains(&key), "the config snippet holds no key");
    let mut t: toml::Table = snippet.parse().unwrap();
    let entry = t.remove("clients").unwrap().as_array().unwrap()[0]
        .as_table()
        .unwrap()
        .clone();
    (key, entry)
}

#[test]
fn log_api_serves_records_to_authorised_clients_only() {
    let dir = shared_dev_data_dir();
    let db = TestDb::sqlite();
    let (auditor_key, auditor) = new_api_key(&["--name", "auditor", "--scope", "log:read"]);
    let (other_key, other) = new_api_key(&["--name", "no-scope"]);
    let cfg = dev_config_with(dir, &db.dir.path().join("api.toml"), |t| {
        t.insert(
            "clients".into(),
            toml::Value::Array(vec![toml::Value::Table(auditor), toml::Value::Table(other)]),
        );
    });
    // Debug logs: a key must not appear even there.
    let mut cmd = hanko();
    cmd.env("RUST_LOG", "debug");
    let server = start_dev_server_with(cmd, dir, &db, Some(&cfg));

    let (serial, token, _) =
        post_timestamp(server.addr, &imprint_request(&[7; 32], 42)).expect("a granted token");
    let path = format!("/api/v1/log/{serial}");
    let get = |path: &str, auth: Option<&str>| {
        let h: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        http::send(server.addr, "GET", path, &h, b"").unwrap()
    };

    let r = get(&path, None);
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer"), "{}", r.head);
    let wrong = format!("Bearer {}x", auditor_key);
    let r = get(&path, Some(&wrong));
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.contains("invalid_token"), "{}", r.head);
    // Someone guessing keys: every attempt counted, one log line (issue #11: the log
    // must not flood).
    for _ in 0..20 {
        assert_eq!(get(&path, Some(&wrong)).status, 401);
    }
    let (_, metrics) = server.get("/metrics");
    assert_eq!(
        metric(&metrics, "hanko_api_auth_refused_total{reason=\"invalid\"}"),
        Some(21.0)
    );
    let r = get(&path, Some(&format!("Bearer {other_key}")));
    assert_eq!(r.status, 403);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.contains("insufficient_scope"), "{}", r.head);

    let auth = format!("Bearer {auditor_key}");
    let r = get(&path, Some(&auth));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["kind"], "timestamp");
    assert_eq!(v["serial"], serial);
    assert_eq!(v["policy"], "0.4.0.2023.1.1");
    assert_eq!(v["client"], "anonymous");
    assert_eq!(v["request_hash"], "07".repeat(32));
    assert!(v["seq"].as_u64().unwrap() >= 1);
    assert!(v["issued_at"].as_str().unwrap().ends_with('Z'));
    assert!(!v["node_id"].as_str().unwrap().is_empty());
    assert_eq!(v["chain_hash"].as_str().unwrap().len(), 64);
    let stored = base64::engine::general_purpose::STANDARD
        .decode(v["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(stored, token, "the API returns exactly the token released");
    // The same record under 0x and upper case.
    let upper = get(
        &format!("/api/v1/log/0x{}", serial.to_uppercase()),
        Some(&auth),
    );
    assert_eq!((upper.status, &upper.body), (200, &r.body));
    // Unknown serial, malformed serial.
    assert_eq!(get("/api/v1/log/7fffffffffffffff", Some(&auth)).status, 404);
    assert_eq!(get("/api/v1/log/not-hex", Some(&auth)).status, 400);

    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    assert_eq!(
        out.matches("refused: invalid API key").count(),
        1,
        "21 bad keys in a few seconds, one line: {out}"
    );
    assert!(out.contains("auditor"), "the key's name is logged: {out}");
    for key in [&auditor_key, &other_key] {
        assert!(
            !out.contains(key.as_str()),
            "an API key leaked into the log"
        );
        let tail = &key[key.len() - 16..];
        assert!(
            !out.contains(tail),
            "part of an API key leaked into the log"
        );
    }
}

fn sorted_serials(grants: &[(String, Vec<u8>)]) -> Vec<u64> {
    let mut v: Vec<u64> = grants
        .iter()
        .map(|(s, _)| u64::from_str_radix(s, 16).unwrap())
        .collect();
    v.sort_unstable();
    v
}

fn crash_mid_load_loses_nothing(backend: Backend) {
    let _turn = load_turn();
    let dir = shared_dev_data_dir();
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let server = start_dev_server(dir, &db, None);
    let load = Load::start(server.addr, 16, 1);
    load.wait_for(150, Duration::from_secs(180));
    // SIGKILL while the 16 clients are still sending (Server's Drop kills with SIGKILL).
    drop(server);
    let before = load.finish();
    let serials_before = sorted_serials(&before);
    assert_eq!(
        serials_before.iter().collect::<HashSet<_>>().len(),
        before.len(),
        "a serial was granted twice before the crash"
    );

    let server = start_dev_server(dir, &db, None);
    let load = Load::start(server.addr, 4, 2);
    load.wait_for(40, Duration::from_secs(120));
    let failures = load.failures.load(std::sync::atomic::Ordering::Relaxed);
    let after = load.finish();
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    assert_eq!(failures, 0, "requests failed after the restart:\n{out}");
    let serials_after = sorted_serials(&after);
    // Serials reserved before the crash are never handed out again.
    assert!(
        serials_after[0] > *serials_before.last().unwrap(),
        "serial reuse after restart: {:?} vs {:?}",
        &serials_after[..3],
        &serials_before[serials_before.len() - 3..]
    );

    // `export` refuses nothing and has each serial once (TestDb::export asserts that).
    let log = db.export();
    assert_logged(&before, &log);
    assert_logged(&after, &log);
    let ok = db.assert_verifies();
    eprintln!(
        "{backend:?}: {} tokens received before SIGKILL, {} logged in all ({} unanswered), {} after restart; {}",
        before.len(),
        log.len() - after.len(),
        log.len() - after.len() - before.len(),
        after.len(),
        ok.trim()
    );
}

/// The server gives the log its signing pools as upstream: with one client at a time no
/// pool has a backlog, so no record waits for the linger (50 ms here; held for every
/// batch if the wiring were missing, as a store without an upstream does). Anchoring is
/// off: its own archive time-stamp (every 5 s in dev) is one more batch of the log.
#[test]
fn one_client_at_a_time_is_not_held_for_the_linger() {
    let _turn = load_turn();
    let dir = shared_dev_data_dir();
    let db = TestDb::sqlite();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = dev_config_with(dir, &tmp.path().join("linger.toml"), |t| {
        store_table(t).insert("linger_ms".into(), toml::Value::Float(50.0));
        anchoring_off(t);
    });
    let server = start_dev_server(dir, &db, Some(&cfg));
    // The start's own audit records (issue #18) were batches of their own already.
    let (_, metrics) = server.get("/metrics");
    let before = metric(&metrics, "hanko_log_linger_seconds_count").unwrap_or(0.0);
    let held_before = metric(&metrics, "hanko_log_linger_seconds_sum").unwrap_or(0.0);
    let n = 20u64;
    for i in 0..n {
        let imprint = [i as u8; 32];
        assert!(
            post_timestamp(server.addr, &imprint_request(&imprint, 1000 + i)).is_some(),
            "request {i} not granted"
        );
    }
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    let held = metric(&metrics, "hanko_log_linger_seconds_sum");
    let batches = metric(&metrics, "hanko_log_linger_seconds_count");
    let (Some(held), Some(batches)) = (held, batches) else {
        panic!("no hanko_log_linger_seconds in /metrics:\n{metrics}");
    };
    let (held, batches) = (held - held_before, batches - before);
    assert_eq!(batches as u64, n, "one batch per sequential request");
    assert!(
        held / batches < 0.025,
        "records were held {:.1} ms on average with idle signers",
        held / batches * 1000.0
    );
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    assert_eq!(db.export().len() as u64, n);
}

#[test]
fn crash_mid_load_loses_nothing_sqlite() {
    crash_mid_load_loses_nothing(Backend::Sqlite);
}

#[test]
fn crash_mid_load_loses_nothing_postgres() {
    crash_mid_load_loses_nothing(Backend::Postgres);
}

#[test]
fn two_nodes_on_one_postgres_never_share_a_serial() {
    let _turn = load_turn();
    let dir = shared_dev_data_dir();
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let config = |node: &str| {
        dev_config_with(dir, &db.dir.path().join(format!("{node}.toml")), |t| {
            store_table(t).insert("node_id".into(), node.into());
        })
    };
    let (cfg_a, cfg_b) = (config("node-a"), config("node-b"));
    let a = start_dev_server(dir, &db, Some(&cfg_a));
    let b = start_dev_server(dir, &db, Some(&cfg_b));
    let load_a = Load::start(a.addr, 8, 0xa);
    let load_b = Load::start(b.addr, 8, 0xb);
    load_a.wait_for(120, Duration::from_secs(180));
    load_b.wait_for(120, Duration::from_secs(180));
    let failures =
        [&load_a, &load_b].map(|l| l.failures.load(std::sync::atomic::Ordering::Relaxed));
    let (grants_a, grants_b) = (load_a.finish(), load_b.finish());
    let (exit_a, out_a) = a.stop();
    let (exit_b, out_b) = b.stop();
    assert!(exit_a.success(), "{out_a}");
    assert!(exit_b.success(), "{out_b}");
    assert_eq!(failures, [0, 0], "requests failed:\n{out_a}\n{out_b}");

    let all: HashSet<&String> = grants_a.iter().chain(&grants_b).map(|(s, _)| s).collect();
    assert_eq!(
        all.len(),
        grants_a.len() + grants_b.len(),
        "a serial was issued twice"
    );
    let log = db.export();
    assert_logged(&grants_a, &log);
    assert_logged(&grants_b, &log);
    for (grants, node) in [(&grants_a, "node-a"), (&grants_b, "node-b")] {
        for (serial, _) in grants {
            assert_eq!(log[serial]["node_id"], node, "serial {serial}");
        }
    }
    // Both nodes' records interleave in one chain.
    let ok = db.assert_verifies();
    eprintln!(
        "two nodes: {} + {} tokens, {} records; {}",
        grants_a.len(),
        grants_b.len(),
        log.len(),
        ok.trim()
    );
}

/// Issue #11: `hanko_tsa_tokens_total` counts the tokens clients received. While every
/// commit of the log fails (a PostgreSQL trigger refuses the rows), tokens are withheld
/// (systemFailure) and not counted; the failures are counted and logged once, not once
/// per request.
#[test]
fn tokens_total_counts_only_tokens_sent() {
    let _turn = load_turn();
    let dir = shared_dev_data_dir();
    let Some(db) = TestDb::postgres() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = dev_config_with(dir, &tmp.path().join("no-anchor.toml"), anchoring_off);
    let server = start_dev_server(dir, &db, Some(&cfg));
    let mut received = 0u64;
    let mut stamp = |i: u64| {
        let got = post_timestamp(server.addr, &imprint_request(&[i as u8; 32], 5000 + i));
        received += u64::from(got.is_some());
        got.is_some()
    };
    for i in 0..3 {
        assert!(stamp(i), "request {i} granted");
    }
    db.refuse_log_rows();
    for i in 3..8 {
        assert!(!stamp(i), "request {i} withheld while the log refuses rows");
    }
    db.accept_log_rows();
    for i in 8..10 {
        assert!(stamp(i), "request {i} granted again");
    }
    let (_, metrics) = server.get("/metrics");
    assert_eq!(
        metric(&metrics, "hanko_tsa_tokens_total"),
        Some(received as f64),
        "counted = received"
    );
    assert_eq!(received, 5);
    assert_eq!(metric(&metrics, "hanko_tsa_log_failures_total"), Some(5.0));
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    assert_eq!(
        out.matches("issuance log write failed").count(),
        1,
        "five failures in a row, one line: {out}"
    );
    assert_eq!(db.export().len(), 5);
}
