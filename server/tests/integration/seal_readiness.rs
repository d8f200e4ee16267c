//! Issue #12, seals only when the server can make them:
//!
//! - Fail closed on the clock: a seal's signing time comes from the TSA's clock guard,
//!   so in PRODUCTION (no `--dev`; the dev token and keys under a fake chronyc, as in
//!   `tsa_clock.rs`) an unsynchronised clock refuses `POST /api/v1/seal/cades` with a
//!   retryable 503 JSON error (`Retry-After`) and logs nothing; back in sync, seals are
//!   granted and logged again.
//! - Readiness: a seal credential whose signer fails (pkcs11-mock: `C_Sign` returns
//!   CKR_DEVICE_ERROR, so the pool's breaker opens) turns `/readyz` 503 naming the
//!   credential; cleared, a seal closes the breaker and `/readyz` is 200 again.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::common::http::{Response, send};
use crate::common::mock::{config_through_mock, mock_env, set_control};
use crate::common::{Server, dev_init, hanko, run, text};
use crate::tsa_clock::{UNSYNCED, chrony_config, start_production};

/// How many seal records the log of `dir` holds.
fn seal_records(dir: &Path) -> usize {
    let out = run(&["log", "export", "--data-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"] == "seal")
        .count()
}

/// `POST /api/v1/seal/cades` of a small document, B-B, with `credential`.
fn seal(addr: SocketAddr, auth: &str, credential: &str) -> Response {
    send(
        addr,
        "POST",
        &format!("/api/v1/seal/cades?credential={credential}&level=B-B"),
        &[
            ("Content-Type", "application/octet-stream"),
            ("Authorization", auth),
        ],
        b"a document",
    )
    .unwrap()
}

/// The dev client's bearer credential of data directory `dir`.
fn dev_auth(dir: &Path) -> String {
    let key = std::fs::read_to_string(dir.join("dev-api-key")).unwrap();
    format!("Bearer {}", key.trim())
}

#[test]
fn an_unsynchronised_clock_refuses_seals_in_production() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let auth = dev_auth(&dir);
    let (line, _fail, cfg) = chrony_config(tmp.path(), &dir);
    let server = start_production(&dir, &cfg);
    server.wait_readyz(200, Duration::from_secs(15));
    let seal = || seal(server.addr, &auth, "seal-p256");
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

#[test]
fn a_seal_credential_whose_signer_fails_is_named_by_readyz() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    // The dev config through the mock.
    config_through_mock(&dir, &[]);
    let control = tmp.path().join("faults");
    std::fs::write(&control, "").unwrap();
    let mut cmd = hanko();
    mock_env(&mut cmd, &control);
    let server = Server::start(cmd, &["--dev", "--data-dir", dir.to_str().unwrap()]);
    server.wait_readyz(200, Duration::from_secs(15));
    let auth = dev_auth(&dir);
    assert_eq!(seal(server.addr, &auth, "seal-p256").status, 200);

    set_control(
        &control,
        "fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=always phase=data\n",
    );
    // Failed seals in a row open the credential's breaker.
    let start = std::time::Instant::now();
    let body = loop {
        let r = seal(server.addr, &auth, "seal-p256");
        assert_ne!(r.status, 200, "a seal with a failing C_Sign");
        let (status, body) = server.get("/readyz");
        if status == 503 {
            break body;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{body}");
    };
    assert!(
        body.contains("seal credential \\\"seal-p256\\\": signer is not ready"),
        "{body}"
    );
    // Only the credential that failed is named.
    assert!(!body.contains("seal-rsa3072"), "{body}");

    set_control(&control, "");
    let start = std::time::Instant::now();
    while seal(server.addr, &auth, "seal-p256").status != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no seal after the fault"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.wait_readyz(200, Duration::from_secs(5));
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
}
