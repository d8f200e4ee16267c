//! The server's audit events in the issuance log (issue #18): what it records of its own
//! life-cycle, next to what it issues, in the same hash chain (`hanko_store::audit`
//! defines the record; `hanko log export` shows the events, `hanko log verify` checks
//! them with everything else).
//!
//! ```text
//!   start-up:  key-loaded (each key, config order) ─> certificate-expiring (each key
//!              ending within EXPIRY_WARNING) ─> service-started (just before the
//!              listeners are bound and announced, so before anything it issues)
//!   running:   key-suspended / key-resumed (hanko key suspend|resume, admin API:
//!              recorded by hanko_store in the suspension's transaction)
//!              clock-lost / clock-regained (every change of the TSA's clock guard's
//!              verdict, however short: the guard keeps them until taken, every 250 ms;
//!              not in dev mode, where the guard never refuses)
//!              certificate-expiring (again every day while it holds)
//!              key-activated then key-retired (a rollover's switch, by each node
//!              that made it: rollover.rs)
//!              config-reloaded (a reload that took effect, with the file's SHA-256:
//!              reload.rs; a refused one changes nothing and is not recorded)
//!   shutdown:  service-stopped (after the drain, before the log closes)
//! ```
//!
//! All of them are written by the server as actor `system`, except suspensions, which
//! name who asked (`cli:<user>`, `client:<id>`). A failed audit write at start-up
//! stops the start (a server that cannot record its own start is not fit to issue);
//! later ones are logged at ERROR and issuance goes on (its own appends fail with the
//! same fault anyway).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hanko_pki::HashAlgorithm;
use hanko_store::audit::SYSTEM_ACTOR;
use hanko_store::{AuditEvent, AuditEventType, Receipt, Store};

use crate::issuance::Issuer;
use crate::state::SigningKey;

/// A certificate ending within this period gets a `certificate-expiring` event at
/// start-up and then once a day.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);
/// How often the certificates are looked at again.
const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(86_400);
/// How often the clock guard is asked for its changes.
const CLOCK_CHECK_EVERY: Duration = Duration::from_millis(250);

/// Appends `event` as the server's own (actor `system`), now.
pub async fn record(store: &Store, event: AuditEvent) -> Result<Receipt, hanko_store::Error> {
    let receipt = store
        .append_audit(&event, SYSTEM_ACTOR, SystemTime::now())
        .await?;
    tracing::info!(event = %event.event, seq = receipt.seq, "audit event recorded");
    Ok(receipt)
}

/// [`record`], logging a failure at ERROR instead of returning it.
pub async fn record_or_log(store: &Store, event: AuditEvent) {
    let name = event.event;
    if let Err(e) = record(store, event).await {
        tracing::error!(event = %name, error = %e, "cannot record an audit event in the issuance log");
    }
}

/// `key-loaded` of `key`.
pub fn key_loaded(key: &SigningKey) -> AuditEvent {
    let cert = key.certificate();
    AuditEvent::new(
        AuditEventType::KeyLoaded,
        [
            ("key", key.label().to_owned()),
            ("usage", key.usage().as_str().to_owned()),
            ("algorithm", key.signer().algorithm().name()),
            ("subject", cert.subject_string()),
            (
                "certificate_sha256",
                hex::encode(cert.fingerprint(HashAlgorithm::Sha256)),
            ),
            (
                "not_after",
                crate::http::anchor_api::rfc3339(cert.not_after()),
            ),
        ],
    )
}

/// `certificate-expiring` of `key`, when its certificate ends within [`EXPIRY_WARNING`]
/// of `now`.
pub fn certificate_expiring(key: &SigningKey, now: SystemTime) -> Option<AuditEvent> {
    let not_after = key.certificate().not_after();
    let left = not_after.duration_since(now).unwrap_or_default();
    (left <= EXPIRY_WARNING).then(|| {
        AuditEvent::new(
            AuditEventType::CertificateExpiring,
            [
                ("key", key.label().to_owned()),
                ("not_after", crate::http::anchor_api::rfc3339(not_after)),
                ("days_left", (left.as_secs() / 86_400).to_string()),
            ],
        )
    })
}

/// The start-up events: `key-loaded` for each key, then `certificate-expiring` for each
/// certificate near its end.
pub async fn record_start(store: &Store, keys: &[SigningKey]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let now = SystemTime::now();
    for k in keys {
        record(store, key_loaded(k))
            .await
            .with_context(|| format!("cannot record key \"{}\" in the issuance log", k.label()))?;
    }
    for ev in keys.iter().filter_map(|k| certificate_expiring(k, now)) {
        record(store, ev)
            .await
            .context("cannot record an expiring certificate in the issuance log")?;
    }
    Ok(())
}

/// `key-activated` of a rollover's next key: the key it succeeds, its activation time,
/// what it took over (`policies` of a TSA key, `credentials` names of a seal key), and
/// the node that switched.
pub fn key_activated(
    p: &crate::rollover::Pending,
    (what, names): (&str, &[String]),
    node: &str,
) -> AuditEvent {
    let cert = &p.certificate;
    AuditEvent::new(
        AuditEventType::KeyActivated,
        [
            ("key", p.successor.clone()),
            ("succeeds", p.predecessor.clone()),
            ("activate_at", crate::http::anchor_api::rfc3339(p.at)),
            (what, names.join(",")),
            (
                "certificate_sha256",
                hex::encode(cert.fingerprint(HashAlgorithm::Sha256)),
            ),
            ("node", node.to_owned()),
        ],
    )
}

/// `key-retired` of the key a rollover handed over from.
pub fn key_retired(p: &crate::rollover::Pending, node: &str) -> AuditEvent {
    AuditEvent::new(
        AuditEventType::KeyRetired,
        [
            ("key", p.predecessor.clone()),
            ("succeeded_by", p.successor.clone()),
            ("at", crate::http::anchor_api::rfc3339(p.at)),
            ("node", node.to_owned()),
        ],
    )
}

/// `config-reloaded`: the SHA-256 of the file now in force, what changed, and the node.
pub fn config_reloaded(sha256: &str, changes: &str, node: &str) -> AuditEvent {
    AuditEvent::new(
        AuditEventType::ConfigReloaded,
        [("sha256", sha256), ("changes", changes), ("node", node)],
    )
}

/// `service-started`.
pub fn service_started(node: &str) -> AuditEvent {
    AuditEvent::new(
        AuditEventType::ServiceStarted,
        [("version", env!("CARGO_PKG_VERSION")), ("node", node)],
    )
}

/// `service-stopped`.
pub fn service_stopped(node: &str, reason: &str) -> AuditEvent {
    AuditEvent::new(
        AuditEventType::ServiceStopped,
        [("node", node), ("reason", reason)],
    )
}

/// The event of a change of the clock guard's verdict: `clock-lost` with the problem,
/// `clock-regained`, each with the error the source reported.
fn clock_event(source: &str, t: &hanko_tsa::ClockTransition) -> AuditEvent {
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
    let mut fields = vec![
        ("source", source.to_owned()),
        ("est_error_ms", ms(t.status.est_error)),
        ("max_error_ms", ms(t.status.max_error)),
        ("synchronised", t.status.synchronised.to_string()),
        ("at", crate::http::anchor_api::rfc3339(t.at)),
    ];
    let event = match &t.problem {
        Some(p) => {
            fields.push(("reason", p.to_string()));
            AuditEventType::ClockLost
        }
        None => AuditEventType::ClockRegained,
    };
    AuditEvent::new(event, fields)
}

/// The running watchers: the clock guard (with a TSA) and the daily certificate check.
#[derive(Debug)]
pub struct Watchers(Vec<tokio::task::JoinHandle<()>>);

impl Watchers {
    /// Stops them.
    pub fn stop(self) {
        for t in self.0 {
            t.abort();
        }
    }
}

/// Starts the watchers that record events while the server runs.
pub fn spawn_watchers(
    store: &Store,
    state: &Arc<crate::state::AppState>,
    issuer: Option<&Arc<Issuer>>,
) -> Watchers {
    let mut tasks = Vec::new();
    // Weak: the keys are taken anew each day (a reload may add some), and the task must
    // not keep the signers alive.
    let (s, weak) = (store.clone(), Arc::downgrade(state));
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRY_CHECK_EVERY);
        // The first tick is at once: start-up recorded that one already.
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = SystemTime::now();
            let Some(state) = weak.upgrade() else { return };
            // A key a rollover retired signs nothing more: its expiry is no warning.
            let events: Vec<AuditEvent> = state
                .keys()
                .iter()
                .filter(|k| {
                    !matches!(
                        state.key_phase(k.label()),
                        crate::rollover::KeyPhase::Retired { .. }
                    )
                })
                .filter_map(|k| certificate_expiring(k, now))
                .collect();
            drop(state);
            for ev in events {
                record_or_log(&s, ev).await;
            }
        }
    }));
    if let Some(issuer) = issuer {
        let (s, issuer) = (store.clone(), issuer.clone());
        tasks.push(tokio::spawn(async move {
            let guard = issuer.tsa().clock();
            if guard.config().dev_mode {
                // `--dev` overrides the guard: the clock never stops issuance, so there
                // is no loss to record.
                return;
            }
            let mut tick = tokio::time::interval(CLOCK_CHECK_EVERY);
            loop {
                tick.tick().await;
                // Evaluated here too, so that a change is seen without any traffic; the
                // guard keeps every change it saw (issuance and /readyz evaluate it as
                // well), however short.
                let _ = guard.report();
                for t in guard.take_transitions() {
                    record_or_log(&s, clock_event(issuer.clock_source(), &t)).await;
                }
            }
        }));
    }
    Watchers(tasks)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn clock_events_carry_the_measured_error() {
        let lost = hanko_tsa::ClockTransition {
            problem: Some(hanko_tsa::ClockProblem::Unsynchronised),
            status: hanko_tsa::ClockStatus {
                synchronised: false,
                est_error: Duration::from_micros(1500),
                max_error: Duration::from_secs(1),
            },
            at: SystemTime::UNIX_EPOCH,
        };
        let ev = clock_event("chrony", &lost);
        assert_eq!(ev.event, AuditEventType::ClockLost);
        assert_eq!(ev.field("est_error_ms"), Some("1.500"));
        assert_eq!(ev.field("max_error_ms"), Some("1000.000"));
        assert_eq!(ev.field("reason"), Some("clock not synchronised"));
        assert_eq!(ev.field("at"), Some("1970-01-01T00:00:00Z"));
        let regained = hanko_tsa::ClockTransition {
            problem: None,
            ..lost
        };
        let ev = clock_event("chrony", &regained);
        assert_eq!(ev.event, AuditEventType::ClockRegained);
        assert_eq!(ev.field("reason"), None);
    }
}
