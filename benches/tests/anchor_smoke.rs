//! Smoke test of `hanko-bench anchor`: a real `hanko serve --dev` on a fresh SoftHSM token
//! and small sizes (2,000 and 5,000 leaves, 1 s signing rows). It checks that the bench
//! runs end to end: both batches closed with their block counts, the largest anchored by
//! the server's own TSA and every lookup answer checked (none failed), and the signing
//! rows served without errors, with batches closed only while anchoring was on. It
//! asserts NO performance figure (those are for RESULTS.md).
#![allow(clippy::unwrap_used, reason = "test")]

#[allow(dead_code, reason = "this test reads the tables itself, not p256_rows")]
mod common;

use common::run_bench;

#[test]
fn anchor_bench_runs_end_to_end() {
    let run = run_bench(&[
        "anchor",
        "--leaves",
        "2000,5000",
        "--lookups",
        "300",
        "--seconds",
        "1",
        "--clients",
        "2",
        "--key",
        "p256",
    ]);
    let stdout = &run.stdout;
    let cells = |l: &str| -> Vec<String> { l.split('|').map(|c| c.trim().to_owned()).collect() };
    // | leaves | append records/s | close s | blocks | RSS before | peak | growth | verdict |
    let close: Vec<Vec<String>> = stdout
        .lines()
        .filter(|l| l.starts_with("| 2000 |") || l.starts_with("| 5000 |"))
        .map(cells)
        .collect();
    assert_eq!(close.len(), 2, "{stdout}");
    assert_eq!(
        (close[0][4].as_str(), close[1][4].as_str()),
        ("2", "5"),
        "{stdout}"
    );
    for r in &close {
        assert!(r[3].parse::<f64>().unwrap() > 0.0, "{stdout}");
        assert!(r[6].parse::<f64>().unwrap() > 0.0, "{stdout}");
    }
    assert!(stdout.contains("batch 1 anchored by self"), "{stdout}");
    assert!(
        stdout.contains("lookups 300, checked 300 of 300, failed 0,"),
        "{stdout}"
    );
    // | round | anchoring | key | clients | req/s | p50 | p99 | errors | batches closed |
    let signing: Vec<Vec<String>> = stdout
        .lines()
        .filter(|l| l.starts_with("| 0 |"))
        .map(cells)
        .collect();
    let settings: Vec<&str> = signing.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(settings, ["off", "on"], "{stdout}");
    for r in &signing {
        assert!(r[5].parse::<f64>().unwrap() > 0.0, "{stdout}");
        assert_eq!(r[8], "0", "{stdout}");
        let batches: u64 = r[9].parse().unwrap();
        assert_eq!(batches > 0, r[2] == "on", "{stdout}");
    }
    assert!(stdout.contains("ECDSA P-256: anchoring on "), "{stdout}");
}
