//! What one row of the issuance log holds, and how a caller hands one in.
//!
//! What it is for: [`NewRecord`] is what a protocol crate (tsa, seal, anchor) returns next to
//! the bytes it issued, [`StoredRecord`] is a row as auditors and re-delivery read it back,
//! [`Receipt`] is what [`crate::Store::append`] answers once the row is durable.
//!
//! What it does not do: no SQL here. Checks that need no database (lengths, the token
//! matching `object_hash`, times before 1970) happen in [`NewRecord`]'s preparation so that
//! one malformed record is refused alone instead of failing the whole group-commit batch it
//! would have joined.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::Error;

/// Longest accepted serial / id, in bytes (RFC 3161 serials are at most 20 bytes; seal ids
/// may be longer but must stay short enough to index).
pub const MAX_SERIAL_LEN: usize = 64;
/// Longest accepted request hash, in bytes (SHA-512 and SHA3-512 are 64).
pub const MAX_REQUEST_HASH_LEN: usize = 64;
/// Longest accepted policy / credential string, in bytes.
pub const MAX_POLICY_LEN: usize = 256;
/// Longest accepted client identity, in bytes.
pub const MAX_CLIENT_LEN: usize = 1024;

/// What was issued. Stored as the text returned by [`RecordKind::as_str`]; that text is also
/// what the chain hash covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// An RFC 3161 time-stamp token (`"timestamp"`).
    Timestamp,
    /// An e-seal (CAdES/PAdES signature) (`"seal"`).
    Seal,
    /// An archive time-stamp made while anchoring / renewing evidence (`"archive-stamp"`).
    ArchiveStamp,
    /// An object hash an archive submitted to be anchored (`"archive-object"`, schema v4):
    /// `object_hash` is the submitted SHA-256, there is no token, and the serial is the
    /// object's id from its own counter.
    ArchiveObject,
    /// A life-cycle event of the service (`"audit"`, schema v6, issue #18): started,
    /// stopped, a key loaded, suspended or resumed, a certificate nearing its end, the
    /// clock lost or regained. `token` holds the event's canonical body (always kept),
    /// `object_hash` its SHA-256, `policy` the event type, `client` who caused it, and
    /// the serial comes from the `audit` counter, not from any token's (see
    /// [`crate::audit`]).
    Audit,
}

impl RecordKind {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Timestamp => "timestamp",
            RecordKind::Seal => "seal",
            RecordKind::ArchiveStamp => "archive-stamp",
            RecordKind::ArchiveObject => "archive-object",
            RecordKind::Audit => "audit",
        }
    }

    /// Every kind, in the order of the schema's list.
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Timestamp,
        RecordKind::Seal,
        RecordKind::ArchiveStamp,
        RecordKind::ArchiveObject,
        RecordKind::Audit,
    ];

    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<RecordKind> {
        match s {
            "timestamp" => Some(RecordKind::Timestamp),
            "seal" => Some(RecordKind::Seal),
            "archive-stamp" => Some(RecordKind::ArchiveStamp),
            "archive-object" => Some(RecordKind::ArchiveObject),
            "audit" => Some(RecordKind::Audit),
            _ => None,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One issued object, as handed to [`crate::Store::append`].
#[derive(Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// What was issued.
    pub kind: RecordKind,
    /// The serial number as a big-endian unsigned integer without leading zero bytes (the
    /// content of TSTInfo.serialNumber for time-stamps; see [`serial_to_bytes`]), or for
    /// kinds without a serial the issuer's opaque id bytes. Unique per kind in the log.
    pub serial: Vec<u8>,
    /// SHA-256 of the issued object exactly as the client receives it (the DER
    /// TimeStampResp token / CMS SignedData). See [`NewRecord::object_hash_of`].
    pub object_hash: [u8; 32],
    /// The hash the client asked to be stamped or sealed (the request's messageImprint
    /// hashedMessage, or the document digest), as sent.
    pub request_hash: Vec<u8>,
    /// The policy OID (dotted) or seal credential id under which it was issued.
    pub policy: String,
    /// Who asked: the authenticated client identity (certificate subject, API key name), or
    /// `"anonymous"`.
    pub client: String,
    /// The time written into the issued object (genTime / signing time).
    pub issued_at: SystemTime,
    /// The issued bytes. Kept unless [`crate::StoreOptions::keep_tokens`] is false; when
    /// present their SHA-256 must equal `object_hash`.
    pub token: Option<Vec<u8>>,
}

impl fmt::Debug for NewRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewRecord")
            .field("kind", &self.kind)
            .field("serial", &hex::encode(&self.serial))
            .field("object_hash", &hex::encode(self.object_hash))
            .field("policy", &self.policy)
            .field("client", &self.client)
            .field("issued_at", &self.issued_at)
            .field("token_len", &self.token.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl NewRecord {
    /// SHA-256 of issued bytes: the value `object_hash` must hold.
    pub fn object_hash_of(issued: &[u8]) -> [u8; 32] {
        sha256(issued)
    }
}

/// Encodes a positive serial as big-endian bytes without leading zeros (the form stored in
/// the `serial` column and the content octets of a DER INTEGER, minus the sign byte DER adds
/// when the top bit is set).
pub fn serial_to_bytes(n: u64) -> Vec<u8> {
    let b = n.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count().min(7);
    b[skip..].to_vec()
}

/// Normalises big-endian unsigned bytes (e.g. DER INTEGER content with its `0x00` sign
/// byte) to the stored form: leading zero bytes removed, at least one byte kept.
pub fn normalize_serial(bytes: &[u8]) -> Vec<u8> {
    let skip = bytes
        .iter()
        .take_while(|&&x| x == 0)
        .count()
        .min(bytes.len().saturating_sub(1));
    bytes[skip..].to_vec()
}

/// What [`crate::Store::append`] answers once the record is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The record's sequence number (1 for the first record of the log).
    pub seq: u64,
    /// The record's chained hash (see [`crate::chain`]).
    pub chain_hash: [u8; 32],
}

/// A row of the log as read back.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Sequence number, gapless from 1.
    pub seq: u64,
    /// What was issued.
    pub kind: RecordKind,
    /// Serial or id bytes (see [`NewRecord::serial`]).
    pub serial: Vec<u8>,
    /// SHA-256 of the issued object.
    pub object_hash: [u8; 32],
    /// The hash the client submitted.
    pub request_hash: Vec<u8>,
    /// Policy OID or credential id.
    pub policy: String,
    /// Client identity.
    pub client: String,
    /// Issue time in nanoseconds since the Unix epoch (the stored value).
    pub issued_at_ns: i64,
    /// The node that wrote the record ([`crate::StoreOptions::node_id`]).
    pub node_id: String,
    /// The issued bytes, when kept.
    pub token: Option<Vec<u8>>,
    /// The chained hash of this row.
    pub chain_hash: [u8; 32],
}

impl fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRecord")
            .field("seq", &self.seq)
            .field("kind", &self.kind)
            .field("serial", &hex::encode(&self.serial))
            .field("object_hash", &hex::encode(self.object_hash))
            .field("policy", &self.policy)
            .field("client", &self.client)
            .field("issued_at_ns", &self.issued_at_ns)
            .field("node_id", &self.node_id)
            .field("token_len", &self.token.as_ref().map(Vec::len))
            .field("chain_hash", &hex::encode(self.chain_hash))
            .finish()
    }
}

impl StoredRecord {
    /// The issue time as a `SystemTime`.
    pub fn issued_at(&self) -> SystemTime {
        // Stored values are >= 0 (checked on append); a tampered negative value maps to the
        // epoch rather than panicking.
        UNIX_EPOCH + Duration::from_nanos(u64::try_from(self.issued_at_ns).unwrap_or(0))
    }
}

/// A validated record ready for the writer: times converted, token dropped if the
/// operator does not keep tokens, node id attached.
#[derive(Debug, Clone)]
pub(crate) struct PreparedRecord {
    pub kind: RecordKind,
    pub serial: Vec<u8>,
    pub object_hash: [u8; 32],
    pub request_hash: Vec<u8>,
    pub policy: String,
    pub client: String,
    pub issued_at_ns: i64,
    pub node_id: Arc<str>,
    pub token: Option<Vec<u8>>,
}

impl PreparedRecord {
    pub(crate) fn new(
        rec: NewRecord,
        node_id: Arc<str>,
        keep_tokens: bool,
    ) -> Result<PreparedRecord, Error> {
        if rec.serial.is_empty() || rec.serial.len() > MAX_SERIAL_LEN {
            return Err(Error::InvalidRecord(format!(
                "serial must be 1..={MAX_SERIAL_LEN} bytes, got {}",
                rec.serial.len()
            )));
        }
        if rec.request_hash.is_empty() || rec.request_hash.len() > MAX_REQUEST_HASH_LEN {
            return Err(Error::InvalidRecord(format!(
                "request hash must be 1..={MAX_REQUEST_HASH_LEN} bytes, got {}",
                rec.request_hash.len()
            )));
        }
        if rec.policy.len() > MAX_POLICY_LEN {
            return Err(Error::InvalidRecord("policy is too long".into()));
        }
        if rec.client.len() > MAX_CLIENT_LEN {
            return Err(Error::InvalidRecord("client identity is too long".into()));
        }
        let issued_at_ns = system_time_to_ns(rec.issued_at)
            .ok_or_else(|| Error::InvalidRecord("issued_at is outside 1970..2262".into()))?;
        if let Some(t) = &rec.token
            && sha256(t) != rec.object_hash
        {
            return Err(Error::InvalidRecord(
                "object_hash is not the SHA-256 of the token bytes".into(),
            ));
        }
        Ok(PreparedRecord {
            kind: rec.kind,
            serial: rec.serial,
            object_hash: rec.object_hash,
            request_hash: rec.request_hash,
            policy: rec.policy,
            client: rec.client,
            issued_at_ns,
            node_id,
            // An audit record's body is the event itself, not a client's token: kept
            // whatever `keep_tokens` says.
            token: if keep_tokens || rec.kind == RecordKind::Audit {
                rec.token
            } else {
                None
            },
        })
    }
}

/// A row exactly as stored, before any interpretation: what the verifier hashes, so that a
/// tampered value (an unknown kind, a short hash) is reported as a bad row instead of
/// failing the read.
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    pub seq: i64,
    pub kind: String,
    pub serial: Vec<u8>,
    pub object_hash: Vec<u8>,
    pub request_hash: Vec<u8>,
    pub policy: String,
    pub client: String,
    pub issued_at_ns: i64,
    pub node_id: String,
    pub token: Option<Vec<u8>>,
    pub chain_hash: Vec<u8>,
}

impl RawRow {
    pub(crate) fn into_stored(self) -> Result<StoredRecord, Error> {
        let seq = u64::try_from(self.seq).map_err(|_| Error::Corrupt {
            seq: 0,
            reason: format!("negative sequence number {}", self.seq),
        })?;
        let corrupt = |reason: String| Error::Corrupt { seq, reason };
        let kind = RecordKind::parse(&self.kind)
            .ok_or_else(|| corrupt(format!("unknown kind {:?}", self.kind)))?;
        let object_hash: [u8; 32] = self
            .object_hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("object_hash is not 32 bytes".into()))?;
        let chain_hash: [u8; 32] = self
            .chain_hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("chain_hash is not 32 bytes".into()))?;
        Ok(StoredRecord {
            seq,
            kind,
            serial: self.serial,
            object_hash,
            request_hash: self.request_hash,
            policy: self.policy,
            client: self.client,
            issued_at_ns: self.issued_at_ns,
            node_id: self.node_id,
            token: self.token,
            chain_hash,
        })
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Nanoseconds since the epoch, if the time is in `0..=i64::MAX` ns (1970..2262).
pub(crate) fn system_time_to_ns(t: SystemTime) -> Option<i64> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_encoding() {
        assert_eq!(serial_to_bytes(0), vec![0]);
        assert_eq!(serial_to_bytes(1), vec![1]);
        assert_eq!(serial_to_bytes(0x1_0000), vec![1, 0, 0]);
        assert_eq!(serial_to_bytes(u64::MAX), vec![0xff; 8]);
        assert_eq!(normalize_serial(&[0, 0x80]), vec![0x80]);
        assert_eq!(normalize_serial(&[0, 0]), vec![0]);
        assert_eq!(normalize_serial(&[]), Vec::<u8>::new());
    }

    #[test]
    fn kinds_round_trip() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(RecordKind::parse("Timestamp"), None);
    }
}
