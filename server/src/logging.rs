//! Log lines that a fault or an attack cannot turn into a flood.
//!
//! Some events happen once per request: a failed signature while the token is unplugged,
//! a `/readyz` probe while the server is not ready, a request with a bad API key. Logged
//! each time, they bury the one line that matters under thousands of copies, and an
//! attacker controls how many. The rule here: **log a change of state, and a repeat at
//! most once per period with how many were left out**; count every occurrence in
//! metrics (the caller does), which is where rates belong.
//!
//! ```text
//!   event ─> LogLimiter::check ── first, or period over ──> Some(suppressed since) ─> log
//!                              └─ within the period ──────> None (counted as suppressed)
//!   state ─> StateLog::observe ── differs from the last ───> Changed { from }      ─> log
//!                              └─ same ── LogLimiter ──────> Repeated { suppressed } / None
//! ```
//!
//! Both are plain `Mutex`es held for a few instructions (never across an await), so they
//! can sit in `static`s next to the code that logs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one log line per `every`; the rest are counted.
#[derive(Debug)]
pub struct LogLimiter {
    every: Duration,
    state: Mutex<LimiterState>,
}

#[derive(Debug)]
struct LimiterState {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter allowing one line per `every`.
    pub const fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new(LimiterState {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)`: log now, and say that `n` lines were left out since the last one;
    /// `None`: stay quiet (this one is counted for the next line).
    pub fn check(&self) -> Option<u64> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                s.suppressed = s.suppressed.saturating_add(1);
                None
            }
            _ => {
                s.last = Some(now);
                Some(std::mem::take(&mut s.suppressed))
            }
        }
    }

    /// Starts a new period at once: the next [`LogLimiter::check`] logs (after a change
    /// of state, the repeats of the new state are counted from zero).
    fn reset(&self) -> u64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.last = None;
        std::mem::take(&mut s.suppressed)
    }
}

/// What [`StateLog::observe`] says about a state.
#[derive(Debug, PartialEq, Eq)]
pub enum Observed<S> {
    /// The state differs from the last one observed (`None` the first time): log it.
    Changed {
        /// The state before.
        from: Option<S>,
    },
    /// The same state again, and its period is over: log a reminder; `suppressed`
    /// observations of it were not logged since the last line.
    Repeated {
        /// Observations left out since the last line.
        suppressed: u64,
    },
}

/// Logs a state when it changes, and the same state again at most once per period.
#[derive(Debug)]
pub struct StateLog<S> {
    current: Mutex<Option<S>>,
    repeats: LogLimiter,
}

impl<S: PartialEq> StateLog<S> {
    /// A state log that repeats an unchanged state at most once per `every`.
    pub const fn new(every: Duration) -> Self {
        Self {
            current: Mutex::new(None),
            repeats: LogLimiter::new(every),
        }
    }

    /// Records `state`; `Some` when the caller should log (see [`Observed`]).
    pub fn observe(&self, state: S) -> Option<Observed<S>> {
        self.observe_at(state, Instant::now())
    }

    fn observe_at(&self, state: S, now: Instant) -> Option<Observed<S>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref() == Some(&state) {
            drop(current);
            return self
                .repeats
                .check_at(now)
                .map(|suppressed| Observed::Repeated { suppressed });
        }
        let from = current.replace(state);
        drop(current);
        let _ = self.repeats.reset();
        // The change itself opens the period of the new state.
        let _ = self.repeats.check_at(now);
        Some(Observed::Changed { from })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const PERIOD: Duration = Duration::from_secs(10);

    #[test]
    fn one_line_per_period_with_the_count_left_out() {
        let l = LogLimiter::new(PERIOD);
        let t0 = Instant::now();
        assert_eq!(l.check_at(t0), Some(0), "the first one is logged");
        for i in 1..=5 {
            assert_eq!(l.check_at(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(l.check_at(t0 + PERIOD), Some(5));
        assert_eq!(l.check_at(t0 + PERIOD + Duration::from_secs(1)), None);
        assert_eq!(l.check_at(t0 + PERIOD * 3), Some(1));
    }

    #[test]
    fn a_state_is_logged_when_it_changes_and_reminded_once_per_period() {
        let s: StateLog<&str> = StateLog::new(PERIOD);
        let t0 = Instant::now();
        let sec = Duration::from_secs(1);
        assert_eq!(
            s.observe_at("down", t0),
            Some(Observed::Changed { from: None })
        );
        for i in 1..=3 {
            assert_eq!(s.observe_at("down", t0 + sec * i), None);
        }
        assert_eq!(
            s.observe_at("down", t0 + PERIOD),
            Some(Observed::Repeated { suppressed: 3 })
        );
        assert_eq!(
            s.observe_at("up", t0 + PERIOD + sec),
            Some(Observed::Changed { from: Some("down") })
        );
        assert_eq!(s.observe_at("up", t0 + PERIOD + sec * 2), None);
        // Flapping is logged at every change: each one is news.
        assert_eq!(
            s.observe_at("down", t0 + PERIOD + sec * 3),
            Some(Observed::Changed { from: Some("up") })
        );
        assert_eq!(s.observe_at("down", t0 + PERIOD + sec * 4), None);
    }
}
