//! The signing workers: OS threads that each own one PKCS#11 session, take jobs from
//! the queue and answer them.
//!
//! # One retry, on a fresh session
//! A TSA would rather hand out a correct token a few milliseconds later than an error. So
//! when an attempt fails with a device error (`CKR_DEVICE_ERROR`, `CKR_GENERAL_ERROR`,
//! `CKR_FUNCTION_FAILED`, ...: [`SignErrorKind::Device`]), a device-lost value
//! (`CKR_DEVICE_REMOVED`, `CKR_SESSION_HANDLE_INVALID`, ...), or a signature that fails
//! verify-after-sign, the worker closes its session and tries **once** more on a fresh
//! one (open, log in, find the key by label), if the request's deadline has not passed.
//! The fresh session doubles as a probe: after a real unplug `C_OpenSession` fails at once
//! and the loss is reported; after a one-off fault the retry simply succeeds. Only one
//! retry: a token that fails twice in a row is failing, and the caller should hear so
//! (and, after a few such requests, `/readyz`: see "Readiness" in the pool's module
//! docs). A bad signature is never handed out, retried or not. Other kinds (bad input,
//! key unavailable, timeout) are not retried.
//!
//! # Device loss
//! A device-lost value on the retry too is reported to the module supervisor (see
//! `module.rs`), which marks the token not ready. While not ready, `sign` and every
//! queued job fail with `DeviceLost` at once (the queue drains); after recovery, workers
//! see the new epoch (or generation) and re-open their sessions and re-find their key by
//! label.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use cryptoki::error::RvError;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use hanko_pki::{SignErrorKind, SignatureAlgorithm};

use super::{Check, InFlight, Item, Job, Shared, WorkerSlot, kind_index, mechanism};
use crate::error::{Error, ReturnValue};
use crate::lane::Lane;
use crate::metrics_names as m;
use crate::module::ModuleState;
use crate::spki;
use crate::token::find_private_key;

pub(super) fn spawn_worker(shared: &Arc<Shared>) -> Result<(), Error> {
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

/// A worker's session, the key handle found in it, and the module generation and
/// recovery epoch it was opened under.
struct WorkerSession {
    session: Session,
    key: ObjectHandle,
    generation: u64,
    epoch: u64,
}

/// The next queued job, or `None` once the signer is dropped.
fn next_job(sh: &Shared) -> Option<Job> {
    let mut q = sh.lock_queue();
    loop {
        if q.closed {
            return None;
        }
        if let Some(job) = q.take() {
            return Some(job);
        }
        q = sh.job_ready.wait(q).unwrap_or_else(|p| p.into_inner());
    }
}

pub(super) fn lock_inflight(slot: &WorkerSlot) -> MutexGuard<'_, InFlight> {
    slot.inflight.lock().unwrap_or_else(|p| p.into_inner())
}

fn worker(sh: Arc<Shared>, slot: Arc<WorkerSlot>) {
    let mut ws: Option<WorkerSession> = None;
    tracing::debug!(key = %sh.key.label, worker = slot.id, "signing worker started");
    while let Some(job) = next_job(&sh) {
        let Job {
            item,
            reply,
            deadline,
            lane,
            queued,
        } = job;
        sh.timing.queue_wait.record(queued.elapsed().as_secs_f64());
        let bulk = lane == Lane::Bulk;
        if reply.is_closed() {
            if bulk {
                sh.lock_queue().bulk_done();
            }
            continue; // the caller went away
        }
        if !sh.hsm.is_ready() {
            if bulk {
                sh.lock_queue().bulk_done();
            }
            let _ = reply.send(Err(sh.refuse(&Error::NotReady(sh.hsm.label.clone()))));
            continue;
        }
        {
            let mut f = lock_inflight(&slot);
            f.since = Some(Instant::now());
            f.deadline = Some(deadline);
            f.reply = Some(reply);
            f.abandoned = false;
            f.bulk = bulk;
        }
        let started = Instant::now();
        let result = process(&sh, &mut ws, &item, deadline);
        let took = started.elapsed();
        sh.timing.call.record(took.as_secs_f64());
        sh.counters.record_call(took);
        let (reply, abandoned) = {
            let mut f = lock_inflight(&slot);
            f.since = None;
            f.deadline = None;
            if std::mem::take(&mut f.bulk) {
                // Still counted (the watchdog did not abandon this worker): end it here.
                sh.lock_queue().bulk_done();
            }
            (f.reply.take(), std::mem::take(&mut f.abandoned))
        };
        if let Some(reply) = reply {
            sh.answer(reply, result.map_err(|e| sh.error(&e)));
        } // else: the watchdog answered Timeout; this result comes too late.
        if abandoned {
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
        }
    }
    close_session(&sh, ws);
    tracing::debug!(key = %sh.key.label, worker = slot.id, "signing worker stopped");
}

/// Whether a failed attempt is worth one more on a fresh session (see the module docs).
fn worth_retrying(e: &Error) -> bool {
    matches!(
        e,
        Error::Pkcs11 { .. } | Error::KeyVanished { .. } | Error::BadSignature { .. }
    ) && matches!(
        e.kind(),
        SignErrorKind::Device | SignErrorKind::DeviceLost | SignErrorKind::BadSignature
    )
}

/// One job: an attempt, and one retry on a fresh session if worthwhile and there is time.
/// Reports a device loss that survives the retry.
fn process(
    sh: &Shared,
    ws: &mut Option<WorkerSession>,
    item: &Item,
    deadline: Instant,
) -> Result<Vec<u8>, Error> {
    let (first, epoch) = match attempt(sh, ws, item) {
        Ok(sig) => return Ok(sig),
        Err(failed) => failed,
    };
    let retry = worth_retrying(&first)
        && sh.hsm.is_ready()
        && Instant::now() < deadline
        && !sh.closed.load(Ordering::Acquire);
    let (last, epoch) = if retry {
        sh.counters.retries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(m::RETRIES, "key" => sh.key.label.clone(),
            "kind" => first.kind().as_str())
        .increment(1);
        tracing::info!(key = %sh.key.label, error = %first,
            "signing attempt failed; retrying once on a fresh session");
        match attempt(sh, ws, item) {
            Ok(sig) => {
                sh.counters
                    .retries_succeeded
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(sig);
            }
            Err(failed) => failed,
        }
    } else {
        (first, epoch)
    };
    if last.is_device_lost() {
        sh.hsm.module.report_lost(epoch, &last);
    }
    Err(last)
}

/// One attempt, counted if it fails.
fn attempt(
    sh: &Shared,
    ws: &mut Option<WorkerSession>,
    item: &Item,
) -> Result<Vec<u8>, (Error, u64)> {
    let r = sign_once(sh, ws, item);
    if let Err((e, _)) = &r {
        sh.counters.failed_attempts[kind_index(e.kind())].fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// Verify-after-sign, if configured.
fn check_signature(sh: &Shared, check: &Check, sig: Vec<u8>) -> Result<Vec<u8>, Error> {
    if !sh.cfg.verify_after_sign {
        return Ok(sig);
    }
    let verified = match (check, &sh.key.verifier) {
        (Check::Message(message), Some(key)) => key.verify(sh.key.alg, message, &sig),
        (Check::Digest(alg, digest), Some(key)) => key.verify_digest(*alg, digest, &sig),
        // Unparsable: the free functions say why.
        (Check::Message(message), None) => {
            hanko_pki::verify::verify(&sh.key.spki, sh.key.alg, message, &sig)
        }
        (Check::Digest(alg, digest), None) => {
            hanko_pki::verify::verify_digest(&sh.key.spki, *alg, digest, &sig)
        }
    };
    match verified {
        Ok(()) => Ok(sig),
        Err(e) => {
            sh.counters.verify_failures.fetch_add(1, Ordering::Relaxed);
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

/// One signature, verified if configured; on failure also the recovery epoch of the
/// session it was tried in. After any failure the session is closed (best effort), so
/// the next attempt starts on a fresh one.
fn sign_once(
    sh: &Shared,
    ws: &mut Option<WorkerSession>,
    item: &Item,
) -> Result<Vec<u8>, (Error, u64)> {
    let state = sh.hsm.module.read();
    let epoch = sh.hsm.module.epoch();
    if let Some(w) = ws.take() {
        if w.generation != state.generation {
            // Opened before a re-initialisation: the handle is dead; forget it.
        } else if w.epoch != epoch {
            // Opened before a recovery: replace it (the handle may be stale already).
            let _ = w.session.close();
        } else {
            *ws = Some(w);
        }
    }
    let result = sign_in_session(sh, &state, ws, epoch, item);
    if result.is_err()
        && let Some(w) = ws.take()
        && state.initialized
    {
        // Best effort: a stale or removed handle just answers with an error.
        let _ = w.session.close();
    }
    result.map_err(|e| (e, epoch))
}

/// Opens a session (log in, find the key) if the worker has none.
fn open_session(sh: &Shared, state: &ModuleState, epoch: u64) -> Result<WorkerSession, Error> {
    let token = sh.hsm.label.as_str();
    let generation = state.generation;
    match sh.hsm.open_key_session(state, &sh.key.label) {
        Ok((session, key)) => {
            sh.found_generation.store(generation, Ordering::Release);
            Ok(WorkerSession {
                session,
                key,
                generation,
                epoch,
            })
        }
        // Found under this generation before: the token lost it.
        Err(Error::KeyNotFound { .. })
            if sh.found_generation.load(Ordering::Acquire) == generation =>
        {
            Err(Error::KeyVanished {
                token: token.to_owned(),
                key: sh.key.label.clone(),
                rv: ReturnValue(RvError::ObjectHandleInvalid),
            })
        }
        Err(e) => Err(e),
    }
}

fn sign_in_session(
    sh: &Shared,
    state: &ModuleState,
    ws: &mut Option<WorkerSession>,
    epoch: u64,
    item: &Item,
) -> Result<Vec<u8>, Error> {
    let data = item.data.as_slice();
    let token = sh.hsm.label.as_str();
    let w = match ws {
        Some(w) => w,
        None => ws.insert(open_session(sh, state, epoch)?),
    };
    let mech = mechanism::mechanism(item.alg);
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
                w.key = key;
                signed = w.session.sign(&mech, key, data);
            }
            Err(Error::KeyNotFound { .. }) => {
                return Err(Error::KeyVanished {
                    token: token.to_owned(),
                    key: sh.key.label.clone(),
                    rv: ReturnValue(rv),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let raw = signed.map_err(|e| Error::from_cryptoki(e, token))?;
    let sig = if matches!(item.alg, SignatureAlgorithm::Ecdsa(_)) {
        spki::ecdsa_raw_to_der(&raw).ok_or_else(|| {
            sh.counters.verify_failures.fetch_add(1, Ordering::Relaxed);
            Error::BadSignature {
                key: sh.key.label.clone(),
                reason: format!("CKM_ECDSA returned {} bytes", raw.len()),
            }
        })?
    } else {
        raw
    };
    check_signature(sh, &item.check, sig)
}
