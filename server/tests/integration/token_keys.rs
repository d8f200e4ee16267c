//! The keys `hanko dev-init` makes live in the token and cannot leave it
//! (CONFORMANCE 39), read through hanko-hsm from the token itself. The module is
//! `HANKO_TEST_PKCS11_MODULE`, SoftHSM by default.
//!
//! SoftHSM finds the dev token through `SOFTHSM2_CONF`, read from the environment of
//! the process that loads it; the other tests of this binary run in threads beside this
//! one, so this process's environment must not change. The check therefore runs in a
//! child: this test binary again, running only [`attributes_in_the_dev_token`] with
//! `SOFTHSM2_CONF` given to it through `Command::env`.

use std::path::Path;

use hanko_hsm::ProtectionHistory;

use crate::common::{dev_init, open_dev_token, run_in_child_with_dev_token};

/// Tells the child which dev data directory to open.
const DATA_DIR_VAR: &str = "HANKO_TEST_TOKEN_KEYS_DATA_DIR";
const CHILD_TEST: &str = "token_keys::attributes_in_the_dev_token";

#[test]
fn dev_keys_are_sensitive_and_never_extractable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);

    run_in_child_with_dev_token(CHILD_TEST, DATA_DIR_VAR, &dir);
}

/// The check itself, run by [`dev_keys_are_sensitive_and_never_extractable`] in a child
/// process; by itself (without the variables it sets) there is nothing to check.
#[test]
#[ignore = "run in a child process by dev_keys_are_sensitive_and_never_extractable"]
fn attributes_in_the_dev_token() {
    let Some(dir) = std::env::var_os(DATA_DIR_VAR) else {
        eprintln!("{DATA_DIR_VAR} is not set: nothing to check");
        return;
    };
    assert_dev_keys_stay_in_the_token(Path::new(&dir));
}

fn assert_dev_keys_stay_in_the_token(dir: &Path) {
    assert_keys_stay_in_the_token(
        dir,
        &["tsa-rsa3072", "tsa-p256", "seal-rsa3072", "seal-p256"],
    );
}

/// The keys `labels` of the dev token of `dir` are sensitive, never extractable, token
/// objects, and their secret is not readable (also for `key_types`' extra keys).
pub fn assert_keys_stay_in_the_token(dir: &Path, labels: &[&str]) {
    let hsm = open_dev_token(dir);
    for &label in labels {
        let p = hsm.key_protection(label).unwrap();
        assert_eq!(p.sensitive, Some(true), "{label}: {p:?}");
        assert_eq!(p.extractable, Some(false), "{label}: {p:?}");
        assert_eq!(p.always_sensitive, Some(true), "{label}: {p:?}");
        assert_eq!(p.never_extractable, Some(true), "{label}: {p:?}");
        assert_eq!(p.token_object, Some(true), "{label}: {p:?}");
        assert!(p.other_uses().is_empty(), "{label}: {p:?}");
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
