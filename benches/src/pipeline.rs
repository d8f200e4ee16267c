//! `hanko-bench pipeline`: how busy this machine can keep its CPUs when work passes
//! between threads, with no Hanko code at all: the ceiling the server's CPU share is
//! read against (issue #17's "server CPU ≥ 95 % at 64 clients").
//!
//! A closed loop of single-thread stages joined by `Mutex` + `Condvar` queues, the
//! hand-off the signing pool uses. `--tokens` items circulate; each stage spins for its
//! share of `--work-us` per item, then passes the item on. With more tokens than
//! stages every queue always holds work, so an ideal machine would be 100 % busy and
//! reach the work bound (CPUs ÷ work per item). What it reaches instead is what thread
//! hand-offs cost here: the sleeps on contended locks, and the time a woken thread waits
//! for a CPU. `--spin-us` spins that long on an empty queue before sleeping, to show that
//! a busier CPU is not more throughput.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::cpu::CpuTimes;

/// Options of `hanko-bench pipeline`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Microseconds of work per item in each stage, one figure per stage, in order
    /// (the default's 170 µs per item is about the server's CPU per P-256 token)
    #[arg(long, value_delimiter = ',', default_value = "30,60,30,50")]
    work_us: Vec<u64>,
    /// Items circulating; several counts separated by commas
    #[arg(long, value_delimiter = ',', default_value = "4,64")]
    tokens: Vec<usize>,
    /// Spin this long on an empty queue before sleeping on it; several values
    #[arg(long, value_delimiter = ',', default_value = "0")]
    spin_us: Vec<u64>,
    /// Seconds measured per row (after one second of warm-up)
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

struct Queue {
    items: Mutex<VecDeque<usize>>,
    ready: Condvar,
    len: AtomicU64,
}

impl Queue {
    fn put(&self, item: usize) {
        let mut q = self.items.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back(item);
        self.len.store(q.len() as u64, Ordering::Release);
        self.ready.notify_one();
    }

    fn take(&self, spin: Duration, stop: &AtomicBool) -> Option<usize> {
        if !spin.is_zero() {
            let until = Instant::now() + spin;
            while self.len.load(Ordering::Acquire) == 0 && Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        let mut q = self.items.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if stop.load(Ordering::Acquire) {
                return None;
            }
            if let Some(item) = q.pop_front() {
                self.len.store(q.len() as u64, Ordering::Release);
                return Some(item);
            }
            q = self
                .ready
                .wait_timeout(q, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn busy_for(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// One row: items per second and the machine's busy share.
fn row(work: &[Duration], tokens: usize, spin: Duration, seconds: u64) -> (f64, f64) {
    let queues: Arc<Vec<Queue>> = Arc::new(
        work.iter()
            .map(|_| Queue {
                items: Mutex::new(VecDeque::new()),
                ready: Condvar::new(),
                len: AtomicU64::new(0),
            })
            .collect(),
    );
    for t in 0..tokens {
        queues[0].put(t);
    }
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let n = work.len();
    let threads: Vec<_> = work
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let (queues, done, stop) = (queues.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                while let Some(item) = queues[i].take(spin, &stop) {
                    busy_for(w);
                    if i == n - 1 {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    queues[(i + 1) % n].put(item);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let (c0, d0) = (CpuTimes::sample(None), done.load(Ordering::Relaxed));
    std::thread::sleep(Duration::from_secs(seconds));
    let (c1, d1) = (CpuTimes::sample(None), done.load(Ordering::Relaxed));
    stop.store(true, Ordering::Release);
    for q in queues.iter() {
        q.ready.notify_all();
    }
    for t in threads {
        let _ = t.join();
    }
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let split = CpuTimes::split(&c0, &c1, ncpu);
    let wall = seconds as f64;
    (
        (d1 - d0) as f64 / wall,
        split.generator + split.other + split.server,
    )
}

/// Runs `hanko-bench pipeline`.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.work_us.is_empty() && args.work_us.iter().all(|&w| w > 0),
        "--work-us needs at least one stage, each above 0"
    );
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let work: Vec<Duration> = args
        .work_us
        .iter()
        .map(|&w| Duration::from_micros(w))
        .collect();
    let per_item: u64 = args.work_us.iter().sum();
    let slowest = args.work_us.iter().copied().max().unwrap_or(1);
    let bound = (ncpu as f64 * 1e6 / per_item as f64).min(1e6 / slowest as f64);
    println!(
        "hanko-bench pipeline: {} stages ({} µs per item in all), {ncpu} CPUs, {} s per row; \
         work bound {bound:.0} items/s",
        work.len(),
        per_item,
        args.seconds
    );
    println!("tokens spin µs   items/s  ÷ bound  machine busy");
    for &tokens in &args.tokens {
        for &spin in &args.spin_us {
            let (rate, busy) = row(&work, tokens, Duration::from_micros(spin), args.seconds);
            println!(
                "{tokens:>6} {spin:>7} {rate:>9.0} {:>8.3} {:>12.0} %",
                rate / bound,
                busy * 100.0
            );
        }
    }
    Ok(())
}
