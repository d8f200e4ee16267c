//! The command line: `hanko serve`, `dev-init`, `log`, `key`, `api-key`, `stamp`, `verify`,
//! `seal`, `seal-verify`, `evidence` and `archive`.
//!
//! Raw flags are parsed here with clap and turned into [`config::Overrides`]; validation
//! happens once, in [`config::FileConfig::resolve`], so a flag and its config key can
//! never be checked differently. There is deliberately no `--pin`: flags show up in `ps`
//! and shell history, so the PIN comes from `HANKO_PIN` or `HANKO_PIN_FILE` only (see
//! [`hanko_hsm::Pin::take_from_env`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, LogFormat};

/// The first line of `hanko --help` (and all of `hanko -h`'s description): what Hanko
/// is, not the crate description (which says what the library crate holds).
macro_rules! about {
    () => {
        "Hanko: an RFC 3161 time-stamp authority and e-seal signer with its keys in a \
         PKCS#11 HSM and an append-only issuance log"
    };
}

/// The first line of `hanko --help`.
pub const ABOUT: &str = about!();

/// `hanko --help`: what Hanko is, what works today and what does not yet.
const LONG_ABOUT: &str = concat!(
    about!(),
    "\n\n\
Today it serves time-stamps (POST /tsa) and CAdES B-B/B-T e-seals for API-key clients \
(POST /api/v1/seal/cades, `hanko seal`), each one committed to the issuance log before it \
is sent, the log's auditor tools (`hanko log verify|export`, GET /api/v1/log/{serial}), \
the emergency stop of a key on every node (`hanko key suspend|resume`), the service's \
life-cycle recorded in the same hash-chained log, \
health, readiness and metrics, and the CSC API 1.0.4 and 2 (/csc/v1/..., /csc/v2/...: \
signHash, timestamp, CAdES signDoc), and PAdES seals (POST /api/v1/seal/pdf), over \
plain HTTP and over HTTPS ([tls], TLS 1.3/1.2, optional mTLS; `--dev` serves HTTPS on \
127.0.0.1:3443). Everything issued is anchored: batches of the log are time-stamped by \
the own TSA and external TSAs ([anchor]), and each object gets an RFC 4998 evidence \
record (GET /api/v1/evidence/..., `hanko evidence get|verify`); archives submit their \
objects' hashes to be anchored too (POST /api/v1/archive/objects, `hanko archive \
submit`). It issues time-stamps \
only while the clock is known to be synchronised.

The token PIN comes from HANKO_PIN or HANKO_PIN_FILE, never from a flag. \
`hanko serve --dev` runs a development server with a SoftHSM token and a dev PKI."
);

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "hanko", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Create (or reuse) a SoftHSM dev token, keys in it and a dev PKI under the data
    /// directory. Development only: the dev CA's keys are files.
    DevInit(DevInitArgs),
    /// Auditor tools over the issuance log: `verify` the hash chain, `export` records.
    /// Reads the database only: needs neither the HSM nor the PIN.
    Log(crate::log_cli::LogArgs),
    /// The emergency stop: `suspend` a key (no node signs with it within a second, until
    /// `resume`), `list` the suspended keys. Writes to the issuance log's database only:
    /// needs neither the HSM nor the PIN.
    Key(crate::key_cli::KeyArgs),
    /// Reload the running server's configuration (SIGHUP through `<data_dir>/hanko.pid`):
    /// a key's successor (TSA or seal) and rollover times. Exit 0 applied, 1 refused
    /// (nothing changed), 2 error.
    Reload(crate::reload_cli::ReloadArgs),
    /// Manage API keys of clients: `new` makes one.
    ApiKey(crate::auth::ApiKeyArgs),
    /// Configuration tools: `check FILE` validates a config without starting (exit 0
    /// valid, 1 not); `--hsm` also opens the token.
    Config(crate::config_check::ConfigArgs),
    /// Time-stamp a file with an RFC 3161 TSA (ours or any): writes FILE.tsr. Exit 0
    /// granted, 1 refused by the TSA, 2 error.
    Stamp(crate::client_cli::StampArgs),
    /// Verify a time-stamp response against the data and a root certificate, on its own
    /// code path. Exit 0 valid, 1 not (the reason is printed).
    Verify(crate::client_cli::VerifyArgs),
    /// Seal a file with a seal credential of a Hanko server (CAdES, POST
    /// /api/v1/seal/cades): writes FILE.p7s; a FILE.pdf is sealed into itself (PAdES,
    /// POST /api/v1/seal/pdf): writes FILE.sealed.pdf. Exit 0 sealed, 1 refused by the
    /// server, 2 error.
    Seal(crate::seal_cli::SealArgs),
    /// Verify a CAdES seal (.p7s) against the document and a root certificate, on its
    /// own code path (B-T: its time-stamp too). Exit 0 valid, 1 not (the reason is
    /// printed).
    SealVerify(crate::seal_cli::SealVerifyArgs),
    /// RFC 4998 evidence records of issued objects: `get` one from a server, `verify`
    /// records offline against the data and a root ("this file existed at ...").
    Evidence(crate::evidence_cli::EvidenceArgs),
    /// Archives: `submit` files' SHA-256 hashes to be anchored (the files are never
    /// sent); their evidence records then come from `hanko evidence get`.
    Archive(crate::archive_cli::ArchiveArgs),
}

/// `hanko serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Development mode: run `dev-init` when needed, use `<data-dir>/hanko.toml` and the
    /// dev token. Never in production. Config key: `dev`.
    #[arg(long)]
    pub dev: bool,
    /// TOML configuration file (see ops/hanko.example.toml). Required without --dev.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:3161]; port 0 picks a free port (the
    /// bound address is logged). Config key: `listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// HTTPS address [with --dev: 127.0.0.1:3443, a dev certificate for localhost and
    /// 127.0.0.1]; port 0 picks a free port (logged as "serving TLS on ADDR"). Without
    /// --dev it needs tls.cert and tls.key (or tls.key_label, a key in the HSM) in the
    /// config. Config key: `tls.listen`.
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Option<SocketAddr>,
    /// Data directory [default: ./hanko-data]. Config key: `data_dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log line format [default: text]. Config key: `log.format`.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Issuance log database: `postgres://...` or `sqlite://...` [default: SQLite in the
    /// data directory]. Prefer the environment variable when the URL holds a password.
    /// Config key: `store.database_url`.
    #[arg(
        long,
        value_name = "URL",
        env = "HANKO_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

/// `hanko dev-init`.
#[derive(Debug, Args)]
pub struct DevInitArgs {
    /// Data directory [default: ./hanko-data]. Config key: `data_dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log line format [default: text]. Config key: `log.format`.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Also make a TSA key and a seal key of every other type in the algorithm table
    /// (RSA-3072 with RSASSA-PSS, ECDSA P-384, Ed25519), each TSA key with a test
    /// policy of its own (README.md, "The dev data directory"; docs/interop.md).
    #[arg(long)]
    pub all_key_types: bool,
}

impl ServeArgs {
    /// The flags as config overrides.
    pub fn overrides(&self) -> config::Overrides {
        config::Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            dev: self.dev,
            log_format: self.log_format,
            database_url: self.database_url.clone(),
            tls_listen: self.tls_listen,
            dev_tls_files: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent_and_has_no_pin_flag() {
        Cli::command().debug_assert();
        let help = Cli::command()
            .find_subcommand_mut("serve")
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        assert!(help.contains("--listen"), "{help}");
        assert!(!help.to_ascii_lowercase().contains("--pin"), "{help}");
    }

    /// Issue #11: `hanko --help` opened with the crate description ("configuration,
    /// CLI, HTTP front and wiring"); it says what Hanko is.
    #[test]
    fn help_says_what_hanko_is() {
        let help = Cli::command().render_help().to_string();
        assert_eq!(help.lines().next(), Some(ABOUT), "{help}");
        let long = Cli::command().render_long_help().to_string();
        assert!(long.contains("evidence record"), "{long}");
    }
}
