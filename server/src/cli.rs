//! The command line: `hanko serve` and `hanko dev-init`.
//!
//! Raw flags are parsed here with clap and turned into [`config::Overrides`]; validation
//! happens once, in [`config::FileConfig::resolve`], so a flag and its config key can
//! never be checked differently. There is deliberately no `--pin`: see [`crate::pin`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, LogFormat};

/// Hanko: RFC 3161 time-stamp authority and organisational e-seal server over a
/// PKCS#11 HSM. The token PIN comes from HANKO_PIN or HANKO_PIN_FILE, never a flag.
#[derive(Debug, Parser)]
#[command(name = "hanko", version, about, long_about = None)]
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
    /// Manage API keys for `/api/v1/...`: `new` makes one.
    ApiKey(crate::auth::ApiKeyArgs),
    /// Time-stamp a file with an RFC 3161 TSA (ours or any): writes FILE.tsr. Exit 0
    /// granted, 1 refused by the TSA, 2 error.
    Stamp(crate::client::StampArgs),
    /// Verify a time-stamp response against the data and a root certificate, on its own
    /// code path. Exit 0 valid, 1 not (the reason is printed).
    Verify(crate::client::VerifyArgs),
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
}
