//! Smoke test of `hanko-bench tsa`: a real `hanko serve --dev` on a fresh SoftHSM token,
//! one second of load per row, log off and on, each over plain HTTP and over TLS
//! (`--tls`). It checks that the bench runs end to end,
//! that every request was granted and that the log committed batches; it asserts NO
//! performance figure (those are for RESULTS.md, on a quiet machine).
//!
//! The bench builds nothing, so this test brings the `hanko` binary
//! ([`common::hanko_binary`]). The server listens on a port it picks itself
//! (`--port 0`): other suites run at the same time.
#![allow(clippy::unwrap_used, reason = "test")]

mod common;

use common::run_bench;

#[test]
fn tsa_bench_runs_end_to_end() {
    let run = run_bench(&[
        "tsa",
        "--seconds",
        "1",
        "--clients",
        "4",
        "--key",
        "p256",
        "--log",
        "both",
        "--port",
        "0",
        "--requests",
        "64",
        "--tls",
    ]);
    let (stdout, server_log) = (&run.stdout, &run.server_log);
    // Four table rows (log off, log on; each over http then tls), each with granted
    // requests and no errors.
    let rows = run.p256_rows();
    assert_eq!(rows.len(), 4, "{stdout}");
    for (row, (log, via)) in rows.iter().zip([
        ("off", "http"),
        ("off", "tls"),
        ("on", "http"),
        ("on", "tls"),
    ]) {
        assert_eq!(row[0], log, "{stdout}");
        // The `via` column is the last one, before a possible NOISY mark.
        let last = row.iter().rev().find(|c| **c != "NOISY");
        assert_eq!(last, Some(&via), "{stdout}");
    }
    for row in &rows {
        let rate: f64 = row[3].parse().unwrap();
        let errors: u64 = row[6].parse().unwrap();
        let raw: f64 = row[7].parse().unwrap();
        assert!(rate > 0.0 && raw > 0.0, "{stdout}");
        assert_eq!(errors, 0, "{stdout}");
    }
    // Log off has no batches; log on committed some.
    assert_eq!(rows[0][9], "-", "{stdout}");
    // Each TLS row in words too (the tls / http verdict needs quiet rounds: not here).
    assert!(stdout.contains("ECDSA P-256 tls log on verify"), "{stdout}");
    assert!(stdout.contains("  log: "), "{stdout}");
    assert!(
        server_log.contains("TOKENS ARE NOT LOGGED"),
        "the log-off server must warn loudly:\n{server_log}"
    );
}
