//! `hanko log verify` and `hanko log export` against a real SQLite file and a real
//! PostgreSQL database: an intact log verifies (exit 0), an edited or deleted row is
//! named (exit 1), an unreadable log is an error (exit 2); exports select by sequence
//! number or time and check out with the independent `store/tools/verify_export.py`.
//! No HSM: the log is filled through hanko-store, and the commands must not need the
//! token or its PIN.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_store::{NewRecord, RecordKind, Store, StoreOptions};

use crate::common::log::{Backend, TestDb, block_on};
use crate::common::{run, text};

/// Issue time of record `i` (1-based): 2026-11-24T19:40:00Z + i minutes.
fn issued_at(i: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_549_200 + 60 * i)
}

/// Appends `n` records (serials 1..=n, distinct tokens) through the store.
fn seed(db: &TestDb, n: u64) {
    block_on(async {
        let store = Store::open(&db.url, StoreOptions::with_node_id("node-t"))
            .await
            .unwrap();
        for i in 1..=n {
            let token = format!("token {i}").into_bytes();
            store
                .append(NewRecord {
                    kind: RecordKind::Timestamp,
                    serial: hanko_store::serial_to_bytes(i),
                    object_hash: NewRecord::object_hash_of(&token),
                    request_hash: vec![i as u8; 32],
                    policy: "0.4.0.2023.1.1".into(),
                    client: "anonymous".into(),
                    issued_at: issued_at(i),
                    token: Some(token),
                })
                .await
                .unwrap();
        }
        store.close().await;
    });
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts `hanko log verify` exits 1 naming `seq` and a reason containing `reason`.
fn assert_bad(db: &TestDb, seq: u64, reason: &str) {
    let out = db.log(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let first = stdout(&out).lines().next().unwrap_or("").to_owned();
    assert!(
        first.starts_with(&format!("first bad row: seq {seq}: ")) && first.contains(reason),
        "expected seq {seq} ({reason}), got: {}",
        text(&out)
    );
}

fn tampering_is_found_and_named(backend: Backend) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    seed(&db, 6);
    let ok = db.assert_verifies();
    assert!(
        ok.starts_with("chain intact: 6 rows, head seq 6 hash "),
        "{ok}"
    );

    // Edit one row's policy: that row is named.
    db.exec("UPDATE log_records SET policy = '1.2.3.4' WHERE seq = 3");
    assert_bad(&db, 3, "chained hash does not match");
    // Put it back: intact again (the check is exact, not a side effect of the edit).
    db.exec("UPDATE log_records SET policy = '0.4.0.2023.1.1' WHERE seq = 3");
    db.assert_verifies();

    // Replace a token (it no longer hashes to the row's object hash), then restore it.
    let (replace, restore) = match backend {
        Backend::Sqlite => (
            "UPDATE log_records SET token = X'00' WHERE seq = 5",
            "UPDATE log_records SET token = CAST('token 5' AS BLOB) WHERE seq = 5",
        ),
        Backend::Postgres => (
            "UPDATE log_records SET token = '\\x00'::bytea WHERE seq = 5",
            "UPDATE log_records SET token = convert_to('token 5', 'UTF8') WHERE seq = 5",
        ),
    };
    db.exec(replace);
    assert_bad(&db, 5, "stored token does not hash to object_hash");
    db.exec(restore);
    db.assert_verifies();

    // Delete a row in the middle: the gap is named.
    db.exec("DELETE FROM log_records WHERE seq = 2");
    assert_bad(&db, 2, "missing (deleted?); the next row present is seq 3");
}

fn deleting_the_last_row_is_found(backend: Backend) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    seed(&db, 4);
    db.exec("DELETE FROM log_records WHERE seq = 4");
    assert_bad(&db, 4, "the chain head says it exists");
}

#[test]
fn tampering_is_found_and_named_sqlite() {
    tampering_is_found_and_named(Backend::Sqlite);
}

#[test]
fn tampering_is_found_and_named_postgres() {
    tampering_is_found_and_named(Backend::Postgres);
}

#[test]
fn deleting_the_last_row_is_found_sqlite() {
    deleting_the_last_row_is_found(Backend::Sqlite);
}

#[test]
fn deleting_the_last_row_is_found_postgres() {
    deleting_the_last_row_is_found(Backend::Postgres);
}

/// The log is found the way `hanko serve` finds it: `--data-dir`, a config's `data_dir`
/// or `[store] database_url`. The config may name an HSM that does not exist and no
/// PIN is set: the log tools must not touch either.
#[test]
fn log_is_found_through_data_dir_or_config_without_hsm_or_pin() {
    let db = TestDb::sqlite();
    seed(&db, 2);
    let dir = db.dir.path();
    let d = dir.to_str().unwrap();
    let out = run(&["log", "verify", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("chain intact: 2 rows"),
        "{}",
        text(&out)
    );

    let hsm = "[hsm]\nmodule = \"/nonexistent/libpkcs11.so\"\ntoken_label = \"nope\"\n\
               [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n";
    let by_dir = dir.join("by-dir.toml");
    std::fs::write(&by_dir, format!("data_dir = {d:?}\n{hsm}")).unwrap();
    let by_url = dir.join("by-url.toml");
    std::fs::write(
        &by_url,
        format!("{hsm}\n[store]\ndatabase_url = {:?}\n", db.url),
    )
    .unwrap();
    for cfg in [&by_dir, &by_url] {
        let out = run(&["log", "verify", "--config", cfg.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            cfg.display(),
            text(&out)
        );
        let out = run(&["log", "export", "--config", cfg.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(stdout(&out).lines().count(), 2);
    }
}

#[test]
fn unreadable_logs_and_bad_flags_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    // A missing SQLite file is an error, and is not created.
    let out = run(&["log", "verify", "--data-dir", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no issuance log at"), "{}", text(&out));
    assert!(!empty.join("issuance-log.sqlite").exists());
    // An unreachable database; its password is not echoed.
    let out = run(&[
        "log",
        "verify",
        "--database-url",
        "postgres://u:s3cret-pw@127.0.0.1:1/none",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains("s3cret-pw"), "{}", text(&out));
    // A SQLite file that is not a Hanko log: refused (the auditor tools never migrate).
    let other = TestDb::sqlite();
    other.exec("CREATE TABLE unrelated (x INTEGER)");
    let out = other.log(&["verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("this build reads version"),
        "{}",
        text(&out)
    );
    other.exec("SELECT x FROM unrelated"); // still there, nothing else created
    // Mixed or malformed bounds.
    let db = TestDb::sqlite();
    seed(&db, 1);
    for (from, to) in [("1", "2026-11-24T00:00:00Z"), ("last week", "3")] {
        let out = db.log(&["export", "--from", from, "--to", to]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
}

/// `hanko log verify|export` as a user who may read the log but not write beside it:
/// as root the `nobody` user (root ignores file modes) running `nobody_bin` (see
/// [`hanko_for_nobody`]), otherwise this user with the directory made read-only.
fn log_as_reader(
    dir: &std::path::Path,
    nobody_bin: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    let d = dir.to_str().unwrap();
    if is_root() {
        std::process::Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(nobody_bin)
            .arg("log")
            .args(args)
            .args(["--data-dir", d])
            .env_remove("HANKO_PIN")
            .env_remove("HANKO_PIN_FILE")
            .output()
            .unwrap()
    } else {
        let mut full = vec!["log"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--data-dir", d]);
        run(&full)
    }
}

fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        let out = std::process::Command::new("id").arg("-u").output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "0"
    })
}

/// A copy of `hanko` that `nobody` can run, in `dir` (opened to all): the build's own
/// binary sits in the target directory, which may be under a directory only its owner
/// may enter (a checkout in a 0700 home or a `mktemp -d` clone), and `runuser` could not
/// execute it there. Fails, saying why, when `nobody` cannot run the copy either (the
/// temporary directory itself is not reachable for it).
fn hanko_for_nobody(dir: &std::path::Path) -> std::path::PathBuf {
    let bin = dir.join("hanko");
    std::fs::copy(env!("CARGO_BIN_EXE_hanko"), &bin).unwrap();
    chmod(dir, 0o755);
    chmod(&bin, 0o755);
    if is_root() {
        let out = std::process::Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(&bin)
            .arg("--version")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nobody cannot run {} (is the temporary directory reachable for all?): {}",
            bin.display(),
            text(&out)
        );
    }
    bin
}

/// Sets a file's or directory's mode (the log's temporary directory is 0700 when made).
fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// An auditor who may read a stopped server's SQLite log but not write its directory:
/// SQLite cannot create the WAL index there, so the tools read the file immutable (every
/// commit is in it once the server has stopped and removed its `-wal`). With a `-wal`
/// file left over, they say what access is missing instead of reading a partial log.
#[test]
fn auditor_without_write_access_beside_a_stopped_servers_log() {
    let db = TestDb::sqlite();
    seed(&db, 3);
    let dir = db.dir.path();
    let wal = dir.join("issuance-log.sqlite-wal");
    let shm = dir.join("issuance-log.sqlite-shm");
    assert!(
        !wal.exists() && !shm.exists(),
        "the store removes its WAL files on close"
    );
    let bin_dir = tempfile::tempdir().unwrap();
    let bin = hanko_for_nobody(bin_dir.path());
    // Readable by all; writable by the owner only (root), or by nobody.
    chmod(dir, if is_root() { 0o755 } else { 0o555 });

    let out = log_as_reader(dir, &bin, &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("chain intact: 3 rows"),
        "{}",
        text(&out)
    );
    let out = log_as_reader(dir, &bin, &["export"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(stdout(&out).lines().count(), 3, "{}", text(&out));
    assert!(
        !wal.exists() && !shm.exists(),
        "the reader wrote beside the log"
    );

    // A -wal file may hold commits not in the main file: no immutable read then.
    chmod(dir, 0o755);
    std::fs::write(&wal, b"").unwrap();
    chmod(dir, if is_root() { 0o755 } else { 0o555 });
    let out = log_as_reader(dir, &bin, &["verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("a -wal file exists") && text(&out).contains("-shm"),
        "{}",
        text(&out)
    );
    chmod(dir, 0o755);
}

/// An auditor's PostgreSQL role may only SELECT: `hanko log verify` and `export` work
/// with it (they open the log read-only: no migrations, no writer).
#[test]
fn auditor_role_with_select_only_verifies_and_exports() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    seed(&db, 5);
    let role = format!("{}_auditor", db.url.rsplit('/').next().unwrap());
    db.exec(&format!(
        "CREATE ROLE {role} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
    ));
    // The same database as the role: replace the URL's user (and any password).
    let (scheme, rest) = db.url.split_once("://").unwrap();
    let host_db = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let url = format!("{scheme}://{role}@{host_db}");
    let out = run(&["log", "verify", "--database-url", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("chain intact: 5 rows"),
        "{}",
        text(&out)
    );
    let out = run(&["log", "export", "--database-url", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(stdout(&out).lines().count(), 5);
    // The role really is read-only: writing as it fails.
    let denied = block_on(async {
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("DELETE FROM log_records WHERE seq = 1")
            .execute(&mut c)
            .await
            .is_err()
    });
    assert!(denied, "the auditor role could delete rows");
    db.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role};"));
}

fn export_selects_and_verifies_independently(backend: Backend) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    seed(&db, 5);
    let lines = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["export"];
        all.extend_from_slice(args);
        let out = db.log(&all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let seqs = |v: &[serde_json::Value]| -> Vec<u64> {
        v.iter().map(|r| r["seq"].as_u64().unwrap()).collect()
    };

    let all = lines(&["--tokens"]);
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
    assert_eq!(all[2]["serial"], "03");
    assert_eq!(all[2]["node_id"], "node-t");
    assert_eq!(all[2]["issued_at"], "2026-11-24T19:43:00Z");
    assert_eq!(all[2]["token"], "dG9rZW4gMw=="); // base64("token 3")
    assert!(
        lines(&[])[0].get("token").is_none(),
        "tokens only with --tokens"
    );
    assert_eq!(seqs(&lines(&["--from", "2", "--to", "3"])), [2, 3]);
    assert_eq!(seqs(&lines(&["--from", "4"])), [4, 5]);
    assert_eq!(seqs(&lines(&["--to", "1"])), [1]);
    let by_time = lines(&[
        "--from",
        "2026-11-24T19:42:00Z",
        "--to",
        "2026-11-24T20:44:00+01:00",
    ]);
    assert_eq!(seqs(&by_time), [2, 3, 4]);
    assert!(lines(&["--from", "9"]).is_empty());

    // The whole export checks out with the independent Python verifier, against the head
    // `verify` reports.
    let head = db.assert_verifies();
    // (The line after it says how the anchor batches fared.)
    let head = head.split("hash ").nth(1).unwrap();
    let head = head.split_whitespace().next().unwrap().to_owned();
    let out = db.log(&["export", "--tokens"]);
    let file = db.dir.path().join("export.jsonl");
    std::fs::write(&file, &out.stdout).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store/tools/verify_export.py"
    );
    let py = std::process::Command::new("python3")
        .args([script, "--expect-head", &head, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", text(&py));
}

#[test]
fn export_selects_and_verifies_independently_sqlite() {
    export_selects_and_verifies_independently(Backend::Sqlite);
}

#[test]
fn export_selects_and_verifies_independently_postgres() {
    export_selects_and_verifies_independently(Backend::Postgres);
}
