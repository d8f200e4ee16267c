//! Smoke test of `hanko-bench lanes`: a real `hanko serve --dev` on a fresh SoftHSM token,
//! one second per phase, the bulk client in the bulk lane and then (the baseline) in the
//! interactive lane. It checks that the bench runs end to end, that both kinds of caller
//! were served without errors, and that the server's signing pool really queued the bulk
//! client's signatures in the bulk lane (its `hanko_hsm_lane_jobs_total`); it asserts NO
//! performance figure (those are for RESULTS.md).
#![allow(clippy::unwrap_used, reason = "test")]

#[allow(dead_code, reason = "this test reads the table itself, not p256_rows")]
mod common;

use common::run_bench;

#[test]
fn lanes_bench_runs_end_to_end() {
    let run = run_bench(&[
        "lanes",
        "--seconds",
        "1",
        "--clients",
        "2",
        "--bulk-clients",
        "4",
        "--key",
        "p256",
    ]);
    let stdout = &run.stdout;
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| bulk |") || l.starts_with("| interactive |"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    // | lane | phase | i req/s | i p50/p99 | i errors | b req/s | b p50/p99 | b errors | ...
    let phases: Vec<(&str, &str)> = rows.iter().map(|r| (r[1], r[2])).collect();
    assert_eq!(
        phases,
        [
            ("bulk", "interactive alone"),
            ("bulk", "bulk alone"),
            ("bulk", "mixed"),
            ("interactive", "mixed")
        ],
        "{stdout}"
    );
    for r in &rows {
        for (rate, errors) in [(3, 5), (6, 8)] {
            if r[rate] == "—" {
                continue;
            }
            assert!(r[rate].parse::<f64>().unwrap() > 0.0, "{stdout}");
            assert_eq!(r[errors], "0", "{stdout}");
        }
    }
    // The bulk client's signatures went to the bulk lane with lanes on, and none did
    // with the client configured interactive.
    let bulk_jobs = |lane: &str| -> f64 {
        stdout
            .lines()
            .filter(|l| l.starts_with(&format!("bulk client in lane {lane}:")))
            .filter(|l| l.contains("lane=\"bulk\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert!(bulk_jobs("bulk") > 0.0, "{stdout}");
    assert_eq!(bulk_jobs("interactive"), 0.0, "{stdout}");
    // The bulk client's key never reaches the server's log.
    assert!(
        !run.server_log.contains("hk_bench_"),
        "an API key in the server's log"
    );
}
