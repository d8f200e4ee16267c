//! The auditors' tool: checks a running TSA, and the tokens it produced, against the
//! requirements listed in docs/requirements.md, on a verification path of its own.
//!
//! Independence is the point: the tool parses DER with its own reader ([`der`]),
//! verifies signatures in software with RustCrypto ([`crypto`]), and shares no builder
//! or check with the Hanko crates it audits (it depends on none of them). Each check is
//! one line of the [`report::Report`], under its requirement id.
//!
//! `tsa` probes a live TSA with requests of its own ([`tsa`], A.2 to A.13) and `token`
//! checks a `.tsr` or token file from any producer ([`token`], B.15 to B.33).
//!
//! `cades` checks a detached CAdES signature against EN 319 122-1 B-B and B-T
//! ([`cades`], D.45 to D.48) and `pades` each signature of a PDF against EN 319 142-1
//! ([`pades`], E.54 to E.58), their CMS read by [`cms`], shared with [`token`].
//!
//! `evidence` checks an RFC 4998 evidence record ([`evidence`], F.62 to F.67) and `log`
//! an issuance-log export of `hanko log export` ([`log`], C.38 and B.25).
#![forbid(unsafe_code)]

pub mod cades;
pub mod cert;
pub mod cms;
pub mod crypto;
pub mod der;
pub mod evidence;
pub mod log;
pub mod pades;
pub mod report;
pub mod time;
pub mod token;
pub mod tsa;
mod tsa_cert;

/// The time now as RFC 3339 (the report's start).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    time::rfc3339(secs)
}
