//! Shared helpers of the integration tests: a private SoftHSM token per test process, the
//! `openssl` CLI as an independent verifier, and the small test runner the binaries use.
//!
//! Each test binary is its own process with its own `SOFTHSM2_CONF` and token directory,
//! because SoftHSM reads its configuration once, in the first `C_Initialize`.
//!
//! # Why `harness = false`
//! Pointing SoftHSM at the process's configuration means setting `SOFTHSM2_CONF`, and
//! changing the environment while other threads run is unsound (`std::env::set_var` is
//! `unsafe` for that reason). libtest starts its threads before any test code runs, and
//! a `std::sync::Once` inside a test only orders the tests against each other, not
//! against the harness's own threads. PKCS#11 offers no way to pass the configuration
//! path instead (SoftHSM reads only the variable). So every binary that uses this token
//! is a `harness = false` test whose `main` calls [`run`]: it sets the environment and
//! creates the token first, then runs the tests on threads of its own.
//!
//! The module is `HANKO_TEST_PKCS11_MODULE`, SoftHSM by default
//! (`hanko_pkcs11_mock::module_under_test`), so the suite can run against another token.
#![allow(dead_code)] // not every test binary uses every helper
#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use hanko_hsm::{Hsm, ModuleConfig, Pin};
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};

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
        module_path: hanko_pkcs11_mock::module_under_test(),
        token_label: TOKEN.into(),
    }
}

static SOFTHSM: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();

/// The process's SoftHSM: a temp config and token directory, with the token initialised
/// (nothing is logged in). Made by [`run`] before any test starts.
pub fn softhsm() -> &'static (PathBuf, PathBuf) {
    SOFTHSM
        .get()
        .expect("the token is created by common::run, in main, before the tests")
}

/// Writes the SoftHSM configuration, points `SOFTHSM2_CONF` at it and initialises the
/// token. Only from `main` before any thread exists (see the module docs).
fn setup_softhsm() -> (PathBuf, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("hanko-hsm-test-")
        .tempdir()
        .unwrap()
        .keep();
    let conf = hanko_pkcs11_mock::write_softhsm_config(&dir).unwrap();
    let token_dir = dir.join("tokens");
    // Sound: `run` calls this first thing in `main`, before any thread is started.
    hanko_hsm::use_softhsm_config(&conf);
    let created = Hsm::init_token(
        &module_config(),
        &Pin::new(SO_PIN.into()),
        &Pin::new(USER_PIN.into()),
    )
    .unwrap();
    assert!(created);
    (dir, token_dir)
}

/// One test of a `harness = false` binary: its name and body.
pub type Test = (&'static str, fn());

/// Runs `body` on a multi-threaded tokio runtime with two workers, as
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` did.
pub fn block_on(body: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(body)
}

/// The `main` of a test binary: sets up the process's token (environment first, while
/// this is the only thread), then runs the tests whose names contain one of the
/// command-line words (all without words) on up to `--test-threads` threads (default:
/// the CPU count), and exits non-zero if one failed. Prints libtest's summary line.
pub fn run(tests: &[Test]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    SOFTHSM.get_or_init(setup_softhsm);
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    let threads = args
        .iter()
        .find_map(|a| a.strip_prefix("--test-threads="))
        .and_then(|n| n.parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, selected.len().max(1));
    println!("\nrunning {} tests", selected.len());
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(&&(name, body)) = selected.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    // A panicking test is a failed test; its message is printed by the
                    // panic hook. The thread is named after the test, as libtest does.
                    let outcome = std::thread::Builder::new()
                        .name(name.to_owned())
                        .spawn(body)
                        .unwrap()
                        .join();
                    match outcome {
                        Ok(()) => println!("test {name} ... ok"),
                        Err(_) => {
                            println!("test {name} ... FAILED");
                            failed.lock().unwrap().push(name);
                        }
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
        tests.len() - selected.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        println!("failures: {failed:?}");
        std::process::exit(101);
    }
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

/// Generates a P-256 key pair in the process's token straight through cryptoki,
/// bypassing `Hsm`, for pairs `Hsm` would never make: labels that differ between the two
/// halves, or a private half with the `protection` attributes given (`CKA_SENSITIVE`,
/// `CKA_EXTRACTABLE`; SoftHSM's defaults when absent). The process's `Hsm` must be open
/// ([`token`]): the library is initialised and the user logged in through it, so this
/// session is logged in too.
pub fn raw_p256_key_pair(
    public_label: &str,
    private_label: &str,
    protection: &[cryptoki::object::Attribute],
) {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::Attribute;
    let p = cryptoki::context::Pkcs11::new(hanko_pkcs11_mock::module_under_test()).unwrap();
    let slot = p
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| p.get_token_info(*s).unwrap().label() == TOKEN)
        .unwrap();
    let session = p.open_rw_session(slot).unwrap();
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sign(true),
        Attribute::Label(private_label.into()),
    ];
    private.extend_from_slice(protection);
    let public = [
        Attribute::EcParams(hanko_pki::der::oid(&hanko_pki::oid::SECP256R1)),
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::Label(public_label.into()),
    ];
    // SoftHSM 2.6.1 on OpenSSL 3 now and then fails an EC generation with
    // CKR_GENERAL_ERROR, leaving nothing behind (seen in CI here too); tried again as
    // `Hsm::generate_key_pair` does.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match session.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private) {
            Ok(_) => return,
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::GeneralError, _))
                if attempts < 3 => {}
            Err(e) => panic!("raw key pair {private_label}: {e}"),
        }
    }
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
    let mut args: Vec<String> = vec!["-rawin".into()];
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
    pkeyutl_verify(spki, msg, sig, &args)
}

/// Verifies a signature over a digest with `openssl pkeyutl -verify` (no `-rawin`: the
/// input IS the digest, and `-pkeyopt digest:` names its hash; for PSS the salt is the
/// digest's length and MGF1 uses the same hash, OpenSSL's defaults for it). Returns
/// whether OpenSSL accepted the signature.
pub fn openssl_verify_digest(
    spki: &[u8],
    alg: hanko_pki::DigestSignAlgorithm,
    digest: &[u8],
    sig: &[u8],
) -> bool {
    let mut args = vec![
        "-pkeyopt".to_owned(),
        format!("digest:{}", alg.hash().name()),
    ];
    if let hanko_pki::DigestSignAlgorithm::RsaPss(_) = alg {
        args.extend([
            "-pkeyopt".into(),
            "rsa_padding_mode:pss".into(),
            "-pkeyopt".into(),
            "rsa_pss_saltlen:digest".into(),
        ]);
    }
    pkeyutl_verify(spki, digest, sig, &args)
}

/// `openssl pkeyutl -verify -pubin` of `sig` over `input` with the key `spki` and the
/// `extra` options; whether OpenSSL said "Signature Verified Successfully".
fn pkeyutl_verify(spki: &[u8], input: &[u8], sig: &[u8], extra: &[String]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let pem = spki_to_pem(spki, dir.path());
    let inp = dir.path().join("input");
    let sg = dir.path().join("sig");
    std::fs::write(&inp, input).unwrap();
    std::fs::write(&sg, sig).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey", s(&pem)])
        .args(["-in", s(&inp), "-sigfile", s(&sg)])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    out.status.success() && stdout.contains("Signature Verified Successfully")
}
