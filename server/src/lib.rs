//! `hanko-server`: the `hanko` binary's library — configuration, command line, start-up
//! checks, the HTTP front, and the wiring of the other crates.
//!
//! This is the only crate where PKCS#11, HTTP and SQL meet. The protocol
//! crates (`hanko-tsa`, `hanko-seal`) get a [`hanko_pki::Signer`] and returns bytes; the log crate
//! (`hanko-store`) keeps records; this crate decides which key, which HTTP status, and
//! when the process is ready.
//!
//! # Layout
//! - [`entry`]: [`main_entry`], the PIN taken out of the environment, exit codes.
//! - [`cli`]: clap flags and subcommands; [`config`]: TOML + flags -> checked
//!   [`config::Config`].
//! - [`startup`]: `hanko serve` from the command line to a bound listener, step by step.
//! - [`serve`]: [`run`], the accept loop with graceful shutdown (mini-redis style), the
//!   signals, and the order of release on the way out.
//! - [`dev`]: `hanko dev-init` and `serve --dev` (SoftHSM token, keys in it, dev CA,
//!   certificates, `hanko.toml`).
//! - [`keys`]: the start-up gate for signing keys (certificate checks, key attributes,
//!   probe signature).
//! - [`clock`]: where the clock's quality comes from (kernel or chrony).
//! - [`issuance`]: a TSA answer meets the issuance log (a token is sent only once logged).
//! - [`seal`]: the seal credentials; a seal meets the server's TSA (B-T) and the
//!   issuance log (released only once logged).
//! - [`state`]: [`state::AppState`], shared by handlers.
//! - [`clock`]: the clock sources (kernel adjtimex, chrony), one file each.
//! - [`client_cli`]: `hanko stamp` / `hanko verify`, glue over [`hanko_client`].
//! - [`http`]: the router; one file per endpoint family.
//!   [`http::conn`] owns the connections under it: connection caps, request deadlines.
//! - [`logging`]: log lines that cannot flood (state changes, rate-limited repeats).
//! - [`auth`]: API keys for `/api/v1/...` and `hanko api-key`.
//! - [`log_cli`]: `hanko log verify|export`, the auditor's tools; [`key_cli`]: `hanko key
//!   suspend|resume|list`, the emergency stop.
//! - [`suspension`]: the emergency stop's gate in front of every key's signer;
//!   [`audit`]: the server's life-cycle events in the issuance log.
//! - [`archive`]: archive systems' object hashes, logged to be anchored (issue #16);
//!   [`archive_cli`]: `hanko archive submit`.
//! - [`client_cli`]: `hanko stamp` and `hanko verify`, glue over [`hanko_client`].
//!
//! ```text
//!   main ─> entry::main_entry ─> Pin::take_from_env ─> cli::Cli ─> startup::serve_command
//!        ─> config (+ dev::prepare, SOFTHSM2_CONF) ─> tokio runtime ─> [dev::init]
//!        ─> Hsm::open ─> keys::load_keys ─> issuance log ─> AppState ─> bind ─> run()
//!                                                             SIGINT/SIGTERM ┘
//! ```
//!
//! # What it does not do
//! No protocol logic (that is `hanko-tsa`), no key
//! generation in production (keys come from a key ceremony; `dev-init` is for
//! development only).
// `deny`, not `forbid`: clock/kernel.rs reads adjtimex(2), reload_cli.rs sends SIGHUP
// with kill(2) and dev/mod.rs takes the data directory's flock(2), for which libc has no
// safe wrappers (std's `File::lock` is newer than the MSRV); those three functions allow
// `unsafe_code`; nothing else may.
#![deny(unsafe_code)]

pub mod anchor;
pub mod archive;
pub mod archive_cli;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod client_cli;
pub mod clock;
pub mod config;
pub mod config_check;
pub mod dev;
pub mod entry;
pub mod evidence_cli;
pub mod external_tsa;
pub mod http;
pub mod issuance;
pub mod key_cli;
pub mod keys;
pub mod log_cli;
pub mod logging;
pub mod reload;
pub mod reload_cli;
pub mod renewal;
pub mod rollover;
pub mod seal;
pub mod seal_cli;
pub mod serve;
pub mod startup;
pub mod state;
pub mod suspension;
pub mod verify;
pub mod visible_seal;

pub use entry::main_entry;
pub use issuance::build_issuer;
pub use serve::{run, shutdown_signal};
