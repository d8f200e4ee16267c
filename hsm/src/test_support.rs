//! A private SoftHSM token for the integration tests of the crates that sign through
//! hanko-hsm in-process (`hanko-seal`, `hanko-anchor`). Compiled only with the
//! `test-support` feature, which those crates enable from their `[dev-dependencies]`;
//! no production build contains it.
//!
//! # What it does not do
//! It generates no keys (each suite makes its own with [`Hsm::generate_key_pair`]) and
//! does not make the environment change sound: [`crate::use_softhsm_config`]'s
//! precondition (no other thread yet) is the caller's, as it is for hanko-hsm's own
//! `harness = false` tests.

use std::path::{Path, PathBuf};

use crate::{Hsm, ModuleConfig, Pin};

/// SoftHSM's module as Debian installs it.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Makes `<base>/<process id>/` (removing older runs' directories under `base`), writes a
/// SoftHSM configuration there, points SoftHSM at it, initialises token `label` with the
/// two PINs and opens it. Returns the directory and the open token.
///
/// # Panics
/// When any step fails: this is a fixture for tests.
pub fn private_token(base: &Path, label: &str, so_pin: &str, user_pin: &str) -> (PathBuf, Hsm) {
    #[allow(
        clippy::unwrap_used,
        reason = "a test fixture: failing is the assertion"
    )]
    {
        if let Ok(entries) = std::fs::read_dir(base) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let conf = hanko_pkcs11_mock::write_softhsm_config(&dir).unwrap();
        crate::use_softhsm_config(&conf);
        let module = ModuleConfig {
            module_path: SOFTHSM_MODULE.into(),
            token_label: label.into(),
        };
        Hsm::init_token(
            &module,
            &Pin::new(so_pin.into()),
            &Pin::new(user_pin.into()),
        )
        .unwrap();
        let hsm = Hsm::open(module, Pin::new(user_pin.into())).unwrap();
        (dir, hsm)
    }
}
