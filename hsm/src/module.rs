//! One loaded PKCS#11 module per process, its initialisation generation, and the
//! supervisor that re-initialises it after a device loss.
//!
//! # Why a generation and a read-write lock
//! PKCS#11 allows one `C_Initialize` per process and says `C_Finalize` must not run
//! concurrently with any other call. So every call into the module is made under the
//! module's *read* lock, and the supervisor takes the *write* lock to run `C_Finalize` and
//! `C_Initialize`. Each re-initialisation bumps `generation`; a session opened under an
//! older generation is dead and its handle may even have been reused by a new session, so
//! it is forgotten, never closed (sessions are opened with cryptoki's `*_no_drop` and
//! closed explicitly only while their generation is current).
//!
//! # What happens on a device loss
//! A worker whose call returns a device-lost value ([`crate::Error::is_device_lost`]) on
//! the second try (it retries once on a fresh session first) reports it with the recovery
//! *epoch* its session was opened under. If no recovery is running and the epoch is still
//! current, one supervisor thread starts: every token of the module is marked not ready
//! (signers then fail queued and new jobs with `DeviceLost` at once), and with back-off
//! from 100 ms to 1 s it tries, until every token is back:
//!
//! 1. **Re-open** (the normal path), under the *read* lock: find the token by label
//!    (`C_GetSlotList` may list nothing while a token is unplugged: that is a failed
//!    attempt, not an error of its own), open a new login session, log in, find every key
//!    signers use, close the old login session. Then the epoch is bumped: workers close
//!    sessions of an older epoch and open fresh ones (new session, login, key re-found).
//!    This is enough after an unplug and replug, a token reset, a stray
//!    `CKR_SESSION_HANDLE_INVALID`: PKCS#11 does not need `C_Finalize` for any of them.
//! 2. **Re-initialise** (the last resort), under the *write* lock: `C_Finalize`,
//!    `C_Initialize`, then step 1; it bumps the generation as well, and sessions of an
//!    older generation are forgotten, never closed. Used when step 1 finds the token but
//!    not the keys (SoftHSM keeps lost objects lost until re-initialised), when the
//!    library says it is not initialised, or when step 1 has failed for
//!    [`REINIT_AFTER`] (some modules enumerate slots only in `C_Initialize`). It waits
//!    at most [`REINIT_LOCK_WAIT`] for the write lock; a call that never returns (a hung
//!    `C_Sign` of an abandoned worker) holds a read lock, so then this attempt falls back
//!    to step 1. A hang can therefore delay a re-initialisation but never the re-open
//!    path, and never the supervisor loop.
//!
//! What it does not do: bound the supervisor's own calls. A `C_OpenSession` or `C_Login`
//! that never returns stalls recovery (readiness stays false, which `/readyz` shows);
//! only signing calls have watchdog deadlines.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;

use crate::error::{Error, Pkcs11Function, ReturnValue};
use crate::token::HsmInner;

/// Back-off bounds of the supervisor. The maximum is short so that signing resumes
/// within about a second of the token coming back; an attempt costs a slot-list scan and
/// a session open, which is nothing for a token.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long re-open attempts may fail before re-initialisation is tried as well.
pub(crate) const REINIT_AFTER: Duration = Duration::from_secs(15);
/// How long a re-initialisation waits for in-flight calls before it gives way.
pub(crate) const REINIT_LOCK_WAIT: Duration = Duration::from_millis(500);

/// What the read/write lock protects.
#[derive(Debug)]
pub(crate) struct ModuleState {
    /// The loaded library; calls through it are valid while `initialized`.
    pub(crate) ctx: Pkcs11,
    /// Whether `C_Initialize` succeeded and no `C_Finalize` followed.
    pub(crate) initialized: bool,
    /// Bumped by every re-initialisation.
    pub(crate) generation: u64,
}

/// A loaded module, shared by every [`crate::Hsm`] of the process that uses the same path.
#[derive(Debug)]
pub(crate) struct Module {
    pub(crate) path: PathBuf,
    state: RwLock<ModuleState>,
    /// Tokens opened on this module, re-logged-in by the supervisor.
    tokens: Mutex<Vec<Weak<HsmInner>>>,
    /// Set while the supervisor runs; the "single supervisor" guarantee.
    recovering: AtomicBool,
    /// Bumped by every completed recovery (re-open or re-initialisation). Sessions opened
    /// under an older epoch are closed and replaced; a loss reported under an older epoch
    /// is one a recovery has dealt with already.
    epoch: AtomicU64,
}

static MODULES: LazyLock<Mutex<Vec<Arc<Module>>>> = LazyLock::new(|| Mutex::new(Vec::new()));

impl Module {
    /// The process-wide module for `path`, loaded and initialised on first use.
    pub(crate) fn get(path: &Path) -> Result<Arc<Module>, Error> {
        let mut modules = MODULES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = modules.iter().find(|m| m.path == path) {
            return Ok(m.clone());
        }
        let module_err = |reason: String| Error::Module {
            path: path.to_owned(),
            reason,
        };
        let ctx = Pkcs11::new(path).map_err(|e| module_err(e.to_string()))?;
        initialize(&ctx).map_err(|e| match e {
            Error::Module { reason, .. } => module_err(reason),
            other => other,
        })?;
        let m = Arc::new(Module {
            path: path.to_owned(),
            state: RwLock::new(ModuleState {
                ctx,
                initialized: true,
                generation: 0,
            }),
            tokens: Mutex::new(Vec::new()),
            recovering: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
        });
        modules.push(m.clone());
        tracing::info!(module = %path.display(), "PKCS#11 module loaded");
        Ok(m)
    }

    /// Shared access for one or more PKCS#11 calls.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, ModuleState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Shared access if available at once (for `Drop` impls, which must not wait).
    pub(crate) fn try_read(&self) -> Option<RwLockReadGuard<'_, ModuleState>> {
        match self.state.try_read() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The current recovery epoch (see the field).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn try_write(&self) -> Option<RwLockWriteGuard<'_, ModuleState>> {
        match self.state.try_write() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Registers a token for re-login by the supervisor.
    pub(crate) fn register(&self, token: &Arc<HsmInner>) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.retain(|w| w.strong_count() > 0);
        tokens.push(Arc::downgrade(token));
    }

    /// Whether a live token of this module with `label` was opened with a PIN other
    /// than `pin`.
    pub(crate) fn pin_conflicts(&self, label: &str, pin: &crate::Pin) -> bool {
        self.live_tokens()
            .iter()
            .any(|t| t.label == label && !t.pin().same_as(pin))
    }

    fn live_tokens(&self) -> Vec<Arc<HsmInner>> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.iter().filter_map(Weak::upgrade).collect()
    }

    /// A call in a session opened under `epoch` returned a device-lost value: start the
    /// supervisor unless one runs already or a recovery has completed since.
    pub(crate) fn report_lost(self: &Arc<Self>, epoch: u64, what: &Error) {
        if self.epoch() != epoch {
            return;
        }
        if self
            .recovering
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        tracing::warn!(module = %self.path.display(), error = %what,
            "device lost; signing suspended, recovering");
        for t in self.live_tokens() {
            t.set_ready(false);
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("hanko-hsm-supervisor".into())
            .spawn(move || me.supervise());
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the HSM supervisor thread");
            self.recovering.store(false, Ordering::Release);
        }
    }

    fn supervise(self: Arc<Self>) {
        let started = Instant::now();
        let mut backoff = BACKOFF_MIN;
        let mut attempt = 0u32;
        let mut need_reinit = false;
        let path = loop {
            attempt += 1;
            let reinit = need_reinit || started.elapsed() >= REINIT_AFTER;
            let result = if reinit {
                match self.reinitialize(REINIT_LOCK_WAIT) {
                    Some(r) => r.map(|()| "reinit"),
                    None => {
                        tracing::warn!(
                            "re-initialisation postponed: a PKCS#11 call has not returned; \
                             re-opening sessions instead"
                        );
                        self.reopen().map(|()| "reopen")
                    }
                }
            } else {
                self.reopen().map(|()| "reopen")
            };
            match result {
                Ok(path) => break path,
                Err(e) => {
                    need_reinit = needs_reinit(&e);
                    tracing::warn!(attempt, error = %e, retry_in_ms = backoff.as_millis() as u64,
                        reinit_next = need_reinit, "HSM recovery attempt failed");
                }
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        };
        metrics::counter!(crate::metrics_names::RECOVERIES, "path" => path).increment(1);
        tracing::info!(module = %self.path.display(), attempts = attempt, path,
            elapsed_ms = started.elapsed().as_millis() as u64, "HSM recovered; signing resumed");
        self.recovering.store(false, Ordering::Release);
    }

    /// Tokens of this module not yet back, logged in again under the read lock (step 1 of
    /// the module docs). `Ok` only when every live token is ready again.
    fn reopen(&self) -> Result<(), Error> {
        let tokens = self.live_tokens();
        let state = self.read();
        if !state.initialized {
            return Err(Error::Pkcs11 {
                function: Pkcs11Function(cryptoki::context::Function::Initialize),
                rv: ReturnValue(RvError::CryptokiNotInitialized),
                token: String::new(),
            });
        }
        let mut first_err = None;
        let mut back = Vec::new();
        for t in tokens.iter().filter(|t| !t.is_ready()) {
            match t.relogin(&state) {
                Ok(old) => {
                    if let Some(old) = old {
                        // Best effort: after a replug the handle is stale and this fails.
                        let _ = old.close();
                    }
                    back.push(t);
                }
                Err(e) => {
                    tracing::debug!(token = %t.label, error = %e, "token not back yet");
                    first_err.get_or_insert(e);
                }
            }
        }
        if !back.is_empty() {
            // Before readiness: no worker may reuse a session from before the loss.
            self.epoch.fetch_add(1, Ordering::AcqRel);
            for t in back {
                t.set_ready(true);
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Step 2 of the module docs: finalise, initialise, log every token back in. `None`
    /// if in-flight calls kept the write lock away for `lock_wait`; `Ok` only when every
    /// live token is ready again.
    fn reinitialize(&self, lock_wait: Duration) -> Option<Result<(), Error>> {
        // Taken before the write lock, so that a token dropped meanwhile is dropped after
        // the lock is released (its `Drop` takes the read lock).
        let tokens = self.live_tokens();
        let mut state = self.write_within(lock_wait)?;
        for t in &tokens {
            t.forget_login_session();
            t.set_ready(false);
        }
        if state.initialized {
            if let Err(e) = state.ctx.clone().finalize() {
                tracing::debug!(error = %Error::from_cryptoki(e, ""), "C_Finalize during recovery");
            }
            state.initialized = false;
        }
        state.generation += 1;
        if let Err(e) = initialize(&state.ctx) {
            return Some(Err(e));
        }
        state.initialized = true;
        let mut first_err = None;
        let mut back = Vec::new();
        for t in &tokens {
            match t.relogin(&state) {
                Ok(_) => back.push(t),
                Err(e) => {
                    tracing::warn!(token = %t.label, error = %e, "token not back yet");
                    first_err.get_or_insert(e);
                }
            }
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for t in back {
            t.set_ready(true);
        }
        Some(match first_err {
            None => Ok(()),
            Some(e) => Err(e),
        })
    }

    /// The write lock, once every in-flight call has returned, or `None` after `wait`.
    /// Polls `try_write` so that waiting never blocks new readers.
    fn write_within(&self, wait: Duration) -> Option<RwLockWriteGuard<'_, ModuleState>> {
        let waiting = Instant::now();
        loop {
            if let Some(g) = self.try_write() {
                return Some(g);
            }
            if waiting.elapsed() >= wait {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Whether a failed re-open attempt calls for re-initialisation at the next attempt: the
/// token is there but the keys are not (SoftHSM's lost store), or the library itself has
/// lost its state.
fn needs_reinit(e: &Error) -> bool {
    matches!(
        e,
        Error::KeyNotFound { .. } | Error::KeyVanished { .. } | Error::Module { .. }
    ) || matches!(
        e.rv().map(|r| r.0),
        Some(RvError::CryptokiNotInitialized | RvError::GeneralError)
    )
}

/// `C_Initialize` with OS locking (the library may be called from many threads).
/// `CKR_CRYPTOKI_ALREADY_INITIALIZED` is accepted: another user in this process (a test
/// harness, another library) initialised it first, which is fine for us.
fn initialize(ctx: &Pkcs11) -> Result<(), Error> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => Ok(()),
        Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(Error::from_cryptoki(e, "")),
    }
}
