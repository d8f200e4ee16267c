//! Smoke test of `hanko-bench tsa`: a real `hanko serve --dev` on a fresh SoftHSM token,
//! one second of load per row, log off and on. It checks that the bench runs end to end,
//! that every request was granted and that the log committed batches; it asserts NO
//! performance figure (those are for RESULTS.md, on a quiet machine).
//!
//! The bench builds nothing, so this test brings the `hanko` binary
//! ([`common::hanko_binary`]). The server listens on a port it picks itself
//! (`--port 0`): other suites run at the same time.
#![allow(clippy::unwrap_used, reason = "test")]

mod common;

use std::process::Command;

use common::hanko_binary;

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
