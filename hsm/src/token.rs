//! [`Hsm`]: one logged-in token, found by label; the login state, key lookup, and the
//! signing pools started from it. Key generation and reading keys are in `keys.rs`.
//!
//! Administrative operations (key generation, reading public keys) open a short-lived
//! session each ([`HsmInner::with_session`]): they are rare, and a session per call
//! cannot be left in a half-finished operation state. Signing never goes through here; it goes through [`crate::HsmSigner`]'s
//! workers, which own their sessions.
//!
//! This module does not decide what a `CK_RV` means ([`crate::Error::kind`] does) and
//! does not retry; on a device-lost value it reports to the module's supervisor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use hanko_pki::alg::key_type_of_spki;
use hanko_pki::{DigestSignAlgorithm, SignatureAlgorithm};

use crate::error::Error;
use crate::module::{Module, ModuleState};
use crate::pool::{HsmSigner, KeyRef, sign_mechanism};
use crate::{ModuleConfig, Pin, PoolConfig};

/// A logged-in token. Cheap to clone; all clones share the login and the readiness flag.
#[derive(Clone, Debug)]
pub struct Hsm {
    pub(crate) inner: Arc<HsmInner>,
}

/// See [`Hsm::release_watch`].
#[derive(Debug, Clone)]
pub struct ReleaseWatch(Arc<AtomicBool>);

impl ReleaseWatch {
    /// Whether everything using the token has been dropped, and the drop has finished:
    /// the login session closed and, where this token held the module's last
    /// reference, the module finalised. (Not merely the last reference gone: the
    /// thread that drops it, a pool's watchdog or worker, is inside the module until
    /// then, and a process that exits under it crashes in the module's code.)
    pub fn is_released(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Blocks until [`ReleaseWatch::is_released`] or `timeout`; returns whether it was
    /// released. (A worker abandoned in a hung call holds the token until that call
    /// returns, so the caller bounds the wait.)
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        let until = std::time::Instant::now() + timeout;
        while !self.is_released() {
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }
}

/// State shared by an [`Hsm`], its clones and its signers' workers.
#[derive(Debug)]
pub(crate) struct HsmInner {
    pub(crate) module: Arc<Module>,
    pub(crate) label: String,
    pin: Pin,
    ready: AtomicBool,
    /// The slot the token was found in, and the module generation it was found under.
    slot: Mutex<Option<(Slot, u64)>>,
    /// A session kept open only to hold the login state (PKCS#11 logs the application
    /// out when its last session on the token closes).
    login: Mutex<Option<Session>>,
    /// Labels of the keys signers use, with the number of signers using each: recovery
    /// is complete only when all are found.
    keys: Mutex<Vec<(String, usize)>>,
    /// Set once this value has been dropped completely: the last field, so it drops
    /// after every other one (the module's reference included). See [`ReleaseWatch`].
    dropped: DroppedFlag,
}

/// Sets its flag when dropped (the last field of [`HsmInner`]).
#[derive(Debug)]
struct DroppedFlag(Arc<AtomicBool>);

impl Drop for DroppedFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl HsmInner {
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// A signer of `key` was dropped.
    pub(crate) fn release_key(&self, key: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = keys.iter().position(|(k, _)| k == key) {
            keys[i].1 -= 1;
            if keys[i].1 == 0 {
                keys.swap_remove(i);
            }
        }
    }

    pub(crate) fn pin(&self) -> &Pin {
        &self.pin
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The token's slot if it was found under the current generation.
    pub(crate) fn slot(&self, state: &ModuleState) -> Result<Slot, Error> {
        match *self.slot.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((slot, generation)) if generation == state.generation && state.initialized => {
                Ok(slot)
            }
            _ => Err(Error::NotReady(self.label.clone())),
        }
    }

    /// Drops the login session without closing it: its handle died with the old
    /// generation. Called by the supervisor under the write lock.
    pub(crate) fn forget_login_session(&self) {
        let _ = self.login.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Finds the token, opens the login session, logs in, and checks every key signers
    /// use. Called under the module lock (read on open and re-open, write during
    /// re-initialisation). Returns the login session it replaced, for the caller to close
    /// (re-open path) or forget (re-initialisation: its handle died with the generation).
    pub(crate) fn relogin(&self, state: &ModuleState) -> Result<Option<Session>, Error> {
        let ctx = &state.ctx;
        let slot = find_token(ctx, &self.label)?;
        let session = ctx
            .open_ro_session_no_drop(slot)
            .map_err(|e| Error::from_cryptoki(e, &self.label))?;
        if let Err(e) = login(&session, &self.pin, &self.label) {
            let _ = session.close();
            return Err(e);
        }
        let keys: Vec<String> = (self.keys.lock().unwrap_or_else(|p| p.into_inner()))
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            if let Err(e) = find_private_key(&session, &self.label, key) {
                let _ = session.close();
                return Err(e);
            }
        }
        let old = self
            .login
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(session);
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((slot, state.generation));
        Ok(old)
    }

    /// A fresh session on the token, logged in, with the handle of the private key
    /// labelled `key`: what a signing worker (and the bench's bare loop) signs in. The
    /// session is closed again when the login or the key lookup fails. Called under the
    /// module's read lock (`state`).
    pub(crate) fn open_key_session(
        &self,
        state: &ModuleState,
        key: &str,
    ) -> Result<(Session, ObjectHandle), Error> {
        let token = self.label.as_str();
        let slot = self.slot(state)?;
        let session = state
            .ctx
            .open_ro_session_no_drop(slot)
            .map_err(|e| Error::from_cryptoki(e, token))?;
        match login(&session, &self.pin, token)
            .and_then(|()| find_private_key(&session, token, key))
        {
            Ok(handle) => Ok((session, handle)),
            Err(e) => {
                let _ = session.close();
                Err(e)
            }
        }
    }

    /// Runs `f` in a fresh session under the read lock; reports a device loss.
    pub(crate) fn with_session<T>(
        &self,
        rw: bool,
        f: impl FnOnce(&Session) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let state = self.module.read();
        if !self.is_ready() {
            return Err(Error::NotReady(self.label.clone()));
        }
        let epoch = self.module.epoch();
        let result = (|| {
            let slot = self.slot(&state)?;
            let session = if rw {
                state.ctx.open_rw_session_no_drop(slot)
            } else {
                state.ctx.open_ro_session_no_drop(slot)
            }
            .map_err(|e| Error::from_cryptoki(e, &self.label))?;
            let r = f(&session);
            let _ = session.close();
            r
        })();
        drop(state);
        if let Err(e) = &result
            && e.is_device_lost()
        {
            self.module.report_lost(epoch, e);
        }
        result
    }
}

impl Drop for HsmInner {
    /// Closes the login session (which logs the process out of the token if it was the
    /// last session) unless the module was re-initialised since it was opened.
    fn drop(&mut self) {
        let session = self
            .login
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let slot = *self.slot.get_mut().unwrap_or_else(|p| p.into_inner());
        if let (Some(session), Some((_, generation))) = (session, slot)
            && let Some(state) = self.module.try_read()
            && state.generation == generation
            && state.initialized
        {
            let _ = session.close();
        }
    }
}

/// `C_Login` as user; `CKR_USER_ALREADY_LOGGED_IN` counts as success (login state is per
/// application, so a second session is logged in already).
pub(crate) fn login(session: &Session, pin: &Pin, token: &str) -> Result<(), Error> {
    match session.login(UserType::User, Some(pin.auth_pin())) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(Error::from_cryptoki(e, token)),
    }
}

/// Listing attempts when the slot list fails with `CKR_GENERAL_ERROR`.
const LIST_ATTEMPTS: u32 = 3;

/// The slot holding an initialised token labelled `label`.
///
/// Listing the slots with a token reads each token's info. SoftHSM 2.6.1 reads a file
/// token's state from its files, and now and then fails that read with
/// `CKR_GENERAL_ERROR` while another process updates them (seen once in CI, a server
/// start beside processes just SIGKILLed on the same token). The list changes nothing, so
/// it is tried again (at most [`LIST_ATTEMPTS`] in all, 50 ms apart); a real fault fails
/// every attempt and is reported.
pub(crate) fn find_token(ctx: &Pkcs11, label: &str) -> Result<Slot, Error> {
    let mut attempt = 0;
    let slots = loop {
        attempt += 1;
        match ctx.get_slots_with_initialized_token() {
            Ok(slots) => break slots,
            Err(e @ cryptoki::error::Error::Pkcs11(RvError::GeneralError, _))
                if attempt < LIST_ATTEMPTS =>
            {
                tracing::warn!(token = %label, attempt, error = %e,
                    "listing the slots failed; trying again");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(Error::from_cryptoki(e, label)),
        }
    };
    for slot in slots {
        match ctx.get_token_info(slot) {
            Ok(info) if info.label().trim_end() == label => return Ok(slot),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %Error::from_cryptoki(e, label), "C_GetTokenInfo on a slot")
            }
        }
    }
    Err(Error::TokenNotFound(label.to_owned()))
}

/// The private key labelled `key`; exactly one must exist.
pub(crate) fn find_private_key(
    session: &Session,
    token: &str,
    key: &str,
) -> Result<ObjectHandle, Error> {
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(key.as_bytes().to_vec()),
        ])
        .map_err(|e| Error::from_cryptoki(e, token))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::KeyNotFound {
            token: token.to_owned(),
            key: key.to_owned(),
        }),
        many => Err(Error::UnsupportedKey {
            key: key.to_owned(),
            reason: format!("{} private keys carry this label", many.len()),
        }),
    }
}

fn mechanisms(ctx: &Pkcs11, slot: Slot, token: &str) -> Result<Vec<MechanismType>, Error> {
    ctx.get_mechanism_list(slot)
        .map_err(|e| Error::from_cryptoki(e, token))
}

impl Hsm {
    /// Initialises a token labelled `module.token_label` in the first free slot
    /// (`C_InitToken` with `so_pin`, then `C_InitPIN` with `user_pin`). Returns `false`
    /// and changes nothing if a token with that label exists already.
    pub fn init_token(module: &ModuleConfig, so_pin: &Pin, user_pin: &Pin) -> Result<bool, Error> {
        let label = module.token_label.as_str();
        if label.is_empty() || label.len() > 32 {
            return Err(Error::Config(format!(
                "token label must be 1 to 32 bytes, \"{label}\" has {}",
                label.len()
            )));
        }
        if so_pin.len() < 4 || user_pin.len() < 4 {
            return Err(Error::PinSource(
                "PINs must have at least 4 characters".into(),
            ));
        }
        let m = Module::get(&module.module_path)?;
        let state = m.read();
        let ctx = &state.ctx;
        match find_token(ctx, label) {
            Ok(_) => return Ok(false),
            Err(Error::TokenNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let ck = |e| Error::from_cryptoki(e, label);
        let mut free = None;
        for slot in ctx.get_all_slots().map_err(ck)? {
            if let Ok(info) = ctx.get_token_info(slot)
                && !info.token_initialized()
            {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or_else(|| Error::NoFreeSlot(label.to_owned()))?;
        ctx.init_token(slot, so_pin.auth_pin(), label).map_err(ck)?;
        // SoftHSM moves an initialised token to a new slot id: find it again by label.
        let slot = find_token(ctx, label)?;
        let session = ctx.open_rw_session_no_drop(slot).map_err(ck)?;
        let r = (|| {
            session
                .login(UserType::So, Some(so_pin.auth_pin()))
                .map_err(ck)?;
            session.init_pin(user_pin.auth_pin()).map_err(ck)?;
            session.logout().map_err(ck)
        })();
        let _ = session.close();
        r?;
        tracing::info!(token = label, "token initialised");
        Ok(true)
    }

    /// Loads the module (once per process), finds the token by label and logs in.
    pub fn open(module: ModuleConfig, pin: Pin) -> Result<Hsm, Error> {
        let m = Module::get(&module.module_path)?;
        if m.pin_conflicts(&module.token_label, &pin) {
            return Err(Error::PinMismatch(module.token_label));
        }
        let inner = Arc::new(HsmInner {
            module: m.clone(),
            label: module.token_label,
            pin,
            ready: AtomicBool::new(false),
            slot: Mutex::new(None),
            login: Mutex::new(None),
            keys: Mutex::new(Vec::new()),
            dropped: DroppedFlag(Arc::new(AtomicBool::new(false))),
        });
        {
            let state = m.read();
            let _none = inner.relogin(&state)?;
        }
        inner.set_ready(true);
        m.register(&inner);
        tracing::info!(token = %inner.label, "logged in to token");
        Ok(Hsm { inner })
    }

    /// The token label.
    pub fn token_label(&self) -> &str {
        &self.inner.label
    }

    /// A handle that tells when this token's handles, signers and their worker threads
    /// are all gone (workers have closed their sessions; the login session is closed).
    /// A server waits on it after dropping its state, so that the process does not exit
    /// while worker threads still run inside the PKCS#11 module.
    pub fn release_watch(&self) -> ReleaseWatch {
        ReleaseWatch(self.inner.dropped.0.clone())
    }

    /// Whether the token is logged in and not being recovered. Never blocks.
    pub fn is_ready(&self) -> bool {
        self.inner.is_ready()
    }

    /// Whether the token offers mechanism `mech`.
    pub(crate) fn offers(&self, mech: MechanismType) -> Result<bool, Error> {
        let state = self.inner.module.read();
        let slot = self.inner.slot(&state)?;
        Ok(mechanisms(&state.ctx, slot, &self.inner.label)?.contains(&mech))
    }

    /// A signing pool for the private key labelled `key_label`. Checks that the key
    /// exists, that `alg` fits its type (read from its public key) and that the token
    /// offers the mechanism.
    pub fn signer(
        &self,
        key_label: &str,
        alg: SignatureAlgorithm,
        pool: PoolConfig,
    ) -> Result<HsmSigner, Error> {
        if pool.workers == 0 || pool.queue_depth == 0 || pool.call_timeout.is_zero() {
            return Err(Error::Config(
                "workers, queue_depth and call_timeout must be greater than zero".into(),
            ));
        }
        let token = self.inner.label.clone();
        let spki = self
            .public_key(key_label)?
            .ok_or_else(|| Error::KeyNotFound {
                token: token.clone(),
                key: key_label.to_owned(),
            })?;
        let key_type = key_type_of_spki(&spki).ok_or_else(|| Error::UnsupportedKey {
            key: key_label.to_owned(),
            reason: "public key type not recognised".into(),
        })?;
        if !alg.fits(key_type) {
            return Err(Error::AlgorithmMismatch {
                key: key_label.to_owned(),
                key_type,
                alg,
            });
        }
        let (mech, mech_name) = sign_mechanism(alg);
        if !self.offers(mech)? {
            return Err(Error::MechanismNotOffered {
                token,
                mechanism: mech_name,
            });
        }
        // The schemes `sign_digest` may use: the key type's, where the token offers the
        // mechanism (an RSA key configured for PKCS#1 v1.5 may still be asked for PSS).
        let mut digest_algs = DigestSignAlgorithm::for_key(key_type);
        let mut offered = Vec::new();
        for a in &digest_algs {
            let (m, _) = sign_mechanism(a.signature_algorithm());
            if !offered.iter().any(|(o, _)| *o == m) {
                offered.push((m, self.offers(m)?));
            }
        }
        digest_algs.retain(|a| {
            let (m, _) = sign_mechanism(a.signature_algorithm());
            offered.iter().any(|(o, yes)| *o == m && *yes)
        });
        let generation = self.inner.module.read().generation;
        self.inner
            .with_session(false, |s| find_private_key(s, &token, key_label))?;
        {
            let mut keys = self.inner.keys.lock().unwrap_or_else(|p| p.into_inner());
            match keys.iter_mut().find(|(k, _)| k == key_label) {
                Some((_, n)) => *n += 1,
                None => keys.push((key_label.to_owned(), 1)),
            }
        }
        HsmSigner::start(
            self.inner.clone(),
            KeyRef {
                label: key_label.to_owned(),
                key_type,
                alg,
                verifier: hanko_pki::verify::VerifyingKey::from_spki_der(&spki)
                    .ok()
                    .map(std::sync::Arc::new),
                spki,
                digest_algs,
            },
            pool,
            generation,
        )
        // On failure the half-started signer was dropped, which released the key.
    }
}
