//! Key rollover of the time-stamping units and seal credentials (issue #18): a key's
//! successor takes over at its activation time, on every node with the same
//! configuration, without a restart. A TSA key's successor takes over the policies it
//! signs (below); a seal key's successor takes over the credential names it served
//! (`Sealer::hand_over`: the old credential ID keeps working, now sealing with the new
//! key).
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

use hanko_pki::cert::Certificate;

use crate::config::{KeySpec, KeyUsage, TsaSettings, successors_of};
use crate::issuance::Issuer;
use crate::seal::{SealRollover, Sealer};
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
    /// A time-stamping key's unit, checked for `at`; `None` for a seal key (its
    /// credential is loaded in the `Sealer` already and takes over the old key's names).
    pub unit: Option<Arc<TimeStampUnit>>,
    /// The next key's certificate.
    pub certificate: Certificate,
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

/// Which key signs each policy and serves each seal credential name at start-up, which
/// keys were handed over from already, and which rollovers are still to come.
#[derive(Debug, Default)]
pub struct StartPlan {
    /// Each policy, the label of the key that signs it now, and its unit.
    pub policies: Vec<(PolicyId, String, Arc<TimeStampUnit>)>,
    /// Keys whose successor's time had come, with that time and (a time-stamping key)
    /// their unit.
    pub retired: Vec<(String, SystemTime, Option<Arc<TimeStampUnit>>)>,
    /// Rollovers to come.
    pub pending: Vec<Pending>,
    /// The seal keys: which serves each name, which are still to come.
    pub seal: SealRollover,
}

impl StartPlan {
    /// The plan at `now` for the policies of `settings` (each names the first key of
    /// its succession) and the seal keys, over the loaded `keys` (`specs` says who
    /// succeeds whom).
    pub fn new(
        specs: &[KeySpec],
        settings: Option<&TsaSettings>,
        keys: &[SigningKey],
        now: SystemTime,
    ) -> anyhow::Result<StartPlan> {
        let mut plan = StartPlan::default();
        if let Some(settings) = settings {
            plan.plan_tsa(specs, settings, keys, now)?;
        }
        plan.plan_seals(specs, keys, now)?;
        Ok(plan)
    }

    fn plan_tsa(
        &mut self,
        specs: &[KeySpec],
        settings: &TsaSettings,
        keys: &[SigningKey],
        now: SystemTime,
    ) -> anyhow::Result<()> {
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
        for (policy, first) in &settings.units {
            let mut current = first.clone();
            for next in successors_of(specs, first) {
                let Some(s) = &next.succession else { continue };
                if s.activate_at <= now {
                    if !self.retired.iter().any(|(l, _, _)| l == &current) {
                        let u = unit(&current, now)?;
                        self.retired.push((current.clone(), s.activate_at, Some(u)));
                    }
                    current = next.label.clone();
                } else if !self.pending.iter().any(|p| p.successor == next.label) {
                    let u = unit(&next.label, s.activate_at)?;
                    self.pending.push(Pending {
                        successor: next.label.clone(),
                        predecessor: s.predecessor.clone(),
                        at: s.activate_at,
                        certificate: u.certificate().clone(),
                        unit: Some(u),
                    });
                }
            }
            let u = unit(&current, now)?;
            self.policies.push((policy.clone(), current, u));
        }
        Ok(())
    }

    /// Each seal succession: the key serving now serves the names of every key before
    /// it; the keys to come serve nothing yet.
    fn plan_seals(
        &mut self,
        specs: &[KeySpec],
        keys: &[SigningKey],
        now: SystemTime,
    ) -> anyhow::Result<()> {
        let firsts = specs
            .iter()
            .filter(|k| k.usage == KeyUsage::Seal && k.succession.is_none());
        for first in firsts {
            let mut current = first.label.clone();
            let mut names = vec![first.label.clone()];
            for next in successors_of(specs, &first.label) {
                let Some(s) = &next.succession else { continue };
                if s.activate_at <= now {
                    self.retired.push((current.clone(), s.activate_at, None));
                    current = next.label.clone();
                    names.push(current.clone());
                } else {
                    let key = keys
                        .iter()
                        .find(|k| k.label() == next.label)
                        .with_context(|| format!("seal key \"{}\" is not loaded", next.label))?;
                    self.seal.pending.insert(next.label.clone(), s.activate_at);
                    self.pending.push(Pending {
                        successor: next.label.clone(),
                        predecessor: s.predecessor.clone(),
                        at: s.activate_at,
                        unit: None,
                        certificate: key.certificate().clone(),
                    });
                }
            }
            for name in names {
                self.seal.serving.insert(name, current.clone());
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Schedule {
    pending: Vec<Pending>,
    /// Handed-over keys and when.
    retired: Vec<(String, SystemTime)>,
}

/// The rollovers of a running server (see the module docs).
#[derive(Debug)]
pub struct Rollover {
    issuer: Option<Arc<Issuer>>,
    sealer: Option<Arc<Sealer>>,
    store: Store,
    node: String,
    schedule: Mutex<Schedule>,
    changed: tokio::sync::Notify,
}

impl Rollover {
    /// The rollovers of `issuer` and `sealer` as planned at start-up.
    pub fn new(
        issuer: Option<Arc<Issuer>>,
        sealer: Option<Arc<Sealer>>,
        store: Store,
        node: String,
        plan: &StartPlan,
    ) -> Self {
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
            sealer,
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

    /// Hands over every rollover whose time is `now` or earlier, in time order: a
    /// time-stamping key takes over its predecessor's policies in the TSA, a seal key
    /// the names its predecessor served in the sealer.
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
            let handed = match (&p.unit, &self.issuer, &self.sealer) {
                (Some(unit), Some(issuer), _) => issuer
                    .hand_over(&p.predecessor, &p.successor, unit)
                    .map(|policies| ("policies", policies.iter().map(|p| p.to_string()).collect()))
                    .map_err(|e| e.to_string()),
                (None, _, Some(sealer)) => Ok((
                    "credentials",
                    sealer.hand_over(&p.predecessor, &p.successor),
                )),
                _ => Err("no time-stamp authority or sealer to hand over in".to_owned()),
            };
            match handed {
                Ok((what, names)) => {
                    self.lock().retired.push((p.predecessor.clone(), p.at));
                    let late = now.duration_since(p.at).unwrap_or_default();
                    tracing::warn!(key = %p.successor, succeeds = %p.predecessor,
                        serves = %names.join(","), late_ms = late.as_millis() as u64,
                        "key rollover: the next key signs from now on");
                    metrics::counter!("hanko_key_rollovers_total").increment(1);
                    for ev in [
                        crate::audit::key_activated(&p, (what, &names), &self.node),
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
