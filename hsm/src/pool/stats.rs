//! The pool's counters and the [`PoolStats`] snapshot read from them.
//!
//! Plain atomics, bumped where the outcome is known (the answer, a failed attempt, a
//! retry, the watchdog) and read without locks by `HsmSigner::stats`; the same events
//! also go to the metrics named in `metrics_names.rs`, through the handles of
//! [`Timing`] for those recorded on every job.

use std::sync::atomic::{AtomicU64, Ordering};

use hanko_pki::SignErrorKind;

use crate::lane::Lane;
use crate::metrics_names as m;

/// The kinds in a fixed order, for the counters.
pub(super) const KINDS: [SignErrorKind; 8] = SignErrorKind::ALL;

pub(super) fn kind_index(k: SignErrorKind) -> usize {
    KINDS
        .iter()
        .position(|x| *x == k)
        .unwrap_or(KINDS.len() - 1)
}

/// The metrics recorded for every job, registered when the pool starts (the server
/// installs its exporter before it opens the token): each job then costs a few atomic
/// operations instead of a label allocation and a registry lookup per metric.
pub(super) struct Timing {
    pub(super) signatures: metrics::Counter,
    /// Queued jobs, per lane (indexed by `Lane::index`).
    pub(super) lane_jobs: [metrics::Counter; 2],
    pub(super) queue_wait: metrics::Histogram,
    pub(super) call: metrics::Histogram,
}

impl Timing {
    pub(super) fn register(key: &str) -> Timing {
        let lane = |l: Lane| metrics::counter!(m::LANE_JOBS, "key" => key.to_owned(), "lane" => l.as_str());
        Timing {
            signatures: metrics::counter!(m::SIGNATURES, "key" => key.to_owned()),
            lane_jobs: [lane(Lane::Interactive), lane(Lane::Bulk)],
            queue_wait: metrics::histogram!(m::QUEUE_WAIT, "key" => key.to_owned()),
            call: metrics::histogram!(m::CALL, "key" => key.to_owned()),
        }
    }
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) signatures: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) retries_succeeded: AtomicU64,
    pub(super) verify_failures: AtomicU64,
    pub(super) abandoned_workers: AtomicU64,
    pub(super) deadline_expired: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) breaker_openings: AtomicU64,
    pub(super) errors: [AtomicU64; KINDS.len()],
    pub(super) failed_attempts: [AtomicU64; KINDS.len()],
    /// A moving average of one call's time on the token, in nanoseconds (0 before the
    /// first call): each call moves it 1/16 of the way to its own time.
    pub(super) call_ns: AtomicU64,
}

impl Counters {
    /// Folds one call's time into [`Counters::call_ns`]. Workers racing here may lose an
    /// update; an estimate does not need them all.
    pub(super) fn record_call(&self, took: std::time::Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let old = self.call_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            ns
        } else {
            old - old / 16 + ns / 16
        };
        self.call_ns.store(new, Ordering::Relaxed);
    }
}

/// What a signing pool has done since it started (see [`crate::HsmSigner::stats`]).
///
/// Every request is counted exactly once, in `signatures` or in `errors` (a batch of
/// digests is one request per digest, unless it is refused whole before it is queued).
/// Attempts are
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

pub(super) fn by_kind(counters: &[AtomicU64; KINDS.len()]) -> Vec<(SignErrorKind, u64)> {
    KINDS
        .iter()
        .zip(counters)
        .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect()
}
