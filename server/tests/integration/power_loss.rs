//! A power loss under load, on the SQLite log (issue #17's pipelined commits: COMMIT
//! writes the WAL frames, a syncer thread fsyncs them, and only then are the waiters
//! answered).
//!
//! The SIGKILL tests (`log_server`) keep the page cache: everything a killed server wrote
//! is still there for the next start. A power loss keeps only what an fsync covered. The
//! fault injector `power_loss/sync_snapshot.c`, preloaded into the server, copies each
//! log file as each sync of it begins; after the SIGKILL the test puts those copies in
//! place of the files, drops the `-shm` index (SQLite rebuilds it from the WAL), and
//! starts the server again on what a disk would have kept. Every token a client received
//! must be in the log, the chain must verify, and no serial may be handed out twice.
//!
//! The same test catches a writer that answers before its sync: then a client holds
//! tokens whose records were only in the page cache (checked once by hand by skipping
//! the sync in `WalFile::sync`: "granted serial … is not in the log").

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::log::{
    Load, TestDb, assert_logged, shared_dev_data_dir, start_dev_server, start_dev_server_with,
};
use crate::common::{hanko, load_turn};

/// Builds the fault injector into `dir`.
fn build_injector(dir: &Path) -> PathBuf {
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/power_loss/sync_snapshot.c");
    let lib = dir.join("libsync_snapshot.so");
    let out = Command::new("cc")
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("cc (build-essential) runs");
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

/// What a disk keeps of `dir` after a power loss: each file with a synced copy is put
/// back to it, the `-shm` index is dropped. Returns the files put back, each with the
/// number of bytes the power loss changed in it (bytes that differ, and bytes past the
/// synced copy's end).
fn lose_power(dir: &Path) -> Vec<(String, usize)> {
    let mut restored = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".synced.tmp") {
            std::fs::remove_file(entry.path()).unwrap();
        } else if let Some(file) = name.strip_suffix(".synced") {
            let target = dir.join(file);
            let (now, kept) = (
                std::fs::read(&target).unwrap_or_default(),
                std::fs::read(entry.path()).unwrap(),
            );
            let differing = now.iter().zip(&kept).filter(|(a, b)| a != b).count();
            let lost = differing + now.len().abs_diff(kept.len());
            std::fs::rename(entry.path(), &target).unwrap();
            restored.push((file.to_owned(), lost));
        }
    }
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().ends_with("-shm") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    restored.sort();
    restored
}

/// The serials of `grants`, as numbers.
fn serials(grants: &[(String, Vec<u8>)]) -> impl Iterator<Item = u128> + '_ {
    grants
        .iter()
        .map(|(s, _)| u128::from_str_radix(s, 16).unwrap())
}

#[test]
fn a_power_loss_under_load_keeps_every_token_a_client_received() {
    let _turn = load_turn();
    let dir = shared_dev_data_dir();
    let db = TestDb::sqlite();
    let tools = tempfile::tempdir().unwrap();
    let injector = build_injector(tools.path());

    // A clean start and stop first: the file and its schema are on disk before the
    // power can go (what a fresh install's first start risks is not the point here).
    let server = start_dev_server(dir, &db, None);
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    let mut cmd = hanko();
    // Each sync takes 20 ms: batches committed and not yet synced are there at almost
    // any moment, so the power loss has something to take.
    cmd.env("LD_PRELOAD", &injector)
        .env("HANKO_POWERLOSS_DIR", db.dir.path())
        .env("HANKO_POWERLOSS_SYNC_MS", "20");
    let server = start_dev_server_with(cmd, dir, &db, None);
    let load = Load::start(server.addr, 16, 0x5a);
    load.wait_for(300, Duration::from_secs(180));
    drop(server); // SIGKILL, with the 16 clients still sending
    let before = load.finish();
    let restored = lose_power(db.dir.path());
    assert!(
        restored.iter().any(|(f, _)| f == "issuance-log.sqlite-wal"),
        "the injector saw no sync of the WAL: {restored:?}"
    );

    let server = start_dev_server(dir, &db, None);
    let load = Load::start(server.addr, 4, 0x5b);
    load.wait_for(20, Duration::from_secs(120));
    let after = load.finish();
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    let granted: HashSet<&String> = before.iter().chain(&after).map(|(s, _)| s).collect();
    assert_eq!(
        granted.len(),
        before.len() + after.len(),
        "a serial was granted twice"
    );
    let min_after = serials(&after).min().unwrap();
    assert!(
        min_after > serials(&before).max().unwrap(),
        "a serial reserved before the power loss was handed out again"
    );
    // `export` also asserts that each serial is in the log once.
    let log = db.export();
    assert_logged(&before, &log);
    assert_logged(&after, &log);
    let ok = db.assert_verifies();
    eprintln!(
        "power loss: {} tokens received before, {} records kept in all, {} after the \
         restart; files put back to their last sync (bytes changed): {restored:?}; {}",
        before.len(),
        log.len() - after.len(),
        after.len(),
        ok.trim()
    );
}
