//! [`ChronyClock`]: the clock's quality as chrony measures it (`chronyc -c tracking`,
//! polled by a thread of its own).
//!
//! Why chrony: in containers and VMs whose host keeps the time the kernel reports itself
//! unsynchronised (see [`super::kernel`]), so the kernel source
//! refuses to issue there, correctly. chrony measures the offset to its reference
//! itself, so an operator running chronyd (or one on the host, reachable with
//! `chronyc -h`) gets a real figure.
//!
//! The chrony figure: estimated error = |system time offset| + root dispersion +
//! root delay / 2 (chrony's "root distance" plus the offset the clock still has to be
//! slewed by). It is reported as both the estimated and the maximum error. The clock is
//! synchronised unless the leap status is "Not synchronised", the command fails or times
//! out, its output does not parse, or the last good reading is older than three poll
//! intervals (the poller died or hangs): all of these fail closed.
//!
//! What it does not do: no hysteresis of its own (the guard's settle period applies after
//! clock steps), no NTP/NTS queries (a later source), and it never sets the clock: wall
//! time is the system clock, which chronyd disciplines.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hanko_tsa::{ClockSource, ClockStatus};

/// The error reported while the source knows nothing (the kernel's figure for an
/// unsynchronised clock, so that logs read alike).
const UNKNOWN_ERROR: Duration = Duration::from_secs(16);

/// Settings of [`ChronyClock`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChronyConfig {
    /// The `chronyc` program (`clock.chronyc`; a bare name is looked up in `PATH`).
    pub chronyc: PathBuf,
    /// Time between two readings (`clock.poll_ms`).
    pub poll: Duration,
    /// Longest a `chronyc` run may take before it is killed and counted as a failure.
    pub timeout: Duration,
}
/// chrony's leap status (the last field of the tracking report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeapStatus {
    /// "Normal".
    Normal,
    /// "Insert second": a leap second will be inserted at the end of the day.
    InsertSecond,
    /// "Delete second".
    DeleteSecond,
    /// "Not synchronised".
    NotSynchronised,
}

impl LeapStatus {
    const ALL: [LeapStatus; 4] = [
        LeapStatus::Normal,
        LeapStatus::InsertSecond,
        LeapStatus::DeleteSecond,
        LeapStatus::NotSynchronised,
    ];

    /// chrony's name for it, as in the tracking report and in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            LeapStatus::Normal => "Normal",
            LeapStatus::InsertSecond => "Insert second",
            LeapStatus::DeleteSecond => "Delete second",
            LeapStatus::NotSynchronised => "Not synchronised",
        }
    }
}

impl std::fmt::Display for LeapStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of `chronyc -c tracking` Hanko uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Tracking {
    /// Reference ID (hex) and name/address, for logs.
    pub reference: String,
    /// Stratum.
    pub stratum: u32,
    /// System time offset in seconds (positive: the clock is slow).
    pub system_offset: f64,
    /// Root delay in seconds.
    pub root_delay: f64,
    /// Root dispersion in seconds.
    pub root_dispersion: f64,
    /// Leap status.
    pub leap: LeapStatus,
}

/// Parses one line of `chronyc -c tracking`. chrony's CSV fields, in order (client.c,
/// `process_cmd_tracking`): reference ID, name/address, stratum, reference time, system
/// time offset, last offset, RMS offset, frequency, residual frequency, skew, root
/// delay, root dispersion, update interval, leap status.
pub fn parse_tracking(output: &str) -> Result<Tracking, String> {
    let line = output
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or("empty output")?;
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 14 {
        return Err(format!(
            "expected 14 comma-separated fields, got {}: {line:?}",
            f.len()
        ));
    }
    let num = |i: usize, what: &str| -> Result<f64, String> {
        f[i].trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{what} is not a number: {:?}", f[i]))
    };
    let system_offset = num(4, "system time offset")?;
    let root_delay = num(10, "root delay")?;
    let root_dispersion = num(11, "root dispersion")?;
    if root_delay < 0.0 || root_dispersion < 0.0 {
        return Err("negative root delay or dispersion".into());
    }
    let text = f[13].trim();
    let leap = LeapStatus::ALL
        .into_iter()
        .find(|l| l.as_str() == text)
        .ok_or_else(|| format!("unknown leap status {text:?}"))?;
    Ok(Tracking {
        reference: format!("{} ({})", f[0].trim(), f[1].trim()),
        stratum: f[2]
            .trim()
            .parse()
            .map_err(|_| format!("bad stratum {:?}", f[2]))?,
        system_offset,
        root_delay,
        root_dispersion,
        leap,
    })
}

impl Tracking {
    /// |system time offset| + root dispersion + root delay / 2.
    pub fn estimated_error(&self) -> Duration {
        let secs = self.system_offset.abs() + self.root_dispersion + self.root_delay / 2.0;
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }

    /// The reading as a clock status.
    pub fn status(&self) -> ClockStatus {
        if self.leap == LeapStatus::NotSynchronised {
            return unknown();
        }
        let e = self.estimated_error();
        ClockStatus {
            synchronised: true,
            est_error: e,
            max_error: e,
        }
    }
}

fn unknown() -> ClockStatus {
    ClockStatus {
        synchronised: false,
        est_error: UNKNOWN_ERROR,
        max_error: UNKNOWN_ERROR,
    }
}

/// What the poller last learnt.
#[derive(Debug)]
struct Reading {
    status: ClockStatus,
    /// When the last reading (good or bad) was taken.
    at: Instant,
    /// The last failure, to log each distinct failure once.
    failure: Option<String>,
    leap: Option<LeapStatus>,
}

#[derive(Debug)]
struct Shared {
    config: ChronyConfig,
    reading: Mutex<Reading>,
    stop: AtomicBool,
}

/// A [`ClockSource`] over chrony's tracking report. Wall time is the system clock.
#[derive(Debug)]
pub struct ChronyClock {
    shared: Arc<Shared>,
    poller: Option<JoinHandle<()>>,
}

impl ChronyClock {
    /// Takes a first reading now (so that start-up logs say where the clock stands) and
    /// starts the poller thread.
    pub fn start(config: ChronyConfig) -> Self {
        tracing::info!(
            chronyc = %config.chronyc.display(),
            poll = ?config.poll,
            "clock source: chrony (chronyc -c tracking)"
        );
        let shared = Arc::new(Shared {
            config,
            reading: Mutex::new(Reading {
                status: unknown(),
                at: Instant::now(),
                failure: None,
                leap: None,
            }),
            stop: AtomicBool::new(false),
        });
        shared.poll_once();
        let s = shared.clone();
        let poller = std::thread::Builder::new()
            .name("hanko-chrony".into())
            .spawn(move || {
                while !s.stop.load(Ordering::Relaxed) {
                    std::thread::park_timeout(s.config.poll);
                    if s.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    s.poll_once();
                }
            });
        let poller = match poller {
            Ok(h) => Some(h),
            Err(e) => {
                // Without a poller the reading goes stale and the clock is refused.
                tracing::error!(error = %e, "cannot start the chrony poller thread");
                None
            }
        };
        Self { shared, poller }
    }
}

impl Drop for ChronyClock {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(h) = &self.poller {
            h.thread().unpark();
        }
    }
}

impl ClockSource for ChronyClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn status(&self) -> ClockStatus {
        let r = self
            .shared
            .reading
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let max_age = self.shared.config.poll * 3 + self.shared.config.timeout;
        if r.at.elapsed() > max_age {
            return unknown();
        }
        r.status
    }
}

impl Shared {
    fn poll_once(&self) {
        let result = run_chronyc(&self.config).and_then(|out| parse_tracking(&out));
        let mut r = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        r.at = Instant::now();
        match result {
            Ok(t) => {
                if r.failure.take().is_some() {
                    tracing::info!(reference = %t.reference, "chronyc answers again");
                }
                if r.leap != Some(t.leap) {
                    match t.leap {
                        LeapStatus::InsertSecond | LeapStatus::DeleteSecond => tracing::warn!(
                            leap = %t.leap,
                            "chrony announces a leap second at the end of the UTC day"
                        ),
                        LeapStatus::NotSynchronised => tracing::error!(
                            reference = %t.reference,
                            "chrony reports the clock not synchronised"
                        ),
                        LeapStatus::Normal => tracing::info!(
                            reference = %t.reference,
                            stratum = t.stratum,
                            error = ?t.estimated_error(),
                            "chrony reports the clock synchronised"
                        ),
                    }
                    r.leap = Some(t.leap);
                }
                r.status = t.status();
            }
            Err(e) => {
                if r.failure.as_deref() != Some(e.as_str()) {
                    tracing::error!(error = %e, "chronyc failed: clock treated as unsynchronised");
                    r.failure = Some(e);
                }
                r.leap = None;
                r.status = unknown();
            }
        }
    }
}

/// Runs `chronyc -c tracking` with a deadline; stdout on success.
fn run_chronyc(config: &ChronyConfig) -> Result<String, String> {
    let mut cmd = Command::new(&config.chronyc);
    // The PIN left the environment at start (entry.rs); a child never gets it anyway.
    for var in hanko_hsm::Pin::ENV_VARS {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .args(["-c", "tracking"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", config.chronyc.display()))?;
    let deadline = Instant::now() + config.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("chronyc took longer than {:?}", config.timeout));
            }
            Err(e) => return Err(format!("waiting for chronyc: {e}")),
        }
    };
    // The report is one short line: it fits the pipe buffer, so reading after the exit
    // cannot deadlock.
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        use std::io::Read as _;
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        use std::io::Read as _;
        let _ = s.read_to_string(&mut err);
    }
    if !status.success() {
        let msg = format!("{} {}", out.trim(), err.trim());
        return Err(format!("chronyc exited with {status}: {}", msg.trim()));
    }
    Ok(out)
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    // A real `chronyc -c tracking` line (chrony 4.x) and its unsynchronised variant.
    const SYNCED: &str = "A29FC87B,162.159.200.123,4,1700000000.123456789,-0.000012345,0.000001234,0.000020000,-11.123,-0.001,0.050,0.010000000,0.002000000,64.5,Normal\n";
    const UNSYNCED: &str = "00000000,0.0.0.0,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n";

    #[test]
    fn parses_a_synchronised_report() {
        let t = parse_tracking(SYNCED).unwrap();
        assert_eq!(t.stratum, 4);
        assert_eq!(t.leap, LeapStatus::Normal);
        // 12.345 us + 2 ms + 10 ms / 2
        let e = t.estimated_error();
        assert!((e.as_secs_f64() - 0.007_012_345).abs() < 1e-9, "{e:?}");
        let s = t.status();
        assert!(s.synchronised);
        assert_eq!(s.est_error, s.max_error);
    }

    #[test]
    fn not_synchronised_and_garbage_fail_closed() {
        assert!(!parse_tracking(UNSYNCED).unwrap().status().synchronised);
        for bad in [
            "",
            "506 Cannot talk to daemon",
            "A,b,1,0,x,0,0,0,0,0,0,0,0,Normal",
            "A,b,1,0,0,0,0,0,0,0,-1,0,0,Normal",
            "A,b,1,0,0,0,0,0,0,0,0,0,0,Sideways",
            "A,b,1,0,NaN,0,0,0,0,0,0,0,0,Normal",
        ] {
            assert!(parse_tracking(bad).is_err(), "{bad:?}");
        }
        let leap = SYNCED.replace("Normal", "Insert second");
        assert!(parse_tracking(&leap).unwrap().status().synchronised);
    }

    #[test]
    fn a_missing_chronyc_is_unsynchronised() {
        let clock = ChronyClock::start(ChronyConfig {
            chronyc: "/nonexistent/chronyc".into(),
            poll: Duration::from_millis(50),
            timeout: Duration::from_millis(500),
        });
        assert!(!clock.status().synchronised);
    }

    #[test]
    fn a_script_drives_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("chronyc");
        let line = dir.path().join("line");
        std::fs::write(&script, format!("#!/bin/sh\ncat {}\n", line.display())).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(&line, SYNCED).unwrap();
        let clock = ChronyClock::start(ChronyConfig {
            chronyc: script,
            poll: Duration::from_millis(20),
            timeout: Duration::from_millis(2000),
        });
        // Wait rather than assert at once: a fork elsewhere in this test process can hold
        // the fresh script open for a moment (ETXTBSY); the next poll then succeeds.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !clock.status().synchronised {
            assert!(Instant::now() < deadline, "never synchronised");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::write(&line, UNSYNCED).unwrap();
        while clock.status().synchronised {
            assert!(Instant::now() < deadline, "poller never saw the change");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
