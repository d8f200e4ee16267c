//! The auditors' tool: checks a running TSA, and the tokens it produced, against the
//! requirements listed in docs/requirements.md, on a verification path of its own.
//!
//! Independence is the point: the tool parses DER with its own reader ([`der`]),
//! verifies signatures in software with RustCrypto ([`crypto`]), and shares no builder
//! or check with the Hanko crates it audits (it depends on none of them). Each check is
//! one line of the [`report::Report`], under its requirement id.
//!
//! Built so far: `tsa` (a live TSA) and `token` (a `.tsr` or token file from any
//! producer). CAdES, PAdES, evidence records and the issuance-log export come next
//! (issue #19).
#![forbid(unsafe_code)]

pub mod cert;
pub mod crypto;
pub mod der;
pub mod report;
pub mod time;
pub mod token;
pub mod tsa;

/// The time now as RFC 3339 (the report's start).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    time::rfc3339(secs)
}
