//! Issue #18, items 2 and 3, through running servers (real SoftHSM token, real SQLite and
//! PostgreSQL):
//!
//! - the emergency stop: after `hanko key suspend`, no node sharing the log issues with
//!   that key within a second (TimeStampResp rejection / systemFailure naming the
//!   suspension), across a restart, until `hanko key resume`; the other keys keep
//!   issuing; `/readyz` says why; two nodes on one PostgreSQL, and one on SQLite;
//! - the admin API: only admin clients; a suspended seal credential answers 503 without
//!   `Retry-After`;
//! - the audit events: each one in the log, in order, with its fields (key loaded,
//!   service started / stopped, key suspended / resumed with who and why, the clock lost
//!   and regained with the measured error), and `hanko log verify` passes over them.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use hanko_pki::HashAlgorithm;
use rasn_cms::tsp::PkiStatus;
use serde_json::Value;

use crate::common::http;
use crate::common::log::{
    TestDb, dev_config_with, shared_dev_data_dir, start_dev_server, store_table,
};
use crate::common::seal::{assert_json_error, exported, seal};
use crate::common::tsp::{request_der, status_of};
use crate::common::{Server, dev_api_key, hanko, load_turn, metric, text};
use crate::log_server::new_api_key;

/// The dev TSA key of the default policy, and the dev policy's other key.
const TSA_KEY: &str = "tsa-rsa3072";
const SYSTEM_FAILURE: usize = 25;

/// `hanko key <args> --data-dir DIR --database-url DB`.
fn key_cmd(dir: &Path, db: &TestDb, args: &[&str]) -> Output {
    let mut all = vec!["key"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--data-dir",
        dir.to_str().unwrap(),
        "--database-url",
        &db.url,
    ]);
    let mut cmd = hanko();
    cmd.args(&all).env("USER", "ops-alice");
    cmd.output().unwrap()
}

/// A time-stamp request for the default policy (`dev_policy`: the dev ECDSA policy).
fn stamp(server: &Server, i: u64, dev_policy: bool) -> Vec<u8> {
    let policy = dev_policy.then_some(hanko_server::dev::DEV_ECDSA_POLICY);
    let req = request_der(
        HashAlgorithm::Sha256,
        format!("suspension test {i}").as_bytes(),
        Some(i + 1),
        false,
        policy,
    );
    crate::common::tsp::timestamp(server.addr, &req)
}

/// Whether `server` grants a token of the default policy now; a refusal must be the
/// suspension's (systemFailure, its statusString).
fn grants(server: &Server, i: u64) -> bool {
    let resp = stamp(server, i, false);
    let (status, bits) = status_of(&resp);
    if status == PkiStatus::Granted {
        return true;
    }
    assert_eq!(status, PkiStatus::Rejection);
    assert_eq!(bits, vec![SYSTEM_FAILURE]);
    let decoded: rasn_cms::tsp::TimeStampResp = rasn::der::decode(&resp).unwrap();
    let said = format!("{:?}", decoded.status.status_string);
    assert!(said.contains("suspended"), "{said}");
    false
}

/// Polls every server until each answers `want` (granted or refused); the time it took.
fn until_all(servers: &[&Server], want: bool, i: &mut u64) -> Duration {
    let start = Instant::now();
    for s in servers {
        loop {
            *i += 1;
            if grants(s, *i) == want {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "never {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    start.elapsed()
}

/// The audit records of the log, in sequence order: (event type, client, fields, node).
/// Without `clock`, the clock's events are left out: a dev server on a machine whose
/// kernel clock says it is unsynchronised records the clock lost at every start.
fn audit_events(db: &TestDb, clock: bool) -> Vec<(String, String, Value, String)> {
    exported(db.log(&["export"]))
        .into_iter()
        .filter(|v| v["kind"] == "audit")
        .filter(|v| clock || !v["policy"].as_str().unwrap().starts_with("clock-"))
        .map(|v| {
            assert_eq!(v["policy"], v["event"]["type"], "{v}");
            (
                v["event"]["type"].as_str().unwrap().to_owned(),
                v["client"].as_str().unwrap().to_owned(),
                v["event"]["fields"].clone(),
                v["node_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The event types of `events`, in order.
fn types(events: &[(String, String, Value, String)]) -> Vec<&str> {
    events.iter().map(|e| e.0.as_str()).collect()
}

/// The dev data directory's key labels, in configuration order.
fn dev_keys(dir: &Path) -> Vec<String> {
    let t: toml::Table = std::fs::read_to_string(dir.join("hanko.toml"))
        .unwrap()
        .parse()
        .unwrap();
    t["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].as_str().unwrap().to_owned())
        .collect()
}

/// The events one start records: key-loaded for each key, then service-started.
fn start_events(keys: &[String]) -> Vec<&'static str> {
    let mut v = vec!["key-loaded"; keys.len()];
    v.push("service-started");
    v
}

fn suspend_resume_across_nodes(db: &TestDb, nodes: &[&str]) {
    let dir = shared_dev_data_dir();
    let keys = dev_keys(dir);
    let config = |node: &str| {
        dev_config_with(dir, &db.dir.path().join(format!("{node}.toml")), |t| {
            store_table(t).insert("node_id".into(), node.into());
        })
    };
    let configs: Vec<_> = nodes.iter().map(|n| config(n)).collect();
    let mut servers: Vec<Server> = configs
        .iter()
        .map(|c| start_dev_server(dir, db, Some(c)))
        .collect();
    let mut i = 0;
    until_all(&servers.iter().collect::<Vec<_>>(), true, &mut i);

    // A label the configuration does not know is refused: a typo must not stop nothing.
    let out = key_cmd(dir, db, &["suspend", "tsa-rsa3027"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no key \"tsa-rsa3027\""),
        "{}",
        text(&out)
    );

    let out = key_cmd(
        dir,
        db,
        &["suspend", TSA_KEY, "--reason", "HSM audit finding"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let took = until_all(&servers.iter().collect::<Vec<_>>(), false, &mut i);
    assert!(
        took < Duration::from_secs(1),
        "took {took:?} to stop every node"
    );
    // Suspended again: unchanged, said so, nothing logged.
    let out = key_cmd(dir, db, &["suspend", TSA_KEY, "--reason", "again"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already suspended"), "{}", text(&out));
    assert!(text(&out).contains("HSM audit finding"), "{}", text(&out));
    for s in &servers {
        // The other TSA key keeps issuing; readiness names the suspension.
        i += 1;
        assert_eq!(status_of(&stamp(s, i, true)).0, PkiStatus::Granted);
        let (code, body) = s.get("/readyz");
        assert_eq!(code, 503, "{body}");
        assert!(
            body.contains(&format!(
                "key \\\"{TSA_KEY}\\\": suspended by cli:ops-alice"
            )),
            "{body}"
        );
        assert!(body.contains("HSM audit finding"), "{body}");
        let (_, m) = s.get("/metrics");
        let gauge = |k: &str| metric(&m, &format!("hanko_key_suspended{{key=\"{k}\"}}"));
        assert_eq!(gauge(TSA_KEY), Some(1.0));
        assert_eq!(gauge("tsa-p256"), Some(0.0));
    }
    let out = key_cmd(dir, db, &["list"]);
    assert!(text(&out).contains("suspended at"), "{}", text(&out));

    // Across a restart of the last node: still refused from its first request.
    let last = servers.pop().unwrap();
    let (exit, out) = last.stop();
    assert!(exit.success(), "{out}");
    let restarted = start_dev_server(dir, db, Some(configs.last().unwrap()));
    i += 1;
    assert!(!grants(&restarted, i), "a restart lifted the suspension");
    servers.push(restarted);

    let out = key_cmd(dir, db, &["resume", TSA_KEY, "--reason", "finding closed"]);
    assert!(out.status.success(), "{}", text(&out));
    let took = until_all(&servers.iter().collect::<Vec<_>>(), true, &mut i);
    assert!(took < Duration::from_secs(1), "took {took:?} to resume");
    let out = key_cmd(dir, db, &["resume", TSA_KEY]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for s in &servers {
        s.wait_readyz(200, Duration::from_secs(5));
    }
    for s in servers {
        let (exit, out) = s.stop();
        assert!(exit.success(), "{out}");
    }

    // The log: every start's events, the suspension and its lifting with who and why,
    // every stop; and the chain verifies across them.
    let events = audit_events(db, false);
    let count = |t: &str| events.iter().filter(|e| e.0 == t).count();
    assert_eq!(count("service-started"), nodes.len() + 1);
    assert_eq!(count("service-stopped"), nodes.len() + 1);
    assert_eq!(count("key-loaded"), keys.len() * (nodes.len() + 1));
    assert_eq!(count("key-suspended"), 1);
    assert_eq!(count("key-resumed"), 1);
    let suspended = events.iter().find(|e| e.0 == "key-suspended").unwrap();
    assert_eq!(suspended.1, "cli:ops-alice");
    // Written by this host's CLI, not under the read-only opens' node id.
    assert!(suspended.3.starts_with("cli@"), "{suspended:?}");
    assert_eq!(suspended.2["key"], TSA_KEY);
    assert_eq!(suspended.2["reason"], "HSM audit finding");
    let resumed = events.iter().find(|e| e.0 == "key-resumed").unwrap();
    assert_eq!(resumed.2["reason"], "finding closed");
    // In order: each node's start, the suspension, the restarted node's stop and start,
    // the resumption, the stops.
    let t = types(&events);
    let pos = |what: &str, nth: usize| {
        t.iter()
            .enumerate()
            .filter(|(_, x)| **x == what)
            .nth(nth)
            .unwrap()
            .0
    };
    assert!(pos("service-started", nodes.len() - 1) < pos("key-suspended", 0));
    assert!(pos("key-suspended", 0) < pos("service-stopped", 0));
    assert!(pos("service-stopped", 0) < pos("service-started", nodes.len()));
    assert!(pos("service-started", nodes.len()) < pos("key-resumed", 0));
    assert!(pos("key-resumed", 0) < pos("service-stopped", 1));
    for e in events.iter().filter(|e| e.0 == "key-loaded") {
        assert!(keys.iter().any(|k| e.2["key"] == k.as_str()), "{e:?}");
        for f in [
            "usage",
            "algorithm",
            "subject",
            "certificate_sha256",
            "not_after",
        ] {
            assert!(e.2[f].is_string(), "{f} missing: {e:?}");
        }
        assert_eq!(e.1, "system");
    }
    for node in nodes {
        assert!(
            events
                .iter()
                .any(|e| e.0 == "service-started" && e.3 == *node)
        );
    }
    let ok = db.assert_verifies();
    assert!(ok.starts_with("chain intact"), "{ok}");
}

#[test]
fn suspend_stops_every_node_on_one_postgres_until_resumed() {
    let _turn = load_turn();
    let Some(db) = TestDb::postgres() else {
        return;
    };
    suspend_resume_across_nodes(&db, &["node-a", "node-b"]);
}

#[test]
fn suspend_stops_a_single_sqlite_node_until_resumed() {
    let _turn = load_turn();
    let db = TestDb::sqlite();
    suspend_resume_across_nodes(&db, &["node-1"]);
}

#[test]
fn admin_api_suspends_a_seal_credential() {
    let dir = shared_dev_data_dir();
    let db = TestDb::sqlite();
    let (admin_key, admin) = new_api_key(&["--name", "ops", "--scope", "admin"]);
    let (other_key, other) = new_api_key(&["--name", "reader", "--scope", "log:read"]);
    let cfg = dev_config_with(dir, &db.dir.path().join("admin.toml"), |t| {
        let clients = vec![toml::Value::Table(admin), toml::Value::Table(other)];
        t.insert("clients".into(), toml::Value::Array(clients));
    });
    let server = start_dev_server(dir, &db, Some(&cfg));
    let dev_key = dev_api_key(dir);
    let call = |method: &str, path: &str, key: &str, body: &[u8]| {
        let auth = format!("Bearer {key}");
        let r = http::send(
            server.addr,
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        (r.status, r.head, v)
    };
    let path = "/api/v1/admin/keys/seal-p256/suspend";
    let body = br#"{"reason":"key ceremony re-run"}"#;
    assert_eq!(call("POST", path, &other_key, body).0, 403);
    assert_eq!(call("POST", path, &dev_key, body).0, 403);
    let (s, _, v) = call("POST", "/api/v1/admin/keys/nope/suspend", &admin_key, body);
    assert_eq!(s, 404, "{v}");
    let (s, _, v) = call("POST", path, &admin_key, br#"{"why":1}"#);
    assert_eq!(s, 400, "{v}");

    let doc = b"a document to seal";
    let q = "credential=seal-p256&level=B-B";
    assert_eq!(seal(server.addr, q, Some(&dev_key), doc).0, 200);
    let (s, _, v) = call("POST", path, &admin_key, body);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["suspended"].clone(), v["changed"].clone()),
        (true.into(), true.into())
    );
    // The node that took the change applies it at once.
    let refused = seal(server.addr, q, Some(&dev_key), doc);
    assert!(
        !refused.1.to_ascii_lowercase().contains("retry-after"),
        "{}",
        refused.1
    );
    assert_json_error(refused, 503, "temporarily_unavailable", "suspended");
    // The other credential seals on.
    let q2 = "credential=seal-rsa3072&level=B-B";
    assert_eq!(seal(server.addr, q2, Some(&dev_key), doc).0, 200);
    let (s, _, v) = call("GET", "/api/v1/admin/keys", &admin_key, b"");
    assert_eq!(s, 200);
    let listed = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "seal-p256")
        .unwrap()
        .clone();
    assert_eq!(listed["suspended"], true);
    assert_eq!(listed["suspension"]["by"], "client:ops");
    assert_eq!(listed["suspension"]["reason"], "key ceremony re-run");

    let resume = "/api/v1/admin/keys/seal-p256/resume";
    let (s, _, v) = call("POST", resume, &admin_key, b"");
    assert_eq!(s, 200, "{v}");
    assert_eq!(seal(server.addr, q, Some(&dev_key), doc).0, 200);
    let (s, _, v) = call("POST", resume, &admin_key, b"");
    assert_eq!(s, 409, "{v}");
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    let events = audit_events(&db, false);
    let t = types(&events);
    let keys = dev_keys(dir);
    let mut want = start_events(&keys);
    want.extend(["key-suspended", "key-resumed", "service-stopped"]);
    assert_eq!(t, want);
    let s = &events[keys.len() + 1];
    assert_eq!(
        (s.1.as_str(), &s.2["key"]),
        ("client:ops", &Value::from("seal-p256"))
    );
    db.assert_verifies();
}

/// The clock lost and regained, recorded with the measured error: a production server
/// over a fake chronyc (`tsa_clock.rs`).
#[test]
fn clock_lost_and_regained_are_audit_events() {
    let dir = shared_dev_data_dir();
    let db = TestDb::sqlite();
    let work = tempfile::tempdir().unwrap();
    let (line, _fail, cfg) = crate::tsa_clock::chrony_config(work.path(), dir);
    let mut cmd = hanko();
    cmd.env("HANKO_PIN_FILE", dir.join("dev-pin"));
    let server = Server::start(
        cmd,
        &["--config", cfg.to_str().unwrap(), "--database-url", &db.url],
    );
    server.wait_readyz(200, Duration::from_secs(15));
    std::fs::write(&line, crate::tsa_clock::UNSYNCED).unwrap();
    server.wait_readyz(503, Duration::from_secs(15));
    std::fs::write(&line, crate::common::CHRONYC_SYNCED).unwrap();
    server.wait_readyz(200, Duration::from_secs(15));
    // The watcher looks every second.
    let start = Instant::now();
    while !audit_events(&db, true)
        .iter()
        .any(|e| e.0 == "clock-regained")
    {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no clock-regained: {:?}\n{}",
            types(&audit_events(&db, true)),
            server.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    let events = audit_events(&db, true);
    let keys = dev_keys(dir);
    let mut want = start_events(&keys);
    want.extend(["clock-lost", "clock-regained", "service-stopped"]);
    assert_eq!(types(&events), want);
    let lost = &events[keys.len() + 1].2;
    assert_eq!(lost["source"], "chrony");
    assert_eq!(lost["reason"], "clock not synchronised");
    assert_eq!(lost["synchronised"], "false");
    let ms = |v: &Value, f: &str| v[f].as_str().unwrap().parse::<f64>().unwrap();
    // UNSYNCED: root dispersion 1 s; CHRONYC_SYNCED: 1 ms.
    assert!(ms(lost, "max_error_ms") >= 1000.0, "{lost}");
    let regained = &events[keys.len() + 2].2;
    assert_eq!(regained["synchronised"], "true");
    assert!(ms(regained, "max_error_ms") < 10.0, "{regained}");
    assert!(ms(regained, "est_error_ms") <= ms(regained, "max_error_ms"));
    db.assert_verifies();
}
