//! Smoke test of `hanko-bench hsm --digest-batches`: a fresh SoftHSM token, a fraction of
//! a second per row, P-256 with verify-after-sign. It checks that the sub-measurement
//! runs end to end, prints one row per batch size with a raw rate beside it and no
//! failed call; it asserts NO performance figure (those are for RESULTS.md).
#![allow(clippy::unwrap_used, reason = "test")]

use std::process::Command;

#[test]
fn digest_batches_run_end_to_end() {
    let out = Command::new(env!("CARGO_BIN_EXE_hanko-bench"))
        .args(["hsm", "--seconds", "0.3", "--workers", "1", "--key", "p256"])
        .args(["--verify", "--digest-batches", "1,4"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("ECDSA P-256"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    // "ECDSA P-256 1 on <batch> <signs/s> <raw> <ratio> <p50> <p99> <errors>"
    assert_eq!(rows.len(), 2, "{stdout}");
    for (row, batch) in rows.iter().zip(["1", "4"]) {
        assert_eq!(row.len(), 11, "{stdout}");
        assert_eq!((row[2], row[3], row[4]), ("1", "on", batch), "{stdout}");
        let rate: f64 = row[5].parse().unwrap();
        let raw: f64 = row[6].parse().unwrap();
        assert!(rate > 0.0 && raw > 0.0, "{stdout}");
        assert_eq!(row[10], "0", "failed calls: {stdout}");
    }
}
