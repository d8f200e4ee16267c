//! The WAL checkpointer of the SQLite log: a thread with a connection of its own that
//! copies the writer's committed WAL frames into the database file, so that the writer
//! never does (issue #17).
//!
//! Left to SQLite, the connection that commits runs a checkpoint whenever the WAL passes
//! 1,000 pages: on the log writer's thread, between two batches, with every request of
//! the next batch waiting behind it (a third of the writer's CPU, and a database fsync
//! of ~14 ms every few dozen batches, in benches/RESULTS.md 2026-12-03). The writer's
//! connection now has `wal_autocheckpoint = 0`, and this thread does the work:
//!
//! ```text
//!  every INTERVAL, if the writer committed since the last look:
//!    PRAGMA wal_checkpoint(PASSIVE)    copies what no reader still needs; never waits
//!    WAL above LIMIT_FRAMES?           the writer never paused long enough for a passive
//!      PRAGMA wal_checkpoint(RESTART)  checkpoint to catch up: wait for the writer's
//!                                      current batch, copy the rest, and make the next
//!                                      batch start the WAL from its beginning
//! ```
//!
//! Durability does not depend on it: every commit is in the WAL, synced before anyone is
//! answered (`sqlite_writer.rs`), and a checkpoint syncs the WAL before it copies and the
//! database file after (this connection runs with `synchronous = FULL`). A checkpoint that
//! fails or finds the WAL pinned by a long reader is tried again at the next interval;
//! the WAL grows meanwhile, as it would with SQLite's own checkpoints. What it does not
//! do: run while nothing is committed, or keep the database open after the writer closes
//! (the last clone of the writer stops and joins it).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::Error;

/// How often the checkpointer looks for new commits.
const INTERVAL: Duration = Duration::from_millis(100);
/// WAL frames (pages) above which a RESTART checkpoint bounds the file: 16,384 pages of
/// 4 KiB, 64 MiB.
const LIMIT_FRAMES: i64 = 16_384;
/// How long a RESTART checkpoint waits for the writer's batch in progress.
const RESTART_BUSY_TIMEOUT: Duration = Duration::from_millis(250);
/// `PRAGMA journal_size_limit` for the writer: a WAL that a long reader let grow is cut
/// back to this when it is next restarted.
pub(super) const JOURNAL_SIZE_LIMIT: i64 = LIMIT_FRAMES * 4096;

/// The running checkpointer; dropping it stops the thread and waits for it.
#[derive(Debug)]
pub(super) struct Checkpointer {
    commits: Arc<AtomicU64>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection of its own to the (migrated, WAL-mode) database at `path` and
    /// starts the thread.
    pub(super) fn start(path: &Path) -> Result<Checkpointer, Error> {
        let err = |e| Error::sqlite("open checkpoint connection", e);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(RESTART_BUSY_TIMEOUT).map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        // This connection never commits, but if it ever did it must not checkpoint on
        // its own schedule either.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(err)?;
        let commits = Arc::new(AtomicU64::new(0));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (c, s) = (commits.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("hanko-log-ckpt".into())
            .spawn(move || run(&conn, &c, &s))
            .map_err(|e| Error::Io(Arc::new(e)))?;
        Ok(Checkpointer {
            commits,
            stop,
            thread: Some(thread),
        })
    }

    /// Tells the checkpointer that the writer committed (one relaxed atomic add: the
    /// thread looks at its own pace, no wake-up).
    pub(super) fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (flag, cv) = &*self.stop;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("issuance log checkpointer failed");
        }
    }
}

fn run(conn: &Connection, commits: &AtomicU64, stop: &(Mutex<bool>, Condvar)) {
    let (flag, cv) = stop;
    let passive = metrics::histogram!("hanko_log_checkpoint_seconds", "mode" => "passive");
    let restart = metrics::histogram!("hanko_log_checkpoint_seconds", "mode" => "restart");
    let errors = metrics::counter!("hanko_log_checkpoint_errors_total");
    let mut seen = 0;
    let mut last_error: Option<Instant> = None;
    loop {
        {
            let stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
            let (stopped, _) = cv
                .wait_timeout_while(stopped, INTERVAL, |s| !*s)
                .unwrap_or_else(|p| p.into_inner());
            if *stopped {
                break;
            }
        }
        let now = commits.load(Ordering::Relaxed);
        if now == seen {
            continue;
        }
        seen = now;
        let outcome = match checkpoint(conn, "PASSIVE", &passive) {
            Ok(frames) if frames > LIMIT_FRAMES => checkpoint(conn, "RESTART", &restart),
            other => other,
        };
        if let Err(e) = outcome {
            errors.increment(1);
            // At most one line a minute: the next interval tries again.
            if last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                last_error = Some(Instant::now());
                tracing::warn!(error = %e, "issuance log checkpoint failed; the WAL grows \
                    until one succeeds (no record is at risk)");
            }
        }
    }
    tracing::debug!("issuance log checkpointer stopped");
}

/// Runs one checkpoint in `mode`; the number of frames in the WAL it saw.
fn checkpoint(conn: &Connection, mode: &str, timing: &metrics::Histogram) -> Result<i64, Error> {
    let started = Instant::now();
    let (_busy, frames, _copied): (i64, i64, i64) = conn
        .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(|e| Error::sqlite("checkpoint", e))?;
    timing.record(started.elapsed().as_secs_f64());
    Ok(frames)
}
