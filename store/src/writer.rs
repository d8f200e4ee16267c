//! Group commit: the one log writer per [`crate::Store`].
//!
//! What it is for: a record must be durable before its response is released, and one
//! transaction per record would cap issuance at the disk's fsync rate. So every append goes
//! through one background task that takes whatever records are already queued (up to
//! `max_batch`), writes them in ONE transaction, and then answers all of them. Under load
//! batches grow by themselves; an idle server commits single records at once. A short,
//! adaptive linger (at most `StoreOptions::linger`, 2 ms by default) waits for more records
//! while they keep arriving close together ([`ArrivalGap`]): each commit costs a fixed
//! amount of CPU and an fsync, so when records arrive about as fast as commits finish,
//! waiting a little halves the commits for the same records.
//!
//! ```text
//! append() --mpsc--> [ writer task: recv 1, drain up to max_batch, (linger) ]
//!    ^                         |  one transaction (backend::append_batch)
//!    '------ oneshot reply ----'  Ok(Receipt) to each, or the same Error to each
//! ```
//!
//! What it does not do: retry. If the transaction fails, nothing of the batch is visible and
//! every waiter of the batch gets the error, which the server turns into systemFailure /
//! 503; the client retries. (If a COMMIT's acknowledgement is lost after the database made
//! it durable, the waiters still get an error: a record may then be in the log without the
//! client having its token, never the other way round.) Records whose caller has given up
//! (dropped the future) are still written: the token may exist, so the log keeps it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::backend::LogBackend;
use crate::record::PreparedRecord;
use crate::{Error, Receipt};

/// One queued append.
#[derive(Debug)]
pub(crate) struct Job {
    pub rec: PreparedRecord,
    pub reply: oneshot::Sender<Result<Receipt, Error>>,
    /// When `append` queued it: the writer learns the arrival rate from these.
    pub queued_at: Instant,
}

/// Counters the writer updates after every batch (read by [`crate::Store::writer_stats`]).
#[derive(Debug, Default)]
pub(crate) struct StatsInner {
    batches: AtomicU64,
    records: AtomicU64,
    max_batch: AtomicU64,
    failed_batches: AtomicU64,
    failed_records: AtomicU64,
}

impl StatsInner {
    pub(crate) fn snapshot(&self) -> WriterStats {
        WriterStats {
            batches: self.batches.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            max_batch: self.max_batch.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            failed_records: self.failed_records.load(Ordering::Relaxed),
        }
    }
}

/// A cheap snapshot of the writer's counters since the store was opened (the same
/// figures also go to the `metrics` facade: `hanko_log_batch_size` histogram,
/// `hanko_log_records_total`, `hanko_log_append_errors_total` counters,
/// `hanko_log_commit_seconds` histogram).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub batches: u64,
    /// Records committed.
    pub records: u64,
    /// Largest committed batch.
    pub max_batch: u64,
    /// Transactions that failed.
    pub failed_batches: u64,
    /// Records whose append failed in the database.
    pub failed_records: u64,
}

impl WriterStats {
    /// Records per committed transaction (0 when nothing was committed).
    pub fn mean_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.records as f64 / self.batches as f64
        }
    }
}

/// How the writer batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterConfig {
    pub max_batch: usize,
    pub linger: Duration,
    pub queue_depth: usize,
    pub commit_timeout: Duration,
}

/// Starts the writer task on the current tokio runtime.
pub(crate) fn spawn(
    backend: Arc<dyn LogBackend>,
    cfg: WriterConfig,
    stats: Arc<StatsInner>,
) -> (mpsc::Sender<Job>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(cfg.queue_depth.max(1));
    let handle = tokio::spawn(run(backend, rx, cfg, stats));
    (tx, handle)
}

/// The writer loop; ends when every sender is gone and the queue is drained.
async fn run(
    backend: Arc<dyn LogBackend>,
    mut rx: mpsc::Receiver<Job>,
    cfg: WriterConfig,
    stats: Arc<StatsInner>,
) {
    let max = cfg.max_batch.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max);
    let mut arrivals = ArrivalGap::default();
    loop {
        match rx.recv().await {
            Some(job) => batch.push(job),
            None => break,
        }
        while batch.len() < max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        for job in &batch {
            arrivals.observe(job.queued_at);
        }
        if let Some(gap) = arrivals.linger_gap(cfg.linger)
            && batch.len() < max
        {
            // Keep collecting while records keep coming, each within `gap` of the last,
            // for at most `cfg.linger` in all.
            let end = tokio::time::Instant::now() + cfg.linger;
            while batch.len() < max {
                let next = (tokio::time::Instant::now() + gap).min(end);
                match tokio::time::timeout_at(next, rx.recv()).await {
                    Ok(Some(job)) => {
                        arrivals.observe(job.queued_at);
                        batch.push(job);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        commit(backend.as_ref(), &mut batch, &stats, cfg.commit_timeout).await;
    }
    tracing::debug!("issuance log writer stopped");
}

/// The writer's estimate of the time between two appends (an exponentially weighted
/// mean), which decides whether waiting for more records can pay off.
///
/// Why adaptive: a fixed linger helps when records arrive a little slower than a commit
/// takes (an RSA TSA on a small machine: ~1 record per commit, each paying a whole
/// commit), but with a closed population of clients it stalls all of them once they are
/// all waiting in the batch (P-256 at 16 clients lost half its rate with a fixed 2 ms).
/// So the writer waits only while records keep arriving, each within twice the usual gap
/// of the previous one, never longer than the configured linger in all, and not at all
/// when records are sparser than the linger (an idle server adds no latency).
#[derive(Debug, Default)]
struct ArrivalGap {
    last: Option<Instant>,
    /// Mean gap in nanoseconds (weight 1/8 for each new gap).
    mean_ns: Option<f64>,
}

impl ArrivalGap {
    fn observe(&mut self, at: Instant) {
        if let Some(last) = self.last {
            // Jobs reach the writer in queue order; a reordering (two tasks racing to
            // the queue) just counts as a zero gap.
            let gap = at.saturating_duration_since(last).as_nanos() as f64;
            self.mean_ns = Some(match self.mean_ns {
                Some(m) => m + (gap - m) / 8.0,
                None => gap,
            });
        }
        if self.last.is_none_or(|l| at > l) {
            self.last = Some(at);
        }
    }

    /// How long to wait for the next record, or `None` not to linger.
    fn linger_gap(&self, linger: Duration) -> Option<Duration> {
        let mean = Duration::from_nanos(self.mean_ns? as u64);
        if linger.is_zero() || mean * 2 > linger {
            return None;
        }
        Some((mean * 2).clamp(Duration::from_micros(20), linger))
    }
}

/// Writes one batch and answers its waiters; leaves `batch` empty.
async fn commit(
    backend: &dyn LogBackend,
    batch: &mut Vec<Job>,
    stats: &StatsInner,
    timeout: Duration,
) {
    let (records, replies): (Vec<PreparedRecord>, Vec<_>) =
        batch.drain(..).map(|j| (j.rec, j.reply)).unzip();
    let n = records.len() as u64;
    let records: Arc<[PreparedRecord]> = records.into();
    let started = Instant::now();
    // Dropping the transaction future on timeout rolls it back (unless COMMIT was already
    // on its way, see the module docs).
    let result = match tokio::time::timeout(timeout, backend.append_batch(records)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            op: "append batch",
            after: timeout,
        }),
    };
    metrics::histogram!("hanko_log_commit_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(receipts) if receipts.len() == replies.len() => {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.records.fetch_add(n, Ordering::Relaxed);
            stats.max_batch.fetch_max(n, Ordering::Relaxed);
            metrics::histogram!("hanko_log_batch_size").record(n as f64);
            metrics::counter!("hanko_log_records_total").increment(n);
            for (reply, receipt) in replies.into_iter().zip(receipts) {
                // The caller may have given up; the record is durable regardless.
                let _ = reply.send(Ok(receipt));
            }
        }
        other => {
            let err = match other {
                Err(e) => e,
                // Unreachable by construction (one receipt per record); if it ever happens
                // the batch's fate is unknown to us, so nobody gets a success.
                Ok(_) => Error::Corrupt {
                    seq: 0,
                    reason: "backend returned a wrong number of receipts".into(),
                },
            };
            stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            stats.failed_records.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("hanko_log_append_errors_total").increment(n);
            tracing::error!(records = n, error = %err, "issuance log batch failed");
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrivals(gaps_us: &[u64]) -> ArrivalGap {
        let t0 = Instant::now();
        let mut a = ArrivalGap::default();
        let mut t = t0;
        a.observe(t);
        for g in gaps_us {
            t += Duration::from_micros(*g);
            a.observe(t);
        }
        a
    }

    #[test]
    fn lingers_only_while_records_come_close_together() {
        let linger = Duration::from_millis(2);
        // Nothing known yet: no wait.
        assert_eq!(ArrivalGap::default().linger_gap(linger), None);
        // A record every 200 us: wait up to 400 us for the next one.
        let dense = arrivals(&[200; 32]);
        assert_eq!(dense.linger_gap(linger), Some(Duration::from_micros(400)));
        // Off when configured off.
        assert_eq!(dense.linger_gap(Duration::ZERO), None);
        // A record every 5 ms (sparser than the linger): commit at once.
        assert_eq!(arrivals(&[5_000; 32]).linger_gap(linger), None);
        // A burst of simultaneous records: the floor, not zero.
        assert_eq!(
            arrivals(&[0; 32]).linger_gap(linger),
            Some(Duration::from_micros(20))
        );
        // The mean follows a change of rate within a few dozen records.
        let mut gaps = vec![5_000; 32];
        gaps.extend([100; 40]);
        let g = arrivals(&gaps).linger_gap(linger);
        assert!(g.is_some_and(|g| g < Duration::from_micros(400)), "{g:?}");
    }
}
