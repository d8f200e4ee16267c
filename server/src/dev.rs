//! `hanko dev-init`: a complete development set-up under one data directory, made
//! idempotently (a second run reuses everything and says so).
//!
//! ```text
//!   <data-dir>/
//!     softhsm2.conf                  SoftHSM config pointing at softhsm/ (SOFTHSM2_CONF)
//!     softhsm/                       token store; token "hanko-dev"
//!     dev-pin                        the token's user PIN (0600; DEV ONLY)
//!     hanko.toml                     the config `hanko serve --dev` runs with
//!     dev-pki/
//!       root.pem                     dev root CA (trust anchor for dev tokens)
//!       root.key.DEV-ONLY.pem        its private key, a FILE (0600)
//!       intermediate.pem             dev issuing CA (pathLen 0)
//!       intermediate.key.DEV-ONLY.pem
//!       <key-label>.pem              certificate of the token key <key-label>
//!       <key-label>-chain.pem        that certificate, then intermediate.pem
//! ```
//!
//! The four signing keys (`tsa-rsa3072`, `tsa-p256`, `seal-rsa3072`, `seal-p256`) are
//! generated INSIDE the token (sensitive, never extractable). Their certificates go
//! through a real CSR signed by the token (proof of possession, checked with
//! `pki::verify` before issuing), like a production enrolment would.
//!
//! # What this is not
//! Not a CA and not a key ceremony: the dev CA's keys are plain files, the PIN sits next
//! to the token, and anyone with the directory can sign as the dev TSA. It exists so that
//! `hanko serve --dev` and the test suite work on a fresh machine with no set-up.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use hanko_hsm::{Hsm, ModuleConfig, Pin, PoolConfig};
use hanko_pki::cert::{
    Certificate, check_key_matches, check_seal_certificate, check_tsa_certificate, load_pem_chain,
};
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::x509::{
    CertParams, CertProfile, CertRequest, Name, NameAttr, build_name, issue_certificate, make_csr,
};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer};

use crate::config::{self, FileConfig, KeyUsage};

const DAY: Duration = Duration::from_secs(86_400);
/// Certificates start this much in the past, to tolerate clock differences.
const BACKDATE: Duration = Duration::from_secs(3_600);
/// Reissue a dev certificate when less than this is left of it.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// One signing key dev-init creates in the token.
#[derive(Clone, Copy, Debug)]
pub struct DevKey {
    /// `CKA_LABEL`.
    pub label: &'static str,
    /// Key type generated in the token.
    pub key_type: KeyType,
    /// TSA or seal.
    pub usage: KeyUsage,
    /// commonName of its certificate.
    pub common_name: &'static str,
}

impl DevKey {
    /// The signature algorithm it is configured with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.key_type.default_signature_algorithm()
    }
}

/// The dev keys, in the order they are configured.
pub const DEV_KEYS: [DevKey; 4] = [
    DevKey {
        label: "tsa-rsa3072",
        key_type: KeyType::Rsa { bits: 3072 },
        usage: KeyUsage::Tsa,
        common_name: "Hanko Dev TSA RSA-3072",
    },
    DevKey {
        label: "tsa-p256",
        key_type: KeyType::EcP256,
        usage: KeyUsage::Tsa,
        common_name: "Hanko Dev TSA ECDSA P-256",
    },
    DevKey {
        label: "seal-rsa3072",
        key_type: KeyType::Rsa { bits: 3072 },
        usage: KeyUsage::Seal,
        common_name: "Hanko Dev Seal RSA-3072",
    },
    DevKey {
        label: "seal-p256",
        key_type: KeyType::EcP256,
        usage: KeyUsage::Seal,
        common_name: "Hanko Dev Seal ECDSA P-256",
    },
];

/// The paths of a dev data directory.
#[derive(Clone, Debug)]
pub struct DevPaths {
    /// The data directory, absolute.
    pub data_dir: PathBuf,
    /// `<data-dir>/softhsm2.conf`.
    pub softhsm_conf: PathBuf,
    /// `<data-dir>/softhsm/`.
    pub token_dir: PathBuf,
    /// `<data-dir>/dev-pin`.
    pub pin_file: PathBuf,
    /// `<data-dir>/dev-pki/`.
    pub pki_dir: PathBuf,
    /// `<data-dir>/hanko.toml`.
    pub config_file: PathBuf,
}

impl DevPaths {
    /// Paths under `data_dir` (made absolute against the current directory).
    pub fn new(data_dir: &Path) -> anyhow::Result<DevPaths> {
        let data_dir = std::path::absolute(data_dir)
            .with_context(|| format!("data directory {}", data_dir.display()))?;
        Ok(DevPaths {
            softhsm_conf: data_dir.join("softhsm2.conf"),
            token_dir: data_dir.join("softhsm"),
            pin_file: data_dir.join("dev-pin"),
            pki_dir: data_dir.join("dev-pki"),
            config_file: data_dir.join(config::DEV_CONFIG_FILE),
            data_dir,
        })
    }

    /// `<pki>/<name>`.
    pub fn pki(&self, name: &str) -> PathBuf {
        self.pki_dir.join(name)
    }
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

/// The first, synchronous step: directories and `softhsm2.conf`. Runs before any thread
/// exists, because the caller points `SOFTHSM2_CONF` at the file next.
pub fn prepare(paths: &DevPaths, report: &mut Report) -> anyhow::Result<()> {
    for dir in [&paths.data_dir, &paths.token_dir, &paths.pki_dir] {
        if !dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let conf = format!(
        "# Written by `hanko dev-init`: SoftHSM2 for DEVELOPMENT ONLY.\n\
         directories.tokendir = {}/\n\
         objectstore.backend = file\n\
         log.level = ERROR\n\
         slots.removable = false\n",
        paths.token_dir.display()
    );
    match fs::read_to_string(&paths.softhsm_conf) {
        Ok(existing) if existing == conf => report.reused(paths.softhsm_conf.display()),
        Ok(_) => bail!(
            "{} exists but does not point at {}; move the data directory back or delete the file",
            paths.softhsm_conf.display(),
            paths.token_dir.display()
        ),
        Err(_) => {
            write_file(&paths.softhsm_conf, conf.as_bytes(), 0o644)?;
            report.created(paths.softhsm_conf.display());
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (temp file + rename) with `mode`; refuses to
/// overwrite.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp-hanko");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    // The umask may have narrowed the mode; make it exact.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    if path.exists() {
        let _ = fs::remove_file(&tmp);
        bail!(
            "{} appeared while writing it; not overwriting",
            path.display()
        );
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(())
}

/// Replaces `path` (dev certificates that are renewed).
fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    if path.exists() {
        fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    write_file(path, bytes, mode)
}

fn random_hex(bytes: usize) -> String {
    use rand::Rng as _;
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Warns if a secret file is readable by others.
fn check_private(path: &Path) -> anyhow::Result<()> {
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "secret file is readable by group or others; chmod 600 it"
        );
    }
    Ok(())
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
/// token, PIN, keys, dev CA, certificates, config, all through `module` (see
/// [`dev_module`]). Returns the logged-in token.
///
/// PKCS#11 calls here block the calling thread; that is fine for a one-shot set-up that
/// runs before the server accepts connections.
pub async fn init(
    paths: &DevPaths,
    module: &ModuleConfig,
    report: &mut Report,
) -> anyhow::Result<Hsm> {
    let module = module.clone();
    let through = if module.module_path == Path::new(config::DEFAULT_MODULE) {
        String::new()
    } else {
        format!(" (through {})", module.module_path.display())
    };

    // The user PIN: written BEFORE the token exists, so a crash in between never leaves
    // a token nobody can log in to.
    let token_store_empty = fs::read_dir(&paths.token_dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true);
    let pin = if paths.pin_file.exists() {
        check_private(&paths.pin_file)?;
        report.reused(paths.pin_file.display());
        Pin::from_file(&paths.pin_file)?
    } else {
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
        write_file(&paths.pin_file, format!("{pin}\n").as_bytes(), 0o600)?;
        report.created(format!(
            "{} (user PIN, mode 0600)",
            paths.pin_file.display()
        ));
        Pin::new(pin)
    };
    // The SO PIN is random and not kept: a dev token is thrown away, never re-initialised.
    let so_pin = Pin::new(random_hex(16));
    if Hsm::init_token(&module, &so_pin, &pin)? {
        report.created(format!("token \"{}\"{through}", module.token_label));
    } else {
        report.reused(format!("token \"{}\"{through}", module.token_label));
    }
    let hsm = Hsm::open(module, pin).context("cannot log in to the dev token")?;

    let mut spkis = Vec::new();
    for k in DEV_KEYS {
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

    let now = SystemTime::now();
    let (root, root_key, root_new) = dev_root(paths, now, report)?;
    let (inter, inter_key, inter_new) =
        dev_intermediate(paths, &root, &root_key, root_new, now, report).await?;

    for (k, spki) in DEV_KEYS.iter().zip(&spkis) {
        let cert_path = paths.pki(&format!("{}.pem", k.label));
        let chain_path = paths.pki(&format!("{}-chain.pem", k.label));
        let existing = if inter_new {
            None
        } else {
            reusable_leaf(&cert_path, k, spki, &inter, now)
        };
        let leaf = match existing {
            Some(c) => {
                report.reused(cert_path.display());
                c
            }
            None => {
                let c = enrol(&hsm, k, &inter, &inter_key, now).await?;
                replace_file(&cert_path, c.to_pem().as_bytes(), 0o644)?;
                report.created(format!("{} ({})", cert_path.display(), c.subject_string()));
                c
            }
        };
        let chain_pem = format!("{}{}", leaf.to_pem(), inter.to_pem());
        if fs::read_to_string(&chain_path).ok().as_deref() == Some(chain_pem.as_str()) {
            report.reused(chain_path.display());
        } else {
            replace_file(&chain_path, chain_pem.as_bytes(), 0o644)?;
            report.created(chain_path.display());
        }
    }

    if paths.config_file.exists() {
        report.reused(paths.config_file.display());
    } else {
        write_file(&paths.config_file, dev_config(paths).as_bytes(), 0o644)?;
        report.created(paths.config_file.display());
    }
    Ok(hsm)
}

fn dev_name(cn: &str) -> anyhow::Result<Name> {
    Ok(build_name(&[
        (NameAttr::Country, "JP"),
        (NameAttr::Organization, "Hanko Dev"),
        (NameAttr::CommonName, cn),
    ])?)
}

const CA_ALG: SignatureAlgorithm = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384);

/// Loads a dev CA certificate and its DEV-ONLY key if both exist, match and stay valid
/// for a while.
fn load_ca(
    cert_path: &Path,
    key_path: &Path,
    now: SystemTime,
) -> Option<(Certificate, SoftwareSigner)> {
    let pem = fs::read_to_string(cert_path).ok()?;
    let cert = Certificate::from_pem(&pem).ok()?;
    let key_pem = fs::read_to_string(key_path).ok()?;
    let key = SoftwareSigner::from_pkcs8_pem(&key_pem, CA_ALG).ok()?;
    let fresh = now + RENEW_BEFORE < cert.not_after() && now >= cert.not_before();
    if check_key_matches(&cert, key.public_key_der()).is_err() || !cert.is_ca() || !fresh {
        tracing::warn!(path = %cert_path.display(), "dev CA certificate unusable; making a new one");
        return None;
    }
    Some((cert, key))
}

/// PEM of a DEV-ONLY key file: a warning header, then the key.
fn dev_key_file(signer: &SoftwareSigner, what: &str) -> anyhow::Result<String> {
    let pem = signer.to_pkcs8_pem()?;
    Ok(format!(
        "# DEV-ONLY private key of the Hanko {what}, written by `hanko dev-init`.\n\
         # Anyone holding this file can issue certificates trusted by dev set-ups.\n\
         # Never use it, or anything it signed, outside development.\n{}",
        pem.as_str()
    ))
}

fn dev_root(
    paths: &DevPaths,
    now: SystemTime,
    report: &mut Report,
) -> anyhow::Result<(Certificate, SoftwareSigner, bool)> {
    let cert_path = paths.pki("root.pem");
    let key_path = paths.pki("root.key.DEV-ONLY.pem");
    if let Some((cert, key)) = load_ca(&cert_path, &key_path, now) {
        check_private(&key_path)?;
        report.reused(cert_path.display());
        return Ok((cert, key, false));
    }
    let key = SoftwareSigner::generate(KeyType::EcP384, CA_ALG)?;
    let params = CertParams::new(
        CertProfile::RootCa,
        dev_name("Hanko Dev Root CA (DEV ONLY)")?,
        now - BACKDATE,
        now + 3650 * DAY,
    );
    let cert = futures_ready(issue_certificate(&params, key.public_key_der(), None, &key))?;
    replace_file(
        &key_path,
        dev_key_file(&key, "dev root CA")?.as_bytes(),
        0o600,
    )?;
    replace_file(&cert_path, cert.to_pem().as_bytes(), 0o644)?;
    report.created(format!("{} (software key, DEV ONLY)", key_path.display()));
    report.created(cert_path.display());
    Ok((cert, key, true))
}

async fn dev_intermediate(
    paths: &DevPaths,
    root: &Certificate,
    root_key: &SoftwareSigner,
    root_new: bool,
    now: SystemTime,
    report: &mut Report,
) -> anyhow::Result<(Certificate, SoftwareSigner, bool)> {
    let cert_path = paths.pki("intermediate.pem");
    let key_path = paths.pki("intermediate.key.DEV-ONLY.pem");
    if !root_new
        && let Some((cert, key)) = load_ca(&cert_path, &key_path, now)
        && cert.verify_issued_by(root).is_ok()
    {
        check_private(&key_path)?;
        report.reused(cert_path.display());
        return Ok((cert, key, false));
    }
    let key = SoftwareSigner::generate(KeyType::EcP384, CA_ALG)?;
    let not_after = (now + 1825 * DAY).min(root.not_after());
    let params = CertParams::new(
        CertProfile::IntermediateCa { path_len: 0 },
        dev_name("Hanko Dev Issuing CA (DEV ONLY)")?,
        (now - BACKDATE).max(root.not_before()),
        not_after,
    );
    let cert = issue_certificate(&params, key.public_key_der(), Some(root), root_key).await?;
    replace_file(
        &key_path,
        dev_key_file(&key, "dev issuing CA")?.as_bytes(),
        0o600,
    )?;
    replace_file(&cert_path, cert.to_pem().as_bytes(), 0o644)?;
    report.created(format!("{} (software key, DEV ONLY)", key_path.display()));
    report.created(cert_path.display());
    Ok((cert, key, true))
}

/// An existing leaf certificate that still fits: same key as the token, issued by the
/// current intermediate, passes its profile check and is not about to expire.
fn reusable_leaf(
    path: &Path,
    k: &DevKey,
    spki: &[u8],
    inter: &Certificate,
    now: SystemTime,
) -> Option<Certificate> {
    let cert = load_pem_chain(&fs::read_to_string(path).ok()?)
        .ok()?
        .into_iter()
        .next()?;
    let checked = match k.usage {
        KeyUsage::Tsa => check_tsa_certificate(&cert, now + RENEW_BEFORE),
        KeyUsage::Seal => check_seal_certificate(&cert, now + RENEW_BEFORE),
    };
    let ok = checked.is_ok()
        && check_key_matches(&cert, spki).is_ok()
        && cert.verify_issued_by(inter).is_ok();
    if !ok {
        tracing::warn!(path = %path.display(), "dev certificate unusable; issuing a new one");
    }
    ok.then_some(cert)
}

/// A production-shaped enrolment: CSR signed in the token, proof of possession checked,
/// certificate issued by the dev intermediate for the key the CSR names.
async fn enrol(
    hsm: &Hsm,
    k: &DevKey,
    inter: &Certificate,
    inter_key: &SoftwareSigner,
    now: SystemTime,
) -> anyhow::Result<Certificate> {
    let pool = PoolConfig {
        workers: 1,
        queue_depth: 4,
        call_timeout: Duration::from_secs(30),
        verify_after_sign: true,
    };
    let signer = hsm.signer(k.label, k.algorithm(), pool)?;
    let csr_der = make_csr(&dev_name(k.common_name)?, &signer).await?;
    drop(signer);
    let csr = CertRequest::from_der(&csr_der)?;
    csr.verify()
        .with_context(|| format!("CSR for key \"{}\": proof of possession", k.label))?;
    let start = (now - BACKDATE).max(inter.not_before());
    let end = (now + 730 * DAY).min(inter.not_after());
    let profile = match k.usage {
        KeyUsage::Tsa => CertProfile::Tsa {
            non_repudiation: false,
            // The key signs for one year; its certificate lives on for verification.
            private_key_usage_period: Some((start, (now + 365 * DAY).min(end))),
        },
        KeyUsage::Seal => CertProfile::Seal,
    };
    let params = CertParams::new(profile, csr.subject().clone(), start, end);
    let cert = issue_certificate(&params, csr.spki_der(), Some(inter), inter_key).await?;
    match k.usage {
        KeyUsage::Tsa => check_tsa_certificate(&cert, now)?,
        KeyUsage::Seal => check_seal_certificate(&cert, now)?,
    }
    Ok(cert)
}

/// Polls a future that is ready at once (software signing).
fn futures_ready<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// A TOML basic string with escapes.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The `hanko.toml` dev-init writes.
fn dev_config(paths: &DevPaths) -> String {
    let mut s = format!(
        "# Written by `hanko dev-init` for `hanko serve --dev`. DEVELOPMENT ONLY.\n\
         # Production: start from ops/hanko.example.toml instead.\n\
         dev = true\n\
         \n\
         [hsm]\n\
         module = {}\n\
         token_label = {}\n\
         softhsm2_conf = {}\n\
         workers = 2\n\
         queue_depth = 128\n\
         call_timeout_ms = 10000\n\
         verify_after_sign = true\n",
        toml_str(config::DEFAULT_MODULE),
        toml_str(config::DEV_TOKEN_LABEL),
        toml_str(&paths.softhsm_conf.display().to_string())
    );
    for k in DEV_KEYS {
        s.push_str(&format!(
            "\n[[keys]]\nlabel = \"{}\"\nusage = \"{}\"\nalgorithm = \"{}\"\nchain = \"dev-pki/{}-chain.pem\"\n",
            k.label,
            k.usage.as_str(),
            k.algorithm().name(),
            k.label
        ));
    }
    // Two policies so that both TSU keys serve: the ETSI best-practices policy is signed
    // by the RSA key, a dev-only policy
    // by the P-256 key. Clients choose with reqPolicy (`openssl ts -query -tspolicy`).
    // The dev policy is RFC 7229's id-TEST-certPolicyTwo, an OID reserved for tests.
    s.push_str(&format!(
        "\n[tsa]\nkey = \"tsa-rsa3072\"\naccepted_policies = [{p}]\n\n[tsa.policy_keys]\n{p} = \"tsa-p256\"\n",
        p = toml_str(DEV_ECDSA_POLICY)
    ));
    s
}

/// The dev-only policy whose tokens the P-256 key signs (see the generated `hanko.toml`).
pub const DEV_ECDSA_POLICY: &str = "1.3.6.1.5.5.7.13.2";
