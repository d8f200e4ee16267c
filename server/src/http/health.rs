//! `/healthz` (the process answers) and `/readyz` (it can sign right now).
//!
//! Readiness is computed on every call from its owners, never cached: the token
//! (`Hsm::is_ready`), the TSA (its clock guard and units), each key's signer, and each
//! key's certificate checked again against the current time (a certificate or private
//! key usage period can end while the process runs; CONFORMANCE 41), the issuing CAs
//! of its chain as CAs valid now (`keys::check_issuers`), and the emergency stop: a
//! suspended key ("key \"tsa-rsa\": suspended by cli:ops at ...: reason") and key
//! suspensions the log cannot be read for (`suspension.rs`). A key of usage
//! `seal` is a seal credential and is named as one ("seal credential \"seal-p256\":
//! signer is not ready: ..."); a server without a TSA reports the clock its seals take
//! their time from. Load balancers take a 503 node out of rotation; the
//! JSON body says why.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::config::KeyUsage;
use crate::keys::{check_certificate, check_issuers};
use crate::logging::{Observed, StateLog};
use crate::rollover::KeyPhase;
use crate::state::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// Why the server cannot sign now; empty when ready.
pub fn not_ready_reasons(state: &AppState, now: SystemTime) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(hsm) = &state.hsm
        && !hsm.is_ready()
    {
        reasons.push(format!(
            "HSM token \"{}\" is not reachable",
            hsm.token_label()
        ));
    }
    let keys = state.keys();
    if keys.is_empty() {
        reasons.push("no signing key is loaded".to_owned());
    }
    if let Some(issuer) = &state.issuer
        && let Err(e) = issuer.tsa().check_ready()
    {
        reasons.push(format!("time-stamp authority: {e}"));
    }
    if let Some(p) = state.sealer.as_ref().and_then(|s| s.own_clock_problem()) {
        reasons.push(format!("seal credentials: clock: {p}"));
    }
    if let Some(p) = state.suspensions.read_problem() {
        reasons.push(p);
    }
    for k in keys.iter() {
        // Every seal key is a seal credential (`Sealer::with_options` makes one of each or the
        // start fails).
        let who = match k.usage() {
            KeyUsage::Tsa => format!("key \"{}\"", k.label()),
            KeyUsage::Seal => format!("seal credential \"{}\"", k.label()),
        };
        // A key a rollover retired signs nothing more (its certificate may expire while
        // the server runs); a key still to come is checked for its activation time.
        let at = match state.key_phase(k.label()) {
            KeyPhase::Retired { .. } => continue,
            KeyPhase::Pending { at } => at.max(now),
            KeyPhase::Active => now,
        };
        // The emergency stop (its signer would say the same, less plainly).
        if let Err(r) = state.suspensions.check(k.label()) {
            reasons.push(format!("{who}: {r}"));
        } else if let Some(why) = k.signer().not_ready_reason() {
            reasons.push(format!("{who}: signer is not ready: {why}"));
        }
        if let Err(e) = check_certificate(k.usage(), k.certificate(), at) {
            reasons.push(format!("{who}: certificate: {e}"));
        }
        if let Err(e) = check_issuers(k.chain(), at) {
            reasons.push(format!("{who}: {e:#}"));
        }
    }
    reasons
}

/// Logs readiness when it changes (and a reminder with the current reasons, at most once
/// a minute while it stays not ready): probes come every few seconds, from every load
/// balancer, and a line each would flood the log. The state is ready or not, not the
/// reasons' text, which can change with every probe ("probing the token again in 3 s").
fn log_readiness(reasons: &[String]) {
    static READINESS: StateLog<bool> = StateLog::new(Duration::from_secs(60));
    let ready = reasons.is_empty();
    match READINESS.observe(ready) {
        Some(Observed::Changed { from: Some(_) }) if ready => tracing::info!("ready again"),
        Some(Observed::Changed { .. }) if !ready => {
            tracing::warn!(reasons = %reasons.join("; "), "not ready")
        }
        Some(Observed::Repeated { suppressed }) if !ready => {
            tracing::warn!(reasons = %reasons.join("; "), probes = suppressed + 1, "still not ready");
        }
        // Ready from the start, or still ready: nothing to say.
        None | Some(Observed::Changed { .. } | Observed::Repeated { .. }) => {}
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let reasons = not_ready_reasons(&state, SystemTime::now());
    metrics::gauge!("hanko_ready").set(if reasons.is_empty() { 1.0 } else { 0.0 });
    if !reasons.is_empty() {
        metrics::counter!("hanko_readyz_not_ready_total").increment(1);
    }
    log_readiness(&reasons);
    if reasons.is_empty() {
        let keys: Vec<Value> = state
            .keys()
            .iter()
            .map(|k| {
                json!({
                    "label": k.label(),
                    "usage": k.usage().as_str(),
                    "algorithm": k.signer().algorithm().name(),
                    "subject": k.certificate().subject_string(),
                })
            })
            .collect();
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "dev": state.dev, "keys": keys })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reasons": reasons })),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use hanko_pki::soft::SoftwareSigner;
    use hanko_pki::x509::{CertParams, CertProfile, NameAttr, build_name, issue_certificate};
    use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer as _};
    use tower::ServiceExt as _;

    use super::*;
    use crate::state::SigningKey;

    const DAY: Duration = Duration::from_secs(86_400);

    /// A state with one software TSA key whose certificate is valid from `start` for
    /// `days` (self-issued through a throw-away CA).
    async fn state_with_tsa_cert(start: SystemTime, days: u32) -> Arc<AppState> {
        let alg = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
        let ca_key = SoftwareSigner::generate(KeyType::EcP256, alg).unwrap();
        let name = |cn| {
            build_name(&[
                (NameAttr::Country, "JP"),
                (NameAttr::Organization, "Test"),
                (NameAttr::CommonName, cn),
            ])
            .unwrap()
        };
        let ca = issue_certificate(
            &CertParams::new(CertProfile::RootCa, name("CA"), start, start + 3650 * DAY),
            ca_key.public_key_der(),
            None,
            &ca_key,
        )
        .await
        .unwrap();
        let key = SoftwareSigner::generate(KeyType::EcP256, alg).unwrap();
        let params = CertParams::new(
            CertProfile::Tsa {
                non_repudiation: false,
                private_key_usage_period: None,
            },
            name("TSA"),
            start,
            start + days * DAY,
        );
        let leaf = issue_certificate(&params, key.public_key_der(), Some(&ca), &ca_key)
            .await
            .unwrap();
        let key = SigningKey::new("tsa".into(), KeyUsage::Tsa, Arc::new(key), vec![leaf, ca]);
        Arc::new(AppState {
            keys: crate::state::KeyRing::new(vec![key.unwrap()]),
            ..AppState::bare()
        })
    }

    async fn get(state: Arc<AppState>, path: &str) -> (StatusCode, Value) {
        let resp = crate::http::router(state)
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// The audit event of a certificate near its end (issue #18; here for this module's
    /// certificate fixture): within 30 days, with the days left; not before.
    #[tokio::test]
    async fn a_certificate_within_30_days_is_an_audit_event() {
        let now = SystemTime::now();
        let state = state_with_tsa_cert(now - DAY, 20).await;
        let ev = crate::audit::certificate_expiring(&state.keys()[0], now).unwrap();
        assert_eq!(ev.event, hanko_store::AuditEventType::CertificateExpiring);
        assert_eq!(ev.field("key"), Some("tsa"));
        // 19 days less the certificate's truncation to whole seconds.
        assert!(matches!(ev.field("days_left"), Some("18" | "19")), "{ev:?}");
        let state = state_with_tsa_cert(now - DAY, 60).await;
        assert_eq!(
            crate::audit::certificate_expiring(&state.keys()[0], now),
            None
        );
        // The key-loaded event names the certificate.
        let loaded = crate::audit::key_loaded(&state.keys()[0]);
        assert_eq!(loaded.field("usage"), Some("tsa"));
        assert_eq!(loaded.field("algorithm"), Some("ecdsa-sha256"));
        assert_eq!(loaded.field("certificate_sha256").map(str::len), Some(64));
    }

    #[tokio::test]
    async fn ready_with_a_valid_certificate() {
        let state = state_with_tsa_cert(SystemTime::now() - DAY, 30).await;
        let (status, body) = get(state, "/readyz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["keys"][0]["label"], "tsa");
    }

    #[tokio::test]
    async fn expired_certificate_makes_readyz_503_with_the_reason() {
        let state = state_with_tsa_cert(SystemTime::now() - 40 * DAY, 30).await;
        let (status, body) = get(state.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["status"], "not ready");
        let reason = body["reasons"][0].as_str().unwrap();
        assert!(
            reason.starts_with("key \"tsa\": certificate: certificate expired at "),
            "{reason}"
        );
        // Liveness does not depend on readiness.
        let (status, _) = get(state, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn no_keys_is_not_ready() {
        let state = Arc::new(AppState {
            dev: true,
            ..AppState::bare()
        });
        let (status, body) = get(state, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["reasons"][0], "no signing key is loaded");
    }
}
