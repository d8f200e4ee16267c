//! `hanko-client`: the client side of a trust service. It builds RFC 3161 time-stamp
//! requests, sends them to a TSA over HTTP, and verifies time-stamp tokens offline,
//! so that a user can try a time-stamp authority (ours or anyone's) without OpenSSL
//! incantations. The `hanko stamp` and `hanko verify` commands are thin glue over it.
//!
//! ```text
//!   request::hash_file ─> request::build ─> TimeStampReq DER (random 64-bit nonce, certReq)
//!        │
//!        └─> transport::post ──HTTP POST application/timestamp-query──> TSA
//!                            <──TimeStampResp──
//!                  reply::check ─> granted: status, imprint, nonce, policy match the request
//!
//!   verify::verify(TimeStampResp DER, H(data), [request], roots, [untrusted])
//!        token ─> imprint ─> request ─> SignerInfo attributes ─> signer certificate
//!              ─> signature ─> TSA certificate purpose and chain at genTime ─> Verified
//! ```
//!
//! # Verification is a code path of its own
//! [`verify()`] shares nothing with `hanko-tsa`'s token builder (this crate does not
//! depend on it). It decodes with `rasn` types, takes the signed-attribute and
//! certificate bytes straight from the received DER (never a re-encoding), and uses only
//! `hanko_pki`'s vocabulary (OID table, DER reader, failure-bit names), its signature
//! primitive and its certificate accessors. A bug in the builder
//! therefore cannot hide itself here.
//!
//! # What it does not do
//! No revocation checking (CRL/OCSP, of tokens or of https servers), no ESSCertID v1
//! (SHA-1) tokens, and no policy
//! constraints or name constraints of the chain. It answers "did this TSA, certified
//! under this root, time-stamp these bytes at that time", which is what a user trying
//! the service wants to know. Seals are verified here too: CAdES ([`verify_seal`]) and
//! sealed PDFs ([`verify_pdf`]: each signature's byte range, then the CAdES checks),
//! which `hanko seal-verify` and the server's verification page (`/verify`) both call;
//! and the archive time-stamps of RFC 4998 evidence records by [`verify_evidence`] (each
//! valid when the next renewed it, the last now; the record's trees are hanko-anchor's to
//! check).
//!
//! ```
//! use hanko_client::request;
//! use hanko_pki::HashAlgorithm;
//!
//! let digest = HashAlgorithm::Sha256.digest(b"hello");
//! let req = request::build(HashAlgorithm::Sha256, digest, Some(7), None, true).unwrap();
//! assert!(req.cert_req);
//! let der = request::encode(&req).unwrap();
//! assert_eq!(der[0], 0x30); // a DER SEQUENCE: TimeStampReq
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod reply;
pub mod request;
#[cfg(feature = "test-support")]
pub mod test_support;
mod token;
pub mod transport;
pub mod verify;

pub use error::Error;
pub use verify::evidence::{EvidenceStep, VerifiedStep, verify_evidence};
pub use verify::pdf::{VerifiedPdf, verify_pdf};
pub use verify::seal::{VerifiedSeal, claimed_signer, verify_seal};
pub use verify::{Verified, claimed_tsa, verify, verify_token};
