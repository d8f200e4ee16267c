//! The clock guard: no token unless the clock is synchronised, within the declared
//! accuracy, and has not jumped backwards (CONFORMANCE A.6, C.35-C.38, C.43).
//!
//! ```text
//!   ClockSource (in the server: kernel adjtimex, chrony)   ClockGuard
//!     now()       wall time                    --->   backward jump? (vs. monotonic)
//!     status()    synchronised, est/max error  --->   error <= accuracy?
//!     monotonic() Instant                      --->   settled after a jump?
//!                                                  -> Ok(time) | Err(ClockProblem)
//! ```
//!
//! Decisions (see also [`crate::manual::_03_defaults`]):
//! * Both the estimated and the maximum error must be within the declared accuracy. The
//!   kernel's `maxerror` is the bound it guarantees; a TSA that declares an accuracy
//!   promises a bound, so it is the figure that matters. `esterror` is checked as well
//!   for sources that report only an estimate.
//! * A backward jump is the wall clock moving back against the monotonic clock by more
//!   than `jump_tolerance` between two readings. Linux slews both clocks alike, so only
//!   steps (and an inserted leap second, which is seen as a one-second step back and
//!   logged) move them apart. After a jump the guard refuses until the source has
//!   reported good status continuously for `settle`; any problem in that time restarts
//!   the wait. Forward jumps are logged, not refused: a suspended VM resumes with its
//!   wall clock ahead of the monotonic clock, and whether the new time is right is the
//!   status check's business.
//! * `dev_mode` turns every refusal into a warning (logged at most every 10 s) and the
//!   time is used anyway; the state and the `hanko_tsa_clock_ok` gauge still say 0.
//!
//! The guard logs every loss (error) and recovery (info) of the clock with `tracing`
//! and keeps the gauge `hanko_tsa_clock_ok` at 1 or 0.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What a clock source says about its own quality.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockStatus {
    /// Whether the source is synchronised to its reference (UTC(k)).
    pub synchronised: bool,
    /// Estimated error.
    pub est_error: Duration,
    /// Maximum error (the bound).
    pub max_error: Duration,
}

/// A source of wall time and of its quality.
pub trait ClockSource: Send + Sync + fmt::Debug {
    /// Current UTC time.
    fn now(&self) -> SystemTime;
    /// Current quality.
    fn status(&self) -> ClockStatus;
    /// A monotonic instant read together with [`ClockSource::now`], the baseline for
    /// jump detection. Real sources keep the default.
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

/// Why the guard refuses the clock.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClockProblem {
    /// The source reports it is not synchronised.
    #[error("clock not synchronised")]
    Unsynchronised,
    /// The reported error exceeds the declared accuracy.
    #[error("clock error exceeds the declared accuracy")]
    OutOfAccuracy {
        /// Estimated error reported.
        est_error: Duration,
        /// Maximum error reported.
        max_error: Duration,
        /// Declared accuracy.
        accuracy: Duration,
    },
    /// The wall clock just moved back against the monotonic clock.
    #[error("clock stepped back")]
    BackwardJump {
        /// How far back.
        by: Duration,
    },
    /// After a jump, the clock has not yet been good for the settle period.
    #[error("clock settling after a step")]
    Settling {
        /// Time still to wait if the status stays good.
        remaining: Duration,
    },
    /// The wall clock reads before 1970.
    #[error("clock before 1970")]
    BeforeEpoch,
}

/// Settings of a [`ClockGuard`].
#[derive(Clone, Copy, Debug)]
pub struct ClockGuardConfig {
    /// Declared accuracy (the same value as [`crate::TsaConfig::accuracy`]).
    pub accuracy: Duration,
    /// Backward movement tolerated between two readings (default 100 ms, at most the
    /// accuracy).
    pub jump_tolerance: Duration,
    /// How long the status must stay good after a jump before issuing resumes
    /// (default 60 s).
    pub settle: Duration,
    /// Development mode: refusals become warnings.
    pub dev_mode: bool,
}

impl Default for ClockGuardConfig {
    fn default() -> Self {
        Self {
            accuracy: Duration::from_secs(1),
            jump_tolerance: Duration::from_millis(100),
            settle: Duration::from_secs(60),
            dev_mode: false,
        }
    }
}

impl ClockGuardConfig {
    /// The defaults for a declared `accuracy`: jump tolerance 100 ms or the accuracy if
    /// smaller, settle 60 s, production mode.
    pub fn for_accuracy(accuracy: Duration) -> Self {
        Self {
            accuracy,
            jump_tolerance: accuracy.min(Duration::from_millis(100)),
            ..Self::default()
        }
    }
}

/// A snapshot of the guard, for `/readyz` and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockReport {
    /// Whether tokens may be issued on this clock (false in dev mode when overridden).
    pub ok: bool,
    /// The problem, when not ok.
    pub problem: Option<ClockProblem>,
    /// The source's last status.
    pub status: ClockStatus,
    /// Whether dev mode overrides refusals.
    pub dev_mode: bool,
    /// The source's wall time at this evaluation.
    pub now: SystemTime,
}

#[derive(Debug, Default)]
struct GuardState {
    /// Last (monotonic, wall) reading.
    last: Option<(Instant, SystemTime)>,
    /// Since when the guard waits for the clock to settle after a jump.
    settling_since: Option<Instant>,
    /// Whether the last evaluation was ok (None before the first).
    was_ok: Option<bool>,
    /// Last time dev mode warned.
    last_dev_warning: Option<Instant>,
    /// Changes of the verdict not yet taken ([`ClockGuard::take_transitions`]).
    transitions: VecDeque<ClockTransition>,
}

/// Most changes of the verdict kept until taken; older ones are dropped.
const MAX_TRANSITIONS: usize = 64;

/// A change of the guard's verdict: the clock lost (`problem` set) or usable again.
/// Kept until [`ClockGuard::take_transitions`], so that a loss shorter than the taker's
/// polling interval is not missed (the server records each as an audit event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockTransition {
    /// Why the clock is not usable now; `None` when it became usable again.
    pub problem: Option<ClockProblem>,
    /// The source's status at the change.
    pub status: ClockStatus,
    /// The source's wall time at the change.
    pub at: SystemTime,
}

/// Checks a [`ClockSource`] before every token. See the module docs.
#[derive(Debug)]
pub struct ClockGuard {
    source: Arc<dyn ClockSource>,
    config: ClockGuardConfig,
    state: Mutex<GuardState>,
}

impl ClockGuard {
    /// A guard over `source`.
    pub fn new(source: Arc<dyn ClockSource>, config: ClockGuardConfig) -> Self {
        if config.dev_mode {
            tracing::warn!(
                "clock guard in DEV MODE: tokens are issued even when the clock is not \
                 synchronised or out of accuracy; never use this in production"
            );
        }
        Self {
            source,
            config,
            state: Mutex::new(GuardState::default()),
        }
    }

    /// The guard's settings.
    pub fn config(&self) -> &ClockGuardConfig {
        &self.config
    }

    /// The time to put into a token, or why there is none.
    pub fn now(&self) -> Result<SystemTime, ClockProblem> {
        let (wall, _, problem) = self.evaluate();
        match problem {
            None => Ok(wall),
            Some(p) if self.config.dev_mode => {
                let mut state = self.lock();
                let mono = self.source.monotonic();
                let due = state
                    .last_dev_warning
                    .is_none_or(|t| mono.saturating_duration_since(t) >= Duration::from_secs(10));
                if due {
                    state.last_dev_warning = Some(mono);
                    tracing::warn!(problem = %p, "DEV MODE: issuing on a clock that would be refused");
                }
                Ok(wall)
            }
            Some(p) => Err(p),
        }
    }

    /// The changes of the verdict since the last call, oldest first (at most 64; a first
    /// evaluation that finds the clock usable is no change). One consumer is meant to
    /// take them (the server's audit events).
    pub fn take_transitions(&self) -> Vec<ClockTransition> {
        self.lock().transitions.drain(..).collect()
    }

    /// Evaluates the clock without issuing anything (readiness probes).
    pub fn report(&self) -> ClockReport {
        let (now, status, problem) = self.evaluate();
        ClockReport {
            ok: problem.is_none(),
            problem,
            status,
            dev_mode: self.config.dev_mode,
            now,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GuardState> {
        // A panic while holding this lock cannot leave the state inconsistent in a way
        // that matters (worst case: one more settle period), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn evaluate(&self) -> (SystemTime, ClockStatus, Option<ClockProblem>) {
        let mut state = self.lock();
        let mono = self.source.monotonic();
        let wall = self.source.now();
        let status = self.source.status();

        let mut jump = None;
        if let Some((m0, w0)) = state.last {
            let expected = w0 + mono.saturating_duration_since(m0);
            if let Ok(back) = expected.duration_since(wall)
                && back > self.config.jump_tolerance
            {
                jump = Some(back);
            } else if let Ok(fwd) = wall.duration_since(expected)
                && fwd > self.config.jump_tolerance
            {
                tracing::warn!(forward = ?fwd, "clock stepped forward");
            }
        }
        state.last = Some((mono, wall));

        let status_problem = if !status.synchronised {
            Some(ClockProblem::Unsynchronised)
        } else if status.max_error > self.config.accuracy || status.est_error > self.config.accuracy
        {
            Some(ClockProblem::OutOfAccuracy {
                est_error: status.est_error,
                max_error: status.max_error,
                accuracy: self.config.accuracy,
            })
        } else if wall < UNIX_EPOCH {
            Some(ClockProblem::BeforeEpoch)
        } else {
            None
        };

        let problem = if let Some(by) = jump {
            tracing::error!(by = ?by, "clock stepped back; issuance stops until it settles");
            state.settling_since = Some(mono);
            Some(ClockProblem::BackwardJump { by })
        } else if let Some(p) = status_problem {
            if state.settling_since.is_some() {
                state.settling_since = Some(mono);
            }
            Some(p)
        } else if let Some(since) = state.settling_since {
            let waited = mono.saturating_duration_since(since);
            if waited >= self.config.settle {
                state.settling_since = None;
                None
            } else {
                Some(ClockProblem::Settling {
                    remaining: self.config.settle - waited,
                })
            }
        } else {
            None
        };

        let ok = problem.is_none();
        if state.was_ok != Some(ok) {
            match &problem {
                // In dev mode nothing is refused, so this is a warning, not an error.
                Some(p) if self.config.dev_mode => tracing::warn!(
                    problem = %p,
                    synchronised = status.synchronised,
                    est_error = ?status.est_error,
                    max_error = ?status.max_error,
                    "clock not usable: DEV MODE issues anyway; production would refuse (timeNotAvailable)"
                ),
                Some(p) => tracing::error!(
                    problem = %p,
                    synchronised = status.synchronised,
                    est_error = ?status.est_error,
                    max_error = ?status.max_error,
                    "clock lost: time-stamping refused (timeNotAvailable)"
                ),
                None => tracing::info!(
                    est_error = ?status.est_error,
                    max_error = ?status.max_error,
                    "clock ok: time-stamping enabled"
                ),
            }
            if state.was_ok.is_some() || !ok {
                if state.transitions.len() >= MAX_TRANSITIONS {
                    state.transitions.pop_front();
                }
                state.transitions.push_back(ClockTransition {
                    problem: problem.clone(),
                    status,
                    at: wall,
                });
            }
            state.was_ok = Some(ok);
        }
        metrics::gauge!("hanko_tsa_clock_ok").set(if ok { 1.0 } else { 0.0 });
        (wall, status, problem)
    }
}

/// A clock driven by hand, for tests and simulations. Never wire it into a server.
///
/// Wall and monotonic time only move when told: [`ManualClock::advance`] moves both,
/// [`ManualClock::step_back`] / [`ManualClock::step_forward`] move only the wall clock
/// (a step), [`ManualClock::set_status`] changes the reported quality.
#[doc(hidden)]
#[derive(Debug)]
pub struct ManualClock {
    inner: Mutex<ManualState>,
}

#[derive(Debug)]
struct ManualState {
    wall: SystemTime,
    mono: Instant,
    status: ClockStatus,
}

impl ManualClock {
    /// A synchronised clock at `wall` with 1 ms of error.
    pub fn new(wall: SystemTime) -> Self {
        Self {
            inner: Mutex::new(ManualState {
                wall,
                mono: Instant::now(),
                status: ClockStatus {
                    synchronised: true,
                    est_error: Duration::from_millis(1),
                    max_error: Duration::from_millis(1),
                },
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time passes: wall and monotonic clocks move by `d`.
    pub fn advance(&self, d: Duration) {
        let mut s = self.lock();
        s.wall += d;
        s.mono += d;
    }

    /// The wall clock is stepped back by `d`.
    pub fn step_back(&self, d: Duration) {
        let mut s = self.lock();
        s.wall -= d;
    }

    /// The wall clock is stepped forward by `d`.
    pub fn step_forward(&self, d: Duration) {
        let mut s = self.lock();
        s.wall += d;
    }

    /// Sets the reported status.
    pub fn set_status(&self, status: ClockStatus) {
        self.lock().status = status;
    }
}

impl ClockSource for ManualClock {
    fn now(&self) -> SystemTime {
        self.lock().wall
    }
    fn status(&self) -> ClockStatus {
        self.lock().status
    }
    fn monotonic(&self) -> Instant {
        self.lock().mono
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(dev: bool) -> (Arc<ManualClock>, ClockGuard) {
        let clock = Arc::new(ManualClock::new(
            UNIX_EPOCH + Duration::from_secs(1_750_000_000),
        ));
        let guard = ClockGuard::new(
            clock.clone(),
            ClockGuardConfig {
                accuracy: Duration::from_secs(1),
                jump_tolerance: Duration::from_millis(100),
                settle: Duration::from_secs(30),
                dev_mode: dev,
            },
        );
        (clock, guard)
    }

    fn status(sync: bool, est_ms: u64, max_ms: u64) -> ClockStatus {
        ClockStatus {
            synchronised: sync,
            est_error: Duration::from_millis(est_ms),
            max_error: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn good_clock_issues_its_time() {
        let (clock, guard) = setup(false);
        assert_eq!(guard.now(), Ok(clock.now()));
        clock.advance(Duration::from_secs(5));
        assert_eq!(guard.now(), Ok(clock.now()));
        assert!(guard.report().ok);
    }

    #[test]
    fn unsynchronised_refuses_until_synchronised() {
        let (clock, guard) = setup(false);
        // What the kernel on these machines reports: STA_UNSYNC, 16 s errors.
        clock.set_status(status(false, 16_000, 16_000));
        assert_eq!(guard.now(), Err(ClockProblem::Unsynchronised));
        assert!(!guard.report().ok);
        clock.set_status(status(true, 2, 5));
        assert!(guard.now().is_ok());
    }

    #[test]
    fn drift_beyond_accuracy_refuses() {
        let (clock, guard) = setup(false);
        clock.set_status(status(true, 10, 1001));
        assert!(matches!(
            guard.now(),
            Err(ClockProblem::OutOfAccuracy { .. })
        ));
        clock.set_status(status(true, 1001, 10));
        assert!(matches!(
            guard.now(),
            Err(ClockProblem::OutOfAccuracy { .. })
        ));
        clock.set_status(status(true, 1000, 1000));
        assert!(guard.now().is_ok(), "exactly the accuracy is within it");
    }

    #[test]
    fn backward_jump_refuses_until_settled() {
        let (clock, guard) = setup(false);
        assert!(guard.now().is_ok());
        clock.advance(Duration::from_secs(1));
        clock.step_back(Duration::from_secs(2));
        assert_eq!(
            guard.now(),
            Err(ClockProblem::BackwardJump {
                by: Duration::from_secs(2)
            })
        );
        // Status is good, but the guard keeps refusing during the settle period.
        clock.advance(Duration::from_secs(10));
        assert!(matches!(guard.now(), Err(ClockProblem::Settling { .. })));
        // A loss of sync while settling restarts the wait.
        clock.set_status(status(false, 16_000, 16_000));
        clock.advance(Duration::from_secs(15));
        assert_eq!(guard.now(), Err(ClockProblem::Unsynchronised));
        clock.set_status(status(true, 1, 1));
        clock.advance(Duration::from_secs(29));
        assert!(matches!(guard.now(), Err(ClockProblem::Settling { .. })));
        clock.advance(Duration::from_secs(1));
        assert!(guard.now().is_ok(), "recovered after 30 s of good status");
        assert!(guard.report().ok);
    }

    #[test]
    fn each_change_of_the_verdict_is_kept_until_taken() {
        let (clock, guard) = setup(false);
        assert!(guard.now().is_ok());
        assert_eq!(
            guard.take_transitions(),
            vec![],
            "a good start is no change"
        );
        // Lost and back between two takes: both kept, in order, with the status.
        clock.set_status(status(false, 16_000, 16_000));
        assert!(guard.now().is_err());
        assert!(guard.now().is_err(), "no change, nothing more kept");
        clock.set_status(status(true, 1, 1));
        assert!(guard.report().ok);
        let t = guard.take_transitions();
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(t[0].problem, Some(ClockProblem::Unsynchronised));
        assert_eq!(t[0].status, status(false, 16_000, 16_000));
        assert_eq!(
            (t[1].problem.clone(), t[1].status),
            (None, status(true, 1, 1))
        );
        assert_eq!(guard.take_transitions(), vec![]);
    }

    #[test]
    fn small_steps_and_forward_steps_are_tolerated() {
        let (clock, guard) = setup(false);
        assert!(guard.now().is_ok());
        clock.step_back(Duration::from_millis(100));
        assert!(guard.now().is_ok(), "within the tolerance");
        clock.step_forward(Duration::from_secs(3600));
        assert!(guard.now().is_ok(), "forward steps are logged only");
    }

    #[test]
    fn dev_mode_warns_but_issues() {
        let (clock, guard) = setup(true);
        clock.set_status(status(false, 16_000, 16_000));
        assert_eq!(guard.now(), Ok(clock.now()));
        let r = guard.report();
        assert!(!r.ok && r.dev_mode);
        assert_eq!(r.problem, Some(ClockProblem::Unsynchronised));
    }
}
