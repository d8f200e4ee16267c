//! What the smoke tests of the HTTP benches share: the `hanko` binary they run, and one
//! run of a bench against it ([`run_bench`]).
//!
//! The benches build nothing, so a test brings the binary: `HANKO_BIN` when set, else
//! `hanko` in the target directory the test runs from (`cargo test --workspace` has just
//! built it; after `cargo test -p hanko-bench` alone it may be an older build), else it
//! builds it there with `cargo build -p hanko-server --bin hanko`. No binary is a
//! failure, never a silent pass.
#![allow(clippy::unwrap_used, reason = "test")]

use std::path::PathBuf;
use std::process::Command;

/// `HANKO_BIN`, or `hanko` in the target directory this test runs from, built there when
/// missing.
pub fn hanko_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HANKO_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "HANKO_BIN={} is not a file", p.display());
        return p;
    }
    // target/<profile>/deps/<test>-<hash>: the profile directory is two up.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_owned();
    let hanko = profile_dir.join("hanko");
    if hanko.is_file() {
        return hanko;
    }
    let target_dir = profile_dir.parent().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "build",
        "-p",
        "hanko-server",
        "--bin",
        "hanko",
        "--target-dir",
    ])
    .arg(target_dir)
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !cfg!(debug_assertions) {
        cmd.arg("--release"); // the profile this test was built in, where it looks
    }
    let status = cmd.status().unwrap();
    assert!(
        status.success(),
        "`cargo build -p hanko-server --bin hanko` failed ({status}); set HANKO_BIN to a \
         hanko binary to use instead"
    );
    assert!(
        hanko.is_file(),
        "no {} after building it; set HANKO_BIN to a hanko binary",
        hanko.display()
    );
    hanko
}

/// What one bench run printed, and its server's log.
pub struct BenchRun {
    pub stdout: String,
    pub server_log: String,
}

impl BenchRun {
    /// The P-256 table rows (not the summary lines), split on whitespace after the key.
    pub fn p256_rows(&self) -> Vec<Vec<&str>> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("ECDSA P-256 ") && !l.contains(':'))
            .map(|l| l["ECDSA P-256".len()..].split_whitespace().collect())
            .collect()
    }
}

/// Runs `hanko-bench <args> --hanko H --data-dir D` in a fresh data directory and fails
/// the test, with both outputs and the server's log, unless it succeeds.
pub fn run_bench(args: &[&str]) -> BenchRun {
    let hanko = hanko_binary();
    let dir = tempfile::Builder::new()
        .prefix("hanko-bench-smoke-")
        .tempdir()
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hanko-bench"))
        .args(args)
        .arg("--hanko")
        .arg(&hanko)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let server_log =
        std::fs::read_to_string(dir.path().join("bench-server.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\nserver log:\n{server_log}"
    );
    eprintln!("{stdout}");
    BenchRun { stdout, server_log }
}
