//! The signing pool: [`HsmSigner`], an implementation of [`hanko_pki::Signer`] over worker
//! threads that each own one PKCS#11 session.
//!
//! # Why sessions are per thread
//! A PKCS#11 session runs one operation at a time and cryptoki's `Session` is not `Sync`.
//! Sharing sessions behind a lock would serialise signing and let one slow call hold up
//! the rest; a session per worker lets the token run as many signatures in parallel as it
//! can, and a worker that hangs takes only its own session with it.
//!
//! # How a signature travels
//! `sign` hashes the message in software and builds the block the mechanism signs
//! (DigestInfo for `CKM_RSA_PKCS`, the bare digest for `CKM_RSA_PKCS_PSS` and
//! `CKM_ECDSA`, the message itself for `CKM_EDDSA`), then `try_send`s a job into a
//! bounded queue: a full queue answers `Busy` at once, so callers shed load instead of
//! piling up. A worker takes the job, signs under the module's read lock, converts ECDSA's
//! `r || s` to DER, verifies the result in software if `verify_after_sign` is set, and
//! answers through a oneshot channel. The async caller only awaits that channel.
//!
//! # Deadlines
//! A watchdog thread looks at every worker's call in flight. One that has run longer than
//! `call_timeout` is abandoned: the watchdog answers its job with `Timeout` and starts a
//! replacement worker, so capacity is kept. When the stuck call finally returns, the old
//! worker closes its session (if the module was not re-initialised meanwhile) and exits.
//! At most `workers` abandoned workers may be outstanding; past that no replacement is
//! started, since a token that hangs every call would otherwise grow threads forever.
//!
//! # Device loss
//! A device-lost return value is reported to the module supervisor (see `module.rs`),
//! which marks the token not ready. While not ready, `sign` and every queued job fail
//! with `DeviceLost` at once (the queue drains); after recovery, workers see the new
//! module generation and re-open their sessions and re-find their key by label.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use hanko_pki::{BoxFuture, HashAlgorithm, KeyType, SignError, SignErrorKind, SignatureAlgorithm};
use tokio::sync::oneshot;

use crate::error::{Error, function_name, rv_name};
use crate::metrics_names as m;
use crate::token::{HsmInner, find_private_key, login};
use crate::{PoolConfig, spki};

/// The key a pool signs with.
#[derive(Debug, Clone)]
pub(crate) struct KeyRef {
    pub(crate) label: String,
    pub(crate) key_type: KeyType,
    pub(crate) alg: SignatureAlgorithm,
    pub(crate) spki: Vec<u8>,
}

type Reply = oneshot::Sender<Result<Vec<u8>, SignError>>;

/// One signing request.
struct Job {
    /// The message as given (for verify-after-sign).
    message: Vec<u8>,
    /// What the mechanism signs.
    data: Vec<u8>,
    reply: Reply,
}

/// A worker's call in flight, watched by the watchdog.
#[derive(Default)]
struct InFlight {
    since: Option<Instant>,
    reply: Option<Reply>,
}

struct WorkerSlot {
    id: usize,
    inflight: Mutex<InFlight>,
}

struct Shared {
    hsm: Arc<HsmInner>,
    key: KeyRef,
    cfg: PoolConfig,
    rx: Mutex<Receiver<Job>>,
    workers: Mutex<Vec<Arc<WorkerSlot>>>,
    next_id: AtomicUsize,
    /// Abandoned workers whose call has not returned yet.
    abandoned_live: AtomicUsize,
    closed: AtomicBool,
    /// The module generation under which the key was last found (`u64::MAX`: never).
    /// A key missing from a session of that same generation has vanished.
    found_generation: AtomicU64,
}

/// A pool of signing workers for one key; implements [`hanko_pki::Signer`].
///
/// Dropping it stops the workers once their current job is done (their sessions are
/// closed) and stops the watchdog.
pub struct HsmSigner {
    shared: Arc<Shared>,
    tx: SyncSender<Job>,
}

impl fmt::Debug for HsmSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmSigner")
            .field("token", &self.shared.hsm.label)
            .field("key", &self.shared.key.label)
            .field("alg", &self.shared.key.alg)
            .field("workers", &self.shared.cfg.workers)
            .finish()
    }
}

impl HsmSigner {
    pub(crate) fn start(
        hsm: Arc<HsmInner>,
        key: KeyRef,
        cfg: PoolConfig,
        found_generation: u64,
    ) -> Result<Self, Error> {
        let (tx, rx) = sync_channel(cfg.queue_depth);
        let shared = Arc::new(Shared {
            hsm,
            key,
            cfg,
            rx: Mutex::new(rx),
            workers: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(0),
            abandoned_live: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            found_generation: AtomicU64::new(found_generation),
        });
        for _ in 0..shared.cfg.workers {
            spawn_worker(&shared)?;
        }
        let watched = shared.clone();
        std::thread::Builder::new()
            .name(format!("hanko-hsm-watchdog-{}", shared.key.label))
            .spawn(move || watchdog(watched))
            .map_err(|e| Error::Config(format!("cannot start the watchdog thread: {e}")))?;
        tracing::info!(token = %shared.hsm.label, key = %shared.key.label, alg = %shared.key.alg,
            workers = shared.cfg.workers, queue = shared.cfg.queue_depth,
            verify_after_sign = shared.cfg.verify_after_sign, "signing pool started");
        Ok(HsmSigner { shared, tx })
    }

    /// Label of the key.
    pub fn key_label(&self) -> &str {
        &self.shared.key.label
    }

    /// Type of the key.
    pub fn key_type(&self) -> KeyType {
        self.shared.key.key_type
    }

    /// The pool's settings.
    pub fn pool_config(&self) -> &PoolConfig {
        &self.shared.cfg
    }

    fn fail(&self, e: &Error) -> SignError {
        let se = sign_error(e, &self.shared.hsm.label, &self.shared.key.label);
        metrics::counter!(m::ERRORS, "key" => self.shared.key.label.clone(),
            "kind" => se.kind().as_str())
        .increment(1);
        match se.kind() {
            SignErrorKind::Busy | SignErrorKind::DeviceLost => {
                tracing::debug!(key = %self.shared.key.label, error = %se, "signing refused")
            }
            _ => tracing::warn!(key = %self.shared.key.label, error = %se, "signing failed"),
        }
        se
    }

    async fn sign_inner(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let sh = &self.shared;
        if !sh.hsm.is_ready() {
            return Err(self.fail(&Error::NotReady(sh.hsm.label.clone())));
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            message: message.to_vec(),
            data: block_to_sign(sh.key.alg, message),
            reply,
        };
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(self.fail(&Error::Busy(sh.key.label.clone()))),
            Err(TrySendError::Disconnected(_)) => {
                return Err(self.fail(&Error::PoolClosed(sh.key.label.clone())));
            }
        }
        match answer.await {
            Ok(Ok(sig)) => {
                metrics::counter!(m::SIGNATURES, "key" => sh.key.label.clone()).increment(1);
                Ok(sig)
            }
            Ok(Err(se)) => {
                metrics::counter!(m::ERRORS, "key" => sh.key.label.clone(),
                    "kind" => se.kind().as_str())
                .increment(1);
                tracing::warn!(key = %sh.key.label, error = %se, "signing failed");
                Err(se)
            }
            Err(_) => Err(self.fail(&Error::PoolClosed(sh.key.label.clone()))),
        }
    }
}

impl Drop for HsmSigner {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.hsm.release_key(&self.shared.key.label);
    }
}

impl hanko_pki::Signer for HsmSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.shared.key.alg
    }

    fn public_key_der(&self) -> &[u8] {
        &self.shared.key.spki
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, SignError>> {
        Box::pin(self.sign_inner(message))
    }

    fn is_ready(&self) -> bool {
        self.shared.hsm.is_ready()
    }
}

/// The `SignError` callers see: for PKCS#11 errors the context names token and key, e.g.
/// `C_Sign: CKR_DEVICE_REMOVED (token "hanko-dev", key "tsa-rsa3072")`.
fn sign_error(e: &Error, token: &str, key: &str) -> SignError {
    let context = match e {
        Error::Pkcs11 { function, rv, .. } => format!(
            "{}: {} (token \"{token}\", key \"{key}\")",
            function_name(*function),
            rv_name(*rv)
        ),
        other => other.to_string(),
    };
    SignError::new(e.kind(), context)
}

/// What the mechanism signs for `alg`: the software hash, wrapped in a DigestInfo for
/// PKCS#1 v1.5; the message itself for Ed25519 (PureEdDSA).
fn block_to_sign(alg: SignatureAlgorithm, message: &[u8]) -> Vec<u8> {
    match alg {
        SignatureAlgorithm::RsaPkcs1v15(h) => h.digest_info(&h.digest(message)),
        SignatureAlgorithm::Ed25519 => message.to_vec(),
        other => other.hash().digest(message),
    }
}

fn hash_mechanisms(h: HashAlgorithm) -> (MechanismType, PkcsMgfType) {
    match h {
        HashAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        _ => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
    }
}

fn mechanism(alg: SignatureAlgorithm) -> Mechanism<'static> {
    match alg {
        SignatureAlgorithm::RsaPss(h) => {
            let (hash_alg, mgf) = hash_mechanisms(h);
            Mechanism::RsaPkcsPss(PkcsPssParams {
                hash_alg,
                mgf,
                s_len: (h.output_len() as u64).into(),
            })
        }
        SignatureAlgorithm::Ecdsa(_) => Mechanism::Ecdsa,
        SignatureAlgorithm::Ed25519 => {
            Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
        }
        _ => Mechanism::RsaPkcs,
    }
}

fn spawn_worker(shared: &Arc<Shared>) -> Result<(), Error> {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let slot = Arc::new(WorkerSlot {
        id,
        inflight: Mutex::new(InFlight::default()),
    });
    shared
        .workers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(slot.clone());
    let sh = shared.clone();
    std::thread::Builder::new()
        .name(format!("hanko-hsm-{}-{id}", shared.key.label))
        .spawn(move || worker(sh, slot))
        .map(|_| ())
        .map_err(|e| Error::Config(format!("cannot start a signing worker thread: {e}")))
}

/// A worker's session, the key handle found in it, and the module generation it was
/// opened under.
struct WorkerSession {
    session: Session,
    key: ObjectHandle,
    generation: u64,
}

fn worker(sh: Arc<Shared>, slot: Arc<WorkerSlot>) {
    let mut ws: Option<WorkerSession> = None;
    tracing::debug!(key = %sh.key.label, worker = slot.id, "signing worker started");
    loop {
        let job = {
            let rx = sh.rx.lock().unwrap_or_else(|p| p.into_inner());
            match rx.recv() {
                Ok(job) => job,
                Err(_) => break, // the signer was dropped
            }
        };
        if !sh.hsm.is_ready() {
            let _ = job.reply.send(Err(sign_error(
                &Error::NotReady(sh.hsm.label.clone()),
                &sh.hsm.label,
                &sh.key.label,
            )));
            continue;
        }
        {
            let mut f = slot.inflight.lock().unwrap_or_else(|p| p.into_inner());
            f.since = Some(Instant::now());
            f.reply = Some(job.reply);
        }
        let result = sign_once(&sh, &mut ws, &job.data);
        let reply = {
            let mut f = slot.inflight.lock().unwrap_or_else(|p| p.into_inner());
            f.since = None;
            f.reply.take()
        };
        let Some(reply) = reply else {
            // The watchdog abandoned this worker and answered the job with Timeout.
            sh.abandoned_live.fetch_sub(1, Ordering::AcqRel);
            let mut workers = sh.workers.lock().unwrap_or_else(|p| p.into_inner());
            if workers.len() < sh.cfg.workers && !sh.closed.load(Ordering::Acquire) {
                // No replacement was started (too many hung calls): rejoin the pool.
                workers.push(slot.clone());
                tracing::warn!(key = %sh.key.label, worker = slot.id,
                    "abandoned signing call returned; worker rejoins the pool");
                continue;
            }
            tracing::warn!(key = %sh.key.label, worker = slot.id,
                "abandoned signing call returned; worker exits");
            break;
        };
        let answer = match result {
            Ok(sig) => check_signature(&sh, &job.message, sig),
            Err((e, generation)) => {
                if e.is_device_lost() {
                    sh.hsm.module.report_lost(generation, &e);
                }
                Err(e)
            }
        };
        let _ = reply.send(answer.map_err(|e| sign_error(&e, &sh.hsm.label, &sh.key.label)));
    }
    close_session(&sh, ws);
    tracing::debug!(key = %sh.key.label, worker = slot.id, "signing worker stopped");
}

/// Verify-after-sign, if configured.
fn check_signature(sh: &Shared, message: &[u8], sig: Vec<u8>) -> Result<Vec<u8>, Error> {
    if !sh.cfg.verify_after_sign {
        return Ok(sig);
    }
    match hanko_pki::verify::verify(&sh.key.spki, sh.key.alg, message, &sig) {
        Ok(()) => Ok(sig),
        Err(e) => {
            metrics::counter!(m::VERIFY_FAILURES, "key" => sh.key.label.clone()).increment(1);
            tracing::error!(key = %sh.key.label, error = %e,
                "token returned a signature that does not verify; withheld");
            Err(Error::BadSignature {
                key: sh.key.label.clone(),
                reason: e.to_string(),
            })
        }
    }
}

/// Closes the session if it belongs to the current module generation; a session of an
/// older generation is forgotten (its handle may belong to someone else by now).
fn close_session(sh: &Shared, ws: Option<WorkerSession>) {
    let Some(ws) = ws else { return };
    let state = sh.hsm.module.read();
    if ws.generation == state.generation && state.initialized {
        let _ = ws.session.close();
    }
}

/// One signature; on failure also the generation the call was made under.
fn sign_once(
    sh: &Shared,
    ws: &mut Option<WorkerSession>,
    data: &[u8],
) -> Result<Vec<u8>, (Error, u64)> {
    let state = sh.hsm.module.read();
    let generation = state.generation;
    let token = sh.hsm.label.as_str();
    if ws.as_ref().is_some_and(|w| w.generation != generation) {
        // Opened before a re-initialisation: the handle is dead; forget it.
        *ws = None;
    }
    if ws.is_none() {
        let opened = (|| {
            let slot = sh.hsm.slot(&state)?;
            let session = state
                .ctx
                .open_ro_session_no_drop(slot)
                .map_err(|e| Error::from_cryptoki(e, token))?;
            let key = login(&session, sh.hsm.pin(), token)
                .and_then(|()| find_private_key(&session, token, &sh.key.label));
            let key = match key {
                Err(Error::KeyNotFound { .. })
                    if sh.found_generation.load(Ordering::Acquire) == generation =>
                {
                    Err(Error::KeyVanished {
                        token: token.to_owned(),
                        key: sh.key.label.clone(),
                        rv: RvError::ObjectHandleInvalid,
                    })
                }
                other => other,
            };
            match key {
                Ok(key) => {
                    sh.found_generation.store(generation, Ordering::Release);
                    Ok(WorkerSession {
                        session,
                        key,
                        generation,
                    })
                }
                Err(e) => {
                    if !e.is_device_lost() {
                        let _ = session.close();
                    }
                    Err(e)
                }
            }
        })();
        *ws = Some(opened.map_err(|e| (e, generation))?);
    }
    let Some(w) = ws.as_ref() else {
        return Err((Error::NotReady(token.to_owned()), generation));
    };
    let mech = mechanism(sh.key.alg);
    let mut signed = w.session.sign(&mech, w.key, data);
    if let Err(cryptoki::error::Error::Pkcs11(
        rv @ (RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid),
        _,
    )) = signed
    {
        // The handle worked before. Look the key up again by label: re-created keys get
        // new handles; a key that is gone means the token's store was lost.
        match find_private_key(&w.session, token, &sh.key.label) {
            Ok(key) => {
                signed = w.session.sign(&mech, key, data);
                if let Some(w) = ws.as_mut() {
                    w.key = key;
                }
            }
            Err(Error::KeyNotFound { .. }) => {
                let e = Error::KeyVanished {
                    token: token.to_owned(),
                    key: sh.key.label.clone(),
                    rv,
                };
                if let Some(w) = ws.take() {
                    let _ = w.session.close();
                }
                return Err((e, generation));
            }
            Err(e) => return Err((e, generation)),
        }
    }
    match signed {
        Ok(raw) => {
            if matches!(sh.key.alg, SignatureAlgorithm::Ecdsa(_)) {
                spki::ecdsa_raw_to_der(&raw).ok_or_else(|| {
                    (
                        Error::BadSignature {
                            key: sh.key.label.clone(),
                            reason: format!("CKM_ECDSA returned {} bytes", raw.len()),
                        },
                        generation,
                    )
                })
            } else {
                Ok(raw)
            }
        }
        Err(e) => {
            let e = Error::from_cryptoki(e, token);
            if e.is_device_lost() {
                *ws = None; // dead handle: forget
            } else if e.kind() == SignErrorKind::KeyUnavailable {
                // Re-find the key (by label) on the next job.
                if let Some(w) = ws.take() {
                    let _ = w.session.close();
                }
            }
            Err((e, generation))
        }
    }
}

fn watchdog(sh: Arc<Shared>) {
    let tick =
        (sh.cfg.call_timeout / 4).clamp(Duration::from_millis(1), Duration::from_millis(250));
    while !sh.closed.load(Ordering::Acquire) {
        std::thread::sleep(tick);
        let stuck: Vec<(usize, Reply)> = {
            let mut workers = sh.workers.lock().unwrap_or_else(|p| p.into_inner());
            let mut stuck = Vec::new();
            workers.retain(|w| {
                let mut f = w.inflight.lock().unwrap_or_else(|p| p.into_inner());
                let late = f.since.is_some_and(|s| s.elapsed() > sh.cfg.call_timeout);
                match (late, f.reply.take()) {
                    (true, Some(reply)) => {
                        stuck.push((w.id, reply));
                        false
                    }
                    (_, reply) => {
                        f.reply = reply;
                        true
                    }
                }
            });
            stuck
        };
        for (id, reply) in stuck {
            let e = Error::Timeout {
                key: sh.key.label.clone(),
                timeout_ms: sh.cfg.call_timeout.as_millis(),
            };
            let _ = reply.send(Err(sign_error(&e, &sh.hsm.label, &sh.key.label)));
            metrics::counter!(m::ABANDONED_WORKERS, "key" => sh.key.label.clone()).increment(1);
            let outstanding = sh.abandoned_live.fetch_add(1, Ordering::AcqRel) + 1;
            if outstanding <= sh.cfg.workers {
                tracing::warn!(key = %sh.key.label, worker = id, outstanding,
                    "signing call passed its deadline; worker abandoned, replacement started");
                if let Err(e) = spawn_worker(&sh) {
                    tracing::error!(key = %sh.key.label, error = %e, "no replacement worker");
                }
            } else {
                tracing::error!(key = %sh.key.label, worker = id, outstanding,
                    "signing call passed its deadline; too many hung workers, no replacement");
            }
        }
    }
}
