//! Test support for the crates whose tests check tokens with a third-party verifier
//! (`hanko-tsa`'s tokens from the library, `hanko-server`'s from the running binary,
//! `hanko-seal`'s embedded in B-T seals).
//! Compiled only with the `test-support` feature, which those crates enable from their
//! `[dev-dependencies]`; no production build contains it.
//!
//! It lives here because this crate is where token verification lives, and every one of
//! those test suites can depend on it without a new production dependency (the server
//! already depends on it; tsa and seal only as a dev-dependency), while it needs nothing
//! beyond `serde_json`.
//!
//! # What it does not do
//! It does not verify anything itself: [`run_rfc3161_client`] hands the cases to
//! `tests/py/verify_rfc3161.py`, which uses rfc3161-client (Python, its own ASN.1 and
//! X.509 code), so that the check is independent of Hanko's code and of OpenSSL.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Runs `tests/py/verify_rfc3161.py` (with `python3`) over `cases` and panics unless
/// every case printed `ok`. The format of a case is in the script's docstring: the
/// response, data, root, TSA certificate and intermediates as paths, and the expected
/// policy and nonce (or the request they come from).
///
/// # Panics
/// When python3 cannot be started, the script fails, or fewer cases than given pass:
/// this is an assertion for tests.
pub fn run_rfc3161_client(cases: &[serde_json::Value]) {
    let (ok, stdout) = rfc3161_client_verdicts(cases);
    assert!(ok, "rfc3161-client:\n{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        cases.len(),
        "{stdout}"
    );
}

/// Runs `tests/py/verify_rfc3161.py` over `cases` and returns its verdict lines, one
/// per case in order (`ok <name>` or `FAIL <name>: <reason>`), for a suite that expects
/// some refusals; whether every case passed comes first.
///
/// # Panics
/// When python3 cannot be started or the script does not print one verdict per case:
/// this is an assertion for tests.
pub fn rfc3161_client_verdicts(cases: &[serde_json::Value]) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/py/verify_rfc3161.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 {script}: {e}"));
    let input = serde_json::to_string(cases).unwrap_or_else(|e| panic!("cases as JSON: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        // Dropped at the end of the block: the script reads to end of input.
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("writing to {script}: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL "))
            .count(),
        cases.len(),
        "rfc3161-client:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), stdout)
}
