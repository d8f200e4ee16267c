//! The measured phases of one key: one request alone (below capacity only), then the
//! closed loop that finds the capacity and the open loop at `--factor` × that capacity,
//! once each or in `--slices` alternating pairs.
//!
//! Why slices: on a shared VM the machine's speed drifts by ±15 % over some ten seconds
//! (`openssl speed -seconds 1 -multi 2 rsa3072`, twenty in a row: 766 to 1,077 signs/s),
//! so a capacity measured in one 15-second phase is not the capacity during the next: an
//! open loop at "80 %" of it runs at anywhere from 70 % to over 100 % of what the
//! machine can do at that moment, and a p99 measured there judges the VM. Alternating
//! short pairs (`--slices 15` of 1 s each for `--seconds 15`) sets every open-loop slice
//! to `--factor` × the capacity measured just before it, which tracks the drift. Each
//! closed loop ends with its last answer, so an open-loop slice starts on an idle server.
//!
//! Why the generator's thread runs at nice -10: it shares the cores with the server,
//! whose signing threads are busy the whole time, and a client thread that wakes to fire
//! the next requests or to read an answer then waits its turn behind them. It fires late
//! and in clumps (a queue the server would not see from clients on other machines) and
//! stamps answers late. Measured at 60 % of capacity (`--slices 15`, RSA-3072): p99 72.5
//! ms with the generator at the server's priority, 11.8 ms above it; the server's own
//! mean pool queue 2.64 ms against 0.19 ms, so the clumps were real load on the server,
//! not only late stamps. The server is started before and keeps nice 0.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Req;
use super::open_loop::{OpenLoop, open_loop, rss_kib, sample_rss};
use crate::cpu::{CpuSplit, CpuTimes};
use crate::devserver::scrape_metrics;
use crate::http::Target;
use crate::tsa::config::{Stages, stages};
use crate::tsa::load::drive;

/// What the phases need.
pub(super) struct Phases<'a> {
    pub(super) rt: &'a tokio::runtime::Runtime,
    pub(super) addr: &'a str,
    pub(super) pid: u32,
    pub(super) reqs: Arc<Vec<Req>>,
    /// Clients of the closed loop.
    pub(super) clients: usize,
    /// The capacity loop's and the open loop's time, each (split over the slices).
    pub(super) seconds: Duration,
    pub(super) factor: f64,
    pub(super) slices: usize,
    pub(super) connections: usize,
    pub(super) hang: Duration,
}

/// What the phases measured.
pub(super) struct Measured {
    /// Granted answers per second of the closed loop (the mean over its slices).
    pub(super) capacity: f64,
    /// With `--factor` below 1: one request's median latency alone, ms.
    pub(super) single_ms: Option<f64>,
    /// Where the CPU went: during the capacity loop, during the open loop.
    pub(super) cpu: [CpuSplit; 2],
    pub(super) load: OpenLoop,
    pub(super) rss_before: u64,
    pub(super) rss_peak: u64,
    /// Where a granted token's time went in the server during the open loop (the mean
    /// over its slices).
    pub(super) stages: Stages,
}

/// The nice value of the load generator's thread (the server runs at 0).
const GENERATOR_NICE: i32 = -10;

/// Sets the calling thread's nice value to [`GENERATOR_NICE`] (on Linux `setpriority`'s
/// `PRIO_PROCESS` with id 0 is the calling thread); needs `CAP_SYS_NICE` to go below 0.
#[allow(
    unsafe_code,
    reason = "libc has no safe setpriority(2); the call takes three integers and no memory"
)]
fn raise_priority() -> std::io::Result<()> {
    // SAFETY: setpriority(2) reads and writes no memory of ours; any argument values are
    // valid (a refused one is an error return).
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, GENERATOR_NICE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Phases<'_> {
    /// Runs the phases (see the module docs) on the calling thread, raised above the
    /// server's priority where the system allows it.
    pub(super) fn run(&self) -> anyhow::Result<Measured> {
        match raise_priority() {
            Ok(()) => println!("load generator: nice {GENERATOR_NICE} (the server: 0)"),
            Err(e) => println!(
                "load generator: at the server's priority ({e}): its own delays on the shared \
                 cores count in the latencies"
            ),
        }
        let http_only: Arc<Vec<Vec<u8>>> =
            Arc::new(self.reqs.iter().map(|r| r.http.clone()).collect());
        let target = Target::plain(self.addr);
        let ncpu = std::thread::available_parallelism().map_or(1, usize::from);
        let slices = u32::try_from(self.slices.max(1)).unwrap_or(u32::MAX);
        let slice = self.seconds / slices;
        self.rt.block_on(async {
            // Below capacity: what one request takes alone, the yardstick of the load's p99.
            let single_ms = if self.factor < 1.0 {
                let one = drive(
                    &target,
                    http_only.clone(),
                    1,
                    self.seconds.min(Duration::from_secs(5)),
                )
                .await?;
                println!(
                    "one request alone: p50 {:.1} ms, p99 {:.1} ms ({} requests)",
                    one.granted.quantile_ms(0.5),
                    one.granted.quantile_ms(0.99),
                    one.granted.count()
                );
                Some(one.granted.quantile_ms(0.5))
            } else {
                None
            };
            let (mut capacities, mut cpu_capacity, mut cpu_load) =
                (Vec::new(), Vec::new(), Vec::new());
            let mut load = OpenLoop::default();
            let mut slice_stages = Vec::new();
            let mut rss = None;
            let stop = Arc::new(AtomicBool::new(false));
            for _ in 0..slices {
                let c0 = CpuTimes::sample(Some(self.pid));
                let capacity = drive(&target, http_only.clone(), self.clients, slice)
                    .await?
                    .rate();
                let c1 = CpuTimes::sample(Some(self.pid));
                if capacity <= 0.0 {
                    anyhow::bail!("the closed loop got no token from the server: see its log");
                }
                capacities.push(capacity);
                cpu_capacity.push(CpuTimes::split(&c0, &c1, ncpu));
                if rss.is_none() {
                    let before = rss_kib(self.pid).unwrap_or(0);
                    rss = Some((before, tokio::spawn(sample_rss(self.pid, stop.clone()))));
                }
                let m0 = scrape_metrics(self.addr).await.ok();
                let skip = load.sent + load.not_sent;
                let part = open_loop(
                    self.addr,
                    self.reqs.clone(),
                    skip,
                    capacity * self.factor,
                    slice,
                    self.connections,
                    self.hang,
                )
                .await?;
                cpu_load.push(CpuTimes::split(
                    &c1,
                    &CpuTimes::sample(Some(self.pid)),
                    ncpu,
                ));
                if let (Some(a), Ok(b)) = (m0, scrape_metrics(self.addr).await) {
                    slice_stages.push(stages(&a, &b));
                }
                load.absorb(part);
            }
            stop.store(true, Ordering::Relaxed);
            let (rss_before, rss_peak) = match rss {
                Some((before, sampler)) => (before, sampler.await.map_or(0, |(peak, _)| peak)),
                None => (0, 0),
            };
            Ok(Measured {
                capacity: capacities.iter().sum::<f64>() / capacities.len().max(1) as f64,
                single_ms,
                cpu: [CpuSplit::mean(&cpu_capacity), CpuSplit::mean(&cpu_load)],
                load,
                rss_before,
                rss_peak,
                stages: Stages::mean(&slice_stages),
            })
        })
    }
}
