//! Where the time-stamp authority learns how good its clock is: the `[clock]` setting
//! (`clock.source`) turned into a [`hanko_tsa::ClockSource`], one file per source.
//!
//! ```text
//!   clock.source = "kernel"  ->  kernel::KernelClock  (adjtimex, read-only; default)
//!   clock.source = "chrony"  ->  chrony::ChronyClock: a thread runs `chronyc -c tracking`
//!                                every clock.poll_ms and keeps the last reading
//!                                    |
//!                                    v
//!                    hanko_tsa::ClockGuard (accuracy, jumps, settle) -> token or
//!                    timeNotAvailable
//! ```
//!
//! The sources live here, not in `hanko-tsa`, because reading one is I/O (a system call,
//! a child process) and the protocol core does none: it takes a [`ClockSource`] and
//! judges it. Further sources (NTP/NTS queries) get a file of their own beside these.

pub mod chrony;
pub mod kernel;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use hanko_tsa::ClockSource;

pub use chrony::{ChronyClock, ChronyConfig};
pub use kernel::KernelClock;

/// Default `clock.poll_ms`.
pub const DEFAULT_POLL: Duration = Duration::from_millis(1000);
/// Default `clock.chronyc`.
pub const DEFAULT_CHRONYC: &str = "chronyc";

/// The configured clock source, resolved from `[clock]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockSourceConfig {
    /// The kernel's NTP status (adjtimex).
    Kernel,
    /// chrony's tracking report.
    Chrony(ChronyConfig),
}

impl ClockSourceConfig {
    /// Resolves `clock.source`, `clock.chronyc` and `clock.poll_ms`.
    pub fn from_settings(
        source: Option<&str>,
        chronyc: Option<PathBuf>,
        poll_ms: Option<u64>,
    ) -> anyhow::Result<Self> {
        match source {
            None | Some("kernel") => {
                if chronyc.is_some() || poll_ms.is_some() {
                    bail!(
                        "clock.chronyc and clock.poll_ms apply to clock.source = \"chrony\" only"
                    );
                }
                Ok(Self::Kernel)
            }
            Some("chrony") => {
                let poll = Duration::from_millis(poll_ms.unwrap_or(1000));
                if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&poll) {
                    bail!("clock.poll_ms must be between 10 and 60000");
                }
                Ok(Self::Chrony(ChronyConfig {
                    chronyc: chronyc.unwrap_or_else(|| PathBuf::from(DEFAULT_CHRONYC)),
                    poll,
                    // A healthy chronyc answers in milliseconds; never let one run
                    // longer than a few polls.
                    timeout: (poll * 2).clamp(Duration::from_millis(500), Duration::from_secs(5)),
                }))
            }
            Some(other) => bail!("clock.source = \"{other}\" is not supported (kernel, chrony)"),
        }
    }

    /// `kernel` or `chrony`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Chrony(_) => "chrony",
        }
    }

    /// Starts the source (for chrony: takes a first reading, then polls in a thread).
    pub fn start(&self) -> Arc<dyn ClockSource> {
        match self {
            Self::Kernel => Arc::new(KernelClock::new()),
            Self::Chrony(c) => Arc::new(ChronyClock::start(c.clone())),
        }
    }
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn settings_resolve_strictly() {
        assert_eq!(
            ClockSourceConfig::from_settings(None, None, None).unwrap(),
            ClockSourceConfig::Kernel
        );
        assert!(ClockSourceConfig::from_settings(None, Some("x".into()), None).is_err());
        assert!(ClockSourceConfig::from_settings(Some("ntp"), None, None).is_err());
        assert!(ClockSourceConfig::from_settings(Some("chrony"), None, Some(0)).is_err());
        let c = ClockSourceConfig::from_settings(Some("chrony"), None, None).unwrap();
        let ClockSourceConfig::Chrony(c) = c else {
            panic!()
        };
        assert_eq!(c.chronyc, PathBuf::from("chronyc"));
        assert_eq!(c.poll, DEFAULT_POLL);
    }
}
