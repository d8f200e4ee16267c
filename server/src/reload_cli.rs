//! `hanko reload`: asks the server running on a data directory to reload its
//! configuration file (SIGHUP to the pid in `<data_dir>/hanko.pid`), waits for its
//! answer in `<data_dir>/reload-status.json` and prints it. Exit 0 applied, 1 refused
//! (the server goes on with the configuration in force), 2 error (no server, no
//! answer). The server checks the file in full before anything changes (`reload.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::config::{self, FileConfig};
use crate::reload::{PID_FILE, STATUS_FILE};

/// `hanko reload`.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// The server's TOML configuration (only its `data_dir` is read here).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The server's data directory [default: data_dir of --config, else ./hanko-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// How long to wait for the server's answer, in seconds (loading new keys from a
    /// network HSM can take a while).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait: u64,
}

/// Runs `hanko reload`.
pub fn reload_main(args: ReloadArgs) -> ExitCode {
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("hanko: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn data_dir(args: &ReloadArgs) -> anyhow::Result<PathBuf> {
    if let Some(d) = &args.data_dir {
        return Ok(d.clone());
    }
    let from_file = match &args.config {
        Some(path) => FileConfig::load(path)?.data_dir,
        None => None,
    };
    Ok(from_file.unwrap_or_else(|| config::DEFAULT_DATA_DIR.into()))
}

/// Sends SIGHUP to `pid`.
#[allow(
    unsafe_code,
    reason = "libc has no safe kill(2); the call takes two integers and no memory"
)]
fn send_sighup(pid: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: kill(2) reads no memory of ours; any pid and signal number is a valid
    // argument (an invalid one is an error return, not undefined behaviour).
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn read_status(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// True when the server applied the reload.
fn run(args: &ReloadArgs) -> anyhow::Result<bool> {
    let dir = data_dir(args)?;
    let pid_path = dir.join(PID_FILE);
    let text = std::fs::read_to_string(&pid_path).with_context(|| {
        format!(
            "no running server found: cannot read {} (is `hanko serve` running on this data directory?)",
            pid_path.display()
        )
    })?;
    let pid: libc::pid_t = text
        .trim()
        .parse()
        .with_context(|| format!("{} does not hold a process id", pid_path.display()))?;
    if pid <= 1 {
        bail!(
            "{} holds {pid}, not a server's process id",
            pid_path.display()
        );
    }
    let status_path = dir.join(STATUS_FILE);
    let before = read_status(&status_path);
    send_sighup(pid).with_context(|| {
        format!(
            "cannot signal the server (pid {pid} from {}): stale pid file, or another user's process",
            pid_path.display()
        )
    })?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    loop {
        let now = read_status(&status_path);
        if let Some(body) = now.filter(|n| Some(n) != before.as_ref()) {
            let v: serde_json::Value = serde_json::from_str(&body)
                .with_context(|| format!("{} is not the server's JSON", status_path.display()))?;
            return Ok(report(&v));
        }
        if Instant::now() > deadline {
            bail!(
                "the server (pid {pid}) did not answer within {} s; its log says what happened",
                args.wait
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Prints the server's answer; true when applied.
fn report(v: &serde_json::Value) -> bool {
    if v["ok"].as_bool() == Some(true) {
        println!(
            "reloaded: sha256 {}",
            v["sha256"].as_str().unwrap_or_default()
        );
        let changes = v["changes"].as_array().cloned().unwrap_or_default();
        if changes.is_empty() {
            println!("  no change");
        }
        for c in changes {
            println!("  {}", c.as_str().unwrap_or_default());
        }
        true
    } else {
        println!(
            "refused, nothing changed: {}",
            v["error"].as_str().unwrap_or("(no reason given)")
        );
        false
    }
}
