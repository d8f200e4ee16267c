//! The syncer of a pipelined log writer (issue #17): when a backend's COMMIT returns
//! before the batch is durable ([`crate::writer::BlockingAppender::deferred_sync`]:
//! SQLite with `synchronous = NORMAL`), the writer hands each committed batch to this
//! thread, which makes it durable and only then answers its waiters, while the writer
//! commits the next batches. One sync answers every batch committed before it began.
//!
//! ```text
//!  writer thread: COMMIT batch N ──> Committed ──channel──> [ hanko-log-sync ]
//!                 COMMIT batch N+1 ...                      take all waiting, sync once,
//!                                                           answer them in commit order
//! ```
//!
//! What it does not do: report success after a failed sync (see [`run_syncer`]).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::writer::{StatsInner, answer};
use crate::{Error, Receipt};

/// Makes the commits of a [`crate::writer::BlockingAppender`] durable, when its COMMIT returns before
/// they are (SQLite with `synchronous = NORMAL`: `backend/sqlite_writer.rs`).
pub(crate) trait Durability: Send + Sync + fmt::Debug + 'static {
    /// Returns once every commit that returned before this call began is on stable
    /// storage. An error means that the durability of those commits is unknown.
    fn sync(&self) -> Result<(), Error>;
}

/// A committed batch whose waiters are answered once it is durable.
pub(crate) struct Committed {
    pub(crate) replies: Vec<oneshot::Sender<Result<Receipt, Error>>>,
    pub(crate) receipts: Vec<Receipt>,
    pub(crate) started: Instant,
}

/// The syncer thread of a pipelined writer: the writer thread commits batch N+1 while
/// this thread waits for the sync that makes batch N durable; one sync answers every
/// batch committed before it began.
pub(crate) struct Syncer {
    pub(crate) tx: std::sync::mpsc::Sender<Committed>,
    thread: std::thread::JoinHandle<()>,
}

impl Syncer {
    pub(crate) fn spawn(
        durability: Arc<dyn Durability>,
        stats: Arc<StatsInner>,
    ) -> std::io::Result<Syncer> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("hanko-log-sync".into())
            .spawn(move || run_syncer(&rx, durability.as_ref(), &stats))?;
        Ok(Syncer { tx, thread })
    }

    /// Stops taking batches and waits until every one taken is answered.
    pub(crate) fn finish(self) {
        drop(self.tx);
        if self.thread.join().is_err() {
            tracing::error!("issuance log syncer failed");
        }
    }
}

/// The syncer's loop: takes every committed batch waiting, syncs once, answers them all
/// in commit order. After a failed sync it never reports success again: what a failed
/// fsync left on disk is unknown (the kernel may have dropped the dirty pages and a later
/// fsync may succeed without them), so every later batch fails too, until the server is
/// restarted and SQLite recovers the file from what is really there.
fn run_syncer(
    rx: &std::sync::mpsc::Receiver<Committed>,
    durability: &dyn Durability,
    stats: &StatsInner,
) {
    let mut failed: Option<Error> = None;
    let mut done: Vec<Committed> = Vec::new();
    while let Ok(first) = rx.recv() {
        done.push(first);
        done.extend(rx.try_iter());
        let outcome = match &failed {
            Some(e) => Err(e.clone()),
            None => durability.sync(),
        };
        if let (Err(e), None) = (&outcome, &failed) {
            tracing::error!(error = %e, "syncing the issuance log failed; every later append \
                fails until the server is restarted");
            failed = Some(e.clone());
        }
        for c in done.drain(..) {
            let result = match &outcome {
                Ok(()) => Ok(c.receipts),
                Err(e) => Err(e.clone()),
            };
            answer(c.replies, result, c.started, stats);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests: a panic is a failed assertion")]

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    use super::*;

    /// A sync that waits until the test lets it finish, with the outcome the test sends.
    #[derive(Debug)]
    struct HeldSync {
        outcome: Mutex<std_mpsc::Receiver<bool>>,
        started: AtomicUsize,
    }

    impl Durability for HeldSync {
        fn sync(&self) -> Result<(), Error> {
            self.started.fetch_add(1, Ordering::SeqCst);
            match self.outcome.lock().unwrap().recv() {
                Ok(true) => Ok(()),
                _ => Err(Error::Io(Arc::new(std::io::Error::other("sync failed")))),
            }
        }
    }

    type Answer = oneshot::Receiver<Result<Receipt, Error>>;

    fn committed(seq: u64) -> (Committed, Answer) {
        let (reply, answer) = oneshot::channel();
        let receipt = Receipt {
            seq,
            chain_hash: [0; 32],
        };
        let c = Committed {
            replies: vec![reply],
            receipts: vec![receipt],
            started: Instant::now(),
        };
        (c, answer)
    }

    fn wait_for_syncs(held: &HeldSync, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while held.started.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "sync {n} never began");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// No answer before the sync that covers its batch; one sync covers every batch
    /// committed before it began; after a failed sync no batch succeeds any more, even
    /// without another sync.
    #[test]
    fn answers_wait_for_their_sync_and_a_failed_sync_fails_every_later_batch() {
        let (outcome, rx) = std_mpsc::channel();
        let held = Arc::new(HeldSync {
            outcome: Mutex::new(rx),
            started: AtomicUsize::new(0),
        });
        let stats = Arc::new(StatsInner::default());
        let syncer = Syncer::spawn(held.clone(), stats.clone()).unwrap();

        let (c1, mut a1) = committed(1);
        syncer.tx.send(c1).unwrap();
        wait_for_syncs(&held, 1);
        // Batches 2 and 3 commit while sync 1 is under way: sync 1 does not cover them.
        let (c2, mut a2) = committed(2);
        let (c3, mut a3) = committed(3);
        syncer.tx.send(c2).unwrap();
        syncer.tx.send(c3).unwrap();
        assert!(a1.try_recv().is_err(), "batch 1 answered before its sync");
        outcome.send(true).unwrap();
        assert_eq!(a1.blocking_recv().unwrap().unwrap().seq, 1);

        wait_for_syncs(&held, 2);
        assert!(a2.try_recv().is_err() && a3.try_recv().is_err());
        outcome.send(false).unwrap();
        assert!(matches!(a2.blocking_recv().unwrap(), Err(Error::Io(_))));
        assert!(matches!(a3.blocking_recv().unwrap(), Err(Error::Io(_))));

        // Syncing again could succeed without the pages the failed sync lost.
        let (c4, a4) = committed(4);
        syncer.tx.send(c4).unwrap();
        assert!(matches!(a4.blocking_recv().unwrap(), Err(Error::Io(_))));
        assert_eq!(
            held.started.load(Ordering::SeqCst),
            2,
            "no sync after a failed one"
        );

        syncer.finish();
        let s = stats.snapshot();
        assert_eq!((s.batches, s.records), (1, 1));
        assert_eq!((s.failed_batches, s.failed_records), (3, 3));
    }
}
