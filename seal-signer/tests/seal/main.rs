//! hanko-seal integration tests, one binary (CONTRIBUTING.md, Tests).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

/// The visible seal's appearance on a page rendered by poppler (pdftoppm, pdftotext,
/// pdffonts): the image where it was asked for, the Japanese text embedded and extractable.
mod appearance;
/// The test PKI (software CA, seal keys in SoftHSM), the in-process TSA behind
/// `TimeStamper`, openssl and CMS helpers.
mod common;
/// A full signing queue (a real `Busy` from the HSM pool) is a retryable error.
mod faults;
/// Seals checked by `openssl cms -verify`, `openssl cms -cmsout -print`,
/// `openssl ts -verify` and rfc3161-client, and taken apart structurally.
mod interop;
/// PAdES: PDFs from several producers sealed (SoftHSM keys, the in-process TSA),
/// checked by qpdf and poppler's pdfsig; the original bytes kept; every refusal.
mod pades;
/// Property tests: any content gives a seal whose message-digest is its hash and whose
/// signed attributes re-encode to the signed bytes.
mod props;
/// Every bad input and misconfiguration, its error and its fault class, no panic.
mod rejections;
