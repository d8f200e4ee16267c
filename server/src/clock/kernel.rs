//! [`KernelClock`]: wall time with the quality the kernel's NTP discipline reports
//! (`adjtimex(2)` in read-only mode).
//!
//! The kernel reports "unsynchronised" (return value `TIME_ERROR`, `STA_UNSYNC` set)
//! until an NTP daemon disciplines the clock; in many containers and VMs, including the
//! development machines, it stays that way with 16 s errors because the host keeps the
//! time. Production then refuses to issue, which is right: such deployments need a
//! different [`ClockSource`] ([`super::ChronyClock`]'s measured offset, NTS queries),
//! not a waiver.
//!
//! This is the one place in the server with `unsafe`: `libc` has no safe wrapper for
//! `adjtimex` (nor has `rustix`), so `read_adjtimex` makes the single FFI call, which
//! only reads. The crate denies `unsafe_code` and this one function allows it.

use std::time::{Duration, SystemTime};

use hanko_tsa::{ClockSource, ClockStatus};

/// The kernel's clock and NTP status.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelClock;

impl KernelClock {
    /// A kernel clock source.
    pub fn new() -> Self {
        Self
    }
}

impl ClockSource for KernelClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    #[cfg(target_os = "linux")]
    fn status(&self) -> ClockStatus {
        let (state, tx) = read_adjtimex();
        let micros = |v: libc::c_long| Duration::from_micros(u64::try_from(v).unwrap_or(u64::MAX));
        let unsync = state < 0 || state == libc::TIME_ERROR || (tx.status & libc::STA_UNSYNC) != 0;
        ClockStatus {
            synchronised: !unsync,
            est_error: micros(tx.esterror),
            max_error: micros(tx.maxerror),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn status(&self) -> ClockStatus {
        // No adjtimex: report unsynchronised, so that production refuses (fail closed).
        ClockStatus {
            synchronised: false,
            est_error: Duration::MAX,
            max_error: Duration::MAX,
        }
    }
}

/// `adjtimex(2)` with `modes == 0` (read only): the clock state it returns and the
/// `timex` it filled in.
#[cfg(target_os = "linux")]
#[allow(
    unsafe_code,
    reason = "libc has no safe adjtimex; this call only reads"
)]
fn read_adjtimex() -> (libc::c_int, libc::timex) {
    // SAFETY: `timex` is a plain C struct for which all-zero bytes are a valid value.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = 0;
    // SAFETY: with `modes == 0` adjtimex only reads the kernel's state into the struct,
    // which we own and pass by exclusive reference, valid for writes for the duration of
    // the call; the kernel keeps no pointer to it after returning.
    let state = unsafe { libc::adjtimex(&mut tx) };
    (state, tx)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_kernel_status() {
        let s = KernelClock::new().status();
        // Whatever the machine's state, an unsynchronised kernel must never be reported
        // as synchronised with small errors. On the development machines this is the
        // STA_UNSYNC / 16 s case.
        if !s.synchronised {
            eprintln!("kernel clock unsynchronised: {s:?}");
        }
        assert!(s.max_error >= s.est_error || !s.synchronised);
    }
}
