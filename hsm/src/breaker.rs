//! The readiness breaker of a signing pool: after [`UNREADY_AFTER_FAILURES`] requests in a
//! row fail in a way that says "this key cannot sign now", the pool reports itself not
//! ready for a cool-down, so that `/readyz` answers 503 and a load balancer sends the
//! traffic elsewhere.
//!
//! Why: a token that *hangs* stays present and logged in, so the token's own readiness
//! never drops; every request just runs into its deadline. Only the outcomes of the
//! requests show that the key is unusable.
//!
//! ```text
//!              N failures in a row                cool-down over
//!   closed ───────────────────────────> open ──────────────────────> half-open
//!   (ready)  <─────────────────────────  (not ready)                  (ready: probes)
//!      ^            any success            ^   one failure                 │
//!      └───────────────────────────────────┼───────────────────────────────┤ success
//!                                          └───────────────────────────────┘ failure
//! ```
//!
//! The breaker only drives readiness: requests are still served while it is open (see the
//! pool's module docs). It is a few atomics; a success in the closed state costs two
//! relaxed loads and no write, so the signing hot path does not contend on it.
//!
//! The clock is passed in (`now`), so the state machine is tested with made-up instants.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hanko_pki::SignErrorKind;

/// Requests in a row that must fail (with a kind `counts` accepts) before the pool
/// reports itself not ready.
///
/// Three: one failure is noise and two can be a pair of unlucky requests, but three
/// requests in a row, each already given its full deadline (and, for device errors, a
/// retry on a fresh session), mean the key is not usable now. A constant rather than a
/// `PoolConfig` field for now: hanko-bench builds `PoolConfig` with struct literals, so a
/// new field would break that crate.
pub const UNREADY_AFTER_FAILURES: u32 = 3;

/// The shortest cool-down (see [`cool_down`]).
pub const MIN_COOL_DOWN: Duration = Duration::from_secs(5);

/// How long the pool reports itself not ready after the breaker opens:
/// `max(2 × call_timeout, 5 s)`. Long enough for a load balancer's health check to see
/// it (they poll every few seconds) and for the requests in flight to finish or time out;
/// short enough that a device that comes back by itself is probed again soon.
pub fn cool_down(call_timeout: Duration) -> Duration {
    call_timeout.saturating_mul(2).max(MIN_COOL_DOWN)
}

/// Whether a request that failed with `kind` counts towards opening the breaker.
///
/// Counted: failures of the key or the device, which the next request would meet too.
/// * `Timeout`: the device did not answer within the deadline (hung or overloaded token).
/// * `DeviceLost`: the token or its sessions are gone (the token's own readiness usually
///   drops as well; counting it costs nothing and covers a loss that is not reported).
/// * `Device`: CKR_DEVICE_ERROR, CKR_GENERAL_ERROR, ... A request only ends in it after a
///   second attempt on a fresh session failed too, so one-off faults never get here.
/// * `BadSignature`: two signatures in a row failed verify-after-sign. Nothing this key
///   signs can be handed out, and a token that keeps signing wrongly should leave
///   rotation (it may be under a fault attack).
/// * `KeyUnavailable`: the PIN stopped working or the key cannot sign; every request
///   will fail the same way until an operator acts.
///
/// Not counted: `BadInput` (the caller's bug; the key is fine) and `Busy` (load, not
/// health: admission control sheds it, and taking a loaded node out of rotation would
/// make it flap). Refusals without an attempt (queue full, token not ready, pool closed)
/// never reach the breaker either.
pub fn counts(kind: SignErrorKind) -> bool {
    !matches!(kind, SignErrorKind::BadInput | SignErrorKind::Busy)
}

/// What a `record_*` call changed; the caller logs it and updates the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Nothing to report.
    None,
    /// Closed -> open: this failure was the `failures`-th in a row.
    Opened {
        /// Failures in a row, this one included.
        failures: u32,
    },
    /// Half-open -> open: the first request after the cool-down failed.
    Reopened,
    /// Open or half-open -> closed: a request succeeded.
    Closed,
}

/// The breaker's state (see the module docs).
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    /// Instants are stored as nanoseconds after this one.
    base: Instant,
    /// Counted failures since the last success.
    failures: AtomicU32,
    /// Opened and not closed by a success since (open or half-open).
    tripped: AtomicBool,
    /// Not ready before this (nanoseconds after `base`); meaningful while `tripped`.
    open_until: AtomicU64,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failures in a row (at least 1) and
    /// stays open for `cool_down`; `base` must not be later than any `now` given to it.
    pub fn new(threshold: u32, cool_down: Duration, base: Instant) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            base,
            failures: AtomicU32::new(0),
            tripped: AtomicBool::new(false),
            open_until: AtomicU64::new(0),
        }
    }

    /// The cool-down this breaker stays open for.
    pub fn cool_down(&self) -> Duration {
        self.cool_down
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn until(&self, now: Instant) -> u64 {
        let cool = u64::try_from(self.cool_down.as_nanos()).unwrap_or(u64::MAX);
        self.nanos(now).saturating_add(cool)
    }

    /// A request was answered with a signature: the count restarts, and an open or
    /// half-open breaker closes.
    pub fn record_success(&self) -> Transition {
        // Loads first: in the common case (closed, no failures) nothing is written.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.tripped.load(Ordering::Relaxed) && self.tripped.swap(false, Ordering::AcqRel) {
            Transition::Closed
        } else {
            Transition::None
        }
    }

    /// A request failed in a way that [`counts`]: opens the breaker at the threshold,
    /// re-opens a half-open one, and keeps an open one open for a cool-down from now
    /// (a key that keeps failing stays not ready).
    pub fn record_failure(&self, now: Instant) -> Transition {
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let until = self.until(now);
        if self.tripped.load(Ordering::Acquire) {
            // Only the failure that moves `open_until` past `now` reports the re-opening.
            let before = self.open_until.fetch_max(until, Ordering::AcqRel);
            return if before <= self.nanos(now) {
                Transition::Reopened
            } else {
                Transition::None
            };
        }
        if failures < self.threshold {
            return Transition::None;
        }
        // `open_until` before `tripped`: whoever sees `tripped` sees the new deadline.
        self.open_until.fetch_max(until, Ordering::AcqRel);
        match self
            .tripped
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Transition::Opened { failures },
            Err(_) => Transition::None, // another failure opened it just now
        }
    }

    /// Whether the key counts as ready at `now`: closed, or open with the cool-down over
    /// (half-open, so that a little traffic probes the device again).
    pub fn is_ready(&self, now: Instant) -> bool {
        !self.tripped.load(Ordering::Acquire)
            || self.nanos(now) >= self.open_until.load(Ordering::Acquire)
    }

    /// While not ready at `now`: the failures in a row so far and how long until the
    /// breaker half-opens; `None` when ready.
    pub fn open_for(&self, now: Instant) -> Option<(u32, Duration)> {
        if self.is_ready(now) {
            return None;
        }
        let left = self
            .open_until
            .load(Ordering::Acquire)
            .saturating_sub(self.nanos(now));
        Some((
            self.failures.load(Ordering::Relaxed),
            Duration::from_nanos(left),
        ))
    }

    /// Opened and not yet closed by a success (open or half-open).
    #[cfg(test)]
    pub fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(5);

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn breaker() -> (Breaker, Instant) {
        let base = Instant::now();
        (Breaker::new(3, COOL, base), base)
    }

    #[test]
    fn opens_after_three_failures_in_a_row_only() {
        let (b, t) = breaker();
        assert!(b.is_ready(t));
        assert_eq!(b.record_failure(at(t, 10)), Transition::None);
        assert_eq!(b.record_failure(at(t, 20)), Transition::None);
        assert!(b.is_ready(at(t, 20)), "two failures are not enough");
        // A success in between restarts the count.
        assert_eq!(b.record_success(), Transition::None);
        assert_eq!(b.record_failure(at(t, 30)), Transition::None);
        assert_eq!(b.record_failure(at(t, 40)), Transition::None);
        assert!(b.is_ready(at(t, 40)));
        assert_eq!(
            b.record_failure(at(t, 50)),
            Transition::Opened { failures: 3 }
        );
        assert!(!b.is_ready(at(t, 50)));
        assert!(b.is_tripped());
    }

    #[test]
    fn not_ready_for_the_cool_down_then_half_open() {
        let (b, t) = breaker();
        for ms in [0, 1, 2] {
            b.record_failure(at(t, ms));
        }
        assert!(!b.is_ready(at(t, 2)));
        assert!(!b.is_ready(at(t, 5001)));
        assert_eq!(b.open_for(at(t, 1002)), Some((3, Duration::from_secs(4))));
        assert_eq!(b.open_for(at(t, 5002)), None);
        // Half-open: ready again, so traffic probes the device; still tripped.
        assert!(b.is_ready(at(t, 5002)));
        assert!(b.is_ready(at(t, 60_000)));
        assert!(b.is_tripped());
    }

    #[test]
    fn a_success_closes_at_once_open_or_half_open() {
        let (b, t) = breaker();
        for ms in [0, 1, 2] {
            b.record_failure(at(t, ms));
        }
        assert!(!b.is_ready(at(t, 100)));
        assert_eq!(b.record_success(), Transition::Closed);
        assert!(b.is_ready(at(t, 100)));
        assert!(!b.is_tripped());
        assert_eq!(b.record_success(), Transition::None, "closes only once");
        // Closed again: it takes three fresh failures to open it.
        assert_eq!(b.record_failure(at(t, 200)), Transition::None);
        assert!(b.is_ready(at(t, 200)));

        let (b, t) = breaker();
        for ms in [0, 1, 2] {
            b.record_failure(at(t, ms));
        }
        assert!(b.is_ready(at(t, 6000)), "half-open");
        assert_eq!(b.record_success(), Transition::Closed);
        assert!(b.is_ready(at(t, 6000)));
    }

    #[test]
    fn one_failure_when_half_open_reopens_for_a_full_cool_down() {
        let (b, t) = breaker();
        for ms in [0, 1, 2] {
            b.record_failure(at(t, ms));
        }
        assert!(b.is_ready(at(t, 6000)));
        assert_eq!(b.record_failure(at(t, 6000)), Transition::Reopened);
        assert!(!b.is_ready(at(t, 6000)));
        assert!(!b.is_ready(at(t, 10_999)));
        assert!(b.is_ready(at(t, 11_000)));
        // A second failure of the same probe wave is not another re-opening.
        assert_eq!(b.record_failure(at(t, 6001)), Transition::None);
    }

    #[test]
    fn failures_while_open_keep_it_open() {
        let (b, t) = breaker();
        for ms in [0, 1, 2] {
            b.record_failure(at(t, ms));
        }
        // Requests are still served while open; a hung device keeps failing them.
        assert_eq!(b.record_failure(at(t, 4000)), Transition::None);
        assert!(!b.is_ready(at(t, 5002)), "extended by the failure at 4 s");
        assert!(!b.is_ready(at(t, 8999)));
        assert!(b.is_ready(at(t, 9000)));
        // An older instant never shortens the window.
        assert_eq!(b.record_failure(at(t, 3000)), Transition::None);
        assert!(b.is_ready(at(t, 9000)));
    }

    #[test]
    fn threshold_one_and_huge_cool_downs() {
        let base = Instant::now();
        let b = Breaker::new(0, Duration::MAX, base);
        assert_eq!(b.record_failure(base), Transition::Opened { failures: 1 });
        assert!(!b.is_ready(base + Duration::from_secs(365 * 24 * 3600)));
        assert_eq!(cool_down(Duration::MAX), Duration::MAX);
        assert_eq!(cool_down(Duration::from_secs(1)), MIN_COOL_DOWN);
        assert_eq!(cool_down(Duration::from_secs(10)), Duration::from_secs(20));
    }

    #[test]
    fn which_kinds_count() {
        use SignErrorKind::*;
        for k in [Timeout, DeviceLost, Device, BadSignature, KeyUnavailable] {
            assert!(counts(k), "{k:?}");
        }
        for k in [BadInput, Busy] {
            assert!(!counts(k), "{k:?}");
        }
    }

    #[test]
    fn concurrent_failures_open_it_once() {
        let (b, t) = breaker();
        let opened = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..100)
                            .filter(|_| matches!(b.record_failure(t), Transition::Opened { .. }))
                            .count()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0)).sum::<usize>()
        });
        assert_eq!(opened, 1);
        assert!(!b.is_ready(t));
    }
}
