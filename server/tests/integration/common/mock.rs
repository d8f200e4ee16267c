//! `hanko serve` through pkcs11-mock (pkcs11-mock/README.md): the module's `.so`, its
//! control file and its stats. Each test has its own control file in its own temporary
//! directory, handed to its server through `Command::env`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The mock's `.so` (hanko_pkcs11_mock::module_for_tests: `HANKO_MOCK_SO`, beside this
/// test binary, or built with cargo when missing).
pub fn mock_so() -> PathBuf {
    hanko_pkcs11_mock::module_for_tests().unwrap()
}

/// Rewrites the `hanko.toml` of data directory `dir` so that `hsm.module` is the mock,
/// and each line starting with one of `settings`' keys (`"workers = "`) gets its value.
pub fn config_through_mock(dir: &Path, settings: &[(&str, String)]) {
    let so = mock_so();
    let path = dir.join("hanko.toml");
    let cfg: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("module = ") {
                return format!("module = {:?}", so.to_str().unwrap());
            }
            match settings.iter().find(|(key, _)| l.starts_with(key)) {
                Some((key, value)) => format!("{key}{value}"),
                None => l.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(cfg.contains("libhanko_pkcs11_mock.so"), "{cfg}");
    std::fs::write(path, cfg).unwrap();
}

/// Points `cmd` (a `hanko` command) at the token under test (`HANKO_TEST_PKCS11_MODULE`,
/// SoftHSM by default) behind the mock, driven by `control`.
pub fn mock_env(cmd: &mut Command, control: &Path) {
    cmd.env(
        "HANKO_MOCK_REAL_MODULE",
        hanko_pkcs11_mock::module_under_test(),
    )
    .env("HANKO_MOCK_CONTROL", control)
    .env_remove("HANKO_MOCK_STATS");
}

/// Replaces the control file atomically (the mock may read it at any call).
pub fn set_control(control: &Path, text: &str) {
    hanko_pkcs11_mock::write_control(control, text).unwrap();
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
