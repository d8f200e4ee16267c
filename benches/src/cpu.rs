//! Where the CPU went during a measurement, from `/proc`: the server's, this process's
//! (the load generator) and everything else on the machine, as shares of `nproc` × wall
//! time, so that a row measured beside other work can be marked NOISY.

use std::time::Instant;

/// CPU seconds used during the load, as shares of the machine (`nproc` × wall time).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuSplit {
    pub(crate) server: f64,
    pub(crate) generator: f64,
    pub(crate) other: f64,
}

impl CpuSplit {
    /// The mean of splits measured over intervals of the same length (0 for none).
    pub(crate) fn mean(parts: &[CpuSplit]) -> CpuSplit {
        let n = parts.len().max(1) as f64;
        CpuSplit {
            server: parts.iter().map(|p| p.server).sum::<f64>() / n,
            generator: parts.iter().map(|p| p.generator).sum::<f64>() / n,
            other: parts.iter().map(|p| p.other).sum::<f64>() / n,
        }
    }
}

/// Clock ticks of the server, of this process and of the whole machine.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuTimes {
    pub(crate) server: u64,
    pub(crate) me: u64,
    pub(crate) busy: u64,
    pub(crate) at: Option<Instant>,
}

/// Linux reports `/proc` times in USER_HZ, which is 100 on every architecture Rust
/// supports for Linux userspace.
const TICKS_PER_SECOND: f64 = 100.0;

impl CpuTimes {
    pub(crate) fn sample(server: Option<u32>) -> CpuTimes {
        CpuTimes {
            server: server.and_then(|p| proc_ticks(&p.to_string())).unwrap_or(0),
            me: proc_ticks("self").unwrap_or(0),
            busy: machine_busy_ticks().unwrap_or(0),
            at: Some(Instant::now()),
        }
    }

    pub(crate) fn split(a: &CpuTimes, b: &CpuTimes, ncpu: usize) -> CpuSplit {
        let wall = match (a.at, b.at) {
            (Some(x), Some(y)) => y.duration_since(x).as_secs_f64(),
            _ => 0.0,
        };
        let cap = wall * ncpu as f64;
        if cap <= 0.0 {
            return CpuSplit::default();
        }
        let secs = |x: u64, y: u64| y.saturating_sub(x) as f64 / TICKS_PER_SECOND;
        let server = secs(a.server, b.server);
        let me = secs(a.me, b.me);
        let busy = secs(a.busy, b.busy);
        CpuSplit {
            server: server / cap,
            generator: me / cap,
            other: (busy - server - me).max(0.0) / cap,
        }
    }
}

/// utime + stime of a process (all its threads).
fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm field: f[0] is field 3 (state); utime is field 14, stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// All non-idle ticks of the machine (first line of /proc/stat, without idle and iowait).
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    Some(v.iter().sum::<u64>() - v[3] - v[4])
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), as printed in the report and
/// recorded in RESULTS.md.
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let v: Vec<&str> = text.split_whitespace().take(3).collect();
    (v.len() == 3).then(|| v.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_of_splits_is_per_share() {
        let split = |server, generator, other| CpuSplit {
            server,
            generator,
            other,
        };
        let m = CpuSplit::mean(&[split(0.9, 0.02, 0.0), split(0.7, 0.04, 0.1)]);
        assert!((m.server - 0.8).abs() < 1e-9);
        assert!((m.generator - 0.03).abs() < 1e-9);
        assert!((m.other - 0.05).abs() < 1e-9);
        assert_eq!(CpuSplit::mean(&[]).server, 0.0);
    }
}
