//! `GET /tsa/policy`: the TSA's practice/disclosure summary as JSON (CONFORMANCE 44,
//! EN 319 421 §6.2: publish hash algorithms, accuracy and policy OIDs).
//!
//! Everything here is read from what the running TSA actually uses (its profile and its
//! installed units), never from a separate document that could drift: the policies it
//! serves with each one's key algorithm and certificate, the imprint hashes it accepts,
//! its declared accuracy, that it never offers genTime ordering, whether the
//! EU-qualified profile is on, and until when each key may sign (the earlier of the
//! certificate's notAfter and the privateKeyUsagePeriod's end).
//!
//! What it is not: the full TSA disclosure statement (EN 319 421 Annex B: liability,
//! retention, contacts) is the operator's document; this endpoint is the
//! machine-readable part a client can check against tokens.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::tsa::{MAX_REQUEST_BYTES, QUERY_TYPE, REPLY_TYPE};
use crate::state::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/tsa/policy", get(policy))
}

/// The disclosure summary of a running server's TSA, or `None` without a TSA.
pub fn policy_document(state: &AppState) -> Option<Value> {
    let issuer = state.issuer.as_ref()?;
    let tsa = issuer.tsa();
    let cfg = tsa.config();
    let policies: Vec<Value> = issuer
        .policy_units()
        .iter()
        .map(|pu| {
            let cert = pu.unit.certificate();
            json!({
                "oid": pu.policy.to_string(),
                "default": pu.policy == cfg.default_policy,
                "key": pu.key,
                "algorithm": pu.unit.signer().algorithm().name(),
                "certificate": {
                    "subject": cert.subject_string(),
                    "serial": hex::encode(cert.serial_der()),
                    "sha256": hex::encode(cert.fingerprint(hanko_pki::HashAlgorithm::Sha256)),
                    "not_before": hanko_tsa::rfc3339(cert.not_before()),
                    "not_after": hanko_tsa::rfc3339(cert.not_after()),
                },
                // min(notAfter, privateKeyUsagePeriod.notAfter): no token after this.
                "signs_until": hanko_tsa::rfc3339(pu.unit.usable_until()),
            })
        })
        .collect();
    let hashes: Vec<&str> = cfg.accepted_hashes.iter().map(|h| h.name()).collect();
    let accuracy_ms = u64::try_from(cfg.accuracy.as_millis()).unwrap_or(u64::MAX);
    Some(json!({
        "protocol": "RFC 3161 (with RFC 5816 ESSCertIDv2)",
        "dev": state.dev,
        "default_policy": cfg.default_policy.to_string(),
        "policies": policies,
        "accepted_hashes": hashes,
        "refused_hashes": ["md5", "sha1"],
        "accuracy_ms": accuracy_ms,
        "gen_time_fraction_digits": cfg.fraction_digits(),
        "ordering": false,
        "nonce": { "supported": true, "max_octets": cfg.max_nonce_len },
        "cert_req": { "supported": true, "certificates_url": "/tsa/certs" },
        "tsa_name_in_token": cfg.include_tsa_name,
        "qualified": cfg.qualified,
        "qc_statement": if cfg.qualified {
            Value::from(hanko_tsa::token::OID_QTST_STATEMENT_1)
        } else {
            Value::Null
        },
        "clock": {
            "refuses_when": "not synchronised, error above the accuracy, or stepped back \
                             (timeNotAvailable)",
            "source": issuer.clock_source(),
        },
        "request": {
            "url": "/tsa",
            "method": "POST",
            "content_type": QUERY_TYPE,
            "reply_content_type": REPLY_TYPE,
            "max_bytes": MAX_REQUEST_BYTES,
        },
    }))
}

async fn policy(State(state): State<Arc<AppState>>) -> Response {
    match policy_document(&state) {
        Some(doc) => (
            StatusCode::OK,
            [(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            )],
            axum::Json(doc),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "this server has no time-stamp authority configured\n",
        )
            .into_response(),
    }
}
