//! Issue #16, renewal of evidence records an archive holds (`POST
//! /api/v1/evidence/renew`, `hanko evidence renew`) through the real binary, on SQLite
//! (and the API test on PostgreSQL too):
//!
//! - a Hanko-made record (an archive object's): not due -> 409 and nothing logged; every
//!   bad input its 4xx and nothing logged; renewed by a time-stamp and then by a new
//!   SHA-512 hash tree, each renewal token logged as `archive-stamp` of the caller; the
//!   renewed records verify with `hanko evidence verify` and with Bouncy Castle;
//! - import: records Bouncy Castle's ERS code produced (its own TSA, keys generated in
//!   the test run) are refused while their root is not trusted, then checked and renewed
//!   with `renewal.trust_anchors`, and Bouncy Castle validates the renewed records;
//! - the algorithm list: SHA-256 ending within the lead asks for a SHA-512 hash tree (the
//!   data hash needed, an algorithm left out refused), made without `force`;
//! - time travel: `renewal_time_travel.rs`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use hanko_anchor::test_support::{BcCase, assert_bouncy_castle_accepts, bouncy_castle_make};
use hanko_pki::HashAlgorithm;
use hanko_server::auth::key_digest_hex;
use serde_json::{Value, json};

use crate::common::http::send;
use crate::common::log::{Backend, TestDb, dev_config_with, shared_dev_data_dir, start_dev_server};
use crate::common::{Server, hanko, metric, text};

pub(crate) const ARCHIVER_KEY: &str = "hanko_it-renewal-archiver-key";
const AUDITOR_KEY: &str = "hanko_it-renewal-auditor-key";
pub(crate) const DAY: Duration = Duration::from_secs(86_400);

/// The shared dev data directory's config with a 1 s anchor interval, an archiver (scope
/// archive) and an auditor (log:read), then `edit`.
pub(crate) fn config(dir: &Path, name: &str, edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
    dev_config_with(shared_dev_data_dir(), &dir.join(name), |t| {
        let mut anchor = toml::Table::new();
        anchor.insert("interval_secs".into(), 1.into());
        t.insert("anchor".into(), toml::Value::Table(anchor));
        let client = |name: &str, key: &str, scope: &str| {
            let mut c = toml::Table::new();
            c.insert("name".into(), name.into());
            c.insert("api_key_sha256".into(), key_digest_hex(key).into());
            c.insert("scopes".into(), toml::Value::Array(vec![scope.into()]));
            toml::Value::Table(c)
        };
        t.insert(
            "clients".into(),
            toml::Value::Array(vec![
                client("archiver", ARCHIVER_KEY, "archive"),
                client("auditor", AUDITOR_KEY, "log:read"),
            ]),
        );
        edit(t);
    })
}

/// POST to the renewal route: (status, body, head).
pub(crate) fn renew(
    server: &Server,
    key: Option<&str>,
    content_type: &str,
    query: &str,
    body: &[u8],
) -> (u16, Vec<u8>, String) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let r = send(
        server.addr,
        "POST",
        &format!("/api/v1/evidence/renew{query}"),
        &headers,
        body,
    )
    .unwrap();
    (r.status, r.body, r.head)
}

/// Asserts a JSON refusal `status` whose description says `says`.
pub(crate) fn refused(got: (u16, Vec<u8>, String), status: u16, says: &str) {
    let v: Value = serde_json::from_slice(&got.1)
        .unwrap_or_else(|e| panic!("{}: {e}: {}", got.2, String::from_utf8_lossy(&got.1)));
    assert_eq!(got.0, status, "{v}");
    let d = v["error_description"].as_str().unwrap_or("");
    assert!(d.contains(says), "{status}: {d:?} should say {says:?}");
}

/// A renewal that succeeded: the record.
pub(crate) fn renewed(got: (u16, Vec<u8>, String), kind: &str) -> Vec<u8> {
    assert_eq!(got.0, 200, "{}", String::from_utf8_lossy(&got.1));
    assert!(
        got.2
            .to_ascii_lowercase()
            .contains(&format!("hanko-renewal: {kind}")),
        "{}",
        got.2
    );
    got.1
}

/// The number of `archive-stamp` records in the log.
fn archive_stamps(db: &TestDb) -> Vec<Value> {
    let out = db.log(&["export"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "archive-stamp")
        .collect()
}

/// Submits `file`'s SHA-256 as an archive object and waits (60 s) for its record.
pub(crate) fn archived_record(server: &Server, file: &Path) -> Vec<u8> {
    let hex = hex::encode(HashAlgorithm::Sha256.digest(&std::fs::read(file).unwrap()));
    let body = serde_json::to_vec(&json!({"hashes": [{"alg": "sha256", "hex": hex}]})).unwrap();
    let auth = format!("Bearer {ARCHIVER_KEY}");
    let r = send(
        server.addr,
        "POST",
        "/api/v1/archive/objects",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    crate::archive::wait_evidence(server, &hex)
}

/// `[faketime OFFSET] hanko evidence verify RECORD --data DATA --ca ROOT...`.
pub(crate) fn verify(
    record: &Path,
    data: &Path,
    roots: &[&Path],
    faketime: Option<&str>,
) -> Output {
    let mut cmd = match faketime {
        Some(offset) => {
            let mut c = std::process::Command::new("faketime");
            c.args(["-f", offset]).arg(env!("CARGO_BIN_EXE_hanko"));
            c.env_remove("HANKO_PIN").env_remove("HANKO_PIN_FILE");
            c
        }
        None => hanko(),
    };
    cmd.args(["evidence", "verify"])
        .arg(record)
        .arg("--data")
        .arg(data);
    for r in roots {
        cmd.arg("--ca").arg(r);
    }
    cmd.output().unwrap()
}

pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn hanko_records_are_renewed_through_the_api_and_bad_input_changes_nothing_sqlite() {
    renewed_through_the_api(Backend::Sqlite);
}

#[test]
fn hanko_records_are_renewed_through_the_api_and_bad_input_changes_nothing_postgres() {
    renewed_through_the_api(Backend::Postgres);
}

fn renewed_through_the_api(backend: Backend) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let work = db.dir.path().to_owned();
    let dev = shared_dev_data_dir();
    let root = dev.join("dev-pki/root.pem");
    let server = start_dev_server(dev, &db, Some(&config(&work, "renew.toml", |_| {})));
    let data = write(&work, "document.pdf", b"an archived document, renewed");
    let r0 = write(&work, "r0.ers", &archived_record(&server, &data));
    let er = std::fs::read(&r0).unwrap();
    let stamps = archive_stamps(&db).len();
    let k = Some(ARCHIVER_KEY);
    let bin = "application/octet-stream";

    // Who may: anonymous 401, a client without the scope 403.
    refused(renew(&server, None, bin, "", &er), 401, "authentication");
    refused(
        renew(&server, Some(AUDITOR_KEY), bin, "", &er),
        403,
        "scope archive",
    );
    // A fresh record (dev TSA certificates last two years) is not due: 409 with when.
    refused(renew(&server, k, bin, "", &er), 409, "not due");
    refused(
        renew(&server, k, bin, "", &er),
        409,
        "time-stamp renewal from 20",
    );
    // Bad input, each its 4xx.
    let mut tampered = er.clone();
    let last = tampered.len() - 10;
    tampered[last] ^= 1; // inside the token's signature
    let bc = bouncy_castle_make(&work, &work.join("bc"), std::slice::from_ref(&data));
    let foreign = std::fs::read(&bc.records[0]).unwrap();
    let sha512 = hex::encode(HashAlgorithm::Sha512.digest(&std::fs::read(&data).unwrap()));
    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            bin,
            String::new(),
            b"not a record".to_vec(),
            400,
            "does not parse",
        ),
        (
            bin,
            "?data_hash=md5:00".into(),
            er.clone(),
            400,
            "unknown hash algorithm",
        ),
        (
            bin,
            "?data_hash=sha512:abcd".into(),
            er.clone(),
            400,
            "got 2 bytes",
        ),
        (
            bin,
            "?force=maybe".into(),
            er.clone(),
            400,
            "unknown query parameter",
        ),
        (bin, String::new(), Vec::new(), 400, "empty"),
        (
            bin,
            String::new(),
            vec![0x30; 1_500_000],
            413,
            "at most 1 MiB",
        ),
        (bin, String::new(), tampered, 422, "does not verify"),
        (bin, "?force=true".into(), foreign, 422, "does not verify"),
        (
            bin,
            format!("?data_hash=sha256:{}", "00".repeat(32)),
            er.clone(),
            422,
            "does not check",
        ),
        (
            bin,
            format!(
                "?data_hash=sha512:{sha512}&data_hash=sha384:{}",
                "00".repeat(48)
            ),
            er.clone(),
            400,
            "two algorithms",
        ),
        (
            "application/json",
            String::new(),
            b"{\"record\": 1}".to_vec(),
            400,
            "the body is not",
        ),
        (
            "text/plain",
            String::new(),
            er.clone(),
            415,
            "application/octet-stream",
        ),
    ];
    for (ct, query, body, status, says) in cases {
        refused(renew(&server, k, ct, &query, &body), status, says);
    }
    assert_eq!(
        archive_stamps(&db).len(),
        stamps,
        "a refusal issued a token"
    );

    // Forced: a time-stamp renewal, logged as the archiver's archive-stamp.
    let r1 = renewed(renew(&server, k, bin, "?force=true", &er), "time-stamp");
    let logged = archive_stamps(&db);
    assert_eq!(logged.len(), stamps + 1);
    assert_eq!(logged.last().unwrap()["client"], "archiver", "{logged:?}");
    let r1 = write(&work, "r1.ers", &r1);
    let out = verify(&r1, &data, &[&root], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("chain 0 time-stamp 1"),
        "{}",
        text(&out)
    );

    // A hash-tree renewal to SHA-512, in JSON with base64.
    let body = json!({
        "record": base64::Engine::encode(&base64::engine::general_purpose::STANDARD,
            std::fs::read(&r1).unwrap()),
        "data_hashes": [{"alg": "sha512", "hex": sha512}],
        "force": true,
    });
    let r2 = renewed(
        renew(
            &server,
            k,
            "application/json",
            "",
            &serde_json::to_vec(&body).unwrap(),
        ),
        "hash-tree",
    );
    let r2 = write(&work, "r2.ers", &r2);
    let out = verify(&r2, &data, &[&root], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("chain 1 time-stamp 0"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("sha512"), "{}", text(&out));

    // Bouncy Castle validates both renewals.
    let tsa_cert = dev.join("dev-pki/tsa-rsa3072.pem");
    let case = |name: &str, record: &Path| BcCase {
        name: name.to_owned(),
        record: record.to_owned(),
        data: data.clone(),
        tsa_cert: tsa_cert.clone(),
    };
    assert_bouncy_castle_accepts(
        &work,
        &[
            case("time-stamp renewal", &r1),
            case("hash-tree renewal", &r2),
        ],
    );

    // The CLI: not due is refused (exit 1, the reason), forced it renews.
    let key_file = write(
        &work,
        "archiver.key",
        format!("{ARCHIVER_KEY}\n").as_bytes(),
    );
    let url = format!("http://{}", server.addr);
    let cli = |args: &[&str]| {
        hanko()
            .args(["evidence", "renew"])
            .args(args)
            .args(["--url", &url, "--api-key-file", key_file.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = cli(&[r0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not due"), "{}", text(&out));
    assert_eq!(
        std::fs::read(&r0).unwrap(),
        er,
        "a refused renewal changed the file"
    );
    let r3 = work.join("r3.ers");
    let h = format!("sha512:{sha512}");
    let out = cli(&[
        r1.to_str().unwrap(),
        "--data-hash",
        &h,
        "--force",
        "--out",
        r3.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("2 chains, 3 archive time-stamps"),
        "{}",
        text(&out)
    );
    let out = verify(&r3, &data, &[&root], None);
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(&[r0.to_str().unwrap(), "--data-hash", "sha512:00"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // Counted by kind and outcome.
    let (_, metrics) = server.get("/metrics");
    let m = |labels: &str| {
        metric(
            &metrics,
            &format!("hanko_evidence_renewals_total{{{labels}}}"),
        )
    };
    assert_eq!(
        m("kind=\"time-stamp\",outcome=\"renewed\""),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        m("kind=\"hash-tree\",outcome=\"renewed\""),
        Some(2.0),
        "{metrics}"
    );
    assert!(
        m("kind=\"none\",outcome=\"not_due\"").unwrap_or(0.0) >= 3.0,
        "{metrics}"
    );
}

#[test]
fn bouncy_castle_records_are_imported_checked_and_renewed() {
    let db = TestDb::sqlite();
    let work = db.dir.path().to_owned();
    let dev = shared_dev_data_dir();
    let data: Vec<PathBuf> = (0..3)
        .map(|i| {
            write(
                &work,
                &format!("object-{i}.bin"),
                format!("kept by another archive #{i}").as_bytes(),
            )
        })
        .collect();
    let bc = bouncy_castle_make(&work, &work.join("bc"), &data);
    let trusted = bc.root.clone();
    let cfg = config(&work, "import.toml", |t| {
        let mut r = toml::Table::new();
        r.insert(
            "trust_anchors".into(),
            toml::Value::Array(vec![trusted.to_str().unwrap().into()]),
        );
        t.insert("renewal".into(), toml::Value::Table(r));
    });
    let server = start_dev_server(dev, &db, Some(&cfg));
    let k = Some(ARCHIVER_KEY);
    let bin = "application/octet-stream";
    let dev_root = dev.join("dev-pki/root.pem");
    // Bouncy Castle's records as they are: valid for hanko against BC's root.
    for (r, d) in bc.records.iter().zip(&data) {
        let out = verify(r, d, &[&bc.root], None);
        assert!(out.status.success(), "{}", text(&out));
    }
    // Checked first: not due (BC's TSA certificate lasts two years).
    let er0 = std::fs::read(&bc.records[0]).unwrap();
    refused(renew(&server, k, bin, "", &er0), 409, "not due");
    // Renewed: by a time-stamp, and one by a new SHA-512 hash tree.
    let r0 = write(
        &work,
        "bc0-renewed.ers",
        &renewed(renew(&server, k, bin, "?force=true", &er0), "time-stamp"),
    );
    let er1 = std::fs::read(&bc.records[1]).unwrap();
    let h = hex::encode(HashAlgorithm::Sha512.digest(&std::fs::read(&data[1]).unwrap()));
    let r1 = write(
        &work,
        "bc1-rehashed.ers",
        &renewed(
            renew(
                &server,
                k,
                bin,
                &format!("?force=true&data_hash=sha512:{h}"),
                &er1,
            ),
            "hash-tree",
        ),
    );
    for (r, d) in [(&r0, &data[0]), (&r1, &data[1])] {
        let out = verify(r, d, &[&bc.root, &dev_root], None);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("Bouncy Castle test TSA"),
            "{}",
            text(&out)
        );
        assert!(text(&out).contains("Hanko Dev"), "{}", text(&out));
    }
    // Bouncy Castle validates what Hanko renewed (the last time-stamp is Hanko's).
    let tsa_cert = dev.join("dev-pki/tsa-rsa3072.pem");
    assert_bouncy_castle_accepts(
        &work,
        &[
            BcCase {
                name: "bc renewed".into(),
                record: r0,
                data: data[0].clone(),
                tsa_cert: tsa_cert.clone(),
            },
            BcCase {
                name: "bc rehashed".into(),
                record: r1,
                data: data[1].clone(),
                tsa_cert,
            },
        ],
    );
}

/// The algorithm list drives hash-tree renewal: SHA-256 accepted only 30 more days
/// (within `hash_tree_before_days`), so a fresh record is due for a new hash tree, which
/// needs the data hash (422 without it), may not move to an algorithm left out of the
/// list (422), and is made without `force` with SHA-512; the result is not due again.
#[test]
fn a_weakening_hash_asks_for_a_hash_tree_renewal() {
    let db = TestDb::sqlite();
    let work = db.dir.path().to_owned();
    let dev = shared_dev_data_dir();
    let soon = hanko_client::verify::pdf::rfc3339(SystemTime::now() + 30 * DAY)[..10].to_owned();
    let cfg = config(&work, "weak.toml", |t| {
        let mut algorithms = toml::Table::new();
        algorithms.insert("sha256".into(), soon.into());
        algorithms.insert("sha512".into(), "2040-12-31".into());
        let mut r = toml::Table::new();
        r.insert("algorithms".into(), toml::Value::Table(algorithms));
        t.insert("renewal".into(), toml::Value::Table(r));
    });
    let server = start_dev_server(dev, &db, Some(&cfg));
    let data = write(&work, "ledger.csv", b"a ledger whose hash weakens");
    let er = archived_record(&server, &data);
    let k = Some(ARCHIVER_KEY);
    let bin = "application/octet-stream";
    let stamps = archive_stamps(&db).len();
    refused(
        renew(&server, k, bin, "", &er),
        422,
        "hash-tree renewal due: sha256 is accepted until",
    );
    let bytes = std::fs::read(&data).unwrap();
    let h384 = hex::encode(HashAlgorithm::Sha384.digest(&bytes));
    refused(
        renew(&server, k, bin, &format!("?data_hash=sha384:{h384}"), &er),
        422,
        "sha384 is not in the accepted algorithms",
    );
    assert_eq!(
        archive_stamps(&db).len(),
        stamps,
        "a refusal issued a token"
    );
    let h512 = hex::encode(HashAlgorithm::Sha512.digest(&bytes));
    let q = format!("?data_hash=sha512:{h512}");
    let rehashed = renewed(renew(&server, k, bin, &q, &er), "hash-tree");
    let out = verify(
        &write(&work, "rehashed.ers", &rehashed),
        &data,
        &[&dev.join("dev-pki/root.pem")],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    refused(
        renew(&server, k, bin, &q, &rehashed),
        409,
        "sha512 is accepted until 2040-12-31",
    );
}
