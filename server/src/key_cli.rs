//! `hanko key suspend|resume|list`: the emergency stop from the command line (issue #18).
//!
//! What it is for: an operator who suspects a key (a compromise, a wrong certificate, an
//! HSM finding) stops every node from signing with it at once, without a restart and
//! without the HSM: these commands write to the issuance log's database only, as
//! `hanko log` reads it (the same `--config` / `--data-dir` / `--database-url`).
//!
//! ```text
//!   hanko key suspend LABEL --reason TEXT
//!        ─> Store::suspend_key: key_suspensions row + audit record "key-suspended"
//!           (actor cli:<user>), one transaction
//!        ─> every node polling the table refuses LABEL within a second (suspension.rs)
//!   hanko key resume LABEL [--reason TEXT]  ─> the row deleted + "key-resumed"
//!   hanko key list                          ─> what is suspended, since when, by whom
//!
//!   exit 0  done (suspend: also when it was suspended already, which is said)
//!        1  resume: the key was not suspended
//!        2  error (no log, no database, a label the configuration does not know)
//! ```
//!
//! What it does not do: talk to a running server (the database is the one place every
//! node reads), or touch the key in the token. Unlike `hanko log`, `suspend` and
//! `resume` open the log for writing, so they run the log's migrations like the server
//! would; `list` only reads.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use hanko_store::{KeyStateChange, KeySuspension, Store};

use crate::config;
use crate::log_cli::{Located, LogDbArgs, locate, require_existing_log};

/// `hanko key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// `hanko key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Stop issuance with a key on every node sharing the log, within a second, until
    /// `hanko key resume`. Recorded in the issuance log (audit event key-suspended).
    Suspend(SuspendArgs),
    /// Lift a suspension: the key signs again. Recorded (audit event key-resumed). Exit
    /// 1 when the key was not suspended.
    Resume(ResumeArgs),
    /// List the suspended keys.
    List(LogDbArgs),
}

/// `hanko key suspend`.
#[derive(Debug, Args)]
pub struct SuspendArgs {
    /// The key's label (`[[keys]] label`, its CKA_LABEL).
    pub label: String,
    /// Why, for the audit record and `/readyz`.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    /// Where the log is.
    #[command(flatten)]
    pub db: LogDbArgs,
}

/// `hanko key resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The key's label.
    pub label: String,
    /// Why, for the audit record.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    /// Where the log is.
    #[command(flatten)]
    pub db: LogDbArgs,
}

/// The audit actor of these commands: `cli:` and the user running them (`USER`,
/// `LOGNAME`, else the process's real uid, as `uid-N`: a cron job or a container
/// often has neither variable).
pub fn cli_actor() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(real_uid)
        .unwrap_or_else(|| "unknown".to_owned());
    format!("cli:{user}")
}

/// `uid-N` from the `Uid:` line of `/proc/self/status`.
fn real_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let uid = line.split_whitespace().nth(1)?;
    Some(format!("uid-{uid}"))
}

/// Opens the log for writing (`list`: for reading only); with `label`, refuses one the
/// configuration does not know (a typo would otherwise stop nothing).
async fn open(db: &LogDbArgs, label: Option<&str>, write: bool) -> anyhow::Result<Store> {
    let Located {
        url,
        mut options,
        key_labels,
    } = locate(db)?;
    // A suspension and its audit record are written: by this host's CLI, not by the
    // "read-only" node a configuration without store.node_id resolves to for `hanko log`.
    if write && options.node_id == crate::config::READ_ONLY_NODE_ID {
        options.node_id = format!(
            "cli@{}",
            crate::config::read_host_name().unwrap_or_else(|| "localhost".to_owned())
        );
    }
    if let Some(label) = label
        && !key_labels.is_empty()
        && !key_labels.iter().any(|l| l == label)
    {
        bail!(
            "the configuration has no key \"{label}\" (its keys: {})",
            key_labels.join(", ")
        );
    }
    require_existing_log(&url)?;
    let shown = hanko_store::redact_url(&url);
    let store = if write {
        Store::open(&url, options).await
    } else {
        Store::open_read_only(&url, options).await
    };
    store.with_context(|| format!("cannot open the issuance log at {shown}"))
}

fn describe(s: &KeySuspension) -> String {
    format!(
        "key \"{}\" suspended at {} by {} on {} (issuance log seq {}): {}",
        s.label,
        crate::http::anchor_api::rfc3339(s.suspended_at),
        s.suspended_by,
        s.node_id,
        s.audit_seq,
        if s.reason.is_empty() {
            "no reason given"
        } else {
            &s.reason
        }
    )
}

/// What a command ended with.
enum Outcome {
    Done,
    NothingToDo,
}

async fn run(args: &KeyArgs) -> anyhow::Result<Outcome> {
    let actor = cli_actor();
    match &args.command {
        KeyCommand::Suspend(a) => {
            let store = open(&a.db, Some(&a.label), true).await?;
            let result = store.suspend_key(&a.label, &a.reason, &actor).await;
            store.close().await;
            match result.context("suspending the key")? {
                KeyStateChange::Changed(r) => println!(
                    "key \"{}\" suspended (issuance log seq {}); every node stops signing \
                     with it within a second",
                    a.label, r.seq
                ),
                KeyStateChange::AlreadySuspended(s) => {
                    println!("already suspended, unchanged: {}", describe(&s))
                }
                KeyStateChange::NotSuspended => {}
            }
            Ok(Outcome::Done)
        }
        KeyCommand::Resume(a) => {
            let store = open(&a.db, None, true).await?;
            let result = store.resume_key(&a.label, &a.reason, &actor).await;
            store.close().await;
            match result.context("resuming the key")? {
                KeyStateChange::Changed(r) => {
                    println!("key \"{}\" resumed (issuance log seq {})", a.label, r.seq);
                    Ok(Outcome::Done)
                }
                _ => {
                    println!("key \"{}\" is not suspended; nothing changed", a.label);
                    Ok(Outcome::NothingToDo)
                }
            }
        }
        KeyCommand::List(db) => {
            let store = open(db, None, false).await?;
            let list = store.key_suspensions().await;
            store.close().await;
            let list = list.context("reading the key suspensions")?;
            if list.is_empty() {
                println!("no key is suspended");
            }
            for s in &list {
                println!("{}", describe(s));
            }
            Ok(Outcome::Done)
        }
    }
}

/// Runs `hanko key ...`; the exit code (see the module docs).
pub fn key_command(args: KeyArgs) -> ExitCode {
    crate::entry::init_logging(config::LogFormat::Text, "warn");
    match crate::entry::runtime().and_then(|rt| rt.block_on(run(&args))) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NothingToDo) => ExitCode::from(1),
        Err(e) => {
            eprintln!("hanko: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
