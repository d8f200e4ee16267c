//! What the smoke tests of the HTTP benches share: the `hanko` binary they run.
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
