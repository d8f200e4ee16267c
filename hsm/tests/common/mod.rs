//! Shared helpers of the integration tests: a private SoftHSM token per test process and
//! the `openssl` CLI as an independent verifier.
//!
//! Each test binary is its own process with its own `SOFTHSM2_CONF` and token directory,
//! because SoftHSM reads its configuration once, in the first `C_Initialize`.
#![allow(dead_code)] // not every test binary uses every helper
#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hanko_hsm::{Hsm, ModuleConfig, Pin};
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const TOKEN: &str = "hanko-test";
pub const USER_PIN: &str = "user-pin-4711-x";
pub const SO_PIN: &str = "so-pin-0815-y";

/// The process's token: directory, config, and an open `Hsm`.
pub struct TestToken {
    pub dir: PathBuf,
    pub token_dir: PathBuf,
    pub hsm: Hsm,
}

pub fn module_config() -> ModuleConfig {
    ModuleConfig {
        module_path: MODULE.into(),
        token_label: TOKEN.into(),
    }
}

/// The process's SoftHSM: a temp config and token directory, with the token initialised
/// (created once per process; nothing is logged in).
pub fn softhsm() -> &'static (PathBuf, PathBuf) {
    static S: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("hanko-hsm-test-")
            .tempdir()
            .unwrap()
            .keep();
        let token_dir = dir.join("tokens");
        std::fs::create_dir_all(&token_dir).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                token_dir.display()
            ),
        )
        .unwrap();
        hanko_hsm::use_softhsm_config(&conf);
        let created = Hsm::init_token(
            &module_config(),
            &Pin::new(SO_PIN.into()),
            &Pin::new(USER_PIN.into()),
        )
        .unwrap();
        assert!(created);
        (dir, token_dir)
    })
}

/// The process's token, opened with the user PIN.
pub fn token() -> &'static TestToken {
    static T: OnceLock<TestToken> = OnceLock::new();
    T.get_or_init(|| {
        let (dir, token_dir) = softhsm().clone();
        let hsm = Hsm::open(module_config(), Pin::new(USER_PIN.into())).unwrap();
        TestToken {
            dir,
            token_dir,
            hsm,
        }
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes the SPKI as PEM through `openssl pkey` (which also proves OpenSSL parses it).
pub fn spki_to_pem(spki: &[u8], dir: &Path) -> PathBuf {
    let der = dir.join("pub.der");
    let pem = dir.join("pub.pem");
    std::fs::write(&der, spki).unwrap();
    let out = Command::new("openssl")
        .args([
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            s(&der),
            "-out",
            s(&pem),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pem
}

/// Verifies with `openssl pkeyutl -verify -rawin` (OpenSSL hashes the message itself).
/// Returns whether OpenSSL accepted the signature.
pub fn openssl_verify(spki: &[u8], alg: SignatureAlgorithm, msg: &[u8], sig: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let pem = spki_to_pem(spki, dir.path());
    let m = dir.path().join("msg");
    let sg = dir.path().join("sig");
    std::fs::write(&m, msg).unwrap();
    std::fs::write(&sg, sig).unwrap();
    let mut args: Vec<String> = [
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(&pem),
        "-rawin",
        "-in",
        s(&m),
        "-sigfile",
        s(&sg),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let hname = |h: HashAlgorithm| h.name().to_string();
    match alg {
        SignatureAlgorithm::RsaPkcs1v15(h) | SignatureAlgorithm::Ecdsa(h) => {
            args.extend(["-digest".into(), hname(h)]);
        }
        SignatureAlgorithm::RsaPss(h) => {
            args.extend([
                "-digest".into(),
                hname(h),
                "-pkeyopt".into(),
                "rsa_padding_mode:pss".into(),
                "-pkeyopt".into(),
                "rsa_pss_saltlen:digest".into(),
                "-pkeyopt".into(),
                format!("rsa_mgf1_md:{}", hname(h)),
            ]);
        }
        _ => {} // Ed25519: PureEdDSA, no digest
    }
    let out = Command::new("openssl").args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    out.status.success() && stdout.contains("Signature Verified Successfully")
}
