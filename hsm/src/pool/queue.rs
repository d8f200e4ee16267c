//! The pool's queue: the jobs waiting for a worker, one FIFO per lane, and what a
//! worker holds while it signs one (watched by the watchdog).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use hanko_pki::{DigestSignAlgorithm, SignError, SignatureAlgorithm};
use tokio::sync::oneshot;

use crate::PoolConfig;
use crate::lane::Lane;

/// A job's answer: its signature, or why there is none.
pub(super) type Answer = Result<Vec<u8>, SignError>;
pub(super) type Reply = oneshot::Sender<Answer>;

/// One signing request: one signature, one queue slot.
pub(super) struct Job {
    pub(super) item: Item,
    pub(super) reply: Reply,
    /// Submission time + `call_timeout`.
    pub(super) deadline: Instant,
    /// The lane it was submitted in (`lane::current()` at submission).
    pub(super) lane: Lane,
    /// When it was queued (for [`m::QUEUE_WAIT`]).
    pub(super) queued: Instant,
}

/// One signature's worth of work.
pub(super) struct Item {
    /// The algorithm: the mechanism, and the DER conversion of ECDSA's `r || s`.
    pub(super) alg: SignatureAlgorithm,
    /// What the mechanism signs.
    pub(super) data: Vec<u8>,
    /// What verify-after-sign checks the signature against.
    pub(super) check: Check,
}

/// What a signature must verify against.
pub(super) enum Check {
    /// The message given to `sign`, with the pool's algorithm.
    Message(Vec<u8>),
    /// The digest given to `sign_digest(s)`, with the requested algorithm.
    Digest(DigestSignAlgorithm, Vec<u8>),
}

/// A worker's job in flight, watched by the watchdog.
#[derive(Default)]
pub(super) struct InFlight {
    /// When the worker took the job (for abandonment).
    pub(super) since: Option<Instant>,
    /// The job's deadline (for answering `Timeout`).
    pub(super) deadline: Option<Instant>,
    /// Taken by whoever answers first: the worker or the watchdog.
    pub(super) reply: Option<Reply>,
    /// Set by the watchdog when it gave up on this worker.
    pub(super) abandoned: bool,
    /// The job is a bulk one, counted in `Queue::bulk_busy`; whoever ends the count (the
    /// worker when the job is done, or the watchdog when it abandons the worker) clears it.
    pub(super) bulk: bool,
}

pub(super) struct WorkerSlot {
    pub(super) id: usize,
    pub(super) inflight: Mutex<InFlight>,
}

/// The jobs waiting for a worker, one FIFO per [`Lane`] (indexed by `Lane::index`).
pub(super) struct Queue {
    pub(super) lanes: [VecDeque<Job>; 2],
    /// Bulk jobs being signed now (taken by a worker, not yet done or abandoned).
    pub(super) bulk_busy: usize,
    /// The most bulk jobs signed at once while an interactive job waits (see
    /// [`PoolConfig::bulk_share`]).
    pub(super) bulk_max: usize,
    pub(super) closed: bool,
}

impl Queue {
    pub(super) fn new(cfg: &PoolConfig) -> Queue {
        let depth = cfg.queue_depth.min(4096);
        Queue {
            lanes: [VecDeque::with_capacity(depth), VecDeque::new()],
            bulk_busy: 0,
            bulk_max: bulk_max(cfg),
            closed: false,
        }
    }

    /// Jobs waiting in both lanes.
    pub(super) fn len(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    /// The job a free worker takes next (see `lane.rs`): bulk while it is under its share
    /// or nothing interactive waits, else interactive; FIFO within a lane.
    pub(super) fn take(&mut self) -> Option<Job> {
        let [interactive, bulk] = &mut self.lanes;
        let bulk_turn =
            !bulk.is_empty() && (interactive.is_empty() || self.bulk_busy < self.bulk_max);
        let job = if bulk_turn {
            bulk.pop_front()
        } else {
            interactive.pop_front()
        }?;
        if job.lane == Lane::Bulk {
            self.bulk_busy += 1;
        }
        Some(job)
    }

    /// A bulk job is no longer being signed.
    pub(super) fn bulk_done(&mut self) {
        self.bulk_busy = self.bulk_busy.saturating_sub(1);
    }
}

/// `max(1, floor(bulk_share × workers))`, or 0 for a share of 0 (bulk only when idle).
fn bulk_max(cfg: &PoolConfig) -> usize {
    let share = if cfg.bulk_share.is_finite() {
        cfg.bulk_share.clamp(0.0, 1.0)
    } else {
        crate::DEFAULT_BULK_SHARE
    };
    if share == 0.0 {
        return 0;
    }
    // Workers are few (threads), so the cast is exact; floor, then at least one.
    ((share * cfg.workers as f64).floor() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cfg(workers: usize, bulk_share: f64) -> PoolConfig {
        PoolConfig {
            workers,
            queue_depth: 64,
            call_timeout: Duration::from_secs(1),
            verify_after_sign: false,
            bulk_share,
        }
    }

    fn job(lane: Lane) -> Job {
        Job {
            item: Item {
                alg: SignatureAlgorithm::Ed25519,
                data: Vec::new(),
                check: Check::Message(Vec::new()),
            },
            reply: oneshot::channel().0,
            deadline: Instant::now(),
            queued: Instant::now(),
            lane,
        }
    }

    fn queue(workers: usize, share: f64, interactive: usize, bulk: usize) -> Queue {
        let mut q = Queue::new(&cfg(workers, share));
        q.lanes[0].extend((0..interactive).map(|_| job(Lane::Interactive)));
        q.lanes[1].extend((0..bulk).map(|_| job(Lane::Bulk)));
        q
    }

    /// The lanes of the jobs `workers` free workers take, one after the other, none done.
    fn taken(q: &mut Queue, workers: usize) -> Vec<Lane> {
        (0..workers)
            .filter_map(|_| q.take().map(|j| j.lane))
            .collect()
    }

    #[test]
    fn bulk_takes_its_share_and_no_more_while_interactive_waits() {
        let mut q = queue(8, 0.25, 100, 100);
        let lanes = taken(&mut q, 8);
        let bulk = lanes.iter().filter(|l| **l == Lane::Bulk).count();
        assert_eq!(bulk, 2, "{lanes:?}");
        assert_eq!(q.bulk_busy, 2);
        // A bulk job done frees its place for the next bulk job, not for interactive.
        q.bulk_done();
        assert_eq!(taken(&mut q, 1), [Lane::Bulk]);
        // An interactive job done: the next free worker takes interactive.
        assert_eq!(taken(&mut q, 1), [Lane::Interactive]);
    }

    #[test]
    fn bulk_takes_every_worker_when_nothing_interactive_waits() {
        let mut q = queue(4, 0.25, 0, 100);
        assert_eq!(taken(&mut q, 4), [Lane::Bulk; 4]);
        assert_eq!(q.bulk_busy, 4);
        // Interactive work arrives: every free worker takes it until bulk is back under
        // its share.
        q.lanes[0].extend((0..10).map(|_| job(Lane::Interactive)));
        for _ in 0..3 {
            q.bulk_done();
            assert_eq!(taken(&mut q, 1), [Lane::Interactive]);
        }
        q.bulk_done(); // bulk_busy 0 < 1: bulk's turn again
        assert_eq!(taken(&mut q, 1), [Lane::Bulk]);
    }

    #[test]
    fn interactive_alone_takes_every_worker_and_fifo_holds_within_a_lane() {
        let mut q = queue(4, 0.5, 3, 0);
        assert_eq!(
            taken(&mut q, 4),
            [Lane::Interactive, Lane::Interactive, Lane::Interactive]
        );
        assert!(q.take().is_none());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn the_share_is_at_least_one_worker_unless_zero() {
        assert_eq!(bulk_max(&cfg(2, 0.25)), 1);
        assert_eq!(bulk_max(&cfg(2, 0.5)), 1);
        assert_eq!(bulk_max(&cfg(16, 0.5)), 8);
        assert_eq!(bulk_max(&cfg(16, 1.0)), 16);
        assert_eq!(bulk_max(&cfg(16, 7.0)), 16, "clamped to 1.0");
        assert_eq!(bulk_max(&cfg(16, 0.0)), 0);
        assert_eq!(bulk_max(&cfg(16, f64::NAN)), 8, "the default share");
        let mut q = queue(4, 0.0, 1, 5);
        assert_eq!(taken(&mut q, 2), [Lane::Interactive, Lane::Bulk]);
    }
}
