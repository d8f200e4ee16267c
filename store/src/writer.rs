//! Group commit: the one log writer per [`crate::Store`].
//!
//! What it is for: a record must be durable before its response is released, and one
//! transaction per record would cap issuance at the disk's fsync rate. So every append goes
//! through one writer that takes whatever records are already queued (up to `max_batch`),
//! writes them in ONE transaction, and then answers all of them. Under load batches grow
//! by themselves; an idle server commits single records at once.
//!
//! How long a batch is held open for more records (`linger`): every commit costs a fixed
//! amount of CPU (~0.1 ms here, mostly the fsync), so fewer, larger commits leave more CPU
//! to the signers; but a record held open is a client held back, and with few clients
//! that idles the signers instead. Without an [`Upstream`] the writer waits `linger` after
//! the first record, always. With one (the server passes its signing pools) `linger` is
//! only the upper bound: the writer holds a batch open while the upstream is busy (the
//! signers have more work queued than they can start, so they lose nothing) and commits
//! as soon as it is not (measured in benches/RESULTS.md, 2026-11-25: at 64-128 clients
//! batches of ~18 instead of ~7 and log on / log off 0.97-0.98 instead of 0.89-0.92; at 16
//! clients unchanged; an idle server commits at once).
//!
//! The loop runs as a tokio task calling [`LogBackend::append_batch`] (PostgreSQL), or on
//! a thread of its own when the backend offers a [`BlockingAppender`] (SQLite: no async
//! hand-off between the request and the database in either direction). The thread sleeps
//! through its linger; an appender that finds the upstream no longer busy (or a full
//! batch queued) wakes it ([`LingerGate`]). When the appender's COMMIT returns before the
//! batch is durable ([`BlockingAppender::deferred_sync`]: SQLite), a second thread, the
//! syncer, makes it durable and answers it, while the writer commits the next batches:
//! one sync then answers every batch committed before it began (issue #17: the writer no
//! longer idles through each fsync).
//!
//! ```text
//! append() --mpsc--> [ writer: recv 1, drain up to max_batch, (linger while busy) ]
//!    ^                         |  one transaction (backend::append_batch)
//!    |                         |  (SQLite) --> [ syncer: take all committed, sync once ]
//!    '------ oneshot reply ----'------------------------'
//!                                 Ok(Receipt) to each, or the same Error to each
//! ```
//!
//! What it does not do: retry. If the transaction fails, nothing of the batch is visible and
//! every waiter of the batch gets the error, which the server turns into a `systemFailure`
//! TimeStampResp (HTTP 200, token withheld); the client retries. (If a COMMIT's acknowledgement is lost after the database made
//! it durable, the waiters still get an error: a record may then be in the log without the
//! client having its token, never the other way round.) On the writer thread (SQLite) a
//! record whose caller has given up before its batch began is not written, and a batch
//! nobody waits for any more is rolled back before COMMIT: its tokens were never sent.
//! The task (PostgreSQL) writes them anyway: a record without a delivered token is the
//! harmless direction.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::backend::LogBackend;
use crate::failure_log::{FailureLog, Report};
use crate::record::PreparedRecord;
use crate::syncer::{Committed, Durability, Syncer};
use crate::{Error, Receipt};

/// One queued append.
#[derive(Debug)]
pub(crate) struct Job {
    pub rec: PreparedRecord,
    pub reply: oneshot::Sender<Result<Receipt, Error>>,
    /// When `Store::append` queued it (for `hanko_log_queue_seconds`).
    pub queued: Instant,
}

/// Histogram, seconds: how long each record waited for the writer to begin its batch
/// (the writer busy with the batch before, then the linger).
const QUEUE_SECONDS: &str = "hanko_log_queue_seconds";

/// Records each job's wait from its queueing to `started`, the start of its batch.
fn record_queue_wait(hist: &metrics::Histogram, batch: &[Job], started: Instant) {
    for j in batch {
        hist.record(started.saturating_duration_since(j.queued).as_secs_f64());
    }
}

/// Counters the writer updates after every batch (read by [`crate::Store::writer_stats`]).
#[derive(Debug, Default)]
pub(crate) struct StatsInner {
    batches: AtomicU64,
    records: AtomicU64,
    max_batch: AtomicU64,
    failed_batches: AtomicU64,
    failed_records: AtomicU64,
    /// Whether batches are failing, so that a fault is logged once, not per batch.
    failure_log: Mutex<FailureLog>,
}

impl StatsInner {
    /// Logs what `step` says about a batch's outcome (a change of state, or a reminder).
    fn report(&self, step: impl FnOnce(&mut FailureLog) -> Report) -> Report {
        let report = step(&mut self.failure_log.lock().unwrap_or_else(|e| e.into_inner()));
        if let Report::Recovered { failed, lasted } = &report {
            tracing::warn!(
                failed_batches = failed,
                lasted_secs = lasted.as_secs_f64(),
                "issuance log writes succeed again"
            );
        }
        report
    }

    /// Logs a failed batch of `records` records: at once when it is the first, then once
    /// per [`crate::failure_log::REMIND_EVERY`] while the failure lasts.
    fn report_failure(&self, err: &Error, records: u64) {
        match self.report(|log| log.failed(Instant::now())) {
            Report::StartedFailing => {
                tracing::error!(records, error = %err, "issuance log batch failed; appends are failing")
            }
            Report::StillFailing { suppressed, since } => tracing::error!(
                records,
                error = %err,
                failed_batches_not_logged = suppressed,
                failing_for_secs = since.as_secs_f64(),
                "issuance log appends still failing"
            ),
            Report::Quiet | Report::Recovered { .. } => {}
        }
    }

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
/// `hanko_log_commit_seconds` histogram (a batch's start to its waiters' answer),
/// `hanko_log_linger_seconds`: how long each batch was held open for more records, which
/// shows whether `linger` is ever reached, and `hanko_log_queue_seconds`: each record's
/// wait for its batch to start, the linger included).
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

/// What the log writer may ask about the stage that feeds it records (the signers), to
/// decide how long to hold a batch open. See [`crate::StoreOptions::upstream`].
pub trait Upstream: Send + Sync + fmt::Debug {
    /// True while the producers of records have more work queued than they can start
    /// right now: holding a batch open for more records then cannot leave them idle, and
    /// a larger batch saves commits. False as soon as that is no longer so; the writer
    /// then commits at once, so that the clients it releases bring the producers new work.
    fn busy(&self) -> bool;

    /// How long a batch may be held open now, at most `linger` (the store's setting):
    /// by default all of it whenever [`Upstream::busy`]. The server bounds it by the
    /// time its queued signatures will take anyway, so that a signer backlogged for a
    /// moment (a steady load below capacity) holds records briefly, and only a
    /// saturated one holds them the whole linger.
    fn linger_bound(&self, linger: Duration) -> Duration {
        linger
    }
}

/// The longest a batch may be held open now: `linger`, bounded by the upstream's
/// [`Upstream::linger_bound`] when there is one.
fn linger_bound(up: Option<&dyn Upstream>, linger: Duration) -> Duration {
    match up {
        Some(u) => u.linger_bound(linger).min(linger),
        None => linger,
    }
}

/// How the writer batches.
#[derive(Debug, Clone)]
pub(crate) struct WriterConfig {
    pub max_batch: usize,
    pub linger: Duration,
    pub upstream: Option<Arc<dyn Upstream>>,
    pub queue_depth: usize,
    pub commit_timeout: Duration,
}

/// Lets an appender end the writer thread's linger early (see [`Upstream`]).
#[derive(Debug)]
pub(crate) struct LingerGate {
    lingering: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
    max_batch: usize,
}

impl LingerGate {
    /// Called after a record was queued (`queued` records now wait for the writer): if
    /// the writer holds a batch open and the upstream is no longer busy, or a full batch
    /// is waiting, wakes it to commit now. One atomic load when the writer is not lingering.
    pub(crate) fn after_send(&self, upstream: &dyn Upstream, queued: usize) {
        if self.lingering.load(Ordering::Acquire)
            && (queued >= self.max_batch || !upstream.busy())
            && self.lingering.swap(false, Ordering::AcqRel)
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
    }
}

/// A backend that commits a batch synchronously on the writer's own thread (SQLite:
/// `backend/sqlite_writer.rs`). The batch loop then runs on that thread, fed straight from
/// the queue: no async task between the request and the database, in either direction.
pub(crate) trait BlockingAppender: Send + 'static {
    /// Appends `records` in one transaction. `abandoned` is asked just before COMMIT: if
    /// it says yes (every waiter has given up), the transaction rolls back instead.
    fn append(
        &mut self,
        records: &[PreparedRecord],
        abandoned: &dyn Fn() -> bool,
    ) -> Result<Vec<Receipt>, Error>;

    /// `Some` when a successful [`BlockingAppender::append`] is committed but not yet
    /// durable: the writer then answers each batch after this syncs it, on a thread of
    /// its own, and commits the next batches meanwhile.
    fn deferred_sync(&self) -> Option<Arc<dyn Durability>> {
        None
    }
}

/// The running writer: a tokio task, or a thread of its own.
#[derive(Debug)]
pub(crate) enum WriterHandle {
    Task(JoinHandle<()>),
    Thread(std::thread::JoinHandle<()>),
}

impl WriterHandle {
    /// Waits until the writer has drained its queue and stopped.
    pub(crate) async fn join(self) {
        let failed = match self {
            WriterHandle::Task(t) => t.await.is_err(),
            WriterHandle::Thread(t) => !matches!(
                tokio::task::spawn_blocking(move || t.join()).await,
                Ok(Ok(()))
            ),
        };
        if failed {
            tracing::error!("issuance log writer failed");
        }
    }
}

/// Starts the writer: on a thread of its own when the backend has a [`BlockingAppender`],
/// otherwise as a task on the current tokio runtime.
pub(crate) fn spawn(
    backend: Arc<dyn LogBackend>,
    cfg: WriterConfig,
    stats: Arc<StatsInner>,
) -> Result<(mpsc::Sender<Job>, WriterHandle, Arc<LingerGate>), Error> {
    let (tx, rx) = mpsc::channel(cfg.queue_depth.max(1));
    let gate = Arc::new(LingerGate {
        lingering: AtomicBool::new(false),
        thread: OnceLock::new(),
        max_batch: cfg.max_batch.max(1),
    });
    let handle = match backend.blocking_appender() {
        Some(appender) => {
            let gate = gate.clone();
            let syncer = appender
                .deferred_sync()
                .map(|d| Syncer::spawn(d, stats.clone()))
                .transpose()
                .map_err(|e| Error::Io(Arc::new(e)))?;
            WriterHandle::Thread(
                std::thread::Builder::new()
                    .name("hanko-log-writer".into())
                    .spawn(move || {
                        let _ = gate.thread.set(std::thread::current());
                        run_blocking(appender, rx, cfg, stats, &gate, syncer)
                    })
                    .map_err(|e| Error::Io(Arc::new(e)))?,
            )
        }
        None => WriterHandle::Task(tokio::spawn(run(backend, rx, cfg, stats))),
    };
    Ok((tx, handle, gate))
}

/// Takes what is already queued, up to `max` records in all.
fn drain(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, max: usize) {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// The batch loop on the writer's own thread; ends when every sender is gone and the
/// queue is drained.
fn run_blocking(
    mut appender: Box<dyn BlockingAppender>,
    mut rx: mpsc::Receiver<Job>,
    cfg: WriterConfig,
    stats: Arc<StatsInner>,
    gate: &LingerGate,
    syncer: Option<Syncer>,
) {
    let max = cfg.max_batch.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max);
    let queue_wait = metrics::histogram!(QUEUE_SECONDS);
    while let Some(job) = rx.blocking_recv() {
        batch.push(job);
        drain(&mut rx, &mut batch, max);
        if !cfg.linger.is_zero() && batch.len() < max {
            let held = Instant::now();
            match &cfg.upstream {
                Some(up) => linger_while_busy(up.as_ref(), gate, cfg.linger),
                None => std::thread::sleep(cfg.linger),
            }
            metrics::histogram!("hanko_log_linger_seconds").record(held.elapsed().as_secs_f64());
            drain(&mut rx, &mut batch, max);
        }
        // A waiter that gave up (its request ended, or `Store::append` timed out) was
        // never given its token: its record is not written at all.
        batch.retain(|j| !j.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        record_queue_wait(&queue_wait, &batch, started);
        let (records, replies): (Vec<PreparedRecord>, Vec<_>) =
            batch.drain(..).map(|j| (j.rec, j.reply)).unzip();
        let abandoned = || replies.iter().all(|r| r.is_closed());
        let result = appender.append(&records, &abandoned);
        if result.is_err() && abandoned() {
            // Rolled back because nobody waits any more (or failed meanwhile): no answer
            // is owed; the waiters already reported their own timeout.
            stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            stats
                .failed_records
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            tracing::warn!(
                records = records.len(),
                "issuance log batch not committed: every waiter had given up"
            );
            continue;
        }
        match (&syncer, result) {
            (Some(s), Ok(receipts)) => {
                let committed = Committed {
                    replies,
                    receipts,
                    started,
                };
                if let Err(std::sync::mpsc::SendError(c)) = s.tx.send(committed) {
                    // The syncer is gone (it panicked): the batch's durability is unknown.
                    let err = Error::Io(Arc::new(std::io::Error::other(
                        "the issuance log syncer stopped",
                    )));
                    answer(c.replies, Err(err), c.started, &stats);
                }
            }
            (_, result) => answer(replies, result, started, &stats),
        }
    }
    if let Some(s) = syncer {
        s.finish();
    }
    tracing::debug!("issuance log writer stopped");
}

/// Holds the batch open while `up` is busy, at most `max`; an appender that finds the
/// upstream no longer busy ends the wait early ([`LingerGate::after_send`]).
fn linger_while_busy(up: &dyn Upstream, gate: &LingerGate, max: Duration) {
    if !up.busy() {
        return;
    }
    let start = Instant::now();
    gate.lingering.store(true, Ordering::SeqCst);
    loop {
        // An appender may have looked before the flag was up: look again.
        if !up.busy() {
            break;
        }
        // The bound follows the backlog: deeper while the batch is held, longer.
        let deadline = start + linger_bound(Some(up), max);
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::park_timeout(deadline - now);
        if !gate.lingering.load(Ordering::Acquire) {
            break; // released by an appender
        }
    }
    gate.lingering.store(false, Ordering::Release);
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
        drain(&mut rx, &mut batch, max);
        if !cfg.linger.is_zero() && batch.len() < max {
            let held = Instant::now();
            let deadline =
                tokio::time::Instant::now() + linger_bound(cfg.upstream.as_deref(), cfg.linger);
            while batch.len() < max && cfg.upstream.as_ref().is_none_or(|u| u.busy()) {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    Ok(None) | Err(_) => break,
                }
            }
            metrics::histogram!("hanko_log_linger_seconds").record(held.elapsed().as_secs_f64());
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
    let started = Instant::now();
    record_queue_wait(&metrics::histogram!(QUEUE_SECONDS), batch, started);
    let (records, replies): (Vec<PreparedRecord>, Vec<_>) =
        batch.drain(..).map(|j| (j.rec, j.reply)).unzip();
    let records: Arc<[PreparedRecord]> = records.into();
    // Dropping the transaction future on timeout rolls it back (unless COMMIT was already
    // on its way, see the module docs).
    let result = match tokio::time::timeout(timeout, backend.append_batch(records)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            op: "append batch",
            after: timeout,
        }),
    };
    answer(replies, result, started, stats);
}

/// Answers a batch's waiters with the outcome of its transaction and counts it.
pub(crate) fn answer(
    replies: Vec<oneshot::Sender<Result<Receipt, Error>>>,
    result: Result<Vec<Receipt>, Error>,
    started: Instant,
    stats: &StatsInner,
) {
    let n = replies.len() as u64;
    metrics::histogram!("hanko_log_commit_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(receipts) if receipts.len() == replies.len() => {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.records.fetch_add(n, Ordering::Relaxed);
            stats.max_batch.fetch_max(n, Ordering::Relaxed);
            stats.report(|log| log.committed(Instant::now()));
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
            stats.report_failure(&err, n);
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}
