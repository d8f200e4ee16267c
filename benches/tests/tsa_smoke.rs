//! Smoke test of `hanko-bench tsa`: a real `hanko serve --dev` on a fresh SoftHSM token,
//! one second of load per row, log off and on. It checks that the bench runs end to end,
//! that every request was granted and that the log committed batches; it asserts NO
//! performance figure (those are for RESULTS.md, on a quiet machine).
//!
//! The bench builds nothing, so this test brings the `hanko` binary: `HANKO_BIN` when
//! set, else `hanko` in the target directory this test runs from (`cargo test
//! --workspace` has just built it; after `cargo test -p hanko-bench` alone it may be an
//! older build), else it builds it there with `cargo build -p hanko-server --bin hanko`.
//! No binary is a failure, never a silent pass. The server listens on
//! a port it picks itself (`--port 0`): other suites run at the same time.
#![allow(clippy::unwrap_used, reason = "test")]

use std::path::PathBuf;
use std::process::Command;

/// `HANKO_BIN`, or `hanko` in the target directory this test runs from, built there when
/// missing.
fn hanko_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HANKO_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "HANKO_BIN={} is not a file", p.display());
        return p;
    }
    // target/<profile>/deps/tsa_smoke-<hash>: the profile directory is two up.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_owned();
    let hanko = profile_dir.join("hanko");
    if hanko.is_file() {
        return hanko;
    }
    let target_dir = profile_dir.parent().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "build",
        "-p",
        "hanko-server",
        "--bin",
        "hanko",
        "--target-dir",
    ])
    .arg(target_dir)
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !cfg!(debug_assertions) {
        cmd.arg("--release"); // the profile this test was built in, where it looks
    }
    let status = cmd.status().unwrap();
    assert!(
        status.success(),
        "`cargo build -p hanko-server --bin hanko` failed ({status}); set HANKO_BIN to a \
         hanko binary to use instead"
    );
    assert!(
        hanko.is_file(),
        "no {} after building it; set HANKO_BIN to a hanko binary",
        hanko.display()
    );
    hanko
}

#[test]
fn tsa_bench_runs_end_to_end() {
    let hanko = hanko_binary();
    let dir = tempfile::Builder::new()
        .prefix("hanko-bench-smoke-")
        .tempdir()
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hanko-bench"))
        .args(["tsa", "--seconds", "1", "--clients", "4", "--key", "p256"])
        .args(["--log", "both", "--port", "0", "--requests", "64"])
        .arg("--hanko")
        .arg(&hanko)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let server_log =
        std::fs::read_to_string(dir.path().join("bench-server.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\nserver log:\n{server_log}"
    );
    eprintln!("{stdout}");
    // Two table rows (log off, log on), each with granted requests and no errors.
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("ECDSA P-256 ") && !l.contains(':'))
        .map(|l| l["ECDSA P-256".len()..].split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[0][0], "off", "{stdout}");
    assert_eq!(rows[1][0], "on", "{stdout}");
    for row in &rows {
        let rate: f64 = row[3].parse().unwrap();
        let errors: u64 = row[6].parse().unwrap();
        let raw: f64 = row[7].parse().unwrap();
        assert!(rate > 0.0 && raw > 0.0, "{stdout}");
        assert_eq!(errors, 0, "{stdout}");
    }
    // Log off has no batches; log on committed some.
    assert_eq!(rows[0][9], "-", "{stdout}");
    assert!(stdout.contains("  log: "), "{stdout}");
    assert!(
        server_log.contains("TOKENS ARE NOT LOGGED"),
        "the log-off server must warn loudly:\n{server_log}"
    );
}
