//! Configuration: one TOML file, overridden by command-line flags, over safe defaults.
//!
//! Every flag has a config key (shared/DESIGN.md); the PIN has neither: it comes from
//! `HANKO_PIN` or `HANKO_PIN_FILE` only (in `--dev`, from `<data-dir>/dev-pin` when both
//! are unset), because flags and config files end up in `ps`, shell history and backups.
//!
//! ```text
//!   defaults  <  TOML file (--config)  <  flags (--listen, --data-dir, --dev, --log-format)
//!        \__________________ FileConfig (raw, all Option) ______________/
//!                                   | resolve(): validate, fill defaults
//!                                   v
//!                                 Config (checked; what the server runs with)
//! ```
//!
//! The raw [`FileConfig`] rejects unknown keys, so a typo fails at start-up instead of
//! being ignored. Relative paths in `[[keys]]` are relative to `data_dir`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hanko_hsm::{ModuleConfig, PoolConfig};
use hanko_pki::SignatureAlgorithm;
use serde::Deserialize;

/// Default listen address (RFC 3161 has no registered port; 3161 is our convention).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3161";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./hanko-data";
/// Debian's SoftHSM2 module.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Token label of the dev token.
pub const DEV_TOKEN_LABEL: &str = "hanko-dev";
/// Name of the config file `dev-init` writes into the data directory.
pub const DEV_CONFIG_FILE: &str = "hanko.toml";

/// The TOML file as written: every key optional, unknown keys refused.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `listen`: socket address to serve HTTP on. Flag `--listen`.
    pub listen: Option<SocketAddr>,
    /// `data_dir`: SoftHSM token store (dev), issuance log, dev PKI. Flag `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `dev`: development mode (relaxed, loud). Flag `--dev`.
    pub dev: Option<bool>,
    /// `drain_timeout_ms`: how long shutdown waits for requests in flight.
    pub drain_timeout_ms: Option<u64>,
    /// `[log]`.
    #[serde(default)]
    pub log: LogSection,
    /// `[hsm]`.
    #[serde(default)]
    pub hsm: HsmSection,
    /// `[[keys]]`: the signing keys to load.
    #[serde(default)]
    pub keys: Vec<KeySection>,
}

/// `[log]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `log.format`: `text` (default) or `json`. Flag `--log-format`.
    pub format: Option<LogFormat>,
    /// `log.filter`: a tracing filter such as `info,hanko_hsm=debug`. `RUST_LOG`
    /// overrides it.
    pub filter: Option<String>,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[hsm]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmSection {
    /// `hsm.module`: path of the PKCS#11 library.
    pub module: Option<PathBuf>,
    /// `hsm.token_label`: the token's label.
    pub token_label: Option<String>,
    /// `hsm.softhsm2_conf`: when set, `SOFTHSM2_CONF` is pointed at this file before the
    /// module is loaded (SoftHSM only).
    pub softhsm2_conf: Option<PathBuf>,
    /// `hsm.workers`: signing threads (one PKCS#11 session each) per key.
    pub workers: Option<usize>,
    /// `hsm.queue_depth`: signatures that may wait per key before `Busy` (HTTP 503).
    pub queue_depth: Option<usize>,
    /// `hsm.call_timeout_ms`: longest single `C_Sign` before its worker is abandoned.
    pub call_timeout_ms: Option<u64>,
    /// `hsm.verify_after_sign`: check each signature in software before using it.
    pub verify_after_sign: Option<bool>,
}

/// What a key is for; decides which certificate checks apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyUsage {
    /// A TSA (TSU) key: RFC 3161 tokens. Certificate checked per CONFORMANCE 31-32.
    Tsa,
    /// An organisational e-seal key.
    Seal,
}

impl KeyUsage {
    /// `tsa` or `seal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tsa => "tsa",
            Self::Seal => "seal",
        }
    }
}

/// `[[keys]]`: one signing key in the token and its certificate chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySection {
    /// `keys.label`: the key's `CKA_LABEL` in the token.
    pub label: String,
    /// `keys.usage`: `tsa` or `seal`.
    pub usage: KeyUsage,
    /// `keys.algorithm`: e.g. `rsa-pkcs1-sha256`, `rsa-pss-sha256`, `ecdsa-sha256`.
    pub algorithm: String,
    /// `keys.chain`: PEM file, the key's certificate first, then its issuers (the root
    /// may be left out). Relative to `data_dir`.
    pub chain: PathBuf,
}

/// Flags given on the command line; each overrides its config key.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--dev` (only ever turns dev mode on).
    pub dev: bool,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
}

/// One key to load, resolved.
#[derive(Clone, Debug)]
pub struct KeySpec {
    /// `CKA_LABEL`.
    pub label: String,
    /// TSA or seal.
    pub usage: KeyUsage,
    /// The signature algorithm.
    pub algorithm: SignatureAlgorithm,
    /// Absolute (or data-dir-relative resolved) path of the PEM chain.
    pub chain: PathBuf,
}

/// The checked configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Development mode.
    pub dev: bool,
    /// Shutdown drain limit.
    pub drain_timeout: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (before `RUST_LOG`).
    pub log_filter: String,
    /// Module and token.
    pub module: ModuleConfig,
    /// `SOFTHSM2_CONF` to set, if any.
    pub softhsm2_conf: Option<PathBuf>,
    /// Signing pool settings, per key.
    pub pool: PoolConfig,
    /// Keys to load.
    pub keys: Vec<KeySpec>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }

    /// Applies the flags and defaults and validates everything.
    pub fn resolve(self, o: &Overrides) -> anyhow::Result<Config> {
        let dev = o.dev || self.dev.unwrap_or(false);
        let listen = match o.listen.or(self.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let data_dir = o
            .data_dir
            .clone()
            .or(self.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let log_format = o.log_format.or(self.log.format).unwrap_or_default();
        let log_filter = self.log.filter.unwrap_or_else(|| "info".to_owned());

        let defaults = PoolConfig::default();
        let h = self.hsm;
        let pool = PoolConfig {
            workers: h.workers.unwrap_or(defaults.workers),
            queue_depth: h.queue_depth.unwrap_or(defaults.queue_depth),
            call_timeout: h
                .call_timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.call_timeout),
            verify_after_sign: h.verify_after_sign.unwrap_or(defaults.verify_after_sign),
        };
        if pool.workers == 0 || pool.queue_depth == 0 || pool.call_timeout.is_zero() {
            bail!("hsm.workers, hsm.queue_depth and hsm.call_timeout_ms must be greater than 0");
        }
        let token_label = match (h.token_label, dev) {
            (Some(l), _) => l,
            (None, true) => DEV_TOKEN_LABEL.to_owned(),
            (None, false) => bail!("hsm.token_label is not set"),
        };
        let module_path = match (h.module, dev) {
            (Some(m), _) => m,
            (None, true) => PathBuf::from(DEFAULT_MODULE),
            (None, false) => bail!("hsm.module is not set (e.g. {DEFAULT_MODULE})"),
        };

        let mut keys = Vec::new();
        for k in self.keys {
            let algorithm = SignatureAlgorithm::from_name(&k.algorithm).with_context(|| {
                format!(
                    "key \"{}\": unknown algorithm \"{}\" (rsa-pkcs1-sha256, rsa-pss-sha256, ecdsa-sha256, ecdsa-sha384, ed25519, ...)",
                    k.label, k.algorithm
                )
            })?;
            if keys.iter().any(|s: &KeySpec| s.label == k.label) {
                bail!("key \"{}\" is configured twice", k.label);
            }
            let chain = if k.chain.is_absolute() {
                k.chain
            } else {
                data_dir.join(k.chain)
            };
            keys.push(KeySpec {
                label: k.label,
                usage: k.usage,
                algorithm,
                chain,
            });
        }
        if keys.is_empty() {
            bail!("no [[keys]] configured: Hanko has nothing to sign with");
        }
        Ok(Config {
            listen,
            data_dir,
            dev,
            drain_timeout: Duration::from_millis(self.drain_timeout_ms.unwrap_or(10_000)),
            log_format,
            log_filter,
            module: ModuleConfig {
                module_path,
                token_label,
            },
            softhsm2_conf: h.softhsm2_conf,
            pool,
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn example_config_parses_and_flags_win() {
        let text = include_str!("../../ops/hanko.example.toml");
        let raw: FileConfig = toml::from_str(text).unwrap();
        let cfg = raw
            .clone()
            .resolve(&Overrides {
                listen: Some("0.0.0.0:8080".parse().unwrap()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(cfg.listen.to_string(), "0.0.0.0:8080");
        assert!(!cfg.dev);
        assert!(!cfg.keys.is_empty());
        let cfg = raw.resolve(&Overrides::default()).unwrap();
        assert_ne!(cfg.listen.to_string(), "0.0.0.0:8080");
    }

    #[test]
    fn typos_and_missing_keys_are_refused() {
        let e = toml::from_str::<FileConfig>("lisen = \"127.0.0.1:1\"").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let raw: FileConfig = toml::from_str("[hsm]\nmodule = \"/x.so\"\n").unwrap();
        let e = raw.resolve(&Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("token_label"), "{e}");
        let raw: FileConfig =
            toml::from_str("[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n").unwrap();
        let e = raw.resolve(&Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("no [[keys]]"), "{e}");
    }
}
