//! Issue #15: Merkle anchoring through the real binary. A dev server closes a batch over
//! the tokens it issued (at `anchor.max_leaves`, so that a slow machine cannot split it)
//! and its own TSA time-stamps the root; every token's evidence record (by hash, by serial, through
//! `hanko evidence get`) verifies with `hanko evidence verify` against the dev root; while
//! the batch is open the API says so in JSON; the batch API and the metrics show it; `hanko
//! log verify` recomputes the roots and names a tampered one. A second `hanko serve --dev`
//! behind a switchable TCP relay is an external TSA target: while it is unreachable only
//! its anchor waits (attempts growing), and it completes once it is back; over https it
//! is trusted through `tls_ca` and refused without. `anchor.max_leaves` closes batches
//! early, capped; archive time-stamps alone never close one; the open batch's 404 says
//! when it will close. Two nodes on one PostgreSQL: one batcher at a time, and the other
//! takes over when it is killed.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hanko_anchor::test_support::{BcCase, assert_bouncy_castle_accepts};
use hanko_pki::HashAlgorithm;
use serde_json::Value;

use crate::common::http::send;
use crate::common::log::{
    TestDb, dev_config_with, shared_dev_data_dir, start_dev_server, store_table,
};
use crate::common::seal::seal;
use crate::common::tsp::{granted, request_der, timestamp};
use crate::common::{
    Server, dev_api_key, dev_init, eventually, hanko, metric, start_dev_with_extra, text,
};

/// GET `path` as JSON: (status, body).
fn get_json(server: &Server, path: &str) -> (u16, Value) {
    let (status, body) = server.get(path);
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, v)
}

/// Polls batch `id` until `done(batch)`; fails after `within`.
fn wait_batch(server: &Server, id: u64, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, b) = get_json(server, &format!("/api/v1/batches/{id}"));
        if status == 200 && done(&b) {
            return b;
        }
        assert!(
            start.elapsed() < within,
            "batch {id} not as expected within {within:?}: {status} {b}\n{}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn anchor<'a>(batch: &'a Value, name: &str) -> &'a Value {
    batch["anchors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no anchor {name} in {batch}"))
}

/// GET the evidence record of the object whose SHA-256 is `hash` (hex), `query` appended.
fn evidence(server: &Server, hash: &str, query: &str) -> crate::common::http::Response {
    send(
        server.addr,
        "GET",
        &format!("/api/v1/evidence/sha256/{hash}{query}"),
        &[],
        b"",
    )
    .unwrap()
}

/// Saves the evidence record of the object `hash` (hex) by each anchor of `names` as
/// `<work>/<name>.ers`.
fn save_records(server: &Server, work: &Path, hash: &str, names: &[&str]) {
    for name in names {
        let r = evidence(server, hash, &format!("?anchor={name}"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        std::fs::write(work.join(format!("{name}.ers")), &r.body).unwrap();
    }
}

/// Asserts that the evidence record of `hash` by `anchor` is the 404 `anchor_pending`;
/// its JSON.
fn assert_anchor_pending(server: &Server, hash: &str, anchor: &str) -> Value {
    let (status, e) = get_json(
        server,
        &format!("/api/v1/evidence/sha256/{hash}?anchor={anchor}"),
    );
    assert_eq!(
        (status, e["error"].as_str()),
        (404, Some("anchor_pending")),
        "{e}"
    );
    e
}

/// Stamps `n` tokens; each one's (token DER, whole response).
fn stamp(server: &Server, tag: &str, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let data = format!("{tag} document {i}");
            let req = request_der(
                HashAlgorithm::Sha256,
                data.as_bytes(),
                Some(i as u64 + 7),
                true,
                None,
            );
            let resp = timestamp(server.addr, &req);
            let (_, token) = granted(&resp).unwrap();
            (token, resp)
        })
        .collect()
}

/// `hanko evidence verify` in `dir`.
fn verify(dir: &Path, args: &[&str]) -> std::process::Output {
    hanko()
        .current_dir(dir)
        .args(["evidence", "verify"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn tokens_are_anchored_and_their_evidence_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let dir = work.join("data");
    dev_init(&dir);
    // Each batch closes at the cap, never by time: under load five requests in a row can
    // take longer than any short interval, and a batch closed between them would split
    // what this test expects whole. The start's audit records (issue #18) come first.
    let s = start_records(&dir);
    let cap = 5 + s;
    let server = start_dev_with_extra(
        &dir,
        &format!("[anchor]\ninterval_secs = 3600\nmax_leaves = {cap}\n"),
    );
    let (status, list) = get_json(&server, "/api/v1/batches");
    assert_eq!(status, 200);
    assert_eq!(
        list["batches"],
        Value::Array(vec![]),
        "nothing issued, nothing batched"
    );

    let tokens = stamp(&server, "anchored", 5);
    let hash0 = hex::encode(HashAlgorithm::Sha256.digest(&tokens[0].0));
    // Open: a 404 saying when.
    let (status, open) = get_json(&server, &format!("/api/v1/evidence/sha256/{hash0}"));
    if status == 404 && open["error"] == "batch_open" {
        assert!(
            open["expected_by"].as_str().unwrap().ends_with('Z'),
            "{open}"
        );
        assert!(
            open["error_description"]
                .as_str()
                .unwrap()
                .contains("expected by")
        );
    }

    let batch = wait_batch(&server, 1, Duration::from_secs(60), |b| {
        anchor(b, "self")["state"] == "done"
    });
    // The start's audit records, then the five tokens.
    assert_eq!(batch["first_seq"], 1);
    assert_eq!(batch["last_seq"], 5 + s);
    assert_eq!(batch["leaf_count"], 5 + s);
    assert_eq!(batch["hash_alg"], "sha256");
    assert_eq!(batch["root"].as_str().unwrap().len(), 64);
    assert_eq!(anchor(&batch, "self")["attempts"], 1);
    let (_, list) = get_json(&server, "/api/v1/batches?limit=10");
    assert_eq!(list["batches"][0]["id"], 1);

    // Every token's evidence record verifies against the dev root, offline.
    let ca = dir.join("dev-pki/root.pem");
    for (i, (token, resp)) in tokens.iter().enumerate() {
        let hash = hex::encode(HashAlgorithm::Sha256.digest(token));
        let r = evidence(&server, &hash, "");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(
            r.header("content-disposition").unwrap(),
            format!("attachment; filename=\"{}-self.ers\"", &hash[..16])
        );
        let tsr = work.join(format!("t{i}.tsr"));
        std::fs::write(&tsr, resp).unwrap();
        let ers = work.join(format!("t{i}.ers"));
        std::fs::write(&ers, &r.body).unwrap();
        let out = verify(
            work,
            &[
                ers.to_str().unwrap(),
                "--data",
                tsr.to_str().unwrap(),
                "--ca",
                ca.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("this file existed at 20"),
            "{}",
            text(&out)
        );
        assert!(text(&out).contains("anchored by 1 TSA ("), "{}", text(&out));
        // The one archive time-stamp, as relied on: its algorithms, its chain, valid now.
        let step = text(&out)
            .lines()
            .find(|l| l.trim_start().starts_with("chain 0 time-stamp 0: "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{}", text(&out)));
        assert!(step.contains("imprint sha256, signature "), "{step}");
        assert!(step.contains(" <- "), "{step}");
        assert!(step.ends_with("; valid at now"), "{step}");
    }
    // Bouncy Castle's RFC 4998 code agrees: valid for the token, its time-stamp's
    // signature valid, invalid for the token with one byte changed.
    let tsa_cert = dir.join("dev-pki/tsa-rsa3072.pem");
    let cases: Vec<(String, std::path::PathBuf)> = tokens
        .iter()
        .enumerate()
        .map(|(i, (token, _))| {
            let data = work.join(format!("t{i}.token"));
            std::fs::write(&data, token).unwrap();
            (format!("t{i}"), data)
        })
        .collect();
    bouncy_castle(work, &cases, &tsa_cert);

    // The record of one token is not evidence for another (t1 would pass: leaves 0 and 1
    // are siblings, so the first list of t0's reduced tree holds t1's hash too, and RFC
    // 4998 accepts either).
    let out = verify(
        work,
        &["t0.ers", "--data", "t2.tsr", "--ca", ca.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("FAILED"), "{}", text(&out));
    // By serial, and through `hanko evidence get`: the same record.
    let (serial, _) = granted(&tokens[2].1).unwrap();
    let r = send(
        server.addr,
        "GET",
        &format!("/api/v1/evidence/serial/{serial}?kind=timestamp"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, std::fs::read(work.join("t2.ers")).unwrap());
    let url = format!("http://{}", server.addr);
    let out = hanko()
        .current_dir(work)
        .args([
            "evidence", "get", "--file", "t3.tsr", "--url", &url, "-o", "got.ers",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(work.join("got.ers")).unwrap(),
        std::fs::read(work.join("t3.ers")).unwrap()
    );

    // Refusals: unknown hash, malformed hash, unknown anchor, unknown query.
    let (status, e) = get_json(
        &server,
        &format!("/api/v1/evidence/sha256/{}", "ab".repeat(32)),
    );
    assert_eq!(
        (status, e["error"].as_str()),
        (404, Some("not_found")),
        "{e}"
    );
    let (status, e) = get_json(&server, "/api/v1/evidence/sha256/xyz");
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );
    let (status, e) = get_json(
        &server,
        &format!("/api/v1/evidence/sha256/{hash0}?anchor=nope"),
    );
    assert_eq!(status, 404, "{e}");
    let (status, _) = get_json(&server, &format!("/api/v1/evidence/sha256/{hash0}?x=1"));
    assert_eq!(status, 400);
    let out = hanko()
        .current_dir(work)
        .args([
            "evidence",
            "get",
            "--sha256",
            &"cd".repeat(32),
            "--url",
            &url,
            "-o",
            "none.ers",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no issued object"), "{}", text(&out));

    // Metrics.
    let (_, m) = server.get("/metrics");
    assert!(
        metric(&m, "hanko_anchor_batches_total").unwrap() >= 1.0,
        "{m}"
    );
    assert!(metric(&m, "hanko_anchor_open_leaves").is_some(), "{m}");
    assert!(
        metric(&m, "hanko_anchor_oldest_unanchored_seconds").is_some(),
        "{m}"
    );
    assert!(
        metric(&m, "hanko_anchor_seconds_count{target=\"self\"}").unwrap() >= 1.0,
        "{m}"
    );
    assert!(server.output().contains("anchor batch closed"));

    // The next batch: batch 1's own archive time-stamp (seq 6 + s, logged like any
    // token), tokens up to the cap but one, and a seal, whose leaf is the sealed file.
    let more = stamp(&server, "later", (cap - 2) as usize);
    let doc = b"a certificate of residence, sealed and anchored".to_vec();
    let key = dev_api_key(&dir);
    let (status, head, p7s) = seal(
        server.addr,
        "credential=seal-p256&level=B-B",
        Some(&key),
        &doc,
    );
    assert_eq!(status, 200, "{head}");
    std::fs::write(work.join("doc.p7s"), &p7s).unwrap();
    std::fs::write(work.join("later.tsr"), &more[0].1).unwrap();
    let start = Instant::now();
    let seal_hash = hex::encode(HashAlgorithm::Sha256.digest(&p7s));
    while evidence(&server, &seal_hash, "").status != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let b2 = wait_batch(&server, 2, Duration::from_secs(5), |b| {
        anchor(b, "self")["state"] == "done"
    });
    assert_eq!(b2["first_seq"], 6 + s, "{b2}");
    assert_eq!(b2["leaf_count"], cap, "{b2}");
    let out = hanko()
        .current_dir(work)
        .args([
            "evidence",
            "get",
            "--file",
            "later.tsr",
            "--url",
            &url,
            "-o",
            "later.ers",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = hanko()
        .current_dir(work)
        .args([
            "evidence", "get", "--file", "doc.p7s", "--url", &url, "-o", "doc.ers",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for (ers, data) in [("later.ers", "later.tsr"), ("doc.ers", "doc.p7s")] {
        let out = verify(work, &[ers, "--data", data, "--ca", ca.to_str().unwrap()]);
        assert!(out.status.success(), "{ers}: {}", text(&out));
    }
    std::fs::write(work.join("later.token"), &more[0].0).unwrap();
    bouncy_castle(
        work,
        &[
            ("later".to_owned(), work.join("later.token")),
            ("doc".to_owned(), work.join("doc.p7s")),
        ],
        &tsa_cert,
    );

    // The log: every record up to the last batch in exactly one, roots recomputed.
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    let d = dir.to_str().unwrap();
    let out = hanko()
        .args(["log", "verify", "--data-dir", d])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("batches intact: 2 batches cover seq 1..="),
        "{}",
        text(&out)
    );
    let db = dir.join("issuance-log.sqlite");
    let tamper = Command::new("sqlite3")
        .args([
            db.to_str().unwrap(),
            "UPDATE anchor_batches SET root = zeroblob(32) WHERE id = 1",
        ])
        .output()
        .unwrap();
    assert!(
        tamper.status.success(),
        "{}",
        String::from_utf8_lossy(&tamper.stderr)
    );
    let out = hanko()
        .args(["log", "verify", "--data-dir", d])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("first bad batch: id 1: stored root"),
        "{}",
        text(&out)
    );
}

/// Bouncy Castle 1.72's `org.bouncycastle.tsp.ers` on the records `<work>/<name>.ers` of
/// the objects in `cases` (name, data file), stamped by the TSA certificate `tsa_cert`
/// (hanko-anchor's test-support runner of `anchor/tests/java/ErsCheck.java`): each
/// record must be valid for its data and its time-stamp signature, and invalid for the
/// data changed.
fn bouncy_castle(work: &Path, cases: &[(String, std::path::PathBuf)], tsa_cert: &Path) {
    let cases: Vec<BcCase> = cases
        .iter()
        .map(|(name, data)| BcCase {
            name: name.clone(),
            record: work.join(format!("{name}.ers")),
            data: data.clone(),
            tsa_cert: tsa_cert.to_owned(),
        })
        .collect();
    assert_bouncy_castle_accepts(work, &cases);
}

/// A TCP relay on a fixed port to `to`, refusing connections while `down` is set: an
/// external TSA that goes away and comes back at the same address.
fn relay(to: SocketAddr, down: Arc<AtomicBool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut client) = c else { continue };
            if down.load(Ordering::SeqCst) {
                drop(client);
                continue;
            }
            let Ok(mut server) = TcpStream::connect(to) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c2.read(&mut buf) {
                    if n == 0 || s2.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = server.read(&mut buf) {
                    if n == 0 || client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

#[test]
fn an_external_tsa_that_is_down_delays_only_its_own_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let tsa_dir = work.join("tsa");
    let tsa = Server::start(hanko(), &["--dev", "--data-dir", tsa_dir.to_str().unwrap()]);
    let down = Arc::new(AtomicBool::new(false));
    let via = relay(tsa.addr, down.clone());
    let dir = work.join("data");
    dev_init(&dir);
    let tsa_root = tsa_dir.join("dev-pki/root.pem");
    let server = start_dev_with_extra(
        &dir,
        &format!(
            "[anchor]\ninterval_secs = 1\nretry_max_secs = 2\n\n[[anchor.external]]\nname = \"tsa2\"\n\
             url = \"http://{via}/tsa\"\nca = {:?}\ntimeout_ms = 2000\n",
            tsa_root.to_str().unwrap()
        ),
    );
    // One token: the batch closes an interval (1 s) after it, so more tokens, slowed by
    // a loaded machine, could straddle two batches (seen in CI: 6 leaves, not 8).
    let first = stamp(&server, "both", 1);
    let b1 = wait_batch(&server, 1, Duration::from_secs(60), |b| {
        anchor(b, "self")["state"] == "done" && anchor(b, "tsa2")["state"] == "done"
    });
    assert_eq!(b1["leaf_count"], 1 + start_records(&dir));
    // One record per anchor; together they say two TSAs anchored the token.
    let hash = hex::encode(HashAlgorithm::Sha256.digest(&first[0].0));
    std::fs::write(work.join("t.tsr"), &first[0].1).unwrap();
    save_records(&server, work, &hash, &["self", "tsa2"]);
    let ca = dir.join("dev-pki/root.pem");
    let out = verify(
        work,
        &[
            "self.ers",
            "tsa2.ers",
            "--data",
            "t.tsr",
            "--ca",
            ca.to_str().unwrap(),
            "--ca",
            tsa_root.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("anchored by 2 TSAs"), "{}", text(&out));
    // The external TSA's token is its own: it does not verify under our root alone.
    let out = verify(
        work,
        &["tsa2.ers", "--data", "t.tsr", "--ca", ca.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // The TSA goes away: the next batch is anchored by self, tsa2 waits and retries.
    down.store(true, Ordering::SeqCst);
    let second = stamp(&server, "self only", 2);
    let b2 = wait_batch(&server, 2, Duration::from_secs(60), |b| {
        anchor(b, "self")["state"] == "done" && anchor(b, "tsa2")["attempts"].as_u64() >= Some(2)
    });
    let pending = anchor(&b2, "tsa2");
    assert_eq!(pending["state"], "pending", "{b2}");
    assert!(
        pending["last_error"].as_str().unwrap().contains("/tsa"),
        "{b2}"
    );
    assert!(pending["next_attempt_at"].is_string(), "{b2}");
    let hash2 = hex::encode(HashAlgorithm::Sha256.digest(&second[0].0));
    let (status, _) = server.get(&format!("/api/v1/evidence/sha256/{hash2}"));
    assert_eq!(status, 200, "the default anchor (self) is done");
    let e = assert_anchor_pending(&server, &hash2, "tsa2");
    assert_eq!(e["anchors"][0]["name"], "tsa2");
    let (_, m) = server.get("/metrics");
    assert!(
        metric(&m, "hanko_anchor_failures_total{target=\"tsa2\"}").unwrap() >= 2.0,
        "{m}"
    );

    // It comes back: its anchor completes.
    down.store(false, Ordering::SeqCst);
    let b2 = wait_batch(&server, 2, Duration::from_secs(60), |b| {
        anchor(b, "tsa2")["state"] == "done"
    });
    assert!(
        anchor(&b2, "tsa2")["attempts"].as_u64().unwrap() >= 3,
        "{b2}"
    );
    let r = evidence(&server, &hash2, "?anchor=tsa2");
    assert_eq!(r.status, 200);
    drop(tsa);
}

#[test]
fn two_nodes_on_one_postgres_batch_one_at_a_time_and_take_over() {
    let dir = shared_dev_data_dir();
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let config = |node: &str| {
        dev_config_with(dir, &db.dir.path().join(format!("{node}.toml")), |t| {
            store_table(t).insert("node_id".into(), node.into());
            let mut anchor = toml::Table::new();
            anchor.insert("interval_secs".into(), 1.into());
            t.insert("anchor".into(), toml::Value::Table(anchor));
        })
    };
    let (cfg_a, cfg_b) = (config("node-a"), config("node-b"));
    let a = start_dev_server(dir, &db, Some(&cfg_a));
    let b = start_dev_server(dir, &db, Some(&cfg_b));
    stamp(&a, "node a", 2);
    stamp(&b, "node b", 2);
    let b1 = wait_batch(&a, 1, Duration::from_secs(60), |b| {
        anchor(b, "self")["state"] == "done"
    });
    assert!(b1["leaf_count"].as_u64().unwrap() >= 1, "{b1}");
    // Exactly one node holds the batcher lock.
    let holds = |s: &Server| s.output().contains("batcher lock taken");
    assert!(holds(&a) != holds(&b), "{}\n{}", a.output(), b.output());
    let (holder, other) = if holds(&a) { (a, b) } else { (b, a) };

    // The holder dies (SIGKILL): its session ends, the other node takes over and anchors
    // what is issued next.
    drop(holder);
    let later = stamp(&other, "after the takeover", 2);
    let hash = hex::encode(HashAlgorithm::Sha256.digest(&later[1].0));
    let start = Instant::now();
    while evidence(&other, &hash, "").status != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            other.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(holds(&other), "{}", other.output());
    let (status, out) = other.stop();
    assert!(status.success(), "{out}");
    let verified = db.assert_verifies();
    assert!(verified.contains("batches intact: "), "{verified}");
}

/// The open batch's 404, asserted outright: with a long interval and a higher
/// `max_leaves`, one token's batch is surely open, and the reply says when it will close.
/// Then `max_leaves` closes batches early, each capped to that many leaves, the rest
/// going to the next one; the last archive time-stamp alone never closes another.
#[test]
fn a_batch_closes_early_at_max_leaves_and_holds_no_more() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    // The start's audit records (issue #18) precede the tokens: the cap is three more.
    let s = start_records(&dir);
    let cap = s + 3;
    let server = start_dev_with_extra(
        &dir,
        &format!("[anchor]\ninterval_secs = 3600\nmax_leaves = {cap}\n"),
    );
    let before = unix_now();
    let first = stamp(&server, "early", 1);
    let after = unix_now();
    let hash0 = hex::encode(HashAlgorithm::Sha256.digest(&first[0].0));
    // Open for more than one batcher tick: one record, far from the interval and the cap.
    std::thread::sleep(Duration::from_millis(2500));
    let (status, open) = get_json(&server, &format!("/api/v1/evidence/sha256/{hash0}"));
    assert_eq!(
        (status, open["error"].as_str()),
        (404, Some("batch_open")),
        "{open}"
    );
    let expected_by = open["expected_by"].as_str().unwrap();
    assert!(expected_by.ends_with('Z'), "{open}");
    let expected_by = chrono::DateTime::parse_from_rfc3339(expected_by).unwrap();
    // The record's issue time plus the interval (RFC 3339 to the second at least).
    let expected_by = expected_by.timestamp();
    assert!(
        (before - 1 + 3600..=after + 1 + 3600).contains(&expected_by),
        "{open}: issued in {before}..={after} (Unix seconds)"
    );
    assert!(
        open["error_description"]
            .as_str()
            .unwrap()
            .contains("expected by"),
        "{open}"
    );
    let (_, list) = get_json(&server, "/api/v1/batches");
    assert_eq!(list["batches"], Value::Array(vec![]), "{list}");

    // 2s + 6 more: with the s audit records, 2s + 7 tokens and one archive time-stamp
    // per batch make 3 batches of `cap` (the third's own archive time-stamp is the one
    // record left open).
    let rest = stamp(&server, "capped", usize::try_from(2 * s + 6).unwrap());
    let b3 = wait_batch(&server, 3, Duration::from_secs(60), |b| {
        anchor(b, "self")["state"] == "done"
    });
    let mut next = 1;
    for id in 1..=3 {
        let b = if id == 3 {
            b3.clone()
        } else {
            wait_batch(&server, id, Duration::from_secs(5), |_| true)
        };
        assert_eq!(b["leaf_count"], cap, "{b}");
        assert_eq!(b["first_seq"], next, "{b}");
        assert_eq!(b["last_seq"], next + cap - 1, "{b}");
        next += cap;
    }
    eventually("the last archive time-stamp is the one open leaf", || {
        metric(&server.get("/metrics").1, "hanko_anchor_open_leaves") == Some(1.0)
    });
    let (status, _) = server.get("/api/v1/batches/4");
    assert_eq!(status, 404, "{}", server.output());
    // Every token is in one of them, the first one too now.
    for (token, _) in first.iter().chain(&rest) {
        let hash = hex::encode(HashAlgorithm::Sha256.digest(token));
        let r = evidence(&server, &hash, "");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
}

/// The audit records a dev server of `dir` writes before it listens (issue #18):
/// `key-loaded` for each configured key, then `service-started` (its dev certificates
/// are never within the expiry warning: dev-init renews them 30 days ahead).
fn start_records(dir: &Path) -> u64 {
    let cfg: toml::Table = std::fs::read_to_string(dir.join("hanko.toml"))
        .unwrap()
        .parse()
        .unwrap();
    cfg["keys"].as_array().unwrap().len() as u64 + 1
}

/// Seconds since the Unix epoch, now.
fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(since.unwrap().as_secs()).unwrap()
}

/// Nothing new issued, no new batch: over several intervals the first batch's own
/// archive time-stamp waits alone (open, and counted as such), and it joins the batch
/// that the next token closes.
#[test]
fn archive_time_stamps_alone_never_close_a_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let server = start_dev_with_extra(&dir, "[anchor]\ninterval_secs = 1\n");
    // One token: two requests in a row could straddle a close (interval 1 s) and split
    // the batch this test expects whole.
    stamp(&server, "before the quiet", 1);
    let b1 = wait_batch(&server, 1, Duration::from_secs(60), |b| {
        anchor(b, "self")["state"] == "done"
    });
    // The start's audit records, then the token.
    let s = start_records(&dir);
    assert_eq!(
        (b1["first_seq"].as_u64(), b1["last_seq"].as_u64()),
        (Some(1), Some(1 + s)),
        "{b1}"
    );
    // Four intervals with only the archive time-stamp (seq s + 2) waiting.
    std::thread::sleep(Duration::from_secs(4));
    let (_, list) = get_json(&server, "/api/v1/batches");
    assert_eq!(list["batches"].as_array().unwrap().len(), 1, "{list}");
    let (_, m) = server.get("/metrics");
    assert_eq!(metric(&m, "hanko_anchor_open_leaves"), Some(1.0), "{m}");
    // Batch 1 is anchored and the archive time-stamp is no issued record: nothing waits.
    assert_eq!(
        metric(&m, "hanko_anchor_oldest_unanchored_seconds"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(metric(&m, "hanko_anchor_batches_total"), Some(1.0), "{m}");

    let later = stamp(&server, "after the quiet", 1);
    let b2 = wait_batch(&server, 2, Duration::from_secs(60), |b| {
        anchor(b, "self")["state"] == "done"
    });
    assert_eq!(b2["first_seq"], 2 + s, "the archive time-stamp joins: {b2}");
    assert_eq!(b2["last_seq"], 3 + s, "{b2}");
    let hash = hex::encode(HashAlgorithm::Sha256.digest(&later[0].0));
    assert_eq!(evidence(&server, &hash, "").status, 200);
}

/// An https external target: a second `hanko serve --dev`'s TLS listener, trusted
/// through `tls_ca` (its dev root) and anchoring every batch; the same URL without
/// `tls_ca` (the public web PKI's roots) is refused at the handshake and stays pending.
#[test]
fn an_https_external_tsa_anchors_with_its_tls_ca_and_not_without() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let tsa_dir = work.join("tsa");
    let tsa = Server::start(hanko(), &["--dev", "--data-dir", tsa_dir.to_str().unwrap()]);
    let tls = tsa.tls_addr();
    let tsa_root = tsa_dir.join("dev-pki/root.pem");
    let root = tsa_root.to_str().unwrap();
    let dir = work.join("data");
    dev_init(&dir);
    let server = start_dev_with_extra(
        &dir,
        &format!(
            "[anchor]\ninterval_secs = 1\nretry_max_secs = 2\n\n\
             [[anchor.external]]\nname = \"tls\"\nurl = \"https://127.0.0.1:{port}/tsa\"\n\
             tls_ca = {root:?}\nca = {root:?}\ntimeout_ms = 5000\n\n\
             [[anchor.external]]\nname = \"untrusted\"\nurl = \"https://127.0.0.1:{port}/tsa\"\n\
             ca = {root:?}\ntimeout_ms = 5000\n",
            port = tls.port()
        ),
    );
    let tokens = stamp(&server, "over https", 2);
    let b1 = wait_batch(&server, 1, Duration::from_secs(60), |b| {
        anchor(b, "self")["state"] == "done"
            && anchor(b, "tls")["state"] == "done"
            && anchor(b, "untrusted")["attempts"].as_u64() >= Some(2)
    });
    let refused = anchor(&b1, "untrusted");
    assert_eq!(refused["state"], "pending", "{b1}");
    let why = refused["last_error"].as_str().unwrap();
    assert!(why.contains("https://127.0.0.1:"), "{b1}");
    assert!(why.to_lowercase().contains("certificate"), "{b1}");
    assert_eq!(anchor(&b1, "tls")["attempts"], 1, "{b1}");

    // The https anchor's record verifies under the other server's root, with ours.
    let hash = hex::encode(HashAlgorithm::Sha256.digest(&tokens[0].0));
    std::fs::write(work.join("t.tsr"), &tokens[0].1).unwrap();
    save_records(&server, work, &hash, &["self", "tls"]);
    assert_anchor_pending(&server, &hash, "untrusted");
    let ca = dir.join("dev-pki/root.pem");
    let out = verify(
        work,
        &[
            "self.ers",
            "tls.ers",
            "--data",
            "t.tsr",
            "--ca",
            ca.to_str().unwrap(),
            "--ca",
            root,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("anchored by 2 TSAs"), "{}", text(&out));
    drop(tsa);
}
