//! Issue #16, hash-tree renewal through the binary: an archive object anchored under
//! SHA-256 gets, on `POST /api/v1/archive/objects/rehash` with its SHA-512, a second
//! chain over H(h512(d) || h512(DER of its chains)) time-stamped by the own TSA; the
//! evidence route serves the record with both chains, which `hanko evidence verify` and
//! Bouncy Castle accept for the document. Asking again changes nothing ("existing");
//! each bad request is refused with its 4xx and writes nothing. The new chain, once due,
//! is time-stamp renewed by the scheduler and served so. SQLite and PostgreSQL.

use std::path::Path;

use hanko_anchor::HashAlg;
use hanko_anchor::test_support::{BcCase, assert_bouncy_castle_accepts};
use hanko_pki::HashAlgorithm;
use serde_json::{Value, json};

use crate::archive::{ARCHIVER_KEY, client, post, refused, sha256, wait_evidence};
use crate::common::log::{Backend, TestDb, dev_config_with, shared_dev_data_dir, start_dev_server};
use crate::common::{hanko, text};

const OTHER_KEY: &str = "hanko_it-other-archive-key";

fn rehash(server: &crate::common::Server, key: &str, body: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(body).unwrap();
    post(server, Some(key), "application/json", "/rehash", &body)
}

fn one(alg: &str, sha256_hex: &str, hex: &str) -> Value {
    json!({ "alg": alg, "objects": [{ "sha256": sha256_hex, "hex": hex }] })
}

/// Renewal tokens in the log (archive-stamp records of the client `renewal`).
fn renewal_tokens(db: &TestDb) -> usize {
    let out = db.log(&["export"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"client\":\"renewal\""))
        .count()
}

fn hash_tree_renewal(backend: Backend) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let work = db.dir.path().to_owned();
    let dir = shared_dev_data_dir();
    let cfg = dev_config_with(dir, &work.join("rehash.toml"), |t| {
        let mut anchor = toml::Table::new();
        anchor.insert("interval_secs".into(), 1.into());
        t.insert("anchor".into(), toml::Value::Table(anchor));
        t.insert(
            "clients".into(),
            toml::Value::Array(vec![
                client("archiver", ARCHIVER_KEY, &["archive"]),
                client("other", OTHER_KEY, &["archive"]),
            ]),
        );
    });
    let server = start_dev_server(dir, &db, Some(&cfg));
    let data = b"a contract kept for thirty years".to_vec();
    let file = work.join("contract.txt");
    std::fs::write(&file, &data).unwrap();
    let h256 = hex::encode(sha256(&data));
    let h512 = hex::encode(HashAlgorithm::Sha512.digest(&data));
    let submit = json!({ "hashes": [{ "alg": "sha256", "hex": h256 }] });
    let (status, body) = post(
        &server,
        Some(ARCHIVER_KEY),
        "application/json",
        "",
        &serde_json::to_vec(&submit).unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    let before = wait_evidence(&server, &h256);
    assert_eq!(
        hanko_anchor::check_data(&before, &data)
            .unwrap()
            .time_stamps
            .len(),
        1
    );

    // Refused, nothing written.
    refused(
        rehash(&server, ARCHIVER_KEY, &one("sha256", &h256, &h256)),
        422,
        "stronger algorithm",
    );
    refused(
        rehash(&server, ARCHIVER_KEY, &one("sha512", &h256, &h256)),
        400,
        "not a sha512 digest",
    );
    refused(
        rehash(&server, OTHER_KEY, &one("sha512", &h256, &h512)),
        404,
        "not an archive object this client submitted",
    );
    let unknown = hex::encode([7u8; 32]);
    refused(
        rehash(&server, ARCHIVER_KEY, &one("sha512", &unknown, &h512)),
        404,
        "not an archive object",
    );
    refused(
        rehash(
            &server,
            ARCHIVER_KEY,
            &json!({ "alg": "sha512", "objects": [] }),
        ),
        400,
        "empty",
    );
    assert_eq!(wait_evidence(&server, &h256), before, "nothing changed");
    assert_eq!(renewal_tokens(&db), 0);

    // Renewed: a second chain, SHA-512, served with the first.
    let (status, body) = rehash(&server, ARCHIVER_KEY, &one("sha512", &h256, &h512));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["renewed"].clone(), body["existing"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(body["objects"][0]["status"], "renewed");
    let after = wait_evidence(&server, &h256);
    let checked = hanko_anchor::check_data(&after, &data).unwrap();
    let chains: Vec<(usize, HashAlg)> = checked
        .time_stamps
        .iter()
        .map(|t| (t.chain, t.alg))
        .collect();
    assert_eq!(chains, [(0, HashAlg::Sha256), (1, HashAlg::Sha512)]);
    // Again: nothing new.
    let (status, body) = rehash(&server, ARCHIVER_KEY, &one("sha512", &h256, &h512));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["objects"][0]["status"], "existing");
    assert_eq!(wait_evidence(&server, &h256), after);

    // The new chain is renewed in turn once its certificate nears expiry (made due here
    // behind the server's back): a second SHA-512 archive time-stamp on chain 1.
    db.exec("UPDATE evidence_chains SET not_after_ns = 1 WHERE rehash_run IS NOT NULL");
    let start = std::time::Instant::now();
    let after = loop {
        let record = wait_evidence(&server, &h256);
        let checked = hanko_anchor::check_data(&record, &data).unwrap();
        if checked.time_stamps.len() == 3 {
            let chains: Vec<(usize, usize)> = checked
                .time_stamps
                .iter()
                .map(|t| (t.chain, t.index))
                .collect();
            assert_eq!(chains, [(0, 0), (1, 0), (1, 1)]);
            break record;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the rehashed chain was not renewed:\n{}",
            server.output()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    assert_eq!(
        renewal_tokens(&db),
        2,
        "the rehash's token and its renewal's, logged"
    );

    // hanko and Bouncy Castle accept the record with both chains for the document.
    let ers = work.join("contract.ers");
    std::fs::write(&ers, &after).unwrap();
    let out = hanko()
        .args(["evidence", "verify"])
        .arg(&ers)
        .arg("--data")
        .arg(&file)
        .arg("--ca")
        .arg(dir.join("dev-pki/root.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    bc(&work, &ers, &file, &dir.join("dev-pki/tsa-rsa3072.pem"));
}

fn bc(work: &Path, record: &Path, data: &Path, tsa_cert: &Path) {
    assert_bouncy_castle_accepts(
        work,
        &[BcCase {
            name: "rehashed".into(),
            record: record.to_owned(),
            data: data.to_owned(),
            tsa_cert: tsa_cert.to_owned(),
        }],
    );
}

#[test]
fn hash_tree_renewal_of_an_archive_object_sqlite() {
    hash_tree_renewal(Backend::Sqlite);
}

#[test]
fn hash_tree_renewal_of_an_archive_object_postgres() {
    hash_tree_renewal(Backend::Postgres);
}
