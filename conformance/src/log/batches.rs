//! The batch lines of an export made with `--batches`: read, checked to tile the exported
//! records, each root recomputed from the records' object hashes (`log-batches`), and
//! each anchor's token checked over its root (`log-anchors`).

use std::collections::HashMap;

use base64::Engine as _;

use crate::report::Findings;
use crate::token::{self, Expect};

use super::row::Row;

/// One batch line of an export made with `--batches`.
#[derive(Clone, Debug)]
pub(super) struct BatchRow {
    pub(super) line: usize,
    pub(super) id: u64,
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    pub(super) leaf_count: u64,
    pub(super) hash_alg: String,
    pub(super) root: Vec<u8>,
    /// (target, state, token).
    pub(super) anchors: Vec<(String, String, Option<Vec<u8>>)>,
}

pub(super) fn is_batch_line(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .is_some_and(|v| v.get("batch").is_some() && v.get("seq").is_none())
}

pub(super) fn parse_batch_line(line: usize, text: &str) -> Result<BatchRow, String> {
    let bad = |what: &str| format!("line {line}: batch line: {what}");
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let obj = v.as_object().ok_or_else(|| bad("not an object"))?;
    const KNOWN: [&str; 10] = [
        "batch",
        "first_seq",
        "last_seq",
        "leaf_count",
        "hash_alg",
        "root",
        "closed_at",
        "closed_at_ns",
        "closed_by",
        "anchors",
    ];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(&format!("unknown member {k:?}")));
    }
    let num = |k: &str| {
        obj.get(k)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad(&format!("{k} is not a number")))
    };
    let text_of = |k: &str| {
        obj.get(k)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| bad(&format!("{k} is not a string")))
    };
    let root = hex::decode(text_of("root")?).map_err(|_| bad("root is not hex"))?;
    let mut anchors = Vec::new();
    for a in obj
        .get("anchors")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| bad("anchors is not an array"))?
    {
        let field = |k: &str| {
            a.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let token = match field("token") {
            Some(b) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|_| bad("an anchor token is not base64"))?,
            ),
            None => None,
        };
        anchors.push((
            field("target").ok_or_else(|| bad("an anchor without target"))?,
            field("state").ok_or_else(|| bad("an anchor without state"))?,
            token,
        ));
    }
    Ok(BatchRow {
        line,
        id: num("batch")?,
        first_seq: num("first_seq")?,
        last_seq: num("last_seq")?,
        leaf_count: num("leaf_count")?,
        hash_alg: text_of("hash_alg")?.to_owned(),
        root,
        anchors,
    })
}

/// The root of the batch tree over `leaves` (F.63a): pairs from the left hashed as
/// `H(min || max)`, a node without a partner carried up unchanged; one leaf is the root.
fn batch_root(hash: crate::crypto::Hash, leaves: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut level: Vec<Vec<u8>> = leaves.to_vec();
    if level.is_empty() {
        return None;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => {
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    hash.digest(&[lo.as_slice(), hi.as_slice()].concat())
                }
                [a] => a.clone(),
                _ => Vec::new(),
            })
            .collect();
    }
    level.pop()
}

/// `log-batches` and `log-anchors` (module docs).
pub(super) fn check_batches(rows: &[Row], batches: &[BatchRow], ca: &[Vec<u8>], f: &mut Findings) {
    if batches.is_empty() {
        let why = "the export has no batch lines (made without `hanko log export --batches`)";
        f.skip("C.38", "log-batches", why);
        f.skip("C.38", "log-anchors", why);
        return;
    }
    let by_seq: HashMap<u64, &Row> = rows.iter().map(|r| (r.seq, r)).collect();
    let mut fails = Vec::new();
    let mut prev: Option<&BatchRow> = None;
    for b in batches {
        let name = format!("batch {} (line {})", b.id, b.line);
        match prev {
            Some(p) if b.id != p.id + 1 || b.first_seq != p.last_seq + 1 => fails.push(format!(
                "{name}: seq {}..={} does not follow batch {} (seq {}..={}): a gap, an overlap or a fork",
                b.first_seq, b.last_seq, p.id, p.first_seq, p.last_seq
            )),
            None if b.id == 1 && b.first_seq != 1 => {
                fails.push(format!("{name}: the first batch starts at seq {}, not 1", b.first_seq))
            }
            _ => {}
        }
        prev = Some(b);
        if b.last_seq < b.first_seq || b.leaf_count != b.last_seq - b.first_seq + 1 {
            fails.push(format!(
                "{name}: leaf_count {} for seq {}..={}",
                b.leaf_count, b.first_seq, b.last_seq
            ));
            continue;
        }
        let hash = match b.hash_alg.as_str() {
            "sha256" => crate::crypto::Hash::Sha256,
            "sha384" => crate::crypto::Hash::Sha384,
            "sha512" => crate::crypto::Hash::Sha512,
            other => {
                fails.push(format!("{name}: hash_alg {other:?}"));
                continue;
            }
        };
        let leaves: Option<Vec<Vec<u8>>> = (b.first_seq..=b.last_seq)
            .map(|seq| by_seq.get(&seq).map(|r| r.object_hash.clone()))
            .collect();
        let Some(leaves) = leaves else {
            fails.push(format!(
                "{name}: seq {}..={} are not all in the export",
                b.first_seq, b.last_seq
            ));
            continue;
        };
        if batch_root(hash, &leaves).as_deref() != Some(b.root.as_slice()) {
            fails.push(format!(
                "{name}: root {} is not the tree's root over the object hashes of seq {}..={}",
                hex::encode(&b.root),
                b.first_seq,
                b.last_seq
            ));
        }
    }
    let (first, last) = (&batches[0], &batches[batches.len() - 1]);
    if fails.is_empty() {
        let unbatched = rows
            .last()
            .map_or(0, |r| r.seq.saturating_sub(last.last_seq));
        f.check(
            "C.38",
            "log-batches",
            Ok(format!(
                "batches {}..={} tile seq {}..={}, every root recomputed{}",
                first.id,
                last.id,
                first.first_seq,
                last.last_seq,
                if unbatched > 0 {
                    format!("; {unbatched} later records not yet batched")
                } else {
                    String::new()
                }
            )),
        );
    } else {
        for e in fails {
            f.check("C.38", "log-batches", Err(e));
        }
    }

    // The anchors: every done anchor's token over its batch's root.
    let mut checked = 0usize;
    let mut pending = Vec::new();
    let mut missing = Vec::new();
    for b in batches {
        for (target, state, tok) in &b.anchors {
            match (state.as_str(), tok) {
                ("done", Some(t)) => {
                    let alg = match b.hash_alg.as_str() {
                        "sha384" => crate::crypto::oid::SHA384,
                        "sha512" => crate::crypto::oid::SHA512,
                        _ => crate::crypto::oid::SHA256,
                    };
                    let expect = Expect {
                        imprint: Some((alg.to_owned(), b.root.clone())),
                        ca: ca.to_vec(),
                        ..Expect::default()
                    };
                    let label = format!("batch {} anchor {target}", b.id);
                    token::check_token(t, &expect, &label, f);
                    checked += 1;
                }
                ("done", None) => missing.push(format!("batch {} {target}", b.id)),
                _ => pending.push(format!("batch {} {target} ({state})", b.id)),
            }
        }
    }
    let mut detail = format!("{checked} anchor tokens checked over their batch roots");
    if !pending.is_empty() {
        detail.push_str(&format!("; not yet anchored: {}", pending.join(", ")));
    }
    if checked == 0 {
        let why = if missing.is_empty() {
            detail
        } else {
            "the anchors' tokens are not in the export (export with --tokens)".to_owned()
        };
        f.skip("C.38", "log-anchors", why);
    } else {
        f.check("C.38", "log-anchors", Ok(detail));
    }
}
