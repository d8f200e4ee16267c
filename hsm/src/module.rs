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
//! A worker whose call returns a device-lost value ([`crate::Error::is_device_lost`])
//! reports it with the generation it used. If no recovery is running and the generation
//! is still current, one supervisor thread starts: every token of the module is marked not
//! ready (signers then fail queued and new jobs with `DeviceLost` at once), and with
//! back-off from 100 ms to 5 s it finalises, initialises, finds each token by label, logs
//! in and checks its keys, until every token is back. Workers notice the new generation
//! and re-open their sessions on their next job.
//!
//! It does not survive a call that never returns: the write lock waits for in-flight
//! calls (a hung worker is abandoned by the pool's watchdog but still holds its read
//! lock). That is logged every few seconds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;

use crate::error::Error;
use crate::token::HsmInner;

/// Back-off bounds of the supervisor.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

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

    /// A call made under `generation` returned a device-lost value: start the supervisor
    /// unless one runs already or the module was re-initialised since.
    pub(crate) fn report_lost(self: &Arc<Self>, generation: u64, what: &Error) {
        if self.read().generation != generation {
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
            "device lost; signing suspended, re-initialising the module");
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
        loop {
            attempt += 1;
            match self.reinitialize() {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(attempt, error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "HSM re-initialisation failed");
                }
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        metrics::counter!(crate::metrics_names::RECOVERIES).increment(1);
        tracing::info!(module = %self.path.display(), attempts = attempt,
            elapsed_ms = started.elapsed().as_millis() as u64, "HSM recovered; signing resumed");
        self.recovering.store(false, Ordering::Release);
    }

    /// One attempt: finalise, initialise, log every token back in. `Ok` only when every
    /// live token is ready again.
    fn reinitialize(&self) -> Result<(), Error> {
        // Taken before the write lock, so that a token dropped meanwhile is dropped after
        // the lock is released (its `Drop` takes the read lock).
        let tokens = self.live_tokens();
        let mut state = self.write_when_idle();
        for t in &tokens {
            t.forget_login_session();
        }
        if state.initialized {
            if let Err(e) = state.ctx.clone().finalize() {
                tracing::debug!(error = %Error::from_cryptoki(e, ""), "C_Finalize during recovery");
            }
            state.initialized = false;
        }
        state.generation += 1;
        initialize(&state.ctx)?;
        state.initialized = true;
        let mut first_err = None;
        for t in &tokens {
            match t.relogin(&state) {
                Ok(()) => t.set_ready(true),
                Err(e) => {
                    tracing::warn!(token = %t.label, error = %e, "token not back yet");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// The write lock, once every in-flight call has returned.
    fn write_when_idle(&self) -> RwLockWriteGuard<'_, ModuleState> {
        let waiting = Instant::now();
        let mut warned = Instant::now();
        loop {
            if let Some(g) = self.try_write() {
                return g;
            }
            if warned.elapsed() > Duration::from_secs(5) {
                tracing::warn!(
                    waited_ms = waiting.elapsed().as_millis() as u64,
                    "recovery waits for a PKCS#11 call that has not returned"
                );
                warned = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
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
