//! The checks of an issuance-log export as `hanko log export` writes it (JSON lines, one
//! record a line, in sequence order; store/README.md), recomputed here from the format's
//! definition: docs/requirements.md C.38 (the log: chain and completeness) and B.25
//! (unique serials).
//!
//! ```text
//! {"seq":1,"kind":"timestamp","serial":"<hex>","object_hash":"<hex>","request_hash":"<hex>",
//!  "policy":"..","client":"..","issued_at":"<RFC 3339>","issued_at_ns":<i64>,"node_id":"..",
//!  "chain_hash":"<hex>"[,"event":{..}][,"token":"<base64>"]}
//!
//! lp(x)         = u32_be(len(x)) || x
//! chain_hash(n) = SHA-256(lp("hanko-log-chain-v1") || lp(chain_hash(n-1)) || lp(u64_be(seq))
//!                 || lp(kind) || lp(serial) || lp(object_hash) || lp(request_hash)
//!                 || lp(policy) || lp(client) || lp(i64_be(issued_at_ns)) || lp(node_id))
//! chain_hash(0) = 32 zero bytes
//! ```
//!
//! Each defect fails one check: an edited record fails `log-chain` at that record; a
//! removed one fails `log-sequence`, and the record after the gap is not judged by
//! `log-chain` (its predecessor is missing: the chain restarts from its stored hash); a
//! repeated serial of one kind fails `log-serials-unique`. Token records (`timestamp`,
//! `archive-stamp`) are checked as any token ([`crate::token::check_token`]), and their
//! serial, imprint and genTime against the record's fields; seal records must be CMS
//! SignedData (a sealed PDF's `/Contents`).
//!
//! An export made with `--batches` ends with one line per anchor batch (`{"batch":N,
//! "first_seq":..,"last_seq":..,"leaf_count":..,"hash_alg":"sha256","root":"<hex>",..,
//! "anchors":[{"target":..,"state":..,"token":"<base64>"}]}`): `log-batches` checks that
//! they tile the exported records from the first batch on and recomputes each root from
//! the records' `object_hash` values (a node is `H(min(a, b) || max(a, b))`, a node left
//! without a partner is carried up: docs/requirements.md F.63a), and `log-anchors` runs
//! every anchor's token through the token checks with the batch root as the imprint.
//! Without batch lines both say SKIP.
//!
//! `row.rs` reads a record line and recomputes its chain hash; `batches.rs` reads and
//! checks the batch lines; this file runs the record checks in order.

mod batches;
mod row;

use std::collections::HashMap;

use sha2::Digest as _;

use crate::der::{self, tag};
use crate::report::Findings;
use crate::time;
use crate::token::{self, Expect};
use batches::{BatchRow, check_batches, is_batch_line, parse_batch_line};
use row::{Row, chain_hash, parse_line};

/// The DER CMS of a seal object: the object itself, or a sealed PDF's last `/Contents`.
fn seal_cms(object: &[u8]) -> Result<Vec<u8>, String> {
    if !object.starts_with(b"%PDF") {
        return Ok(object.to_vec());
    }
    let needle = b"/Contents";
    let pos = object
        .windows(needle.len())
        .rposition(|w| w == needle)
        .ok_or("a PDF without /Contents")?;
    let rest = &object[pos + needle.len()..];
    let open = rest
        .iter()
        .position(|&b| b == b'<')
        .ok_or("/Contents is not a hex string")?;
    let close = rest[open..]
        .iter()
        .position(|&b| b == b'>')
        .ok_or("/Contents is not closed")?;
    let hex_text: String = rest[open + 1..open + close]
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|&b| char::from(b))
        .collect();
    let bytes = hex::decode(&hex_text).map_err(|e| format!("/Contents is not hex: {e}"))?;
    // The placeholder is zero-padded after the DER value.
    let (tlv, _) = der::read(&bytes).map_err(|e| format!("/Contents: {e}"))?;
    Ok(tlv.raw.to_vec())
}

/// Whether `cms` is a DER ContentInfo with SignedData holding one SignerInfo or more.
fn check_cms(cms: &[u8]) -> Result<String, String> {
    let ci = der::read_exact(cms)
        .and_then(|t| t.expect(tag::SEQUENCE, "ContentInfo"))
        .map_err(|e| format!("ContentInfo: {e}"))?;
    let kids = ci.children().map_err(|e| e.to_string())?;
    let [ct, content] = kids.as_slice() else {
        return Err("ContentInfo is not a SEQUENCE of two".into());
    };
    let ct = ct.oid().map_err(|e| e.to_string())?;
    if ct != token::oid::SIGNED_DATA || content.tag != 0xa0 {
        return Err(format!("contentType {ct}, not signedData"));
    }
    let sd = der::read_exact(content.value)
        .and_then(|t| t.expect(tag::SEQUENCE, "SignedData"))
        .and_then(|t| t.children())
        .map_err(|e| format!("SignedData: {e}"))?;
    let infos = sd
        .last()
        .ok_or("an empty SignedData")?
        .expect(tag::SET, "signerInfos")
        .and_then(|s| s.children())
        .map_err(|e| e.to_string())?;
    if infos.is_empty() {
        return Err("SignedData without a SignerInfo".into());
    }
    Ok(format!("CMS SignedData, {} SignerInfo(s)", infos.len()))
}

/// The serial, imprint and genTime of a token, read with the tool's own DER reader.
fn token_fields(tok: &[u8]) -> Option<(Vec<u8>, Vec<u8>, time::GenTime)> {
    let f = token::tst_info_fields(tok)?;
    let imprint = f.get(2)?.children().ok()?.get(1)?.value.to_vec();
    let serial = f.get(3)?.integer().ok()?;
    let serial = serial.strip_prefix(&[0]).unwrap_or(serial).to_vec();
    let gen_t = time::parse_generalized(f.get(4)?.value)?;
    Some((serial, imprint, gen_t))
}

/// Checks the issuance-log export `export_jsonl` (JSON lines as `hanko log export`
/// writes them), recording each check in `f`. `ca`: trust anchors (DER) for the
/// tokens it carries.
pub fn check(export_jsonl: &[u8], ca: &[Vec<u8>], f: &mut Findings) {
    let text = String::from_utf8_lossy(export_jsonl);
    let mut rows = Vec::new();
    let mut batches: Vec<BatchRow> = Vec::new();
    let mut bad_lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if is_batch_line(line) {
            match parse_batch_line(i + 1, line) {
                Ok(b) => batches.push(b),
                Err(e) => bad_lines.push(e),
            }
            continue;
        }
        match parse_line(i + 1, line) {
            Ok(r) => rows.push(r),
            Err(e) => bad_lines.push(e),
        }
    }
    if bad_lines.is_empty() {
        f.check(
            "C.38",
            "log-lines",
            if rows.is_empty() {
                Err("the export holds no record".into())
            } else {
                Ok(format!("{} records in the export format", rows.len()))
            },
        );
    } else {
        for e in bad_lines {
            f.check("C.38", "log-lines", Err(e));
        }
    }

    // Sequence numbers contiguous, and the chain from the first record.
    let mut seq_fails = Vec::new();
    let mut chain_fails = Vec::new();
    let mut chain_notes = Vec::new();
    let mut prev: Option<&Row> = None;
    for r in &rows {
        let link: Option<Vec<u8>> = match prev {
            None if r.seq == 1 => Some(vec![0; 32]),
            None => {
                chain_notes.push(format!(
                    "a partial export from seq {}: its first record's hash is taken as given",
                    r.seq
                ));
                None
            }
            Some(p) if r.seq == p.seq + 1 => Some(p.chain_hash.clone()),
            Some(p) => {
                seq_fails.push(if r.seq > p.seq + 1 {
                    format!(
                        "seq {}..={} missing (line {} has seq {}, line {} seq {})",
                        p.seq + 1,
                        r.seq - 1,
                        p.line,
                        p.seq,
                        r.line,
                        r.seq
                    )
                } else {
                    format!(
                        "line {}: seq {} after seq {} (repeated or out of order)",
                        r.line, r.seq, p.seq
                    )
                });
                chain_notes.push(format!(
                    "seq {}: not linked (its predecessor is missing; see log-sequence)",
                    r.seq
                ));
                None
            }
        };
        if let Some(link) = link
            && chain_hash(&link, r) != r.chain_hash
        {
            chain_fails.push(format!(
                "seq {} (line {}): chain_hash {} does not match the record's fields and the \
                 previous record's hash (record edited, or its hash)",
                r.seq,
                r.line,
                hex::encode(&r.chain_hash)
            ));
        }
        prev = Some(r);
    }
    let (first, last) = (rows.first(), rows.last());
    if seq_fails.is_empty() {
        match (first, last) {
            (Some(a), Some(b)) => f.check(
                "C.38",
                "log-sequence",
                Ok(format!(
                    "seq {}..={}, no gap{}",
                    a.seq,
                    b.seq,
                    if a.seq == 1 {
                        ""
                    } else {
                        " (a partial export: records before it are not checked)"
                    }
                )),
            ),
            _ => f.skip("C.38", "log-sequence", "no record"),
        }
    } else {
        for e in seq_fails {
            f.check("C.38", "log-sequence", Err(e));
        }
    }
    if !chain_fails.is_empty() {
        for e in chain_fails {
            f.check("C.38", "log-chain", Err(e));
        }
    } else if let Some(b) = last {
        let mut d = format!(
            "every record's chain_hash recomputed; head seq {} {}",
            b.seq,
            hex::encode(&b.chain_hash)
        );
        for n in &chain_notes {
            d.push_str("; ");
            d.push_str(n);
        }
        f.check("C.38", "log-chain", Ok(d));
    } else {
        f.skip("C.38", "log-chain", "no record");
    }

    // Kept tokens hash to object_hash.
    let with_tokens = rows.iter().filter(|r| r.token.is_some()).count();
    if with_tokens == 0 {
        f.skip(
            "C.38",
            "log-token-hash",
            "the export carries no token (hanko log export --tokens)",
        );
    }
    for r in rows.iter().filter(|r| r.token.is_some()) {
        let t = r.token.as_deref().unwrap_or_default();
        f.check(
            "C.38",
            "log-token-hash",
            if sha2::Sha256::digest(t).as_slice() == r.object_hash.as_slice() {
                Ok(format!(
                    "{with_tokens} kept objects hash to their object_hash"
                ))
            } else {
                Err(format!(
                    "seq {}: the token does not hash to object_hash (replaced)",
                    r.seq
                ))
            },
        );
    }

    // B.25 unique serials per kind.
    let mut seen: HashMap<(&str, &[u8]), u64> = HashMap::new();
    let mut dup = Vec::new();
    for r in &rows {
        if let Some(s) = seen.insert((r.kind.as_str(), r.serial.as_slice()), r.seq) {
            dup.push(format!(
                "{} serial {} at seq {s} and seq {}",
                r.kind,
                hex::encode(&r.serial),
                r.seq
            ));
        }
    }
    if rows.is_empty() {
        f.skip("B.25", "log-serials-unique", "no record");
    } else if dup.is_empty() {
        f.check(
            "B.25",
            "log-serials-unique",
            Ok(format!("{} serials, unique per kind", rows.len())),
        );
    } else {
        for e in dup {
            f.check("B.25", "log-serials-unique", Err(e));
        }
    }

    let mut audits_seen = 0usize;
    // Audit records: the line's event is the body object_hash commits to.
    for r in rows.iter().filter(|r| r.kind == "audit") {
        audits_seen += 1;
        let Some(e) = &r.event else {
            f.check(
                "C.38",
                "log-audit-events",
                Err(format!(
                    "seq {}: an audit record without its event (the exporter could not read \
                     its body)",
                    r.seq
                )),
            );
            continue;
        };
        f.check(
            "C.38",
            "log-audit-events",
            event_body(e)
                .and_then(|body| {
                    if sha2::Sha256::digest(&body).as_slice() == r.object_hash.as_slice() {
                        Ok(
                            "each audit event is the canonical body its object_hash commits to"
                                .to_owned(),
                        )
                    } else {
                        Err("the line's event is not the body its object_hash commits to".into())
                    }
                })
                .map_err(|e| format!("seq {}: {e}", r.seq)),
        );
    }

    // Token records: each token checked, and its fields against the record's.
    let mut tokens_seen = 0usize;
    let mut seals_seen = 0usize;
    for r in &rows {
        let Some(obj) = &r.token else { continue };
        match r.kind.as_str() {
            "timestamp" | "archive-stamp" => {
                tokens_seen += 1;
                let l = format!("seq {} ({})", r.seq, r.kind);
                let fields = token_fields(obj);
                let imprint_alg = token::imprint_alg(obj);
                let expect = Expect {
                    imprint: imprint_alg.map(|a| (a, r.request_hash.clone())),
                    ca: ca.to_vec(),
                    ..Expect::default()
                };
                token::check_token(obj, &expect, &l, f);
                f.check(
                    "C.38",
                    "log-record-matches-token",
                    match fields {
                        None => Err(format!("{l}: the token's TSTInfo is unreadable")),
                        Some((serial, _, _)) if serial != r.serial => Err(format!(
                            "{l}: the record's serial {} is not the token's {}",
                            hex::encode(&r.serial),
                            hex::encode(&serial)
                        )),
                        Some((_, _, g)) if r.issued_at_ns.div_euclid(1_000_000_000) != g.unix => {
                            Err(format!(
                                "{l}: issued_at {} is not the token's genTime {}",
                                r.issued_at,
                                time::rfc3339(g.unix)
                            ))
                        }
                        Some(_) => Ok(
                            "each token record's serial and time are its token's (the imprint: \
                             message-imprint)"
                                .into(),
                        ),
                    },
                );
            }
            "seal" => {
                seals_seen += 1;
                f.check(
                    "C.38",
                    "log-seal-cms",
                    seal_cms(obj)
                        .and_then(|c| check_cms(&c))
                        .map_err(|e| format!("seq {}: {e}", r.seq)),
                );
            }
            "audit" => {
                audits_seen += 1;
                f.check(
                    "C.38",
                    "log-audit-events",
                    audit_body(obj, &r.policy).map_err(|e| format!("seq {}: {e}", r.seq)),
                );
            }
            _ => {}
        }
    }
    if tokens_seen == 0 {
        f.skip(
            "C.38",
            "log-record-matches-token",
            "no time-stamp token in the export (hanko log export --tokens)",
        );
    }
    if seals_seen == 0 {
        f.skip(
            "C.38",
            "log-seal-cms",
            "no seal with its object in the export",
        );
    }
    if audits_seen == 0 {
        f.skip(
            "C.38",
            "log-audit-events",
            "no audit event body in the export",
        );
    }
    check_batches(&rows, &batches, ca, f);
}

/// The canonical body of an exported audit event (store/src/audit.rs):
/// `{"v":1,"event":"<type>","fields":{...}}`, fields sorted by name, values strings.
fn event_body(event: &serde_json::Value) -> Result<Vec<u8>, String> {
    let kind = event
        .get("type")
        .and_then(serde_json::Value::as_str)
        .ok_or("the event has no type")?;
    let fields = event
        .get("fields")
        .and_then(serde_json::Value::as_object)
        .ok_or("the event has no fields object")?
        .iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|v| (k.clone(), v.to_owned()))
                .ok_or_else(|| format!("event field {k:?} is not a string"))
        })
        .collect::<Result<std::collections::BTreeMap<String, String>, String>>()?;
    let kind = serde_json::to_string(kind).map_err(|e| e.to_string())?;
    let fields = serde_json::to_string(&fields).map_err(|e| e.to_string())?;
    Ok(format!("{{\"v\":1,\"event\":{kind},\"fields\":{fields}}}").into_bytes())
}

/// An audit record's kept body: version 1 of the record's event type.
fn audit_body(body: &[u8], policy: &str) -> Result<String, String> {
    let b: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the audit body is not JSON: {e}"))?;
    if b.get("v").and_then(serde_json::Value::as_u64) != Some(1)
        || b.get("event").and_then(serde_json::Value::as_str) != Some(policy)
    {
        return Err(format!(
            "the audit body is not version 1 of event {policy:?}"
        ));
    }
    Ok("each audit event is the canonical body its object_hash commits to".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::row::rfc3339_ns;
    use super::*;

    #[test]
    fn seals_are_cms_alone_or_in_a_pdf() {
        let sd = der::seq(&[
            &der::uint_u64(1),
            &der::set_of(&[]),
            &der::seq(&[&der::oid("1.2.840.113549.1.7.1")]),
            &der::set_of(&[&der::seq(&[&der::uint_u64(1)])]),
        ]);
        let cms = der::seq(&[&der::oid(token::oid::SIGNED_DATA), &der::tlv(0xa0, &sd)]);
        assert!(check_cms(&seal_cms(&cms).unwrap()).is_ok());
        let mut padded = hex::encode(&cms);
        padded.push_str(&"0".repeat(64));
        let pdf = format!(
            "%PDF-1.7\n1 0 obj <</Type/Sig/Contents <{padded}> /ByteRange [0 1 2 3]>>\n%%EOF\n"
        );
        assert_eq!(seal_cms(pdf.as_bytes()).unwrap(), cms);
        assert!(seal_cms(b"%PDF-1.7 no signature").is_err());
        let no_signer = der::seq(&[
            &der::oid(token::oid::SIGNED_DATA),
            &der::tlv(0xa0, &der::seq(&[&der::uint_u64(1), &der::set_of(&[])])),
        ]);
        assert!(check_cms(&no_signer).is_err());
        assert!(check_cms(b"not der").is_err());
    }

    /// The known answer of store/README.md.
    #[test]
    fn chain_hash_known_answer() {
        let r = Row {
            line: 1,
            seq: 1,
            kind: "timestamp".into(),
            serial: vec![1],
            object_hash: vec![0x11; 32],
            request_hash: vec![0x22; 32],
            policy: "1.3.6.1.4.1.99999.1".into(),
            client: "anonymous".into(),
            issued_at: String::new(),
            issued_at_ns: 1_700_000_000_000_000_000,
            node_id: "node-a".into(),
            chain_hash: Vec::new(),
            token: None,
            event: None,
        };
        assert_eq!(
            hex::encode(chain_hash(&[0; 32], &r)),
            "66708c56eb0db59d0cff4e2d0b1806eacb8deffe3bd423d684552103a5415c50"
        );
        assert_eq!(
            rfc3339_ns("2026-11-24T19:40:00.123456789Z"),
            Some(1_795_549_200_123_456_789)
        );
        assert_eq!(
            rfc3339_ns("2026-11-24T19:40:00Z"),
            Some(1_795_549_200_000_000_000)
        );
        assert_eq!(rfc3339_ns("2026-11-24 19:40:00Z"), None);
        assert_eq!(rfc3339_ns("２０２６-11-24T19:40:00Z"), None);
        assert_eq!(rfc3339_ns("2026-11-24T19:40:00+09:00"), None);
    }
}
