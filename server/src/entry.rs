//! The binary's entry point: what happens before any subcommand runs, and how the outcome
//! becomes an exit code.
//!
//! ```text
//!   main ─> main_entry ─> Pin::take_from_env (HANKO_PIN / HANKO_PIN_FILE read and removed)
//!                      ─> Cli::parse ─> serve | dev-init | log | api-key | config | stamp | verify
//!                      ─> exit code (0 ok, 2 error; stamp/verify/log have their own)
//! ```
//!
//! The PIN is taken out of the environment first, while the process has one thread: no
//! child process (`chronyc`) may inherit it and it must not linger in the environment
//! block (`Pin::take_from_env` says how). Only production `serve` uses it.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use hanko_hsm::Pin;

use crate::cli::{Cli, Command, DevInitArgs};
use crate::config::{self, LogFormat};
use crate::{auth, client_cli, config_check, dev, log_cli, seal_cli, startup};

/// The binary's entry point: takes the PIN out of the environment, parses the command
/// line, runs the command, and maps the outcome to an exit code (0 ok, 2 error, like
/// ripgrep). Errors print their whole chain on stderr.
///
/// Call it from `main` before any other thread exists (see [`Pin::take_from_env`]).
pub fn main_entry() -> ExitCode {
    let env_pin = Pin::take_from_env();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => startup::serve_command(args, env_pin),
        Command::DevInit(args) => dev_init_command(args),
        Command::Stamp(args) => return client_cli::stamp_main(args),
        Command::Verify(args) => return client_cli::verify_main(args),
        Command::Seal(args) => return seal_cli::seal_main(args),
        Command::SealVerify(args) => return seal_cli::seal_verify_main(args),
        Command::Log(args) => return log_cli::log_command(args),
        Command::Key(args) => return crate::key_cli::key_command(args),
        Command::Reload(args) => return crate::reload_cli::reload_main(args),
        Command::Evidence(args) => return crate::evidence_cli::evidence_main(args),
        Command::Archive(args) => return crate::archive_cli::archive_main(args),
        Command::ApiKey(args) => auth::api_key_command(args),
        Command::Config(args) => return config_check::config_command(args, env_pin),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("hanko: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Installs the tracing subscriber: `RUST_LOG` when set, else `filter`.
pub(crate) fn init_logging(format: LogFormat, filter: &str) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    // RUST_LOG wins over the configured filter. cryptoki logs every mechanism id it has
    // no name for at ERROR level while listing a token's mechanisms; that is noise, not an
    // error, so it is off unless the filter names cryptoki.
    let mut directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| filter.to_owned());
    if !directives.contains("cryptoki") {
        directives = format!("cryptoki::mechanism=off,{directives}");
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("hanko: ignoring bad log filter {directives:?}: {e}");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The multi-threaded tokio runtime. Everything that must happen while the process has
/// one thread (the PIN, `SOFTHSM2_CONF`) happens before this is called.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime_with(None)
}

/// [`runtime`] with `threads` worker threads (`http.threads`); `None`: tokio's default,
/// one per core (or `TOKIO_WORKER_THREADS`).
pub(crate) fn runtime_with(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(n);
    }
    builder
        .enable_all()
        .thread_name("hanko-rt")
        .build()
        .context("cannot start the async runtime")
}

/// `hanko dev-init`.
fn dev_init_command(args: DevInitArgs) -> anyhow::Result<()> {
    init_logging(args.log_format.unwrap_or_default(), "info");
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| config::DEFAULT_DATA_DIR.into());
    let paths = dev::DevPaths::new(&data_dir)?;
    let mut report = dev::Report::default();
    dev::prepare(&paths, &mut report)?;
    // Before any thread exists (no runtime yet): SoftHSM reads it in C_Initialize.
    hanko_hsm::use_softhsm_config(&paths.softhsm_conf);
    let module = dev::dev_module(dev::existing_config(&paths, None)?.as_ref());
    let rt = runtime()?;
    let set = if args.all_key_types {
        dev::KeySet::All
    } else {
        dev::KeySet::Standard
    };
    let hsm = rt.block_on(dev::init(&paths, &module, set, &mut report))?;
    // As `serve` does at shutdown: the signing pools' threads (workers, watchdog) let go
    // of the token on their own, up to a watchdog tick later. Exiting meanwhile ran the
    // module's destructors under a thread still inside it: SoftHSM segfaulted in
    // "hanko-hsm-watchdog" after the summary was printed (dmesg, twice in CI).
    let released = hsm.release_watch();
    drop(hsm);
    drop(rt);
    if !released.wait(std::time::Duration::from_secs(5)) {
        tracing::warn!("signing threads still hold the token after 5 s; exiting anyway");
    }
    print!("{}", report.summary(&paths));
    Ok(())
}
