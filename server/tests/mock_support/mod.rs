//! Helpers of the server tests that run `hanko serve` through pkcs11-mock
//! (pkcs11-mock/README.md): the module's `.so`, its control file and its stats.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The real module behind the mock.
pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The mock's `.so`, built next to this test binary (or `HANKO_MOCK_SO`); built with
/// cargo when missing.
pub fn mock_so() -> PathBuf {
    if let Some(p) = std::env::var_os("HANKO_MOCK_SO") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidates = [
        deps.parent().unwrap().join("libhanko_pkcs11_mock.so"),
        deps.join("libhanko_pkcs11_mock.so"),
    ];
    if let Some(p) = candidates.iter().find(|p| p.exists()) {
        return p.clone();
    }
    let mut args = vec!["build", "-p", "hanko-pkcs11-mock"];
    if !cfg!(debug_assertions) {
        args.push("--release");
    }
    let status = Command::new(env!("CARGO"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p hanko-pkcs11-mock failed");
    candidates.into_iter().find(|p| p.exists()).unwrap()
}

/// Points `cmd` (a `hanko` command) at SoftHSM behind the mock, driven by `control`.
pub fn mock_env(cmd: &mut Command, control: &Path) {
    cmd.env("HANKO_MOCK_REAL_MODULE", SOFTHSM)
        .env("HANKO_MOCK_CONTROL", control)
        .env_remove("HANKO_MOCK_STATS");
}

/// Replaces the control file atomically (the mock may read it at any call).
pub fn set_control(control: &Path, text: &str) {
    let tmp = control.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, control).unwrap();
}

/// Injections of `kind` counted so far in the mock's stats file (all functions).
pub fn injected(control: &Path, kind: &str) -> u64 {
    let mut stats = control.as_os_str().to_owned();
    stats.push(".stats");
    let Ok(text) = std::fs::read_to_string(PathBuf::from(stats)) else {
        return 0;
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[1] == kind).then(|| f[f.len() - 1].parse::<u64>().unwrap_or(0))
        })
        .sum()
}
