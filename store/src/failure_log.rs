//! How the writer reports failing batches without flooding the log.
//!
//! While the database is down (disk full, failover, a trigger refusing writes), every
//! batch fails, and under load that is hundreds of batches a second. One ERROR line per
//! batch buries everything else and costs I/O exactly when the machine is in trouble. The
//! rule, as for the server's other per-request events: **log the change of state** (the
//! first failure, and the recovery), and while it lasts **one reminder per period** with
//! how many failed batches it stands for. Every batch and record is still counted in
//! `hanko_log_append_errors_total` and [`crate::WriterStats`], where rates belong.
//!
//! ```text
//!   ok ──failure──> ERROR "failing" ──failures within period──> counted
//!                      │                └─ period over ──> ERROR "still failing (n more)"
//!                      └──success──> WARN "writes succeed again after n failed batches"
//! ```

use std::time::{Duration, Instant};

/// How often a continuing failure is logged again.
pub(crate) const REMIND_EVERY: Duration = Duration::from_secs(30);

/// What to log about one batch's outcome.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// Nothing (a failure within the period, or a success while healthy).
    Quiet,
    /// The first failed batch after healthy operation.
    StartedFailing,
    /// The failure goes on; `suppressed` failed batches were not logged since the last line.
    StillFailing { suppressed: u64, since: Duration },
    /// A batch committed after `failed` failed batches over `lasted`.
    Recovered { failed: u64, lasted: Duration },
}

/// The writer's memory of its failure state (one per writer, under the stats' lock).
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    failing: Option<Failing>,
}

#[derive(Debug)]
struct Failing {
    since: Instant,
    last_logged: Instant,
    failed: u64,
    suppressed: u64,
}

impl FailureLog {
    /// A batch failed at `now`.
    pub(crate) fn failed(&mut self, now: Instant) -> Report {
        match &mut self.failing {
            None => {
                self.failing = Some(Failing {
                    since: now,
                    last_logged: now,
                    failed: 1,
                    suppressed: 0,
                });
                Report::StartedFailing
            }
            Some(f) => {
                f.failed += 1;
                if now.saturating_duration_since(f.last_logged) >= REMIND_EVERY {
                    f.last_logged = now;
                    Report::StillFailing {
                        suppressed: std::mem::take(&mut f.suppressed),
                        since: now.saturating_duration_since(f.since),
                    }
                } else {
                    f.suppressed += 1;
                    Report::Quiet
                }
            }
        }
    }

    /// A batch committed at `now`.
    pub(crate) fn committed(&mut self, now: Instant) -> Report {
        match self.failing.take() {
            None => Report::Quiet,
            Some(f) => Report::Recovered {
                failed: f.failed,
                lasted: now.saturating_duration_since(f.since),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthy_writer_logs_nothing() {
        let mut log = FailureLog::default();
        let t = Instant::now();
        assert_eq!(log.committed(t), Report::Quiet);
        assert_eq!(log.committed(t + Duration::from_secs(1)), Report::Quiet);
    }

    #[test]
    fn a_burst_of_failures_logs_once_then_reminds_per_period_then_recovers() {
        let mut log = FailureLog::default();
        let t = Instant::now();
        assert_eq!(log.failed(t), Report::StartedFailing);
        for i in 1..=500u64 {
            // 500 batches within the first period: all counted, none logged.
            assert_eq!(log.failed(t + Duration::from_millis(i * 10)), Report::Quiet);
        }
        assert_eq!(
            log.failed(t + REMIND_EVERY),
            Report::StillFailing {
                suppressed: 500,
                since: REMIND_EVERY
            }
        );
        assert_eq!(
            log.failed(t + REMIND_EVERY + Duration::from_millis(1)),
            Report::Quiet
        );
        assert_eq!(
            log.committed(t + REMIND_EVERY * 2),
            Report::Recovered {
                failed: 503,
                lasted: REMIND_EVERY * 2
            }
        );
        // Healthy again: the next failure is a new state change, logged at once.
        assert_eq!(log.committed(t + REMIND_EVERY * 3), Report::Quiet);
        assert_eq!(log.failed(t + REMIND_EVERY * 3), Report::StartedFailing);
    }
}
