//! Auditor tools: export as JSON lines, lookup by serial, reading ranges for anchoring.
//!
//! What it is for: `hanko log export --from --to` and `GET /api/v1/log/{serial}` in the
//! server are thin wrappers over these functions; hanko-anchor reads the log in sequence
//! order through [`Store::read_range`].
//!
//! Export format: one JSON object per line, in sequence order, fields exactly as stored
//! (nothing is re-interpreted, so a tampered row is exported as it is, and the export can
//! be verified independently with `tools/verify_export.py`):
//!
//! ```text
//! {"seq":1,"kind":"timestamp","serial":"01","object_hash":"<hex>","request_hash":"<hex>",
//!  "policy":"1.3.6.1.4.1.99999.1","client":"anonymous","issued_at":"2026-11-24T19:40:00.123456789Z",
//!  "issued_at_ns":1795549200123456789,"node_id":"node-a","chain_hash":"<hex>","token":"<base64>"}
//! ```
//!
//! An audit record (kind `audit`, see [`crate::audit`]) also has
//! `"event":{"type":"key-suspended","fields":{"key":"tsa-rsa","reason":"..."}}`, its body
//! decoded (the body itself is its `token`).
//!
//! `serial`, hashes: lowercase hex; `token`: standard base64 with padding, present only when
//! the token is kept and the export asked for tokens. Bounds of a range are inclusive.
//!
//! With batches asked for ([`ExportOptions::batches`], `hanko log export --batches`), the
//! record lines are followed by one line per anchor batch that lies wholly within the
//! exported records, oldest first; a batch line has `batch` and no `seq`:
//!
//! ```text
//! {"batch":1,"first_seq":1,"last_seq":5,"leaf_count":5,"hash_alg":"sha256","root":"<hex>",
//!  "closed_at":"2026-11-24T19:41:00Z","closed_at_ns":1795549260000000000,"closed_by":"node-a",
//!  "anchors":[{"target":"self","state":"done","anchored_at":"...","token":"<base64>"}]}
//! ```
//!
//! `root` is the batch tree's root over the range's `object_hash` values (the tree's
//! rules: hanko-anchor's `tree` module); an anchor's `token` (its TimeStampToken over the
//! root) is present when done and tokens were asked for.
//!
//! What it does not do: page through the log for the HTTP API or filter by client; it reads
//! pages of [`PAGE`] rows by sequence number, so exports of any size use bounded memory.

use std::io::Write;
use std::time::SystemTime;

use base64::Engine as _;
use serde::Serialize;

use crate::backend::RowFilter;
use crate::record::{RawRow, RecordKind, StoredRecord, system_time_to_ns};
use crate::{Error, Store};

/// Rows fetched per query by export.
pub const PAGE: u32 = 1000;

/// Which rows to export (bounds inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportRange {
    /// Everything.
    All,
    /// Sequence numbers `from ..= to`.
    Seq {
        /// First sequence number.
        from: u64,
        /// Last sequence number.
        to: u64,
    },
    /// Rows whose `issued_at` lies in `from ..= to`, in sequence order.
    Time {
        /// Earliest issue time.
        from: SystemTime,
        /// Latest issue time.
        to: SystemTime,
    },
}

#[derive(Serialize)]
struct ExportLine<'a> {
    seq: i64,
    kind: &'a str,
    serial: String,
    object_hash: String,
    request_hash: String,
    policy: &'a str,
    client: &'a str,
    issued_at: String,
    issued_at_ns: i64,
    node_id: &'a str,
    chain_hash: String,
    /// An audit record's event (its kept body, decoded): always present for kind
    /// `audit`, whether or not tokens were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<EventJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// What an export holds beside the records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// The kept tokens (base64), and the anchors' tokens in batch lines.
    pub tokens: bool,
    /// A line per anchor batch wholly within the exported records, after them.
    pub batches: bool,
}

impl ExportOptions {
    /// Tokens and batches as asked.
    pub fn new(tokens: bool, batches: bool) -> Self {
        Self { tokens, batches }
    }
}

#[derive(Serialize)]
struct BatchLine<'a> {
    batch: u64,
    first_seq: u64,
    last_seq: u64,
    leaf_count: u64,
    hash_alg: &'a str,
    root: String,
    closed_at: String,
    closed_at_ns: i64,
    closed_by: &'a str,
    anchors: Vec<AnchorLine<'a>>,
}

#[derive(Serialize)]
struct AnchorLine<'a> {
    target: &'a str,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    anchored_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

fn batch_line(
    b: &crate::anchoring::Batch,
    anchors: &[crate::anchoring::Anchor],
    include_tokens: bool,
) -> Result<String, Error> {
    let line = BatchLine {
        batch: b.id,
        first_seq: b.first_seq,
        last_seq: b.last_seq,
        leaf_count: b.leaf_count,
        hash_alg: &b.hash_alg,
        root: hex::encode(&b.root),
        closed_at: rfc3339(b.closed_at_ns),
        closed_at_ns: b.closed_at_ns,
        closed_by: &b.closed_by,
        anchors: anchors
            .iter()
            .map(|a| AnchorLine {
                target: &a.target,
                state: a.state.as_str(),
                anchored_at: a.anchored_at_ns.map(rfc3339),
                token: if include_tokens {
                    a.token
                        .as_ref()
                        .map(|t| base64::engine::general_purpose::STANDARD.encode(t))
                } else {
                    None
                },
            })
            .collect(),
    };
    serde_json::to_string(&line).map_err(|e| Error::Io(std::sync::Arc::new(e.into())))
}

/// An audit event in an export line.
#[derive(Serialize)]
struct EventJson {
    #[serde(rename = "type")]
    event: &'static str,
    fields: std::collections::BTreeMap<String, String>,
}

/// The decoded event of an audit row (`None` for other kinds, or a body this build does
/// not read: the row is still exported as stored, and `verify` judges it).
fn audit_event(r: &RawRow) -> Option<EventJson> {
    if r.kind != RecordKind::Audit.as_str() {
        return None;
    }
    let ev = crate::AuditEvent::decode(r.token.as_deref()?)?;
    Some(EventJson {
        event: ev.event.as_str(),
        fields: ev.fields,
    })
}

/// RFC 3339 with nanoseconds, UTC; `"invalid"` for a value no calendar date has.
fn rfc3339(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "invalid".to_owned())
}

fn json_line(r: &RawRow, include_token: bool) -> Result<String, Error> {
    let line = ExportLine {
        seq: r.seq,
        kind: &r.kind,
        serial: hex::encode(&r.serial),
        object_hash: hex::encode(&r.object_hash),
        request_hash: hex::encode(&r.request_hash),
        policy: &r.policy,
        client: &r.client,
        issued_at: rfc3339(r.issued_at_ns),
        issued_at_ns: r.issued_at_ns,
        node_id: &r.node_id,
        chain_hash: hex::encode(&r.chain_hash),
        event: audit_event(r),
        token: if include_token {
            r.token
                .as_ref()
                .map(|t| base64::engine::general_purpose::STANDARD.encode(t))
        } else {
            None
        },
    };
    serde_json::to_string(&line).map_err(|e| Error::Io(std::sync::Arc::new(e.into())))
}

impl Store {
    /// Writes the rows of `range` as JSON lines (see the module docs) to `out`; returns the
    /// number of rows written. Tokens are included when `include_tokens` and kept.
    pub async fn export(
        &self,
        range: ExportRange,
        include_tokens: bool,
        out: &mut (dyn Write + Send),
    ) -> Result<u64, Error> {
        let options = ExportOptions {
            tokens: include_tokens,
            batches: false,
        };
        self.export_with(range, options, out).await
    }

    /// [`Store::export`] with [`ExportOptions`]: with `batches`, the record lines are
    /// followed by the batches wholly within them (module docs). Returns the number of
    /// record lines written.
    pub async fn export_with(
        &self,
        range: ExportRange,
        options: ExportOptions,
        out: &mut (dyn Write + Send),
    ) -> Result<u64, Error> {
        let (mut after, filter) = match range {
            ExportRange::All => (0, RowFilter::default()),
            ExportRange::Seq { from, to } => (
                from.saturating_sub(1),
                RowFilter {
                    to_seq: Some(to),
                    ..RowFilter::default()
                },
            ),
            ExportRange::Time { from, to } => {
                if to < SystemTime::UNIX_EPOCH {
                    return Ok(0);
                }
                // Before 1970 is the same as 1970; after 2262 the same as unbounded.
                let from_ns = system_time_to_ns(from).unwrap_or(if from < SystemTime::UNIX_EPOCH {
                    0
                } else {
                    i64::MAX
                });
                let to_ns = system_time_to_ns(to).unwrap_or(i64::MAX);
                (
                    0,
                    RowFilter {
                        from_ns: Some(from_ns),
                        to_ns: Some(to_ns),
                        ..RowFilter::default()
                    },
                )
            }
        };
        if let Some(to) = filter.to_seq
            && to <= after
        {
            return Ok(0);
        }
        after = after.min(i64::MAX as u64);
        let (written, span) = self
            .export_filtered(after, filter, options.tokens, out)
            .await?;
        if options.batches
            && let Some((first, last)) = span
        {
            self.export_batches(first, last, options.tokens, out)
                .await?;
        }
        Ok(written)
    }

    /// Writes a line for each batch within `first ..= last` (sequence numbers).
    async fn export_batches(
        &self,
        first: u64,
        last: u64,
        include_tokens: bool,
        out: &mut (dyn Write + Send),
    ) -> Result<(), Error> {
        let mut after = 0u64;
        loop {
            let page = self.batches_ascending(after, 100).await?;
            let Some(tail) = page.last() else { break };
            let next_after = tail.id;
            for b in &page {
                if b.first_seq < first {
                    continue;
                }
                if b.last_seq > last {
                    out.flush().map_err(|e| Error::Io(std::sync::Arc::new(e)))?;
                    return Ok(());
                }
                let anchors = self.anchors(b.id).await?;
                let mut line = batch_line(b, &anchors, include_tokens)?;
                line.push('\n');
                out.write_all(line.as_bytes())
                    .map_err(|e| Error::Io(std::sync::Arc::new(e)))?;
            }
            if page.len() < 100 || next_after <= after {
                break;
            }
            after = next_after;
        }
        out.flush().map_err(|e| Error::Io(std::sync::Arc::new(e)))
    }

    /// Writes the rows after `after` that `filter` keeps; returns how many, and the first
    /// and last sequence numbers written.
    async fn export_filtered(
        &self,
        mut after: u64,
        filter: RowFilter,
        include_tokens: bool,
        out: &mut (dyn Write + Send),
    ) -> Result<(u64, Option<(u64, u64)>), Error> {
        let mut written = 0u64;
        let mut span: Option<(u64, u64)> = None;
        loop {
            let rows = self.backend().read_rows(&filter, after, PAGE).await?;
            let Some(last) = rows.last() else { break };
            let next_after = u64::try_from(last.seq).unwrap_or(u64::MAX);
            for r in &rows {
                let seq = u64::try_from(r.seq).unwrap_or(0);
                span = Some(span.map_or((seq, seq), |(a, _)| (a, seq)));
                let mut line = json_line(r, include_tokens)?;
                line.push('\n');
                out.write_all(line.as_bytes())
                    .map_err(|e| Error::Io(std::sync::Arc::new(e)))?;
                written += 1;
            }
            if rows.len() < PAGE as usize || next_after <= after {
                break;
            }
            after = next_after;
        }
        out.flush().map_err(|e| Error::Io(std::sync::Arc::new(e)))?;
        Ok((written, span))
    }

    /// Convenience for small ranges and tests: the export as a vector of lines.
    pub async fn export_lines(
        &self,
        range: ExportRange,
        include_tokens: bool,
    ) -> Result<Vec<String>, Error> {
        let mut buf = Vec::new();
        self.export(range, include_tokens, &mut buf).await?;
        let text = String::from_utf8(buf).map_err(|e| Error::Corrupt {
            seq: 0,
            reason: e.to_string(),
        })?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// The record of `kind` with this serial (stored form: big-endian, no leading zeros;
    /// see [`crate::normalize_serial`]), with its token if kept.
    pub async fn get_by_serial(
        &self,
        kind: RecordKind,
        serial: &[u8],
    ) -> Result<Option<StoredRecord>, Error> {
        let rows = self.backend().find_by_serial(Some(kind), serial).await?;
        rows.into_iter().next().map(RawRow::into_stored).transpose()
    }

    /// Records of any kind with this serial / id (at most one per kind).
    pub async fn find_by_serial(&self, serial: &[u8]) -> Result<Vec<StoredRecord>, Error> {
        let rows = self.backend().find_by_serial(None, serial).await?;
        rows.into_iter().map(RawRow::into_stored).collect()
    }

    /// Up to `limit` records with `seq > after_seq`, in sequence order: the anchoring
    /// queue's read (hanko-anchor keeps its own high-water mark).
    pub async fn read_range(&self, after_seq: u64, limit: u32) -> Result<Vec<StoredRecord>, Error> {
        let rows = self
            .backend()
            .read_rows(&RowFilter::default(), after_seq.min(i64::MAX as u64), limit)
            .await?;
        rows.into_iter().map(RawRow::into_stored).collect()
    }
}
