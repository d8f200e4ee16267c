//! `POST /api/v1/archive/objects/rehash`: hash-tree renewal (RFC 4998 section 5.3,
//! docs/requirements.md F.66) of archive objects' evidence records, for an archive whose
//! objects' hash algorithm weakens (issue #16). Hanko never holds the documents: the
//! archive sends, for objects it submitted, each one's hash under the stronger algorithm.
//!
//! ```text
//!   authorize, admission: as POST /api/v1/archive/objects (scope archive, bulk lane)
//!   {"alg":"sha512","objects":[{"sha256":"<object's SHA-256>","hex":"<its SHA-512>"}]}
//!      bad JSON, unknown field, bad hex, wrong length, empty, duplicate          400
//!      alg not stronger than the trees' sha256                                   422
//!      more than archive.max_hashes_per_request                                  413
//!   every object checked before anything is written:
//!      not an archive object this client submitted                               404
//!      its batch not anchored yet, or renewed with another algorithm             409
//!   the served record of each (anchor + time-stamp renewals) ─> leaf
//!      H(h(d) || H(DER of its ArchiveTimeStampSequence)) ─> one tree over all leaves
//!      ─> Store::plan_renewal (kind hash-tree) ─> own TSA time-stamps the root
//!      ─> Store::complete_renewal                       (a crash: the scheduler finishes)
//!   200 {"alg","run","objects":[{"sha256","status":"renewed"|"existing","evidence"}],
//!        "renewed":N,"existing":M}
//! ```
//!
//! The evidence routes then serve each object's record with both chains. The run's new
//! chain is then renewed by the scheduler like an anchor's (`crate::anchor::renewal`).

use std::collections::HashSet;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hanko_anchor::evidence::{EvidenceRecord, hash_tree_renewal_hash};
use hanko_anchor::renewal::{RunTree, reduced_to_der};
use hanko_anchor::tree::HashAlg;
use hanko_store::{NewRun, PlannedHashTree, RecordKind, RenewalKind};
use serde::Deserialize;
use serde_json::{Value, json};

use super::anchor_api::error;
use super::archive_api::ArchiveClient;
use super::json_error::ApiError;
use crate::anchor::evidence::{Lookup, lookup};
use crate::anchor::renewal::{alg_name, finish_run};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    alg: String,
    objects: Vec<Object>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Object {
    sha256: String,
    hex: String,
}

/// One object to renew, checked.
struct Checked {
    sha256: [u8; 32],
    data_hash: Vec<u8>,
}

fn parse(body: &[u8], max: usize) -> Result<(HashAlg, Vec<Checked>), ApiError> {
    let bad = ApiError::BadRequest;
    let b: Body = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "the body is not {{\"alg\":..,\"objects\":[{{\"sha256\":..,\"hex\":..}}]}}: {e}"
        ))
    })?;
    let alg = match b.alg.as_str() {
        "sha384" => HashAlg::Sha384,
        "sha512" => HashAlg::Sha512,
        "sha256" => {
            return Err(ApiError::Unprocessable(
                "hash-tree renewal starts a chain with a stronger algorithm than the trees' \
                 sha256: sha384 or sha512"
                    .to_owned(),
            ));
        }
        other => {
            return Err(bad(format!(
                "unknown hash algorithm {other:?} (sha384, sha512)"
            )));
        }
    };
    if b.objects.is_empty() {
        return Err(bad("no objects: the list is empty".to_owned()));
    }
    if b.objects.len() > max {
        return Err(ApiError::TooMuch(format!(
            "{} objects in one request; at most {max} (archive.max_hashes_per_request)",
            b.objects.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(b.objects.len());
    for (i, o) in b.objects.iter().enumerate() {
        let sha256 = hex::decode(&o.sha256)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
            .ok_or_else(|| bad(format!("objects[{i}].sha256: not 64 hex digits")))?;
        let data_hash = hex::decode(&o.hex)
            .ok()
            .filter(|v| v.len() == alg.len())
            .ok_or_else(|| {
                bad(format!(
                    "objects[{i}].hex: not a {} digest ({} hex digits)",
                    b.alg,
                    2 * alg.len()
                ))
            })?;
        if !seen.insert(sha256) {
            return Err(bad(format!("objects[{i}]: the same object twice")));
        }
        out.push(Checked { sha256, data_hash });
    }
    Ok((alg, out))
}

/// The route's handler (see the module docs).
pub(super) async fn rehash(
    State(state): State<Arc<AppState>>,
    Extension(ArchiveClient(client)): Extension<ArchiveClient>,
    body: Bytes,
) -> Response {
    let (Some(archive), Some(settings), Some(store), Some(issuer)) =
        (&state.archive, &state.anchor, &state.store, &state.issuer)
    else {
        return ApiError::NotEnabled(
            "hash-tree renewal needs anchoring and the server's own TSA".to_owned(),
        )
        .into_response();
    };
    let (alg, objects) = match parse(&body, archive.settings().max_hashes_per_request) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let log_error = |e: anyhow::Error| {
        tracing::warn!(error = %format!("{e:#}"), "hash-tree renewal failed");
        ApiError::LogUnavailable { retryable: true }.into_response()
    };
    // Every object checked, its leaf computed, before anything is written.
    let mut planned = Vec::new();
    let mut leaves = Vec::new();
    let mut answers = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let hex = hex::encode(o.sha256);
        let record = match store.find_by_object_hash(&o.sha256).await {
            Ok(Some(r)) if r.kind == RecordKind::ArchiveObject && r.client == client => r,
            Ok(_) => {
                return error(
                    StatusCode::NOT_FOUND,
                    "unknown_object",
                    format!("objects[{i}]: {hex} is not an archive object this client submitted"),
                    Value::Null,
                );
            }
            Err(e) => return log_error(e.into()),
        };
        let found = lookup(store, settings, &state.batches, &record, None).await;
        let (der, batch, anchor) = match found {
            Ok(Lookup::Found { der, batch, anchor }) => (der, batch, anchor),
            Ok(_) => {
                return error(
                    StatusCode::CONFLICT,
                    "not_anchored",
                    format!("objects[{i}]: {hex} has no anchored evidence record yet"),
                    Value::Null,
                );
            }
            Err(e) => return log_error(e),
        };
        let chains = match EvidenceRecord::from_der(&der) {
            Ok(er) => er.archive_time_stamp_sequence,
            Err(e) => return log_error(e.into()),
        };
        let status = if chains.len() > 1 {
            let done = store.hash_tree_renewals(record.seq).await;
            match done {
                Ok(d) if d.iter().any(|h| h.hash_alg == alg_name(alg)) => "existing",
                Ok(_) => {
                    return error(
                        StatusCode::CONFLICT,
                        "renewed_otherwise",
                        format!("objects[{i}]: {hex} was renewed with another algorithm"),
                        Value::Null,
                    );
                }
                Err(e) => return log_error(e.into()),
            }
        } else {
            let leaf = match hash_tree_renewal_hash(&der, alg, &o.data_hash) {
                Ok(l) => l,
                Err(e) => return log_error(e.into()),
            };
            planned.push(PlannedHashTree {
                seq: record.seq,
                batch_id: batch.id,
                target: anchor,
                renewals: chains.first().map_or(0, |c| c.len().saturating_sub(1)) as u64,
                data_hash: o.data_hash.clone(),
                leaf_index: leaves.len() as u64,
                reduced: Vec::new(),
            });
            leaves.push(leaf);
            "renewed"
        };
        answers.push(json!({
            "sha256": hex,
            "status": status,
            "evidence": format!("/api/v1/evidence/sha256/{hex}"),
        }));
    }
    let mut run_id = None;
    if !leaves.is_empty() {
        let tree = match RunTree::new(alg, &leaves) {
            Ok(t) => t,
            Err(e) => return log_error(e.into()),
        };
        for (i, p) in planned.iter_mut().enumerate() {
            match tree.reduced_hashtree(i).and_then(|r| reduced_to_der(&r)) {
                Ok(r) => p.reduced = r,
                Err(e) => return log_error(e.into()),
            }
        }
        let run = store
            .plan_renewal(&NewRun {
                kind: RenewalKind::HashTree,
                hash_alg: alg_name(alg).to_owned(),
                root: tree.root().to_vec(),
                chains: Vec::new(),
                hash_trees: planned,
            })
            .await;
        let run = match run {
            Ok(r) => r,
            Err(hanko_store::Error::RenewalConflict(why)) => {
                return error(
                    StatusCode::CONFLICT,
                    "renewal_in_progress",
                    format!("another renewal of these objects is under way: {why}"),
                    Value::Null,
                );
            }
            Err(e) => return log_error(e.into()),
        };
        if let Err(e) = finish_run(store, issuer, &run, None).await {
            return log_error(e);
        }
        run_id = Some(run.id);
    }
    let renewed = leaves.len();
    tracing::info!(client = %client, alg = alg_name(alg), renewed, "archive objects rehashed");
    (
        StatusCode::OK,
        axum::Json(json!({
            "alg": alg_name(alg),
            "run": run_id,
            "objects": answers,
            "renewed": renewed,
            "existing": answers.len() - renewed,
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn status(r: Result<(HashAlg, Vec<Checked>), ApiError>) -> u16 {
        r.err().map_or(200, |e| e.into_response().status().as_u16())
    }

    #[test]
    fn every_object_is_checked_before_anything_else() {
        let ok = |alg: &str, n: usize| {
            json!({"alg": alg, "objects": [{"sha256": "ab".repeat(32), "hex": "cd".repeat(n)}]})
                .to_string()
        };
        let (alg, objs) = parse(ok("sha512", 64).as_bytes(), 10).ok().unwrap();
        assert_eq!(
            (alg, objs.len(), objs[0].data_hash.len()),
            (HashAlg::Sha512, 1, 64)
        );
        assert_eq!(status(parse(ok("sha384", 48).as_bytes(), 10)), 200);
        assert_eq!(status(parse(ok("sha256", 32).as_bytes(), 10)), 422);
        assert_eq!(status(parse(ok("md5", 16).as_bytes(), 10)), 400);
        assert_eq!(status(parse(ok("sha512", 48).as_bytes(), 10)), 400);
        assert_eq!(status(parse(ok("sha512", 64).as_bytes(), 0)), 413);
        assert_eq!(
            status(parse(b"{\"alg\":\"sha512\",\"objects\":[]}", 10)),
            400
        );
        assert_eq!(status(parse(b"not json", 10)), 400);
        let twice = json!({"alg": "sha512", "objects": [
            {"sha256": "ab".repeat(32), "hex": "cd".repeat(64)},
            {"sha256": "AB".repeat(32), "hex": "ef".repeat(64)}]});
        assert_eq!(status(parse(twice.to_string().as_bytes(), 10)), 400);
    }
}
