//! The renewal scheduler (issue #16): renews the evidence Hanko keeps before the TSA
//! certificates it relies on expire, by RFC 4998 time-stamp renewal (section 5.2,
//! docs/requirements.md F.65), many chains under one time-stamp.
//!
//! Every done anchor starts an evidence chain (batch, target): its archive time-stamp
//! ends the evidence record of every leaf of the batch, so renewing the chain once renews
//! them all. The scheduler, on the one node holding the renewal lock
//! ([`hanko_store::Store::renewal_lock`]: PostgreSQL's advisory lock, as the batcher's),
//! every tick:
//!
//! ```text
//!   1. finish the runs still planned (a crash left them): token, then complete
//!   2. index done anchors as chains: next_hash = H(token), not_after = its TSA cert's
//!   3. while chains are due (not_after <= now + renew_before, see `horizon`) and a
//!      renewal would gain time (the own TSA's certificate outlives theirs):
//!        up to MAX_CHAINS_PER_RUN of them, earliest first
//!        ─> RunTree over their next_hash ─> root, one reduced hash tree per chain
//!        ─> Store::plan_renewal          (run planned + renewals + chains held; atomic)
//!        ─> own TSA: archive time-stamp over root, logged (kind archive-stamp)
//!        ─> Store::complete_renewal      (token + every chain one renewal on; atomic)
//!        ─> pause PAUSE_BETWEEN_RUNS (rate limit: renewal never crowds out issuance)
//! ```
//!
//! Restartable at any point without renewing twice: a crash before the plan commits
//! leaves nothing; after it, the run is planned and its chains held, so step 1 finishes
//! that run (a token issued before the crash but not stored is a logged, unused
//! archive time-stamp, as with anchors), and no chain is planned into a second run
//! meanwhile. The store refuses a second renewal of the same number for a chain.
//! Renewal tokens are archive time-stamps: a range of only those never closes a batch
//! (the batcher's rule), they join the next batch of issued records.
//!
//! The chains are those of done anchors and, once a hash-tree renewal run
//! (`POST /api/v1/archive/objects/rehash`) is done, its new chain (added by the store as
//! the run completes): renewed alike.
//!
//! What it does not do: decide the policy beyond [`horizon`] (the `[renewal]` policy
//! will take its place), or renew chains whose token carries no TSA certificate (their
//! expiry is unknown: never due).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hanko_anchor::evidence;
use hanko_anchor::renewal::{RunTree, reduced_from_der, reduced_to_der};
use hanko_anchor::tree::HashAlg;
use hanko_store::{
    ChainOrigin, EvidenceChain, NewRun, PlannedChain, RenewalKind, RenewalRun, Store, StoredRenewal,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fault::{FaultPoint, pause_at};
use crate::issuance::Issuer;
use crate::logging::LogLimiter;

/// Most chains renewed under one time-stamp.
pub const MAX_CHAINS_PER_RUN: u32 = 1_000;
/// The wait between two runs while more are due: the rate limit.
pub const PAUSE_BETWEEN_RUNS: Duration = Duration::from_millis(500);
/// How often the scheduler looks (5 s with `--dev`).
pub const TICK: Duration = Duration::from_secs(60);
/// [`TICK`] with `--dev`.
pub const DEV_TICK: Duration = Duration::from_secs(5);
/// Done anchors indexed per statement.
const INDEX_PAGE: u32 = 1_000;
/// A hash-tree run still planned after this long was abandoned by its request.
const ABANDONED_AFTER: Duration = Duration::from_secs(300);
/// The client name renewal time-stamps are logged under.
pub const RENEWAL_CLIENT: &str = "renewal";

/// The scheduler's settings.
#[derive(Clone, Debug)]
pub struct RenewalSettings {
    /// Renew a chain this long before its TSA certificate expires: the `[renewal]`
    /// policy's `time_stamp_before` (`renewal.time_stamp_before_days`, 365 by default).
    pub renew_before: Duration,
    /// See [`MAX_CHAINS_PER_RUN`].
    pub max_chains_per_run: u32,
    /// See [`PAUSE_BETWEEN_RUNS`].
    pub pause_between_runs: Duration,
    /// See [`TICK`].
    pub tick: Duration,
}

impl RenewalSettings {
    /// The defaults, with the dev tick when `dev`, renewing `renew_before` ahead.
    pub fn new(dev: bool, renew_before: Duration) -> Self {
        Self {
            renew_before,
            max_chains_per_run: MAX_CHAINS_PER_RUN,
            pause_between_runs: PAUSE_BETWEEN_RUNS,
            tick: if dev { DEV_TICK } else { TICK },
        }
    }
}

/// The policy decision, in one place: a chain whose last archive time-stamp's TSA
/// certificate expires at or before the returned time is due at `now`.
pub fn horizon(settings: &RenewalSettings, now: SystemTime) -> SystemTime {
    now + settings.renew_before
}

/// The running scheduler.
#[derive(Debug)]
pub struct Renewal {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Renewal {
    /// Stops the scheduler and waits for it (a run in flight is finished or left planned).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the renewal scheduler panicked");
        }
    }
}

/// Starts the scheduler, renewing with the own TSA of `issuer`.
pub fn spawn(
    store: Store,
    issuer: Arc<Issuer>,
    settings: RenewalSettings,
    fault: Option<FaultPoint>,
) -> Renewal {
    let (tx, rx) = watch::channel(false);
    tracing::info!(renew_before = ?settings.renew_before,
        max_chains_per_run = settings.max_chains_per_run, "renewing evidence chains");
    let scheduler = Scheduler {
        store,
        issuer,
        settings,
        fault,
    };
    Renewal {
        shutdown: tx,
        task: tokio::spawn(scheduler.run(rx)),
    }
}

struct Scheduler {
    store: Store,
    issuer: Arc<Issuer>,
    settings: RenewalSettings,
    fault: Option<FaultPoint>,
}

impl Scheduler {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        static FAILURES: LogLimiter = LogLimiter::new(Duration::from_secs(10));
        let mut lock = None;
        let mut tick = tokio::time::interval(self.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tick.tick() => {}
            }
            if let Some(l) = lock.as_mut()
                && !hanko_store::BatcherLock::still_held(l).await
            {
                tracing::warn!("renewal lock lost: renewal stops on this node");
                lock = None;
            }
            if lock.is_none() {
                match self.store.renewal_lock().await {
                    Ok(Some(l)) => {
                        tracing::info!(node = self.store.node_id(), "renewal lock taken");
                        lock = Some(l);
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        if let Some(suppressed) = FAILURES.check() {
                            tracing::warn!(error = %e, suppressed, "cannot take the renewal lock");
                        }
                        continue;
                    }
                }
            }
            let Some(held) = lock.as_mut() else { continue };
            if let Err(e) = self.pass(held, &shutdown).await {
                metrics::counter!("hanko_renewal_failures_total").increment(1);
                if let Some(suppressed) = FAILURES.check() {
                    tracing::warn!(error = %e, suppressed, "renewal pass failed");
                }
            }
            self.refresh_gauges().await;
        }
        if let Some(l) = lock {
            l.release().await;
        }
    }

    /// Steps 1 to 3 of the module docs.
    async fn pass(
        &self,
        lock: &mut hanko_store::BatcherLock,
        shutdown: &watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        for run in self.store.planned_runs().await? {
            if *shutdown.borrow() {
                return Ok(());
            }
            // A hash-tree run is planned and finished by its request: only one left
            // planned for long was cut short (its node crashed).
            let age = SystemTime::now()
                .duration_since(run.planned_at)
                .unwrap_or_default();
            if run.kind == RenewalKind::HashTree && age < ABANDONED_AFTER {
                continue;
            }
            tracing::info!(
                run = run.id,
                leaves = run.leaf_count,
                "finishing a planned renewal run"
            );
            self.finish(&run, shutdown).await?;
        }
        self.index_anchors().await?;
        let Some(own_not_after) = self.own_not_after() else {
            return Ok(());
        };
        for alg in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            loop {
                if *shutdown.borrow() {
                    return Ok(());
                }
                let due = self
                    .store
                    .due_chains(
                        alg_name(alg),
                        horizon(&self.settings, SystemTime::now()),
                        own_not_after,
                        self.settings.max_chains_per_run,
                    )
                    .await?;
                if due.is_empty() {
                    break;
                }
                // Another node may have taken over since the tick (our session dropped):
                // the store would refuse a chain twice anyway, but do not compete.
                if !lock.still_held().await {
                    return Ok(());
                }
                let run = self.plan(alg, &due).await?;
                pause_at(self.fault, FaultPoint::RenewalPlanned, shutdown).await;
                self.finish(&run, shutdown).await?;
                self.refresh_gauges().await;
                let mut stop = shutdown.clone();
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                    () = tokio::time::sleep(self.settings.pause_between_runs) => {}
                }
            }
        }
        Ok(())
    }

    /// Indexes done anchors without a chain row.
    async fn index_anchors(&self) -> anyhow::Result<()> {
        loop {
            let page = self.store.unindexed_anchors(INDEX_PAGE).await?;
            let chains: Vec<EvidenceChain> = page
                .iter()
                .filter_map(|a| {
                    let alg = alg_of(&a.hash_alg)?;
                    Some(EvidenceChain {
                        id: 0,
                        origin: ChainOrigin::Anchor {
                            batch_id: a.batch_id,
                            target: a.target.clone(),
                        },
                        hash_alg: a.hash_alg.clone(),
                        renewals: 0,
                        next_hash: alg.digest(&a.token),
                        not_after: hanko_client::claimed_tsa(&a.token).map(|c| c.not_after()),
                    })
                })
                .collect();
            self.store.index_chains(&chains).await?;
            if page.len() < INDEX_PAGE as usize {
                return Ok(());
            }
        }
    }

    /// The earliest notAfter of the own TSA's certificates: a chain expiring no earlier
    /// gains nothing by a renewal.
    fn own_not_after(&self) -> Option<SystemTime> {
        self.issuer
            .units()
            .iter()
            .map(|u| u.certificate().not_after())
            .min()
    }

    /// Plans one run over `due`.
    async fn plan(&self, alg: HashAlg, due: &[EvidenceChain]) -> anyhow::Result<RenewalRun> {
        let leaves: Vec<&[u8]> = due.iter().map(|c| c.next_hash.as_slice()).collect();
        let tree = RunTree::new(alg, &leaves)?;
        let mut chains = Vec::with_capacity(due.len());
        for (i, c) in due.iter().enumerate() {
            chains.push(PlannedChain {
                chain_id: c.id,
                renewals: c.renewals,
                leaf_index: i as u64,
                reduced: reduced_to_der(&tree.reduced_hashtree(i)?)?,
            });
        }
        let run = self
            .store
            .plan_renewal(&NewRun {
                kind: RenewalKind::TimeStamp,
                hash_alg: alg_name(alg).to_owned(),
                root: tree.root().to_vec(),
                chains,
                hash_trees: Vec::new(),
            })
            .await?;
        tracing::info!(run = run.id, chains = due.len(), "renewal run planned");
        Ok(run)
    }

    /// [`finish_run`] with the test hook's point.
    async fn finish(
        &self,
        run: &RenewalRun,
        shutdown: &watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        finish_run(
            &self.store,
            &self.issuer,
            run,
            self.fault.map(|f| (f, shutdown)),
        )
        .await?;
        Ok(())
    }

    /// `hanko_renewal_chains_due` and `hanko_renewal_oldest_overdue_seconds`.
    async fn refresh_gauges(&self) {
        let now = SystemTime::now();
        if let Ok(s) = self.store.renewal_stats(horizon(&self.settings, now)).await {
            metrics::gauge!("hanko_renewal_chains_due").set(s.due as f64);
            let age = s.earliest_not_after.map_or(0.0, |t| {
                let due_at = t.checked_sub(self.settings.renew_before).unwrap_or(t);
                now.duration_since(due_at).map_or(0.0, |d| d.as_secs_f64())
            });
            metrics::gauge!("hanko_renewal_oldest_overdue_seconds").set(age);
        }
    }
}

/// Time-stamps planned run `run`'s root with the own TSA (the token logged, kind
/// `archive-stamp`) and completes it; its token. `pause`: the test hook's point and the
/// shutdown signal it waits for. The scheduler finishes its runs with it, and so does
/// the hash-tree renewal route; a run left planned by a crash is finished by the
/// scheduler's next pass.
pub async fn finish_run(
    store: &Store,
    issuer: &Issuer,
    run: &RenewalRun,
    pause: Option<(FaultPoint, &watch::Receiver<bool>)>,
) -> anyhow::Result<Vec<u8>> {
    let alg = alg_of(&run.hash_alg)
        .ok_or_else(|| anyhow::anyhow!("run {}: algorithm {:?}", run.id, run.hash_alg))?;
    let issued = issuer
        .issue_archive_stamp(alg.pki(), &run.root, RENEWAL_CLIENT)
        .await
        .map_err(|r| anyhow::anyhow!("run {}: own TSA: {r}", run.id))?;
    let token = issued.token.token_der;
    evidence::check_anchor_token(alg, &run.root, &token)?;
    let not_after = hanko_client::claimed_tsa(&token)
        .map(|c| c.not_after())
        .ok_or_else(|| anyhow::anyhow!("run {}: the token carries no certificate", run.id))?;
    if let Some((fault, shutdown)) = pause {
        pause_at(Some(fault), FaultPoint::RenewalStamped, shutdown).await;
    }
    store
        .complete_renewal(run.id, &token, &alg.digest(&token), not_after)
        .await?;
    if run.kind == RenewalKind::TimeStamp {
        metrics::counter!("hanko_renewal_chains_renewed_total").increment(run.leaf_count);
    }
    metrics::counter!("hanko_renewal_runs_total", "kind" => run.kind.as_str()).increment(1);
    tracing::info!(
        run = run.id,
        kind = run.kind.as_str(),
        leaves = run.leaf_count,
        "renewal run done"
    );
    Ok(token)
}

/// The stored name of a tree algorithm (`"sha256"`, ...).
pub fn alg_name(alg: HashAlg) -> &'static str {
    alg.pki().name()
}

/// The tree algorithm of a stored name.
pub fn alg_of(name: &str) -> Option<HashAlg> {
    [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512]
        .into_iter()
        .find(|a| alg_name(*a) == name)
}

/// `base`, the evidence record of leaf `seq` over the anchor (`batch_id`, `target`),
/// with the chain's time-stamp renewals appended, then the object's hash-tree renewal of
/// this chain if there is one (with the time-stamp renewals it covered) and the new
/// chain's own time-stamp renewals: what the evidence routes serve.
pub async fn renewed_record(
    store: &Store,
    base: Vec<u8>,
    batch_id: u64,
    target: &str,
    seq: u64,
) -> anyhow::Result<Vec<u8>> {
    let anchor = ChainOrigin::Anchor {
        batch_id,
        target: target.to_owned(),
    };
    let renewals = store.chain_renewals(&anchor).await?;
    let rehash: Option<StoredRenewal> = store
        .hash_tree_renewals(seq)
        .await?
        .into_iter()
        .find(|h| h.batch_id == batch_id && h.target == target);
    let covered = rehash.as_ref().map_or(usize::MAX, |h| h.n as usize);
    let mut der = base;
    for r in renewals.iter().take(covered) {
        der = evidence::renew_time_stamp(&der, &reduced_from_der(&r.reduced)?, &r.token)?;
    }
    if let Some(h) = rehash {
        let alg = alg_of(&h.hash_alg)
            .ok_or_else(|| anyhow::anyhow!("hash-tree renewal of {seq}: {:?}", h.hash_alg))?;
        der = evidence::renew_hash_tree(
            &der,
            alg,
            &h.data_hash,
            &reduced_from_der(&h.reduced)?,
            &h.token,
        )?;
        let rehashed = ChainOrigin::Rehash { run_id: h.run_id };
        for r in store.chain_renewals(&rehashed).await? {
            der = evidence::renew_time_stamp(&der, &reduced_from_der(&r.reduced)?, &r.token)?;
        }
    }
    Ok(der)
}
