//! The anchoring tasks: one batcher, and one task per target.
//!
//! The batcher ticks every second. On every node it refreshes the gauges
//! (`hanko_anchor_open_leaves`, `hanko_anchor_oldest_unanchored_seconds`); on the one node
//! holding the batcher lock ([`hanko_store::Store::batcher_lock`]: PostgreSQL's advisory
//! lock, always granted on SQLite) it closes the open range once its oldest record has
//! waited `anchor.interval` or `anchor.max_leaves` records wait. It checks before every
//! close that the lock is still held; a lost lock (its session dropped) stops batching
//! and anchoring on this node until it is taken again. Closing twice is harmless anyway:
//! the store refuses a second close of a range ([`hanko_store::Error::BatchConflict`]).
//!
//! Each target's task anchors its pending batches, oldest first, each when due; a token
//! is stored only once `hanko_anchor::evidence::check_anchor_token` accepts it over the
//! root (else the attempt failed). A failure
//! sets its next attempt 1 s, 2 s, 4 s, ... later, capped at `anchor.retry_max`. The tasks
//! share nothing but the store, so a target that is down delays only its own anchors.
//! They run only while this node is the batcher, so two nodes never anchor one batch.
//!
//! Shutdown: [`Anchoring::stop`] signals every task and joins them; an attempt in flight
//! finishes first (an external TSA's attempt is bounded by its `timeout_ms`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use hanko_anchor::tree;
use hanko_store::{Batch, NewBatch, Store};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::fault::{FaultPoint, pause_at};
use super::{AnchorTarget, TREE_ALG, TREE_ALG_NAME};
use crate::config::AnchorSettings;
use crate::logging::LogLimiter;

/// How often the batcher looks at the open range.
const TICK: Duration = Duration::from_secs(1);
/// How long an idle target task waits before it looks again (a close also wakes it).
const IDLE: Duration = Duration::from_secs(5);
/// First back-off after a failed attempt; doubles per attempt.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Pending anchors a target task takes at a time.
const PENDING_PAGE: u32 = 32;

/// What the tasks share.
#[derive(Debug, Default)]
struct Shared {
    /// This node holds the batcher lock.
    leader: AtomicBool,
    /// Notified when a batch closed or the lock was taken.
    wake: Notify,
    /// The test hook's point (`serve --dev` only; see `super::fault`).
    fault: Option<FaultPoint>,
}

/// The running anchoring tasks.
#[derive(Debug)]
pub struct Anchoring {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Anchoring {
    /// Stops every task and waits for them (an attempt in flight finishes first).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "an anchoring task panicked");
            }
        }
    }
}

/// Starts the batcher and one task per target; `fault` is the test hook's point
/// (`serve --dev` only).
pub fn spawn(
    store: Store,
    settings: &AnchorSettings,
    targets: Vec<Arc<dyn AnchorTarget>>,
    fault: Option<FaultPoint>,
) -> Anchoring {
    let (tx, rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        fault,
        ..Shared::default()
    });
    let names: Vec<String> = targets.iter().map(|t| t.name().to_owned()).collect();
    tracing::info!(interval = ?settings.interval, max_leaves = settings.max_leaves,
        targets = ?names, "anchoring the issuance log");
    let mut tasks = vec![tokio::spawn(batcher(
        store.clone(),
        settings.clone(),
        names,
        shared.clone(),
        rx.clone(),
    ))];
    for t in targets {
        tasks.push(tokio::spawn(target_task(
            store.clone(),
            t,
            settings.retry_max,
            shared.clone(),
            rx.clone(),
        )));
    }
    Anchoring {
        shutdown: tx,
        tasks,
    }
}

/// Resolves when shutdown is signalled (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn batcher(
    store: Store,
    settings: AnchorSettings,
    targets: Vec<String>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    static FAILURES: LogLimiter = LogLimiter::new(Duration::from_secs(10));
    let mut lock = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            _ = tick.tick() => {}
        }
        refresh_gauges(&store).await;
        if let Some(l) = lock.as_mut()
            && !hanko_store::BatcherLock::still_held(l).await
        {
            tracing::warn!("batcher lock lost: batching and anchoring stop on this node");
            shared.leader.store(false, Ordering::SeqCst);
            lock = None;
        }
        if lock.is_none() {
            match store.batcher_lock().await {
                Ok(Some(l)) => {
                    tracing::info!(node = store.node_id(), "batcher lock taken");
                    lock = Some(l);
                    shared.leader.store(true, Ordering::SeqCst);
                    shared.wake.notify_waiters();
                }
                Ok(None) => continue,
                Err(e) => {
                    if let Some(suppressed) = FAILURES.check() {
                        tracing::warn!(error = %e, suppressed, "cannot take the batcher lock");
                    }
                    continue;
                }
            }
        }
        match close_if_due(&store, &settings, &targets, shared.fault, &shutdown).await {
            Ok(Some(_)) => shared.wake.notify_waiters(),
            Ok(None) => {}
            Err(e) => {
                if let Some(suppressed) = FAILURES.check() {
                    tracing::warn!(error = %e, suppressed, "closing an anchor batch failed");
                }
            }
        }
    }
    shared.leader.store(false, Ordering::SeqCst);
    if let Some(l) = lock {
        l.release().await;
    }
}

/// The open-range and oldest-unanchored gauges.
async fn refresh_gauges(store: &Store) {
    if let Ok(open) = store.open_range().await {
        metrics::gauge!("hanko_anchor_open_leaves").set(open.map_or(0, |o| o.len()) as f64);
    }
    if let Ok(oldest) = store.oldest_unanchored().await {
        let age = oldest.map_or(0.0, |(_, t)| {
            SystemTime::now()
                .duration_since(t)
                .map_or(0.0, |d| d.as_secs_f64())
        });
        metrics::gauge!("hanko_anchor_oldest_unanchored_seconds").set(age);
    }
}

/// Closes the open range if it is due (see the module docs); the batch closed, if any.
async fn close_if_due(
    store: &Store,
    settings: &AnchorSettings,
    targets: &[String],
    fault: Option<FaultPoint>,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<Option<Batch>> {
    let Some(open) = store.open_range().await? else {
        return Ok(None);
    };
    if !open.has_issued {
        return Ok(None);
    }
    let age = SystemTime::now()
        .duration_since(open.first_issued_at)
        .unwrap_or_default();
    if open.len() < settings.max_leaves && age < settings.interval {
        return Ok(None);
    }
    let last = open.head_seq.min(open.first_seq + settings.max_leaves - 1);
    close_range(store, open.first_seq, last, targets, fault, shutdown)
        .await
        .map(Some)
}

/// Hashes `first..=last` block by block and closes it as one batch.
async fn close_range(
    store: &Store,
    first: u64,
    last: u64,
    targets: &[String],
    fault: Option<FaultPoint>,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<Batch> {
    let started = std::time::Instant::now();
    let (root, block_roots) = tree_of(store, first, last).await?;
    pause_at(fault, FaultPoint::BeforeClose, shutdown).await;
    let batch = store
        .close_batch(&NewBatch {
            first_seq: first,
            last_seq: last,
            hash_alg: TREE_ALG_NAME.to_owned(),
            root,
            block_roots,
            closed_at: SystemTime::now(),
            targets: targets.to_vec(),
        })
        .await?;
    metrics::counter!("hanko_anchor_batches_total").increment(1);
    tracing::info!(
        batch = batch.id,
        first_seq = batch.first_seq,
        last_seq = batch.last_seq,
        leaves = batch.leaf_count,
        root = %hex::encode(&batch.root),
        took_ms = started.elapsed().as_millis() as u64,
        "anchor batch closed"
    );
    pause_at(fault, FaultPoint::AfterClose, shutdown).await;
    Ok(batch)
}

/// The root and block roots over the object hashes of `first..=last`, read one block at
/// a time (memory: one block plus one root per block). The batcher's computation, and
/// what `hanko log verify` recomputes.
pub async fn tree_of(
    store: &Store,
    first: u64,
    last: u64,
) -> anyhow::Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut block_roots = Vec::new();
    let mut leaves = store.object_hashes(first, last);
    while let Some(block) = leaves.next_chunk(tree::BLOCK_LEAVES as u32).await? {
        let root = tree::block_root(TREE_ALG, &block)
            .ok_or_else(|| anyhow::anyhow!("empty block in {first}..={last}"))?;
        block_roots.push(root);
    }
    let root = tree::root_of_blocks(TREE_ALG, &block_roots)
        .ok_or_else(|| anyhow::anyhow!("no leaves in {first}..={last}"))?;
    Ok((root, block_roots))
}

async fn target_task(
    store: Store,
    target: Arc<dyn AnchorTarget>,
    retry_max: Duration,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = target.name().to_owned();
    loop {
        if *shutdown.borrow() {
            break;
        }
        // The test hook's after-close point: batches close, no anchor is attempted.
        let anchoring =
            shared.leader.load(Ordering::SeqCst) && shared.fault != Some(FaultPoint::AfterClose);
        let wait = if anchoring {
            match anchor_due(&store, target.as_ref(), retry_max, shared.fault, &shutdown).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(target = %name, error = %e, "reading pending anchors failed");
                    IDLE
                }
            }
        } else {
            IDLE
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Attempts every due pending anchor of `target` once; returns how long to wait before
/// looking again (zero: more may be pending right away).
async fn anchor_due(
    store: &Store,
    target: &dyn AnchorTarget,
    retry_max: Duration,
    fault: Option<FaultPoint>,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<Duration> {
    let pending = store.pending_anchors(target.name(), PENDING_PAGE).await?;
    if pending.is_empty() {
        return Ok(IDLE);
    }
    let mut wait = IDLE;
    let mut attempted = 0usize;
    for p in &pending {
        if *shutdown.borrow() {
            return Ok(IDLE);
        }
        let now = SystemTime::now();
        let due = std::time::UNIX_EPOCH
            + Duration::from_nanos(u64::try_from(p.next_attempt_at_ns).unwrap_or(0));
        if let Ok(later) = due.duration_since(now)
            && !later.is_zero()
        {
            wait = wait.min(later);
            continue;
        }
        attempted += 1;
        if let Some(retry_in) = attempt(store, target, p, retry_max, fault, shutdown).await? {
            wait = wait.min(retry_in);
        }
    }
    if attempted == pending.len() && pending.len() == PENDING_PAGE as usize {
        return Ok(Duration::ZERO);
    }
    Ok(wait.max(Duration::from_millis(50)))
}

/// One attempt of `target` on one pending anchor, recorded either way; after a failure,
/// how long until the next attempt.
async fn attempt(
    store: &Store,
    target: &dyn AnchorTarget,
    p: &hanko_store::PendingAnchor,
    retry_max: Duration,
    fault: Option<FaultPoint>,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<Option<Duration>> {
    let name = target.name();
    let started = std::time::Instant::now();
    // A token that could make no evidence record (not DER throughout, another imprint)
    // is a failed attempt, not a done anchor.
    let outcome = target
        .anchor(TREE_ALG.pki(), &p.root)
        .await
        .and_then(|token| {
            hanko_anchor::evidence::check_anchor_token(TREE_ALG, &p.root, &token)
                .map(|_| token)
                .map_err(|e| super::AnchorError(format!("its token cannot anchor the root: {e}")))
        });
    metrics::histogram!("hanko_anchor_seconds", "target" => name.to_owned())
        .record(started.elapsed().as_secs_f64());
    match outcome {
        Ok(token) => {
            pause_at(fault, FaultPoint::DuringAnchor, shutdown).await;
            store
                .anchor_done(p.batch_id, name, &token, SystemTime::now())
                .await?;
            tracing::info!(
                batch = p.batch_id,
                target = name,
                attempts = p.attempts + 1,
                "anchor done"
            );
            Ok(None)
        }
        Err(e) => {
            metrics::counter!("hanko_anchor_failures_total", "target" => name.to_owned())
                .increment(1);
            let backoff = backoff(p.attempts, retry_max);
            store
                .anchor_failed(p.batch_id, name, &e.0, SystemTime::now() + backoff)
                .await?;
            tracing::warn!(batch = p.batch_id, target = name, attempts = p.attempts + 1,
                retry_in = ?backoff, error = %e, "anchor attempt failed");
            Ok(Some(backoff))
        }
    }
}

/// The wait after a failed attempt that followed `failed_before` failed ones: 1 s, 2 s,
/// 4 s, ... capped at `cap`.
fn backoff(failed_before: u32, cap: Duration) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failed_before.min(20))
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cap = Duration::from_secs(10);
        let waits: Vec<u64> = (0..6).map(|n| backoff(n, cap).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff(u32::MAX, cap), cap);
    }
}
