//! `hanko config check FILE [--hsm]`: validates a configuration without starting a
//! server, so that a change is checked before the restart that would otherwise find
//! it (and before a TSA is down because of a typo).
//!
//! ```text
//!   parse (unknown keys refused) ─> resolve (every value, the clients and the
//!   credentials they name, seal images, the external TSA's anchors)
//!     ─> files: each key's chain (read, parsed, in order, its profile valid now),
//!        hsm.module, hsm.softhsm2_conf, seal.font, data_dir, the SQLite directory,
//!        [tls]: the certificate chain (parsed, the leaf valid now), the key file,
//!        the client CA
//!     ─> --hsm only: the PIN (HANKO_PIN / HANKO_PIN_FILE / the systemd credential),
//!        the token opened, each key present and matching its certificate, and the
//!        TLS key of tls.key_label present and certified by tls.cert's leaf
//!   exit 0: every check passed;  exit 1: the problems, one per line
//! ```
//!
//! What it does not do: connect to PostgreSQL (the URL is only parsed by the server at
//! start), sign with the keys (the server's start-up probe does), or check the
//! clock. Without `--hsm` it needs neither the PIN nor the token.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use hanko_hsm::{Hsm, Pin};

use crate::config::{Config, FileConfig, Overrides, TlsKey};

/// `hanko config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// `hanko config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file without starting: parse, resolve, the files it
    /// names, the credentials its clients name. Exit 0 valid, 1 not.
    Check(CheckArgs),
}

/// `hanko config check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Also open the token with the PIN (HANKO_PIN or HANKO_PIN_FILE) and check that
    /// every key is in it and matches its certificate.
    #[arg(long)]
    pub hsm: bool,
}

/// Runs `hanko config check`: the report on stdout, problems on stderr; exit 0 or 1.
pub fn config_command(args: ConfigArgs, env_pin: Result<Pin, hanko_hsm::Error>) -> ExitCode {
    match args.command {
        ConfigCommand::Check(a) => {
            let problems = check(&a.file, a.hsm.then_some(env_pin));
            if problems.is_empty() {
                println!("{}: OK", a.file.display());
                ExitCode::SUCCESS
            } else {
                for p in &problems {
                    eprintln!("hanko: config: {p}");
                }
                eprintln!(
                    "{}: {} problem(s); the server would not start",
                    a.file.display(),
                    problems.len()
                );
                ExitCode::from(1)
            }
        }
    }
}

/// Every problem found in the file at `path` (none: it is valid). `pin`: open the
/// token too.
pub fn check(path: &Path, pin: Option<Result<Pin, hanko_hsm::Error>>) -> Vec<String> {
    let file = match FileConfig::load(path) {
        Ok(f) => f,
        Err(e) => return vec![format!("{e:#}")],
    };
    let cfg = match file.resolve(&Overrides::default()) {
        Ok(c) => c,
        Err(e) => return vec![format!("{e:#}")],
    };
    println!(
        "parsed and resolved: {} key(s), {} client(s), TSA {}",
        cfg.keys.len(),
        cfg.clients.len(),
        if cfg.clients.tsa_public() {
            "public"
        } else {
            "restricted to clients with the scope tsa"
        }
    );
    let mut problems = files(&cfg);
    if problems.is_empty()
        && let Some(pin) = pin
    {
        problems.extend(token(&cfg, pin));
    }
    problems
}

/// The files the configuration names.
fn files(cfg: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let now = SystemTime::now();
    for spec in &cfg.keys {
        match crate::keys::load_chain(spec, now) {
            Ok(chain) => println!(
                "key \"{}\": chain {} ({} certificate(s)) ok",
                spec.label,
                spec.chain.display(),
                chain.len()
            ),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    let mut readable = |what: &str, p: &Path| {
        if let Err(e) = std::fs::File::open(p) {
            problems.push(format!("{what} {}: {e}", p.display()));
        }
    };
    if let Some(tls) = &cfg.tls {
        if let TlsKey::File(key) = &tls.key {
            readable("tls.key", key);
        }
        if let Some(ca) = &tls.client_ca {
            readable("tls.client_ca", ca);
        }
    }
    readable("hsm.module", &cfg.module.module_path);
    if let Some(c) = &cfg.softhsm2_conf {
        readable("hsm.softhsm2_conf", c);
    }
    if let Some(f) = &cfg.seal_font {
        readable("seal.font", f);
    }
    if !cfg.data_dir.is_dir() {
        problems.push(format!(
            "data_dir {} is not a directory",
            cfg.data_dir.display()
        ));
    }
    if let Some(rest) = cfg.store.database_url.strip_prefix("sqlite://") {
        let file = Path::new(rest.split('?').next().unwrap_or(rest));
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            problems.push(format!(
                "store.database_url: the SQLite file's directory {} does not exist",
                dir.display()
            ));
        }
    }
    if cfg.tls.is_some() {
        match tls_leaf(cfg, now) {
            Ok(leaf) => println!(
                "tls.cert: {:?} valid now, key {}",
                leaf.subject_string(),
                cfg.tls
                    .as_ref()
                    .map(|t| t.key.describe())
                    .unwrap_or_default()
            ),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    problems
}

/// The leaf of `tls.cert`, when the file reads as a PEM chain whose leaf is valid now.
fn tls_leaf(cfg: &Config, now: SystemTime) -> anyhow::Result<hanko_pki::cert::Certificate> {
    use anyhow::Context as _;
    let Some(tls) = &cfg.tls else {
        anyhow::bail!("no [tls] section");
    };
    let path = tls.cert.display();
    let pem = std::fs::read_to_string(&tls.cert).with_context(|| format!("tls.cert {path}"))?;
    let chain =
        hanko_pki::cert::load_pem_chain(&pem).with_context(|| format!("tls.cert {path}"))?;
    let leaf = chain
        .into_iter()
        .next()
        .with_context(|| format!("tls.cert {path}: no certificate"))?;
    if now < leaf.not_before() || now > leaf.not_after() {
        anyhow::bail!("tls.cert {path}: the server certificate is not valid now");
    }
    Ok(leaf)
}

/// `--hsm`, with `tls.key_label`: the key is in the token and `tls.cert` certifies it.
fn tls_key_in_token(cfg: &Config, hsm: &Hsm) -> Option<anyhow::Result<String>> {
    let tls = cfg.tls.as_ref()?;
    let TlsKey::Hsm(label) = &tls.key else {
        return None;
    };
    let check = || {
        let spki = hsm.public_key(label)?.ok_or_else(|| {
            anyhow::anyhow!(
                "tls.key_label: no public key labelled \"{label}\" in token \"{}\"",
                hsm.token_label()
            )
        })?;
        let leaf = tls_leaf(cfg, SystemTime::now())?;
        hanko_pki::cert::check_key_matches(&leaf, &spki).map_err(|e| {
            anyhow::anyhow!(
                "tls.key_label: the certificate in {} is not for the HSM key \"{label}\": {e}",
                tls.cert.display()
            )
        })?;
        Ok(format!(
            "tls.key_label \"{label}\": in the token, matches tls.cert"
        ))
    };
    Some(check())
}

/// `--hsm`: the token opened with the PIN, each key in it and matching its certificate.
fn token(cfg: &Config, pin: Result<Pin, hanko_hsm::Error>) -> Vec<String> {
    let pin = match pin {
        Ok(p) => p,
        Err(e) => {
            return vec![format!(
                "--hsm needs the PIN from HANKO_PIN or HANKO_PIN_FILE: {e}"
            )];
        }
    };
    if let Some(conf) = &cfg.softhsm2_conf {
        // One thread so far: nothing else reads the environment.
        hanko_hsm::use_softhsm_config(conf);
    }
    let hsm = match Hsm::open(cfg.module.clone(), pin) {
        Ok(h) => h,
        Err(e) => return vec![format!("cannot open the HSM token: {e}")],
    };
    let mut problems = Vec::new();
    let now = SystemTime::now();
    for spec in &cfg.keys {
        let found = crate::keys::load_chain(spec, now).and_then(|chain| {
            let spki = hsm.public_key(&spec.label)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "key \"{}\": no public key with this label in token \"{}\"",
                    spec.label,
                    hsm.token_label()
                )
            })?;
            let leaf = chain
                .first()
                .ok_or_else(|| anyhow::anyhow!("key \"{}\": empty chain", spec.label))?;
            hanko_pki::cert::check_key_matches(leaf, &spki).map_err(|e| {
                anyhow::anyhow!(
                    "key \"{}\": the certificate in {} is not for the token's key: {e}",
                    spec.label,
                    spec.chain.display()
                )
            })
        });
        match found {
            Ok(()) => println!(
                "key \"{}\": in the token, matches its certificate",
                spec.label
            ),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    match tls_key_in_token(cfg, &hsm) {
        Some(Ok(line)) => println!("{line}"),
        Some(Err(e)) => problems.push(format!("{e:#}")),
        None => {}
    }
    problems
}
