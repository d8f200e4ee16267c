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
//! # Layout
//! This file holds the pool's shared state, the [`HsmSigner`] handle and the breaker's
//! bookkeeping; `queue.rs` the jobs and their lanes' queue; `digest.rs` signing of
//! digests the caller computed; `worker.rs` the worker threads (one retry on a fresh
//! session, device loss), `watchdog.rs` the deadlines and abandoned workers,
//! `mechanism.rs` what each algorithm asks of PKCS#11, `stats.rs` the counters behind
//! [`PoolStats`].
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

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hanko_pki::{
    BoxFuture, DigestSignAlgorithm, KeyType, SignError, SignErrorKind, SignatureAlgorithm,
};
use tokio::sync::oneshot;

use crate::PoolConfig;
use crate::breaker::{self, Breaker, Transition};
use crate::error::Error;
use crate::metrics_names as m;
use crate::token::HsmInner;

mod digest;
mod mechanism;
mod queue;
mod stats;
mod watchdog;
mod worker;

pub(crate) use mechanism::{block_to_sign, mechanism, sign_mechanism};
use queue::{Answer, Check, InFlight, Item, Job, Queue, Reply, WorkerSlot};
pub use stats::PoolStats;
use stats::{Counters, Timing, by_kind, kind_index};

/// The key a pool signs with.
#[derive(Debug, Clone)]
pub(crate) struct KeyRef {
    pub(crate) label: String,
    pub(crate) key_type: KeyType,
    pub(crate) alg: SignatureAlgorithm,
    pub(crate) spki: Vec<u8>,
    /// `spki` parsed once for verify-after-sign (parsing costs more than verifying);
    /// `None` if hanko-pki cannot parse it, and then every check reports why.
    pub(crate) verifier: Option<Arc<hanko_pki::verify::VerifyingKey>>,
    /// The digest-signing algorithms the key's type allows and the token offers a
    /// mechanism for (asked once, when the pool starts).
    pub(crate) digest_algs: Vec<DigestSignAlgorithm>,
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
    /// The per-signature metrics, registered once (no label allocation per job).
    timing: Timing,
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
                self.timing.signatures.increment(1);
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
    fn answer(&self, reply: Reply, result: Answer) {
        self.count(&result);
        // Before the reply: a caller that saw its answer sees the readiness it caused.
        self.track_breaker(&result);
        let _ = reply.send(result);
    }

    /// Feeds an answered job's outcome to the breaker; logs and counts what changed.
    fn track_breaker(&self, result: &Answer) {
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
        let timing = Timing::register(&key.label);
        let shared = Arc::new(Shared {
            hsm,
            key,
            queue: Mutex::new(Queue::new(&cfg)),
            cfg,
            job_ready: Condvar::new(),
            workers: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(0),
            abandoned_live: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            found_generation: AtomicU64::new(found_generation),
            counters: Counters::default(),
            timing,
            breaker: Breaker::new(breaker::UNREADY_AFTER_FAILURES, cool_down, Instant::now()),
        });
        // From here on, an early return drops `signer`, which stops what was started.
        let signer = HsmSigner { shared };
        let shared = &signer.shared;
        metrics::gauge!(m::BREAKER_OPEN, "key" => shared.key.label.clone()).set(0.0);
        for _ in 0..shared.cfg.workers {
            worker::spawn_worker(shared)?;
        }
        let watched = shared.clone();
        std::thread::Builder::new()
            .name(format!("hanko-hsm-watchdog-{}", shared.key.label))
            .spawn(move || watchdog::watchdog(watched))
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

    /// The digest-signing schemes [`sign_digest`](hanko_pki::Signer::sign_digest) takes
    /// for this key: those its type allows and the token offers a mechanism for (asked
    /// once, when the pool started). A TLS server offers the handshake schemes these
    /// make possible.
    pub fn digest_algorithms(&self) -> &[DigestSignAlgorithm] {
        &self.shared.key.digest_algs
    }

    /// The pool's settings.
    pub fn pool_config(&self) -> &PoolConfig {
        &self.shared.cfg
    }

    /// Requests queued for a worker and not yet taken by one (in-flight calls are not
    /// counted). A cheap look at how much work is waiting: the issuance log uses it to
    /// decide whether holding a batch open can idle the signer (`hanko_store::Upstream`).
    pub fn backlog(&self) -> usize {
        self.shared.lock_queue().len()
    }

    /// How long one call on the token takes lately (a moving average over ~16 calls);
    /// zero before the first. With [`HsmSigner::backlog`] and the workers it says how long
    /// the queued requests will wait.
    pub fn recent_call_time(&self) -> Duration {
        Duration::from_nanos(self.shared.counters.call_ns.load(Ordering::Relaxed))
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
        let alg = self.shared.key.alg;
        let item = Item {
            alg,
            data: mechanism::block_to_sign(alg, message),
            check: Check::Message(message.to_vec()),
        };
        self.submit_one(item).await
    }

    /// One item in one job; its signature.
    async fn submit_one(&self, item: Item) -> Result<Vec<u8>, SignError> {
        match self.submit(vec![item])?.pop() {
            Some(answer) => self.await_answer(answer).await,
            // `submit` returns one receiver per item.
            None => Err(SignError::new(
                SignErrorKind::Device,
                "the signing pool queued no job",
            )),
        }
    }

    /// Queues one job per item, all or none: `Busy` if the queue has no room for all of
    /// them. Returns the receivers in the order of `items`.
    fn submit(&self, items: Vec<Item>) -> Result<Vec<oneshot::Receiver<Answer>>, SignError> {
        let sh = &self.shared;
        if !sh.hsm.is_ready() {
            return Err(sh.refuse(&Error::NotReady(sh.hsm.label.clone())));
        }
        let deadline = deadline_after(sh.cfg.call_timeout);
        let lane = crate::lane::current();
        let mut answers = Vec::with_capacity(items.len());
        {
            let mut q = sh.lock_queue();
            if q.closed {
                drop(q);
                return Err(sh.refuse(&Error::PoolClosed(sh.key.label.clone())));
            }
            let jobs = &mut q.lanes[lane.index()];
            if jobs.len() + items.len() > sh.cfg.queue_depth {
                // Jobs whose caller went away (a client that hung up while its signature
                // waited) would be skipped by the worker anyway; they must not make the
                // queue look full to callers still waiting (only on this full path).
                let before = jobs.len();
                jobs.retain(|j| !j.reply.is_closed());
                let dropped = before - jobs.len();
                if dropped > 0 {
                    metrics::counter!(m::ORPHANED_JOBS, "key" => sh.key.label.clone())
                        .increment(dropped as u64);
                }
            }
            if jobs.len() + items.len() > sh.cfg.queue_depth {
                drop(q);
                return Err(sh.refuse(&Error::Busy(sh.key.label.clone())));
            }
            for item in items {
                let (reply, answer) = oneshot::channel();
                jobs.push_back(Job {
                    item,
                    reply,
                    deadline,
                    lane,
                    queued: Instant::now(),
                });
                answers.push(answer);
            }
        }
        sh.timing.lane_jobs[lane.index()].increment(answers.len() as u64);
        if answers.len() == 1 {
            sh.job_ready.notify_one();
        } else {
            sh.job_ready.notify_all();
        }
        Ok(answers)
    }

    async fn await_answer(&self, answer: oneshot::Receiver<Answer>) -> Answer {
        match answer.await {
            Ok(result) => result, // counted by whoever answered
            Err(_) => Err(self
                .shared
                .refuse(&Error::PoolClosed(self.shared.key.label.clone()))),
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
            q.lanes.iter_mut().flat_map(|jobs| jobs.drain(..)).collect()
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

    /// Any scheme the key's type allows and the token offers a mechanism for, whatever
    /// the pool's configured algorithm; verified after signing like `sign`.
    fn sign_digest<'a>(
        &'a self,
        alg: DigestSignAlgorithm,
        digest: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, SignError>> {
        Box::pin(self.sign_digest_inner(alg, digest))
    }

    /// One job per digest, queued together, so the batch spreads over every worker (see
    /// the module docs, "Batches of digests").
    fn sign_digests<'a>(
        &'a self,
        alg: DigestSignAlgorithm,
        digests: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Vec<u8>>, SignError>> {
        Box::pin(self.sign_digests_inner(alg, digests))
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
        Some(breaker_open_reason(failures, left))
    }
}

/// The `/readyz` reason while the breaker is open.
fn breaker_open_reason(failures: u32, left: Duration) -> String {
    format!(
        "{failures} signatures in a row failed (timeouts or device errors); \
         probing the token again in {} s",
        left.as_secs().max(1)
    )
}

/// The `SignError` callers see: for PKCS#11 errors the context names token and key, e.g.
/// `C_Sign: CKR_DEVICE_REMOVED (token "hanko-dev", key "tsa-rsa3072")`.
fn sign_error(e: &Error, token: &str, key: &str) -> SignError {
    let context = match e {
        Error::Pkcs11 { function, rv, .. } => {
            format!("{function}: {rv} (token \"{token}\", key \"{key}\")")
        }
        other => other.to_string(),
    };
    SignError::new(e.kind(), context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readyz_reason_reads_as_one_sentence() {
        let r = breaker_open_reason(5, Duration::from_millis(300));
        assert_eq!(
            r,
            "5 signatures in a row failed (timeouts or device errors); \
             probing the token again in 1 s"
        );
        assert!(!r.contains("  "), "a run of spaces in {r:?}");
    }
}
