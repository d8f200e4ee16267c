//! The chained hash that makes the log tamper-evident, and the verifier that recomputes it.
//!
//! What it is for: every row commits to the previous row's chained hash, so editing a row
//! changes its hash (or breaks the link of the next row), and deleting a row leaves a gap in
//! the gapless sequence numbers or a head that no longer matches. An auditor can recompute
//! the chain from an export with nothing but SHA-256 (`tools/verify_export.py` does, and a
//! test runs it).
//!
//! What it does not do: the chain alone cannot stop someone with write access from
//! rewriting *every* row from the edit onwards and the head as well; that is what the Merkle
//! anchors (hanko-anchor) and exported heads held elsewhere are for. The chain makes such a
//! rewrite visible against any earlier anchored or exported head.
//!
//! # Definition (version 1)
//!
//! ```text
//! lp(x)         = u32_be(len(x)) || x
//! chain_hash(n) = SHA-256(
//!        lp("hanko-log-chain-v1")
//!     || lp(chain_hash(n-1))        32 bytes; for n = 1 the genesis value, 32 zero bytes
//!     || lp(u64_be(seq))            8 bytes
//!     || lp(kind)                   UTF-8: "timestamp" | "seal" | "archive-stamp"
//!                                 | "archive-object" | "audit"
//!     || lp(serial)                 big-endian unsigned, no leading zero bytes (or id bytes)
//!     || lp(object_hash)            32 bytes, SHA-256 of the issued object
//!     || lp(request_hash)           the submitted imprint / document hash
//!     || lp(policy)                 UTF-8
//!     || lp(client)                 UTF-8
//!     || lp(i64_be(issued_at_ns))   8 bytes, nanoseconds since 1970-01-01T00:00:00Z
//!     || lp(node_id))               UTF-8
//! ```
//!
//! Every field is length-prefixed, so no two different rows encode to the same bytes. The
//! token bytes are not hashed directly: they are bound through `object_hash`, which the
//! verifier checks against the stored token when one is kept; operators who do not keep
//! tokens lose nothing of the chain.
//!
//! Audit events (kind `"audit"`, schema v6) are rows like any other: the same fields, the
//! same sequence, the same hash. Their body (event type and fields, a canonical JSON
//! encoding defined in [`crate::audit`]) is the row's kept token, bound by `object_hash`;
//! `policy` is the event type and `client` who caused it. Adding the kind changed no
//! hashed byte of existing rows, so the definition stays version 1 and logs written before
//! it verify unchanged.
//!
//! Sequence numbers are assigned by the writer under the chain-head lock (see
//! `store/src/backend/mod.rs`), so the chain order is the sequence order, also with several nodes.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::Error;
use crate::backend::{LogBackend, RowFilter};
use crate::record::{RawRow, sha256};

/// Domain-separation tag, the first hashed field.
pub const CHAIN_DOMAIN: &[u8] = b"hanko-log-chain-v1";

/// The "previous hash" of the first row: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0; 32];

/// The fields of one row that the chain hash covers (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct ChainInput<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Kind text as stored.
    pub kind: &'a str,
    /// Serial / id bytes.
    pub serial: &'a [u8],
    /// SHA-256 of the issued object.
    pub object_hash: &'a [u8],
    /// Submitted hash.
    pub request_hash: &'a [u8],
    /// Policy / credential.
    pub policy: &'a str,
    /// Client identity.
    pub client: &'a str,
    /// Issue time, ns since the epoch.
    pub issued_at_ns: i64,
    /// Writing node.
    pub node_id: &'a str,
}

/// Computes a row's chained hash from the previous row's (see the module docs).
pub fn chain_hash(prev: &[u8], row: &ChainInput<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut lp = |x: &[u8]| {
        // Every field is bounded far below 4 GiB by the append checks and the schema; a
        // tampered oversized value still hashes deterministically (length truncated to
        // u32::MAX is impossible for values that fit in memory of a sane row).
        let len = u32::try_from(x.len()).unwrap_or(u32::MAX);
        h.update(len.to_be_bytes());
        h.update(x);
    };
    lp(CHAIN_DOMAIN);
    lp(prev);
    lp(&row.seq.to_be_bytes());
    lp(row.kind.as_bytes());
    lp(row.serial);
    lp(row.object_hash);
    lp(row.request_hash);
    lp(row.policy.as_bytes());
    lp(row.client.as_bytes());
    lp(&row.issued_at_ns.to_be_bytes());
    lp(row.node_id.as_bytes());
    h.finalize().into()
}

impl RawRow {
    fn chain_input(&self, seq: u64) -> ChainInput<'_> {
        ChainInput {
            seq,
            kind: &self.kind,
            serial: &self.serial,
            object_hash: &self.object_hash,
            request_hash: &self.request_hash,
            policy: &self.policy,
            client: &self.client,
            issued_at_ns: self.issued_at_ns,
            node_id: &self.node_id,
        }
    }
}

/// The last row of the chain as recorded in the `chain_head` table (updated in the same
/// transaction as the rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Sequence number of the last row, 0 for an empty log.
    pub seq: u64,
    /// Chained hash of the last row, [`GENESIS`] for an empty log.
    pub hash: [u8; 32],
}

/// Why [`crate::Store::verify_chain`] rejected a row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadReason {
    /// The recomputed chained hash differs from the stored one: this row was edited, or the
    /// previous row's stored hash was.
    ChainHashMismatch,
    /// No row has this sequence number although later rows (or the head) say it existed:
    /// the row was deleted. `next_present` is the next sequence number that is present.
    Missing {
        /// The next sequence number found, if any.
        next_present: Option<u64>,
    },
    /// The stored token's SHA-256 is not the row's `object_hash`: the token was replaced.
    TokenMismatch,
    /// The head record disagrees with the last row (the chain head was edited).
    HeadMismatch,
    /// A column holds a value the schema forbids (e.g. a hash that is not 32 bytes).
    Malformed(String),
}

/// The first row that failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Sequence number of the bad (or missing) row.
    pub seq: u64,
    /// What is wrong with it.
    pub reason: BadReason,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = self.seq;
        match &self.reason {
            BadReason::ChainHashMismatch => {
                write!(f, "row {seq}: chained hash does not match its contents")
            }
            BadReason::Missing {
                next_present: Some(n),
            } => write!(f, "row {seq}: missing (deleted?); next row present is {n}"),
            BadReason::Missing { next_present: None } => {
                write!(f, "row {seq}: missing (deleted?); the head says it exists")
            }
            BadReason::TokenMismatch => {
                write!(f, "row {seq}: stored token does not hash to object_hash")
            }
            BadReason::HeadMismatch => {
                write!(
                    f,
                    "row {seq}: chain head record does not match the last row"
                )
            }
            BadReason::Malformed(r) => write!(f, "row {seq}: malformed: {r}"),
        }
    }
}

/// The result of [`crate::Store::verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows whose chained hash was recomputed and matched.
    pub rows_checked: u64,
    /// The head the verification ran up to (read first, so appends made during the run are
    /// not part of it).
    pub head: ChainHead,
    /// The first bad row, `None` if the whole chain up to `head` is intact.
    pub first_bad: Option<BadRow>,
}

impl VerifyReport {
    /// True if no bad row was found.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Rows fetched per query while verifying.
const PAGE: u32 = 1000;

/// Recomputes the chain from row 1 up to the current head.
pub(crate) async fn verify(backend: &dyn LogBackend) -> Result<VerifyReport, Error> {
    let head = backend.head().await?;
    let mut prev = GENESIS.to_vec();
    let mut expected: u64 = 1;
    let mut checked: u64 = 0;
    let filter = RowFilter {
        to_seq: Some(head.seq),
        ..RowFilter::default()
    };
    let report = |checked, bad| VerifyReport {
        rows_checked: checked,
        head,
        first_bad: bad,
    };
    'pages: loop {
        if expected > head.seq {
            break;
        }
        let rows = backend.read_rows(&filter, expected - 1, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let Ok(seq) = u64::try_from(row.seq) else {
                return Ok(report(
                    checked,
                    Some(BadRow {
                        seq: expected,
                        reason: BadReason::Malformed(format!("sequence number {}", row.seq)),
                    }),
                ));
            };
            if seq != expected {
                return Ok(report(
                    checked,
                    Some(BadRow {
                        seq: expected,
                        reason: BadReason::Missing {
                            next_present: Some(seq),
                        },
                    }),
                ));
            }
            if row.chain_hash.len() != 32 || row.object_hash.len() != 32 {
                return Ok(report(
                    checked,
                    Some(BadRow {
                        seq,
                        reason: BadReason::Malformed("a hash column is not 32 bytes".into()),
                    }),
                ));
            }
            if chain_hash(&prev, &row.chain_input(seq)) != row.chain_hash.as_slice() {
                return Ok(report(
                    checked,
                    Some(BadRow {
                        seq,
                        reason: BadReason::ChainHashMismatch,
                    }),
                ));
            }
            if let Some(t) = &row.token
                && sha256(t) != row.object_hash.as_slice()
            {
                return Ok(report(
                    checked,
                    Some(BadRow {
                        seq,
                        reason: BadReason::TokenMismatch,
                    }),
                ));
            }
            checked += 1;
            expected += 1;
            prev = row.chain_hash;
            if expected > head.seq {
                break 'pages;
            }
        }
    }
    if expected <= head.seq {
        return Ok(report(
            checked,
            Some(BadRow {
                seq: expected,
                reason: BadReason::Missing { next_present: None },
            }),
        ));
    }
    if prev != head.hash {
        return Ok(report(
            checked,
            Some(BadRow {
                seq: head.seq,
                reason: BadReason::HeadMismatch,
            }),
        ));
    }
    Ok(report(checked, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed vector, so that a change of the encoding cannot go unnoticed (the README and
    /// tools/verify_export.py must change with it).
    #[test]
    fn known_answer() {
        let row = ChainInput {
            seq: 1,
            kind: "timestamp",
            serial: &[1],
            object_hash: &[0x11; 32],
            request_hash: &[0x22; 32],
            policy: "1.3.6.1.4.1.99999.1",
            client: "anonymous",
            issued_at_ns: 1_700_000_000_000_000_000,
            node_id: "node-a",
        };
        let h = chain_hash(&GENESIS, &row);
        // Independent computation of the same bytes.
        let mut buf = Vec::new();
        for f in [
            CHAIN_DOMAIN,
            &GENESIS[..],
            &1u64.to_be_bytes()[..],
            b"timestamp",
            &[1],
            &[0x11; 32],
            &[0x22; 32],
            b"1.3.6.1.4.1.99999.1",
            b"anonymous",
            &1_700_000_000_000_000_000i64.to_be_bytes()[..],
            b"node-a",
        ] {
            buf.extend_from_slice(&u32::try_from(f.len()).unwrap_or(0).to_be_bytes());
            buf.extend_from_slice(f);
        }
        assert_eq!(h, sha256(&buf));
        // Computed independently with Python's hashlib (see README).
        assert_eq!(
            hex::encode(h),
            "66708c56eb0db59d0cff4e2d0b1806eacb8deffe3bd423d684552103a5415c50"
        );
    }
}
