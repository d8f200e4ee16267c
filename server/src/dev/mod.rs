//! `hanko dev-init`: a complete development set-up under one data directory, made
//! idempotently (a second run reuses everything and says so).
//!
//! ```text
//!   <data-dir>/
//!     softhsm2.conf                  SoftHSM config pointing at softhsm/ (SOFTHSM2_CONF)
//!     softhsm/                       token store; token "hanko-dev"
//!     dev-pin                        the token's user PIN (0600; DEV ONLY)
//!     dev-api-key                    the dev client's API key (0600; DEV ONLY)
//!     hanko.toml                     the config `hanko serve --dev` runs with (the dev
//!                                    client's entry holds only the key's SHA-256)
//!     dev-pki/
//!       root.pem                     dev root CA (trust anchor for dev tokens)
//!       root.key.DEV-ONLY.pem        its private key, a FILE (0600)
//!       intermediate.pem             dev issuing CA (pathLen 0)
//!       intermediate.key.DEV-ONLY.pem
//!       <key-label>.pem              certificate of the token key <key-label>
//!       <key-label>-chain.pem        that certificate, then intermediate.pem
//!       seal-image.png               the dev seals' image for a visible (PDF) seal
//! ```
//!
//! The four signing keys (`tsa-rsa3072`, `tsa-p256`, `seal-rsa3072`, `seal-p256`) are
//! generated INSIDE the token (sensitive, never extractable). Their certificates go
//! through a real CSR signed by the token (proof of possession, checked with
//! `pki::verify` before issuing), like a production enrolment would.
//!
//! `dev-init --all-key-types` adds the other key types of the algorithm table, a TSA key
//! and a seal key of each ([`EXTRA_KEYS`]): RSA-3072 with RSASSA-PSS (its own key, not
//! the PKCS#1 v1.5 one), ECDSA P-384 and Ed25519, each TSA key serving a test policy of
//! its own. Once in the token they are kept up like the four (a later `dev-init` or
//! `serve --dev` without the flag renews their certificates too):
//!
//! ```text
//!   key                algorithm          TSA policy (reqPolicy)
//!   tsa-rsa3072        rsa-pkcs1-sha256   0.4.0.2023.1.1 (default)
//!   tsa-p256           ecdsa-sha256       1.3.6.1.5.5.7.13.2
//!   tsa-rsa3072-pss    rsa-pss-sha256     1.3.6.1.5.5.7.13.3   --all-key-types
//!   tsa-p384           ecdsa-sha384       1.3.6.1.5.5.7.13.4   --all-key-types
//!   tsa-ed25519        ed25519            1.3.6.1.5.5.7.13.5   --all-key-types
//!   seal-rsa3072, seal-p256; seal-rsa3072-pss, seal-p384, seal-ed25519 (--all-key-types)
//! ```
//!
//! # What this is not
//! Not a CA and not a key ceremony: the dev CA's keys are plain files, the PIN sits next
//! to the token, and anyone with the directory can sign as the dev TSA. It exists so that
//! `hanko serve --dev` and the test suite work on a fresh machine with no set-up.
//!
//! The dev token's PIN is always `<data-dir>/dev-pin`: `HANKO_PIN` and `HANKO_PIN_FILE`
//! are ignored in `--dev` (they name a production token's PIN). A missing `dev-pin` is
//! created, with a random PIN, before the token is; a `dev-pin` missing next to an
//! existing token store is an error (nobody could log in to that token).
//!
//! # Layout
//! - `paths.rs`: [`DevPaths`], [`prepare`] (directories, `softhsm2.conf`) and careful
//!   file writing.
//! - `ca.rs`: the dev root and issuing CA, and the token keys' enrolment.
//! - `config_file.rs`: the `hanko.toml` written for `serve --dev`.
//! - `seal_image.rs`: the dev seals' image, drawn in code.
//! - `client.rs`: the dev client (`dev-api-key`, its `[[api_keys]]` entry), which may
//!   seal with every dev seal credential.
//! - here: the keys, the PIN, the token and the order of the steps ([`init`]).

mod ca;
mod client;
mod config_file;
mod paths;
mod seal_image;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use hanko_hsm::{Hsm, ModuleConfig, Pin};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm};

use crate::config::{self, FileConfig, KeyUsage};

pub use client::DEV_CLIENT;
pub use config_file::{
    DEV_ECDSA_POLICY, DEV_ED25519_POLICY, DEV_P384_POLICY, DEV_RSA_PSS_POLICY, DEV_RUNTIME_THREADS,
};
pub use paths::{DevPaths, prepare};

/// One signing key dev-init creates in the token.
#[derive(Clone, Copy, Debug)]
pub struct DevKey {
    /// `CKA_LABEL`.
    pub label: &'static str,
    /// Key type generated in the token.
    pub key_type: KeyType,
    /// The signature algorithm it is configured with (and signs its CSR with).
    pub algorithm: SignatureAlgorithm,
    /// TSA or seal.
    pub usage: KeyUsage,
    /// commonName of its certificate.
    pub common_name: &'static str,
    /// A TSA key's policy OID: `None` for the default policy's key (and seal keys).
    pub policy: Option<&'static str>,
}

const RSA3072: KeyType = KeyType::Rsa { bits: 3072 };

/// The dev keys, in the order they are configured.
pub const DEV_KEYS: [DevKey; 4] = [
    DevKey {
        label: "tsa-rsa3072",
        key_type: RSA3072,
        algorithm: SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
        usage: KeyUsage::Tsa,
        common_name: "Hanko Dev TSA RSA-3072",
        policy: None,
    },
    DevKey {
        label: "tsa-p256",
        key_type: KeyType::EcP256,
        algorithm: SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        usage: KeyUsage::Tsa,
        common_name: "Hanko Dev TSA ECDSA P-256",
        policy: Some(DEV_ECDSA_POLICY),
    },
    DevKey {
        label: "seal-rsa3072",
        key_type: RSA3072,
        algorithm: SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
        usage: KeyUsage::Seal,
        common_name: "Hanko Dev Seal RSA-3072",
        policy: None,
    },
    DevKey {
        label: "seal-p256",
        key_type: KeyType::EcP256,
        algorithm: SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        usage: KeyUsage::Seal,
        common_name: "Hanko Dev Seal ECDSA P-256",
        policy: None,
    },
];

/// The keys `dev-init --all-key-types` adds: the rest of the algorithm table, for the
/// interop tests of every key type (docs/requirements.md, A.9).
pub const EXTRA_KEYS: [DevKey; 6] = [
    DevKey {
        label: "tsa-rsa3072-pss",
        key_type: RSA3072,
        algorithm: SignatureAlgorithm::RsaPss(HashAlgorithm::Sha256),
        usage: KeyUsage::Tsa,
        common_name: "Hanko Dev TSA RSA-3072 PSS",
        policy: Some(DEV_RSA_PSS_POLICY),
    },
    DevKey {
        label: "tsa-p384",
        key_type: KeyType::EcP384,
        algorithm: SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
        usage: KeyUsage::Tsa,
        common_name: "Hanko Dev TSA ECDSA P-384",
        policy: Some(DEV_P384_POLICY),
    },
    DevKey {
        label: "tsa-ed25519",
        key_type: KeyType::Ed25519,
        algorithm: SignatureAlgorithm::Ed25519,
        usage: KeyUsage::Tsa,
        common_name: "Hanko Dev TSA Ed25519",
        policy: Some(DEV_ED25519_POLICY),
    },
    DevKey {
        label: "seal-rsa3072-pss",
        key_type: RSA3072,
        algorithm: SignatureAlgorithm::RsaPss(HashAlgorithm::Sha256),
        usage: KeyUsage::Seal,
        common_name: "Hanko Dev Seal RSA-3072 PSS",
        policy: None,
    },
    DevKey {
        label: "seal-p384",
        key_type: KeyType::EcP384,
        algorithm: SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
        usage: KeyUsage::Seal,
        common_name: "Hanko Dev Seal ECDSA P-384",
        policy: None,
    },
    DevKey {
        label: "seal-ed25519",
        key_type: KeyType::Ed25519,
        algorithm: SignatureAlgorithm::Ed25519,
        usage: KeyUsage::Seal,
        common_name: "Hanko Dev Seal Ed25519",
        policy: None,
    },
];

/// Which dev keys [`init`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySet {
    /// The four [`DEV_KEYS`], and the [`EXTRA_KEYS`] only when the token already holds
    /// one of them (made by an earlier `--all-key-types`): what `serve --dev` and a
    /// plain `dev-init` do.
    Standard,
    /// [`DEV_KEYS`] and [`EXTRA_KEYS`]: `dev-init --all-key-types`.
    All,
}

/// What dev-init did, item by item, for the summary it prints.
#[derive(Debug, Default)]
pub struct Report {
    lines: Vec<String>,
    created: usize,
}

impl Report {
    fn created(&mut self, what: impl std::fmt::Display) {
        self.created += 1;
        tracing::info!("created {what}");
        self.lines.push(format!("  created  {what}"));
    }

    fn reused(&mut self, what: impl std::fmt::Display) {
        tracing::info!("reusing {what}");
        self.lines.push(format!("  reused   {what}"));
    }

    /// Whether anything was created (false: everything was reused).
    pub fn created_anything(&self) -> bool {
        self.created > 0
    }

    /// The human-readable summary.
    pub fn summary(&self, paths: &DevPaths) -> String {
        let mut s = format!(
            "hanko dev-init: {} (DEVELOPMENT ONLY)\n",
            paths.data_dir.display()
        );
        for l in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        if self.created_anything() {
            s.push_str("dev set-up ready.\n");
        } else {
            s.push_str("nothing to do: everything already exists and was reused.\n");
        }
        s.push_str(&format!(
            "trust anchor for dev tokens: {}\n",
            paths.pki("root.pem").display()
        ));
        s
    }
}

fn random_hex(bytes: usize) -> String {
    use rand::Rng as _;
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The configuration a dev set-up runs with, when one exists yet: `given` (the
/// `--config` file of `serve --dev`), else `<data-dir>/hanko.toml` if present (`None` on a
/// fresh directory, before [`init`] writes it).
pub fn existing_config(
    paths: &DevPaths,
    given: Option<FileConfig>,
) -> anyhow::Result<Option<FileConfig>> {
    match given {
        Some(f) => Ok(Some(f)),
        None if paths.config_file.exists() => FileConfig::load(&paths.config_file).map(Some),
        None => Ok(None),
    }
}

/// The module and token of a dev set-up: `[hsm] module` and `[hsm] token_label` of `file`
/// (see [`existing_config`]) where it sets them, else SoftHSM and the dev token label.
///
/// The token is made, logged in to and used through this one module, so that it is
/// created wherever that module looks for it: with pkcs11-mock (which forwards every call,
/// `C_InitToken` included, to SoftHSM) it lands in the dev SoftHSM store as usual. A
/// process loads one PKCS#11 module; opening SoftHSM directly and the configured module
/// next would load the same library twice behind two `C_Initialize`s.
pub fn dev_module(file: Option<&FileConfig>) -> ModuleConfig {
    let hsm = file.map(|f| &f.hsm);
    ModuleConfig {
        module_path: hsm
            .and_then(|h| h.module.clone())
            .unwrap_or_else(|| PathBuf::from(config::DEFAULT_MODULE)),
        token_label: hsm
            .and_then(|h| h.token_label.clone())
            .unwrap_or_else(|| config::DEV_TOKEN_LABEL.to_owned()),
    }
}

/// Runs dev-init after [`prepare`] (and after `SOFTHSM2_CONF` points at the dev conf):
/// token, PIN, keys (`set`), dev CA, certificates, config, all through `module` (see
/// [`dev_module`]). Returns the logged-in token.
///
/// PKCS#11 calls here block the calling thread; that is fine for a one-shot set-up that
/// runs before the server accepts connections.
pub async fn init(
    paths: &DevPaths,
    module: &ModuleConfig,
    set: KeySet,
    report: &mut Report,
) -> anyhow::Result<Hsm> {
    let _turn = lock_data_dir(paths)?;
    let pin = dev_pin(paths, report)?;
    let hsm = dev_token(module, pin, report)?;
    let keys = dev_keys(&hsm, set)?;
    let spkis = dev_token_keys(&hsm, &keys, report)?;
    ca::certify(paths, &hsm, &keys, &spkis, SystemTime::now(), report).await?;
    seal_image::ensure(paths, report)?;
    config_file::write_if_missing(paths, &keys, report)?;
    client::ensure(paths, &keys, report)?;
    Ok(hsm)
}

/// Takes `<data-dir>/.dev-init.lock` (an advisory `flock`, released when the returned file
/// is dropped, or when the process dies): `dev-init` and `serve --dev` on one directory
/// prepare it one at a time. Otherwise one could read a certificate, key or chain file
/// while another replaces it, find it unusable and issue a new one under servers already
/// running on the old (seen in the tests, which start many dev servers on one directory
/// at once: archive time-stamps whose ESS certID no longer matched the TSA certificate
/// file). Blocks the start-up until the other preparation is done.
fn lock_data_dir(paths: &DevPaths) -> anyhow::Result<fs::File> {
    let path = paths.data_dir.join(".dev-init.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    flock_exclusive(&file).with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}

/// `flock(LOCK_EX)` on `file`, waiting for it (`File::lock` is newer than the MSRV).
#[allow(
    unsafe_code,
    reason = "libc's flock(2) has no safe wrapper below Rust 1.89; it takes an fd and a flag"
)]
fn flock_exclusive(file: &fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    loop {
        // SAFETY: flock(2) reads no memory of ours; the fd is open for as long as `file`
        // is borrowed, and a bad fd or flag is an error return, not undefined behaviour.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The keys of `set`, in the order they are configured: [`DEV_KEYS`], then the
/// [`EXTRA_KEYS`] for [`KeySet::All`] or when the token holds any of them already.
fn dev_keys(hsm: &Hsm, set: KeySet) -> anyhow::Result<Vec<DevKey>> {
    let mut with_extra = set == KeySet::All;
    for k in &EXTRA_KEYS {
        if !with_extra && hsm.public_key(k.label)?.is_some() {
            with_extra = true;
        }
    }
    let mut keys = DEV_KEYS.to_vec();
    if with_extra {
        keys.extend(EXTRA_KEYS);
    }
    Ok(keys)
}

/// The user PIN from `<data-dir>/dev-pin`, made on a fresh directory. It is written
/// BEFORE the token exists, so a crash in between never leaves a token nobody can log in
/// to.
fn dev_pin(paths: &DevPaths, report: &mut Report) -> anyhow::Result<Pin> {
    let token_store_empty = fs::read_dir(&paths.token_dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true);
    if paths.pin_file.exists() {
        paths::check_private(&paths.pin_file)?;
        report.reused(paths.pin_file.display());
        return Ok(Pin::from_file(&paths.pin_file)?);
    }
    if !token_store_empty {
        bail!(
            "{} is missing but the token store {} is not empty: nobody can log in to that \
             token. Delete {} to start the dev set-up over.",
            paths.pin_file.display(),
            paths.token_dir.display(),
            paths.data_dir.display()
        );
    }
    let pin = random_hex(16);
    paths::write_file(&paths.pin_file, format!("{pin}\n").as_bytes(), 0o600)?;
    report.created(format!(
        "{} (user PIN, mode 0600)",
        paths.pin_file.display()
    ));
    Ok(Pin::new(pin))
}

/// The dev token through `module` (made when missing), logged in with `pin`.
fn dev_token(module: &ModuleConfig, pin: Pin, report: &mut Report) -> anyhow::Result<Hsm> {
    let through = if module.module_path == Path::new(config::DEFAULT_MODULE) {
        String::new()
    } else {
        format!(" (through {})", module.module_path.display())
    };
    // The SO PIN is random and not kept: a dev token is thrown away, never re-initialised.
    let so_pin = Pin::new(random_hex(16));
    if Hsm::init_token(module, &so_pin, &pin)? {
        report.created(format!("token \"{}\"{through}", module.token_label));
    } else {
        report.reused(format!("token \"{}\"{through}", module.token_label));
    }
    Hsm::open(module.clone(), pin).context("cannot log in to the dev token")
}

/// The `keys` in the token (generated there when missing): their public keys
/// (SubjectPublicKeyInfo DER), in the same order.
fn dev_token_keys(hsm: &Hsm, keys: &[DevKey], report: &mut Report) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut spkis = Vec::new();
    for k in keys {
        let spki = match hsm.public_key(k.label)? {
            Some(spki) => {
                report.reused(format!("key \"{}\" ({}) in the token", k.label, k.key_type));
                spki
            }
            None => {
                let spki = hsm.generate_key_pair(k.label, k.key_type)?;
                report.created(format!(
                    "key \"{}\" ({}) in the token, non-extractable",
                    k.label, k.key_type
                ));
                spki
            }
        };
        spkis.push(spki);
    }
    Ok(spkis)
}
