//! The keys `hanko dev-init` makes live in the token and cannot leave it
//! (CONFORMANCE 39).
//!
//! Its own test binary, and `harness = false` (see Cargo.toml): it points this process's
//! `SOFTHSM2_CONF` at the dev token, and changing the environment is sound only while no
//! other thread runs, which libtest's harness cannot promise; so `main` runs the one
//! test directly. The module is `HANKO_TEST_PKCS11_MODULE`, SoftHSM by default.
#![allow(clippy::unwrap_used, reason = "tests: a panic is a failed assertion")]

use hanko_hsm::{Hsm, ModuleConfig, Pin, ProtectionHistory};

fn dev_keys_are_sensitive_and_never_extractable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hanko"))
        .args(["dev-init", "--data-dir", dir.to_str().unwrap()])
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Sound: `main` calls this test before any other thread exists.
    hanko_hsm::use_softhsm_config(&dir.join("softhsm2.conf"));
    let hsm = Hsm::open(
        ModuleConfig {
            module_path: hanko_pkcs11_mock::module_under_test(),
            token_label: "hanko-dev".into(),
        },
        Pin::from_file(&dir.join("dev-pin")).unwrap(),
    )
    .unwrap();
    for label in ["tsa-rsa3072", "tsa-p256", "seal-rsa3072", "seal-p256"] {
        let p = hsm.key_protection(label).unwrap();
        assert_eq!(p.sensitive, Some(true), "{label}: {p:?}");
        assert_eq!(p.extractable, Some(false), "{label}: {p:?}");
        assert_eq!(p.always_sensitive, Some(true), "{label}: {p:?}");
        assert_eq!(p.never_extractable, Some(true), "{label}: {p:?}");
        assert_eq!(p.token_object, Some(true), "{label}: {p:?}");
        assert_eq!(
            p.production_check().unwrap(),
            ProtectionHistory::Verified,
            "{label}"
        );
        // The secret itself is not readable.
        assert!(
            !p.secret_readable,
            "{label}: private key material readable: {p:?}"
        );
    }
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = filters.is_empty()
        || filters
            .iter()
            .any(|f| "dev_keys_are_sensitive_and_never_extractable".contains(f.as_str()));
    if std::env::args().any(|a| a == "--list") {
        println!("dev_keys_are_sensitive_and_never_extractable: test");
        return;
    }
    if !wanted {
        println!("\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n");
        return;
    }
    println!("\nrunning 1 test");
    dev_keys_are_sensitive_and_never_extractable();
    println!("test dev_keys_are_sensitive_and_never_extractable ... ok");
    println!("\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n");
}
