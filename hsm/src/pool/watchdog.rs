//! The watchdog: one thread per pool that answers requests past their deadline and
//! abandons workers stuck in a call.
//!
//! # Deadlines
//! Every request has a deadline, `call_timeout` after it was submitted, covering the time
//! in the queue, the PKCS#11 calls and the retry. A watchdog thread (ticking at most every
//! 50 ms) answers `Timeout` to any request past it, queued or in flight. A worker whose
//! job has been running for longer than `call_timeout` is *abandoned*: it is removed from
//! the pool and a replacement started, so capacity is kept. When the stuck call finally
//! returns, the old worker closes its session (if the module was not re-initialised
//! meanwhile) and rejoins the pool if it is short of workers, else exits. At most
//! `workers` abandoned workers may be outstanding; past that no replacement is started,
//! since a token that hangs every call would otherwise grow threads forever (queued
//! requests then still time out on schedule).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::worker::{lock_inflight, spawn_worker};
use super::{Job, Reply, Shared};
use crate::error::Error;
use crate::metrics_names as m;

/// Runs until the pool closes, ticking every `call_timeout / 8` (1 to 50 ms).
pub(super) fn watchdog(sh: Arc<Shared>) {
    let tick = (sh.cfg.call_timeout / 8).clamp(Duration::from_millis(1), Duration::from_millis(50));
    while !sh.closed.load(Ordering::Acquire) {
        std::thread::sleep(tick);
        let now = Instant::now();
        // Requests still queued at their deadline: no worker got to them in time.
        let expired: Vec<Job> = {
            let mut q = sh.lock_queue();
            let mut out = Vec::new();
            for jobs in &mut q.lanes {
                while jobs.front().is_some_and(|j| j.deadline <= now) {
                    out.extend(jobs.pop_front());
                }
            }
            out
        };
        for job in expired {
            answer_expired(&sh, job.reply, |key, timeout_ms| Error::QueueTimeout {
                key,
                timeout_ms,
            });
        }
        // Requests in flight at their deadline, and workers stuck past `call_timeout`.
        let mut late = Vec::new();
        let mut stuck = Vec::new();
        {
            let mut workers = sh.workers.lock().unwrap_or_else(|p| p.into_inner());
            workers.retain(|w| {
                let mut f = lock_inflight(w);
                if f.deadline.is_some_and(|d| d <= now)
                    && let Some(reply) = f.reply.take()
                {
                    late.push(reply);
                }
                let hung = f
                    .since
                    .is_some_and(|s| now.saturating_duration_since(s) > sh.cfg.call_timeout);
                if hung && !f.abandoned {
                    f.abandoned = true;
                    if std::mem::take(&mut f.bulk) {
                        // The hung call no longer counts against bulk's share: the
                        // replacement worker takes its place.
                        sh.lock_queue().bulk_done();
                    }
                    // Counted while the slot is locked: the worker decrements when it
                    // sees `abandoned`, which it can only do after this. (Counting it
                    // later let a call that returned at once take the count below zero.)
                    let outstanding = sh.abandoned_live.fetch_add(1, Ordering::AcqRel) + 1;
                    stuck.push((w.id, outstanding));
                    false
                } else {
                    true
                }
            });
        }
        for reply in late {
            answer_expired(&sh, reply, |key, timeout_ms| Error::Timeout {
                key,
                timeout_ms,
            });
        }
        for (id, outstanding) in stuck {
            sh.counters
                .abandoned_workers
                .fetch_add(1, Ordering::Relaxed);
            metrics::counter!(m::ABANDONED_WORKERS, "key" => sh.key.label.clone()).increment(1);
            if outstanding <= sh.cfg.workers {
                tracing::warn!(key = %sh.key.label, worker = id, outstanding,
                    "signing call passed its deadline; worker abandoned, replacement started");
                if let Err(e) = spawn_worker(&sh) {
                    tracing::error!(key = %sh.key.label, error = %e, "no replacement worker");
                }
            } else {
                tracing::error!(key = %sh.key.label, worker = id, outstanding,
                    "signing call passed its deadline; too many hung workers, no replacement");
            }
        }
    }
}

/// Answers a request past its deadline with the error `timeout` makes of the key label
/// and `call_timeout` in milliseconds (queued: `QueueTimeout`, in flight: `Timeout`), and
/// counts it in `deadline_expired`.
fn answer_expired(sh: &Shared, reply: Reply, timeout: fn(String, u128) -> Error) {
    sh.counters.deadline_expired.fetch_add(1, Ordering::Relaxed);
    let e = timeout(sh.key.label.clone(), sh.cfg.call_timeout.as_millis());
    sh.answer(reply, Err(sh.error(&e)));
}
