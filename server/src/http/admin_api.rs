//! The emergency stop over HTTP, for admin clients (scope `admin`, see [`crate::auth`]):
//! suspend and resume a key on every node sharing the log, as `hanko key suspend|resume`
//! does (issue #18; `suspension.rs` for how nodes follow).
//!
//! ```text
//!   GET  /api/v1/admin/keys                   200 {"keys":[{"label","usage","suspended",
//!                                                  "suspension":{reason,by,at,node,seq}}]}
//!   POST /api/v1/admin/keys/{label}/suspend   body {"reason":"..."} (optional)
//!        200 {"label","suspended":true,"changed":true,"seq":N}    (changed false: it was)
//!   POST /api/v1/admin/keys/{label}/resume    body {"reason":"..."} (optional)
//!        200 {"label","suspended":false,"changed":true,"seq":N}
//!        409 the key is not suspended
//!   400 bad body   401/403 no admin client   404 no key of that label on this node
//!   503 the log cannot record it now (retry)
//!   POST /api/v1/admin/reload                 reloads this node's configuration file
//!        200 {"sha256","changes":[...]}   422 refused (the text says why; nothing changed)
//!        404 no configuration file to reload
//! ```
//!
//! The key list says where each key stands in a rollover (`phase`: `active`, `pending`
//! with `activate_at`, `retired` with `retired_at`; `rollover.rs`).
//!
//! The change and its audit record (actor `client:<name>`) are one transaction in the
//! log; this node applies it at once, the others within their next poll.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hanko_store::{KeyStateChange, KeySuspension};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::json_error::ApiError;
use super::openapi::{auth, json_error, json_object, op};
use crate::auth::{Identity, SCOPE_ADMIN};
use crate::rollover::KeyPhase;
use crate::state::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/admin/keys", get(list))
        .route("/api/v1/admin/keys/{label}/suspend", post(suspend))
        .route("/api/v1/admin/keys/{label}/resume", post(resume))
        .route("/api/v1/admin/reload", post(reload))
}

async fn reload(State(state): State<Arc<AppState>>, identity: Identity) -> Response {
    if let Err(e) = identity.require(SCOPE_ADMIN) {
        return ApiError::from(e).into_response();
    }
    let Some(reloader) = &state.reloader else {
        return ApiError::NotEnabled("this server runs without a configuration file".to_owned())
            .into_response();
    };
    match reloader.reload(&state).await {
        Ok(report) => Json(json!(report)).into_response(),
        Err(e) => ApiError::Unprocessable(format!("reload refused, nothing changed: {e:#}"))
            .into_response(),
    }
}

/// The optional body of both changes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    #[serde(default)]
    reason: String,
}

fn parse_body(body: &[u8]) -> Result<ChangeBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ChangeBody::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not {{\"reason\":\"...\"}}: {e}")))
}

fn suspension_json(s: &KeySuspension) -> Value {
    json!({
        "reason": s.reason,
        "by": s.suspended_by,
        "at": super::anchor_api::rfc3339(s.suspended_at),
        "node": s.node_id,
        "seq": s.audit_seq,
    })
}

async fn list(State(state): State<Arc<AppState>>, identity: Identity) -> Response {
    if let Err(e) = identity.require(SCOPE_ADMIN) {
        return ApiError::from(e).into_response();
    }
    let keys: Vec<Value> = state
        .keys()
        .iter()
        .map(|k| {
            let s = state.suspensions.get(k.label());
            let mut v = json!({
                "label": k.label(),
                "usage": k.usage().as_str(),
                "suspended": s.is_some(),
            });
            match state.key_phase(k.label()) {
                KeyPhase::Active => v["phase"] = json!("active"),
                KeyPhase::Pending { at } => {
                    v["phase"] = json!("pending");
                    v["activate_at"] = json!(super::anchor_api::rfc3339(at));
                }
                KeyPhase::Retired { at } => {
                    v["phase"] = json!("retired");
                    v["retired_at"] = json!(super::anchor_api::rfc3339(at));
                }
            }
            if let Some(s) = &s {
                v["suspension"] = suspension_json(s);
            }
            v
        })
        .collect();
    Json(json!({ "keys": keys })).into_response()
}

/// Suspend or resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Suspend,
    Resume,
}

async fn change(
    state: &AppState,
    identity: &Identity,
    label: &str,
    body: &[u8],
    what: Change,
) -> Result<Value, ApiError> {
    let client = identity.require(SCOPE_ADMIN)?;
    let body = parse_body(body)?;
    if state.key(label).is_none() {
        return Err(ApiError::UnknownKey(label.to_owned()));
    }
    let Some(store) = &state.store else {
        return Err(ApiError::NotEnabled(
            "no issuance log configured".to_owned(),
        ));
    };
    let actor = format!("client:{}", client.name());
    let result = match what {
        Change::Suspend => store.suspend_key(label, &body.reason, &actor).await,
        Change::Resume => store.resume_key(label, &body.reason, &actor).await,
    };
    let outcome = result.map_err(|e| {
        tracing::warn!(error = %e, key = label, "cannot change the key's suspension");
        ApiError::LogUnavailable {
            retryable: e.is_retryable(),
        }
    })?;
    // This node follows at once; the others at their next poll.
    state.suspensions.refresh(store).await;
    let suspended = what == Change::Suspend;
    match outcome {
        KeyStateChange::Changed(r) => {
            tracing::warn!(key = label, by = %actor, reason = %body.reason, suspended,
                "key suspension changed through the admin API");
            Ok(json!({ "label": label, "suspended": suspended, "changed": true, "seq": r.seq }))
        }
        KeyStateChange::AlreadySuspended(s) => Ok(json!({
            "label": label, "suspended": true, "changed": false,
            "suspension": suspension_json(&s),
        })),
        KeyStateChange::NotSuspended => Err(ApiError::Conflict(format!(
            "key \"{label}\" is not suspended"
        ))),
    }
}

async fn suspend(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(label): Path<String>,
    body: Bytes,
) -> Response {
    match change(&state, &identity, &label, &body, Change::Suspend).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn resume(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(label): Path<String>,
    body: Bytes,
) -> Response {
    match change(&state, &identity, &label, &body, Change::Resume).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The three operations, for the OpenAPI document.
pub(super) fn openapi(paths: &mut Map<String, Value>) {
    let body = Some((
        "application/json",
        json!({ "type": "object", "properties": { "reason": { "type": "string" } } }),
    ));
    let with_auth = |mut v: Vec<(&'static str, Value)>| {
        v.extend(auth(true));
        v
    };
    paths.insert(
        "/api/v1/admin/keys".into(),
        json!({ "get": op(
            "this node's keys and which are suspended (the emergency stop)",
            Some(SCOPE_ADMIN),
            None,
            with_auth(vec![("200", json_object("{keys:[{label,usage,suspended,suspension,phase,activate_at,retired_at}]}"))]),
        ) }),
    );
    let change = |summary: &str, extra: Vec<(&'static str, Value)>| {
        let mut r = vec![
            ("200", json_object("{label,suspended,changed,seq}")),
            ("400", json_error("the body is not {\"reason\":\"...\"}")),
            ("404", json_error("no key of that label on this node")),
            ("503", json_error("the issuance log cannot record it now")),
        ];
        r.extend(extra);
        op(summary, Some(SCOPE_ADMIN), body.clone(), with_auth(r))
    };
    paths.insert(
        "/api/v1/admin/keys/{label}/suspend".into(),
        json!({ "post": change(
            "stop issuance with a key on every node sharing the log, until resumed",
            vec![],
        ) }),
    );
    paths.insert(
        "/api/v1/admin/keys/{label}/resume".into(),
        json!({ "post": change(
            "lift a key's suspension",
            vec![("409", json_error("the key is not suspended"))],
        ) }),
    );
    paths.insert(
        "/api/v1/admin/reload".into(),
        json!({ "post": op(
            "reload this node's configuration file (a key's successor, a rollover's time); all or nothing",
            Some(SCOPE_ADMIN),
            None,
            with_auth(vec![
                ("200", json_object("{sha256,changes:[...]}")),
                ("404", json_error("no configuration file to reload")),
                ("422", json_error("refused: the reason; the configuration in force stays")),
            ]),
        ) }),
    );
}
