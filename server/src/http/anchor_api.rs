//! Evidence records and batch status (issue #15), public: only who holds an object knows
//! its hash, and batch roots are what anyone checks evidence against.
//!
//! ```text
//!   GET /api/v1/evidence/sha256/{hex}[?anchor=NAME]        by the object's SHA-256
//!   GET /api/v1/evidence/serial/{hex}[?kind=K][&anchor=NAME] by serial (hex, as /api/v1/log)
//!     200 application/octet-stream  DER RFC 4998 EvidenceRecord
//!         Content-Disposition: attachment; filename="<first 16 hex of the hash>-<anchor>.ers"
//!     404 {"error":"batch_open","error_description":..,"expected_by":RFC 3339}   not yet
//!     404 {"error":"anchor_pending",..,"batch":7,"anchors":[{name,state,attempts,..}]}
//!     404 {"error":"not_found",..}   no such record (or anchor name)
//!     400 {"error":"invalid_request",..}  bad hex, kind, anchor, or a serial of several kinds
//!   GET /api/v1/batches[?before=ID][&limit=N]   newest first, N <= 100 (default 20)
//!   GET /api/v1/batches/{id}                    one batch
//!     {"id","first_seq","last_seq","leaf_count","hash_alg","root","closed_at",
//!      "anchors":[{"name","state","attempts","anchored_at","last_error","next_attempt_at"}]}
//! ```
//!
//! No IANA media type exists for a DER RFC 4998 EvidenceRecord, so it is sent as
//! `application/octet-stream`, with the `.ers` extension tools use. What these routes do
//! not show: tokens' bytes other than inside an evidence record, node paths, URLs of
//! external targets (only their names), or anything of the log beyond sequence numbers.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hanko_store::{Anchor, Batch, RecordKind, Store, StoredRecord};
use serde_json::{Value, json};

use super::log_api::{parse_kind_value, parse_serial};
use crate::anchor::evidence::{Lookup, lookup};
use crate::state::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/evidence/sha256/{hash}", get(by_hash))
        .route("/api/v1/evidence/serial/{serial}", get(by_serial))
        .route("/api/v1/batches", get(list_batches))
        .route("/api/v1/batches/{id}", get(one_batch))
}

/// The media type of an evidence record.
pub const ERS_TYPE: &str = "application/octet-stream";

/// Most batches per page.
const MAX_PAGE: u32 = 100;

/// A JSON error body `{error, error_description, ...extra}`, not cached.
pub(super) fn error(status: StatusCode, code: &str, description: String, extra: Value) -> Response {
    let mut body = json!({ "error": code, "error_description": description });
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn bad_request(why: impl Into<String>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        why.into(),
        Value::Null,
    )
}

fn not_found(why: impl Into<String>) -> Response {
    error(StatusCode::NOT_FOUND, "not_found", why.into(), Value::Null)
}

/// A failed read of the log: 503 when retrying can help, else 500 (logged).
fn store_failure(e: &anyhow::Error) -> Response {
    let retryable = e
        .downcast_ref::<hanko_store::Error>()
        .is_some_and(hanko_store::Error::is_retryable);
    tracing::warn!(error = %format!("{e:#}"), "evidence or batch read failed");
    let (status, code) = if retryable {
        (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
    };
    error(
        status,
        code,
        "the issuance log cannot be read right now".to_owned(),
        Value::Null,
    )
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "invalid".to_owned())
}

fn rfc3339_ns(ns: i64) -> String {
    rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(0)))
}

/// The query of the evidence routes: `anchor`, and `kind` where `allow_kind`.
struct EvidenceQuery {
    anchor: Option<String>,
    kind: Option<RecordKind>,
}

fn parse_query(query: Option<&str>, allow_kind: bool) -> Result<EvidenceQuery, String> {
    let mut q = EvidenceQuery {
        anchor: None,
        kind: None,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("anchor", v))
                if (1..=64).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
            {
                q.anchor = Some(v.to_owned());
            }
            Some(("anchor", v)) => return Err(format!("invalid anchor name {v:?}")),
            Some(("kind", v)) if allow_kind => q.kind = Some(parse_kind_value(v)?),
            _ => {
                let allowed = if allow_kind { "kind, anchor" } else { "anchor" };
                return Err(format!("unknown query parameter {pair:?} (only {allowed})"));
            }
        }
    }
    Ok(q)
}

/// The store and anchoring settings; `None` when anchoring is off (answer [`disabled`]).
fn anchoring(state: &AppState) -> Option<(&Store, &crate::config::AnchorSettings)> {
    Some((state.store.as_ref()?, state.anchor.as_ref()?))
}

fn disabled() -> Response {
    not_found("anchoring is not enabled on this server ([anchor] enabled = false)")
}

async fn by_hash(
    State(state): State<Arc<AppState>>,
    Path(hash): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some((store, _)) = anchoring(&state) else {
        return disabled();
    };
    let q = match parse_query(query.as_deref(), false) {
        Ok(q) => q,
        Err(why) => return bad_request(why),
    };
    let Some(hash) = hex::decode(&hash)
        .ok()
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
    else {
        return bad_request("the hash must be 64 hexadecimal digits (SHA-256)");
    };
    match store.find_by_object_hash(&hash).await {
        Ok(Some(record)) => answer(&state, record, q.anchor.as_deref()).await,
        Ok(None) => not_found(format!(
            "no issued object with SHA-256 {} is in the log",
            hex::encode(hash)
        )),
        Err(e) => store_failure(&e.into()),
    }
}

async fn by_serial(
    State(state): State<Arc<AppState>>,
    Path(serial): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some((store, _)) = anchoring(&state) else {
        return disabled();
    };
    let q = match parse_query(query.as_deref(), true) {
        Ok(q) => q,
        Err(why) => return bad_request(why),
    };
    let Some(serial) = parse_serial(&serial) else {
        return bad_request("the serial must be hexadecimal (e.g. 0a or 0x0A)");
    };
    let records = match store.find_by_serial(&serial).await {
        Ok(r) => r,
        Err(e) => return store_failure(&e.into()),
    };
    let mut matching: Vec<StoredRecord> = records
        .into_iter()
        .filter(|r| q.kind.is_none_or(|k| r.kind == k))
        .collect();
    if matching.len() > 1 {
        let kinds: Vec<&str> = matching.iter().map(|r| r.kind.as_str()).collect();
        return bad_request(format!(
            "serial {} names records of several kinds ({}): add ?kind=",
            hex::encode(&serial),
            kinds.join(", ")
        ));
    }
    match matching.pop() {
        Some(record) => answer(&state, record, q.anchor.as_deref()).await,
        None => not_found(format!(
            "no record with serial {} is in the log",
            hex::encode(&serial)
        )),
    }
}

/// The evidence record of `record`, or why there is none yet.
async fn answer(state: &AppState, record: StoredRecord, anchor: Option<&str>) -> Response {
    let Some((store, settings)) = anchoring(state) else {
        return disabled();
    };
    match lookup(store, settings, &state.batches, &record, anchor).await {
        Ok(Lookup::Found { der, batch, anchor }) => {
            tracing::debug!(seq = record.seq, batch = batch.id, anchor = %anchor, "evidence record served");
            let name = format!("{}-{anchor}.ers", &hex::encode(record.object_hash)[..16]);
            let mut r = der.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ERS_TYPE));
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Ok(Lookup::Open { expected_by }) => error(
            StatusCode::NOT_FOUND,
            "batch_open",
            format!(
                "record {} is in the open batch; its evidence is expected by {}",
                record.seq,
                rfc3339(expected_by)
            ),
            json!({ "seq": record.seq, "expected_by": rfc3339(expected_by) }),
        ),
        Ok(Lookup::Pending { batch, anchors }) => error(
            StatusCode::NOT_FOUND,
            "anchor_pending",
            format!(
                "batch {} is closed but not yet anchored by {}",
                batch.id,
                anchors
                    .iter()
                    .map(|a| a.target.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!({
                "seq": record.seq,
                "batch": batch.id,
                "anchors": anchors.iter().map(anchor_json).collect::<Vec<_>>(),
            }),
        ),
        Ok(Lookup::UnknownAnchor { name, known }) => not_found(format!(
            "batch has no anchor named {name:?} (it has: {})",
            known.join(", ")
        )),
        Err(e) => store_failure(&e),
    }
}

fn anchor_json(a: &Anchor) -> Value {
    let mut v = json!({
        "name": a.target,
        "state": a.state.as_str(),
        "attempts": a.attempts,
    });
    if let Some(m) = v.as_object_mut() {
        if let Some(t) = a.anchored_at_ns {
            m.insert("anchored_at".into(), rfc3339_ns(t).into());
        } else {
            m.insert(
                "next_attempt_at".into(),
                rfc3339_ns(a.next_attempt_at_ns).into(),
            );
        }
        if let Some(e) = &a.last_error {
            m.insert("last_error".into(), e.clone().into());
        }
    }
    v
}

pub(crate) fn batch_json(b: &Batch, anchors: &[Anchor]) -> Value {
    json!({
        "id": b.id,
        "first_seq": b.first_seq,
        "last_seq": b.last_seq,
        "leaf_count": b.leaf_count,
        "hash_alg": b.hash_alg,
        "root": hex::encode(&b.root),
        "closed_at": rfc3339(b.closed_at()),
        "anchors": anchors.iter().map(anchor_json).collect::<Vec<_>>(),
    })
}

async fn list_batches(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let Some((store, _)) = anchoring(&state) else {
        return disabled();
    };
    let mut before = None;
    let mut limit = 20u32;
    for pair in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("before", v)) => match v.parse::<u64>() {
                Ok(n) => before = Some(n),
                Err(_) => return bad_request(format!("before={v:?} is not a batch id")),
            },
            Some(("limit", v)) => match v.parse::<u32>() {
                Ok(n @ 1..=MAX_PAGE) => limit = n,
                _ => return bad_request(format!("limit={v:?}: allowed 1..={MAX_PAGE}")),
            },
            _ => {
                return bad_request(format!(
                    "unknown query parameter {pair:?} (only before, limit)"
                ));
            }
        }
    }
    let page = match store.batches(before, limit).await {
        Ok(p) => p,
        Err(e) => return store_failure(&e.into()),
    };
    let mut items = Vec::with_capacity(page.len());
    for b in &page {
        match store.anchors(b.id).await {
            Ok(a) => items.push(batch_json(b, &a)),
            Err(e) => return store_failure(&e.into()),
        }
    }
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|b| b.id))
        .flatten();
    let mut r = axum::Json(json!({ "batches": items, "next_before": next })).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn one_batch(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some((store, _)) = anchoring(&state) else {
        return disabled();
    };
    let Ok(id) = id.parse::<u64>() else {
        return bad_request(format!("{id:?} is not a batch id"));
    };
    let batch = match store.batch(id).await {
        Ok(Some(b)) => b,
        Ok(None) => return not_found(format!("no batch {id}")),
        Err(e) => return store_failure(&e.into()),
    };
    match store.anchors(id).await {
        Ok(a) => {
            let mut r = axum::Json(batch_json(&batch, &a)).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => store_failure(&e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn evidence_query() {
        let q = parse_query(Some("anchor=tsa-2"), false).unwrap();
        assert_eq!(q.anchor.as_deref(), Some("tsa-2"));
        assert!(parse_query(Some("kind=seal"), false).is_err());
        let q = parse_query(Some("kind=seal&anchor=self"), true).unwrap();
        assert_eq!(q.kind, Some(RecordKind::Seal));
        assert!(parse_query(Some("anchor=../x"), true).is_err());
        assert!(parse_query(Some("anchor="), true).is_err());
        assert!(parse_query(Some("kind=token"), true).is_err());
    }
}
