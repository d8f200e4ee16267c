//! `/healthz` (the process answers) and `/readyz` (it can sign right now).
//!
//! Readiness is computed on every call from its owners, never cached: the token
//! (`Hsm::is_ready`), each key's signer, and each key's certificate checked again
//! against the current time (a certificate or private key usage period can end while
//! the process runs; CONFORMANCE 41). Load balancers take a 503 node out of rotation; the
//! JSON body says why.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::keys::check_certificate;
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
    if state.keys.is_empty() {
        reasons.push("no signing key is loaded".to_owned());
    }
    for k in &state.keys {
        if !k.signer().is_ready() {
            reasons.push(format!("key \"{}\": signer is not ready", k.label()));
        }
        if let Err(e) = check_certificate(k.usage(), k.certificate(), now) {
            reasons.push(format!("key \"{}\": certificate: {e}", k.label()));
        }
    }
    reasons
}

async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let reasons = not_ready_reasons(&state, SystemTime::now());
    metrics::gauge!("hanko_ready").set(if reasons.is_empty() { 1.0 } else { 0.0 });
    if reasons.is_empty() {
        let keys: Vec<Value> = state
            .keys
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
        tracing::warn!(?reasons, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reasons": reasons })),
        )
    }
}
