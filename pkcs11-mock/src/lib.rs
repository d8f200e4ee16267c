//! A fault-injecting PKCS#11 module that forwards to a real one (test tool;
//! never shipped).
//!
//! An HSM fails in ways SoftHSM never shows on its own: a device error in the
//! middle of a signature, a session handle that is suddenly invalid, a token
//! that vanishes, a call that hangs for a minute, a signature that comes back
//! wrong. This crate builds `libhanko_pkcs11_mock.so`, a PKCS#11 v2.40 module
//! that loads the real module named by `HANKO_MOCK_REAL_MODULE` (default: the
//! module under test, [`module_under_test`]: `HANKO_TEST_PKCS11_MODULE`, else
//! `/usr/lib/softhsm/libsofthsm2.so`), forwards every call to it, and injects
//! the faults described in the control file named by `HANKO_MOCK_CONTROL`.
//! The file is re-read whenever it changes, so a running test can switch
//! faults on and off.
//!
//! ```text
//!  client (cryptoki / hanko-hsm)
//!      | C_GetFunctionList -> the mock's list
//!      v
//!  ffi.rs: guard (no panic crosses FFI)
//!      -> a capacity slot    wait while K calls are in flight (network HSM)
//!      -> engine.latency()   delay / hang          <- control file (re-read on change)
//!      -> engine.admit()     unplug, stale session, fault rules
//!      -> real module        (SoftHSM2, via its own C_GetFunctionList)
//!      -> engine.corrupt_bit() flip one output bit
//!      -> stats file         every injected fault counted
//! ```
//!
//! # What it does NOT do
//!
//! It is not a PKCS#11 implementation: without a real module underneath it
//! does nothing. It never belongs in a production configuration: it can
//! corrupt signatures on purpose. It exports only `C_GetFunctionList` (not
//! the 3.0 `C_GetInterface`), so clients see a v2.40 module. Object handles
//! are passed through unchanged: SoftHSM itself drops the handles of private
//! objects when the token is logged out (its last session closes, which an
//! unplug does), so a client must find its keys again after a replug.
//!
//! # Control file
//!
//! Grammar in [`control`]; summary:
//!
//! ```text
//! fault   fn=C_Sign rv=CKR_DEVICE_ERROR mode=nth n=3     # only the 3rd call
//! fault   fn=C_Sign rv=CKR_DEVICE_REMOVED mode=every n=10
//! fault   fn=*      rv=CKR_GENERAL_ERROR mode=prob p=0.01
//! fault   fn=C_Login rv=CKR_FUNCTION_FAILED               # mode=always
//! fault   fn=C_Sign rv=CKR_DEVICE_ERROR phase=data        # skip length queries
//! delay   fn=C_Sign ms=200
//! delay   fn=C_Sign ms=5 phase=data                      # not the length query
//! capacity fn=C_Sign max=64 phase=data                   # at most 64 in flight
//! hang    fn=C_Sign max_ms=60000                           # until this line goes
//! corrupt fn=C_Sign mode=nth n=1 [bit=K]
//! unplug
//! seed    42
//! ```
//!
//! Order of checks for each call: delays and hang, then unplug, then the
//! session handle, then fault rules (the first that fires wins, every
//! matching rule counts the call), then the real call, then corruption.
//! Counting (`nth`, `every`, `after`) is per rule and per function, over the
//! calls that reach that rule's stage, and survives edits of other lines; a
//! rule whose line changes starts again from zero. `corrupt` counts only
//! successful calls with an output buffer (never the length query). A
//! missing or empty file means pure pass-through; a bad line is ignored with
//! one warning on stderr. Write the file atomically (write a temporary file,
//! then rename: [`write_control`] does) so a call never sees half of it.
//!
//! # Faults end operations
//!
//! A fault on a call inside an operation (`C_Sign`, `C_SignUpdate`,
//! `C_SignFinal`, and the encrypt, decrypt, digest and verify families) also
//! ends that operation in the real module, as a failing device would. A
//! client may therefore retry `C_SignInit` on the same session.
//!
//! # Unplug
//!
//! While an `unplug` line is present the token is gone:
//!
//! - the real sessions are closed (so SoftHSM also forgets the login);
//! - functions on a session return `CKR_DEVICE_REMOVED`;
//! - `C_OpenSession`, `C_CloseAllSessions`, `C_GetTokenInfo`,
//!   `C_GetMechanismList`, `C_GetMechanismInfo`, `C_InitToken` return
//!   `CKR_TOKEN_NOT_PRESENT`;
//! - `C_GetSlotList(tokenPresent = TRUE)` lists no slot and `C_GetSlotInfo`
//!   clears `CKF_TOKEN_PRESENT`, like a reader whose card was pulled;
//! - `C_Initialize`, `C_Finalize`, `C_GetInfo`, `C_GetFunctionList` and
//!   `C_WaitForSlotEvent` are forwarded.
//!
//! After the line is removed, sessions opened before the unplug stay invalid
//! (`CKR_SESSION_HANDLE_INVALID`) for good: the mock hands out its own
//! session handles and never reuses one. A client must open new sessions and
//! log in again; `C_Finalize` + `C_Initialize` is not needed (but works).
//!
//! # Stats
//!
//! Every injected fault is counted per function, kind and return value in
//! `$HANKO_MOCK_CONTROL.stats` (or `HANKO_MOCK_STATS`); read it with
//! [`Stats::read`]. See [`stats`].

// This crate IS an FFI module: it exports C entry points, calls through C
// function pointers of another module and writes into caller buffers. Every
// unsafe block says why it is sound.
#![allow(unsafe_code)]

pub mod control;
mod engine;
mod ffi;
pub mod stats;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use control::{ControlFile, Function, Phase, Rule, Target, Trigger};
pub use ffi::DEFAULT_REAL_MODULE;
pub use stats::{Kind, Stats};

/// Errors of the helper API (the module itself never fails its host over
/// its control or stats files: it warns on stderr and carries on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a control or stats file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The module's `.so` could not be found or built (see [`module_for_tests`]).
    #[error("pkcs11-mock module not available: {0}")]
    NotBuilt(String),
    /// A stats file line did not parse.
    #[error("stats line {line}: cannot parse {text:?}")]
    BadStats {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

/// Replaces the control file atomically (temporary file in the same
/// directory, then rename), so the module never reads half a file.
pub fn write_control(path: &Path, text: &str) -> Result<(), Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}.{n}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The environment variable that names the PKCS#11 module the workspace's tests run
/// against (the "token under test"); [`module_under_test`] reads it.
pub const TEST_MODULE_VAR: &str = "HANKO_TEST_PKCS11_MODULE";

/// The PKCS#11 module the tests of hanko-hsm, hanko-server and this crate run against,
/// and the real module behind the mock when `HANKO_MOCK_REAL_MODULE` is not set:
/// `HANKO_TEST_PKCS11_MODULE` if set and not empty, else SoftHSM
/// ([`DEFAULT_REAL_MODULE`], the only token packaged here). So one variable runs the
/// same suites against another token.
pub fn module_under_test() -> PathBuf {
    std::env::var_os(TEST_MODULE_VAR)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_REAL_MODULE), PathBuf::from)
}

/// Writes a SoftHSM configuration for tests into `dir`: token store `dir/tokens`
/// (created), file backend, errors only. Returns the path of `dir/softhsm2.conf`, for
/// `SOFTHSM2_CONF`.
pub fn write_softhsm_config(dir: &Path) -> Result<PathBuf, Error> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(|source| Error::Io {
        path: tokens.clone(),
        source,
    })?;
    let conf = dir.join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        tokens.display()
    );
    std::fs::write(&conf, text).map_err(|source| Error::Io {
        path: conf.clone(),
        source,
    })?;
    Ok(conf)
}

/// The file name cargo gives the module.
pub const MODULE_FILE: &str = "libhanko_pkcs11_mock.so";

/// Where a test binary finds the module: `HANKO_MOCK_SO` if set, else the `.so` cargo
/// built beside the running executable (`target/<profile>/` or its `deps/`); if neither
/// exists, it is built once with `cargo build -p hanko-pkcs11-mock` in the same profile.
/// For the workspace's own tests (hanko-hsm, hanko-server, this crate).
pub fn module_for_tests() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("HANKO_MOCK_SO") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| Error::NotBuilt(e.to_string()))?;
    let deps = exe
        .parent()
        .ok_or_else(|| Error::NotBuilt(format!("{} has no directory", exe.display())))?;
    let mut candidates = vec![deps.join(MODULE_FILE)];
    if let Some(profile_dir) = deps.parent() {
        candidates.insert(0, profile_dir.join(MODULE_FILE));
    }
    if let Some(p) = candidates.iter().find(|p| p.exists()) {
        return Ok(p.clone());
    }
    let mut args = vec!["build", "-p", "hanko-pkcs11-mock"];
    if !cfg!(debug_assertions) {
        args.push("--release"); // into this profile's directory, where it is looked for
    }
    let status = std::process::Command::new(env!("CARGO"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| Error::NotBuilt(format!("cargo: {e}")))?;
    if !status.success() {
        return Err(Error::NotBuilt(format!("cargo {} failed", args.join(" "))));
    }
    candidates
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| Error::NotBuilt(format!("{MODULE_FILE} not found beside {}", exe.display())))
}
