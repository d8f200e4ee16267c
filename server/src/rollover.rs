//! Key rollover of the time-stamping units (issue #18): a unit's next key takes over at
//! its activation time, on every node with the same configuration, without a restart.
//!
//! ```text
//!   [[keys]] label = "tsa-2027"  succeeds = "tsa-2026"  activate_at = "2027-04-01T00:00:00Z"
//!
//!   start-up / reload ─> key loaded and checked (certificate valid at activate_at) ─┐
//!                                                                                   v
//!   Rollover task: sleeps until the earliest activate_at (re-checks every second and on
//!   every schedule change) ─> Issuer::hand_over: Tsa::install_unit for every policy the
//!   old key signs ─> audit key-activated (new key), key-retired (old key)
//! ```
//!
//! The switch is one replacement per policy in the TSA's unit table: a request that has
//! looked its unit up already finishes on the old key (it holds it), the next one gets
//! the new key; no request fails across it. The old key signs nothing more, but its
//! certificate stays in `/tsa/certs` until it expires (`Issuer::published_units`), and
//! `/readyz` stops checking it (its certificate may expire while the server runs).
//! Each node switches by its own clock, which the TSA keeps within its accuracy: nodes
//! switch within that accuracy of each other. A node that was not running at the time
//! starts on the new key (`StartPlan`) and records no activation: its `key-loaded`
//! events say which keys it has.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use hanko_store::Store;
use hanko_tsa::{PolicyId, TimeStampUnit};

use crate::config::{KeySpec, TsaSettings, successors_of};
use crate::issuance::Issuer;
use crate::state::SigningKey;

/// The longest the rollover task sleeps before looking at the clock again (a clock
/// step, a suspended VM).
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// Where a key stands in a rollover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPhase {
    /// It signs (or is not part of any rollover).
    Active,
    /// It takes over at `at`.
    Pending {
        /// Its activation time.
        at: SystemTime,
    },
    /// It was handed over from at `at` and signs nothing more.
    Retired {
        /// When its successor took over.
        at: SystemTime,
    },
}

/// A rollover still to come.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The next key's label.
    pub successor: String,
    /// The label of the key it takes over from.
    pub predecessor: String,
    /// When.
    pub at: SystemTime,
    /// The next key's unit, checked for `at`.
    pub unit: Arc<TimeStampUnit>,
}

/// The unit of a TSA key, its certificate checked for `at`.
pub fn unit_for(key: &SigningKey, at: SystemTime) -> anyhow::Result<Arc<TimeStampUnit>> {
    let unit =
        TimeStampUnit::new(key.signer().clone(), key.chain().to_vec(), at).with_context(|| {
            format!(
                "TSA key \"{}\" (checked for {})",
                key.label(),
                crate::http::anchor_api::rfc3339(at)
            )
        })?;
    Ok(Arc::new(unit))
}

/// Which key signs each policy at start-up, which keys were handed over from already,
/// and which rollovers are still to come.
#[derive(Debug, Default)]
pub struct StartPlan {
    /// Each policy, the label of the key that signs it now, and its unit.
    pub policies: Vec<(PolicyId, String, Arc<TimeStampUnit>)>,
    /// Keys whose successor's time had come, with that time and their unit.
    pub retired: Vec<(String, SystemTime, Arc<TimeStampUnit>)>,
    /// Rollovers to come.
    pub pending: Vec<Pending>,
}

impl StartPlan {
    /// The plan at `now` for the policies of `settings` (each names the first key of
    /// its succession) over the loaded `keys` (`specs` says who succeeds whom).
    pub fn new(
        specs: &[KeySpec],
        settings: &TsaSettings,
        keys: &[SigningKey],
        now: SystemTime,
    ) -> anyhow::Result<StartPlan> {
        let mut cache: Vec<(String, Arc<TimeStampUnit>)> = Vec::new();
        let mut unit = |label: &str, at: SystemTime| -> anyhow::Result<Arc<TimeStampUnit>> {
            if let Some((_, u)) = cache.iter().find(|(l, _)| l == label) {
                return Ok(u.clone());
            }
            let key = keys
                .iter()
                .find(|k| k.label() == label)
                .with_context(|| format!("TSA key \"{label}\" is not loaded"))?;
            let u = unit_for(key, at)?;
            cache.push((label.to_owned(), u.clone()));
            Ok(u)
        };
        let mut plan = StartPlan::default();
        for (policy, first) in &settings.units {
            let mut current = first.clone();
            for next in successors_of(specs, first) {
                let Some(s) = &next.succession else { continue };
                if s.activate_at <= now {
                    if !plan.retired.iter().any(|(l, _, _)| l == &current) {
                        let u = unit(&current, now)?;
                        plan.retired.push((current.clone(), s.activate_at, u));
                    }
                    current = next.label.clone();
                } else if !plan.pending.iter().any(|p| p.successor == next.label) {
                    plan.pending.push(Pending {
                        successor: next.label.clone(),
                        predecessor: s.predecessor.clone(),
                        at: s.activate_at,
                        unit: unit(&next.label, s.activate_at)?,
                    });
                }
            }
            let u = unit(&current, now)?;
            plan.policies.push((policy.clone(), current, u));
        }
        Ok(plan)
    }
}

#[derive(Debug, Default)]
struct Schedule {
    pending: Vec<Pending>,
    /// Handed-over keys and when.
    retired: Vec<(String, SystemTime)>,
}

/// The rollovers of a running TSA (see the module docs).
#[derive(Debug)]
pub struct Rollover {
    issuer: Arc<Issuer>,
    store: Store,
    node: String,
    schedule: Mutex<Schedule>,
    changed: tokio::sync::Notify,
}

impl Rollover {
    /// The rollovers of `issuer` as planned at start-up.
    pub fn new(issuer: Arc<Issuer>, store: Store, node: String, plan: &StartPlan) -> Self {
        let schedule = Schedule {
            pending: plan.pending.clone(),
            retired: plan
                .retired
                .iter()
                .map(|(l, at, _)| (l.clone(), *at))
                .collect(),
        };
        for p in &schedule.pending {
            tracing::info!(key = %p.successor, succeeds = %p.predecessor,
                activate_at = %crate::http::anchor_api::rfc3339(p.at), "key rollover scheduled");
        }
        Self {
            issuer,
            store,
            node,
            schedule: Mutex::new(schedule),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where key `label` stands.
    pub fn phase(&self, label: &str) -> KeyPhase {
        let s = self.lock();
        if let Some(p) = s.pending.iter().find(|p| p.successor == label) {
            return KeyPhase::Pending { at: p.at };
        }
        match s.retired.iter().find(|(l, _)| l == label) {
            Some((_, at)) => KeyPhase::Retired { at: *at },
            None => KeyPhase::Active,
        }
    }

    /// The rollovers to come, earliest first.
    pub fn pending(&self) -> Vec<Pending> {
        let mut p = self.lock().pending.clone();
        p.sort_by_key(|p| p.at);
        p
    }

    /// Schedules `p` (a reload's new key, or a new time for one still to come).
    pub fn schedule(&self, p: Pending) {
        tracing::info!(key = %p.successor, succeeds = %p.predecessor,
            activate_at = %crate::http::anchor_api::rfc3339(p.at), "key rollover scheduled");
        {
            let mut s = self.lock();
            s.pending.retain(|q| q.successor != p.successor);
            s.pending.push(p);
        }
        self.changed.notify_one();
    }

    /// Runs the rollovers as their times come, until aborted.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.activate_due(SystemTime::now()).await;
                let wait = me.pending().first().map_or(RECHECK_EVERY, |p| {
                    p.at.duration_since(SystemTime::now()).unwrap_or_default()
                });
                tokio::select! {
                    () = tokio::time::sleep(wait.min(RECHECK_EVERY)) => {}
                    () = me.changed.notified() => {}
                }
            }
        })
    }

    /// Hands over every rollover whose time is `now` or earlier, in time order.
    async fn activate_due(&self, now: SystemTime) {
        let due: Vec<Pending> = {
            let mut s = self.lock();
            let (mut due, rest): (Vec<Pending>, Vec<Pending>) =
                s.pending.drain(..).partition(|p| p.at <= now);
            s.pending = rest;
            due.sort_by_key(|p| p.at);
            due
        };
        for p in due {
            match self.issuer.hand_over(&p.predecessor, &p.successor, &p.unit) {
                Ok(policies) => {
                    self.lock().retired.push((p.predecessor.clone(), p.at));
                    let late = now.duration_since(p.at).unwrap_or_default();
                    tracing::warn!(key = %p.successor, succeeds = %p.predecessor,
                        policies = policies.len(), late_ms = late.as_millis() as u64,
                        "key rollover: the next key signs from now on");
                    metrics::counter!("hanko_key_rollovers_total").increment(1);
                    let policies: Vec<String> = policies.iter().map(|p| p.to_string()).collect();
                    for ev in [
                        crate::audit::key_activated(&p, &policies, &self.node),
                        crate::audit::key_retired(&p, &self.node),
                    ] {
                        crate::audit::record_or_log(&self.store, ev).await;
                    }
                }
                Err(e) => {
                    // Checked when the key was loaded; the old key keeps signing.
                    tracing::error!(key = %p.successor, succeeds = %p.predecessor, error = %e,
                        "key rollover failed: the old key keeps signing");
                }
            }
        }
    }
}
