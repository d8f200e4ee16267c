//! Audit events in the issuance log, and the emergency stop of a key (issue #18).
//!
//! What it is for: the service's life-cycle (started, stopped, a key loaded, activated,
//! suspended, resumed or retired, a certificate nearing its end, the clock lost or
//! regained, the configuration reloaded) is recorded in the same hash chain as every
//! issued object, so an auditor sees with `hanko log verify|export` not only what was
//! issued but under which conditions, and a deleted or edited event breaks the chain like
//! a deleted token.
//!
//! # How an audit event sits in the chain
//!
//! An event is a row of kind `"audit"` (schema v6) in the one gapless sequence; the chain
//! hash (version 1, [`crate::chain`]) covers it exactly as any other row, so logs written
//! before audit events existed verify unchanged and no new chain version is needed. Its
//! columns:
//!
//! ```text
//!   kind          "audit"
//!   serial        the next number of the log's "audit" counter (never a token's serial)
//!   object_hash   SHA-256(body)
//!   request_hash  SHA-256(body) again (an event has no request of its own)
//!   policy        the event type, e.g. "key-suspended" (AuditEventType::as_str)
//!   client        who caused it: "system" (the server itself), "cli:<user>"
//!                 (`hanko key suspend`), "client:<id>" (an admin client of the API)
//!   issued_at     when it happened
//!   node_id       the node that recorded it
//!   token         body, always kept (even with keep_tokens off: it is no client's token)
//!
//!   body = canonical JSON, UTF-8, no whitespace, keys in this order / sorted:
//!          {"v":1,"event":"<type>","fields":{"<name>":"<value>",...}}
//!          every field value a string; fields sorted by name (byte order)
//! ```
//!
//! The verifier checks `SHA-256(token) = object_hash` for every row that keeps its token,
//! so an edited body is caught like a replaced token.
//!
//! # The emergency stop
//!
//! `key_suspensions` holds one row per suspended key label. [`Store::suspend_key`] inserts
//! the row and appends its `key-suspended` event in one transaction under the chain lock;
//! [`Store::resume_key`] deletes it and appends `key-resumed` the same way. Every node
//! reads [`Store::key_suspensions`] (the server polls it) and refuses to sign with a
//! suspended key. What this module does not do: poll, or refuse anything; the server does
//! (`server/src/suspension.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::backend::{KeyStateOp, KeyStateOutcome, RawSuspension};
use crate::record::{PreparedRecord, system_time_to_ns};
use crate::{Error, NewRecord, Receipt, RecordKind, Store};

/// The counter audit records take their serial from.
pub const AUDIT_COUNTER: &str = "audit";

/// Version of the body encoding (the `"v"` member).
pub const AUDIT_BODY_VERSION: u32 = 1;

/// The actor of events the server records on its own.
pub const SYSTEM_ACTOR: &str = "system";

/// What happened. Stored as [`AuditEventType::as_str`] in `policy` and the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditEventType {
    /// The server started serving (fields: `version`).
    ServiceStarted,
    /// The server stopped serving (fields: `reason`).
    ServiceStopped,
    /// A signing key passed its start-up checks and was loaded (fields: `key`, `usage`,
    /// `algorithm`, `subject`, `certificate_sha256`, `not_after`).
    KeyLoaded,
    /// A key took over issuance at its activation time (rollover; fields: `key`).
    KeyActivated,
    /// An operator stopped issuance with a key (fields: `key`, `reason`).
    KeySuspended,
    /// An operator lifted a suspension (fields: `key`, `reason`).
    KeyResumed,
    /// A key stopped issuing for good (rollover; fields: `key`).
    KeyRetired,
    /// A key's certificate ends within the warning period (fields: `key`, `not_after`,
    /// `days_left`).
    CertificateExpiring,
    /// The clock lost synchronisation: time-stamping stops (fields: `source`, `reason`,
    /// `error_ms` when measured).
    ClockLost,
    /// The clock is synchronised again (fields: `source`, `error_ms`).
    ClockRegained,
    /// The configuration was reloaded (fields: `sha256` of the file).
    ConfigReloaded,
}

impl AuditEventType {
    /// Every type, in the order of the list above.
    pub const ALL: [AuditEventType; 11] = [
        Self::ServiceStarted,
        Self::ServiceStopped,
        Self::KeyLoaded,
        Self::KeyActivated,
        Self::KeySuspended,
        Self::KeyResumed,
        Self::KeyRetired,
        Self::CertificateExpiring,
        Self::ClockLost,
        Self::ClockRegained,
        Self::ConfigReloaded,
    ];

    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceStarted => "service-started",
            Self::ServiceStopped => "service-stopped",
            Self::KeyLoaded => "key-loaded",
            Self::KeyActivated => "key-activated",
            Self::KeySuspended => "key-suspended",
            Self::KeyResumed => "key-resumed",
            Self::KeyRetired => "key-retired",
            Self::CertificateExpiring => "certificate-expiring",
            Self::ClockLost => "clock-lost",
            Self::ClockRegained => "clock-regained",
            Self::ConfigReloaded => "config-reloaded",
        }
    }

    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<AuditEventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for AuditEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit event: its type and its fields (names and values are free text; see
/// [`AuditEventType`] for what each type carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// What happened.
    pub event: AuditEventType,
    /// Its details, sorted by name.
    pub fields: BTreeMap<String, String>,
}

/// The body as encoded: members in this order.
#[derive(Serialize, Deserialize)]
struct Body {
    v: u32,
    event: String,
    fields: BTreeMap<String, String>,
}

impl AuditEvent {
    /// An event of type `event` with `fields`.
    pub fn new<K, V>(event: AuditEventType, fields: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        AuditEvent {
            event,
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The canonical body (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let body = Body {
            v: AUDIT_BODY_VERSION,
            event: self.event.as_str().to_owned(),
            fields: self.fields.clone(),
        };
        // A struct of strings and a u32 always serialises.
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// Parses a stored body; `None` when it is not one this build writes (an unknown
    /// version or type, or not the canonical encoding of what it says).
    pub fn decode(bytes: &[u8]) -> Option<AuditEvent> {
        let body: Body = serde_json::from_slice(bytes).ok()?;
        if body.v != AUDIT_BODY_VERSION {
            return None;
        }
        let ev = AuditEvent {
            event: AuditEventType::parse(&body.event)?,
            fields: body.fields,
        };
        (ev.encode() == bytes).then_some(ev)
    }

    /// A field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A key's suspension as recorded in `key_suspensions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySuspension {
    /// The key's label (`CKA_LABEL`, as in `[[keys]]`).
    pub label: String,
    /// Why, as the operator gave it.
    pub reason: String,
    /// Who (the audit actor: `cli:<user>`, `client:<id>`).
    pub suspended_by: String,
    /// When.
    pub suspended_at: SystemTime,
    /// The node that recorded it.
    pub node_id: String,
    /// The sequence number of its `key-suspended` audit record.
    pub audit_seq: u64,
}

impl KeySuspension {
    fn from_raw(r: RawSuspension) -> KeySuspension {
        KeySuspension {
            label: r.label,
            reason: r.reason,
            suspended_by: r.suspended_by,
            suspended_at: UNIX_EPOCH
                + Duration::from_nanos(u64::try_from(r.suspended_at_ns).unwrap_or(0)),
            node_id: r.node_id,
            audit_seq: u64::try_from(r.audit_seq).unwrap_or(0),
        }
    }
}

/// What [`Store::suspend_key`] and [`Store::resume_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStateChange {
    /// The state changed; the receipt of its audit record.
    Changed(Receipt),
    /// The key was suspended already (nothing changed, nothing logged): since when, by
    /// whom, why.
    AlreadySuspended(KeySuspension),
    /// The key was not suspended (nothing changed, nothing logged).
    NotSuspended,
}

/// Longest accepted key label and suspension reason, in bytes.
pub const MAX_LABEL_LEN: usize = 256;
/// Longest accepted suspension reason, in bytes.
pub const MAX_REASON_LEN: usize = 1024;

impl Store {
    /// The record of `event`, caused by `actor`, at `at`, with a serial from the audit
    /// counter (refused on a read-only store).
    async fn audit_record(
        &self,
        event: &AuditEvent,
        actor: &str,
        at: SystemTime,
    ) -> Result<NewRecord, Error> {
        if self.inner_read_only() {
            return Err(Error::ReadOnly);
        }
        let serial = self
            .backend()
            .reserve_serials(
                AUDIT_COUNTER,
                1,
                self.node_id(),
                system_time_to_ns(SystemTime::now()).unwrap_or(0),
            )
            .await?;
        let body = event.encode();
        let hash = NewRecord::object_hash_of(&body);
        Ok(NewRecord {
            kind: RecordKind::Audit,
            serial: crate::serial_to_bytes(serial),
            object_hash: hash,
            request_hash: hash.to_vec(),
            policy: event.event.as_str().to_owned(),
            client: actor.to_owned(),
            issued_at: at,
            token: Some(body),
        })
    }

    /// Appends `event`, caused by `actor` (see the module docs), at `at`, through the
    /// group-commit writer like any record. Returns once it is durable.
    pub async fn append_audit(
        &self,
        event: &AuditEvent,
        actor: &str,
        at: SystemTime,
    ) -> Result<Receipt, Error> {
        let record = self.audit_record(event, actor, at).await?;
        self.append(record).await
    }

    /// Suspends key `label` (the emergency stop): records the suspension and its
    /// `key-suspended` audit event (fields `key`, `reason`) in one transaction. A key
    /// already suspended stays as it was ([`KeyStateChange::AlreadySuspended`]).
    pub async fn suspend_key(
        &self,
        label: &str,
        reason: &str,
        actor: &str,
    ) -> Result<KeyStateChange, Error> {
        check_label(label)?;
        if reason.len() > MAX_REASON_LEN {
            return Err(Error::InvalidArgument(format!(
                "the reason is longer than {MAX_REASON_LEN} bytes"
            )));
        }
        let now = SystemTime::now();
        let event = AuditEvent::new(
            AuditEventType::KeySuspended,
            [("key", label), ("reason", reason)],
        );
        let op = KeyStateOp::Suspend(RawSuspension {
            label: label.to_owned(),
            reason: reason.to_owned(),
            suspended_by: actor.to_owned(),
            suspended_at_ns: system_time_to_ns(now).unwrap_or(0),
            node_id: self.node_id().to_owned(),
            audit_seq: 0,
        });
        self.change_key_state(op, &event, actor, now).await
    }

    /// Lifts the suspension of key `label`: deletes it and records its `key-resumed`
    /// audit event (fields `key`, `reason`) in one transaction. A key that is not
    /// suspended stays as it was ([`KeyStateChange::NotSuspended`]).
    pub async fn resume_key(
        &self,
        label: &str,
        reason: &str,
        actor: &str,
    ) -> Result<KeyStateChange, Error> {
        check_label(label)?;
        let now = SystemTime::now();
        let event = AuditEvent::new(
            AuditEventType::KeyResumed,
            [("key", label), ("reason", reason)],
        );
        let op = KeyStateOp::Resume {
            label: label.to_owned(),
        };
        self.change_key_state(op, &event, actor, now).await
    }

    async fn change_key_state(
        &self,
        op: KeyStateOp,
        event: &AuditEvent,
        actor: &str,
        at: SystemTime,
    ) -> Result<KeyStateChange, Error> {
        let record = self.audit_record(event, actor, at).await?;
        let prepared = PreparedRecord::new(record, self.node_id().into(), true)?;
        Ok(match self.backend().change_key_state(op, prepared).await? {
            KeyStateOutcome::Changed(r) => KeyStateChange::Changed(r),
            KeyStateOutcome::Unchanged(Some(s)) => {
                KeyStateChange::AlreadySuspended(KeySuspension::from_raw(s))
            }
            KeyStateOutcome::Unchanged(None) => KeyStateChange::NotSuspended,
        })
    }

    /// Every suspended key, by label.
    pub async fn key_suspensions(&self) -> Result<Vec<KeySuspension>, Error> {
        Ok(self
            .backend()
            .key_suspensions()
            .await?
            .into_iter()
            .map(KeySuspension::from_raw)
            .collect())
    }
}

fn check_label(label: &str) -> Result<(), Error> {
    if label.is_empty() || label.len() > MAX_LABEL_LEN {
        return Err(Error::InvalidArgument(format!(
            "a key label must be 1..={MAX_LABEL_LEN} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_canonical_and_round_trips() {
        let ev = AuditEvent::new(
            AuditEventType::KeySuspended,
            [("reason", "HSM \"audit\" finding"), ("key", "tsa-rsa")],
        );
        let body = ev.encode();
        assert_eq!(
            std::str::from_utf8(&body).ok(),
            Some(
                r#"{"v":1,"event":"key-suspended","fields":{"key":"tsa-rsa","reason":"HSM \"audit\" finding"}}"#
            )
        );
        assert_eq!(AuditEvent::decode(&body), Some(ev));
        // Not canonical (whitespace), unknown type, other version: not decoded.
        assert_eq!(
            AuditEvent::decode(br#"{"v":1, "event":"key-suspended","fields":{}}"#),
            None
        );
        assert_eq!(
            AuditEvent::decode(br#"{"v":1,"event":"key-exploded","fields":{}}"#),
            None
        );
        assert_eq!(
            AuditEvent::decode(br#"{"v":2,"event":"key-suspended","fields":{}}"#),
            None
        );
    }

    #[test]
    fn types_round_trip() {
        for t in AuditEventType::ALL {
            assert_eq!(AuditEventType::parse(t.as_str()), Some(t));
        }
    }
}
