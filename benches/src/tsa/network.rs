//! `hanko-bench tsa --network-hsm MS:K`: the dev token behind pkcs11-mock acting as a
//! network HSM (issue #17): every C_Sign data call takes MS milliseconds and at most K
//! run at once, so the HSM signs at most K × 1000 / MS a second, whatever the host.
//!
//! ```text
//!   control file: delay fn=C_Sign ms=MS phase=data
//!                 capacity fn=C_Sign max=K phase=data
//!                 stats off          (a stats file write per signature would be the limit)
//!   this process (raw rate) and the server child: hsm.module = libhanko_pkcs11_mock.so,
//!   HANKO_MOCK_CONTROL = the file, HANKO_MOCK_REAL_MODULE = --module (SoftHSM)
//! ```
//!
//! The report then compares the TSA's rate with the HSM's capacity, and says how much of
//! the host the server used and how many cores it would need to reach the capacity
//! (its CPU per token × the capacity).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::devserver::set;

/// A simulated network HSM.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkHsm {
    /// Milliseconds per signature.
    pub ms: u64,
    /// Signatures in flight at once.
    pub max: u64,
}

impl NetworkHsm {
    /// Signatures a second at most.
    pub fn capacity(&self) -> f64 {
        self.max as f64 * 1000.0 / self.ms as f64
    }
}

impl std::str::FromStr for NetworkHsm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (ms, max) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not MS:K (e.g. 5:64)"))?;
        let ms: u64 = ms.parse().map_err(|_| format!("bad milliseconds {ms:?}"))?;
        let max: u64 = max.parse().map_err(|_| format!("bad capacity {max:?}"))?;
        if ms == 0 || max == 0 {
            return Err("MS and K must be at least 1".to_owned());
        }
        Ok(NetworkHsm { ms, max })
    }
}

/// Writes the control file into `dir` and points this process (and so the server it
/// starts) at it, with `real` behind the mock. Returns the module to open: `mock_so`.
///
/// Call it before any thread exists: it sets environment variables.
pub(crate) fn prepare(
    net: NetworkHsm,
    dir: &Path,
    mock_so: &Path,
    real: &Path,
) -> anyhow::Result<PathBuf> {
    let mock = std::fs::canonicalize(mock_so).with_context(|| {
        format!(
            "no pkcs11-mock at {} (build it: `cargo build --release -p hanko-pkcs11-mock`, or \
             pass --mock-so PATH)",
            mock_so.display()
        )
    })?;
    let control = dir.join("bench-network-hsm.control");
    std::fs::write(
        &control,
        format!(
            "delay fn=C_Sign ms={} phase=data\ncapacity fn=C_Sign max={} phase=data\nstats off\n",
            net.ms, net.max
        ),
    )?;
    set_env(&control, real);
    Ok(mock)
}

#[allow(
    unsafe_code,
    reason = "set_var is unsafe in edition 2024; `prepare` runs before any thread exists"
)]
fn set_env(control: &Path, real: &Path) {
    // SAFETY: called from `run` right after the data directory is prepared (child
    // processes only), before the token is opened or any runtime starts: no other thread
    // reads the environment.
    unsafe {
        std::env::set_var("HANKO_MOCK_CONTROL", control);
        std::env::set_var("HANKO_MOCK_REAL_MODULE", real);
    }
}

/// The server's config through the mock: `hsm.module`, `hsm.workers`, a queue deep
/// enough for every worker and client, and connection caps above the client counts.
pub(crate) fn configure(t: &mut toml::Table, mock: &Path, workers: usize) -> anyhow::Result<()> {
    let Some(module) = mock.to_str() else {
        bail!("the mock's path is not UTF-8");
    };
    set(t, "hsm", "module", toml::Value::String(module.to_owned()))?;
    let n = |v: usize| toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    set(t, "hsm", "workers", n(workers))?;
    set(t, "hsm", "queue_depth", n((64 * workers).max(128)))?;
    // Hundreds of clients from one address: the per-source cap (256) would refuse them.
    set(t, "http", "max_connections", n(8192))?;
    set(t, "http", "max_connections_per_source", n(4096))?;
    Ok(())
}

/// The capacity verdict of a row: rate ÷ capacity (target 0.95), or, when the server's
/// CPU ran out first, how many cores it would need.
///
/// `server_share` and `machine_share` are the server's and the whole machine's busy
/// share during the row (the load generator runs on the same cores). `cpu` is the
/// server's CPU per token and the raw CPU per signature: behind the mock the token
/// (SoftHSM) still signs on the host, which a network HSM does not, so the cores the
/// server would need at the HSM's capacity count the server's CPU per token minus it
/// (the front's own work: HTTP, DER, verify-after-sign, the log).
pub(super) fn verdict(
    net: NetworkHsm,
    rate: f64,
    (server_share, machine_share): (f64, f64),
    ncpu: usize,
    (server_cpu_per_token_s, raw_cpu_per_sig_s): (f64, f64),
) -> String {
    let capacity = net.capacity();
    let ratio = rate / capacity;
    let front = (server_cpu_per_token_s - raw_cpu_per_sig_s).max(0.0);
    let cores = front * capacity;
    let verdict = if ratio >= 0.95 {
        "met".to_owned()
    } else if machine_share >= 0.90 {
        format!(
            "CPU-bound: the machine was {:.0} % busy ({:.0} % the server) on {ncpu} cores; at \
             the HSM's capacity the server's own work would need {cores:.1} cores",
            machine_share * 100.0,
            server_share * 100.0
        )
    } else {
        format!(
            "MISSED with the machine {:.0} % busy (the server {:.0} %; at capacity its own \
             work would need {cores:.1} cores)",
            machine_share * 100.0,
            server_share * 100.0
        )
    };
    format!(
        "network HSM {} ms x {} = {capacity:.0} signs/s: {rate:.1} req/s = {ratio:.3} of capacity \
         (target 0.95): {verdict}; server CPU {:.0} µs per token, of which the token's own \
         signing (raw, on this host) {:.0} µs",
        net.ms,
        net.max,
        server_cpu_per_token_s * 1e6,
        raw_cpu_per_sig_s * 1e6
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn parses_and_judges() {
        let n: NetworkHsm = "5:64".parse().unwrap();
        assert_eq!(n, NetworkHsm { ms: 5, max: 64 });
        assert_eq!(n.capacity(), 12_800.0);
        assert!("5".parse::<NetworkHsm>().is_err());
        assert!("0:64".parse::<NetworkHsm>().is_err());
        assert!(verdict(n, 12_500.0, (0.5, 0.6), 2, (1e-4, 0.0)).contains("met"));
        let v = verdict(n, 6_000.0, (0.87, 0.93), 2, (3e-4, 1e-4));
        assert!(v.contains("CPU-bound") && v.contains("2.6 cores"), "{v}");
        assert!(verdict(n, 6_000.0, (0.5, 0.55), 2, (3e-4, 0.0)).contains("MISSED"));
    }
}
