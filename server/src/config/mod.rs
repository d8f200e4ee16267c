//! Configuration: one TOML file, overridden by command-line flags, over safe defaults.
//!
//! Every flag has a config key (docs/configuration.md); the PIN has neither, because
//! flags and config files end up in `ps`, shell history and backups. In production it
//! comes from `HANKO_PIN` or `HANKO_PIN_FILE` only, read once at the very start of the
//! process and removed from its environment (see [`crate::main_entry`]). In `--dev` those
//! variables are ignored: the dev token's PIN is always `<data-dir>/dev-pin`, which
//! `dev-init` writes (see [`crate::dev`]).
//!
//! ```text
//!   defaults  <  TOML file (--config)  <  flags (--listen, --data-dir, --dev, --log-format,
//!                                                --database-url / HANKO_DATABASE_URL)
//!        \________________ FileConfig (file.rs: raw, all Option) ___________/
//!                                   | FileConfig::resolve (resolve.rs): validate, fill defaults
//!                                   v
//!                                 Config (settings.rs: checked; what the server runs with)
//! ```
//!
//! The raw [`FileConfig`] rejects unknown keys, so a typo fails at start-up instead of
//! being ignored. Relative paths in `[[keys]]` are relative to `data_dir`.
//!
//! # Layout
//! - `file.rs`: the TOML file's sections as written ([`FileConfig`] and its sections).
//! - `settings.rs`: the checked settings ([`Config`] and its parts).
//! - `anchor.rs`, `seal.rs`, `tls.rs`: the `[anchor]`, `[seal]` and `[tls]` sections.
//! - `renewal.rs`: `[renewal]`, the renewal policy of evidence records.
//! - `resolve.rs`: flags ([`Overrides`]) + file + defaults -> [`Config`], every check.

use std::time::Duration;

mod anchor;
mod file;
mod renewal;
mod resolve;
mod rollover;
mod seal;
mod settings;
#[cfg(test)]
mod tests;
mod tls;
mod verify;

pub use anchor::{
    ARCHIVE_BYTES_PER_HASH, AnchorSection, AnchorSettings, ArchiveSection, ArchiveSettings,
    DEFAULT_ANCHOR_INTERVAL, DEFAULT_ARCHIVE_MAX_HASHES, DEFAULT_MAX_LEAVES, DEV_ANCHOR_INTERVAL,
    ExternalAnchor, ExternalAnchorSection, MAX_ARCHIVE_MAX_HASHES, SELF_TARGET,
};
pub use file::{
    ClockSection, CscSection, FileConfig, HsmSection, HttpSection, KeySection, KeyUsage, LogFormat,
    LogSection, SealKeySection, SealSection, StoreSection, TsaSection,
};
pub use renewal::{RenewalSection, RenewalSettings};
pub use resolve::{DEV_NODE_ID, Overrides, READ_ONLY_NODE_ID};
pub(crate) use resolve::{read_host_name, runtime_threads};
pub use rollover::{parse_time, successors_of};
pub use seal::{DEFAULT_TSA_TIMEOUT, ExternalTsaSettings};
pub use settings::{
    Config, CscInfo, DEFAULT_BODY_TIMEOUT, DEFAULT_CSC_MAX_HASHES, DEFAULT_CSC_SAD_LIFETIME,
    DEFAULT_HEADER_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_SOURCE, DEFAULT_MAX_SEAL_BODY_BYTES,
    DEFAULT_MAX_SEAL_PDF_BODY_BYTES, Durability, HttpSettings, KeySpec, MAX_SEAL_BODY_BYTES_LIMIT,
    RateLimit, StoreSettings, Succession, TsaSettings,
};
pub use tls::{ClientAuth, DEFAULT_DEV_TLS_LISTEN, TlsKey, TlsSection, TlsSettings};
pub use verify::{VerifySection, VerifySettings};

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
/// `store.linger_ms` when not set: the upper bound of the log writer's wait for more
/// records while the signers are backlogged (benches/RESULTS.md, 2026-11-25). 20 ms, not
/// 5 (2026-12-04, session 34), nor 2 before that: every commit's fixed CPU (the WAL
/// write, the fsync, the wake-ups of the writer, the syncer and the runtime) is taken
/// from the signers when the front shares their cores. Saturated with RSA-3072 on
/// SoftHSM a batch grew from ~4.3 to ~14 records, the log's threads and the runtime
/// used ~7 of the machine's 200 ticks/s less, and the rate rose from 0.84 to 0.90 of a
/// bare C_Sign loop. The wait only happens while requests already queue for a signer,
/// and the server bounds it by a quarter of the time that queue will take
/// (`keys::SigningBacklog`): a client held 20 ms has queued 80 ms or more anyway, and a
/// short queue (P-256, a load below capacity) holds records far less than this.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(20);
