//! Group commit: the one log writer per [`crate::Store`].
//!
//! What it is for: a record must be durable before its response is released, and one
//! transaction per record would cap issuance at the disk's fsync rate. So every append goes
//! through one background task that takes whatever records are already queued (up to
//! `max_batch`), writes them in ONE transaction, and then answers all of them. Under load
//! batches grow by themselves; an idle server commits single records at once. An optional
//! linger (default zero) waits a little for more records; it only helps when fsync is much
//! slower than the arrival gap, and it adds latency, so it is off unless the operator asks.
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
        if !cfg.linger.is_zero() && batch.len() < max {
            let deadline = tokio::time::Instant::now() + cfg.linger;
            while batch.len() < max {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        commit(backend.as_ref(), &mut batch, &stats, cfg.commit_timeout).await;
    }
    tracing::debug!("issuance log writer stopped");
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
