//! The keys `hanko dev-init` makes live in the token and cannot leave it
//! (CONFORMANCE 39). Its own test binary: it points this process's SOFTHSM2_CONF at the
//! dev token, which must happen before any other thread touches the environment.
#![allow(clippy::unwrap_used, reason = "tests: a panic is a failed assertion")]

use hanko_hsm::cryptoki::object::{Attribute, AttributeType};
use hanko_hsm::{Hsm, ModuleConfig, Pin};

#[test]
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

    hanko_hsm::use_softhsm_config(&dir.join("softhsm2.conf"));
    let hsm = Hsm::open(
        ModuleConfig {
            module_path: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: "hanko-dev".into(),
        },
        Pin::from_file(&dir.join("dev-pin")).unwrap(),
    )
    .unwrap();
    for label in ["tsa-rsa3072", "tsa-p256", "seal-rsa3072", "seal-p256"] {
        let attrs = hsm
            .private_key_attributes(
                label,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Token,
                    AttributeType::Value,
                    AttributeType::PrivateExponent,
                ],
            )
            .unwrap();
        let has = |a: &Attribute| attrs.contains(a);
        assert!(has(&Attribute::Sensitive(true)), "{label}: {attrs:?}");
        assert!(has(&Attribute::Extractable(false)), "{label}: {attrs:?}");
        assert!(has(&Attribute::AlwaysSensitive(true)), "{label}: {attrs:?}");
        assert!(
            has(&Attribute::NeverExtractable(true)),
            "{label}: {attrs:?}"
        );
        assert!(has(&Attribute::Token(true)), "{label}: {attrs:?}");
        // The secret itself is not readable.
        assert!(
            !attrs
                .iter()
                .any(|a| matches!(a, Attribute::Value(_) | Attribute::PrivateExponent(_))),
            "{label}: private key material readable: {attrs:?}"
        );
    }
}
