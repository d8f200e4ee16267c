//! Hanko's PKI vocabulary: one table of algorithms, the [`Signer`] trait every key signs
//! through, certificates and the checks a TSA or e-seal certificate must pass, and the
//! assembly of CMS structures.
//!
//! # What this crate does not do
//! It performs no I/O and knows nothing of PKCS#11, HTTP or SQL. Keys live behind
//! [`Signer`]: `hanko-hsm` implements it over a PKCS#11 token, [`soft::SoftwareSigner`]
//! implements it in memory for the dev CA and for tests.
//!
//! ```text
//!   protocol crate (tsa, seal, anchor)       CSC signHash (client-computed digests)
//!        |  DER to be signed                     |  alg::DigestSignAlgorithm::from_oids
//!        v                                       v
//!   pki::Signer::sign                       pki::Signer::sign_digest(s)
//!        +----------------------+----------------+
//!                               v
//!                 hsm (PKCS#11 session pool)   or   soft (dev CA, tests)
//!                               |  signature bytes (PKCS#1 / DER ECDSA-Sig-Value / Ed25519)
//!                               v
//!   pki::verify (software check of the result, against the certificate's key)
//! ```
//!
//! OIDs live in one table, [`oid`]; the few structures written by hand go through one
//! DER encoder, [`der`]; the names of RFC 3161's failure bits are in [`tsp`].
//!
//! ```
//! use hanko_pki::{HashAlgorithm, SignatureAlgorithm};
//! let alg = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
//! assert_eq!(alg.oid(), "1.2.840.10045.4.3.2");
//! assert_eq!(alg.hash().output_len(), 32);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alg;
pub mod cert;
pub mod cms;
pub mod der;
pub mod oid;
pub mod signer;
pub mod soft;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod tsp;
pub mod verify;
pub mod x509;

pub use alg::{DigestSignAlgorithm, HashAlgorithm, KeyType, SignatureAlgorithm};
pub use signer::{BoxFuture, SignError, SignErrorKind, Signer};
