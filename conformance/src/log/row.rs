//! A record line of the export as read (every field decoded, `issued_at` to nanoseconds)
//! and its chain hash recomputed from the format's definition (see `mod.rs`).

use base64::Engine as _;
use sha2::Digest as _;

use crate::time;

/// The domain-separation tag of chain version 1.
const CHAIN_DOMAIN: &[u8] = b"hanko-log-chain-v1";

/// One record of the export.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub(super) line: usize,
    pub(super) seq: u64,
    pub(super) kind: String,
    pub(super) serial: Vec<u8>,
    pub(super) object_hash: Vec<u8>,
    pub(super) request_hash: Vec<u8>,
    pub(super) policy: String,
    pub(super) client: String,
    pub(super) issued_at: String,
    pub(super) issued_at_ns: i64,
    pub(super) node_id: String,
    pub(super) chain_hash: Vec<u8>,
    pub(super) token: Option<Vec<u8>>,
    /// An audit record's `event` member, as exported.
    pub(super) event: Option<serde_json::Value>,
}

pub(super) fn parse_line(line: usize, text: &str) -> Result<Row, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("line {line}: not JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| format!("line {line}: not a JSON object"))?;
    let s = |k: &str| -> Result<String, String> {
        obj.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("line {line}: {k} missing or not a string"))
    };
    let hexf = |k: &str| -> Result<Vec<u8>, String> {
        hex::decode(s(k)?).map_err(|e| format!("line {line}: {k} is not hex: {e}"))
    };
    const MEMBERS: [&str; 13] = [
        "seq",
        "kind",
        "serial",
        "object_hash",
        "request_hash",
        "policy",
        "client",
        "issued_at",
        "issued_at_ns",
        "node_id",
        "chain_hash",
        "event",
        "token",
    ];
    if let Some(k) = obj.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(format!("line {line}: unknown member {k:?}"));
    }
    let seq = obj
        .get("seq")
        .and_then(serde_json::Value::as_u64)
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("line {line}: seq missing or not a positive integer"))?;
    let issued_at_ns = obj
        .get("issued_at_ns")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| format!("line {line}: issued_at_ns missing or not an integer"))?;
    let token = match obj.get("token") {
        None | Some(serde_json::Value::Null) => None,
        Some(t) => Some(
            t.as_str()
                .ok_or_else(|| format!("line {line}: token is not a string"))
                .and_then(|t| {
                    base64::engine::general_purpose::STANDARD
                        .decode(t)
                        .map_err(|e| format!("line {line}: token is not base64: {e}"))
                })?,
        ),
    };
    let row = Row {
        line,
        seq,
        kind: s("kind")?,
        serial: hexf("serial")?,
        object_hash: hexf("object_hash")?,
        request_hash: hexf("request_hash")?,
        policy: s("policy")?,
        client: s("client")?,
        issued_at: s("issued_at")?,
        issued_at_ns,
        node_id: s("node_id")?,
        chain_hash: hexf("chain_hash")?,
        token,
        event: obj.get("event").cloned(),
    };
    if row.chain_hash.len() != 32 || row.object_hash.len() != 32 {
        return Err(format!(
            "line {line} (seq {seq}): chain_hash or object_hash is not 32 bytes"
        ));
    }
    if !matches!(
        row.kind.as_str(),
        "timestamp" | "seal" | "archive-stamp" | "archive-object" | "audit"
    ) {
        return Err(format!(
            "line {line} (seq {seq}): unknown kind {:?}",
            row.kind
        ));
    }
    if row.serial.is_empty() {
        return Err(format!("line {line} (seq {seq}): an empty serial"));
    }
    match rfc3339_ns(&row.issued_at) {
        Some(ns) if ns == i128::from(row.issued_at_ns) => {}
        _ => {
            return Err(format!(
                "line {line} (seq {seq}): issued_at {:?} is not issued_at_ns {}",
                row.issued_at, row.issued_at_ns
            ));
        }
    }
    Ok(row)
}

/// Nanoseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
pub(super) fn rfc3339_ns(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if !s.is_ascii()
        || b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
    {
        return None;
    }
    let compact = format!(
        "{}{}{}{}{}{}",
        &s[0..4],
        &s[5..7],
        &s[8..10],
        &s[11..13],
        &s[14..16],
        &s[17..]
    );
    if b[16] != b':' {
        return None;
    }
    let g = time::parse_generalized(compact.as_bytes())?;
    if g.fraction.len() > 9 || !s.ends_with('Z') {
        return None;
    }
    Some(i128::from(g.unix) * 1_000_000_000 + i128::from(g.nanos()))
}

/// A record's chained hash from the previous one's (store/README.md, version 1).
pub(super) fn chain_hash(prev: &[u8], r: &Row) -> Vec<u8> {
    let mut h = sha2::Sha256::new();
    let mut lp = |x: &[u8]| {
        h.update(u32::try_from(x.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(x);
    };
    lp(CHAIN_DOMAIN);
    lp(prev);
    lp(&r.seq.to_be_bytes());
    lp(r.kind.as_bytes());
    lp(&r.serial);
    lp(&r.object_hash);
    lp(&r.request_hash);
    lp(r.policy.as_bytes());
    lp(r.client.as_bytes());
    lp(&r.issued_at_ns.to_be_bytes());
    lp(r.node_id.as_bytes());
    h.finalize().to_vec()
}
