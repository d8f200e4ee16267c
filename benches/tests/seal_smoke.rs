//! Smoke test of `hanko-bench seal`: a real `hanko serve --dev` on a fresh SoftHSM token,
//! half a second per row, the P-256 seal key, signHash with 1 and 4 hashes per call and
//! CAdES B-B. It checks that the bench runs end to end, that every call succeeded and
//! that the kept signatures verified against the key; it asserts NO performance figure
//! (those are for RESULTS.md, on a quiet machine).
//!
//! The bench builds nothing, so this test brings the `hanko` binary
//! ([`common::hanko_binary`]). The server listens on a port it picks itself
//! (`--port 0`): other suites run at the same time.
#![allow(clippy::unwrap_used, reason = "test")]

mod common;

use std::process::Command;

use common::hanko_binary;

#[test]
fn seal_bench_runs_end_to_end() {
    let hanko = hanko_binary();
    let dir = tempfile::Builder::new()
        .prefix("hanko-bench-seal-smoke-")
        .tempdir()
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hanko-bench"))
        .args([
            "seal",
            "--seconds",
            "0.5",
            "--clients",
            "2",
            "--key",
            "p256",
        ])
        .args([
            "--hashes", "1,4", "--verify", "off", "--cades", "--port", "0",
        ])
        .args(["--check-signatures", "8"])
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
    // "ECDSA P-256 off <call> 2 <sig/s> <calls/s> <p50> <p99> <errors> <raw> <ratio>
    //  <checked> ..."
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("ECDSA P-256 ") && !l.contains(':'))
        .map(|l| l["ECDSA P-256".len()..].split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    for (row, call) in rows.iter().zip(["signHash/1", "signHash/4", "cades"]) {
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
    assert!(!stdout.contains("BAD"), "{stdout}");
    assert!(
        server_log.contains("csc signHash"),
        "the server logs each signHash call:\n{server_log}"
    );
}
