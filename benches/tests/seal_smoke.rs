//! Smoke test of `hanko-bench seal`: a real `hanko serve --dev` on a fresh SoftHSM token,
//! half a second per row, the P-256 seal key, signHash with 1 and 4 hashes per call,
//! CAdES B-B and PAdES B-B of a 2 kB and a 200 kB generated PDF. It checks that the bench runs end to end, that every call succeeded and
//! that the kept signatures verified against the key; it asserts NO performance figure
//! (those are for RESULTS.md, on a quiet machine).
//!
//! The bench builds nothing, so this test brings the `hanko` binary
//! ([`common::hanko_binary`]). The server listens on a port it picks itself
//! (`--port 0`): other suites run at the same time.
#![allow(clippy::unwrap_used, reason = "test")]

mod common;

use common::run_bench;

#[test]
fn seal_bench_runs_end_to_end() {
    let run = run_bench(&[
        "seal",
        "--seconds",
        "0.5",
        "--clients",
        "2",
        "--key",
        "p256",
        "--hashes",
        "1,4",
        "--verify",
        "off",
        "--cades",
        "--pdf",
        "--pdf-bytes",
        "2000,200000",
        "--port",
        "0",
        "--check-signatures",
        "8",
    ]);
    let (stdout, server_log) = (&run.stdout, &run.server_log);
    // "ECDSA P-256 off <call> 2 <sig/s> <calls/s> <p50> <p99> <errors> <raw> <ratio>
    //  <checked> ..."
    let rows = run.p256_rows();
    assert_eq!(rows.len(), 5, "{stdout}");
    let calls = ["signHash/1", "signHash/4", "cades", "pdf/2kB", "pdf/200kB"];
    for (row, call) in rows.iter().zip(calls) {
        assert_eq!((row[0], row[1], row[2]), ("off", call, "2"), "{stdout}");
        let rate: f64 = row[3].parse().unwrap();
        let errors: u64 = row[7].parse().unwrap();
        let raw: f64 = row[8].parse().unwrap();
        assert!(rate > 0.0 && raw > 0.0, "{stdout}");
        assert_eq!(errors, 0, "{stdout}");
    }
    // The signHash rows kept 8 signatures each and every one verified; CAdES checks none.
    assert_eq!(rows[0][10], "8/8", "{stdout}");
    assert_eq!(rows[1][10], "8/8", "{stdout}");
    assert_eq!(rows[2][10], "-", "{stdout}");
    // Each PDF row: its MB/s against sha256sum of the same file.
    for size in ["2kB", "200kB"] {
        let line = format!("  pdf/{size}: ");
        let l = stdout.lines().find(|l| l.starts_with(&line)).unwrap();
        assert!(l.contains("MB/s sealed, sha256sum of the same file"), "{l}");
    }
    assert!(!stdout.contains("BAD"), "{stdout}");
    assert!(
        server_log.contains("csc signHash"),
        "the server logs each signHash call:\n{server_log}"
    );
}
