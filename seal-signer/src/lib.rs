//! Organisational e-seals for Hanko: the digital form of an organisation's official
//! seal (公印/角印), as CAdES baseline signatures (ETSI EN 319 122-1) in CMS.
//!
//! A city hall seals every certificate of residence it issues, a company its invoices,
//! an archive the hashes it prepared itself. This crate turns such a request into the
//! DER of a CAdES B-B or B-T signature, detached (the default) or enveloping, and the
//! [`SealRecord`] the issuance log keeps.
//!
//! # What this crate does not do
//! * No I/O: no HTTP, no SQL, no PKCS#11, no clock. It takes a [`SealRequest`], a
//!   [`SealCredential`] (a [`hanko_pki::Signer`] and the certificates as original DER),
//!   the signing time and, for B-T, a [`TimeStamper`], and returns bytes. The server
//!   authenticates the caller, picks the credential, makes the record durable, and only
//!   then releases the seal.
//! * No CSC API, no configuration. PDFs (PAdES, [`pades`]) are parsed with `lopdf` and
//!   sealed by an incremental update this crate writes itself; the CMS inside is the
//!   same one CAdES makes, in its PAdES mode (no signing-time). The visible seal's
//!   appearance (image, text in an embedded font subset) is [`pades::appearance`].
//! * No verification: the independent verifier lives in the client crate
//!   (`hanko_client::verify_seal`, `hanko seal-verify`), so that what checks a seal shares
//!   no code with what makes it.
//!
//! ```text
//!  edge (HTTP query, CSC JSON, CLI)
//!     |  RawSealRequest { level, packaging, document | digest + hash OID, hints }
//!     v
//!  SealRequest::check           (packaging vs content, hash, digest length, mime type)
//!     |
//!  SealCredential::seal(request, now, time_stamper)
//!     |  certificate valid at now, digest algorithm = the key's
//!     |  signed attributes: content-type, message-digest, signing-time,
//!     |    signing-certificate-v2, CMS algorithm protection,
//!     |    [mime-type | content-hints], [commitment-type-indication]
//!     |  pki::cms::sign_signed_data    (DER SET OF -> Signer::sign, chain, no duplicates)
//!     |  B-T: TimeStamper::time_stamp(hash(signature value)) -> token, checked
//!     |       -> unsigned signature-time-stamp (no signed byte changes)
//!     v
//!  Seal { der, signed_attributes_der, record: SealRecord { object_hash, signing_time, ... } }
//! ```
//!
//! Every failure is an [`Error`]; [`Error::fault`] is the one place that says whether
//! it is the caller's fault or a system fault, and whether retrying can help.
//!
//! # Using it from a server
//! * At start-up, one [`SealCredential`] per configured credential (its HSM signer, its
//!   chain, its name); [`SealCredential::new`] runs the e-seal certificate profile
//!   check and the key match, so a bad credential stops the start;
//!   [`SealCredential::with_metadata`] adds what the operator configured
//!   ([`SealMetadata`]: allowed levels, which [`SealCredential::seal`] enforces for every
//!   route, allowed CSC algorithms, and the display name and [`SealImage`] of a visible
//!   seal).
//! * Per request: the edge fills a [`RawSealRequest`] (query string, CSC JSON),
//!   [`SealRequest::check`] judges it, [`SealCredential::seal`] takes the clock's
//!   current time and, for B-T, the server's [`TimeStamper`].
//! * The [`SealRecord`] goes into the issuance log, with the client; only once it is
//!   durable is [`Seal::der`] released. A B-T seal's token was issued by a TSA too:
//!   when that TSA is the server's own, its token is logged as every token is.
//! * [`Fault::Caller`] is a 4xx, [`Fault::Retryable`] a 503 with `Retry-After`,
//!   [`Fault::System`] a 500; [`Error::label`] is the metric label.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//! use hanko_pki::soft::SoftwareSigner;
//! use hanko_pki::x509::{CertParams, CertProfile, NameAttr, build_name, issue_certificate};
//! use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer};
//! use hanko_seal::{CommitmentType, RawSealRequest, SealCredential, SealRequest};
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     // The software signer's futures are ready at once.
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     loop {
//! #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
//! #     }
//! # }
//! # block_on(async {
//! let alg = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
//! let now = SystemTime::now();
//! let (from, until) = (now - Duration::from_secs(60), now + Duration::from_secs(86_400));
//!
//! // A throw-away CA and seal key in memory (production keys live in the HSM).
//! let ca_key = SoftwareSigner::generate(KeyType::EcP256, alg)?;
//! let ca_name = build_name(&[(NameAttr::CommonName, "Example Root")])?;
//! let ca_params = CertParams::new(CertProfile::RootCa, ca_name, from, until);
//! let ca = issue_certificate(&ca_params, ca_key.public_key_der(), None, &ca_key).await?;
//! let seal_key = Arc::new(SoftwareSigner::generate(KeyType::EcP256, alg)?);
//! let subject = build_name(&[
//!     (NameAttr::Country, "JP"),
//!     (NameAttr::Organization, "Example City"),
//!     (NameAttr::CommonName, "Example City e-seal"),
//! ])?;
//! let params = CertParams::new(CertProfile::Seal, subject, from, until);
//! let cert = issue_certificate(&params, seal_key.public_key_der(), Some(&ca), &ca_key).await?;
//!
//! let credential = SealCredential::new("seal-p256", seal_key, vec![cert, ca], now)?;
//! let request = SealRequest::check(RawSealRequest {
//!     commitment: Some(CommitmentType::ProofOfOrigin),
//!     ..RawSealRequest::document(b"certificate of residence")
//! })?;
//! let seal = credential.seal(&request, now, None).await?;
//! assert_eq!(seal.record.object_hash, HashAlgorithm::Sha256.digest(&seal.der));
//! assert_eq!(seal.record.credential, "seal-p256");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod metadata;
pub mod pades;
pub mod request;
pub mod seal;
pub mod timestamp;

pub use error::{Error, Fault};
pub use metadata::{SealImage, SealMetadata};
pub use pades::{CheckedPdf, PdfError, PdfSealRequest, Placement, Rect, SealedPdf};
pub use request::{
    CommitmentType, Content, ContentHint, Level, Packaging, RawContent, RawSealRequest, SealRequest,
};
pub use seal::{Seal, SealCredential, SealRecord};
pub use timestamp::{TimeStampError, TimeStampErrorKind, TimeStamper};
