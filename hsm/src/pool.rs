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
//! `CKM_ECDSA`, the message itself for `CKM_EDDSA`), then puts a job into a bounded
//! queue: a full queue answers `Busy` at once, so callers shed load instead of piling up.
//! A worker takes the job, signs under the module's read lock, converts ECDSA's `r || s`
//! to DER, verifies the result in software if `verify_after_sign` is set, and answers
//! through a oneshot channel. The async caller only awaits that channel.
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
//! (and, after a few such requests, `/readyz`: see "Readiness" below). A bad signature is
//! never handed out, retried or not.
//! Other kinds (bad input, key unavailable, timeout) are not retried.
//!
//! # Deadlines
//! Every request has a deadline, `call_timeout` after it was submitted, covering the time
//! in the queue, the PKCS#11 calls and the retry. A watchdog thread (ticking at most every
//! 50 ms) answers `Timeout` to any request past it, queued or in flight. A worker whose
//! job has been running for longer than `call_timeout` is *abandoned*: it is removed from
//! the pool and a replacement started, so capacity is kept. When the stuck call finally
//! returns, the old worker closes its session (if the module was not re-initialised
//! meanwhile) and rejoins the pool if it is short of workers, else exits. At most
//! `workers` abandoned workers may be outstanding; past that no replacement is started,
//! since a token that hangs every call would otherwise grow threads forever (queued
//! requests then still time out on schedule).
//!
//! # Device loss
//! A device-lost value on the retry too is reported to the module supervisor (see
//! `module.rs`), which marks the token not ready. While not ready, `sign` and every
//! queued job fail with `DeviceLost` at once (the queue drains); after recovery, workers
//! see the new epoch (or generation) and re-open their sessions and re-find their key by
//! label.
//!
//! # Readiness: a breaker on failures in a row
//! [`Signer::is_ready`](hanko_pki::Signer::is_ready) is the token's readiness (present,
//! logged in) *and* the pool's breaker (`breaker.rs`): after
//! [`UNREADY_AFTER_FAILURES`](crate::UNREADY_AFTER_FAILURES) requests in a row end in a
//! failure of the key or the device (timeout, device lost, device error, bad signature,
//! key unavailable; not bad input, not busy), the pool reports itself not ready for
//! `max(2 × call_timeout, 5 s)`, then ready again ("half-open") so that a little traffic
//! probes the device; a success closes the breaker at once, a failure re-opens it. This
//! is what takes a node whose token *hangs* out of a load balancer's rotation: a hung
//! token is still present and logged in, only the outcomes of its requests show that it
//! cannot sign. Metrics `hanko_hsm_breaker_open` and `hanko_hsm_breaker_openings_total`,
//! a warning when it opens, an info line when it closes.
//!
//! The breaker drives readiness only: **requests are still served while it is open**.
//! Each one is already bounded by its deadline, so serving it costs at most
//! `call_timeout` and a worker (replaced if stuck). Refusing instead would need a probe of
//! its own to learn that the device is back, and would turn a device that recovered a
//! moment ago into errors for the rest of the cool-down. Clients that ignore readiness (no
//! load balancer, a single node) get tokens again as soon as the device answers, and that
//! first success is what closes the breaker. Only answered requests count: not refusals
//! that make no attempt on the token (queue full, token not ready, pool closed), and not a
//! late signature from a call the watchdog already answered `Timeout` for.
//!
//! # What this does not do
//! It does not cancel a PKCS#11 call (PKCS#11 has no working cancellation); it abandons
//! the thread. It does not retry across requests or re-queue: a request gets at most two
//! attempts, within its own deadline.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use hanko_pki::{BoxFuture, HashAlgorithm, KeyType, SignError, SignErrorKind, SignatureAlgorithm};
use tokio::sync::oneshot;

use crate::breaker::{self, Breaker, Transition};
use crate::error::{Error, function_name, rv_name};
use crate::metrics_names as m;
use crate::module::ModuleState;
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
    /// Submission time + `call_timeout`.
    deadline: Instant,
}

/// A worker's job in flight, watched by the watchdog.
#[derive(Default)]
struct InFlight {
    /// When the worker took the job (for abandonment).
    since: Option<Instant>,
    /// The job's deadline (for answering `Timeout`).
    deadline: Option<Instant>,
    /// Taken by whoever answers first: the worker or the watchdog.
    reply: Option<Reply>,
    /// Set by the watchdog when it gave up on this worker.
    abandoned: bool,
}

struct WorkerSlot {
    id: usize,
    inflight: Mutex<InFlight>,
}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// The kinds in a fixed order, for the counters.
const KINDS: [SignErrorKind; 7] = [
    SignErrorKind::BadInput,
    SignErrorKind::KeyUnavailable,
    SignErrorKind::Busy,
    SignErrorKind::DeviceLost,
    SignErrorKind::Timeout,
    SignErrorKind::BadSignature,
    SignErrorKind::Device,
];

fn kind_index(k: SignErrorKind) -> usize {
    KINDS
        .iter()
        .position(|x| *x == k)
        .unwrap_or(KINDS.len() - 1)
}

#[derive(Default)]
struct Counters {
    signatures: AtomicU64,
    retries: AtomicU64,
    retries_succeeded: AtomicU64,
    verify_failures: AtomicU64,
    abandoned_workers: AtomicU64,
    deadline_expired: AtomicU64,
    refused: AtomicU64,
    breaker_openings: AtomicU64,
    errors: [AtomicU64; KINDS.len()],
    failed_attempts: [AtomicU64; KINDS.len()],
}

/// What a signing pool has done since it started (see [`HsmSigner::stats`]).
///
/// Every request is counted exactly once, in `signatures` or in `errors`. Attempts are
/// counted separately: a request makes one attempt on the token, or two when the first
/// failed and was retried. So, unless a deadline passed while an attempt was running,
/// `total_errors()` = `total_failed_attempts() - retries + refused + deadline_expired`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Requests answered with a signature.
    pub signatures: u64,
    /// Requests answered with an error, by kind (only kinds that occurred).
    pub errors: Vec<(SignErrorKind, u64)>,
    /// Attempts on the token that failed, by kind, including those that were retried
    /// (only kinds that occurred).
    pub failed_attempts: Vec<(SignErrorKind, u64)>,
    /// Second attempts made.
    pub retries: u64,
    /// Second attempts that produced a (verified, if configured) signature.
    pub retries_succeeded: u64,
    /// Signatures withheld by verify-after-sign (also among `failed_attempts` as
    /// `BadSignature`).
    pub verify_failures: u64,
    /// Workers given up on because a job ran past `call_timeout`.
    pub abandoned_workers: u64,
    /// Requests answered `Timeout` by the watchdog (queued or in flight).
    pub deadline_expired: u64,
    /// Requests answered with an error without an attempt on the token: queue full,
    /// token not ready (recovering), pool closed.
    pub refused: u64,
    /// Times the readiness breaker opened (see the module docs), re-openings after a
    /// failed probe included.
    pub breaker_openings: u64,
}

impl PoolStats {
    /// Requests answered with an error of `kind`.
    pub fn errors_of(&self, kind: SignErrorKind) -> u64 {
        self.errors
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// Failed attempts of `kind`.
    pub fn failed_attempts_of(&self, kind: SignErrorKind) -> u64 {
        self.failed_attempts
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests answered with an error, all kinds.
    pub fn total_errors(&self) -> u64 {
        self.errors.iter().map(|(_, n)| n).sum()
    }

    /// Failed attempts, all kinds.
    pub fn total_failed_attempts(&self) -> u64 {
        self.failed_attempts.iter().map(|(_, n)| n).sum()
    }
}

fn by_kind(counters: &[AtomicU64; KINDS.len()]) -> Vec<(SignErrorKind, u64)> {
    KINDS
        .iter()
        .zip(counters)
        .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

struct Shared {
    hsm: Arc<HsmInner>,
    key: KeyRef,
    cfg: PoolConfig,
    queue: Mutex<Queue>,
    job_ready: Condvar,
    workers: Mutex<Vec<Arc<WorkerSlot>>>,
    next_id: AtomicUsize,
    /// Abandoned workers whose call has not returned yet.
    abandoned_live: AtomicUsize,
    closed: AtomicBool,
    /// The module generation under which the key was last found (`u64::MAX`: never).
    /// A key missing from a session of that same generation has vanished.
    found_generation: AtomicU64,
    counters: Counters,
    /// Readiness after failures in a row (see the module docs).
    breaker: Breaker,
}

impl Shared {
    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self, e: &Error) -> SignError {
        sign_error(e, &self.hsm.label, &self.key.label)
    }

    /// Counts a request's outcome (metrics, stats, log).
    fn count<T>(&self, result: &Result<T, SignError>) {
        match result {
            Ok(_) => {
                self.counters.signatures.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(m::SIGNATURES, "key" => self.key.label.clone()).increment(1);
            }
            Err(se) => {
                self.counters.errors[kind_index(se.kind())].fetch_add(1, Ordering::Relaxed);
                metrics::counter!(m::ERRORS, "key" => self.key.label.clone(),
                    "kind" => se.kind().as_str())
                .increment(1);
                match se.kind() {
                    SignErrorKind::Busy | SignErrorKind::DeviceLost => {
                        tracing::debug!(key = %self.key.label, error = %se, "signing refused")
                    }
                    // Once per request: a line each would flood the log under a fault.
                    // Counted above; the breaker logs when it opens and closes, and the
                    // server logs failures at a bounded rate.
                    _ => tracing::debug!(key = %self.key.label, error = %se, "signing failed"),
                }
            }
        }
    }

    /// Answers a job (whoever holds its reply does this, exactly once).
    fn answer(&self, reply: Reply, result: Result<Vec<u8>, SignError>) {
        self.count(&result);
        // Before the reply: a caller that saw its answer sees the readiness it caused.
        self.track_breaker(&result);
        let _ = reply.send(result);
    }

    /// Feeds an answered job's outcome to the breaker; logs and counts what changed.
    fn track_breaker(&self, result: &Result<Vec<u8>, SignError>) {
        let key = &self.key.label;
        let (transition, error) = match result {
            Ok(_) => (self.breaker.record_success(), None),
            Err(se) if breaker::counts(se.kind()) => {
                (self.breaker.record_failure(Instant::now()), Some(se))
            }
            Err(_) => return,
        };
        let cool_down_ms = self.breaker.cool_down().as_millis();
        match transition {
            Transition::None => {}
            Transition::Opened { failures } => {
                self.opened_breaker();
                tracing::warn!(key = %key, failures, cool_down_ms, last_error = %error.map(ToString::to_string).unwrap_or_default(),
                    "signing failed {failures} times in a row; key reported not ready \
                     (requests are still served and probe the device)");
            }
            Transition::Reopened => {
                self.opened_breaker();
                tracing::warn!(key = %key, cool_down_ms, last_error = %error.map(ToString::to_string).unwrap_or_default(),
                    "signing still fails after the cool-down; key reported not ready again");
            }
            Transition::Closed => {
                metrics::gauge!(m::BREAKER_OPEN, "key" => key.clone()).set(0.0);
                tracing::info!(key = %key, "a signature succeeded; key reported ready again");
            }
        }
    }

    fn opened_breaker(&self) {
        self.counters
            .breaker_openings
            .fetch_add(1, Ordering::Relaxed);
        metrics::counter!(m::BREAKER_OPENINGS, "key" => self.key.label.clone()).increment(1);
        metrics::gauge!(m::BREAKER_OPEN, "key" => self.key.label.clone()).set(1.0);
    }

    /// An error for a request that gets no attempt on the token.
    fn refuse(&self, e: &Error) -> SignError {
        let se = self.error(e);
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        self.count::<()>(&Err(se.clone()));
        se
    }
}

/// A pool of signing workers for one key; implements [`hanko_pki::Signer`].
///
/// Dropping it stops the workers once their current job is done (their sessions are
/// closed), fails the jobs still queued with `PoolClosed`, and stops the watchdog.
pub struct HsmSigner {
    shared: Arc<Shared>,
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

/// `now + d`, saturating far in the future for absurd durations.
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

impl HsmSigner {
    pub(crate) fn start(
        hsm: Arc<HsmInner>,
        key: KeyRef,
        cfg: PoolConfig,
        found_generation: u64,
    ) -> Result<Self, Error> {
        let cool_down = breaker::cool_down(cfg.call_timeout);
        let shared = Arc::new(Shared {
            hsm,
            key,
            queue: Mutex::new(Queue {
                jobs: VecDeque::with_capacity(cfg.queue_depth.min(4096)),
                closed: false,
            }),
            cfg,
            job_ready: Condvar::new(),
            workers: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(0),
            abandoned_live: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            found_generation: AtomicU64::new(found_generation),
            counters: Counters::default(),
            breaker: Breaker::new(breaker::UNREADY_AFTER_FAILURES, cool_down, Instant::now()),
        });
        // From here on, an early return drops `signer`, which stops what was started.
        let signer = HsmSigner { shared };
        let shared = &signer.shared;
        metrics::gauge!(m::BREAKER_OPEN, "key" => shared.key.label.clone()).set(0.0);
        for _ in 0..shared.cfg.workers {
            spawn_worker(shared)?;
        }
        let watched = shared.clone();
        std::thread::Builder::new()
            .name(format!("hanko-hsm-watchdog-{}", shared.key.label))
            .spawn(move || watchdog(watched))
            .map_err(|e| Error::Config(format!("cannot start the watchdog thread: {e}")))?;
        tracing::info!(token = %shared.hsm.label, key = %shared.key.label, alg = %shared.key.alg,
            workers = shared.cfg.workers, queue = shared.cfg.queue_depth,
            verify_after_sign = shared.cfg.verify_after_sign, "signing pool started");
        Ok(signer)
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

    /// Requests queued for a worker and not yet taken by one (in-flight calls are not
    /// counted). A cheap look at how much work is waiting: the issuance log uses it to
    /// decide whether holding a batch open can idle the signer (`hanko_store::Upstream`).
    pub fn backlog(&self) -> usize {
        self.shared.lock_queue().jobs.len()
    }

    /// What the pool has done so far: requests served and failed by kind, failed
    /// attempts, retries, verify-after-sign failures, abandoned workers. Cheap (atomic
    /// loads); for tests, soak runs and diagnostics. Metrics carry the same counts.
    pub fn stats(&self) -> PoolStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PoolStats {
            signatures: get(&c.signatures),
            errors: by_kind(&c.errors),
            failed_attempts: by_kind(&c.failed_attempts),
            retries: get(&c.retries),
            retries_succeeded: get(&c.retries_succeeded),
            verify_failures: get(&c.verify_failures),
            abandoned_workers: get(&c.abandoned_workers),
            deadline_expired: get(&c.deadline_expired),
            refused: get(&c.refused),
            breaker_openings: get(&c.breaker_openings),
        }
    }

    async fn sign_inner(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let sh = &self.shared;
        if !sh.hsm.is_ready() {
            return Err(sh.refuse(&Error::NotReady(sh.hsm.label.clone())));
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            message: message.to_vec(),
            data: block_to_sign(sh.key.alg, message),
            reply,
            deadline: deadline_after(sh.cfg.call_timeout),
        };
        {
            let mut q = sh.lock_queue();
            if q.closed {
                drop(q);
                return Err(sh.refuse(&Error::PoolClosed(sh.key.label.clone())));
            }
            if q.jobs.len() >= sh.cfg.queue_depth {
                drop(q);
                return Err(sh.refuse(&Error::Busy(sh.key.label.clone())));
            }
            q.jobs.push_back(job);
        }
        sh.job_ready.notify_one();
        match answer.await {
            Ok(result) => result, // counted by whoever answered
            Err(_) => Err(sh.refuse(&Error::PoolClosed(sh.key.label.clone()))),
        }
    }
}

impl Drop for HsmSigner {
    fn drop(&mut self) {
        let sh = &self.shared;
        sh.closed.store(true, Ordering::Release);
        let queued: Vec<Job> = {
            let mut q = sh.lock_queue();
            q.closed = true;
            q.jobs.drain(..).collect()
        };
        drop(queued); // their callers see PoolClosed
        sh.job_ready.notify_all();
        sh.hsm.release_key(&sh.key.label);
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

    /// The token is ready and the breaker is not open (see the module docs).
    fn is_ready(&self) -> bool {
        self.shared.hsm.is_ready() && self.shared.breaker.is_ready(Instant::now())
    }

    fn not_ready_reason(&self) -> Option<String> {
        if !self.shared.hsm.is_ready() {
            return Some("the token is not reachable (recovering)".to_owned());
        }
        let (failures, left) = self.shared.breaker.open_for(Instant::now())?;
        Some(format!(
            "{failures} signatures in a row failed (timeouts or device errors);              probing the token again in {} s",
            left.as_secs().max(1)
        ))
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
        if let Some(job) = q.jobs.pop_front() {
            return Some(job);
        }
        q = sh.job_ready.wait(q).unwrap_or_else(|p| p.into_inner());
    }
}

fn lock_inflight(slot: &WorkerSlot) -> MutexGuard<'_, InFlight> {
    slot.inflight.lock().unwrap_or_else(|p| p.into_inner())
}

fn worker(sh: Arc<Shared>, slot: Arc<WorkerSlot>) {
    let mut ws: Option<WorkerSession> = None;
    tracing::debug!(key = %sh.key.label, worker = slot.id, "signing worker started");
    while let Some(job) = next_job(&sh) {
        let Job {
            message,
            data,
            reply,
            deadline,
        } = job;
        if reply.is_closed() {
            continue; // the caller went away
        }
        if !sh.hsm.is_ready() {
            let _ = reply.send(Err(sh.refuse(&Error::NotReady(sh.hsm.label.clone()))));
            continue;
        }
        {
            let mut f = lock_inflight(&slot);
            f.since = Some(Instant::now());
            f.deadline = Some(deadline);
            f.reply = Some(reply);
            f.abandoned = false;
        }
        let result = process(&sh, &mut ws, &message, &data, deadline);
        let (reply, abandoned) = {
            let mut f = lock_inflight(&slot);
            f.since = None;
            f.deadline = None;
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
    message: &[u8],
    data: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, Error> {
    let (first, epoch) = match attempt(sh, ws, message, data) {
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
        match attempt(sh, ws, message, data) {
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
    message: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, (Error, u64)> {
    let r = sign_once(sh, ws, message, data);
    if let Err((e, _)) = &r {
        sh.counters.failed_attempts[kind_index(e.kind())].fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// Verify-after-sign, if configured.
fn check_signature(sh: &Shared, message: &[u8], sig: Vec<u8>) -> Result<Vec<u8>, Error> {
    if !sh.cfg.verify_after_sign {
        return Ok(sig);
    }
    match hanko_pki::verify::verify(&sh.key.spki, sh.key.alg, message, &sig) {
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
    message: &[u8],
    data: &[u8],
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
    let result = sign_in_session(sh, &state, ws, epoch, message, data);
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
    let slot = sh.hsm.slot(state)?;
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
                epoch,
            })
        }
        Err(e) => {
            let _ = session.close();
            Err(e)
        }
    }
}

fn sign_in_session(
    sh: &Shared,
    state: &ModuleState,
    ws: &mut Option<WorkerSession>,
    epoch: u64,
    message: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    let token = sh.hsm.label.as_str();
    let w = match ws {
        Some(w) => w,
        None => ws.insert(open_session(sh, state, epoch)?),
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
                w.key = key;
                signed = w.session.sign(&mech, key, data);
            }
            Err(Error::KeyNotFound { .. }) => {
                return Err(Error::KeyVanished {
                    token: token.to_owned(),
                    key: sh.key.label.clone(),
                    rv,
                });
            }
            Err(e) => return Err(e),
        }
    }
    let raw = signed.map_err(|e| Error::from_cryptoki(e, token))?;
    let sig = if matches!(sh.key.alg, SignatureAlgorithm::Ecdsa(_)) {
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
    check_signature(sh, message, sig)
}

fn watchdog(sh: Arc<Shared>) {
    let tick = (sh.cfg.call_timeout / 8).clamp(Duration::from_millis(1), Duration::from_millis(50));
    while !sh.closed.load(Ordering::Acquire) {
        std::thread::sleep(tick);
        let now = Instant::now();
        // Requests still queued at their deadline: no worker got to them in time.
        let expired: Vec<Job> = {
            let mut q = sh.lock_queue();
            let mut out = Vec::new();
            while q.jobs.front().is_some_and(|j| j.deadline <= now) {
                out.extend(q.jobs.pop_front());
            }
            out
        };
        for job in expired {
            sh.counters.deadline_expired.fetch_add(1, Ordering::Relaxed);
            let e = Error::QueueTimeout {
                key: sh.key.label.clone(),
                timeout_ms: sh.cfg.call_timeout.as_millis(),
            };
            sh.answer(job.reply, Err(sh.error(&e)));
        }
        // Requests in flight at their deadline, and workers stuck past `call_timeout`.
        let mut late = Vec::new();
        let mut stuck = Vec::new();
        {
            let mut workers = sh.workers.lock().unwrap_or_else(|p| p.into_inner());
            workers.retain(|w| {
                let mut f = lock_inflight(w);
                if f.deadline.is_some_and(|d| d <= now)
                    && let Some(reply) = f.reply.take()
                {
                    late.push(reply);
                }
                let hung = f
                    .since
                    .is_some_and(|s| now.saturating_duration_since(s) > sh.cfg.call_timeout);
                if hung && !f.abandoned {
                    f.abandoned = true;
                    stuck.push(w.id);
                    false
                } else {
                    true
                }
            });
        }
        for reply in late {
            sh.counters.deadline_expired.fetch_add(1, Ordering::Relaxed);
            let e = Error::Timeout {
                key: sh.key.label.clone(),
                timeout_ms: sh.cfg.call_timeout.as_millis(),
            };
            sh.answer(reply, Err(sh.error(&e)));
        }
        for id in stuck {
            sh.counters
                .abandoned_workers
                .fetch_add(1, Ordering::Relaxed);
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
