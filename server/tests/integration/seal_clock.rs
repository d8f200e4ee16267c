//! Issue #12, fail closed on the clock: a seal's signing time comes from the TSA's clock
//! guard, so in PRODUCTION (no `--dev`; the dev token and keys under a fake chronyc,
//! as in `tsa_clock.rs`) an unsynchronised clock refuses `POST /api/v1/seal/cades` with
//! a retryable 503 JSON error (`Retry-After`) and logs nothing; back in sync, seals are
//! granted and logged again.

use std::time::Duration;

use crate::common::http::send;
use crate::common::{dev_init, run, text};
use crate::tsa_clock::{UNSYNCED, chrony_config, start_production};

fn seal_records(dir: &std::path::Path) -> usize {
    let out = run(&["log", "export", "--data-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"] == "seal")
        .count()
}

#[test]
fn an_unsynchronised_clock_refuses_seals_in_production() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let key = std::fs::read_to_string(dir.join("dev-api-key")).unwrap();
    let auth = format!("Bearer {}", key.trim());
    let (line, _fail, cfg) = chrony_config(tmp.path(), &dir);
    let server = start_production(&dir, &cfg);
    server.wait_readyz(200, Duration::from_secs(15));
    let seal = || {
        send(
            server.addr,
            "POST",
            "/api/v1/seal/cades?credential=seal-p256&level=B-B",
            &[
                ("Content-Type", "application/octet-stream"),
                ("Authorization", &auth),
            ],
            b"a document",
        )
        .unwrap()
    };
    assert_eq!(seal().status, 200);

    std::fs::write(&line, UNSYNCED).unwrap();
    server.wait_readyz(503, Duration::from_secs(15));
    let refused = seal();
    let body = String::from_utf8_lossy(&refused.body).into_owned();
    assert_eq!(refused.status, 503, "{}\n{body}", refused.head);
    assert!(
        refused.head.to_ascii_lowercase().contains("retry-after: 1"),
        "{}",
        refused.head
    );
    let v: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(v["error"], "temporarily_unavailable", "{body}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("clock is not synchronised"),
        "{body}"
    );

    std::fs::write(&line, crate::common::CHRONYC_SYNCED).unwrap();
    server.wait_readyz(200, Duration::from_secs(15));
    assert_eq!(seal().status, 200);
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    // The two granted seals are logged; the refused one left no record.
    assert_eq!(seal_records(&dir), 2);
}
