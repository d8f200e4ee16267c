//! Issue #16, item 1: archive systems submit object hashes through the real binary
//! (`POST /api/v1/archive/objects`, JSON and binary, and `hanko archive submit`); each
//! becomes an `archive-object` record, is anchored in the next batch, and its evidence
//! record (by hash and by serial) verifies with `hanko evidence verify` and with Bouncy
//! Castle against the original file. Every bad input is refused with its 4xx and logs
//! nothing; anonymous 401, a client without the scope 403; a hash submitted again keeps
//! its id; the requests run in the bulk lane. On SQLite and PostgreSQL. Migration 4 on a
//! log that already holds anchored batches: it migrates and still verifies.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hanko_anchor::test_support::{BcCase, assert_bouncy_castle_accepts};
use hanko_pki::HashAlgorithm;
use hanko_server::auth::key_digest_hex;
use serde_json::{Value, json};

use crate::common::http::send;
use crate::common::log::{Backend, TestDb, dev_config_with, shared_dev_data_dir, start_dev_server};
use crate::common::tsp::{granted, request_der, timestamp};
use crate::common::{Server, hanko, metric, text};

pub(crate) const ARCHIVER_KEY: &str = "hanko_it-archiver-key";
const AUDITOR_KEY: &str = "hanko_it-archive-auditor-key";

pub(crate) fn client(name: &str, key: &str, scopes: &[&str]) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("name".into(), name.into());
    t.insert("api_key_sha256".into(), key_digest_hex(key).into());
    t.insert(
        "scopes".into(),
        toml::Value::Array(scopes.iter().map(|s| (*s).into()).collect()),
    );
    toml::Value::Table(t)
}

/// The shared dev data directory's config with a 1 s anchor interval, at most 5 hashes
/// per request, an archiver (scope archive, configured interactive) and an auditor
/// (log:read only).
fn config(dir: &Path) -> PathBuf {
    dev_config_with(shared_dev_data_dir(), &dir.join("archive.toml"), |t| {
        let mut anchor = toml::Table::new();
        anchor.insert("interval_secs".into(), 1.into());
        t.insert("anchor".into(), toml::Value::Table(anchor));
        let mut archive = toml::Table::new();
        archive.insert("max_hashes_per_request".into(), 5.into());
        t.insert("archive".into(), toml::Value::Table(archive));
        let mut archiver = client("archiver", ARCHIVER_KEY, &["archive"]);
        archiver
            .as_table_mut()
            .unwrap()
            .insert("lane".into(), "interactive".into());
        t.insert(
            "clients".into(),
            toml::Value::Array(vec![
                archiver,
                client("auditor", AUDITOR_KEY, &["log:read"]),
            ]),
        );
    })
}

/// POST to the archive route, `query` appended to its path (`/rehash` for hash-tree
/// renewal): (status, JSON body).
pub(crate) fn post(
    server: &Server,
    key: Option<&str>,
    content_type: &str,
    query: &str,
    body: &[u8],
) -> (u16, Value) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let r = send(
        server.addr,
        "POST",
        &format!("/api/v1/archive/objects{query}"),
        &headers,
        body,
    )
    .unwrap();
    let v = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{}: {e}: {}", r.head, String::from_utf8_lossy(&r.body)));
    (r.status, v)
}

fn json_body(entries: &[(&str, String)]) -> Vec<u8> {
    let hashes: Vec<Value> = entries
        .iter()
        .map(|(alg, hex)| json!({ "alg": alg, "hex": hex }))
        .collect();
    serde_json::to_vec(&json!({ "hashes": hashes })).unwrap()
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    HashAlgorithm::Sha256.digest(data).try_into().unwrap()
}

/// Records in the log (`hanko log export`).
fn logged(db: &TestDb) -> Vec<Value> {
    crate::common::seal::issued(db.log(&["export"]))
}

/// Asserts `(status, error)` and that the description says `says`.
pub(crate) fn refused(got: (u16, Value), status: u16, says: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    let d = got.1["error_description"].as_str().unwrap_or("");
    assert!(d.contains(says), "{status}: {d:?} should say {says:?}");
}

/// Waits (at most 60 s) until the evidence record of `hex` is served; its DER (the
/// renewal tests' too).
pub(crate) fn wait_evidence(server: &Server, hex: &str) -> Vec<u8> {
    let start = Instant::now();
    loop {
        let r = send(
            server.addr,
            "GET",
            &format!("/api/v1/evidence/sha256/{hex}"),
            &[],
            b"",
        )
        .unwrap();
        if r.status == 200 {
            return r.body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no evidence for {hex}: {} {}\n{}",
            r.status,
            String::from_utf8_lossy(&r.body),
            server.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn archive_objects_are_anchored_and_their_evidence_verifies(backend: Backend) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let data_dir = shared_dev_data_dir();
    let work = db.dir.path().to_owned();
    let server = start_dev_server(data_dir, &db, Some(&config(&work)));
    let mut files: Vec<PathBuf> = (0..5)
        .map(|i| {
            let p = work.join(format!("object-{i}.bin"));
            std::fs::write(&p, format!("archived object {i} of {backend:?}")).unwrap();
            p
        })
        .collect();
    // An archived time-stamp response (granted, its "token" a NULL): the archive submits
    // the whole file, where `hanko evidence` would look at the token inside first.
    let tsr = work.join("object-5.tsr");
    std::fs::write(
        &tsr,
        [
            0x30, 0x09, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x02, 0x05, 0x00,
        ],
    )
    .unwrap();
    files.push(tsr);
    let hashes: Vec<[u8; 32]> = files
        .iter()
        .map(|f| sha256(&std::fs::read(f).unwrap()))
        .collect();
    let hex = |i: usize| hex::encode(hashes[i]);
    let k = Some(ARCHIVER_KEY);
    let j = "application/json";
    let bin = "application/octet-stream";

    // Who may: anonymous 401, a client without the scope 403.
    let good = json_body(&[("sha256", hex(0))]);
    refused(post(&server, None, j, "", &good), 401, "authentication");
    refused(
        post(&server, Some(AUDITOR_KEY), j, "", &good),
        403,
        "scope archive",
    );
    // Bad input, each refused whole: nothing is logged.
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            j,
            "",
            json_body(&[("sha256", hex(0)), ("md5", "00".repeat(16))]),
            400,
            "hashes[1]: unknown hash algorithm",
        ),
        (
            j,
            "",
            json_body(&[("sha256", hex(0)), ("sha512", "00".repeat(64))]),
            422,
            "SHA-256 until hash-tree renewal",
        ),
        (
            j,
            "",
            json_body(&[("sha384", "00".repeat(48))]),
            422,
            "sha384",
        ),
        (
            j,
            "",
            json_body(&[("sha256", "zz".repeat(32))]),
            400,
            "not hexadecimal",
        ),
        (
            j,
            "",
            json_body(&[("sha256", "ab".repeat(31))]),
            400,
            "got 31 bytes",
        ),
        (j, "", json_body(&[]), 400, "empty"),
        (
            j,
            "",
            json_body(&vec![("sha256", hex(0)); 6]),
            413,
            "at most 5",
        ),
        (j, "", b"{\"hashes\": [".to_vec(), 400, "the body is not"),
        (
            j,
            "?alg=sha256",
            good.clone(),
            400,
            "unknown query parameter",
        ),
        (bin, "?alg=sha256", vec![1; 33], 400, "not a whole number"),
        (bin, "", vec![1; 32], 400, "needs ?alg=sha256"),
        (bin, "?alg=sha256", Vec::new(), 400, "empty"),
        (bin, "?alg=sha256", vec![1; 32 * 6], 413, "at most 5"),
        // Over the body limit (5 × 256 + 4096 bytes): refused before it is parsed.
        (
            bin,
            "?alg=sha256",
            vec![1; 32 * 200],
            413,
            "larger than this server takes",
        ),
        ("text/plain", "", good.clone(), 415, "application/json"),
    ];
    for (ct, query, body, status, says) in cases {
        refused(post(&server, k, ct, query, &body), status, says);
    }
    assert!(
        logged(&db).is_empty(),
        "a refused submission logged something"
    );

    // JSON: three new objects, each with an id and when its batch closes.
    let (status, first) = post(
        &server,
        k,
        j,
        "",
        &json_body(&[("sha256", hex(0)), ("sha256", hex(1)), ("sha256", hex(2))]),
    );
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["new"].as_u64(), first["existing"].as_u64()),
        (Some(3), Some(0))
    );
    let objects = first["objects"].as_array().unwrap();
    for (i, o) in objects.iter().enumerate() {
        assert_eq!(o["hex"], hex(i), "{first}");
        assert_eq!(o["alg"], "sha256");
        assert_eq!(o["status"], "new");
        assert_eq!(o["evidence"], format!("/api/v1/evidence/sha256/{}", hex(i)));
        assert!(o["expected_by"].as_str().unwrap().ends_with('Z'), "{first}");
    }
    let ids: Vec<String> = objects
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");
    // Binary: object 2 again (its id kept), 3 twice in one request (logged once), 4.
    let body = [hashes[2], hashes[3], hashes[3], hashes[4]].concat();
    let (status, second) = post(&server, k, bin, "?alg=sha256", &body);
    assert_eq!(status, 200, "{second}");
    let o = second["objects"].as_array().unwrap();
    assert_eq!(o.len(), 4);
    assert_eq!(
        (o[0]["status"].as_str(), o[0]["id"].as_str()),
        (Some("existing"), Some(ids[2].as_str()))
    );
    assert_eq!(o[1]["status"], "new");
    assert_eq!(o[1]["id"], o[2]["id"], "{second}");
    assert_eq!(o[3]["status"], "new");
    assert_eq!(
        (second["new"].as_u64(), second["existing"].as_u64()),
        (Some(3), Some(1))
    );
    // The first request again: all existing, nothing written.
    let before = logged(&db).len();
    let (status, again) = post(
        &server,
        k,
        j,
        "",
        &json_body(&[("sha256", hex(0)), ("sha256", hex(1)), ("sha256", hex(2))]),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["existing"], 3);
    let again_ids: Vec<&str> = again["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(again_ids, ids);
    assert_eq!(logged(&db).len(), before, "a resubmission logged again");

    // The CLI hashes the last file locally and submits its hash only.
    let key_file = work.join("archiver.key");
    std::fs::write(&key_file, format!("{ARCHIVER_KEY}\n")).unwrap();
    let url = format!("http://{}", server.addr);
    let out = hanko()
        .args(["archive", "submit"])
        .arg(&files[5])
        .arg(&files[0])
        .args(["--url", &url, "--api-key-file", key_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains(&format!("{}  new", hex(5))), "{printed}");
    assert!(
        printed.contains(&format!("{}  {}  existing", ids[0], hex(0))),
        "{printed}"
    );
    assert!(
        printed.contains("submitted 2 hashes (1 new, 1 already submitted)"),
        "{printed}"
    );

    // Six archive objects in the log, no token, the client's name.
    let records: Vec<Value> = logged(&db)
        .into_iter()
        .filter(|r| r["kind"] == "archive-object")
        .collect();
    assert_eq!(records.len(), 6, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r["client"] == "archiver" && r["token"].is_null())
    );

    // Anchored: each object's evidence record verifies against the file itself, with
    // hanko and with Bouncy Castle; by serial too.
    let root = data_dir.join("dev-pki/root.pem");
    let mut cases = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let der = wait_evidence(&server, &hex(i));
        let ers = work.join(format!("object-{i}.ers"));
        std::fs::write(&ers, &der).unwrap();
        let out = hanko()
            .args(["evidence", "verify"])
            .arg(&ers)
            .arg("--data")
            .arg(file)
            .arg("--ca")
            .arg(&root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("this file existed at 20"),
            "{}",
            text(&out)
        );
        cases.push(BcCase {
            name: format!("object-{i}"),
            record: ers,
            data: file.clone(),
            tsa_cert: data_dir.join("dev-pki/tsa-rsa3072.pem"),
        });
    }
    assert_bouncy_castle_accepts(&work, &cases);
    // `hanko evidence get --file` finds the archived .tsr by the whole file once its
    // token is not in the log.
    let out = hanko()
        .args(["evidence", "get", "--file"])
        .arg(&files[5])
        .args(["--url", &url, "-o"])
        .arg(work.join("got-5.ers"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(work.join("got-5.ers")).unwrap(),
        std::fs::read(work.join("object-5.ers")).unwrap()
    );
    // Another object's file does not verify with object 0's record.
    let out = hanko()
        .args(["evidence", "verify"])
        .arg(work.join("object-0.ers"))
        .arg("--data")
        .arg(&files[4])
        .arg("--ca")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r = send(
        server.addr,
        "GET",
        &format!("/api/v1/evidence/serial/{}?kind=archive-object", ids[1]),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.body, std::fs::read(work.join("object-1.ers")).unwrap());
    // The log API reads the record of the kind.
    let auth = format!("Bearer {AUDITOR_KEY}");
    let r = send(
        server.addr,
        "GET",
        &format!("/api/v1/log/{}?kind=archive-object", ids[1]),
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let rec: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (rec["kind"].as_str(), rec["object_hash"].as_str()),
        (Some("archive-object"), Some(hex(1).as_str()))
    );

    // Metrics: objects counted, refusals by reason; every archive request ran in the
    // bulk lane although the archiver is configured interactive (and nothing else was
    // admitted in either lane).
    let (_, m) = server.get("/metrics");
    assert_eq!(metric(&m, "hanko_archive_objects_total"), Some(6.0), "{m}");
    for (reason, n) in [
        ("invalid", 9.0),
        ("unsupported_alg", 2.0),
        ("too_many", 2.0),
        ("too_large", 1.0),
        ("media_type", 1.0),
    ] {
        assert_eq!(
            metric(
                &m,
                &format!("hanko_archive_refused_total{{reason=\"{reason}\"}}")
            ),
            Some(n),
            "{reason}: {m}"
        );
    }
    assert!(
        metric(&m, "hanko_http_in_flight_lane{lane=\"bulk\"}").is_some(),
        "{m}"
    );
    assert!(
        metric(&m, "hanko_http_in_flight_lane{lane=\"interactive\"}").is_none(),
        "{m}"
    );

    // PostgreSQL: the database refuses every row (a trigger): a retryable 503, nothing
    // logged; once it accepts again, the same request succeeds.
    if backend == Backend::Postgres {
        let before = logged(&db).len();
        db.refuse_log_rows();
        let h = sha256(b"while the database refuses");
        let auth = format!("Bearer {ARCHIVER_KEY}");
        let r = send(
            server.addr,
            "POST",
            "/api/v1/archive/objects?alg=sha256",
            &[("Authorization", &auth), ("Content-Type", bin)],
            &h,
        )
        .unwrap();
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("retry-after"), Some("1"), "{}", r.head);
        let e: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(e["error"], "temporarily_unavailable", "{e}");
        db.accept_log_rows();
        assert_eq!(logged(&db).len(), before);
        let (status, v) = post(&server, k, bin, "?alg=sha256", &h);
        assert_eq!((status, v["new"].as_u64()), (200, Some(1)), "{v}");
    }

    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    let verified = db.assert_verifies();
    assert!(verified.contains("batches intact: "), "{verified}");
}

#[test]
fn archive_objects_are_anchored_and_their_evidence_verifies_sqlite() {
    archive_objects_are_anchored_and_their_evidence_verifies(Backend::Sqlite);
}

#[test]
fn archive_objects_are_anchored_and_their_evidence_verifies_postgres() {
    archive_objects_are_anchored_and_their_evidence_verifies(Backend::Postgres);
}

/// A log made before archive objects (schema v3: time-stamps, anchored batches) is
/// migrated by the next start: `hanko log verify` still passes (chain and every batch
/// root), the old tokens' evidence is still served, and archive objects are taken.
fn migration_4_on_an_anchored_log(backend: Backend) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let data_dir = shared_dev_data_dir();
    let work = db.dir.path().to_owned();
    let cfg = config(&work);
    let server = start_dev_server(data_dir, &db, Some(&cfg));
    let tokens: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let req = request_der(
                HashAlgorithm::Sha256,
                format!("before v4 {i}").as_bytes(),
                Some(i + 1),
                true,
                None,
            );
            granted(&timestamp(server.addr, &req)).unwrap().1
        })
        .collect();
    let hash0 = hex::encode(sha256(&tokens[0]));
    let before = wait_evidence(&server, &hash0);
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");

    // Back to v3 behind the server's back: the old kind list, migration 4 unrecorded.
    match backend {
        Backend::Sqlite => {
            let rebuild = include_str!("../../../store/migrations/sqlite/0004_archive_objects.sql")
                .replace(", 'archive-object'", "");
            db.exec(&format!(
                "BEGIN; {rebuild}; DELETE FROM _sqlx_migrations WHERE version = 4; COMMIT;"
            ));
        }
        Backend::Postgres => db.exec(
            "ALTER TABLE log_records DROP CONSTRAINT log_records_kind_check; \
             ALTER TABLE log_records ADD CONSTRAINT log_records_kind_check \
             CHECK (kind IN ('timestamp', 'seal', 'archive-stamp')); \
             DELETE FROM _sqlx_migrations WHERE version = 4;",
        ),
    }
    // An auditor's build of this version reads only a migrated log.
    let out = db.log(&["verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let server = start_dev_server(data_dir, &db, Some(&cfg));
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    let verified = db.assert_verifies();
    assert!(verified.contains("batches intact: "), "{verified}");
    let server = start_dev_server(data_dir, &db, Some(&cfg));
    assert_eq!(
        wait_evidence(&server, &hash0),
        before,
        "the old record is served unchanged"
    );
    let h = sha256(b"after v4");
    let (status, v) = post(
        &server,
        Some(ARCHIVER_KEY),
        "application/octet-stream",
        "?alg=sha256",
        &h,
    );
    assert_eq!(status, 200, "{v}");
    wait_evidence(&server, &hex::encode(h));
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    db.assert_verifies();
}

#[test]
#[ignore = "issue #18: every start of this build logs audit records, which a log at schema \
            v3 cannot hold, so a v3 log cannot be made by downgrading one it wrote; \
            hanko-store's migration_4_keeps_records_batches_and_anchors covers migration 4"]
fn migration_4_on_an_anchored_log_sqlite() {
    migration_4_on_an_anchored_log(Backend::Sqlite);
}

#[test]
#[ignore = "issue #18: every start of this build logs audit records, which a log at schema \
            v3 cannot hold, so a v3 log cannot be made by downgrading one it wrote; \
            hanko-store's migration_4_keeps_records_batches_and_anchors covers migration 4"]
fn migration_4_on_an_anchored_log_postgres() {
    migration_4_on_an_anchored_log(Backend::Postgres);
}
